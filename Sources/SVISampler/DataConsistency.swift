import SVICore
import SVIFormats
import SVICluster
import SVIOperators

/// The data-consistency solve of one DDS step, in [0,1] pixel units (DESIGN §4):
/// plain: M CG steps on AᵀA u = Aᵀy from u0;
/// proximal (γ given): M CG steps on (I + γAᵀA) u = u0 + γAᵀy from u0.
public final class DataConsistency {
    public let op: DegradationOperator
    public let dist: Distribution
    public let gamma: Double?
    /// Aᵀy on this rank's frames, computed once.
    public let aty: Tensor64
    private let cg: ConjugateGradient
    private let rhs: Tensor64

    /// The measurement y (float64) on this rank's frames.
    public let y: Tensor64

    public init(op: DegradationOperator, measurement: Tensor, dist: Distribution, gamma: Double?) {
        self.op = op; self.dist = dist; self.gamma = gamma
        y = Tensor64(converting: measurement)
        aty = op.makeInput(frames: y.frames)
        op.adjoint(y, into: aty, dist)
        cg = ConjugateGradient(dist)
        rhs = Tensor64(shape: aty.shape)
    }

    /// u ← CG_M(…) starting from the u passed in.
    @discardableResult
    public func solve(_ u: Tensor64, iterations: Int) -> [Double] {
        if let g = gamma {
            Kernels.lincomb(rhs.data, 1, u.data, g, aty.data, u.count)      // u0 + γAᵀy
            return cg.solve(rhs: rhs, solution: u, iterations: iterations) { v, out in
                op.normal(v, into: out, dist)
                Kernels.axpby(out.data, 1, v.data, g, out.count)            // v + γAᵀA v
            }
        }
        return cg.solve(rhs: aty, solution: u, iterations: iterations) { v, out in op.normal(v, into: out, dist) }
    }

    /// ‖A u − y‖ / ‖y‖ over the whole video.
    public func relativeResidual(_ u: Tensor64) -> Double {
        let au: Tensor64 = op.makeOutput(frames: u.frames)
        op.apply(u, into: au, dist)
        Kernels.axpy(au.data, -1, y.data, au.count)
        let yy = dist.dot(y, y)
        return yy > 0 ? (dist.dot(au, au) / yy).squareRoot() : dist.dot(au, au).squareRoot()
    }
}

import SVICore
import SVIFormats
import SVIContracts
import SVIOperators

/// The data-consistency solve of one DDS step, in [0,1] pixel units (DESIGN §4):
/// plain: M CG steps on AᵀA u = Aᵀy from u0;
/// proximal (γ given): M CG steps on (I + γAᵀA) u = u0 + γAᵀy from u0.
///
/// Memory (ARCHITECTURE.md, "Memory per frame"): the measurement is kept as the float32 block
/// it arrived in; Aᵀy is not stored but recomputed into CG's residual at the start of every
/// solve (one adjoint per step, ~1/(2M+2) of the solve's operator work), and the proximal
/// right-hand side is formed in that same vector. Both give the bits the stored versions gave.
public final class DataConsistency {
    public let op: DegradationOperator
    public let dist: Distribution
    public let gamma: Double?
    /// The discrepancy principle (issue 27): with the measurement's noise σ given, CG stops
    /// once ‖A u − y‖² ≤ σ²·m (m measured values) instead of running every iteration — fitting
    /// y closer than its noise only turns the noise (8-bit rounding, codec error) into grain.
    public let stopAtNoise: Double?
    private let cg: ConjugateGradient<Double>

    /// The measurement y on this rank's frames (float32, as read).
    public let y: Tensor

    public init(op: DegradationOperator, measurement: Tensor, dist: Distribution, gamma: Double?, stopAtNoise: Double? = nil) {
        self.op = op; self.dist = dist; self.gamma = gamma
        self.stopAtNoise = stopAtNoise.flatMap { $0 > 0 ? $0 : nil }
        y = measurement
        cg = ConjugateGradient(dist)
    }

    /// Measured values whose residual counts: the rows of the video's operator (a segment's
    /// replicated edge rows left out) times the measured frame, times the share of pixels an
    /// inpainting mask keeps.
    public var measuredValues: Double {
        let rows = dist.totalFrames - (op.temporal?.edgeRows.count ?? 0)
        return Double(max(rows, 0)) * Double(op.outputShape.count) * (op.spec.inpaintKeep ?? 1)
    }

    /// ‖A u − y‖² at which CG stops (nil: no such stop).
    public var discrepancyBound: Double? {
        stopAtNoise.map { $0 * $0 * measuredValues }
    }

    /// out ← Aᵀy on this rank's frames.
    public func adjointOfMeasurement(into out: Tensor64) {
        op.adjoint(measurement: y, into: out, dist)
    }

    /// A new tensor holding Aᵀy (the baselines' starting point).
    public func makeAdjointOfMeasurement() -> Tensor64 {
        let t: Tensor64 = op.makeInput(frames: y.frames)
        adjointOfMeasurement(into: t)
        return t
    }

    /// u ← CG_M(…) starting from the u passed in.
    @discardableResult
    public func solve(_ u: Tensor64, iterations: Int) -> [Double] {
        solve(u, iterations: iterations, gamma: gamma, discrepancyStop: stopAtNoise != nil)
    }

    /// The same with this solve's own γ (plug-and-play's changes every step) and stop.
    @discardableResult
    public func solve(_ u: Tensor64, iterations: Int, gamma: Double?, discrepancyStop: Bool) -> [Double] {
        let stop: ((Tensor64) -> Bool)? = discrepancyStop ? discrepancyBound.map { bound in { v in self.residualParts(v).residual <= bound } } : nil
        if let g = gamma {
            return cg.solve(solution: u, iterations: iterations, rhs: { b in
                adjointOfMeasurement(into: b)
                Kernels.lincomb(b.data, 1, u.data, g, b.data, u.count)     // u0 + γAᵀy
            }, stop: stop) { v, out in
                op.normal(v, into: out, dist)
                Kernels.axpby(out.data, 1, v.data, g, out.count)            // v + γAᵀA v
            }
        }
        return cg.solve(solution: u, iterations: iterations, rhs: { b in adjointOfMeasurement(into: b) }, stop: stop) { v, out in
            op.normal(v, into: out, dist)
        }
    }

    /// ‖A u − y‖² and ‖y‖² over the whole video (summed in frame order), over the measured
    /// frames whose rows are the video's (a segment's edge rows replicate its edge frame, so
    /// they do not measure how well u explains y).
    public func residualParts(_ u: Tensor64) -> (residual: Double, measurement: Double) {
        // A u goes into the operator's measurement-size scratch: no new vector at the end of a
        // segment, when every other vector is still alive (it set the peak).
        let au = op.measurementScratch(frames: u.frames)
        op.apply(u, into: au, dist)
        let dropped = Set(op.temporal?.edgeRows ?? [])
        let fs = au.frameSize
        var yy = Kernels.frameDots(y.data, y.data, frames: y.frames, frameSize: fs)
        for (i, t) in dist.localRange.enumerated() {
            let a = au.frame(i), src = y.frame(i)
            if dropped.contains(t) { a.update(repeating: 0, count: fs); yy[i] = 0; continue }
            Parallel.forEachChunk(fs) { s, e in for j in s..<e { a[j] -= Double(src[j]) } }
        }
        return (dist.dot(au, au), dist.comm.sumInFrameOrder(yy, partition: dist.partition))
    }

    /// ‖A u − y‖ / ‖y‖ over the whole video.
    public func relativeResidual(_ u: Tensor64) -> Double {
        let (r, yy) = residualParts(u)
        return yy > 0 ? (r / yy).squareRoot() : r.squareRoot()
    }
}

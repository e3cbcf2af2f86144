import Testing
import SVICore
import SVIFormats
import SVIContracts
import SVIOperators
@testable import SVISampler

/// CG reproduces the reference's 5 iterations and converges on SPD systems.
@Suite struct ConjugateGradientTests {
    @Test func fiveStepsMatchReference() throws {
        let y = try NPY.readFloat32(Fixtures.path("temporal-cg/measurement.npy"))
        let start = try NPY.readFloat32(Fixtures.path("temporal-cg/start.npy"))
        let expected = try NPY.readFloat32(Fixtures.path("temporal-cg/cg5.npy"))
        let op = try DegradationOperator(spec: .parse("temporal=uniform:13"), frame: FrameShape(channels: 3, height: 8, width: 8), totalFrames: 16)
        let dc = DataConsistency(op: op, measurement: y, dist: .local(totalFrames: 16), gamma: nil)
        let u = Tensor64(converting: start)
        dc.solve(u, iterations: 5)
        #expect(maxRelativeError(u, expected) < 1e-5)
    }

    /// On the SPD system (I + γAᵀA) u = b with a spatial blur + SR, CG drives the residual
    /// down to float precision within the dimension's worth of steps, and matches a solution
    /// we can check by applying the matrix.
    @Test func convergesOnSmallSPDSystem() throws {
        let T = 4, s = FrameShape(channels: 1, height: 8, width: 8)
        let op = try DegradationOperator(spec: .parse("temporal=uniform:3,blur=1.0,sr=2"), frame: s, totalFrames: T)
        let d = Distribution.local(totalFrames: T)
        let truth = Tensor64(converting: randomTensor([T, 1, 8, 8], seed: 5))
        let b = Tensor64(shape: truth.shape), tmp = Tensor64(shape: truth.shape)
        op.normal(truth, into: tmp, d)
        Kernels.lincomb(b.data, 1, truth.data, 0.5, tmp.data, b.count)       // b = (I + 0.5 AᵀA) truth
        let u = Tensor64(shape: truth.shape)
        let history = ConjugateGradient(d).solve(rhs: b, solution: u, iterations: 60) { v, out in
            op.normal(v, into: out, d)
            Kernels.axpby(out.data, 1, v.data, 0.5, out.count)
        }
        #expect(history.last! < 1e-20 * d.dot(b, b))
        #expect(maxRelativeError(u, truth) < 1e-9)
    }
}

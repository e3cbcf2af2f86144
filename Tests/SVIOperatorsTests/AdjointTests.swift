import Testing
import SVICore
import SVIFormats
import SVIContracts
@testable import SVIOperators

/// Every operator and composite passes the dot-product test ⟨Ax, y⟩ = ⟨x, Aᵀy⟩ to 1e-5.
@Suite struct AdjointTests {
    static let specs = [
        "temporal=uniform:13", "temporal=uniform:7,boundary=replicate", "temporal=gaussian:1.0",
        "temporal=gaussian:1.5,boundary=replicate", "blur=2.0", "sr=4", "inpaint=0.5",
        "temporal=uniform:7,blur=2.0", "temporal=gaussian:1.0,sr=4", "temporal=uniform:7,inpaint=0.5,noise=0.01",
        "temporal=uniform:5,blur=1.0,sr=2,inpaint=0.7,boundary=replicate", "boundary=replicate",
    ]

    @Test(arguments: specs)
    func dotProductTest(spec: String) throws {
        let op = try DegradationOperator(spec: DegradationSpec.parse(spec),
                                         frame: FrameShape(channels: 3, height: 16, width: 24), totalFrames: 11, maskSeed: 5)
        #expect(adjointGap(op, frames: 11, seed: 100) < 1e-5)
    }

    /// The float32 operators (ADMM-TV's warm start) compute what the float64 ones do, to
    /// float32's rounding: A, Aᵀ, AᵀA and the differences D, Dᵀ and ρDᵀD.
    @Test(arguments: specs)
    func singlePrecisionMatchesDoublePrecision(spec: String) throws {
        let T = 9, s = FrameShape(channels: 3, height: 16, width: 24)
        let op = try DegradationOperator(spec: DegradationSpec.parse(spec), frame: s, totalFrames: T, maskSeed: 5)
        let d = Distribution.local(totalFrames: T)
        let x32 = randomTensor([T, 3, 16, 24], seed: 3), x64 = Tensor64(converting: x32)
        func gap(_ a: Tensor, _ b: Tensor64) -> Double {
            var worst = 0.0, scale = 1e-30
            for i in 0..<b.count { worst = max(worst, abs(Double(a[i]) - b[i])); scale = max(scale, abs(b[i])) }
            return worst / scale
        }
        let ax32: Tensor = op.makeOutput(frames: T, Float.self), ax64: Tensor64 = op.makeOutput(frames: T)
        op.apply(x32, into: ax32, d); op.apply(x64, into: ax64, d)
        #expect(gap(ax32, ax64) < 1e-6)
        let n32: Tensor = op.makeInput(frames: T, Float.self), n64: Tensor64 = op.makeInput(frames: T)
        op.normal(x32, into: n32, d); op.normal(x64, into: n64, d)
        #expect(gap(n32, n64) < 1e-6)
        op.adjoint(ax32, into: n32, d); op.adjoint(ax64, into: n64, d)
        #expect(gap(n32, n64) < 1e-6)
        let du32 = (0..<3).map { _ in Tensor(shape: x32.shape) }, du64 = (0..<3).map { _ in Tensor64(shape: x32.shape) }
        FiniteDifference3D.apply(x32, dt: du32[0], dy: du32[1], dx: du32[2], frame: s, d)
        FiniteDifference3D.apply(x64, dt: du64[0], dy: du64[1], dx: du64[2], frame: s, d)
        for i in 0..<3 { #expect(gap(du32[i], du64[i]) < 1e-6) }
        FiniteDifference3D.adjoint(dt: du32[0], dy: du32[1], dx: du32[2], into: n32, frame: s, d)
        FiniteDifference3D.adjoint(dt: du64[0], dy: du64[1], dx: du64[2], into: n64, frame: s, d)
        #expect(gap(n32, n64) < 1e-6)
        FiniteDifference3D.addNormal(x32, scale: 0.05, into: n32, frame: s, d)
        FiniteDifference3D.addNormal(x64, scale: 0.05, into: n64, frame: s, d)
        #expect(gap(n32, n64) < 1e-6)
    }

    /// Videos shorter than the kernel: both boundaries fold several taps onto one frame.
    @Test(arguments: ["temporal=uniform:13", "temporal=uniform:13,boundary=replicate", "temporal=gaussian:2.0"])
    func shortVideos(spec: String) throws {
        for frames in [1, 2, 5] {
            let op = try DegradationOperator(spec: DegradationSpec.parse(spec),
                                             frame: FrameShape(channels: 1, height: 4, width: 4), totalFrames: frames)
            #expect(adjointGap(op, frames: frames, seed: 7) < 1e-5)
        }
    }

    /// Blur with a kernel wider than the frame still has an exact adjoint (repeated reflection).
    @Test func blurWiderThanFrame() throws {
        let op = try DegradationOperator(spec: DegradationSpec.parse("blur=3.0"),
                                         frame: FrameShape(channels: 2, height: 5, width: 3), totalFrames: 2)
        #expect(adjointGap(op, frames: 2, seed: 9) < 1e-5)
    }

    @Test func finiteDifferenceAdjoint() {
        let s = FrameShape(channels: 2, height: 6, width: 5), T = 7
        let d = Distribution.local(totalFrames: T)
        let u = Tensor64(converting: randomTensor([T, 2, 6, 5], seed: 1))
        let p = (0..<3).map { Tensor64(converting: randomTensor([T, 2, 6, 5], seed: 10 + UInt64($0))) }
        let du = (0..<3).map { _ in Tensor64(shape: [T, 2, 6, 5]) }
        FiniteDifference3D.apply(u, dt: du[0], dy: du[1], dx: du[2], frame: s, d)
        let dtp = Tensor64(shape: [T, 2, 6, 5])
        FiniteDifference3D.adjoint(dt: p[0], dy: p[1], dx: p[2], into: dtp, frame: s, d)
        let lhs = (0..<3).reduce(0.0) { $0 + d.dot(du[$1], p[$1]) }
        let rhs = d.dot(u, dtp)
        #expect(abs(lhs - rhs) / abs(lhs) < 1e-5)
    }

    /// The fused out + ρDᵀD u (ADMM-TV's inner operator) equals Dᵀ applied to D u, added with
    /// weight ρ, on every frame count down to one and on single rows and columns.
    @Test(arguments: [(7, 2, 6, 5), (1, 1, 4, 3), (2, 3, 1, 6), (3, 1, 5, 1)])
    func fusedLaplacianEqualsDifferencesAndTheirAdjoint(shape: (Int, Int, Int, Int)) {
        let (T, c, h, w) = shape
        let s = FrameShape(channels: c, height: h, width: w), dims = [T, c, h, w]
        let d = Distribution.local(totalFrames: T)
        let u = Tensor64(converting: randomTensor(dims, seed: 3))
        let du = (0..<3).map { _ in Tensor64(shape: dims) }
        FiniteDifference3D.apply(u, dt: du[0], dy: du[1], dx: du[2], frame: s, d)
        let expected = Tensor64(shape: dims)
        FiniteDifference3D.adjoint(dt: du[0], dy: du[1], dx: du[2], into: expected, frame: s, d)
        let start = Tensor64(converting: randomTensor(dims, seed: 4))
        let fused = start.copy()
        FiniteDifference3D.addNormal(u, scale: 0.3, into: fused, frame: s, d)
        let worst = (0..<u.count).map { abs(fused[$0] - (start[$0] + 0.3 * expected[$0])) }.max() ?? 0
        #expect(worst < 1e-12, "largest difference \(worst)")
        // With the frames' dot products taken as they are finished: the same out, and the bits
        // of per-frame dots taken afterwards (CG's p·Mp).
        let withDots = start.copy()
        let dots = FiniteDifference3D.addNormalWithDots(u, scale: 0.3, into: withDots, frame: s, d)
        #expect(withDots.array == fused.array)
        #expect(dots == Kernels.frameDots(u.data, withDots.data, frames: T, frameSize: s.count))
    }

    /// Dᵀ followed in the same pass by out ← a·x + b·out (ADMM-TV's right-hand side) gives the
    /// bits of `adjoint` and then `Kernels.axpby`, in float64 and float32.
    @Test(arguments: [(7, 2, 6, 5), (1, 1, 4, 3)])
    func adjointThenAxpbyEqualsTwoPasses(shape: (Int, Int, Int, Int)) {
        let (T, c, h, w) = shape
        let s = FrameShape(channels: c, height: h, width: w), dims = [T, c, h, w]
        let d = Distribution.local(totalFrames: T)
        let p = (0..<3).map { randomTensor(dims, seed: UInt64(10 + $0)) }
        let x = randomTensor(dims, seed: 20)
        let two = Tensor(shape: dims), one = Tensor(shape: dims)
        FiniteDifference3D.adjoint(dt: p[0], dy: p[1], dx: p[2], into: two, frame: s, d)
        Kernels.axpby(two.data, 1, x.data, 0.05, two.count)
        FiniteDifference3D.adjoint(dt: p[0], dy: p[1], dx: p[2], into: one, thenAxpby: 1, x, 0.05, frame: s, d)
        #expect(one.array == two.array)
        let p64 = p.map { Tensor64(converting: $0) }, x64 = Tensor64(converting: x)
        let two64 = Tensor64(shape: dims), one64 = Tensor64(shape: dims)
        FiniteDifference3D.adjoint(dt: p64[0], dy: p64[1], dx: p64[2], into: two64, frame: s, d)
        Kernels.axpby(two64.data, 1, x64.data, 0.05, two64.count)
        FiniteDifference3D.adjoint(dt: p64[0], dy: p64[1], dx: p64[2], into: one64, thenAxpby: 1, x64, 0.05, frame: s, d)
        #expect(one64.array == two64.array)
    }
}

/// Operators do what their definitions say, on hand-checkable inputs.
@Suite struct OperatorDefinitionTests {
    @Test func uniformTemporalIsTheMeanOfNeighbours() throws {
        let T = 6
        let x = Tensor64(shape: [T, 1, 1, 1], values: (0..<T).map { Double($0) })
        let d = Distribution.local(totalFrames: T)
        let circ = try DegradationOperator(spec: .parse("temporal=uniform:3"), frame: FrameShape(channels: 1, height: 1, width: 1), totalFrames: T)
        let y: Tensor64 = circ.makeOutput(frames: T)
        circ.apply(x, into: y, d)
        #expect(abs(y[0] - (5 + 0 + 1) / 3) < 1e-6)
        #expect(abs(y[3] - 3) < 1e-6)
        let rep = try DegradationOperator(spec: .parse("temporal=uniform:3,boundary=replicate"), frame: FrameShape(channels: 1, height: 1, width: 1), totalFrames: T)
        rep.apply(x, into: y, d)
        #expect(abs(y[0] - (0 + 0 + 1) / 3) < 1e-6)
        #expect(abs(y[5] - (4 + 5 + 5) / 3) < 1e-6)
    }

    @Test func gaussianTemporalKernelIsNormalised() throws {
        let k = try TemporalKernel.gaussian(1.0, boundary: .circular)
        #expect(k.width == 7)
        #expect(abs(k.weights.reduce(0, +) - 1) < 1e-12)
        #expect(k.weights[3] > k.weights[2] && k.weights[2] == k.weights[4])
    }

    @Test func blockAverageAndNearestAdjoint() throws {
        let op = BlockAverage(factor: 2)
        let s = FrameShape(channels: 1, height: 2, width: 4)
        let x: [Double] = [1, 2, 3, 4, 5, 6, 7, 8]
        var y = [Double](repeating: 0, count: 2)
        op.apply(x, &y, input: s)
        #expect(y == [3.5, 5.5])
        var back = [Double](repeating: 0, count: 8)
        op.adjoint(y, &back, input: s)
        #expect(back == [0.875, 0.875, 1.375, 1.375, 0.875, 0.875, 1.375, 1.375])
        #expect(throws: SVIError.self) { try op.outputShape(for: FrameShape(channels: 3, height: 5, width: 4)) }
    }

    @Test func inpaintMaskKeepsTheRequestedFraction() {
        let m = InpaintMask(keepFraction: 0.3, seed: 11).mask(height: 200, width: 200)
        let kept = Double(m.reduce(0, +)) / 40_000
        #expect(abs(kept - 0.3) < 0.01)
        #expect(m == InpaintMask(keepFraction: 0.3, seed: 11).mask(height: 200, width: 200))
        #expect(m != InpaintMask(keepFraction: 0.3, seed: 12).mask(height: 200, width: 200))
    }

    @Test func blurPreservesConstantsAndHasTheStatedSize() {
        let b = GaussianBlur(sigma: 2.0)
        #expect(b.taps.count == 13)
        let s = FrameShape(channels: 1, height: 9, width: 9)
        let x = [Double](repeating: 0.7, count: 81)
        var y = [Double](repeating: 0, count: 81)
        b.apply(x, &y, input: s)
        #expect(y.allSatisfy { abs($0 - 0.7) < 1e-5 })
    }
}

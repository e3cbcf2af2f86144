import SVICore
import SVIFormats
import SVIContracts

/// The forward operator A = S ∘ Tm of a degradation (DESIGN §3) over a video distributed in
/// frame blocks, with Aᵀ = Tmᵀ ∘ Sᵀ and the normal operator AᵀA that CG iterates. Evaluated
/// as Tm ∘ S (they commute; see `apply`).
/// Works in float64 (see `Tensor64`); scratch buffers are kept and reused across calls (CG
/// applies AᵀA every iteration).
public final class DegradationOperator: @unchecked Sendable {
    public let spec: DegradationSpec
    public let inputShape: FrameShape
    public let outputShape: FrameShape
    public let totalFrames: Int
    public let temporal: TemporalOperator?
    public let spatial: [FrameOperator]
    /// Frame shapes along the spatial chain: shapes[0] = input, shapes.last = output.
    private let shapes: [FrameShape]
    /// Scratch vectors by name, frame count and scalar type.
    private var scratch: [String: AnyObject] = [:]

    /// The frames this operator covers: the whole video, or a temporal segment of it.
    public let window: VideoWindow

    public convenience init(spec: DegradationSpec, frame: FrameShape, totalFrames: Int, maskSeed: UInt64 = 0) throws {
        try self.init(spec: spec, frame: frame, window: .whole(totalFrames), maskSeed: maskSeed)
    }

    /// The operator of a window of the video (a temporal segment): see `TemporalOperator`.
    public init(spec: DegradationSpec, frame: FrameShape, window: VideoWindow, maskSeed: UInt64 = 0) throws {
        self.spec = spec
        self.inputShape = frame
        self.totalFrames = window.frames
        self.window = window
        if let k = try spec.temporalKernel() { temporal = TemporalOperator(kernel: k, window: window) } else { temporal = nil }
        spatial = spec.spatialOperators(maskSeed: maskSeed)
        var s = [frame]
        for op in spatial { s.append(try op.outputShape(for: s.last!)) }
        shapes = s
        outputShape = s.last!
    }

    public func makeOutput<S>(frames: Int, _: S.Type = Double.self) -> DenseTensor<S> {
        DenseTensor<S>(shape: [frames, outputShape.channels, outputShape.height, outputShape.width])
    }

    public func makeInput<S>(frames: Int, _: S.Type = Double.self) -> DenseTensor<S> {
        DenseTensor<S>(shape: [frames, inputShape.channels, inputShape.height, inputShape.width])
    }

    private func buffer<S: BinaryFloatingPoint>(_ name: String, frames: Int, shape: FrameShape, _: S.Type) -> DenseTensor<S> {
        let key = "\(name)/\(frames)/\(S.self)"
        if let t = scratch[key] as? DenseTensor<S> { return t }
        let t = DenseTensor<S>(shape: [frames, shape.channels, shape.height, shape.width])
        scratch[key] = t
        return t
    }

    /// y ← A x on this rank's frames. The temporal operator mixes frames with the same weights
    /// at every pixel and the spatial chain treats every frame alike, so they commute:
    /// A = S ∘ Tm = Tm ∘ S. Applying the spatial chain first runs the temporal operator (and its
    /// exchange of boundary frames between ranks) on measurement-size frames: a sixteenth of
    /// the work and the traffic under ×4 SR (issue 31: the temporal operator was a quarter of
    /// ADMM-TV's time on the demo's task).
    public func apply(_ x: Tensor64, into y: Tensor64, _ d: Distribution) { forward(x, into: y, d) }

    /// x ← Aᵀ y on this rank's frames (Aᵀ = Sᵀ ∘ Tmᵀ: the temporal adjoint on measurement-size
    /// frames, then the spatial chain's adjoint).
    public func adjoint(_ y: Tensor64, into x: Tensor64, _ d: Distribution) { backward(y, into: x, d) }

    /// A and Aᵀ in float32 (ADMM-TV's warm start).
    public func apply(_ x: Tensor, into y: Tensor, _ d: Distribution) { forward(x, into: y, d) }
    public func adjoint(_ y: Tensor, into x: Tensor, _ d: Distribution) { backward(y, into: x, d) }

    private func forward<S: OperatorScalar>(_ x: DenseTensor<S>, into y: DenseTensor<S>, _ d: Distribution) {
        guard let tm = temporal else { applySpatial(x, into: y, adjoint: false); return }
        if spatial.isEmpty { tm.run(x, into: y, d, adjoint: false); return }   // no scratch needed
        let t = buffer("spatial", frames: x.frames, shape: outputShape, S.self)
        applySpatial(x, into: t, adjoint: false)
        tm.run(t, into: y, d, adjoint: false)
    }

    private func backward<S: OperatorScalar>(_ y: DenseTensor<S>, into x: DenseTensor<S>, _ d: Distribution) {
        guard let tm = temporal else { applySpatial(y, into: x, adjoint: true); return }
        if spatial.isEmpty { tm.run(y, into: x, d, adjoint: true); return }
        let t = buffer("spatial", frames: y.frames, shape: outputShape, S.self)
        tm.run(y, into: t, d, adjoint: true)
        applySpatial(t, into: x, adjoint: true)
    }

    /// x ← Aᵀ y for a float32 measurement y (converted exactly into a measurement-size
    /// scratch vector, the one `normal` uses between A and Aᵀ).
    public func adjoint(measurement y: Tensor, into x: Tensor64, _ d: Distribution) {
        let y64 = buffer("normal", frames: y.frames, shape: outputShape, Double.self)
        let src = y.data, dst = y64.data
        Parallel.forEachChunk(y.count) { s, e in for i in s..<e { dst[i] = Double(src[i]) } }
        adjoint(y64, into: x, d)
    }

    /// The measurement-size scratch vector (free between operator calls): for a caller that
    /// needs one A x briefly (a residual) without allocating.
    public func measurementScratch(frames: Int) -> Tensor64 { buffer("normal", frames: frames, shape: outputShape, Double.self) }

    /// Frees the scratch vectors (before a segment of another length, or when done).
    public func releaseScratch() { scratch.removeAll() }

    /// out ← AᵀA x.
    public func normal(_ x: Tensor64, into out: Tensor64, _ d: Distribution) { normalOperator(x, into: out, d) }

    /// out ← AᵀA x in float32.
    public func normal(_ x: Tensor, into out: Tensor, _ d: Distribution) { normalOperator(x, into: out, d) }

    private func normalOperator<S: OperatorScalar>(_ x: DenseTensor<S>, into out: DenseTensor<S>, _ d: Distribution) {
        let y = buffer("normal", frames: x.frames, shape: outputShape, S.self)
        forward(x, into: y, d)
        backward(y, into: out, d)
    }

    /// The spatial chain (or its reverse adjoint chain) frame by frame, in parallel over frames.
    private func applySpatial<S: OperatorScalar>(_ src: DenseTensor<S>, into dst: DenseTensor<S>, adjoint: Bool) {
        if spatial.isEmpty { dst.copy(from: src); return }
        let frames = src.frames
        let maxCount = shapes.map(\.count).max()!
        Parallel.forEach(frames) { f in
            let a = UnsafeMutablePointer<S>.allocate(capacity: maxCount)
            let b = UnsafeMutablePointer<S>.allocate(capacity: maxCount)
            defer { a.deallocate(); b.deallocate() }
            var cur = UnsafePointer(src.frame(f))
            let n = spatial.count
            for step in 0..<n {
                let i = adjoint ? n - 1 - step : step
                let out = step == n - 1 ? dst.frame(f) : (step % 2 == 0 ? a : b)
                S.run(spatial[i], cur, out, input: shapes[i], adjoint: adjoint)
                cur = UnsafePointer(out)
            }
        }
    }

    /// A simulated measurement y = A x + σ_y·w (float32 in and out) with w drawn from
    /// (seed, measurement) at the global element index, so it does not depend on the partition.
    public func measure(_ x: Tensor, _ d: Distribution, noiseSeed: UInt64) -> Tensor {
        let y64: Tensor64 = makeOutput(frames: x.frames)
        apply(Tensor64(converting: x), into: y64, d)
        let y = Tensor(converting: y64)
        if spec.noiseSigma > 0 {
            let n = Tensor(shape: y.shape)
            let stream = RandomStream(seed: noiseSeed, purpose: .measurement)
            stream.normals(offset: d.localRange.lowerBound * y.frameSize, count: y.count, into: n.data)
            Kernels.axpy(y.data, Float(spec.noiseSigma), n.data, y.count)
        }
        return y
    }
}

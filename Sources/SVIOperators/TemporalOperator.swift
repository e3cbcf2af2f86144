import Foundation
import SVICore
import SVIContracts
import SVIFormats

/// Temporal convolution of every pixel's time series (frame averaging / motion-time blur),
/// DESIGN §3: y[t] = Σ_j w[j] · x[map(t + j − h)], h = ⌊k/2⌋, map = the boundary rule.
///
/// The operator is held as explicit taps (source frame, weight) per output frame, merged when
/// a boundary folds two taps onto one frame. The adjoint's taps are the exact transpose of the
/// forward taps, so both boundaries (and videos shorter than the kernel) are exact.
public struct TemporalKernel: Sendable, Equatable {
    public let weights: [Double]
    public let boundary: TemporalBoundary
    public var width: Int { weights.count }
    public var halo: Int { weights.count / 2 }

    /// Box of odd width k: the mean of the k frames centred on t.
    public static func uniform(_ k: Int, boundary: TemporalBoundary) throws -> TemporalKernel {
        guard k >= 1, k % 2 == 1 else { throw SVIError("temporal uniform width must be a positive odd number, got \(k)") }
        return TemporalKernel(weights: [Double](repeating: 1 / Double(k), count: k), boundary: boundary)
    }

    /// Normalised Gaussian over 2⌈3σ⌉+1 frames.
    public static func gaussian(_ sigma: Double, boundary: TemporalBoundary) throws -> TemporalKernel {
        guard sigma > 0, sigma.isFinite else { throw SVIError("temporal gaussian σ must be positive, got \(sigma)") }
        let r = Int((3 * sigma).rounded(.up))
        let w = (-r...r).map { exp(-Double($0 * $0) / (2 * sigma * sigma)) }
        let s = w.reduce(0, +)
        return TemporalKernel(weights: w.map { $0 / s }, boundary: boundary)
    }

    public init(weights: [Double], boundary: TemporalBoundary) {
        self.weights = weights; self.boundary = boundary
    }

    @inline(__always) func map(_ i: Int, _ T: Int) -> Int {
        switch boundary {
        case .circular: let m = i % T; return m < 0 ? m + T : m
        case .replicate: return min(max(i, 0), T - 1)
        }
    }

    /// Taps of output frame t of a T-frame video: (source frame, weight), sources ascending.
    public func forwardTaps(_ t: Int, frames T: Int) -> [(Int, Double)] {
        var acc: [Int: Double] = [:]
        for j in 0..<width { acc[map(t + j - halo, T), default: 0] += weights[j] }
        return acc.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// Taps of the adjoint for output frame s: the transpose of the forward taps.
    public func adjointTaps(_ s: Int, frames T: Int) -> [(Int, Double)] {
        var acc: [Int: Double] = [:]
        for t in 0..<T { for (src, w) in forwardTaps(t, frames: T) where src == s { acc[t, default: 0] += w } }
        return acc.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}

/// Which frames of a video a problem covers: frames [start, start + frames) of a video of
/// `videoFrames` frames (a temporal segment), or the whole video.
public struct VideoWindow: Sendable, Equatable {
    public let start: Int
    public let frames: Int
    public let videoFrames: Int
    public init(start: Int, frames: Int, videoFrames: Int) {
        precondition(start >= 0 && frames >= 1 && start + frames <= videoFrames)
        self.start = start; self.frames = frames; self.videoFrames = videoFrames
    }
    public static func whole(_ frames: Int) -> VideoWindow { VideoWindow(start: 0, frames: frames, videoFrames: frames) }
    public var isWhole: Bool { start == 0 && frames == videoFrames }
    public var range: Range<Int> { start..<(start + frames) }
}

/// Applies a `TemporalKernel` (or its adjoint) to a video distributed in frame blocks,
/// fetching halo frames through the communicator before every application (DESIGN §6).
/// Tap tables are computed once per video length.
///
/// On a window of a longer video (a temporal segment) every measured frame of the window is
/// kept; a tap that reaches past the window's edge reads the window's edge frame instead
/// (replicate at the segment's edges — the video's own boundary rule still applies at the
/// video's ends). Leaving such rows out instead left the segment's problem with a null space
/// (slowly decaying or, for a box blur, periodic patterns spanning the segment) that CG and a
/// per-frame prior fill badly: on carphone (Gaussian σ = 1, 25-frame window) CG reached 5 dB
/// with rows left out and 32 dB at the edge rising to 77 dB inside with replicated edges. The
/// error stays near the edges, where the cross-fade gives the segment little weight. On the
/// whole video nothing changes.
public final class TemporalOperator: @unchecked Sendable {
    public let kernel: TemporalKernel
    public let totalFrames: Int
    public let window: VideoWindow
    private let forward: [[(Int, Double)]]
    private let transpose: [[(Int, Double)]]

    public convenience init(kernel: TemporalKernel, totalFrames: Int) {
        self.init(kernel: kernel, window: .whole(totalFrames))
    }

    public init(kernel: TemporalKernel, window: VideoWindow) {
        self.kernel = kernel
        self.totalFrames = window.frames
        self.window = window
        let a = window.start, range = window.range
        let last = a + window.frames - 1
        forward = (0..<window.frames).map { i in
            let t = a + i
            var acc: [Int: Double] = [:]
            for j in 0..<kernel.width {
                let raw = t + j - kernel.halo
                var g = kernel.map(raw, window.videoFrames)
                if !range.contains(g) { g = raw < t ? a : last }
                acc[g - a, default: 0] += kernel.weights[j]
            }
            return acc.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        }
        var tr = [[(Int, Double)]](repeating: [], count: window.frames)
        for (t, taps) in forward.enumerated() { for (s, w) in taps { tr[s].append((t, w)) } }
        transpose = tr
    }

    /// Rows of the window's operator that read a replicated edge frame instead of a frame
    /// outside the window (none on the whole video).
    public var edgeRows: [Int] {
        (0..<totalFrames).filter { i in
            let t = window.start + i
            return (0..<kernel.width).contains { j in !window.range.contains(kernel.map(t + j - kernel.halo, window.videoFrames)) }
        }
    }

    /// out ← Tm x (adjoint: Tmᵀ x) on this rank's frames.
    public func apply(_ x: Tensor64, into out: Tensor64, _ d: Distribution, adjoint: Bool = false) {
        run(x, into: out, d, adjoint: adjoint)
    }

    /// The same in float32 (ADMM-TV's warm start).
    public func apply(_ x: Tensor, into out: Tensor, _ d: Distribution, adjoint: Bool = false) {
        run(x, into: out, d, adjoint: adjoint)
    }

    // Specialised here for both scalars: the generic operator chain calls it from another file,
    // which debug builds (no whole-module optimisation) would otherwise run through witness
    // tables, ~40× slower (what the end-to-end tests run).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    func run<S: BinaryFloatingPoint>(_ x: DenseTensor<S>, into out: DenseTensor<S>, _ d: Distribution, adjoint: Bool) {
        let taps = adjoint ? transpose : forward   // weights float64, converted where used
        let table = d.comm.fetchFrames(of: x, partition: d.partition) { r in
            var need = Set<Int>()
            for t in d.partition.range(of: r) { for (s, _) in taps[t] { need.insert(s) } }
            return need.sorted()
        }
        let local = d.localRange, n = x.frameSize
        Parallel.forEachChunk(n, grain: 4096) { s, e in
            for (i, t) in local.enumerated() {
                let o = out.frame(i)
                guard let first = taps[t].first else {
                    for k in s..<e { o[k] = 0 }             // a row left out of a segment
                    continue
                }
                let p0 = table[first.0], w0 = S(first.1)
                for k in s..<e { o[k] = w0 * p0[k] }
                for (src, weight) in taps[t].dropFirst() {
                    let p = table[src], w = S(weight)
                    for k in s..<e { o[k] += w * p[k] }
                }
            }
        }
    }
}

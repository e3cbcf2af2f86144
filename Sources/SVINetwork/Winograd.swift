import Foundation
import SVICore
import SVIFormats
import CKernels

/// Winograd F(4×4, 3×3) (Lavin & Gray, 2016) for stride-1, pad-1 3×3 convolutions:
/// Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A per 6×6 input tile / 4×4 output tile. The 36 element-wise
/// products over channels become 36 GEMMs [Cout×Cin]·[Cin×tiles], a quarter of the direct
/// method's multiplications. Weights are transformed once (in float64) when the layer loads.
final class Winograd43 {
    static let g: [[Double]] = [
        [1.0 / 4, 0, 0],
        [-1.0 / 6, -1.0 / 6, -1.0 / 6],
        [-1.0 / 6, 1.0 / 6, -1.0 / 6],
        [1.0 / 24, 1.0 / 12, 1.0 / 6],
        [1.0 / 24, -1.0 / 12, 1.0 / 6],
        [0, 0, 1],
    ]

    let cin: Int, cout: Int
    let weight: Tensor
    /// U[ξ][co][ci], ξ = 0..<36, kept when small (≤ `cacheLimitBytes`); larger layers (the
    /// deep, wide ones) transform into a shared scratch buffer on each call, which keeps the
    /// model's memory near its weights' size (the transform costs < 10% of such a layer's GEMMs).
    private var cached: UnsafeMutablePointer<Float>?
    static let cacheLimitBytes = 20 << 20
    /// Below this many 4×4 tiles per image the GEMMs are too thin (N = tiles) to pay for the
    /// 4× larger transformed weights: such layers (≤ 16×16 frames) use im2col + GEMM.
    static let minimumTiles = 64

    init(weight: Tensor, cin: Int, cout: Int) {
        self.cin = cin; self.cout = cout; self.weight = weight
        if 36 * cout * cin * 4 <= Winograd43.cacheLimitBytes {
            let u = UnsafeMutablePointer<Float>.allocate(capacity: 36 * cout * cin)
            transformWeights(into: u)
            cached = u
        }
    }

    deinit { cached?.deallocate() }

    /// U[ξ] in bf16 for `--precision bf16`, kept under the same size bound as `cached`.
    private var cachedBF16: [PackedBF16]?

    /// U[ξ] packed in bf16, one matrix [cout][cin] per ξ: the kept copy, or fresh ones.
    private func transformedBF16() -> [PackedBF16] {
        if let c = cachedBF16 { return c }
        let u = transformed(), cout = self.cout, cin = self.cin
        let packed = (0..<36).map { xi in PackedBF16(u + xi * cout * cin, m: cout, k: cin, lda: cin) }
        if 36 * cout * cin * 2 <= Winograd43.cacheLimitBytes { cachedBF16 = packed }
        return packed
    }

    /// U = G g Gᵀ for every (co, ci), computed in float64.
    private func transformWeights(into uu: UnsafeMutablePointer<Float>) {
        let w = weight.data, g = Winograd43.g, cin = self.cin, cout = self.cout
        Parallel.forEach(cout) { co in
            var t = [Double](repeating: 0, count: 18)
            for ci in 0..<cin {
                let k = w + (co * cin + ci) * 9
                for i in 0..<6 { for j in 0..<3 { t[i * 3 + j] = g[i][0] * Double(k[j]) + g[i][1] * Double(k[3 + j]) + g[i][2] * Double(k[6 + j]) } }
                for i in 0..<6 { for j in 0..<6 {
                    let v = t[i * 3] * g[j][0] + t[i * 3 + 1] * g[j][1] + t[i * 3 + 2] * g[j][2]
                    uu[((i * 6 + j) * cout + co) * cin + ci] = Float(v)
                } }
            }
        }
    }

    /// Transformed weights: the cached copy, or a fresh transform in the shared scratch.
    private func transformed() -> UnsafeMutablePointer<Float> {
        if let c = cached { return c }
        let u = WinogradScratch.buffer(36 * cout * cin)
        transformWeights(into: u)
        return u
    }

    /// y[f][co] (+)= conv(x[f])[co] + bias[co] for `frames` images [cin][h][w] → [cout][h][w]
    /// stored one after the other.
    ///
    /// Tiles are laid on a grid whose rows are padded to a multiple of 8 tiles, so the
    /// transforms work on 8 or 16 tiles at a time in vector registers; blocks of whole tile rows
    /// bound the transformed data (V, M ≤ 32 MB each, in buffers shared by all layers). The
    /// weights are transformed once per call for all frames, but each frame is cut into the same
    /// blocks as when it comes alone: GEMM shapes (and so every rounding) never depend on the
    /// batch, which keeps restorations identical at any MPI rank count (frames per rank vary).
    func forward(_ x: UnsafePointer<Float>, frames: Int, h: Int, w: Int, bias: UnsafePointer<Float>,
                 into y: UnsafeMutablePointer<Float>, accumulate: Bool, options: NetworkOptions) {
        // The scratch buffers are shared: one Winograd convolution at a time per process
        // (each one already uses every core).
        WinogradScratch.lock.lock()
        defer { WinogradScratch.lock.unlock() }
        let th = (h + 3) / 4, tw = (w + 3) / 4, tw8 = (tw + 7) / 8 * 8
        let bf16 = options.precision == .bf16
        // The 36 products by svi_small_gemm up to `smallGEMMChannels` input channels (the
        // embedded prior's levels), by OpenBLAS above (ADM-256's wide layers).
        let small = cin <= options.smallGEMMChannels
        if small && options.winogradFusedBytes > 0 {
            return forwardFused(x, frames: frames, h: h, w: w, bias: bias, into: y, accumulate: accumulate, options: options)
        }
        let smallScratch = svi_small_gemm_scratch_floats(cin) * 4
        let ub = bf16 ? transformedBF16() : []
        let u = bf16 ? nil : transformed()
        // Blocks small enough that V and M stay in cache between the transforms and the GEMMs
        // (few channels), but never GEMMs thinner than the network's minimum (wide layers).
        let rowsPerBlock = max(1, min(th, max(options.winogradBlockFloats / (36 * max(cin, cout) * tw8),
                                              (options.winogradMinimumColumns + tw8 - 1) / tw8)))
        let v = WinogradScratch.v(36 * cin * rowsPerBlock * tw8)
        let m = WinogradScratch.m(36 * cout * rowsPerBlock * tw8)
        for f in 0..<frames {
            var ty0 = 0
            while ty0 < th {
                let rows = min(rowsPerBlock, th - ty0), n = rows * tw8
                let xf = x + f * cin * h * w, yf = y + f * cout * h * w
                Profiler.measure(.winogradTransforms, flops: 0) {
                    inputTransform(xf, h: h, w: w, tw8: tw8, firstRow: ty0, rows: rows, into: v)
                }
                // 36 independent GEMMs: whole ones per thread (one synchronisation, not 36); with
                // OpenBLAS's threading, one after the other, each on its threads.
                _ = GEMMThreading.configured
                let gemm = { [cout = self.cout, cin = self.cin] (xi: Int) in
                    if let u, small {
                        // Few channels: svi's own kernel (no packing of U, no zeroing of M).
                        let scratch = BufferPool.take(bytes: smallScratch)
                        defer { BufferPool.give(scratch, bytes: smallScratch) }
                        svi_small_gemm(cout, n, cin, u + xi * cout * cin, cin, v + xi * cin * n, n, m + xi * cout * n, n, 0,
                                       scratch.assumingMemoryBound(to: Float.self))
                    } else if let u {
                        sgemmSerial(m: cout, n: n, k: cin, a: u + xi * cout * cin, lda: cin, b: v + xi * cin * n, ldb: n,
                                    beta: 0, c: m + xi * cout * n, ldc: n)
                    } else {
                        bf16gemmSerial(ub[xi], n: n, b: v + xi * cin * n, ldb: n, c: m + xi * cout * n, ldc: n, accumulate: false)
                    }
                }
                if GEMMThreading.ownThreads { Parallel.forEach(36, gemm) } else { (0..<36).forEach(gemm) }
                Profiler.measure(.winogradTransforms, flops: 0) {
                    outputTransform(m, h: h, w: w, tw8: tw8, firstRow: ty0, rows: rows, bias: bias, into: yf, accumulate: accumulate)
                }
                ty0 += rows
            }
        }
    }

    /// `forward` for few channels: each thread takes whole blocks of tile rows and runs all three
    /// stages on one (input transform of every channel, the 36 products, output transform), so
    /// V and M stay in that core's cache instead of round trips through the last-level cache
    /// between stages, with no synchronisation between them (the transforms were 29 % of the
    /// embedded prior's pass, bound by those round trips). The bits are those of the blocked
    /// path: each value of V, M and y is computed by the same kernels in the same order;
    /// svi_small_gemm and svi_bf16_gemm sum every element over k in order, whatever the width
    /// of the block of columns.
    private func forwardFused(_ x: UnsafePointer<Float>, frames: Int, h: Int, w: Int, bias: UnsafePointer<Float>,
                              into y: UnsafeMutablePointer<Float>, accumulate: Bool, options: NetworkOptions) {
        let th = (h + 3) / 4, tw = (w + 3) / 4, tw8 = (tw + 7) / 8 * 8
        let cin = self.cin, cout = self.cout
        let bf16 = options.precision == .bf16
        let ub = bf16 ? transformedBF16() : []
        let u = bf16 ? nil : transformed()
        let rowsPerBlock = max(1, min(th, options.winogradFusedBytes / (4 * 36 * (cin + cout) * tw8)))
        let blocksPerFrame = (th + rowsPerBlock - 1) / rowsPerBlock
        let nMax = rowsPerBlock * tw8, lp = 4 * tw8 + 32
        let vFloats = 36 * cin * nMax, mFloats = 36 * cout * nMax
        let gemmScratch = svi_small_gemm_scratch_floats(cin)
        let bytes = 4 * (vFloats + mFloats + 12 * lp + gemmScratch)
        let blocks = frames * blocksPerFrame
        let workers = min(Parallel.threads, blocks)
        let profile = Profiler.current, timing = profile?.timing == true
        func now() -> UInt64 { timing ? DispatchTime.now().uptimeNanoseconds : 0 }
        Parallel.forEachChunk(blocks, grain: 1) { first, end in
            let raw = BufferPool.take(bytes: bytes)
            defer { BufferPool.give(raw, bytes: bytes) }
            let v = raw.assumingMemoryBound(to: Float.self), m = v + vFloats
            let staging = m + mFloats, scratch = staging + 12 * lp
            var transformSeconds = 0.0
            for block in first..<end {
                let f = block / blocksPerFrame, ty0 = (block % blocksPerFrame) * rowsPerBlock
                let rows = min(rowsPerBlock, th - ty0), n = rows * tw8
                let xf = x + f * cin * h * w, yf = y + f * cout * h * w
                let t0 = now()
                for ci in 0..<cin { svi_winograd_input(xf, cin, ci, h, w, tw8, ty0, rows, v, staging) }
                let t1 = now()
                for xi in 0..<36 {
                    if let u {
                        svi_small_gemm(cout, n, cin, u + xi * cout * cin, cin, v + xi * cin * n, n, m + xi * cout * n, n, 0, scratch)
                    } else {
                        bf16gemmSerial(ub[xi], n: n, b: v + xi * cin * n, ldb: n, c: m + xi * cout * n, ldc: n, accumulate: false)
                    }
                }
                let t2 = now()
                for co in 0..<cout {
                    svi_winograd_output(m, cout, co, h, w, tw8, ty0, rows, bias[co], yf, accumulate ? 1 : 0)
                }
                transformSeconds += Double(t1 - t0 + now() - t2) * 1e-9
            }
            // Thread-seconds shared by the workers: an estimate of the wall time they take.
            profile?.charge(.winogradTransforms, seconds: transformSeconds / Double(workers), flops: 0)
        }
    }

    /// V[ξ][ci][p] = (Bᵀ d B)[ξ] for the tiles of `rows` tile rows of one frame, zero
    /// padding outside the frame: rows first (Bᵀ along y, vectorised along x), then columns
    /// (B along x) for 8 or 16 tiles at once (C kernel, AVX2 or AVX-512 chosen at run time).
    private func inputTransform(_ x: UnsafePointer<Float>, h: Int, w: Int, tw8: Int, firstRow: Int, rows: Int,
                                into v: UnsafeMutablePointer<Float>) {
        let cin = self.cin
        let lp = 4 * tw8 + 32
        Parallel.forEach(cin) { ci in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 12 * lp)
            defer { scratch.deallocate() }
            svi_winograd_input(x, cin, ci, h, w, tw8, firstRow, rows, v, scratch)
        }
    }

    /// y tile = Aᵀ M A + bias for 8 or 16 tiles at a time, cropped at the frame edge (C kernel).
    private func outputTransform(_ m: UnsafePointer<Float>, h: Int, w: Int, tw8: Int, firstRow: Int, rows: Int,
                                 bias: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let cout = self.cout
        Parallel.forEach(cout) { co in
            svi_winograd_output(m, cout, co, h, w, tw8, firstRow, rows, bias[co], y, accumulate ? 1 : 0)
        }
    }
}

/// Growable buffers shared by every Winograd layer (layers run one at a time): transformed
/// weights made on the fly, and the transformed input V and products M. Reusing them avoids
/// fresh pages (and their faults) on every call.
enum WinogradScratch {
    final class Buffer: @unchecked Sendable {
        var storage: UnsafeMutablePointer<Float>?
        var capacity = 0
        func get(_ count: Int) -> UnsafeMutablePointer<Float> {
            if count > capacity {
                storage?.deallocate()
                storage = .allocate(capacity: count)
                capacity = count
            }
            return storage!
        }
    }
    static let weights = Buffer(), input = Buffer(), product = Buffer()
    static let lock = NSLock()

    static func buffer(_ count: Int) -> UnsafeMutablePointer<Float> { weights.get(count) }
    static func v(_ count: Int) -> UnsafeMutablePointer<Float> { input.get(count) }
    static func m(_ count: Int) -> UnsafeMutablePointer<Float> { product.get(count) }
}

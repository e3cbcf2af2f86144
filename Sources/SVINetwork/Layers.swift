import Foundation
import SVICore
import CKernels
import SVIFormats
import CBLAS

/// Who parallelises a GEMM. By default svi does: OpenBLAS runs one thread per call and svi
/// splits each GEMM (or hands whole GEMMs, as Winograd's 36) to its own worker threads. That
/// keeps one set of threads in the process: OpenBLAS's own pool busy-waits, and next to svi's
/// workers or another process on the same cores it ran ~10× slower (measured: the embedded
/// prior at 176×144, batch 4, 9.7 s per pass with 2 OpenBLAS threads under load vs 0.9 s with
/// one). `SVI_GEMM_THREADS=openblas` restores OpenBLAS's threading, for comparison.
public enum GEMMThreading {
    public static let ownThreads = ProcessInfo.processInfo.environment["SVI_GEMM_THREADS"] != "openblas"
    /// Blocks per GEMM: the cores this process may use, fixed for its lifetime (fewer threads
    /// just take several blocks each).
    public static let parts = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// The OpenBLAS thread count that goes with `ownThreads` (set once per process and again
    /// whenever `--threads` changes `Parallel.threads`).
    public static func configureBLAS() {
        openblas_set_num_threads(Int32(ownThreads ? 1 : Parallel.threads))
    }
    static let configured: Void = configureBLAS()
}

/// One OpenBLAS call on the calling thread (row-major).
@inline(__always)
func sgemmSerial(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                 a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                 beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// C ← alpha·op(A)·op(B) + beta·C, row-major, over all threads: C in `GEMMThreading.parts`
/// contiguous blocks of columns (or, for a narrow C, of rows), each one serial OpenBLAS call.
/// The partition depends on the machine's core count only, not on --threads or on a thread
/// count changed at run time, so a process's results are bit-identical from call to call.
func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
           a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
           beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    _ = GEMMThreading.configured
    let t = GEMMThreading.ownThreads ? GEMMThreading.parts : 1
    let worthSplitting = t > 1 && Double(m) * Double(n) * Double(k) >= 4e6
    if worthSplitting && n >= 64 * t {
        let per = ((n + t - 1) / t + 15) / 16 * 16   // whole 64-byte lines per block
        Parallel.forEach(t) { i in
            let j0 = i * per, nn = min(per, n - j0)
            if nn > 0 {
                sgemmSerial(transA: transA, transB: transB, m: m, n: nn, k: k, alpha: alpha, a: a, lda: lda,
                            b: transB ? b + j0 * ldb : b + j0, ldb: ldb, beta: beta, c: c + j0, ldc: ldc)
            }
        }
    } else if worthSplitting && m >= 16 * t {
        let per = (m + t - 1) / t
        Parallel.forEach(t) { i in
            let i0 = i * per, mm = min(per, m - i0)
            if mm > 0 {
                sgemmSerial(transA: transA, transB: transB, m: mm, n: n, k: k, alpha: alpha,
                            a: transA ? a + i0 : a + i0 * lda, lda: lda, b: b, ldb: ldb, beta: beta, c: c + i0 * ldc, ldc: ldc)
            }
        }
    } else {
        sgemmSerial(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }
}

/// Fills each of `rows` rows of length `n` with `bias[row]` (the starting C of a GEMM whose
/// result gets a per-output-channel bias).
func fillRows(_ c: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, rows: Int, n: Int, ldc: Int) {
    Parallel.forEach(rows) { r in (c + r * ldc).update(repeating: bias[r], count: n) }
}

/// 2-D convolution (square kernel, zero padding) as GEMM: 1×1 directly on the activations,
/// k×k over an im2col buffer built one band of output rows at a time (bounded memory).
final class Conv2d {
    let cin: Int, cout: Int, k: Int, stride: Int, pad: Int
    let weight: Tensor   // [cout][cin·k·k]
    let bias: Tensor
    /// The fast path for stride-1 3×3 layers, made on first use.
    private var winograd: Winograd43?
    /// The network's settings (precision, kernels, block sizes).
    let options: NetworkOptions
    /// The weights in bf16, packed for the bf16 GEMM, made on first use in bf16.
    private var packedBF16: PackedBF16?

    /// `conv1d`: the checkpoint stores a 1-D convolution ([cout, cin, 1]), as attention's qkv
    /// and proj_out are.
    init(_ p: ParameterSource, _ name: String, cin: Int, cout: Int, k: Int, stride: Int = 1, conv1d: Bool = false) {
        self.cin = cin; self.cout = cout; self.k = k; self.stride = stride; self.pad = k / 2
        options = p.options
        weight = p.take(name + ".weight", conv1d ? [cout, cin, 1] : [cout, cin, k, k])
        bias = p.take(name + ".bias", [cout])
    }

    func outputSize(_ h: Int, _ w: Int) -> (Int, Int) { ((h + 2 * pad - k) / stride + 1, (w + 2 * pad - k) / stride + 1) }

    /// out ← conv(x) (+ out when `accumulate`, which fuses a residual sum into the GEMM).
    func forward(_ x: Tensor, into out: Tensor? = nil, accumulate: Bool = false) -> Tensor {
        let b = x.shape[0], h = x.shape[2], w = x.shape[3]
        precondition(x.shape[1] == cin, "conv expects \(cin) channels, got \(x.shape[1])")
        let (ho, wo) = outputSize(h, w)
        let flops = 2.0 * Double(b * cout * cin * k * k * ho * wo)
        return Profiler.measure(k == 1 ? .conv1x1 : .conv3x3, flops: flops) {
            gemmForward(x, into: out, accumulate: accumulate, b: b, h: h, w: w, ho: ho, wo: wo)
        }
    }

    private func gemmForward(_ x: Tensor, into out: Tensor?, accumulate: Bool, b: Int, h: Int, w: Int, ho: Int, wo: Int) -> Tensor {
        let y = out ?? Tensor(shape: [b, cout, ho, wo], zeroed: false)
        let plane = ho * wo
        let bf16 = options.precision == .bf16
        if k == 3 && stride == 1 && !options.referenceKernels && ((h + 3) / 4) * ((w + 3) / 4) >= Winograd43.minimumTiles {
            if winograd == nil { winograd = Winograd43(weight: weight, cin: cin, cout: cout) }
            winograd!.forward(x.data, frames: b, h: h, w: w, bias: bias.data, into: y.data, accumulate: accumulate, options: options)
            return y
        }
        if bf16 && packedBF16 == nil { packedBF16 = PackedBF16(weight.data, m: cout, k: cin * k * k, lda: cin * k * k) }
        for i in 0..<b {
            let xi = UnsafePointer(x.frame(i)), yi = y.frame(i)
            if accumulate {
                Parallel.forEach(cout) { r in let row = yi + r * plane; let v = bias[r]; for j in 0..<plane { row[j] += v } }
            } else {
                fillRows(yi, bias: bias.data, rows: cout, n: plane, ldc: plane)
            }
            if k == 1 && stride == 1 {
                if let a = packedBF16, bf16 {
                    bf16gemm(a, n: plane, b: xi, ldb: plane, c: yi, ldc: plane, accumulate: true)
                } else {
                    sgemm(m: cout, n: plane, k: cin, a: weight.data, lda: cin, b: xi, ldb: plane, beta: 1, c: yi, ldc: plane)
                }
                continue
            }
            let kk = cin * k * k
            let band = max(1, min(ho, (1 << 22) / max(1, kk * wo)))   // ≤ 16 MB of im2col per band
            let colBytes = kk * band * wo * 4
            let col = BufferPool.take(bytes: colBytes).bindMemory(to: Float.self, capacity: kk * band * wo)
            defer { BufferPool.give(UnsafeMutableRawPointer(col), bytes: colBytes) }
            var y0 = 0
            while y0 < ho {
                let rows = min(band, ho - y0), n = rows * wo
                im2col(xi, h: h, w: w, y0: y0, rows: rows, wo: wo, col: col)
                if let a = packedBF16, bf16 {
                    bf16gemm(a, n: n, b: col, ldb: n, c: yi + y0 * wo, ldc: plane, accumulate: true)
                } else {
                    sgemm(m: cout, n: n, k: kk, a: weight.data, lda: kk, b: col, ldb: n, beta: 1, c: yi + y0 * wo, ldc: plane)
                }
                y0 += rows
            }
        }
        return y
    }

    /// col[(c·k + ky)·k + kx][r·wo + ox] = x[c][(y0+r)·s + ky − pad][ox·s + kx − pad] (0 outside).
    private func im2col(_ x: UnsafePointer<Float>, h: Int, w: Int, y0: Int, rows: Int, wo: Int, col: UnsafeMutablePointer<Float>) {
        let n = rows * wo, k = self.k, s = stride, pad = self.pad
        Parallel.forEach(cin) { c in
            let xc = x + c * h * w
            for ky in 0..<k { for kx in 0..<k {
                let dst = col + ((c * k + ky) * k + kx) * n
                for r in 0..<rows {
                    let iy = (y0 + r) * s + ky - pad
                    let d = dst + r * wo
                    if iy < 0 || iy >= h { d.update(repeating: 0, count: wo); continue }
                    let src = xc + iy * w
                    if s == 1 {
                        // ix = ox + kx − pad: a shifted copy with zero ends.
                        let lo = min(wo, max(0, pad - kx)), hi = min(wo, w + pad - kx)
                        if hi <= lo { d.update(repeating: 0, count: wo); continue }
                        if lo > 0 { d.update(repeating: 0, count: lo) }
                        (d + lo).update(from: src + lo + kx - pad, count: hi - lo)
                        if hi < wo { (d + hi).update(repeating: 0, count: wo - hi) }
                    } else {
                        for ox in 0..<wo {
                            let ix = ox * s + kx - pad
                            d[ox] = (ix >= 0 && ix < w) ? src[ix] : 0
                        }
                    }
                }
            } }
        }
    }
}

/// y = x·Wᵀ + b for a batch of row vectors.
final class Linear {
    let inFeatures: Int, outFeatures: Int
    let weight: Tensor, bias: Tensor

    init(_ p: ParameterSource, _ name: String, in i: Int, out o: Int) {
        inFeatures = i; outFeatures = o
        weight = p.take(name + ".weight", [o, i])
        bias = p.take(name + ".bias", [o])
    }

    func forward(_ x: Tensor) -> Tensor {
        let b = x.shape[0]
        return Profiler.measure(.linear, flops: 2.0 * Double(b * inFeatures * outFeatures)) { gemm(x, b) }
    }

    /// One GEMM per row (m = 1), never one for the whole batch: OpenBLAS picks its kernel and
    /// edge handling by m as well as by CPU, so a batched call rounded a frame's row differently
    /// at batch 1, 2 or 5 than at 3 or 4 on Zen/Haswell kernels (4e-5 in a restoration). The
    /// layer is a few kFLOP per frame; per-row calls cost nothing measurable.
    private func gemm(_ x: Tensor, _ b: Int) -> Tensor {
        let y = Tensor(shape: [b, outFeatures], zeroed: false)
        for r in 0..<b {
            let yr = y.frame(r)
            yr.update(from: bias.data, count: outFeatures)
            sgemm(transB: true, m: 1, n: outFeatures, k: inFeatures, a: UnsafePointer(x.frame(r)), lda: inFeatures,
                  b: weight.data, ldb: inFeatures, beta: 1, c: yr, ldc: outFeatures)
        }
        return y
    }
}

@inline(__always) func silu(_ v: Float) -> Float { v / (1 + exp(-v)) }

/// GroupNorm(32 groups, ε = 1e-5) with its affine parameters, optionally followed by the
/// ResBlock scale-shift (h·(1+scale) + shift, per image and channel) and SiLU — one pass
/// over the data after the statistics (statistics accumulate in float64).
final class GroupNorm {
    let channels: Int, groups = 32
    let gamma: Tensor, beta: Tensor
    static let eps = 1e-5

    init(_ p: ParameterSource, _ name: String, channels: Int) {
        self.channels = channels
        gamma = p.take(name + ".weight", [channels])
        beta = p.take(name + ".bias", [channels])
    }

    /// `scaleShift` is [B][2C] (scale then shift) when given. `inPlace` overwrites `x` (for
    /// inputs nobody reads afterwards: one activation less at the memory peak).
    func forward(_ x: Tensor, silu applySiLU: Bool, scaleShift: Tensor? = nil, inPlace: Bool = false) -> Tensor {
        Profiler.measure(.groupNorm, flops: Double(x.count) * (applySiLU ? 8 : 4)) { normalise(x, applySiLU, scaleShift, inPlace) }
    }

    private func normalise(_ x: Tensor, _ applySiLU: Bool, _ scaleShift: Tensor?, _ inPlace: Bool) -> Tensor {
        let b = x.shape[0], c = x.shape[1], plane = x.shape[2] * x.shape[3]
        precondition(c == channels && c % groups == 0)
        let y = inPlace ? x : Tensor(shape: x.shape, zeroed: false)
        let cg = c / groups
        let gsize = cg * plane
        Parallel.forEach(b * groups) { job in
            let i = job / groups, g = job % groups
            let src = UnsafePointer(x.frame(i)) + g * gsize, dst = y.frame(i) + g * gsize
            // Statistics: float32 vector partial sums over blocks of 1024, accumulated in float64.
            var s = 0.0, ss = 0.0
            var j = 0
            while j + 8 <= gsize {
                let end = min(gsize, j + 1024) & ~7
                var a = F8(), q = F8()
                while j < end { let v = F8.load(src + j); a += v; q += v * v; j += 8 }
                s += Double(a.sum()); ss += Double(q.sum())
            }
            while j < gsize { let v = Double(src[j]); s += v; ss += v * v; j += 1 }
            let mean = s / Double(gsize)
            let variance = max(ss / Double(gsize) - mean * mean, 0)
            let inv = 1 / (variance + GroupNorm.eps).squareRoot()
            for cc in 0..<cg {
                let ch = g * cg + cc
                var a = Float(inv) * gamma[ch]
                var o = beta[ch] - Float(mean) * a
                if let ssT = scaleShift {
                    let scale = ssT[i * 2 * c + ch], shift = ssT[i * 2 * c + c + ch]
                    a *= (1 + scale); o = o * (1 + scale) + shift
                }
                // One channel: a·x + o (and SiLU) in C, 16 lanes on AVX-512.
                svi_scale_shift_silu(src + cc * plane, dst + cc * plane, plane, a, o, applySiLU ? 1 : 0)
            }
        }
        return y
    }
}

/// Nearest-neighbour ×2 upsampling.
func upsampleNearest(_ x: Tensor) -> Tensor {
    Profiler.measure(.upDown, flops: 0) { upsampleNearestKernel(x) }
}

private func upsampleNearestKernel(_ x: Tensor) -> Tensor {
    let b = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    let y = Tensor(shape: [b, c, 2 * h, 2 * w], zeroed: false)
    Parallel.forEach(b * c) { p in
        let s = UnsafePointer(x.data) + p * h * w, d = y.data + p * 4 * h * w
        for yy in 0..<(2 * h) {
            let sr = s + (yy / 2) * w, dr = d + yy * 2 * w
            for xx in 0..<w { dr[2 * xx] = sr[xx]; dr[2 * xx + 1] = sr[xx] }
        }
    }
    return y
}

/// 2×2 average pooling, stride 2.
func averagePool2(_ x: Tensor) -> Tensor {
    Profiler.measure(.upDown, flops: Double(x.count)) { averagePool2Kernel(x) }
}

private func averagePool2Kernel(_ x: Tensor) -> Tensor {
    let b = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    let ho = h / 2, wo = w / 2
    let y = Tensor(shape: [b, c, ho, wo], zeroed: false)
    Parallel.forEach(b * c) { p in
        let s = UnsafePointer(x.data) + p * h * w, d = y.data + p * ho * wo
        for yy in 0..<ho { for xx in 0..<wo {
            let r0 = s + 2 * yy * w + 2 * xx, r1 = r0 + w
            d[yy * wo + xx] = 0.25 * (r0[0] + r0[1] + r1[0] + r1[1])
        } }
    }
    return y
}

import Foundation
import SVICore
import SVIFormats
import CKernels

/// guided-diffusion's ResBlock: GN→SiLU→(up/down)→conv, timestep embedding (added, or as
/// scale-shift on the second norm), GN→SiLU→conv, plus the (1×1 conv) skip.
final class ResBlock {
    enum Resample { case none, up, down }
    let inNorm: GroupNorm, inConv: Conv2d
    let emb: Linear
    let outNorm: GroupNorm, outConv: Conv2d
    let skip: Conv2d?
    let resample: Resample
    let scaleShift: Bool
    let outChannels: Int

    init(_ p: ParameterSource, _ name: String, channels: Int, embChannels: Int, outChannels: Int,
         scaleShift: Bool, resample: Resample = .none) {
        self.scaleShift = scaleShift; self.resample = resample; self.outChannels = outChannels
        inNorm = GroupNorm(p, name + ".in_layers.0", channels: channels)
        inConv = Conv2d(p, name + ".in_layers.2", cin: channels, cout: outChannels, k: 3)
        emb = Linear(p, name + ".emb_layers.1", in: embChannels, out: scaleShift ? 2 * outChannels : outChannels)
        outNorm = GroupNorm(p, name + ".out_layers.0", channels: outChannels)
        outConv = Conv2d(p, name + ".out_layers.3", cin: outChannels, cout: outChannels, k: 3)
        skip = outChannels == channels ? nil : Conv2d(p, name + ".skip_connection", cin: channels, cout: outChannels, k: 1)
    }

    /// `siluEmb` is SiLU(emb), [B][embChannels], shared by every block.
    func forward(_ x: Tensor, siluEmb: Tensor) -> Tensor {
        var h = inNorm.forward(x, silu: true)
        var xs = x
        switch resample {
        case .up: h = upsampleNearest(h); xs = upsampleNearest(x)
        case .down: h = averagePool2(h); xs = averagePool2(x)
        case .none: break
        }
        h = inConv.forward(h)
        let e = emb.forward(siluEmb)
        if scaleShift {
            h = outNorm.forward(h, silu: true, scaleShift: e, inPlace: true)
        } else {
            let b = h.shape[0], c = h.shape[1], plane = h.shape[2] * h.shape[3]
            Profiler.measure(.elementwise, flops: Double(h.count)) {
                Parallel.forEach(b * c) { j in
                    let v = e[j], row = h.data + j * plane
                    for i in 0..<plane { row[i] += v }
                }
            }
            h = outNorm.forward(h, silu: true, inPlace: true)
        }
        // out = skip(xs) + conv(h): the residual is summed inside the GEMM.
        let out: Tensor
        if let s = skip { out = s.forward(xs) } else { out = Profiler.measure(.elementwise, flops: 0) { xs.copy() } }
        return outConv.forward(h, into: out, accumulate: true)
    }
}

/// Self-attention over all positions of a frame (guided-diffusion's AttentionBlock), with
/// the legacy (heads, then q/k/v) or new (q/k/v, then heads) channel order.
final class AttentionBlock {
    let channels: Int, heads: Int, newOrder: Bool
    let norm: GroupNorm
    let qkv: Conv2d, proj: Conv2d
    let options: NetworkOptions

    init(_ p: ParameterSource, _ name: String, channels: Int, heads: Int, newOrder: Bool) {
        self.channels = channels; self.heads = heads; self.newOrder = newOrder
        options = p.options
        norm = GroupNorm(p, name + ".norm", channels: channels)
        qkv = Conv2d(p, name + ".qkv", cin: channels, cout: 3 * channels, k: 1, conv1d: true)
        proj = Conv2d(p, name + ".proj_out", cin: channels, cout: channels, k: 1, conv1d: true)
    }

    func forward(_ x: Tensor) -> Tensor {
        let b = x.shape[0], c = channels, l = x.shape[2] * x.shape[3]
        let ch = c / heads
        let q3 = qkv.forward(norm.forward(x, silu: false))          // [B][3C][L]
        let a = Profiler.measure(.attention, flops: Double(b * heads) * (4.0 * Double(ch * l * l) + 5.0 * Double(l * l))) {
            attend(q3, b: b, c: c, l: l, ch: ch, h: x.shape[2], w: x.shape[3])
        }
        return proj.forward(a, into: x.copy(), accumulate: true)
    }

    private func attend(_ q3: Tensor, b: Int, c: Int, l: Int, ch: Int, h: Int, w: Int) -> Tensor {
        let a = Tensor(shape: [b, c, h, w], zeroed: false)
        // Query rows in blocks small enough that a block's weights (rows × L) stay in the
        // core's L2 cache through the GEMM that makes them, the softmax and the GEMM that uses
        // them: the whole L×L matrix went to memory and back four times (at 256×256, L = 4096:
        // 64 MB per head and frame). Each thread takes a contiguous run of blocks with its own
        // buffer; a block's values do not depend on which thread runs it, nor on the batch.
        _ = GEMMThreading.configured
        let rows = max(1, min(l, options.attentionBlockElements / max(l, 1)))
        let blocks = (l + rows - 1) / rows
        let alpha = Float(1 / Double(ch).squareRoot())             // (q·s)ᵀ(k·s) with s = ch^(-1/4)
        for i in 0..<b {
            let base = UnsafePointer(q3.frame(i))
            for hd in 0..<heads {
                let q, k, v: UnsafePointer<Float>
                if newOrder {
                    q = base + (hd * ch) * l; k = base + (c + hd * ch) * l; v = base + (2 * c + hd * ch) * l
                } else {
                    q = base + (hd * 3 * ch) * l; k = q + ch * l; v = q + 2 * ch * l
                }
                let out = a.frame(i) + hd * ch * l
                // fp32 in both precisions: attention's GEMMs in bf16 (scores and probabilities
                // rounded) cost 0.13–0.19 dB on 8-bit temporal-only rows restored near 48 dB and
                // gave NaN on one row (BENCHMARKS.md, "--precision bf16"); the convolutions alone
                // cost ≤ 0.02 dB.
                let run = { (first: Int, end: Int) in
                    let weightBytes = rows * l * 4
                    let weights = BufferPool.take(bytes: weightBytes).bindMemory(to: Float.self, capacity: rows * l)
                    defer { BufferPool.give(UnsafeMutableRawPointer(weights), bytes: weightBytes) }
                    var inverse = [Float](repeating: 0, count: rows)
                    for blk in first..<end {
                        let t0 = blk * rows, n = min(rows, l - t0)
                        // W[t][s] = Σ_c q[c][t] k[c][s] / √ch for t in the block, exp(W − max)
                        // over s; a[c][t] = Σ_s W[t][s] v[c][s] / Σ_s W[t][s].
                        sgemmSerial(transA: true, m: n, n: l, k: ch, alpha: alpha, a: q + t0, lda: l, b: k, ldb: l, beta: 0, c: weights, ldc: l)
                        for t in 0..<n { inverse[t] = 1 / AttentionBlock.softmaxNumerators(weights + t * l, l) }
                        sgemmSerial(transB: true, m: ch, n: n, k: l, a: v, lda: l, b: weights, ldb: l, beta: 0, c: out + t0, ldc: l)
                        for cc in 0..<ch {
                            let row = out + cc * l + t0
                            for t in 0..<n { row[t] *= inverse[t] }
                        }
                    }
                }
                if !options.referenceKernels {
                    AttentionBlock.attendInPlace(q: q, k: k, v: v, ch: ch, l: l, alpha: alpha, out: out)
                    continue
                }
                // With OpenBLAS's own threading (SVI_GEMM_THREADS=openblas) its calls run one at a time.
                if GEMMThreading.ownThreads { Parallel.forEachChunk(blocks, grain: 1, run) } else { run(0, blocks) }
            }
        }
        return a
    }

    /// One head by `svi_attention_block` (CKernels/attention.c): blocks of 32 query positions
    /// split over the threads, K and V read in place (no per-block packing, which held
    /// OpenBLAS's thin attention GEMMs near 100 GFLOP/s); each thread its own scratch (the
    /// block's scores, L × 32). The bits do not depend on the threads, the block or the ISA.
    /// `--reference-kernels` keeps the GEMM path above.
    static func attendInPlace(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                              ch: Int, l: Int, alpha: Float, out: UnsafeMutablePointer<Float>) {
        let width = svi_attention_block_width()
        let blocks = (l + width - 1) / width
        let scratchBytes = svi_attention_scratch_floats(ch, l) * 4
        Parallel.forEachChunk(blocks, grain: 1) { first, end in
            let scratch = BufferPool.take(bytes: scratchBytes).bindMemory(to: Float.self, capacity: scratchBytes / 4)
            defer { BufferPool.give(UnsafeMutableRawPointer(scratch), bytes: scratchBytes) }
            for blk in first..<end {
                let t0 = blk * width
                svi_attention_block(q, k, v, ch, l, t0, min(width, l - t0), alpha, out, scratch)
            }
        }
    }

    /// row[s] ← exp(row[s] − max row); returns Σ_s row[s].
    static func softmaxNumerators(_ row: UnsafeMutablePointer<Float>, _ l: Int) -> Float {
        // The row's maximum 8 lanes at a time (a scalar `max` loop does not vectorise: it was
        // as slow as the exponentials after it). Scores are finite, so lane order is immaterial.
        var m8 = F8(repeating: -.infinity)
        var s0 = 0
        while s0 + 8 <= l { m8 = pointwiseMax(m8, F8.load(row + s0)); s0 += 8 }
        var mx = m8.max()
        while s0 < l { mx = max(mx, row[s0]); s0 += 1 }
        m8 = F8(repeating: mx)
        var acc = F8(), s = 0
        while s + 8 <= l { let e = fastExp(F8.load(row + s) - m8); e.store(row + s); acc += e; s += 8 }
        var sum = acc.sum()
        while s < l { let e = fastExp(row[s] - mx); row[s] = e; sum += e; s += 1 }
        return sum
    }
}

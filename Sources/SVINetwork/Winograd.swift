import Foundation
import SVICore

/// Which convolution kernels run. The plain path (im2col + GEMM) is the reference; the fast
/// path replaces stride-1 3×3 convolutions with Winograd F(4×4, 3×3).
public enum ConvolutionKernels {
    /// `--reference-kernels`: run the plain path everywhere (for comparisons and parity).
    nonisolated(unsafe) public static var reference = false
}

/// Winograd F(4×4, 3×3) (Lavin & Gray, 2016) for stride-1, pad-1 3×3 convolutions:
/// Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A per 6×6 input tile / 4×4 output tile. The 36 element-wise
/// products over channels become 36 GEMMs [Cout×Cin]·[Cin×tiles], a quarter of the direct
/// method's multiplications. Weights are transformed once (in float64) when the layer loads.
final class Winograd43 {
    static let bt: [[Float]] = [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ]
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
    /// Bound on V and M per block, in floats (32 MB); tests lower it to cut blocks across frames.
    nonisolated(unsafe) static var blockFloats = 8 << 20

    init(weight: Tensor, cin: Int, cout: Int) {
        self.cin = cin; self.cout = cout; self.weight = weight
        if 36 * cout * cin * 4 <= Winograd43.cacheLimitBytes {
            let u = UnsafeMutablePointer<Float>.allocate(capacity: 36 * cout * cin)
            transformWeights(into: u)
            cached = u
        }
    }

    deinit { cached?.deallocate() }

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
    /// transforms work on 8 tiles at a time in vector registers. The tile rows of all frames
    /// form one sequence, cut into blocks that bound the transformed data (V, M ≤ 32 MB each,
    /// in buffers shared by all layers): the frames of a batch share each GEMM (N grows with
    /// the batch where frames are small) and each weight transform.
    func forward(_ x: UnsafePointer<Float>, frames: Int, h: Int, w: Int, bias: UnsafePointer<Float>,
                 into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        // The scratch buffers are shared: one Winograd convolution at a time per process
        // (each one already uses every core).
        WinogradScratch.lock.lock()
        defer { WinogradScratch.lock.unlock() }
        let th = (h + 3) / 4, tw = (w + 3) / 4, tw8 = (tw + 7) / 8 * 8
        let totalRows = frames * th
        let u = transformed()
        let rowsPerBlock = max(1, min(totalRows, Winograd43.blockFloats / (36 * max(cin, cout) * tw8)))
        let v = WinogradScratch.v(36 * cin * rowsPerBlock * tw8)
        let m = WinogradScratch.m(36 * cout * rowsPerBlock * tw8)
        var row0 = 0
        while row0 < totalRows {
            let rows = min(rowsPerBlock, totalRows - row0), n = rows * tw8
            inputTransform(x, h: h, w: w, tw8: tw8, firstRow: row0, rows: rows, into: v)
            // 36 independent GEMMs: whole ones per thread (one synchronisation, not 36); with
            // OpenBLAS's threading, one after the other, each on its threads.
            _ = GEMMThreading.configured
            let gemm = { [cout = self.cout, cin = self.cin] (xi: Int) in
                sgemmSerial(m: cout, n: n, k: cin, a: u + xi * cout * cin, lda: cin, b: v + xi * cin * n, ldb: n,
                            beta: 0, c: m + xi * cout * n, ldc: n)
            }
            if GEMMThreading.ownThreads { Parallel.forEach(36, gemm) } else { (0..<36).forEach(gemm) }
            outputTransform(m, h: h, w: w, tw8: tw8, firstRow: row0, rows: rows, bias: bias, into: y, accumulate: accumulate)
            row0 += rows
        }
    }

    /// V[ξ][ci][p] = (Bᵀ d B)[ξ] for the tiles of `rows` tile rows, zero padding outside the
    /// frame. Rows first (Bᵀ along y, vectorised along x), then columns (B along x) for 8 tiles
    /// at once, their columns picked out of the row with stride-4 deinterleaves.
    private func inputTransform(_ x: UnsafePointer<Float>, h: Int, w: Int, tw8: Int, firstRow: Int, rows: Int,
                                into v: UnsafeMutablePointer<Float>) {
        let cin = self.cin, n = rows * tw8
        let lp = 4 * tw8 + 32
        let th = (h + 3) / 4
        Parallel.forEach(cin) { ci in
            let pr = UnsafeMutablePointer<Float>.allocate(capacity: 12 * lp)
            defer { pr.deallocate() }
            let tr = pr + 6 * lp
            for r in 0..<rows {
                // Global tile row → frame and tile row within it.
                let f = (firstRow + r) / th, ty = (firstRow + r) % th
                let xc = x + (f * cin + ci) * h * w
                // Six input rows, shifted right by one (the left zero padding), zero outside.
                for i in 0..<6 {
                    let row = pr + i * lp, yy = 4 * ty - 1 + i
                    row.update(repeating: 0, count: lp)
                    if yy >= 0 && yy < h { (row + 1).update(from: xc + yy * w, count: w) }
                }
                var q = 0
                while q < lp {
                    let p0 = F8.load(pr + q), p1 = F8.load(pr + lp + q), p2 = F8.load(pr + 2 * lp + q)
                    let p3 = F8.load(pr + 3 * lp + q), p4 = F8.load(pr + 4 * lp + q), p5 = F8.load(pr + 5 * lp + q)
                    (4 * p0 - 5 * p2 + p4).store(tr + q)
                    (-4 * p1 - 4 * p2 + p3 + p4).store(tr + lp + q)
                    (4 * p1 - 4 * p2 - p3 + p4).store(tr + 2 * lp + q)
                    (-2 * p1 - p2 + 2 * p3 + p4).store(tr + 3 * lp + q)
                    (2 * p1 - p2 - 2 * p3 + p4).store(tr + 4 * lp + q)
                    (4 * p1 - 5 * p3 + p5).store(tr + 5 * lp + q)
                    q += 8
                }
                var tx0 = 0
                while tx0 < tw8 {
                    let p = r * tw8 + tx0
                    for i in 0..<6 {
                        let base = tr + i * lp + 4 * tx0
                        @inline(__always) func col(_ j: Int) -> F8 {
                            UnsafeRawPointer(base + j).loadUnaligned(as: SIMD32<Float>.self).evenHalf.evenHalf
                        }
                        let c0 = col(0), c1 = col(1), c2 = col(2), c3 = col(3), c4 = col(4), c5 = col(5)
                        let out = v + (i * 6 * cin + ci) * n + p
                        let s = cin * n
                        (4 * c0 - 5 * c2 + c4).store(out)
                        (-4 * c1 - 4 * c2 + c3 + c4).store(out + s)
                        (4 * c1 - 4 * c2 - c3 + c4).store(out + 2 * s)
                        (-2 * c1 - c2 + 2 * c3 + c4).store(out + 3 * s)
                        (2 * c1 - c2 - 2 * c3 + c4).store(out + 4 * s)
                        (4 * c1 - 5 * c3 + c5).store(out + 5 * s)
                    }
                    tx0 += 8
                }
            }
        }
    }

    /// y tile = Aᵀ M A + bias for 8 tiles at a time, cropped at the frame edge.
    private func outputTransform(_ m: UnsafePointer<Float>, h: Int, w: Int, tw8: Int, firstRow: Int, rows: Int,
                                 bias: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let cout = self.cout, n = rows * tw8, th = (h + 3) / 4
        Parallel.forEach(cout) { co in
            let b = bias[co]
            let mc = m + co * n, s = cout * n
            for r in 0..<rows {
                let f = (firstRow + r) / th, ty = (firstRow + r) % th
                let yc = y + (f * cout + co) * h * w
                var tx0 = 0
                while tx0 < tw8 {
                    let p = r * tw8 + tx0
                    // t = Aᵀ M: four rows of six columns.
                    var t = (F8(), F8(), F8(), F8(), F8(), F8(), F8(), F8(), F8(), F8(), F8(), F8(),
                             F8(), F8(), F8(), F8(), F8(), F8(), F8(), F8(), F8(), F8(), F8(), F8())
                    withUnsafeMutableBytes(of: &t) { raw in
                        let tp = raw.baseAddress!.assumingMemoryBound(to: F8.self)
                        for j in 0..<6 {
                            let m0 = F8.load(mc + j * s + p), m1 = F8.load(mc + (6 + j) * s + p), m2 = F8.load(mc + (12 + j) * s + p)
                            let m3 = F8.load(mc + (18 + j) * s + p), m4 = F8.load(mc + (24 + j) * s + p), m5 = F8.load(mc + (30 + j) * s + p)
                            let a = m1 + m2, bb = m1 - m2, c = m3 + m4, d = m3 - m4
                            tp[j] = m0 + a + c
                            tp[6 + j] = bb + 2 * d
                            tp[12 + j] = a + 4 * c
                            tp[18 + j] = bb + 8 * d + m5
                        }
                        let bv = F8(repeating: b)
                        for i in 0..<4 {
                            let yy = 4 * ty + i
                            if yy >= h { break }
                            let t0 = tp[i * 6], t1 = tp[i * 6 + 1], t2 = tp[i * 6 + 2], t3 = tp[i * 6 + 3], t4 = tp[i * 6 + 4], t5 = tp[i * 6 + 5]
                            let a = t1 + t2, bb = t1 - t2, c = t3 + t4, d = t3 - t4
                            let o0 = t0 + a + c + bv, o1 = bb + 2 * d + bv, o2 = a + 4 * c + bv, o3 = bb + 8 * d + t5 + bv
                            let row = yc + yy * w
                            for k in 0..<8 {
                                let x0 = 4 * (tx0 + k)
                                if x0 >= w { break }
                                let dst = row + x0
                                if x0 + 4 <= w {
                                    if accumulate { dst[0] += o0[k]; dst[1] += o1[k]; dst[2] += o2[k]; dst[3] += o3[k] }
                                    else { dst[0] = o0[k]; dst[1] = o1[k]; dst[2] = o2[k]; dst[3] = o3[k] }
                                } else {
                                    let o = [o0[k], o1[k], o2[k], o3[k]]
                                    for j in 0..<(w - x0) { if accumulate { dst[j] += o[j] } else { dst[j] = o[j] } }
                                }
                            }
                        }
                    }
                    tx0 += 8
                }
            }
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

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

    /// y[co] (+)= conv(x)[co] + bias[co] for one image [cin][h][w] → [cout][h][w].
    func forward(_ x: UnsafePointer<Float>, h: Int, w: Int, bias: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let th = (h + 3) / 4, tw = (w + 3) / 4, tiles = th * tw
        let u = transformed()
        // Tiles per block: V and M blocks of ≤ ~24 MB each.
        let block = max(16, min(tiles, (6 << 20) / (36 * max(cin, cout))))
        let v = UnsafeMutablePointer<Float>.allocate(capacity: 36 * cin * block)
        let m = UnsafeMutablePointer<Float>.allocate(capacity: 36 * cout * block)
        defer { v.deallocate(); m.deallocate() }
        var t0 = 0
        var ta = 0.0, tb = 0.0, tc = 0.0
        while t0 < tiles {
            let n = min(block, tiles - t0)
            let c0 = Date()
            inputTransform(x, h: h, w: w, tw: tw, first: t0, count: n, ld: n, into: v)
            let c1 = Date()
            for xi in 0..<36 {
                sgemm(m: cout, n: n, k: cin, a: u + xi * cout * cin, lda: cin, b: v + xi * cin * n, ldb: n,
                      beta: 0, c: m + xi * cout * n, ldc: n)
            }
            let c2 = Date()
            outputTransform(m, h: h, w: w, tw: tw, first: t0, count: n, ld: n, bias: bias, into: y, accumulate: accumulate)
            ta += c1.timeIntervalSince(c0); tb += c2.timeIntervalSince(c1); tc += Date().timeIntervalSince(c2)
            t0 += n
        }
        if ProcessInfo.processInfo.environment["SVI_TRACE"] != nil {
            FileHandle.standardError.write(String(format: "wino %dx%d %d->%d block %d: in %.3f gemm %.3f (%.0f GF/s) out %.3f\n", h, w, cin, cout, block, ta, tb, 72.0 * Double(cout * cin * tiles) / tb / 1e9, tc).data(using: .utf8)!)
        }
    }

    /// V[ξ][ci][p] = (Bᵀ d B)[ξ] for tiles p ∈ [first, first+count), zero padding outside.
    private func inputTransform(_ x: UnsafePointer<Float>, h: Int, w: Int, tw: Int, first: Int, count: Int, ld: Int,
                                into v: UnsafeMutablePointer<Float>) {
        let cin = self.cin
        Parallel.forEach(cin) { ci in
            let xc = x + ci * h * w
            var d = [Float](repeating: 0, count: 36), t = [Float](repeating: 0, count: 36)
            for p in 0..<count {
                let tile = first + p
                let y0 = (tile / tw) * 4 - 1, x0 = (tile % tw) * 4 - 1
                let inside = y0 >= 0 && x0 >= 0 && y0 + 6 <= h && x0 + 6 <= w
                for i in 0..<6 {
                    let yy = y0 + i
                    for j in 0..<6 {
                        let xx = x0 + j
                        d[i * 6 + j] = inside || (yy >= 0 && yy < h && xx >= 0 && xx < w) ? xc[yy * w + xx] : 0
                    }
                }
                // t = Bᵀ d (rows), then V = t B (columns); Bᵀ written out for speed.
                for j in 0..<6 {
                    let d0 = d[j], d1 = d[6 + j], d2 = d[12 + j], d3 = d[18 + j], d4 = d[24 + j], d5 = d[30 + j]
                    t[j] = 4 * d0 - 5 * d2 + d4
                    t[6 + j] = -4 * d1 - 4 * d2 + d3 + d4
                    t[12 + j] = 4 * d1 - 4 * d2 - d3 + d4
                    t[18 + j] = -2 * d1 - d2 + 2 * d3 + d4
                    t[24 + j] = 2 * d1 - d2 - 2 * d3 + d4
                    t[30 + j] = 4 * d1 - 5 * d3 + d5
                }
                for i in 0..<6 {
                    let r = i * 6
                    let t0 = t[r], t1 = t[r + 1], t2 = t[r + 2], t3 = t[r + 3], t4 = t[r + 4], t5 = t[r + 5]
                    let base = v + (r * cin + ci) * ld + p
                    let s = cin * ld
                    base[0] = 4 * t0 - 5 * t2 + t4
                    base[s] = -4 * t1 - 4 * t2 + t3 + t4
                    base[2 * s] = 4 * t1 - 4 * t2 - t3 + t4
                    base[3 * s] = -2 * t1 - t2 + 2 * t3 + t4
                    base[4 * s] = 2 * t1 - t2 - 2 * t3 + t4
                    base[5 * s] = 4 * t1 - 5 * t3 + t5
                }
            }
        }
    }

    /// y tile = Aᵀ M A + bias, cropped at the frame edge.
    private func outputTransform(_ m: UnsafePointer<Float>, h: Int, w: Int, tw: Int, first: Int, count: Int, ld: Int,
                                 bias: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let cout = self.cout
        Parallel.forEach(cout) { co in
            let yc = y + co * h * w
            let b = bias[co]
            var mm = [Float](repeating: 0, count: 36), t = [Float](repeating: 0, count: 24)
            for p in 0..<count {
                for xi in 0..<36 { mm[xi] = m[(xi * cout + co) * ld + p] }
                // t = Aᵀ M (4×6), then out = t A (4×4).
                for j in 0..<6 {
                    let m0 = mm[j], m1 = mm[6 + j], m2 = mm[12 + j], m3 = mm[18 + j], m4 = mm[24 + j], m5 = mm[30 + j]
                    let a = m1 + m2, bb = m1 - m2, c = m3 + m4, dd = m3 - m4
                    t[j] = m0 + a + c
                    t[6 + j] = bb + 2 * dd
                    t[12 + j] = a + 4 * c
                    t[18 + j] = bb + 8 * dd + m5
                }
                let tile = first + p
                let y0 = (tile / tw) * 4, x0 = (tile % tw) * 4
                for i in 0..<4 {
                    let yy = y0 + i
                    if yy >= h { break }
                    let r = i * 6
                    let t0 = t[r], t1 = t[r + 1], t2 = t[r + 2], t3 = t[r + 3], t4 = t[r + 4], t5 = t[r + 5]
                    let a = t1 + t2, bb = t1 - t2, c = t3 + t4, dd = t3 - t4
                    let o = [t0 + a + c, bb + 2 * dd, a + 4 * c, bb + 8 * dd + t5]
                    let row = yc + yy * w + x0
                    let n = min(4, w - x0)
                    if accumulate { for j in 0..<n { row[j] += o[j] + b } } else { for j in 0..<n { row[j] = o[j] + b } }
                }
            }
        }
    }
}

/// One growable buffer for on-the-fly weight transforms (layers run one at a time).
enum WinogradScratch {
    nonisolated(unsafe) private static var storage: UnsafeMutablePointer<Float>?
    nonisolated(unsafe) private static var capacity = 0

    static func buffer(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity {
            storage?.deallocate()
            storage = .allocate(capacity: count)
            capacity = count
        }
        return storage!
    }
}

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
    /// U[ξ][co][ci], ξ = 0..<36.
    let u: UnsafeMutablePointer<Float>

    init(weight: Tensor, cin: Int, cout: Int) {
        self.cin = cin; self.cout = cout
        u = .allocate(capacity: 36 * cout * cin)
        let w = weight.data, uu = u
        let g = Winograd43.g
        Parallel.forEach(cout) { co in
            for ci in 0..<cin {
                let k = w + (co * cin + ci) * 9
                // G g Gᵀ in float64.
                var t = [[Double]](repeating: [0, 0, 0], count: 6)
                for i in 0..<6 { for j in 0..<3 { t[i][j] = g[i][0] * Double(k[j]) + g[i][1] * Double(k[3 + j]) + g[i][2] * Double(k[6 + j]) } }
                for i in 0..<6 { for j in 0..<6 {
                    let v = t[i][0] * g[j][0] + t[i][1] * g[j][1] + t[i][2] * g[j][2]
                    uu[((i * 6 + j) * cout + co) * cin + ci] = Float(v)
                } }
            }
        }
    }

    deinit { u.deallocate() }

    /// y[co] (+)= conv(x)[co] + bias[co] for one image [cin][h][w] → [cout][h][w].
    func forward(_ x: UnsafePointer<Float>, h: Int, w: Int, bias: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let th = (h + 3) / 4, tw = (w + 3) / 4, tiles = th * tw
        // Tiles per block: V and M blocks of ≤ ~24 MB each.
        let block = max(16, min(tiles, (6 << 20) / (36 * max(cin, cout))))
        let v = UnsafeMutablePointer<Float>.allocate(capacity: 36 * cin * block)
        let m = UnsafeMutablePointer<Float>.allocate(capacity: 36 * cout * block)
        defer { v.deallocate(); m.deallocate() }
        var t0 = 0
        while t0 < tiles {
            let n = min(block, tiles - t0)
            inputTransform(x, h: h, w: w, tw: tw, first: t0, count: n, ld: n, into: v)
            for xi in 0..<36 {
                sgemm(m: cout, n: n, k: cin, a: u + xi * cout * cin, lda: cin, b: v + xi * cin * n, ldb: n,
                      beta: 0, c: m + xi * cout * n, ldc: n)
            }
            outputTransform(m, h: h, w: w, tw: tw, first: t0, count: n, ld: n, bias: bias, into: y, accumulate: accumulate)
            t0 += n
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

import Foundation
import SVICore

/// Image-quality measures for restored videos, on [0,1] pixel values.
public enum Metrics {
    /// PSNR in dB of one frame (data range 1). Identical frames give +∞.
    public static func psnr(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Double {
        var s = 0.0
        for i in 0..<count { let d = Double(a[i]) - Double(b[i]); s += d * d }
        let mse = s / Double(count)
        return mse == 0 ? .infinity : 10 * log10(1 / mse)
    }

    /// SSIM (Wang et al. 2004) of one `[C][H][W]` frame: 11×11 Gaussian window σ = 1.5,
    /// K1 = 0.01, K2 = 0.03, data range 1, valid windows only, averaged over channels. Frames
    /// smaller than the window use a window of the frame's size.
    public static func ssim(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, channels: Int, height: Int, width: Int) -> Double {
        let r = min(5, (min(height, width) - 1) / 2)
        let g: [Double] = {
            let w = (-r...r).map { exp(-Double($0 * $0) / (2 * 1.5 * 1.5)) }
            let s = w.reduce(0, +)
            return w.map { $0 / s }
        }()
        let c1 = 0.01 * 0.01, c2 = 0.03 * 0.03
        let plane = height * width
        var total = 0.0, windows = 0
        // Separable filtering of the five moment images.
        func filter(_ f: (Int) -> Double) -> [Double] {
            var rows = [Double](repeating: 0, count: height * (width - 2 * r))
            let wo = width - 2 * r
            for y in 0..<height { for x in 0..<wo {
                var acc = 0.0
                for j in 0...(2 * r) { acc += g[j] * f(y * width + x + j) }
                rows[y * wo + x] = acc
            } }
            let ho = height - 2 * r
            var out = [Double](repeating: 0, count: ho * wo)
            for y in 0..<ho { for x in 0..<wo {
                var acc = 0.0
                for j in 0...(2 * r) { acc += g[j] * rows[(y + j) * wo + x] }
                out[y * wo + x] = acc
            } }
            return out
        }
        for c in 0..<channels {
            let pa = a + c * plane, pb = b + c * plane
            let ma = filter { Double(pa[$0]) }, mb = filter { Double(pb[$0]) }
            let saa = filter { Double(pa[$0]) * Double(pa[$0]) }
            let sbb = filter { Double(pb[$0]) * Double(pb[$0]) }
            let sab = filter { Double(pa[$0]) * Double(pb[$0]) }
            for i in 0..<ma.count {
                let va = saa[i] - ma[i] * ma[i], vb = sbb[i] - mb[i] * mb[i], cov = sab[i] - ma[i] * mb[i]
                total += ((2 * ma[i] * mb[i] + c1) * (2 * cov + c2)) / ((ma[i] * ma[i] + mb[i] * mb[i] + c1) * (va + vb + c2))
                windows += 1
            }
        }
        return windows > 0 ? total / Double(windows) : 1
    }

    /// Temporal consistency: RMSE of frame differences (x[t+1] − x[t]) against the
    /// reference's. Lower is steadier; 0 when the restored motion equals the reference's.
    public static func frameDifferenceError(_ restored: Tensor, _ reference: Tensor) -> Double {
        guard restored.frames > 1 else { return 0 }
        let n = restored.frameSize
        var s = 0.0
        for t in 0..<(restored.frames - 1) {
            let a0 = restored.frame(t), a1 = restored.frame(t + 1), b0 = reference.frame(t), b1 = reference.frame(t + 1)
            for i in 0..<n {
                let d = (Double(a1[i]) - Double(a0[i])) - (Double(b1[i]) - Double(b0[i]))
                s += d * d
            }
        }
        return (s / Double(n * (restored.frames - 1))).squareRoot()
    }

    public struct VideoScores: Codable, Sendable {
        public var psnr: [Double]
        public var ssim: [Double]
        public var meanPSNR: Double
        public var meanSSIM: Double
        public var frameDifferenceError: Double

        enum CodingKeys: String, CodingKey {
            case psnr, ssim
            case meanPSNR = "mean_psnr", meanSSIM = "mean_ssim", frameDifferenceError = "frame_difference_error"
        }
    }

    /// Per-frame PSNR/SSIM and their means (the mean PSNR averages per-frame dB values;
    /// +∞ frames are capped at 100 dB so the mean stays finite).
    public static func score(restored: Tensor, reference: Tensor) throws -> VideoScores {
        guard restored.shape == reference.shape, restored.shape.count == 4 else {
            throw SVIError("restored video has shape \(restored.shape) but the reference has \(reference.shape)", kind: .badInput)
        }
        let c = restored.shape[1], h = restored.shape[2], w = restored.shape[3]
        var p = [Double](repeating: 0, count: restored.frames), s = p
        p.withUnsafeMutableBufferPointer { pp in
            s.withUnsafeMutableBufferPointer { sp in
                let pb = pp.baseAddress!, sb = sp.baseAddress!
                Parallel.forEach(restored.frames) { f in
                    pb[f] = min(psnr(restored.frame(f), reference.frame(f), count: restored.frameSize), 100)
                    sb[f] = ssim(restored.frame(f), reference.frame(f), channels: c, height: h, width: w)
                }
            }
        }
        let n = Double(max(p.count, 1))
        return VideoScores(psnr: p, ssim: s, meanPSNR: p.reduce(0, +) / n, meanSSIM: s.reduce(0, +) / n,
                           frameDifferenceError: frameDifferenceError(restored, reference))
    }
}

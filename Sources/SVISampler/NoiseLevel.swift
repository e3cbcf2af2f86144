import Foundation
import SVICore

/// How noisy a measurement is (issue 27): every measurement a user has carries noise, even
/// when the degradation spec says none — 8-bit files are quantised, compressed files carry
/// the codec's error. svi combines what it knows with what the data shows:
///
/// * `stated`: the spec's `noise=σ` (what the user or `svi degrade` said was added);
/// * `quantization`: the file's own rounding, step/√12 for the decoded pixel format's bit depth
///   (1/(255·√12) ≈ 0.00113 for 8 bits; 0 for float `.npy`);
/// * `codec`: a lossy codec's error, from the quantiser it used (H.264's QP: step 2^((QP−4)/6)
///   on the 8-bit scale, error step/√12), when the decoder reports it;
/// * `dataEstimate`: a robust estimate from the measurement itself — the median absolute
///   value of the finest 3-D Haar detail coefficients (Donoho & Johnstone's MAD estimator,
///   over frame pairs; a temporally blurred signal has almost nothing there), interpolated
///   within the file's quantisation step.
///
/// effective = √(max(stated² + quantization², dataEstimate²) + codec²): white noise is what
/// the user said plus the rounding, unless the data show more; the codec's error adds. Float
/// `.npy` measurements are taken as stated (`trustsData` false), so exact measurements give the
/// results they always gave. `--noise-sigma` replaces all of it.
public struct NoiseLevel: Codable, Sendable, Equatable {
    public var stated: Double
    public var quantization: Double
    public var codec: Double?
    /// Chroma detail a subsampled (4:2:0, 4:2:2) source lost, estimated from the data
    /// (`NoiseEstimator.chromaLoss`).
    public var chroma: Double?
    public var dataEstimate: Double?
    /// Whether the data estimate counts (decoded files) or is only reported (float `.npy`).
    public var trustsData: Bool
    /// `--noise-sigma`, when given.
    public var override: Double?
    /// Where the measurement's samples came from: "float32 .npy", "8-bit ffv1", "8-bit h264 (lossy)", …
    public var format: String

    public init(stated: Double, quantization: Double, codec: Double? = nil, chroma: Double? = nil, dataEstimate: Double?, trustsData: Bool,
                override: Double? = nil, format: String) {
        self.stated = stated; self.quantization = quantization; self.codec = codec; self.chroma = chroma; self.dataEstimate = dataEstimate
        self.trustsData = trustsData; self.override = override; self.format = format
    }

    /// σ the solver uses (pixel values in [0, 1]).
    public var effective: Double {
        if let o = override { return o }
        let c = codec ?? 0, ch = chroma ?? 0
        return (white * white + c * c + ch * ch).squareRoot()
    }

    /// Whether the data's own estimate decided the white part (it exceeds stated + rounding).
    var dataDecides: Bool {
        guard trustsData, let d = dataEstimate else { return false }
        return d * d > stated * stated + quantization * quantization
    }

    /// The white part of the noise: what the user stated plus the rounding, or the data's
    /// estimate where that is larger (`--noise-sigma` counts as white).
    public var white: Double {
        if let o = override { return o }
        return dataDecides ? dataEstimate! : (stated * stated + quantization * quantization).squareRoot()
    }

    /// The σ at which CG stops by the discrepancy principle: the white part only. A codec's
    /// error is not white noise the data can be fitted into: it is detail the codec removed
    /// from y, and stopping CG once ‖Au − y‖ reaches its level leaves the prior's smoothed
    /// estimate where the measurement still holds detail (tuning clips, H.264 crf 18: the stop
    /// at the white part instead of the effective σ gained 0.1–0.9 dB on every task;
    /// evaluation/TUNING.md). γ and λ keep the effective σ: the codec's error is still error.
    public var discrepancySigma: Double { white }

    /// Which part decided `effective`, for the start line and the report.
    public var source: String {
        if override != nil { return "--noise-sigma" }
        var parts: [String] = []
        if dataDecides { parts.append("estimated from the data") }
        else {
            if stated > 0 { parts.append("stated in the spec") }
            if quantization > 0 { parts.append("quantisation") }
        }
        if let c = codec, c > 0 { parts.append("codec") }
        if let c = chroma, c > 0 { parts.append("chroma subsampling") }
        return parts.isEmpty ? "none" : parts.joined(separator: " + ")
    }

    /// One line for the start of a run.
    public var summary: String {
        func f(_ v: Double) -> String { String(format: "%.4g", v) }
        var s = "noise σ \(f(effective)) (\(source); \(format)"
        if override == nil {
            var parts = ["stated \(f(stated))", "quantisation \(f(quantization))"]
            if let c = codec { parts.append("codec \(f(c))") }
            if let c = chroma { parts.append("chroma \(f(c))") }
            if let d = dataEstimate { parts.append("data \(f(d))" + (trustsData ? "" : ", not used")) }
            s += ": " + parts.joined(separator: ", ")
        }
        return s + ")"
    }

    /// Rounding noise of samples stored with `bits` bits per component over [0, 1]: step/√12.
    public static func quantization(bits: Int) -> Double {
        guard bits > 0 && bits < 32 else { return 0 }
        return 1 / (Double((1 << bits) - 1) * 12.0.squareRoot())
    }

    /// Rounding noise of Y′CbCr samples as RGB: Y′ and the chroma each rounded to their
    /// levels (limited range: 219 and 224 steps at 8 bits; full range: 255), carried into
    /// R, G, B by the BT.601 matrix (mean over the channels: var Y′ + 1.911·var C), then the
    /// rounding of svi's RGB samples (`rgbBits`: 8, or 16 for deeper sources).
    public static func quantization(yuvBits bits: Int, fullRange: Bool, rgbBits: Int) -> Double {
        guard bits > 0 && bits < 32 else { return 0 }
        let k = Double(1 << max(bits - 8, 0)) / (bits < 8 ? Double(1 << (8 - bits)) : 1)
        let yLevels = (fullRange ? 255 : 219) * k, cLevels = (fullRange ? 255 : 224) * k
        let v = 1 / (yLevels * yLevels * 12) + chromaGain / (cLevels * cLevels * 12)
        let r = quantization(bits: rgbBits)
        return (v + r * r).squareRoot()
    }

    /// Mean over R, G, B of the squared BT.601 coefficients of Cb and Cr:
    /// ((1.402² + 0.714²) + (0.344² + 1.772²)) / 3 = 1.911 (for equal Cb and Cr variances).
    static let chromaGain = ((1.402 * 1.402 + 0.714 * 0.714) + (0.344 * 0.344 + 1.772 * 1.772)) / 3

    /// H.264/HEVC quantiser step for QP on the 8-bit scale (it doubles every 6 QP; step 1 at
    /// QP 4), as an error σ in [0, 1] units: step/(255·√12).
    public static func codecError(meanQP: Double) -> Double {
        pow(2, (meanQP - 4) / 6) / (255 * 12.0.squareRoot())
    }

    enum CodingKeys: String, CodingKey {
        case stated, quantization, codec, chroma, format, override
        case dataEstimate = "data_estimate", trustsData = "data_estimate_used"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(stated, forKey: .stated); try c.encode(quantization, forKey: .quantization)
        try c.encodeIfPresent(codec, forKey: .codec); try c.encodeIfPresent(chroma, forKey: .chroma)
        try c.encodeIfPresent(dataEstimate, forKey: .dataEstimate)
        try c.encode(trustsData, forKey: .trustsData); try c.encodeIfPresent(override, forKey: .override)
        try c.encode(format, forKey: .format)
    }
}

/// The MAD noise estimator of `NoiseLevel.dataEstimate`, fed frame by frame (memory: one frame
/// and a capped sample of coefficients, whatever the video's length or size).
public struct NoiseEstimator {
    /// Frames it looks at (pairs of consecutive frames; the first ones of the clip).
    public static let framesWanted = 16
    /// Coefficients kept at most (spread evenly over each frame pair).
    static let maxCoefficients = 1 << 21

    let channels: Int, height: Int, width: Int
    /// The samples' quantisation step (1/255 for 8 bits; 0 for float data).
    let step: Double
    private var previous: [Float]?
    private var coefficients: [Float] = []
    private var single: [Float] = []
    public private(set) var framesSeen = 0
    /// Sums for `chromaLoss`: luma detail energy at the finest and the next scale, chroma
    /// (Cb, Cr) detail energy at the next scale.
    private var lumaFine = 0.0, lumaCoarse = 0.0, cbCoarse = 0.0, crCoarse = 0.0

    public init(channels: Int, height: Int, width: Int, step: Double) {
        self.channels = channels; self.height = height; self.width = width; self.step = step
    }

    /// Pairs every two frames into 2×2×2 Haar blocks (the 3-D diagonal detail: unit gain for
    /// white noise, zero for a signal constant along any one axis); with one frame only, the
    /// 2-D diagonal detail of that frame.
    public mutating func add(_ frame: UnsafePointer<Float>) {
        let n = channels * height * width
        framesSeen += 1
        if channels == 3 { addChromaScales(frame) }
        guard let prev = previous else {
            previous = Array(UnsafeBufferPointer(start: frame, count: n))
            if framesSeen == 1 { single = detail(frame, nil) }
            return
        }
        coefficients += prev.withUnsafeBufferPointer { detail($0.baseAddress!, frame) }
        previous = nil
    }

    /// Detail coefficients of one frame (b nil: 2-D, /2) or of a frame pair (3-D, /(2√2)).
    private func detail(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>?) -> [Float] {
        let bh = height / 2, bw = width / 2
        let total = channels * bh * bw
        guard total > 0 else { return [] }
        let pairsWanted = max(1, NoiseEstimator.framesWanted / 2)
        let stride = max(1, (total * pairsWanted + NoiseEstimator.maxCoefficients - 1) / NoiseEstimator.maxCoefficients)
        var out: [Float] = []
        out.reserveCapacity(total / stride + 1)
        let norm: Float = b == nil ? 0.5 : 1 / (2 * Float(2).squareRoot())
        var k = 0
        for c in 0..<channels {
            for y in 0..<bh {
                for x in 0..<bw {
                    defer { k += 1 }
                    if k % stride != 0 { continue }
                    let i = (c * height + 2 * y) * width + 2 * x
                    var v = a[i] - a[i + 1] - a[i + width] + a[i + width + 1]
                    if let b { v -= b[i] - b[i + 1] - b[i + width] + b[i + width + 1] }
                    out.append(abs(v * norm))
                }
            }
        }
        return out
    }

    /// Energy of one plane's detail at the finest scale (what 2×2 block averaging removes) and
    /// at the next (the same, on the 2×2 averages), per pixel of the plane.
    private func scales(_ plane: [Double], _ h: Int, _ w: Int) -> (fine: Double, coarse: Double) {
        func detail(_ p: [Double], _ h: Int, _ w: Int) -> (Double, [Double], Int, Int) {
            let bh = h / 2, bw = w / 2
            var avg = [Double](repeating: 0, count: bh * bw)
            var e = 0.0
            for y in 0..<bh {
                for x in 0..<bw {
                    let i = 2 * y * w + 2 * x
                    let a = p[i], b = p[i + 1], c = p[i + w], d = p[i + w + 1]
                    let m = (a + b + c + d) / 4
                    avg[y * bw + x] = m
                    e += (a - m) * (a - m) + (b - m) * (b - m) + (c - m) * (c - m) + (d - m) * (d - m)
                }
            }
            return (bh * bw > 0 ? e / Double(4 * bh * bw) : 0, avg, bh, bw)
        }
        let (fine, avg, bh, bw) = detail(plane, h, w)
        let (coarse, _, _, _) = detail(avg, bh, bw)
        return (fine, coarse)
    }

    /// Side of the centre window the chroma scales are measured on: three planes of doubles
    /// for it, whatever the frame's size (a 4K frame whole would take 200 MB).
    static let chromaWindow = 1024

    private mutating func addChromaScales(_ f: UnsafePointer<Float>) {
        let n = height * width
        guard height >= 4 && width >= 4 else { return }
        let h = min(height, NoiseEstimator.chromaWindow), w = min(width, NoiseEstimator.chromaWindow)
        let y0 = (height - h) / 2, x0 = (width - w) / 2
        var yp = [Double](repeating: 0, count: h * w), cb = yp, cr = yp
        for yy in 0..<h {
            for xx in 0..<w {
                let i = (y0 + yy) * width + x0 + xx, o = yy * w + xx
                let r = Double(f[i]), g = Double(f[n + i]), b = Double(f[2 * n + i])
                let y = 0.299 * r + 0.587 * g + 0.114 * b
                yp[o] = y; cb[o] = (b - y) / 1.772; cr[o] = (r - y) / 1.402
            }
        }
        let ys = scales(yp, h, w)
        lumaFine += ys.fine; lumaCoarse += ys.coarse
        cbCoarse += scales(cb, h, w).coarse
        crCoarse += scales(cr, h, w).coarse
    }

    /// The chroma detail a 4:2:0 source lost (RMS over R, G, B), which the decoded frames no
    /// longer show: the chroma's detail at the next scale, which survives, times luma's ratio
    /// of finest to next-scale detail (images' detail falls off alike in luma and chroma),
    /// carried into RGB by the BT.601 matrix. nil before any frame, or on frames under 4×4.
    public func chromaLoss() -> Double? {
        guard lumaCoarse > 0 else { return nil }
        let ratio = lumaFine / lumaCoarse
        let v = ((1.402 * 1.402 + 0.714 * 0.714) * crCoarse + (0.344 * 0.344 + 1.772 * 1.772) * cbCoarse) / 3 * ratio
        return (v / Double(framesSeen)).squareRoot()
    }

    /// σ̂ = median|d| / 0.6745 (nil when the frames are smaller than 2×2). Quantised samples make
    /// |d| take few distinct values; the median is then interpolated within its bin (the
    /// median of grouped data), so the estimate does not jump by whole steps.
    public func estimate() -> Double? {
        var d = coefficients.isEmpty ? single : coefficients
        guard !d.isEmpty else { return nil }
        d.sort()
        let n = d.count
        let m = Double(d[(n - 1) / 2])
        var med = m
        let norm = coefficients.isEmpty ? 0.5 : 1 / (2 * 2.0.squareRoot())
        let h = step * norm                       // spacing of |d|'s possible values
        if h > 0 {
            // Bin of the median: [m − h/2, m + h/2) (the first bin [0, h/2)); values within
            // a small tolerance of m count as in it.
            let tol = Float(h * 0.25)
            let lo = d.firstIndex { $0 >= Float(m) - tol } ?? 0
            let hi = d.lastIndex { $0 <= Float(m) + tol }.map { $0 + 1 } ?? n
            let inBin = Double(hi - lo)
            let lower = max(m - h / 2, 0), width = m - h / 2 < 0 ? h / 2 : h
            if inBin > 0 { med = lower + width * (Double(n) / 2 - Double(lo)) / inBin }
        }
        return med / 0.6744897501960817
    }
}

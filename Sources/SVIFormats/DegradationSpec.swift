import Foundation
import SVICore

/// A degradation written as a spec string (DESIGN §3), e.g. `temporal=uniform:13`,
/// `temporal=gaussian:1.0,sr=4`, `temporal=uniform:7,blur=2.0`,
/// `temporal=uniform:7,inpaint=0.5,noise=0.01`, `boundary=replicate`.
///
/// Keys: `temporal` (`uniform:K`, K odd, or `gaussian:SIGMA`), `boundary` (`circular`,
/// `replicate`), `blur` (spatial Gaussian σ), `sr` (block-average factor), `inpaint`
/// (fraction of pixel positions kept), `noise` (σ_y of additive Gaussian noise, [0,1] scale).
/// The spatial parts apply in the order blur → sr → inpaint.
public struct DegradationSpec: Equatable, Sendable {
    public enum Temporal: Equatable, Sendable {
        case uniform(Int)
        case gaussian(Double)
    }

    public var temporal: Temporal?
    public var boundary: TemporalBoundary = .circular
    public var blurSigma: Double?
    public var srFactor: Int?
    public var inpaintKeep: Double?
    public var noiseSigma: Double = 0

    public init() {}

    public static let keys = ["temporal", "boundary", "blur", "sr", "inpaint", "noise"]

    /// Bounds far beyond any real degradation, so that kernels stay allocatable: a temporal
    /// window of 1001 frames (40 s at 25 fps), a temporal σ of 100 frames (a 601-tap kernel),
    /// a spatial σ of 100 pixels (a 601-pixel kernel), ×64 super-resolution.
    public static let maxTemporalWidth = 1001, maxTemporalSigma = 100.0, maxBlurSigma = 100.0, maxSRFactor = 64

    public static func parse(_ text: String) throws -> DegradationSpec {
        var spec = DegradationSpec()
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else { throw SVIError.option("--degradation", "empty degradation spec") }
        guard text.utf8.count <= 1000 else { throw SVIError.option("--degradation", "degradation spec of \(text.utf8.count) characters: a spec is a few key=value pairs") }
        var seen = Set<String>()
        for item in items {
            let kv = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, !kv[1].isEmpty else {
                throw SVIError.option("--degradation", "degradation spec '\(text)': '\(item)' is not key=value (keys: \(keys.joined(separator: ", ")))")
            }
            let key = kv[0], value = kv[1]
            guard keys.contains(key) else {
                throw SVIError.option("--degradation", "degradation spec '\(text)': unknown key '\(key)' (keys: \(keys.joined(separator: ", ")))")
            }
            guard seen.insert(key).inserted else { throw SVIError.option("--degradation", "degradation spec '\(text)': '\(key)' given twice") }
            func number(_ s: String) throws -> Double {
                guard let v = Double(s), v.isFinite else { throw SVIError.option("--degradation", "degradation spec '\(text)': '\(s)' is not a number in '\(item)'") }
                return v
            }
            switch key {
            case "temporal":
                let parts = value.split(separator: ":", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { throw SVIError.option("--degradation", "degradation spec '\(text)': temporal must be uniform:K or gaussian:SIGMA, got '\(value)'") }
                switch parts[0] {
                case "uniform":
                    guard let k = Int(parts[1]) else { throw SVIError.option("--degradation", "degradation spec '\(text)': temporal uniform width '\(parts[1])' is not an integer") }
                    guard k >= 1, k % 2 == 1, k <= maxTemporalWidth else { throw SVIError.option("--degradation", "degradation spec '\(text)': temporal uniform width must be odd, between 1 and \(maxTemporalWidth), got \(k)") }
                    spec.temporal = .uniform(k)
                case "gaussian":
                    let s = try number(parts[1])
                    guard s > 0, s <= maxTemporalSigma else { throw SVIError.option("--degradation", "degradation spec '\(text)': temporal gaussian σ must be in (0, \(Int(maxTemporalSigma))] frames, got \(parts[1])") }
                    spec.temporal = .gaussian(s)
                default:
                    throw SVIError.option("--degradation", "degradation spec '\(text)': unknown temporal kernel '\(parts[0])' (uniform or gaussian)")
                }
            case "boundary":
                guard let b = TemporalBoundary(rawValue: value) else {
                    throw SVIError.option("--degradation", "degradation spec '\(text)': boundary must be circular or replicate, got '\(value)'")
                }
                spec.boundary = b
            case "blur":
                let s = try number(value)
                guard s > 0, s <= maxBlurSigma else { throw SVIError.option("--degradation", "degradation spec '\(text)': blur σ must be in (0, \(Int(maxBlurSigma))] pixels, got \(value)") }
                spec.blurSigma = s
            case "sr":
                guard let f = Int(value), f >= 2, f <= maxSRFactor else { throw SVIError.option("--degradation", "degradation spec '\(text)': sr factor must be an integer from 2 to \(maxSRFactor), got '\(value)'") }
                spec.srFactor = f
            case "inpaint":
                let r = try number(value)
                // Below 1 % kept there is nothing to restore from (1e-300 kept no pixel at all
                // and gave a black video without a word).
                guard r >= 0.01, r <= 1 else { throw SVIError.option("--degradation", "degradation spec '\(text)': inpaint keep fraction must be between 0.01 and 1, got \(value)") }
                spec.inpaintKeep = r
            case "noise":
                let s = try number(value)
                guard s >= 0, s <= 1 else { throw SVIError.option("--degradation", "degradation spec '\(text)': noise σ must be in [0, 1] (pixel values are in [0, 1]), got \(value)") }
                spec.noiseSigma = s
            default: break
            }
        }
        return spec
    }

    /// True when a spatial part (deblur, SR, inpainting) is present: it changes the sampler's
    /// defaults (DESIGN §4).
    public var hasSpatialPart: Bool { blurSigma != nil || srFactor != nil || inpaintKeep != nil }

    /// The spec in canonical form (keys in a fixed order), as written to sidecars and reports.
    public var canonical: String {
        var parts: [String] = []
        switch temporal {
        case .uniform(let k)?: parts.append("temporal=uniform:\(k)")
        case .gaussian(let s)?: parts.append("temporal=gaussian:\(s)")
        case nil: break
        }
        if temporal != nil && boundary != .circular { parts.append("boundary=\(boundary.rawValue)") }
        if let b = blurSigma { parts.append("blur=\(b)") }
        if let f = srFactor { parts.append("sr=\(f)") }
        if let r = inpaintKeep { parts.append("inpaint=\(r)") }
        if noiseSigma > 0 { parts.append("noise=\(noiseSigma)") }
        return parts.isEmpty ? "boundary=\(boundary.rawValue)" : parts.joined(separator: ",")
    }
}

/// How the temporal kernel sees frames beyond either end of the video.
public enum TemporalBoundary: String, Sendable, Codable, CaseIterable {
    case circular   // the paper's default: the video wraps around
    case replicate  // the first/last frame repeats
}


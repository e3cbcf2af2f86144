import Foundation
import SVIFormats

/// What a decoded clip carries to its encoded output: size, frame rate and time base, and
/// where its frames sit in the source (for copying the matching audio).
public struct VideoInfo: Codable, Equatable, Sendable {
    public var width: Int
    public var height: Int
    /// Frame rate as a rational (numerator, denominator).
    public var fpsNum: Int32
    public var fpsDen: Int32
    public var source: String
    /// Presentation time (seconds) of the first selected frame in the source, and the clip's duration.
    public var startSeconds: Double
    public var durationSeconds: Double
    public var frames: Int

    public var fps: Double { Double(fpsNum) / Double(fpsDen) }

    public init(width: Int, height: Int, fpsNum: Int32, fpsDen: Int32, source: String, startSeconds: Double, durationSeconds: Double, frames: Int) {
        self.width = width; self.height = height; self.fpsNum = fpsNum; self.fpsDen = fpsDen; self.source = source
        self.startSeconds = startSeconds; self.durationSeconds = durationSeconds; self.frames = frames
    }

    enum CodingKeys: String, CodingKey {
        case width, height, source, frames
        case fpsNum = "fps_num", fpsDen = "fps_den", startSeconds = "start_seconds", durationSeconds = "duration_seconds"
    }
}

/// Which frames, at which size, `VideoReader` returns: `--frames a:b` (half-open, by decoded
/// index), `--crop WxH+X+Y` (in source pixels, applied first), `--size WxH` (scale, after).
public struct FrameSelection: Sendable {
    public var range: Range<Int>?
    public var crop: (width: Int, height: Int, x: Int, y: Int)?
    public var size: (width: Int, height: Int)?
    public init(range: Range<Int>? = nil, crop: (width: Int, height: Int, x: Int, y: Int)? = nil, size: (width: Int, height: Int)? = nil) {
        self.range = range; self.crop = crop; self.size = size
    }

    /// Parses "a:b" (either side may be empty).
    public static func parseRange(_ s: String) -> Range<Int>? {
        let p = s.split(separator: ":", omittingEmptySubsequences: false)
        guard p.count == 2 else { return nil }
        let a = p[0].isEmpty ? 0 : Int(p[0]), b = p[1].isEmpty ? Int.max : Int(p[1])
        guard let lo = a, let hi = b, lo >= 0, hi > lo else { return nil }
        return lo..<hi
    }

    /// Parses "WxH".
    public static func parseSize(_ s: String) -> (width: Int, height: Int)? {
        let p = s.lowercased().split(separator: "x")
        guard p.count == 2, let w = Int(p[0]), let h = Int(p[1]), (1...FormatLimits.maxSide).contains(w), (1...FormatLimits.maxSide).contains(h) else { return nil }
        return (w, h)
    }

    /// Parses "WxH+X+Y".
    public static func parseCrop(_ s: String) -> (width: Int, height: Int, x: Int, y: Int)? {
        let parts = s.split(separator: "+")
        guard parts.count == 3, let size = parseSize(String(parts[0])), let x = Int(parts[1]), let y = Int(parts[2]),
              (0...FormatLimits.maxSide).contains(x), (0...FormatLimits.maxSide).contains(y) else { return nil }
        return (size.width, size.height, x, y)
    }
}

import Foundation
import SVICore

/// What travels with a simulated measurement (`OUT.npy.json`), so `svi restore` knows A
/// without being told twice. Sidecars are read automatically from beside an input, so they
/// are checked like any file from a stranger: size, every field's range, and `source` used
/// only when it is a regular file (a FIFO there would block the run forever).
public struct Sidecar: Codable, Sendable {
    public var degradation: String
    public var seed: UInt64
    public var maskSeed: UInt64
    public var source: String
    public var frames: Int
    /// [C, H, W] of the clean video (the size `restore` restores to).
    public var originalShape: [Int]
    /// [C, h, w] of the measurement's frames.
    public var measurementShape: [Int]
    public var sviVersion: String
    /// For measurements made from video files: the frame range, rate and time span in the source.
    public var frameRange: [Int]?
    public var fpsNum: Int32?
    public var fpsDen: Int32?
    public var startSeconds: Double?

    enum CodingKeys: String, CodingKey {
        case degradation, seed, source, frames
        case maskSeed = "mask_seed", originalShape = "original_shape", measurementShape = "measurement_shape"
        case sviVersion = "svi_version", frameRange = "frame_range", fpsNum = "fps_num", fpsDen = "fps_den", startSeconds = "start_seconds"
    }

    public init(degradation: String, seed: UInt64, maskSeed: UInt64, source: String, frames: Int,
                originalShape: [Int], measurementShape: [Int], sviVersion: String) {
        self.degradation = degradation; self.seed = seed; self.maskSeed = maskSeed; self.source = source; self.frames = frames
        self.originalShape = originalShape; self.measurementShape = measurementShape; self.sviVersion = sviVersion
    }

    public static func path(for output: String) -> String { output + ".json" }

    /// The sidecar beside `input`, or nil when there is none.
    public static func load(for input: String) throws -> Sidecar? {
        let p = path(for: input)
        guard FileManager.default.fileExists(atPath: p) else { return nil }
        return try parse(try SmallFile.read(p, limit: 1 << 20, what: "sidecar"), path: p)
    }

    /// Decodes and range-checks a sidecar's JSON.
    public static func parse(_ data: Data, path p: String) throws -> Sidecar {
        let s: Sidecar
        do { s = try JSONDecoder().decode(Sidecar.self, from: data) } catch {
            throw SVIError.file(p, "not a valid svi sidecar (\(JSONProblem.describe(error)))")
        }
        try s.validate(path: p)
        return s
    }

    func validate(path p: String) throws {
        func bad(_ field: String, _ why: String) -> SVIError { SVIError.file(p, "sidecar field '\(field)' \(why)") }
        do { _ = try DegradationSpec.parse(degradation) } catch let e as SVIError { throw bad("degradation", "is not a valid spec: \(e.message)") }
        guard (1...FormatLimits.maxFrames).contains(frames) else { throw bad("frames", "must be between 1 and \(FormatLimits.maxFrames), got \(frames)") }
        for (name, shape) in [("original_shape", originalShape), ("measurement_shape", measurementShape)] {
            guard shape.count == 3, shape.allSatisfy({ (1...FormatLimits.maxSide).contains($0) }), shape[0] <= FormatLimits.maxChannels else {
                throw bad(name, "must be [C, H, W] with 1 ≤ C ≤ \(FormatLimits.maxChannels) and sides 1…\(FormatLimits.maxSide), got \(shape)")
            }
        }
        if let r = frameRange {
            guard r.count == 2, r[0] >= 0, r[0] < r[1], r[1] - r[0] == frames else { throw bad("frame_range", "must be [a, b] with 0 ≤ a < b and b − a = frames, got \(r)") }
        }
        if fpsNum != nil || fpsDen != nil {
            guard let n = fpsNum, let d = fpsDen, n > 0, d > 0 else { throw bad("fps_num/fps_den", "must both be positive") }
        }
        if let t = startSeconds { guard t.isFinite, t >= 0 else { throw bad("start_seconds", "must be a finite time ≥ 0") } }
        // A source that moved away is fine (no audio to copy); one that is a FIFO or a device
        // would block the run when opened for its audio.
        if FileManager.default.fileExists(atPath: source) && !SmallFile.isRegularFile(source) {
            throw bad("source", "names \(source), which is not a regular file")
        }
    }

    /// `source` when it can be read as a media file for its audio: a regular file that exists.
    public var readableSource: String? { SmallFile.isRegularFile(source) ? source : nil }
}

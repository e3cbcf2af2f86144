import Foundation
import SVICore

/// What travels with a simulated measurement (`OUT.npy.json`), so `svi restore` knows A
/// without being told twice.
struct Sidecar: Codable {
    var degradation: String
    var seed: UInt64
    var maskSeed: UInt64
    var source: String
    var frames: Int
    /// [C, H, W] of the clean video (the size `restore` restores to).
    var originalShape: [Int]
    /// [C, h, w] of the measurement's frames.
    var measurementShape: [Int]
    var sviVersion: String
    /// For measurements made from video files: the frame range, rate and time span in the source.
    var frameRange: [Int]?
    var fpsNum: Int32?
    var fpsDen: Int32?
    var startSeconds: Double?

    enum CodingKeys: String, CodingKey {
        case degradation, seed, source, frames
        case maskSeed = "mask_seed", originalShape = "original_shape", measurementShape = "measurement_shape"
        case sviVersion = "svi_version", frameRange = "frame_range", fpsNum = "fps_num", fpsDen = "fps_den", startSeconds = "start_seconds"
    }

    static func path(for output: String) -> String { output + ".json" }

    static func load(for input: String) throws -> Sidecar? {
        let p = path(for: input)
        guard FileManager.default.fileExists(atPath: p) else { return nil }
        guard let d = FileManager.default.contents(atPath: p) else { throw SVIError.file(p, "cannot read sidecar") }
        do { return try JSONDecoder().decode(Sidecar.self, from: d) } catch {
            throw SVIError.file(p, "not a valid svi sidecar (\(error.localizedDescription))")
        }
    }
}

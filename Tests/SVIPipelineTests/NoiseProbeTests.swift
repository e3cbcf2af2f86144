import Testing
import Foundation
import SVICore
import SVIMedia
import SVISampler
import SVITestSupport
@testable import SVIPipeline

/// The noise level svi finds in a measurement decides its settings (γ, λ, the discrepancy
/// stop): it must be the same number every time the same file is probed.
@Suite struct NoiseProbeTests {
    /// H.264's quantiser was read from a frame-threaded decoder, whose exported per-frame QP
    /// was not always the frame's own: one file gave mean QP 18.3, 18.4 or 19.6 from run to run.
    /// Ten probes of one H.264 file give one σ and one format line.
    @Test func anH264FileGivesTheSameNoiseLevelEveryTime() throws {
        let path = NSTemporaryDirectory() + "svi-noise-\(getpid())-\(UUID().uuidString).mp4"
        defer { try? FileManager.default.removeItem(atPath: path); try? FileManager.default.removeItem(atPath: path + ".json") }
        // The file that showed it: bikes, 16 frames at 256×144, temporal Gaussian σ 1, crf 18.
        var d = DegradeSettings()
        d.input = Samples.path("bikes.mp4"); d.output = path
        (d.frames, d.crop, d.size) = ("0:16", "484x272+78+0", "256x144")
        (d.degradation, d.codec, d.crf, d.quiet) = ("temporal=gaussian:1", "h264", 18, true)
        try DegradeJob.run(d, version: "test")
        let levels = try (0..<12).map { _ in try NoiseProbe.measure(path, degradation: nil, selection: FrameSelection()) }
        #expect(levels.allSatisfy { $0.codec != nil && $0.format.contains("mean QP") }, "\(levels[0].format)")
        #expect(Set(levels.map(\.effective)).count == 1, "\(levels.map(\.effective))")
        #expect(Set(levels.map(\.format)).count == 1, "\(Set(levels.map(\.format)))")
    }

    /// x264's bytes depend on its thread count; `svi degrade` fixes it, so a measurement is the
    /// same file on a 2-core and a 64-core machine (the evaluation checks its files by σ).
    @Test func anH264MeasurementIsTheSameFileAtAnyThreadCount() throws {
        let base = NSTemporaryDirectory() + "svi-threads-\(getpid())-\(UUID().uuidString)"
        var bytes: [Data] = []
        for threads in [1, 3] {
            var d = DegradeSettings()
            d.input = Samples.path("bikes.mp4"); d.output = base + "-\(threads).mp4"
            (d.frames, d.crop, d.size) = ("0:8", "484x272+78+0", "128x72")
            (d.degradation, d.codec, d.crf, d.quiet) = ("temporal=uniform:3", "h264", 18, true)
            try Parallel.withThreads(threads) { try DegradeJob.run(d, version: "test") }
            bytes.append(try Data(contentsOf: URL(fileURLWithPath: d.output)))
            try? FileManager.default.removeItem(atPath: d.output); try? FileManager.default.removeItem(atPath: d.output + ".json")
        }
        #expect(bytes[0] == bytes[1] && !bytes[0].isEmpty)
    }
}

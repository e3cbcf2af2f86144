import Testing
import Foundation
import SVICore
import SVIFormats

/// What used to fail only after every diffusion step (throwing the result away) fails before
/// the first one: each case below is a run of 200 steps on 96×96 frames that would take
/// minutes, and must end with one line, a non-zero exit and no output within seconds.
@Suite struct EarlyChecksTests {
    func setUp(size: Int = 96) throws -> String {
        let d = CLI.tempDir()
        try NPY.write(CLI.clip(frames: 6, height: size, width: size), to: d + "/x.npy")
        #expect(try CLI.run(["degrade", d + "/x.npy", "-o", d + "/y.npy", "--degradation", "temporal=uniform:3", "--quiet"]).status == 0)
        return d
    }

    func expectFailsFast(_ d: String, _ extra: [String], output: String, message: String) throws {
        let started = Date()
        let r = try CLI.run(["restore", d + "/y.npy", "-o", d + "/" + output, "--model", CLI.fixtures + "/adm-tiny/weights.safetensors",
                             "--nfe", "200", "--quiet"] + extra)
        let took = Date().timeIntervalSince(started)
        #expect(r.status != 0)
        #expect(r.stderr.contains(message), "\(r.stderr)")
        #expect(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(took < 5, "took \(took) s: a step ran before the check")
        let left = try FileManager.default.contentsOfDirectory(atPath: d).filter { $0.hasPrefix("r") || $0.hasPrefix(".r") }
        #expect(left.isEmpty, "left behind: \(left)")
    }

    @Test func unknownOutputTypeFailsBeforeTheFirstStep() throws {
        try expectFailsFast(try setUp(), [], output: "r.avi", message: "unknown output type")
    }

    @Test func oddFrameSizeForH264FailsBeforeTheFirstStep() throws {
        try expectFailsFast(try setUp(size: 95), [], output: "r.mp4", message: "even width and height")
    }

    @Test func referenceOfAnotherShapeFailsBeforeTheFirstStep() throws {
        let d = try setUp()
        try NPY.write(CLI.clip(frames: 5, height: 96, width: 96), to: d + "/truth.npy")
        try expectFailsFast(d, ["--reference", d + "/truth.npy"], output: "r.npy", message: "reference has shape [5, 3, 96, 96]")
    }

    /// A video file as --reference: its frames are counted before the first step too.
    @Test func videoReferenceWithAnotherFrameCountFailsBeforeTheFirstStep() throws {
        let d = try setUp()
        try NPY.write(CLI.clip(frames: 5, height: 96, width: 96), to: d + "/t.npy")
        #expect(try CLI.run(["degrade", d + "/t.npy", "-o", d + "/truth.mkv", "--degradation", "temporal=uniform:1", "--quiet"]).status == 0)
        try expectFailsFast(d, ["--reference", d + "/truth.mkv"], output: "r.npy", message: "reference has shape [5, 3, 96, 96]")
    }

    @Test func unusableCheckpointFolderFailsBeforeTheFirstStep() throws {
        let d = try setUp()
        try expectFailsFast(d, ["--checkpoint-dir", d + "/x.npy/ck"], output: "r.npy", message: "cannot create the checkpoint folder")
    }
}

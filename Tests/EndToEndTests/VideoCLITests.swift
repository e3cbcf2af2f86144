import Testing
import Foundation
import SVICore
import SVIFormats
import SVITestSupport

/// Real video through the command line: degrade a clip to FFV1, restore it to H.264 with its
/// audio, and refuse broken inputs cleanly.
@Suite struct VideoCLITests {
    static var samples: String { Samples.folder }

    /// ffprobe's view of a file's streams: [(type, codec, width, height, frames, duration)].
    func probe(_ path: String) throws -> [[String: String]] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/ffprobe")
        p.arguments = ["-v", "error", "-count_frames", "-show_entries", "stream=codec_type,codec_name,width,height,nb_read_frames,r_frame_rate,duration",
                       "-of", "compact", path]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return text.split(separator: "\n").map { line in
            var d: [String: String] = [:]
            for kv in line.split(separator: "|").dropFirst() {
                let p = kv.split(separator: "=", maxSplits: 1)
                if p.count == 2 { d[String(p[0])] = String(p[1]) }
            }
            return d
        }
    }

    @Test func bikesToFFV1ToH264() throws {
        let d = CLI.tempDir()
        var r = try CLI.run(["degrade", Self.samples + "/bikes.mp4", "--frames", "0:12", "-o", d + "/m.mkv", "--degradation", "temporal=uniform:5", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try CLI.run(["restore", d + "/m.mkv", "-o", d + "/r.mp4", "--prior", "gaussian", "--nfe", "2", "--init", "noise", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let s = try probe(d + "/r.mp4")
        let video = try #require(s.first { $0["codec_type"] == "video" })
        #expect(video["codec_name"] == "h264" && video["width"] == "640" && video["height"] == "272")
        #expect(video["nb_read_frames"] == "12" && video["r_frame_rate"] == "25/1")
    }

    /// A clip cut from a file with audio keeps its audio, trimmed to the clip, through degrade
    /// (FFV1/MKV) and restore (H.264/MP4); SR measurements are stored at their own size.
    @Test func audioFollowsTheClip() throws {
        let d = CLI.tempDir()
        var r = try CLI.run(["degrade", Self.samples + "/bigbuckbunny.mp4", "--frames", "10:30", "--size", "320x180", "-o", d + "/m.mkv",
                             "--degradation", "temporal=uniform:5,sr=2", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let m = try probe(d + "/m.mkv")
        #expect(m.first { $0["codec_type"] == "video" }?["width"] == "160")
        r = try CLI.run(["restore", d + "/m.mkv", "-o", d + "/r.mp4", "--prior", "gaussian", "--nfe", "2", "--init", "noise", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let s = try probe(d + "/r.mp4")
        #expect(s.first { $0["codec_type"] == "video" }?["width"] == "320")
        let audio = try #require(s.first { $0["codec_type"] == "audio" })
        let duration = try #require(Double(audio["duration"] ?? ""))
        #expect(abs(duration - 20.0 / 25.0) < 0.05, "audio lasts \(duration) s for a 0.8 s clip")
        let quiet = try CLI.run(["restore", d + "/m.mkv", "-o", d + "/n.mp4", "--prior", "gaussian", "--nfe", "2", "--init", "noise", "--quiet", "--no-audio"])
        #expect(quiet.status == 0)
        #expect(try probe(d + "/n.mp4").allSatisfy { $0["codec_type"] != "audio" })
    }

    @Test func brokenInputsEndCleanly() throws {
        let d = CLI.tempDir()
        let cut = d + "/cut.mp4", text = d + "/text.mp4"
        try Data(try Data(contentsOf: URL(fileURLWithPath: Self.samples + "/bikes.mp4")).prefix(100_000)).write(to: URL(fileURLWithPath: cut))
        try Data("hello, I am text".utf8).write(to: URL(fileURLWithPath: text))
        for input in [cut, text] {
            let r = try CLI.run(["degrade", input, "-o", d + "/out.mkv", "--degradation", "temporal=uniform:3", "--quiet"])
            #expect(r.status != 0 && r.status < 128, "\(input): \(r.status)")
            #expect(r.stderr.contains(input))
            #expect(!FileManager.default.fileExists(atPath: d + "/out.mkv"))
        }
        let beyond = try CLI.run(["degrade", Self.samples + "/carphone_pristine.mp4", "--frames", "100:140", "-o", d + "/out.mkv", "--degradation", "temporal=uniform:3"])
        #expect(beyond.status != 0 && beyond.stderr.contains("beyond the end"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: d).filter { $0.contains("partial") }.isEmpty)
    }

    @Test func evalReadsVideoFiles() throws {
        let d = CLI.tempDir()
        // An identity "degradation" stored losslessly: the same 4 frames.
        let g = try CLI.run(["degrade", Self.samples + "/carphone_pristine.mp4", "--frames", "8:12", "-o", d + "/same.mkv", "--degradation", "boundary=circular", "--quiet"])
        #expect(g.status == 0, "\(g.stderr)")
        let r = try CLI.run(["eval", "--reference", Self.samples + "/carphone_pristine.mp4", "--restored", d + "/same.mkv",
                             "--frames", "8:12", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let s = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        #expect((s["ssim"] as? [Double])?.count == 4)
        #expect((s["mean_psnr"] as? Double) == 100)
    }
}

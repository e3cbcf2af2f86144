import Testing
import Foundation
import SVICore
import SVIFormats
import SVITestSupport

/// Issue 15: footage of any length. A video longer than one segment is restored as
/// overlapping segments — the same bits at any rank count, a short video exactly as before,
/// a job killed mid-way resumes at another rank count to the uninterrupted result — and the
/// dry-run plans without allocating the job, predicting the peak memory it then measures.
@Suite(.serialized) struct SegmentedRestoreTests {
    func clip(_ d: String, frames: Int, size: Int = 16, spec: String = "temporal=uniform:3") throws {
        try NPY.write(CLI.clip(frames: frames, height: size, width: size), to: d + "/x.npy")
        let r = try CLI.run(["degrade", d + "/x.npy", "-o", d + "/y.npy", "--degradation", spec, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
    }

    func args(_ d: String, _ out: String, _ extra: [String] = []) -> [String] {
        ["restore", d + "/y.npy", "-o", d + "/" + out, "--prior", "gaussian", "--nfe", "4", "--seed", "3", "--quiet", "--overwrite"] + extra
    }

    func report(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    }

    func same(_ a: String, _ b: String) throws -> Bool {
        try NPY.readFloat32(a).array == NPY.readFloat32(b).array
    }

    @Test func segmentedOutputIsTheSameAtAnyRankCount() throws {
        let d = CLI.tempDir()
        try clip(d, frames: 26)
        let seg = ["--segment-frames", "10", "--overlap", "4"]
        let one = try CLI.run(args(d, "r1.npy", seg + ["--report", d + "/rep.json"]))
        #expect(one.status == 0, "\(one.stderr)")
        let segments = try #require(try report(d + "/rep.json")["segments"] as? [String: Any])
        #expect(segments["count"] as? Int == 4 && segments["segment_frames"] as? Int == 10)
        for ranks in [2, 3] {
            let r = try MPI.run(ranks: ranks, args(d, "r\(ranks).npy", seg))
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try same(d + "/r1.npy", d + "/r\(ranks).npy"), "\(ranks) ranks differ from 1")
        }
        // Segments change the result (they are separate problems) — the test is not vacuous.
        #expect(try CLI.run(args(d, "whole.npy")).status == 0)
        #expect(try !same(d + "/r1.npy", d + "/whole.npy"))
    }

    /// Each segment is the restoration of its window of the file: frames only one segment
    /// covers equal `--frames a:b` of that window bit for bit (so rank 0 fed every segment the
    /// right measured frames, the shared ones from what it kept).
    @Test func aSegmentIsItsWindowOfTheFile() throws {
        let d = CLI.tempDir()
        try clip(d, frames: 30, size: 8)
        let r = try CLI.run(["restore", d + "/y.npy", "-o", d + "/seg.npy", "--method", "cg", "--segment-frames", "12", "--overlap", "4",
                             "--quiet", "--report", d + "/rep.json"])
        #expect(r.status == 0, "\(r.stderr)")
        let segments = try #require(try report(d + "/rep.json")["segments"] as? [String: Any])
        let n = try #require(segments["count"] as? Int), l = try #require(segments["segment_frames"] as? Int)
        #expect(n == 4)
        let starts = (0..<n).map { $0 * (30 - l) / (n - 1) }
        let seg = try NPY.readFloat32(d + "/seg.npy")
        for (k, a) in starts.enumerated() {
            #expect(try CLI.run(["restore", d + "/y.npy", "-o", d + "/w.npy", "--method", "cg", "--frames", "\(a):\(a + l)", "--quiet", "--overwrite"]).status == 0)
            let w = try NPY.readFloat32(d + "/w.npy")
            let only = max(a, k > 0 ? starts[k - 1] + l : 0)..<(k + 1 < n ? starts[k + 1] : 30)
            #expect(!only.isEmpty)
            for t in only {
                #expect(Array(UnsafeBufferPointer(start: seg.frame(t), count: seg.frameSize)) == Array(UnsafeBufferPointer(start: w.frame(t - a), count: w.frameSize)),
                        "frame \(t) of segment \(k) differs from its window")
            }
        }
    }

    /// A video no longer than a segment is one segment: exactly the unsegmented result, for
    /// every method (the memory work of issue 15 changed no bit).
    @Test func aShortVideoIsOneSegmentAndTodaysResult() throws {
        let d = CLI.tempDir()
        try clip(d, frames: 12, spec: "temporal=uniform:3,blur=1.0")
        for extra in [[String](), ["--method", "cg"], ["--batch-independent"]] {
            #expect(try CLI.run(args(d, "a.npy", extra)).status == 0)
            let r = try CLI.run(args(d, "b.npy", extra + ["--segment-frames", "12", "--report", d + "/rep.json"]))
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try same(d + "/a.npy", d + "/b.npy"))
            #expect((try report(d + "/rep.json")["segments"] as? [String: Any])?["count"] as? Int == 1)
        }
    }

    /// Killed in its second segment at 3 ranks (an injected failure aborts the MPI job after
    /// the checkpoint of step 1 of segment 2), resumed at 2 ranks: equal to the uninterrupted
    /// job bit for bit; finished segments are not recomputed. Killed between segments too.
    @Test func aJobKilledInItsSecondSegmentResumesAtAnotherRankCount() throws {
        let d = CLI.tempDir()
        try clip(d, frames: 24)
        let seg = ["--segment-frames", "10", "--overlap", "4"]
        #expect(try CLI.run(args(d, "full.npy", seg)).status == 0)
        for (failAt, resumedStep) in [(6, 5), (9, nil as Int?)] {
            let ck = d + "/ck\(failAt)"
            let killed = try MPI.run(ranks: 3, args(d, "k\(failAt).npy", seg + ["--checkpoint-dir", ck, "--fail-on-rank", "1", "--fail-at-step", "\(failAt)"]))
            #expect(killed.status != 0)
            #expect(!FileManager.default.fileExists(atPath: d + "/k\(failAt).npy"))
            #expect(FileManager.default.fileExists(atPath: ck + "/finished/progress.json"))
            let r = try MPI.run(ranks: 2, args(d, "k\(failAt).npy", seg + ["--checkpoint-dir", ck, "--report", d + "/rep\(failAt).json"]))
            #expect(r.status == 0, "\(r.stderr)")
            let rep = try report(d + "/rep\(failAt).json")
            #expect(rep["resumed_from_segment"] as? Int == (failAt == 6 ? 1 : 2))
            #expect(rep["resumed_from_step"] as? Int == resumedStep)
            #expect(try same(d + "/k\(failAt).npy", d + "/full.npy"), "resumed job (failed at job step \(failAt)) differs")
            // The finished frames were only kept until the output was complete.
            #expect(!FileManager.default.fileExists(atPath: ck + "/finished"))
        }
    }

    /// Issue 29: `--dry-run` prints the plan the run executes (both come from
    /// `RestorePipeline`): the printed segments, their length, overlap and reason, the steps,
    /// and the settings it planned for are the run's, at one rank and at two.
    @Test(arguments: [1, 2])
    func dryRunPrintsThePlanTheRunExecutes(ranks: Int) throws {
        let d = CLI.tempDir()
        try clip(d, frames: 30, size: 16)
        let common = args(d, "r.npy", ["--segment-frames", "12", "--overlap", "4"])
        let launch: ([String]) throws -> CLI.Result = { a in ranks == 1 ? try CLI.run(a) : try MPI.run(ranks: ranks, a) }
        let dry = try launch(common + ["--dry-run", "--report", d + "/plan.json"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d + "/r.npy"))
        let run = try launch(common + ["--report", d + "/rep.json"])
        #expect(run.status == 0, "\(run.stderr)")
        let plan = try report(d + "/plan.json"), rep = try report(d + "/rep.json")
        let segments = try #require(rep["segments"] as? [String: Any])
        #expect(plan["segments"] as? Int == segments["count"] as? Int && (segments["count"] as? Int ?? 0) > 1)
        #expect(plan["segment_frames"] as? Int == segments["segment_frames"] as? Int)
        #expect(plan["overlap"] as? Int == segments["overlap"] as? Int)
        #expect(plan["segment_reason"] as? String == segments["reason"] as? String)
        #expect(plan["ranks"] as? Int == ranks && rep["ranks"] as? Int == ranks)
        let settings = try #require(rep["settings"] as? [String: Any])
        #expect(plan["steps"] as? Int == settings["evaluations"] as? Int)
        #expect(dry.stdout.contains("segments:   \(segments["count"] as? Int ?? -1) of \(segments["segment_frames"] as? Int ?? -1) frames, overlap \(segments["overlap"] as? Int ?? -1)"), "\(dry.stdout)")
        // The settings planned for are the settings run (all but the report's own path).
        var asked = try #require(plan["request"] as? [String: Any]), ran = try #require(rep["request"] as? [String: Any])
        asked["report"] = nil; ran["report"] = nil
        let json = { (o: [String: Any]) in String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self) }
        #expect(try json(asked) == json(ran))
    }

    /// The plan comes from headers only: 18,000 frames of 1080p on 64 ranks (a sparse .npy of
    /// 448 GB) plans in well under 200 MB and lists its segments.
    @Test func dryRunOfALongHDJobAllocatesNothingOfIt() throws {
        let d = CLI.tempDir()
        let path = d + "/y.npy"
        var header = NPY.header(shape: [18_000, 3, 1080, 1920])
        let fd = open(path, O_CREAT | O_WRONLY, 0o644)
        _ = header.withUnsafeMutableBytes { write(fd, $0.baseAddress!, $0.count) }
        #expect(ftruncate(fd, off_t(header.count) + off_t(18_000 * 3 * 1080 * 1920 * 4)) == 0)
        close(fd)
        let r = try CLI.run(["restore", path, "-o", d + "/r.mp4", "--degradation", "temporal=uniform:7", "--preset", "adm-256-uncond",
                             "--calibrated", "9.3", "--dry-run", "--plan-ranks", "64", "--memory-per-rank", "64G", "--report", d + "/plan.json"])
        #expect(r.status == 0, "\(r.stderr)")
        let plan = try report(d + "/plan.json")
        #expect((plan["dry_run_peak_memory_mb"] as? Double ?? 1e9) < 200, "\(plan["dry_run_peak_memory_mb"] ?? "none")")
        let segments = try #require(plan["segments"] as? Int)
        #expect(segments > 1)
        #expect(r.stdout.contains("segments:   \(segments) of"))
        #expect((plan["predicted_peak_rank0_mb"] as? Double ?? 1e9) < 64 * 1024)
        // A step of this job is far longer than the Slurm script's warning before its limit.
        #expect(r.stdout.contains("too short to finish it"), "\(r.stdout)")
    }

    /// The dry-run reads a video file's header (frames, size; --frames and --size applied).
    @Test func dryRunAcceptsVideoFiles() throws {
        let d = CLI.tempDir()
        try clip(d, frames: 30, size: 32)
        #expect(try CLI.run(["degrade", d + "/x.npy", "-o", d + "/y.mkv", "--degradation", "temporal=uniform:3", "--quiet"]).status == 0)
        let r = try CLI.run(["restore", d + "/y.mkv", "-o", d + "/r.mp4", "--prior", "gaussian", "--dry-run", "--frames", "4:24", "--size", "16x16",
                             "--segment-frames", "12", "--report", d + "/plan.json"])
        #expect(r.status == 0, "\(r.stderr)")
        let plan = try report(d + "/plan.json")
        #expect(plan["frames"] as? Int == 20)
        #expect(plan["frame_shape"] as? [Int] == [3, 16, 16])
        #expect(plan["segments"] as? Int == 2)
        #expect(!FileManager.default.fileExists(atPath: d + "/r.mp4"))
    }

    /// The dry-run's memory prediction for rank 0 is within 15% of the peak the run measures,
    /// at two sizes.
    @Test(arguments: [(120, 32, "40"), (200, 48, "200")])
    func dryRunPredictsThePeakMemory(_ c: (Int, Int, String)) throws {
        let d = CLI.tempDir()
        try clip(d, frames: c.0, size: c.1, spec: "temporal=uniform:7")
        let common = args(d, "r.npy", ["--segment-frames", c.2, "--report", d + "/rep.json"])
        #expect(try CLI.run(common + ["--dry-run"]).status == 0)
        let predicted = try #require(try report(d + "/rep.json")["predicted_peak_rank0_mb"] as? Double)
        #expect(try CLI.run(common).status == 0)
        let measured = try #require(try report(d + "/rep.json")["peak_memory_mb"] as? Double)
        #expect(abs(predicted - measured) <= 0.15 * measured, "predicted \(predicted) MB, measured \(measured) MB")
    }

    /// The same with noise, where DDS warm-starts from ADMM-TV: its state sits beside the
    /// sampler's (the plan once left it out and predicted a third of the peak).
    @Test func dryRunPredictsThePeakMemoryOfAWarmStart() throws {
        let d = CLI.tempDir()
        try clip(d, frames: 160, size: 64, spec: "temporal=uniform:7,noise=0.01")
        let common = args(d, "r.npy", ["--report", d + "/rep.json"])
        #expect(try CLI.run(common + ["--dry-run"]).status == 0)
        let predicted = try #require(try report(d + "/rep.json")["predicted_peak_rank0_mb"] as? Double)
        let r = try CLI.run(common)
        #expect(r.status == 0, "\(r.stderr)")
        let rep = try report(d + "/rep.json")
        #expect(rep["timings"].flatMap { ($0 as? [String: Any])?["warm_start_s"] } != nil, "no warm start: the test would not test it")
        let measured = try #require(rep["peak_memory_mb"] as? Double)
        #expect(abs(predicted - measured) <= 0.15 * measured, "predicted \(predicted) MB, measured \(measured) MB")
    }

    /// --frames a:b restores part of a file; the clip's first rows see frames before a, so
    /// they are left out (not invented): the result is the window of the file's problem.
    @Test func framesRestorePartOfAFile() throws {
        let d = CLI.tempDir()
        try clip(d, frames: 20)
        let r = try CLI.run(args(d, "part.npy", ["--frames", "6:14", "--report", d + "/rep.json"]))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try NPY.readFloat32(d + "/part.npy").shape == [8, 3, 16, 16])
        #expect(try report(d + "/rep.json")["clip"] as? [Int] == [6, 14])
        let bad = try CLI.run(args(d, "bad.npy", ["--frames", "18:30"]))
        #expect(bad.status != 0 && bad.stderr.contains("beyond the end"), "\(bad.stderr)")
    }

    /// A real clip of more than 1,000 frames (Big Buck Bunny looped eight times, scaled to
    /// 64×36, with its audio) from a video file to a video file under `mpirun -np 2`, in
    /// segments: every frame arrives, in order, with the audio, and rank 0 never held the video.
    @Test func aThousandFrameClipFromVideoToVideoUnderMPI() throws {
        let d = CLI.tempDir()
        let src = Samples.path("bigbuckbunny.mp4")
        var r = try CLI.run(["-v", "error", "-y", "-stream_loop", "7", "-i", src, "-vf", "scale=64:36", "-frames:v", "1040",
                             "-c:v", "libx264", "-crf", "16", "-c:a", "aac", d + "/long.mp4"], executable: "/usr/bin/ffmpeg")
        #expect(r.status == 0, "\(r.stderr)")
        r = try CLI.run(["degrade", d + "/long.mp4", "-o", d + "/y.mkv", "--degradation", "temporal=gaussian:1,boundary=replicate", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        // From noise: the 8-bit file's rounding would otherwise pick an ADMM-TV warm start per segment
        // (issue 27), which this test of streaming and segments does not need.
        r = try MPI.run(ranks: 2, ["restore", d + "/y.mkv", "-o", d + "/out.mp4", "--prior", "gaussian", "--nfe", "2", "--seed", "1", "--init", "noise",
                                   "--segment-frames", "300", "--reference", d + "/long.mp4", "--report", d + "/rep.json", "--quiet"], timeout: 900)
        #expect(r.status == 0, "\(r.stderr)")
        let rep = try report(d + "/rep.json")
        #expect((rep["segments"] as? [String: Any])?["count"] as? Int == 4)
        #expect((rep["quality"] as? [String: Any])?["psnr"] as? [Double] != nil)
        let probe = try CLI.run(["-v", "error", "-count_frames", "-show_entries", "stream=codec_type,nb_read_frames,width,height", "-of", "csv=p=0", d + "/out.mp4"],
                                executable: "/usr/bin/ffprobe")
        #expect(probe.stdout.contains("video,64,36,1040"), "\(probe.stdout)")
        #expect(probe.stdout.contains("audio"), "\(probe.stdout)")
    }
}

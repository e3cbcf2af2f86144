import Testing
import Foundation
import SVICore
import SVIFormats
import SVIContracts
import SVIOperators
import SVIPipeline

/// Issue 29: the restore pipeline as a library — planned and run in-process from one
/// `RestoreSettings` value, its plan the one the run executes, its settings checked in one place.
@Suite struct RestorePipelineTests {
    /// A smooth moving pattern [T][3][H][W] in [0, 1] and its measurement under `spec`, as
    /// float32 .npy files in a fresh folder; returns the folder.
    func measuredClip(frames: Int, size: Int, spec: String) throws -> String {
        let d = NSTemporaryDirectory() + "svi-pipeline-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        let x = Tensor(shape: [frames, 3, size, size])
        for f in 0..<frames { for c in 0..<3 { for y in 0..<size { for i in 0..<size {
            x[((f * 3 + c) * size + y) * size + i] = Float(0.5 + 0.35 * sin(Double(i) * 0.35 + Double(y) * 0.2 + Double(c) + Double(f) * 0.25))
        } } } }
        let op = try DegradationOperator(spec: try DegradationSpec.parse(spec), frame: FrameShape(channels: 3, height: size, width: size),
                                         totalFrames: frames, maskSeed: 0)
        try NPY.write(x, to: d + "/x.npy")
        try NPY.write(op.measure(x, .local(totalFrames: frames), noiseSeed: 0), to: d + "/y.npy")
        return d
    }

    func settings(_ d: String, spec: String, _ change: (inout RestoreSettings) -> Void = { _ in }) -> RestoreSettings {
        var s = RestoreSettings()
        s.input = d + "/y.npy"; s.output = d + "/r.npy"; s.degradation = spec
        s.prior = "gaussian"; s.nfe = 4; s.seed = 3; s.quiet = true
        change(&s)
        return s
    }

    @Test func runRestoresInProcessAndReturnsTheReport() throws {
        let spec = "temporal=uniform:3"
        let d = try measuredClip(frames: 10, size: 8, spec: spec)
        let s = settings(d, spec: spec) { $0.method = .cg; $0.reference = d + "/x.npy"; $0.report = d + "/rep.json" }
        let report = try #require(try RestorePipeline(s).run(comm: LocalCommunicator()))
        let r = try NPY.readFloat32(d + "/r.npy")
        #expect(r.shape == [10, 3, 8, 8])
        #expect(report.frames == 10 && report.frameShape == [3, 8, 8] && report.method == "cg" && report.degradation == spec)
        // CG from Aᵀy on an exact measurement: data-consistent, and closer to the truth than Aᵀy's start.
        #expect(try #require(report.residual) < 1e-3)
        let psnr = try #require(report.quality?["mean_psnr"]?.first)
        #expect(psnr > 30, "mean PSNR \(psnr)")
        // The report on disk is the one returned.
        let disk = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: d + "/rep.json"))) as! [String: Any]
        #expect(disk["frames"] as? Int == 10 && disk["method"] as? String == "cg")
    }

    /// The same settings run twice in-process give the same bits (no state left behind by the
    /// first run: the pipeline holds everything it uses).
    @Test func twoRunsOfTheSameSettingsGiveTheSameBits() throws {
        let spec = "temporal=uniform:3"
        let d = try measuredClip(frames: 8, size: 8, spec: spec)
        try RestorePipeline(settings(d, spec: spec)).run(comm: LocalCommunicator())
        let first = try NPY.readFloat32(d + "/r.npy").array
        try RestorePipeline(settings(d, spec: spec) { $0.overwrite = true }).run(comm: LocalCommunicator())
        #expect(try NPY.readFloat32(d + "/r.npy").array == first)
    }

    /// The plan (what --dry-run prints) is the plan the run executes: segments, their length,
    /// overlap and reason, and the steps per segment. (With a memory budget instead of
    /// --segment-frames both go through the same `planSegments`, but the plan counts the
    /// process's memory before the job and the run measures it after loading the model, so a
    /// few MB may move the segment length by a frame or two on tiny frames.)
    @Test(arguments: [(16, 4), (12, 8)])
    func planIsWhatTheRunExecutes(segment: (frames: Int, overlap: Int)) throws {
        let spec = "temporal=uniform:3"
        let d = try measuredClip(frames: 40, size: 16, spec: spec)
        let s = settings(d, spec: spec) { $0.segmentFrames = segment.frames; $0.overlap = segment.overlap }
        let pipeline = try RestorePipeline(s)
        let plan = try pipeline.plan(ranks: 1)
        let report = try #require(try pipeline.run(comm: LocalCommunicator()))
        let segments = try #require(report.segments)
        #expect(segments.count > 1, "the case must have several segments: \(segments.count)")
        #expect(plan.segments == segments.count && plan.segmentFrames == segments.segmentFrames && plan.overlap == segments.overlap)
        #expect(plan.segmentReason == segments.reason)
        #expect(plan.steps == report.settings?.evaluations)
        #expect(plan.frames == report.frames && plan.frameShape == report.frameShape)
    }

    /// Cancellation reaches the pipeline as a handler, not a process-wide flag: asked to stop
    /// after the third step, the run ends with the checkpoint status (85) and its snapshot, no
    /// output; run again, it continues from the checkpoint to the uninterrupted run's bits.
    @Test func aStopHandlerCheckpointsAndTheNextRunContinuesToTheSameBits() throws {
        let spec = "temporal=uniform:3"
        let d = try measuredClip(frames: 8, size: 8, spec: spec)
        try RestorePipeline(settings(d, spec: spec) { $0.nfe = 6; $0.output = d + "/whole.npy" }).run(comm: LocalCommunicator())
        final class Calls: @unchecked Sendable {
            let lock = NSLock(); var n = 0
            func next() -> Int { lock.lock(); defer { lock.unlock() }; n += 1; return n }
        }
        let calls = Calls()
        let stopping = try RestorePipeline(settings(d, spec: spec) { $0.nfe = 6; $0.checkpointDir = d + "/ckpt" })
        do {
            try stopping.run(comm: LocalCommunicator(), control: .handler { calls.next() >= 3 })
            Issue.record("the run did not stop")
        } catch let e as SilentFailure {
            #expect(e.code == StopRequest.exitStatus)
        }
        #expect(!FileManager.default.fileExists(atPath: d + "/r.npy"), "a stopped run leaves no output")
        let report = try #require(try stopping.run(comm: LocalCommunicator()))
        #expect(report.resumedFromStep == 3)
        #expect(try NPY.readFloat32(d + "/r.npy").array == NPY.readFloat32(d + "/whole.npy").array)
    }

    /// The user's two steps in-process: `DegradeJob` writes the measurement and its sidecar;
    /// the restore reads the degradation and the clean frame shape from that sidecar (no
    /// `degradation` in its settings) and gets back to the truth.
    @Test func degradeThenRestoreThroughTheSidecar() throws {
        let d = try measuredClip(frames: 8, size: 16, spec: "temporal=uniform:3")
        var degrade = DegradeSettings()
        degrade.input = d + "/x.npy"; degrade.output = d + "/m.npy"; degrade.degradation = "temporal=uniform:3,sr=2"
        degrade.seed = 4; degrade.quiet = true
        try DegradeJob.run(degrade, version: "test")
        #expect(try NPY.readFloat32(d + "/m.npy").shape == [8, 3, 8, 8])
        let side = try #require(try Sidecar.load(for: d + "/m.npy"))
        #expect(side.degradation == "temporal=uniform:3,sr=2" && side.originalShape == [3, 16, 16] && side.seed == 4)
        var s = settings(d, spec: "") { $0.method = .cg; $0.reference = d + "/x.npy" }
        s.degradation = nil; s.input = d + "/m.npy"
        let report = try #require(try RestorePipeline(s).run(comm: LocalCommunicator()))
        #expect(report.degradation == "temporal=uniform:3,sr=2" && report.frameShape == [3, 16, 16])
        #expect(try #require(report.quality?["mean_psnr"]?.first) > 20)
        // Degrading again onto the same name needs overwrite: the user's file is not replaced.
        #expect(throws: SVIError.self) { try DegradeJob.run(degrade, version: "test") }
    }

    /// Rules between options are the settings' own: settings built in code are refused as the
    /// command line's are (a bad-option error naming the option), before anything is read.
    @Test func contradictorySettingsAreRefusedBeforeAnythingRuns() throws {
        let cases: [(String, (inout RestoreSettings) -> Void)] = [
            ("--checkpoint-dir", { $0.method = .cg; $0.checkpointDir = "/tmp/x" }),
            ("--deadline", { $0.deadline = 1 }),
            ("--init", { $0.method = .admmTV; $0.initEstimate = .cg }),
            ("--sampler", { $0.sampler = .pnp; $0.eta = 0.5 }),
            ("--model", { $0.model = "m.safetensors" }),
            ("--overlap", { $0.segmentFrames = 8; $0.overlap = 8 }),
            ("--tile-overlap", { $0.tile = 16; $0.tileOverlap = 9 }),
            ("--frames", { $0.frames = "5:2" }),
            ("--memory-per-rank", { $0.memoryPerRank = "lots" }),
        ]
        for (option, change) in cases {
            var s = settings("/nonexistent", spec: "temporal=uniform:3")
            change(&s)
            do {
                _ = try RestorePipeline(s)
                Issue.record("\(option): accepted")
            } catch let e as SVIError {
                #expect(e.kind == .badOption && e.field == option, "\(option): \(e.kind) \(e.field ?? "-") \(e.message)")
            }
        }
    }

    /// One schema: the settings survive JSON (what a checkpoint or a report would store) and
    /// compare by value.
    @Test func settingsRoundTripThroughJSON() throws {
        var s = settings("/data", spec: "temporal=gaussian:1,sr=2") { $0.tile = 64; $0.tvLambda = 0.01; $0.initEstimate = .admmTV; $0.precision = .bf16 }
        let back = try JSONDecoder().decode(RestoreSettings.self, from: JSONEncoder().encode(s))
        #expect(back == s)
        s.tvLambda = 0.02
        #expect(back != s)
    }
}

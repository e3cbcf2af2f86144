import Testing
import Foundation
import SVICore
import SVIFormats

/// Long jobs survive: killed or signalled runs continue from their checkpoints and give the
/// output of a run never interrupted, also at another rank count.
@Suite(.serialized) struct ResumeTests {
    let model = CLI.fixtures + "/adm-tiny/weights.safetensors"

    func setUp() throws -> String {
        let d = CLI.tempDir()
        try NPY.write(CLI.clip(frames: 9, height: 16, width: 16), to: d + "/x.npy")
        let r = try CLI.run(["degrade", d + "/x.npy", "-o", d + "/y.npy", "--degradation", "temporal=uniform:3,sr=2", "--quiet"])
        #expect(r.status == 0)
        return d
    }

    func restoreArgs(_ d: String, out: String) -> [String] {
        ["restore", d + "/y.npy", "-o", d + "/" + out, "--model", model, "--nfe", "10", "--init", "noise", "--seed", "11", "--quiet"]
    }

    func maxDifference(_ a: String, _ b: String) throws -> Float {
        let x = try NPY.readFloat32(a), y = try NPY.readFloat32(b)
        var m: Float = 0
        for i in 0..<x.count { m = max(m, abs(x[i] - y[i])) }
        return m
    }

    /// Starts `launch` in the background, waits for the checkpoint of step `step`, then sends
    /// `signal` to the processes whose command line contains `marker`.
    func interrupt(_ launch: Process, dir: String, step: Int, signal: Int32, marker: String) throws {
        try launch.run()
        let deadline = Date().addingTimeInterval(120)
        let target = dir + String(format: "/step-%06d", step)
        while !FileManager.default.fileExists(atPath: target) && launch.isRunning && Date() < deadline { usleep(20_000) }
        let pg = Process()
        pg.executableURL = URL(fileURLWithPath: "/usr/bin/pkill")
        pg.arguments = ["-\(signal)", "-f", marker]
        try pg.run(); pg.waitUntilExit()
        launch.waitUntilExit()
    }

    func process(_ executable: String, _ args: [String]) -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"; env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        p.environment = env
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        return p
    }

    @Test func sigkillAfterStepSevenThenResume() throws {
        let d = try setUp()
        #expect(try CLI.run(restoreArgs(d, out: "full.npy")).status == 0)
        let ck = d + "/ck"
        let p = process(CLI.binary, restoreArgs(d, out: "killed.npy") + ["--checkpoint-dir", ck])
        try interrupt(p, dir: ck, step: 7, signal: 9, marker: d + "/killed.npy")
        #expect(p.terminationStatus != 0)
        #expect(!FileManager.default.fileExists(atPath: d + "/killed.npy"))
        let r = try CLI.run(restoreArgs(d, out: "killed.npy") + ["--checkpoint-dir", ck, "--report", d + "/rep.json"])
        #expect(r.status == 0, "\(r.stderr)")
        let rep = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: d + "/rep.json"))) as! [String: Any]
        #expect((rep["resumed_from_step"] as? Int ?? 0) >= 7)
        #expect(try maxDifference(d + "/killed.npy", d + "/full.npy") == 0)
    }

    /// Plug-and-play refinement checkpoints its estimate as DDS does x_t: killed after level 5
    /// of 40, the same command continues and ends bit-equal to an uninterrupted run (its first
    /// level, chosen by the prior's test, comes back from the checkpoint); a DDS command does
    /// not continue its checkpoint.
    @Test func plugAndPlayKilledThenResumed() throws {
        // Frames large enough and levels many enough that the kill lands mid-run (at 64×64 a
        // level took ~2.5 ms once the debug build's float32 path was specialised, and the run
        // ended before the kill; at 256×256 the 35 levels after the fifth take about a second).
        let d = CLI.tempDir()
        try NPY.write(CLI.clip(frames: 9, height: 256, width: 256), to: d + "/x.npy")
        #expect(try CLI.run(["degrade", d + "/x.npy", "-o", d + "/y.npy", "--degradation", "temporal=uniform:3,sr=2", "--quiet"]).status == 0)
        let args = { (out: String) in ["restore", d + "/y.npy", "-o", d + "/" + out, "--prior", "gaussian", "--sampler", "pnp", "--pnp-levels", "auto:0.004", "--nfe", "40", "--threads", "1", "--quiet"] }
        #expect(try CLI.run(args("full.npy")).status == 0)
        let ck = d + "/ck"
        let p = process(CLI.binary, args("killed.npy") + ["--checkpoint-dir", ck])
        try interrupt(p, dir: ck, step: 5, signal: 9, marker: d + "/killed.npy")
        let dds = try CLI.run(restoreArgs(d, out: "dds.npy") + ["--checkpoint-dir", ck])
        #expect(dds.status != 0 && dds.stderr.contains("--sampler (pnp"), "\(dds.stderr)")
        let r = try CLI.run(args("killed.npy") + ["--checkpoint-dir", ck, "--report", d + "/rep.json"])
        #expect(r.status == 0, "\(r.stderr)")
        let rep = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: d + "/rep.json"))) as! [String: Any]
        #expect((rep["resumed_from_step"] as? Int ?? 0) >= 5)
        #expect((rep["settings"] as? [String: Any])?["sampler"] as? String == "pnp")
        // The first level the killed run's prior test chose came back from its checkpoint.
        #expect((rep["pnp_first_levels"] as? [Double])?.count == 1, "\(rep["pnp_first_levels"] ?? "none")")
        #expect(try maxDifference(d + "/killed.npy", d + "/full.npy") == 0)
    }

    @Test func sigusr1LeavesACheckpointAndTheDocumentedStatus() throws {
        let d = try setUp()
        #expect(try CLI.run(restoreArgs(d, out: "full.npy")).status == 0)
        let ck = d + "/ck"
        let p = process(CLI.binary, restoreArgs(d, out: "sig.npy") + ["--checkpoint-dir", ck])
        try interrupt(p, dir: ck, step: 2, signal: SIGUSR1, marker: d + "/sig.npy")
        #expect(p.terminationStatus == 85)
        #expect(!FileManager.default.fileExists(atPath: d + "/sig.npy"))
        let saved = try FileManager.default.contentsOfDirectory(atPath: ck).filter { $0.hasPrefix("step-") }.sorted()
        #expect(saved.last.map { $0 < "step-000010" } == true)
        let r = try CLI.run(restoreArgs(d, out: "sig.npy") + ["--resume", ck])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try maxDifference(d + "/sig.npy", d + "/full.npy") == 0)
    }

    /// The first users' defect: without --seed the seed was drawn anew on every run, so the
    /// command that the stop message (and Slurm's requeue) runs again refused the checkpoint.
    /// Now the run continues with the seed recorded in the checkpoint.
    @Test func sameCommandWithoutSeedResumes() throws {
        let d = try setUp()
        let ck = d + "/ck"
        let args = ["restore", d + "/y.npy", "-o", d + "/r.npy", "--model", model, "--nfe", "10", "--init", "noise", "--quiet", "--checkpoint-dir", ck, "--report", d + "/r.json"]
        let p = process(CLI.binary, args)
        try interrupt(p, dir: ck, step: 2, signal: SIGUSR1, marker: d + "/r.npy")
        #expect(p.terminationStatus == 85)
        let newest = try FileManager.default.contentsOfDirectory(atPath: ck).filter { $0.hasPrefix("step-") }.sorted().last!
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: ck + "/" + newest + "/state.json"))) as! [String: Any]
        let seed = try #require(state["seed"] as? Int)
        let r = try CLI.run(args)
        #expect(r.status == 0, "\(r.stderr)")
        let rep = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: d + "/r.json"))) as! [String: Any]
        #expect((rep["settings"] as? [String: Any])?["seed"] as? Int == seed)
        #expect((rep["resumed_from_step"] as? Int ?? 0) >= 2)
        // The same as a run never interrupted, with that seed.
        #expect(try CLI.run(["restore", d + "/y.npy", "-o", d + "/full.npy", "--model", model, "--nfe", "10", "--init", "noise", "--quiet", "--seed", String(seed)]).status == 0)
        #expect(try maxDifference(d + "/r.npy", d + "/full.npy") == 0)
    }

    /// --deadline: a run that could not finish another step (and its checkpoint) before the
    /// deadline stops after the step with a checkpoint and exit 85; the same command without
    /// the deadline finishes it, equal to an uninterrupted run.
    @Test func deadlineStopsWithACheckpointAndTheRunContinues() throws {
        let d = try setUp()
        #expect(try CLI.run(restoreArgs(d, out: "full.npy")).status == 0)
        let ck = d + "/ck"
        let soon = String(Int(Date().timeIntervalSince1970) + 3)     // less than one step and a checkpoint's allowance
        let stopped = try CLI.run(restoreArgs(d, out: "r.npy") + ["--checkpoint-dir", ck, "--deadline", soon])
        #expect(stopped.status == 85, "\(stopped.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d + "/r.npy"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: ck).contains("step-000001"))
        let r = try CLI.run(restoreArgs(d, out: "r.npy") + ["--checkpoint-dir", ck])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try maxDifference(d + "/r.npy", d + "/full.npy") == 0)
        // Without a checkpoint folder a deadline would throw the work away: refused up front.
        let bad = try CLI.run(restoreArgs(d, out: "s.npy") + ["--deadline", soon])
        #expect(bad.status != 0 && bad.stderr.contains("--deadline needs --checkpoint-dir"), "\(bad.stderr)")
    }

    /// Without a checkpoint folder there is nothing to save: SIGTERM ends the run at once
    /// (status 143), not after the step under way, and leaves no output.
    @Test func signalWithoutCheckpointFolderExitsAtOnce() throws {
        let d = CLI.tempDir()
        try NPY.write(CLI.clip(frames: 8, height: 96, width: 96), to: d + "/x.npy")
        #expect(try CLI.run(["degrade", d + "/x.npy", "-o", d + "/y.npy", "--degradation", "temporal=uniform:3", "--quiet"]).status == 0)
        let p = process(CLI.binary, ["restore", d + "/y.npy", "-o", d + "/r.npy", "--model", model, "--nfe", "200", "--batch", "8", "--report", d + "/r.json"])
        let err = Pipe()
        p.standardError = err
        try p.run()
        // Wait for the first step to be under way (the progress line), then signal.
        var seen = Data()
        while p.isRunning && !String(decoding: seen, as: UTF8.self).contains("svi restore:") {
            seen.append(err.fileHandleForReading.availableData)
        }
        usleep(300_000)
        let sent = Date()
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        #expect(p.terminationStatus == 143)
        #expect(Date().timeIntervalSince(sent) < 2, "took \(Date().timeIntervalSince(sent)) s")
        #expect(!FileManager.default.fileExists(atPath: d + "/r.npy"))
        #expect(!FileManager.default.fileExists(atPath: d + "/r.json"))
    }

    /// srun started several tasks without MPI (a site default of MpiDefault=none): svi
    /// refuses with one line instead of running the whole job once per task.
    @Test func severalSlurmTasksWithoutMPIAreRefused() throws {
        let d = try setUp()
        let r = try CLI.run(restoreArgs(d, out: "r.npy"), environment: ["SLURM_PROCID": "1", "SLURM_STEP_NUM_TASKS": "2"])
        #expect(r.status == 69, "exit \(r.status): the cluster's status (EX_UNAVAILABLE)")
        #expect(r.stderr.contains("srun started 2 tasks but MPI is not initialised"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(!FileManager.default.fileExists(atPath: d + "/r.npy"))
        // One task (srun -n1, or a plain batch script) is fine.
        let one = try CLI.run(restoreArgs(d, out: "r.npy"), environment: ["SLURM_PROCID": "0", "SLURM_STEP_NUM_TASKS": "1"])
        #expect(one.status == 0, "\(one.stderr)")
    }

    @Test func threeRanksKilledThenResumedOnTwoAndThree() throws {
        let d = try setUp()
        #expect(try MPI.run(ranks: 1, restoreArgs(d, out: "full.npy")).status == 0)
        let ck = d + "/ck"
        let args = ["--oversubscribe", "-np", "3", "--mca", "btl", "self,vader", "--mca", "btl_vader_single_copy_mechanism", "none",
                    CLI.binary] + restoreArgs(d, out: "mpi.npy") + ["--checkpoint-dir", ck, "--threads", "1"]
        let p = process(MPI.mpirun, args)
        try interrupt(p, dir: ck, step: 7, signal: 9, marker: d + "/mpi.npy")
        #expect(p.terminationStatus != 0)
        #expect(!FileManager.default.fileExists(atPath: d + "/mpi.npy"))
        // Resume a copy on 2 ranks, the original on 3.
        let ck2 = d + "/ck2"
        try FileManager.default.copyItem(atPath: ck, toPath: ck2)
        let r2 = try MPI.run(ranks: 2, restoreArgs(d, out: "mpi2.npy") + ["--resume", ck2])
        #expect(r2.status == 0, "\(r2.stderr)")
        let r3 = try MPI.run(ranks: 3, restoreArgs(d, out: "mpi.npy") + ["--checkpoint-dir", ck])
        #expect(r3.status == 0, "\(r3.stderr)")
        #expect(try maxDifference(d + "/mpi2.npy", d + "/full.npy") == 0)
        #expect(try maxDifference(d + "/mpi.npy", d + "/full.npy") == 0)
    }

    @Test func damagedOrMismatchedCheckpointsAreRefused() throws {
        let d = try setUp()
        let ck = d + "/ck"
        let r = try CLI.run(["restore", d + "/y.npy", "-o", d + "/a.npy", "--prior", "gaussian", "--nfe", "6", "--init", "noise", "--seed", "1", "--quiet", "--checkpoint-dir", ck])
        #expect(r.status == 0)
        // Another seed: refused, naming it.
        let m = try CLI.run(["restore", d + "/y.npy", "-o", d + "/b.npy", "--prior", "gaussian", "--nfe", "6", "--init", "noise", "--seed", "2", "--resume", ck])
        #expect(m.status != 0 && m.stderr.contains("--seed (1 vs 2)"), "\(m.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d + "/b.npy"))
        // Another model.
        let n = try CLI.run(["restore", d + "/y.npy", "-o", d + "/b.npy", "--model", model, "--nfe", "6", "--init", "noise", "--seed", "1", "--resume", ck])
        #expect(n.status != 0 && n.stderr.contains("the model"), "\(n.stderr)")
        // Damaged data in every snapshot (one damaged snapshot falls back to an older one:
        // HostileResumeTests).
        for snapshot in try FileManager.default.contentsOfDirectory(atPath: ck).filter({ $0.hasPrefix("step-") }) {
            let x = ck + "/" + snapshot + "/x.npy"
            var bytes = try Data(contentsOf: URL(fileURLWithPath: x))
            bytes[bytes.count - 10] ^= 0xff
            try bytes.write(to: URL(fileURLWithPath: x))
        }
        let c = try CLI.run(["restore", d + "/y.npy", "-o", d + "/b.npy", "--prior", "gaussian", "--nfe", "6", "--init", "noise", "--seed", "1", "--resume", ck])
        #expect(c.status != 0 && c.stderr.contains("damaged"), "\(c.stderr)")
        // A folder without checkpoints.
        let e = try CLI.run(["restore", d + "/y.npy", "-o", d + "/b.npy", "--prior", "gaussian", "--resume", d + "/nothing"])
        #expect(e.status != 0 && e.stderr.contains("no such checkpoint folder"))
    }

    /// Tiles and the warm start's own settings change x_t: a checkpoint made under one is not
    /// continued under another (it used to be, mixing two runs; issue 29).
    @Test func checkpointsRefuseOtherTilesOrWarmStartSettings() throws {
        let d = try setUp()
        let tiled = ["restore", d + "/y.npy", "-o", d + "/a.npy", "--model", model, "--nfe", "4", "--init", "noise", "--seed", "1", "--quiet", "--checkpoint-dir", d + "/ck"]
        #expect(try CLI.run(tiled + ["--tile", "16", "--tile-overlap", "4"]).status == 0)
        let whole = try CLI.run(tiled.map { $0 == d + "/a.npy" ? d + "/b.npy" : $0 } + ["--tile", "0"])
        #expect(whole.status != 0 && whole.stderr.contains("the tiles (--tile 16 --tile-overlap 4 vs whole frames)"), "\(whole.stderr)")
        let warm = ["restore", d + "/y.npy", "-o", d + "/c.npy", "--prior", "gaussian", "--nfe", "6", "--init", "admm-tv", "--start", "0.5", "--seed", "1", "--quiet",
                    "--checkpoint-dir", d + "/ck2", "--tv-iterations", "5"]
        #expect(try CLI.run(warm + ["--tv-lambda", "0.01"]).status == 0)
        let other = try CLI.run(warm.map { $0 == d + "/c.npy" ? d + "/e.npy" : $0 } + ["--tv-lambda", "0.02"])
        #expect(other.status != 0 && other.stderr.contains("the warm start's settings"), "\(other.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d + "/b.npy") && !FileManager.default.fileExists(atPath: d + "/e.npy"))
    }

    /// Issue 29: every option that changes the output, changed in turn, is refused by a resume
    /// from the first run's checkpoint, with a line naming it; nothing is written.
    @Test(arguments: [
        // DDS from noise.
        ([String](), ["--nfe", "7"], "--nfe"), ([], ["--cg-steps", "3"], "--cg-steps"), ([], ["--eta", "0.5"], "--eta"),
        ([], ["--gamma", "2"], "--gamma"), ([], ["--final-cg-steps", "50"], "--final-cg-steps"),
        ([], ["--batch-independent"], "--batch-independent"), ([], ["--seed", "2"], "--seed (1 vs 2)"),
        ([], ["--mask-seed", "3"], "the mask seed"), ([], ["--noise-sigma", "0.01"], "the degradation"),
        ([], ["--init", "admm-tv", "--start", "0.5"], "--start"), ([], ["--sampler", "pnp"], "--sampler"),
        ([], ["--segment-frames", "5", "--overlap", "2"], "the segment plan"),
        // A warm start from ADMM-TV: its own settings.
        (["--init", "admm-tv", "--start", "0.5", "--tv-iterations", "5"], ["--tv-lambda", "0.02"], "the warm start's settings"),
        (["--init", "admm-tv", "--start", "0.5", "--tv-iterations", "5"], ["--tv-rho", "0.1"], "the warm start's settings"),
        (["--init", "admm-tv", "--start", "0.5", "--tv-iterations", "5"], ["--tv-inner-cg", "4"], "the warm start's settings"),
        (["--init", "admm-tv", "--start", "0.5", "--tv-iterations", "5"], ["--no-tv-accelerate"], "the warm start's settings"),
        (["--init", "admm-tv", "--start", "0.5", "--tv-iterations", "5"], ["--tv-iterations", "6"], "the warm start's settings"),
        (["--init", "admm-tv", "--start", "0.5", "--tv-iterations", "5"], ["--init", "cg"], "--init"),
        // Plug-and-play: its levels and weight.
        (["--sampler", "pnp", "--nfe", "3"], ["--pnp-levels", "0.02:0.005"], "--sampler (pnp"),
        (["--sampler", "pnp", "--nfe", "3"], ["--pnp-weight", "2"], "--sampler (pnp"),
        // The network: the plain kernels give other bits (so does bf16: checkpointsRefuseAnotherPrecision).
        (["--model", CLI.fixtures + "/adm-tiny/weights.safetensors"], ["--reference-kernels"], "reference kernels"),
    ])
    func everyOutputAffectingOptionIsRefusedOnResume(base: [String], change: [String], names: String) throws {
        let d = try setUp()
        let prior = base.contains("--model") ? [] : ["--prior", "gaussian"]
        // DDS from noise unless the base says how to start (plug-and-play refuses --init noise).
        let start = base.contains("--init") || base.contains("--sampler") ? [] : ["--init", "noise"]
        let first = ["restore", d + "/y.npy", "-o", d + "/a.npy", "--nfe", "6", "--seed", "1", "--quiet",
                     "--checkpoint-dir", d + "/ck"] + start + prior + base
        let r = try CLI.run(first)
        #expect(r.status == 0, "\(r.stderr)")
        // The change's options replace the first run's (the last of a repeated option wins).
        let again = try CLI.run(first.map { $0 == d + "/a.npy" ? d + "/b.npy" : $0 } + change)
        #expect(again.status != 0 && again.stderr.contains(names), "\(change): exit \(again.status): \(again.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d + "/b.npy"), "\(change) resumed a checkpoint of other settings")
    }

    /// bf16 and fp32 make different x_t: a checkpoint of one is not continued in the other
    /// (where the CPU has no bf16, the option is refused before the checkpoint is read).
    @Test func checkpointsRefuseAnotherPrecision() throws {
        let d = try setUp()
        let run = ["restore", d + "/y.npy", "-o", d + "/a.npy", "--model", model, "--nfe", "4", "--init", "noise", "--seed", "1", "--quiet", "--checkpoint-dir", d + "/ck"]
        #expect(try CLI.run(run).status == 0)
        let bf16 = try CLI.run(run.map { $0 == d + "/a.npy" ? d + "/b.npy" : $0 } + ["--precision", "bf16"])
        #expect(bf16.status != 0)
        if DeterminismTests.bf16Available {
            #expect(bf16.stderr.contains("the model") && bf16.stderr.contains("bf16"), "\(bf16.stderr)")
        } else {
            #expect(bf16.stderr.contains("--precision bf16 needs a CPU with AVX-512 BF16"), "\(bf16.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: d + "/b.npy"))
    }
}

/// `--dry-run` plans without running or writing.
@Suite struct DryRunTests {
    @Test func planPrintsPerRankFiguresAndWritesNothing() throws {
        let d = CLI.tempDir()
        try NPY.write(CLI.clip(frames: 10, height: 16, width: 16), to: d + "/x.npy")
        #expect(try CLI.run(["degrade", d + "/x.npy", "-o", d + "/y.npy", "--degradation", "temporal=uniform:7", "--quiet"]).status == 0)
        let r = try CLI.run(["restore", d + "/y.npy", "-o", d + "/r.npy", "--model", CLI.fixtures + "/adm-tiny/weights.safetensors",
                             "--dry-run", "--plan-ranks", "4", "--batch", "1", "--report", d + "/plan.json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("frames per rank 2–3"))
        #expect(r.stdout.contains("blocks of 2 frames are shorter than the temporal halo (3)"))
        #expect(!FileManager.default.fileExists(atPath: d + "/r.npy"))
        let plan = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: d + "/plan.json"))) as! [String: Any]
        #expect(plan["parameters"] as? Int == 828_358)
        #expect((plan["seconds_per_frame"] as? Double ?? 0) > 0)
        #expect((plan["bytes_exchanged_per_step_per_rank"] as? Int ?? 0) == (2 * 5 + 2) * 2 * 3 * (3 * 16 * 16) * 8)
        // The scheduler's warning margin, derived from the step time (a fixed 120 s was shorter
        // than one step of the README's own 1,000-frame example).
        let margin = try #require(plan["signal_margin_s"] as? Int)
        let perStep = try #require(plan["seconds_per_step"] as? Double)
        #expect(Double(margin) >= 1.5 * perStep + 60)
        #expect(r.stdout.contains("sbatch --signal=B:USR1@\(margin)"))
    }
}

import Testing
import Foundation
import SVICore
import SVIFormats

/// A Slurm cluster brought up by `Scripts/slurm-test-cluster` for the length of one test — one
/// node (this machine) or emulated nodes over TCP — and what the tests do with it: submit
/// `Cluster/slurm.sbatch` unmodified, follow the job, read its log and report.
struct SlurmCluster {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let model = CLI.fixtures + "/adm-tiny/weights.safetensors"
    /// The tiny fixture network as the prior, unless `args` name one.
    static func prior(_ args: [String]) -> [String] { args.contains("--prior") ? [] : ["--model", model] }
    /// SLURM_CONF, and a work folder (shared by every node) holding the jobs' files.
    let env: [String: String], dir: String

    /// A running cluster for the length of `body` (`nodes` 0: the one-node cluster).
    static func with(nodes: Int = 0, _ body: (SlurmCluster) throws -> Void) throws {
        let dir = CLI.tempDir()
        let state = "/tmp/svi-slurm-\(nodes > 0 ? "nodes-" : "")\(getpid())"
        let script = repo + "/Scripts/slurm-test-cluster"
        let start = try Shell.run(script, ["start"] + (nodes > 0 ? ["--nodes", String(nodes)] : []) + [state])
        defer {
            _ = try? Shell.run(script, ["stop", state])
            try? FileManager.default.removeItem(atPath: dir)
        }
        try #require(start.status == 0, "the test cluster did not start: \(start.stderr)")
        try body(SlurmCluster(env: ["SLURM_CONF": state + "/slurm.conf"], dir: dir))
    }

    /// A measurement of `frames` frames of `size`² (`spec`, by default temporal k=3 + SR×2) at
    /// dir/y.npy.
    func measurement(frames: Int, size: Int, spec: String = "temporal=uniform:3,sr=2") throws {
        try NPY.write(CLI.clip(frames: frames, height: size, width: size), to: dir + "/x.npy")
        let g = try CLI.run(["degrade", dir + "/x.npy", "-o", dir + "/y.npy", "--degradation", spec, "--quiet", "--seed", "3"])
        try #require(g.status == 0, "\(g.stderr)")
    }

    /// `sbatch … Cluster/slurm.sbatch y.npy OUTPUT ARGS` from `dir`; the job's ID.
    func submit(sbatch: [String], args: [String], output: String = "r.npy", extraEnvironment: [String: String] = [:]) throws -> Int {
        var e = env.merging(extraEnvironment) { $1 }
        e["SVI"] = CLI.binary
        let r = try Shell.run("/usr/bin/sbatch", ["--parsable", "--chdir", dir, "--output", dir + "/job-%j.log"] + sbatch
                              + [SlurmCluster.repo + "/Cluster/slurm.sbatch", "y.npy", output, "--quiet"] + SlurmCluster.prior(args) + args,
                              environment: e)
        try #require(r.status == 0, "sbatch: \(r.stderr)")
        return try #require(Int(r.stdout.split(separator: ";").first?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""))
    }

    /// `scontrol ARGS`, which must succeed.
    func scontrol(_ args: [String]) throws {
        let r = try Shell.run("/usr/bin/scontrol", args, environment: env)
        #expect(r.status == 0, "scontrol \(args.joined(separator: " ")): \(r.stderr)")
    }

    /// `scontrol show job` as key → value.
    func job(_ id: Int) throws -> [String: String] {
        let r = try Shell.run("/usr/bin/scontrol", ["show", "job", String(id)], environment: env)
        var fields: [String: String] = [:]
        for token in r.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            let kv = token.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { fields[String(kv[0])] = String(kv[1]) }
        }
        return fields
    }

    /// Waits until the job is in one of `states` (and returns it), at most `timeout` seconds. A
    /// requeued job waits out its begin time (the test cluster's credential lifetime, ~11 s);
    /// releasing it earlier raced the revoked credential of its first run ("Job credential
    /// revoked", the job FAILED).
    func wait(_ id: Int, for states: Set<String>, timeout: TimeInterval = 180) throws -> [String: String] {
        let deadline = Date().addingTimeInterval(timeout)
        var info: [String: String] = [:]
        while Date() < deadline {
            info = try job(id)
            if let s = info["JobState"], states.contains(s) { return info }
            usleep(200_000)
        }
        Issue.record("job \(id) not in \(states.sorted()) after \(Int(timeout)) s: \(info["JobState"] ?? "?") (\(info["Reason"] ?? ""))")
        return info
    }

    /// Waits until the job has ended, whichever way.
    func waitUntilFinished(_ id: Int, timeout: TimeInterval = 180) throws -> [String: String] {
        try wait(id, for: ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"], timeout: timeout)
    }

    func log(_ id: Int) -> String {
        (try? String(contentsOfFile: dir + "/job-\(id).log", encoding: .utf8)) ?? ""
    }

    /// The report slurm.sbatch asks svi for (OUTPUT.report.json).
    func report(_ output: String = "r.npy") throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/" + output + ".report.json"))) as? [String: Any] ?? [:]
    }

    /// The same restoration run plainly in one process with `seed`, written to dir/plain.npy.
    func plainRun(seed: Int, args: [String]) throws {
        let r = try CLI.run(["restore", dir + "/y.npy", "-o", dir + "/plain.npy", "--quiet", "--seed", String(seed), "--overwrite"] + SlurmCluster.prior(args) + args)
        #expect(r.status == 0, "\(r.stderr)")
    }

    /// The job's output compared with dir/plain.npy bit for bit.
    func expectEqualToPlainRun(_ output: String = "r.npy") throws {
        let a = try NPY.readFloat32(dir + "/" + output), b = try NPY.readFloat32(dir + "/plain.npy")
        #expect(a.shape == b.shape)
        #expect((0..<min(a.count, b.count)).allSatisfy { a[$0] == b[$0] }, "the job's output \(output) differs from a plain run")
    }

    /// Waits until the job's checkpoint folder holds the snapshot of `step` (any, if nil).
    func waitForCheckpoint(_ output: String = "r.npy", step: Int? = nil, timeout: TimeInterval = 120) {
        let folder = dir + "/" + output + ".checkpoints"
        let wanted = step.map { String(format: "step-%06d", $0) }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline && !((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).contains(where: { wanted.map($0.elementsEqual) ?? $0.hasPrefix("step-") }) {
            usleep(50_000)
        }
    }
}

/// `Cluster/slurm.sbatch`, unmodified, submitted with `sbatch` to a real single-node Slurm
/// (Debian's 22.05 with munge, the common site default `MpiDefault=none`), brought up by
/// `Scripts/slurm-test-cluster` for each test and stopped after it. What users do: one task,
/// two tasks forming one MPI job, a time-limit warning followed by requeue and resume, scancel.
@Suite(.serialized) struct SlurmTests {
    /// One task on the whole node: the job is not refused or left pending on a node smaller
    /// than a hard-coded core count, svi gets the node's CPUs as threads, a seed fixed by the
    /// job, PMIx and the job's end as --deadline, and the output equals a plain run.
    @Test func oneTaskUsesTheWholeNodeAndEqualsAPlainRun() throws {
        try SlurmCluster.with { c in
            try c.measurement(frames: 6, size: 16)
            let id = try c.submit(sbatch: ["--ntasks=1", "--time=10"], args: ["--nfe", "3"])
            let info = try c.waitUntilFinished(id)
            #expect(info["JobState"] == "COMPLETED", "\(c.log(id))")
            let text = c.log(id)
            #expect(text.contains("--mpi=pmix") && text.contains("--deadline"), "\(text)")
            let rep = try c.report()
            #expect(rep["ranks"] as? Int == 1)
            #expect(rep["threads"] as? Int == ProcessInfo.processInfo.activeProcessorCount, "\(rep)")
            #expect((rep["settings"] as? [String: Any])?["seed"] as? Int == id)
            try c.plainRun(seed: id, args: ["--nfe", "3"])
            try c.expectEqualToPlainRun()
        }
    }

    /// Two tasks on one node form one 2-rank MPI job under MpiDefault=none (the script asks for
    /// PMIx), each rank with half the node's CPUs; without PMIx svi refuses in one line and the
    /// job fails with no output, instead of two tasks each running the whole job.
    @Test func twoTasksFormOneMPIJob() throws {
        try SlurmCluster.with { c in
            try c.measurement(frames: 6, size: 16)
            let id = try c.submit(sbatch: ["--ntasks=2", "--time=10"], args: ["--nfe", "3"])
            let info = try c.waitUntilFinished(id)
            #expect(info["JobState"] == "COMPLETED", "\(c.log(id))")
            let rep = try c.report()
            #expect(rep["ranks"] as? Int == 2, "\(rep)")
            #expect(rep["threads"] as? Int == max(1, ProcessInfo.processInfo.activeProcessorCount / 2))
            try c.plainRun(seed: id, args: ["--nfe", "3"])
            try c.expectEqualToPlainRun()

            try FileManager.default.removeItem(atPath: c.dir + "/r.npy")
            let bad = try c.submit(sbatch: ["--ntasks=2", "--time=10"], args: ["--nfe", "3"], extraEnvironment: ["SVI_MPI": "none"])
            let badInfo = try c.waitUntilFinished(bad)
            #expect(badInfo["JobState"] == "FAILED")
            #expect(c.log(bad).contains("srun started 2 tasks but MPI is not initialised"), "\(c.log(bad))")
            #expect(!FileManager.default.fileExists(atPath: c.dir + "/r.npy"))
        }
    }

    /// The time-limit warning (USR1 to the batch script, as `--signal=B:USR1@N` sends it): the
    /// ranks stop after the step with a checkpoint, the job requeues itself, the requeued job
    /// continues and completes, and the output equals an uninterrupted run — without the user
    /// passing --seed.
    @Test func warningSignalRequeuesAndTheJobResumes() throws {
        try SlurmCluster.with { c in
            try c.measurement(frames: 8, size: 48)
            let args = ["--nfe", "24", "--init", "noise"]
            let id = try c.submit(sbatch: ["--ntasks=1", "--time=10"], args: args)
            c.waitForCheckpoint(step: 2)
            let s = try Shell.run("/usr/bin/scancel", ["--batch", "--signal=USR1", String(id)], environment: c.env)
            #expect(s.status == 0, "\(s.stderr)")
            let info = try c.waitUntilFinished(id, timeout: 240)
            #expect(info["JobState"] == "COMPLETED", "\(c.log(id))")
            #expect(info["Restarts"] == "1", "\(info["Restarts"] ?? "?") restarts; \(c.log(id))")
            #expect(c.log(id).contains("requeueing job \(id)"))
            let rep = try c.report()
            #expect((rep["resumed_from_step"] as? Int ?? 0) >= 2, "\(rep)")
            try c.plainRun(seed: id, args: args)
            try c.expectEqualToPlainRun()
        }
    }

    /// The scaling study with srun as its launcher (as Cluster/README.md suggests): it used to
    /// pass mpirun's -np and -x, which srun refuses or reads as "exclude nodes".
    @Test func scalingStudyRunsUnderSrun() throws {
        try SlurmCluster.with { c in
            var e = c.env
            e["MPIRUN"] = "/usr/bin/srun --mpi=pmix"
            let r = try Shell.run(SlurmCluster.repo + "/Scripts/scaling-study",
                                  ["--ranks", "1,2", "--threads", "1", "--frames", "4", "--size", "16", "--nfe", "2", "--repeats", "1", "--out", c.dir], environment: e)
            #expect(r.status == 0, "\(r.stderr)")
            let csv = (try? String(contentsOfFile: c.dir + "/scaling.csv", encoding: .utf8)) ?? ""
            let rows = csv.split(separator: "\n").filter { $0.first?.isNumber == true }.map { $0.split(separator: ",").first.map(String.init) ?? "" }
            #expect(rows == ["1", "2"], "\(csv)")
        }
    }

    /// scancel ends the job: CANCELLED, not requeued, no output, the checkpoints kept.
    @Test func scancelCancelsAndKeepsTheCheckpoint() throws {
        try SlurmCluster.with { c in
            try c.measurement(frames: 8, size: 48)
            let id = try c.submit(sbatch: ["--ntasks=1", "--time=10"], args: ["--nfe", "24", "--init", "noise"])
            c.waitForCheckpoint(step: 2)
            #expect(try Shell.run("/usr/bin/scancel", [String(id)], environment: c.env).status == 0)
            let info = try c.waitUntilFinished(id)
            #expect(info["JobState"] == "CANCELLED", "\(c.log(id))")
            sleep(3)      // a requeue would show now
            let later = try c.job(id)
            #expect(later["JobState"] == "CANCELLED" && later["Restarts"] == "0", "\(later)")
            #expect(!FileManager.default.fileExists(atPath: c.dir + "/r.npy"))
            let kept = (try? FileManager.default.contentsOfDirectory(atPath: c.dir + "/r.npy.checkpoints")) ?? []
            #expect(kept.contains { $0.hasPrefix("step-") }, "\(kept)")
        }
    }
}

/// A program with arguments, its output captured in files and its exit awaited with waitpid.
/// (Foundation's Process missed the exit of the cluster script, whose daemons fork away from
/// it, and waited forever on the zombie.)
enum Shell {
    static func run(_ executable: String, _ args: [String], environment: [String: String] = [:]) throws -> CLI.Result {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pid = try spawn(executable, args, environment: environment, output: dir)
        return wait(pid, output: dir)
    }

    /// Starts the program with stdout and stderr going to `output`/out and `output`/err.
    static func spawn(_ executable: String, _ args: [String], environment: [String: String] = [:], output dir: String) throws -> pid_t {
        let outPath = dir + "/out", errPath = dir + "/err"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0)=\($1)" }
        let argv = ([executable] + args).map { strdup($0) } + [nil]
        let envp = env.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        // No blocked or ignored signals inherited from the test runner's thread: the scripts
        // under test trap TERM and USR1.
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), defaults = sigset_t()
        sigemptyset(&none)
        sigemptyset(&defaults)
        for sig in [SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGHUP] { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attr, argv, envp)
        guard rc == 0 else { throw SVIError("cannot start \(executable): \(String(cString: strerror(rc)))") }
        return pid
    }

    /// Waits for a program `spawn` started; its status and output.
    static func wait(_ pid: pid_t, output dir: String) -> CLI.Result {
        let outPath = dir + "/out", errPath = dir + "/err"
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let read = { (p: String) in (try? String(contentsOfFile: p, encoding: .utf8)) ?? "" }
        return CLI.Result(status: code, stdout: read(outPath), stderr: read(errPath))
    }
}

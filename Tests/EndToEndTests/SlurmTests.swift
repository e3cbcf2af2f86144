import Testing
import Foundation
import SVICore
import SVIFormats

/// `Cluster/slurm.sbatch`, unmodified, submitted with `sbatch` to a real single-node Slurm
/// (Debian's 22.05 with munge, the common site default `MpiDefault=none`), brought up by
/// `Scripts/slurm-test-cluster` for each test and stopped after it. What users do: one task,
/// two tasks forming one MPI job, a time-limit warning followed by requeue and resume, scancel.
@Suite(.serialized) struct SlurmTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let model = CLI.fixtures + "/adm-tiny/weights.safetensors"

    /// A running cluster for the length of `body`: its SLURM_CONF and a work folder.
    func withCluster(_ body: (_ env: [String: String], _ dir: String) throws -> Void) throws {
        let dir = CLI.tempDir()
        let state = "/tmp/svi-slurm-\(getpid())"
        let start = try Shell.run(SlurmTests.repo + "/Scripts/slurm-test-cluster", ["start", state])
        defer {
            _ = try? Shell.run(SlurmTests.repo + "/Scripts/slurm-test-cluster", ["stop", state])
            try? FileManager.default.removeItem(atPath: dir)
        }
        try #require(start.status == 0, "the test cluster did not start: \(start.stderr)")
        try body(["SLURM_CONF": state + "/slurm.conf"], dir)
    }

    /// A measurement of `frames` frames of `size`² (temporal k=3 + SR×2) in `dir`.
    func measurement(in dir: String, frames: Int, size: Int) throws {
        try NPY.write(CLI.clip(frames: frames, height: size, width: size), to: dir + "/x.npy")
        let g = try CLI.run(["degrade", dir + "/x.npy", "-o", dir + "/y.npy", "--degradation", "temporal=uniform:3,sr=2", "--quiet"])
        try #require(g.status == 0, "\(g.stderr)")
    }

    /// `sbatch … Cluster/slurm.sbatch y.npy r.npy ARGS` from `dir`; the job's ID.
    func submit(_ env: [String: String], dir: String, sbatch: [String], args: [String], extraEnvironment: [String: String] = [:]) throws -> Int {
        var e = env.merging(extraEnvironment) { $1 }
        e["SVI"] = CLI.binary
        let r = try Shell.run("/usr/bin/sbatch", ["--parsable", "--chdir", dir, "--output", dir + "/job-%j.log"] + sbatch
                              + [SlurmTests.repo + "/Cluster/slurm.sbatch", "y.npy", "r.npy", "--model", SlurmTests.model, "--quiet"] + args,
                              environment: e)
        try #require(r.status == 0, "sbatch: \(r.stderr)")
        return try #require(Int(r.stdout.split(separator: ";").first?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""))
    }

    /// `scontrol show job` as key → value.
    func job(_ id: Int, _ env: [String: String]) throws -> [String: String] {
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
    func wait(_ id: Int, for states: Set<String>, _ env: [String: String], timeout: TimeInterval = 180) throws -> [String: String] {
        let deadline = Date().addingTimeInterval(timeout)
        var info: [String: String] = [:]
        while Date() < deadline {
            info = try job(id, env)
            if let s = info["JobState"], states.contains(s) { return info }
            usleep(200_000)
        }
        Issue.record("job \(id) not in \(states.sorted()) after \(Int(timeout)) s: \(info["JobState"] ?? "?") (\(info["Reason"] ?? ""))")
        return info
    }

    /// Waits until the job has ended, whichever way.
    func waitUntilFinished(_ id: Int, _ env: [String: String], timeout: TimeInterval = 180) throws -> [String: String] {
        try wait(id, for: ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"], env, timeout: timeout)
    }

    func log(_ dir: String, _ id: Int) -> String {
        (try? String(contentsOfFile: dir + "/job-\(id).log", encoding: .utf8)) ?? ""
    }

    func report(_ dir: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/r.npy.report.json"))) as? [String: Any] ?? [:]
    }

    /// The same restoration run plainly with `seed`, compared to the job's output bit for bit.
    func expectEqualToPlainRun(_ dir: String, seed: Int, args: [String]) throws {
        let r = try CLI.run(["restore", dir + "/y.npy", "-o", dir + "/plain.npy", "--model", SlurmTests.model, "--quiet", "--seed", String(seed)] + args)
        #expect(r.status == 0, "\(r.stderr)")
        let a = try NPY.readFloat32(dir + "/r.npy"), b = try NPY.readFloat32(dir + "/plain.npy")
        #expect(a.shape == b.shape)
        #expect((0..<min(a.count, b.count)).allSatisfy { a[$0] == b[$0] }, "the job's output differs from a plain run")
    }

    func waitForCheckpoint(_ dir: String, step: Int, timeout: TimeInterval = 120) {
        let target = dir + "/r.npy.checkpoints/" + String(format: "step-%06d", step)
        let deadline = Date().addingTimeInterval(timeout)
        while !FileManager.default.fileExists(atPath: target) && Date() < deadline { usleep(50_000) }
    }

    /// One task on the whole node: the job is not refused or left pending on a node smaller
    /// than a hard-coded core count, svi gets the node's CPUs as threads, a seed fixed by the
    /// job, PMIx and the job's end as --deadline, and the output equals a plain run.
    @Test func oneTaskUsesTheWholeNodeAndEqualsAPlainRun() throws {
        try withCluster { env, dir in
            try measurement(in: dir, frames: 6, size: 16)
            let id = try submit(env, dir: dir, sbatch: ["--ntasks=1", "--time=10"], args: ["--nfe", "3"])
            let info = try waitUntilFinished(id, env)
            #expect(info["JobState"] == "COMPLETED", "\(log(dir, id))")
            let text = log(dir, id)
            #expect(text.contains("--mpi=pmix") && text.contains("--deadline"), "\(text)")
            let rep = try report(dir)
            #expect(rep["ranks"] as? Int == 1)
            #expect(rep["threads"] as? Int == ProcessInfo.processInfo.activeProcessorCount, "\(rep)")
            #expect((rep["settings"] as? [String: Any])?["seed"] as? Int == id)
            try expectEqualToPlainRun(dir, seed: id, args: ["--nfe", "3"])
        }
    }

    /// Two tasks on one node form one 2-rank MPI job under MpiDefault=none (the script asks for
    /// PMIx), each rank with half the node's CPUs; without PMIx svi refuses in one line and the
    /// job fails with no output, instead of two tasks each running the whole job.
    @Test func twoTasksFormOneMPIJob() throws {
        try withCluster { env, dir in
            try measurement(in: dir, frames: 6, size: 16)
            let id = try submit(env, dir: dir, sbatch: ["--ntasks=2", "--time=10"], args: ["--nfe", "3"])
            let info = try waitUntilFinished(id, env)
            #expect(info["JobState"] == "COMPLETED", "\(log(dir, id))")
            let rep = try report(dir)
            #expect(rep["ranks"] as? Int == 2, "\(rep)")
            #expect(rep["threads"] as? Int == max(1, ProcessInfo.processInfo.activeProcessorCount / 2))
            try expectEqualToPlainRun(dir, seed: id, args: ["--nfe", "3"])

            try FileManager.default.removeItem(atPath: dir + "/r.npy")
            let bad = try submit(env, dir: dir, sbatch: ["--ntasks=2", "--time=10"], args: ["--nfe", "3"], extraEnvironment: ["SVI_MPI": "none"])
            let badInfo = try waitUntilFinished(bad, env)
            #expect(badInfo["JobState"] == "FAILED")
            #expect(log(dir, bad).contains("srun started 2 tasks but MPI is not initialised"), "\(log(dir, bad))")
            #expect(!FileManager.default.fileExists(atPath: dir + "/r.npy"))
        }
    }

    /// The time-limit warning (USR1 to the batch script, as `--signal=B:USR1@N` sends it): the
    /// ranks stop after the step with a checkpoint, the job requeues itself, the requeued job
    /// continues and completes, and the output equals an uninterrupted run — without the user
    /// passing --seed.
    @Test func warningSignalRequeuesAndTheJobResumes() throws {
        try withCluster { env, dir in
            try measurement(in: dir, frames: 8, size: 48)
            let args = ["--nfe", "24", "--init", "noise"]
            let id = try submit(env, dir: dir, sbatch: ["--ntasks=1", "--time=10"], args: args)
            waitForCheckpoint(dir, step: 2)
            let s = try Shell.run("/usr/bin/scancel", ["--batch", "--signal=USR1", String(id)], environment: env)
            #expect(s.status == 0, "\(s.stderr)")
            let info = try waitUntilFinished(id, env, timeout: 240)
            #expect(info["JobState"] == "COMPLETED", "\(log(dir, id))")
            #expect(info["Restarts"] == "1", "\(info["Restarts"] ?? "?") restarts; \(log(dir, id))")
            #expect(log(dir, id).contains("requeueing job \(id)"))
            let rep = try report(dir)
            #expect((rep["resumed_from_step"] as? Int ?? 0) >= 2, "\(rep)")
            try expectEqualToPlainRun(dir, seed: id, args: args)
        }
    }

    /// The scaling study with srun as its launcher (as Cluster/README.md suggests): it used to
    /// pass mpirun's -np and -x, which srun refuses or reads as "exclude nodes".
    @Test func scalingStudyRunsUnderSrun() throws {
        try withCluster { env, dir in
            var e = env
            e["MPIRUN"] = "/usr/bin/srun --mpi=pmix"
            let r = try Shell.run(SlurmTests.repo + "/Scripts/scaling-study",
                                  ["--ranks", "1,2", "--threads", "1", "--frames", "4", "--size", "16", "--nfe", "2", "--repeats", "1", "--out", dir], environment: e)
            #expect(r.status == 0, "\(r.stderr)")
            let csv = (try? String(contentsOfFile: dir + "/scaling.csv", encoding: .utf8)) ?? ""
            let rows = csv.split(separator: "\n").filter { $0.first?.isNumber == true }.map { $0.split(separator: ",").first.map(String.init) ?? "" }
            #expect(rows == ["1", "2"], "\(csv)")
        }
    }

    /// scancel ends the job: CANCELLED, not requeued, no output, the checkpoints kept.
    @Test func scancelCancelsAndKeepsTheCheckpoint() throws {
        try withCluster { env, dir in
            try measurement(in: dir, frames: 8, size: 48)
            let id = try submit(env, dir: dir, sbatch: ["--ntasks=1", "--time=10"], args: ["--nfe", "24", "--init", "noise"])
            waitForCheckpoint(dir, step: 2)
            #expect(try Shell.run("/usr/bin/scancel", [String(id)], environment: env).status == 0)
            let info = try waitUntilFinished(id, env)
            #expect(info["JobState"] == "CANCELLED", "\(log(dir, id))")
            sleep(3)      // a requeue would show now
            let later = try job(id, env)
            #expect(later["JobState"] == "CANCELLED" && later["Restarts"] == "0", "\(later)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/r.npy"))
            let kept = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/r.npy.checkpoints")) ?? []
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

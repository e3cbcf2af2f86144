import Testing
import Foundation
import SVICore
import SVIFormats

/// `Cluster/pbs.sh` as far as it can be tested without a PBS server: run as PBS would run
/// it, with stand-ins for `qstat`, `qsub` and `mpirun` that record what they were given. It
/// must start every rank with the job's seed, the walltime as --deadline and a checkpoint
/// folder, resubmit itself with the same resources and seed when svi stops early (exit 85),
/// and never after qdel (TERM).
@Suite struct PBSScriptTests {
    static let script = SlurmCluster.repo + "/Cluster/pbs.sh"

    /// A job folder with the stand-ins; the environment PBS would give the script.
    func fakeJob(mpirunStatus: Int32, args: String = "--model w.safetensors --nfe 3") throws -> (dir: String, env: [String: String]) {
        let d = CLI.tempDir()
        let bin = d + "/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        let tools = [
            "qstat": "printf 'Job Id: 4711.pbs\\n    Resource_List.select = 2:ncpus=4:mpiprocs=1\\n    Resource_List.walltime = 01:00:00\\n'",
            "qsub": "echo \"$@\" > \"$FAKE_DIR/qsub.args\"",
            // exit 85 on TERM as svi does after its checkpoint; else the given status after a moment
            "mpirun": "echo \"$@\" > \"$FAKE_DIR/mpirun.args\"; trap 'exit 85' TERM; sleep \"${FAKE_SECONDS:-0}\" & wait $!; exit \(mpirunStatus)",
        ]
        for (name, body) in tools {
            try ("#!/usr/bin/env bash\n" + body + "\n").write(toFile: bin + "/" + name, atomically: true, encoding: .utf8)
            chmod(bin + "/" + name, 0o755)
        }
        try "node1\nnode2\n".write(toFile: d + "/nodes", atomically: true, encoding: .utf8)
        let env = ["PATH": bin + ":/usr/bin:/bin", "FAKE_DIR": d, "PBS_JOBID": "4711.pbs", "PBS_O_WORKDIR": d, "PBS_NODEFILE": d + "/nodes",
                   "OMP_NUM_THREADS": "4", "IN": "y.mkv", "OUT": "r.mp4", "ARGS": args, "SVI": "/bin/true", "SVI_PBS_SCRIPT": PBSScriptTests.script]
        return (d, env)
    }

    func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    @Test func startsRanksWithSeedDeadlineAndCheckpointsThenResubmitsOnExit85() throws {
        let (d, env) = try fakeJob(mpirunStatus: 85)
        defer { try? FileManager.default.removeItem(atPath: d) }
        let started = Int(Date().timeIntervalSince1970)
        let r = try Shell.run("/bin/bash", [PBSScriptTests.script], environment: env)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let mpirun = read(d + "/mpirun.args")
        for part in ["-np 2", "--hostfile \(d)/nodes", "--map-by slot:PE=4", "/bin/true restore y.mkv -o r.mp4 --threads 4 --seed 4711",
                     "--checkpoint-dir r.mp4.checkpoints", "--report r.mp4.report.json --model w.safetensors --nfe 3"] {
            #expect(mpirun.contains(part), "mpirun got: \(mpirun)")
        }
        let words = mpirun.split(separator: " ")
        let deadline = words.firstIndex(of: "--deadline").flatMap { Int(words[$0 + 1]) }
        #expect(deadline.map { abs($0 - (started + 3600 - 120)) <= 5 } == true, "\(mpirun)")
        let qsub = read(d + "/qsub.args")
        #expect(qsub == "-l select=2:ncpus=4:mpiprocs=1 -l walltime=01:00:00 -v IN=y.mkv,OUT=r.mp4,ARGS=--model w.safetensors --nfe 3,SVI_SEED=4711,SVI=/bin/true \(PBSScriptTests.script)\n", "\(qsub)")
    }

    @Test func finishedOrFailedJobsAreNotResubmittedAndAGivenSeedIsKept() throws {
        for status: Int32 in [0, 1] {
            let (d, env) = try fakeJob(mpirunStatus: status, args: "--seed 7")
            defer { try? FileManager.default.removeItem(atPath: d) }
            let r = try Shell.run("/bin/bash", [PBSScriptTests.script], environment: env)
            #expect(r.status == status)
            #expect(!FileManager.default.fileExists(atPath: d + "/qsub.args"))
            #expect(!read(d + "/mpirun.args").contains("--seed 4711"))
            #expect(read(d + "/mpirun.args").contains("--seed 7"))
        }
    }

    @Test func qdelIsNotResubmitted() throws {
        var (d, env) = try fakeJob(mpirunStatus: 0)
        defer { try? FileManager.default.removeItem(atPath: d) }
        env["FAKE_SECONDS"] = "30"
        let pid = try Shell.spawn("/bin/bash", [PBSScriptTests.script], environment: env, output: d)
        let until = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: d + "/mpirun.args") && Date() < until { usleep(20_000) }
        usleep(200_000)
        kill(pid, SIGTERM)
        let r = Shell.wait(pid, output: d)
        #expect(r.stdout.contains("cancelled; checkpoints kept"), "\(r.stdout)\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d + "/qsub.args"))
    }
}

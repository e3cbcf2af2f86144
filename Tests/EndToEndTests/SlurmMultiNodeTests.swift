import Testing
import Foundation
import SVICore
import SVIFormats

/// Issue 28: `Cluster/slurm.sbatch`, unmodified, on a Slurm cluster of three emulated nodes
/// (`Scripts/slurm-test-cluster start --nodes 3`: a slurmd in each node's network namespace,
/// ranks on different nodes talking over TCP). Jobs placed by Slurm on 2 × 1, 2 × 2 and 3 × 1
/// nodes give output bit-identical to one process and report their nodes; a long video crosses
/// a segment boundary on two nodes; a job warned by the scheduler requeues itself and resumes,
/// bit for bit, on a different set of nodes.
@Suite(.serialized, .enabled(if: EmulatedNodes.up, "needs root to emulate nodes (network namespaces)"))
struct SlurmMultiNodeTests {
    /// The nodes each rank of the job ran on, from its report.
    func hosts(_ c: SlurmCluster, _ output: String = "r.npy") throws -> [String]? {
        try c.report(output)["rank_hosts"] as? [String]
    }

    @Test func jobsOnTwoAndThreeNodesEqualOneProcess() throws {
        try SlurmCluster.with(nodes: 3) { c in
            try c.measurement(frames: 23, size: 16, spec: "temporal=uniform:9,sr=2")
            let args = ["--nfe", "3", "--batch", "2"]
            let shapes = [(2, 1), (2, 2), (3, 1)]
            // Submitted together: each takes whole nodes (--exclusive), so Slurm runs them one
            // after another, each from node1 up.
            let jobs = try shapes.map { nodes, perNode in
                try c.submit(sbatch: ["--nodes=\(nodes)", "--ntasks-per-node=\(perNode)", "--time=10"], args: args + ["--seed", "5"], output: "r\(nodes)x\(perNode).npy")
            }
            try c.plainRun(seed: 5, args: args)
            for ((nodes, perNode), id) in zip(shapes, jobs) {
                let output = "r\(nodes)x\(perNode).npy"
                let info = try c.waitUntilFinished(id)
                #expect(info["JobState"] == "COMPLETED", "\(output): \(c.log(id))")
                let expected = (1...nodes).flatMap { Array(repeating: "node\($0)", count: perNode) }
                #expect(try hosts(c, output) == expected, "\(output)")
                try c.expectEqualToPlainRun(output)
            }
        }
    }

    @Test func aSegmentBoundaryIsCrossedOnTwoNodes() throws {
        try SlurmCluster.with(nodes: 3) { c in
            try c.measurement(frames: 40, size: 16, spec: "temporal=uniform:5")
            let args = ["--prior", "gaussian", "--nfe", "6", "--segment-frames", "16", "--overlap", "4"]
            let id = try c.submit(sbatch: ["--nodes=2", "--ntasks-per-node=1", "--time=10"], args: args + ["--seed", "5"])
            let info = try c.waitUntilFinished(id)
            #expect(info["JobState"] == "COMPLETED", "\(c.log(id))")
            #expect(try hosts(c) == ["node1", "node2"])
            #expect(((try c.report()["segments"] as? [String: Any])?["count"] as? Int ?? 0) > 1, "one segment only")
            try c.plainRun(seed: 5, args: args)
            try c.expectEqualToPlainRun()
        }
    }

    /// A 2-node job (nodes 1 and 2) of 300 steps is disturbed after its first checkpoint —
    /// `drained` taken out of service, then `disturb` — and must come back by itself: requeued
    /// once, placed by Slurm on `requeuedOn`, resumed from the checkpoint and bit-identical to
    /// one process; its log holds `logSays`.
    func expectRequeuedOntoOtherNodes(seed: Int, extra: [String] = [], drained: String, requeuedOn: [String], logSays: [String],
                                      disturb: (SlurmCluster, Int) throws -> Void) throws {
        try SlurmCluster.with(nodes: 3) { c in
            try c.measurement(frames: 12, size: 48, spec: "temporal=uniform:3")
            let args = ["--prior", "gaussian", "--nfe", "300", "--init", "noise"]
            let id = try c.submit(sbatch: ["--nodes=2", "--ntasks-per-node=1", "--time=10"], args: args + ["--seed", String(seed)] + extra)
            c.waitForCheckpoint()
            try c.scontrol(["update", "NodeName=\(drained)", "State=DRAIN", "Reason=svi-test"])
            try disturb(c, id)
            let info = try c.waitUntilFinished(id, timeout: 240)
            let log = c.log(id)
            #expect(info["JobState"] == "COMPLETED", "\(log)")
            #expect(info["Restarts"] == "1", "\(info["Restarts"] ?? "?") restarts; \(log)")
            for text in logSays + ["requeueing job \(id)"] { #expect(log.contains(text), "\(text): \(log)") }
            #expect(try hosts(c) == requeuedOn, "the requeued job did not move to other nodes")
            #expect((try c.report()["resumed_from_step"] as? Int ?? 0) > 0, "the requeued job did not resume")
            try c.plainRun(seed: seed, args: args)
            try c.expectEqualToPlainRun()
        }
    }

    /// The scheduler's warning (USR1 to the batch script) reaches a job on nodes 1 and 2 while
    /// node1 is drained (a node taken out for repair): the ranks stop with a checkpoint, the
    /// script requeues the job, Slurm places it on nodes 2 and 3, and it continues bit for bit.
    @Test func aWarnedJobIsRequeuedOntoOtherNodesAndResumesBitForBit() throws {
        try expectRequeuedOntoOtherNodes(seed: 4, drained: "node1", requeuedOn: ["node2", "node3"], logSays: ["time-limit warning"]) { c, id in
            let s = try Shell.run("/usr/bin/scancel", ["--batch", "--signal=USR1", String(id)], environment: c.env)
            #expect(s.status == 0, "\(s.stderr)")
        }
    }

    /// A node that stops answering under Slurm: rank 1's process on node2 is frozen (SIGSTOP)
    /// and node2 drained, as a site's health check would. svi ends the job after the stall
    /// bound with one line naming node2 and exit 85; the script requeues it; Slurm places it on
    /// nodes 1 and 3; it resumes bit for bit.
    @Test func aFrozenNodeIsRequeuedByTheScriptAndResumesElsewhere() throws {
        var frozen: [pid_t] = [], folder = ""
        // Slurm kills the frozen rank with its job step; should the test end before that, the
        // process is still ours to kill (only while it is still svi working in this job's folder).
        defer { for pid in frozen where EmulatedNodes.processes(named: "svi", onNode: 2, workingIn: folder).contains(pid) { kill(pid, SIGKILL) } }
        try expectRequeuedOntoOtherNodes(seed: 6, extra: ["--stall-timeout", "3"], drained: "node2", requeuedOn: ["node1", "node3"],
                                         logSays: ["rank 1 on node2 stopped answering"]) { c, _ in
            folder = c.dir
            frozen = EmulatedNodes.processes(named: "svi", onNode: 2, workingIn: c.dir)
            #expect(frozen.count == 1, "rank 1 on node2: \(frozen)")
            for pid in frozen { kill(pid, SIGSTOP) }
        }
    }
}

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

    /// The scheduler's warning (USR1 to the batch script) reaches a job on nodes 1 and 2 after
    /// its first checkpoint, while node1 is drained (a node taken out for repair): the ranks
    /// stop with a checkpoint, the script requeues the job, Slurm places it on nodes 2 and 3,
    /// and it continues from the checkpoint to an output bit-identical to one process.
    @Test func aWarnedJobIsRequeuedOntoOtherNodesAndResumesBitForBit() throws {
        try SlurmCluster.with(nodes: 3) { c in
            try c.measurement(frames: 12, size: 48, spec: "temporal=uniform:3")
            let args = ["--prior", "gaussian", "--nfe", "300", "--init", "noise"]
            let id = try c.submit(sbatch: ["--nodes=2", "--ntasks-per-node=1", "--time=10"], args: args + ["--seed", "4"])
            c.waitForCheckpoint()
            try c.scontrol(["update", "NodeName=node1", "State=DRAIN", "Reason=svi-test"])
            let s = try Shell.run("/usr/bin/scancel", ["--batch", "--signal=USR1", String(id)], environment: c.env)
            #expect(s.status == 0, "\(s.stderr)")
            let info = try c.waitUntilFinished(id, timeout: 240)
            #expect(info["JobState"] == "COMPLETED", "\(c.log(id))")
            #expect(info["Restarts"] == "1", "\(info["Restarts"] ?? "?") restarts; \(c.log(id))")
            #expect(c.log(id).contains("requeueing job \(id)"), "\(c.log(id))")
            #expect(try hosts(c) == ["node2", "node3"], "the requeued job did not move to other nodes")
            #expect((try c.report()["resumed_from_step"] as? Int ?? 0) > 0, "the requeued job did not resume")
            try c.plainRun(seed: 4, args: args)
            try c.expectEqualToPlainRun()
        }
    }

    /// A node that stops answering under Slurm: rank 1's process on node2 is frozen (SIGSTOP)
    /// after the first checkpoint and node2 drained, as a site's health check would. svi ends
    /// the job after the stall bound with one line naming node2 and exit 85; the script
    /// requeues it; Slurm places it on nodes 1 and 3; it resumes and ends bit-identical to one
    /// process.
    @Test func aFrozenNodeIsRequeuedByTheScriptAndResumesElsewhere() throws {
        try SlurmCluster.with(nodes: 3) { c in
            try c.measurement(frames: 12, size: 48, spec: "temporal=uniform:3")
            let args = ["--prior", "gaussian", "--nfe", "300", "--init", "noise"]
            let id = try c.submit(sbatch: ["--nodes=2", "--ntasks-per-node=1", "--time=10"], args: args + ["--seed", "6", "--stall-timeout", "3"])
            c.waitForCheckpoint()
            let frozen = EmulatedNodes.processes(named: "svi", onNode: 2)
            #expect(frozen.count == 1, "rank 1 on node2: \(frozen)")
            try c.scontrol(["update", "NodeName=node2", "State=DRAIN", "Reason=svi-test"])
            for pid in frozen { kill(pid, SIGSTOP) }
            let info = try c.waitUntilFinished(id, timeout: 240)
            let log = c.log(id)
            #expect(info["JobState"] == "COMPLETED", "\(log)")
            #expect(info["Restarts"] == "1", "\(info["Restarts"] ?? "?") restarts; \(log)")
            #expect(log.contains("rank 1 on node2 stopped answering") && log.contains("requeueing job \(id)"), "\(log)")
            #expect(try hosts(c) == ["node1", "node3"], "the requeued job did not move off the frozen node")
            #expect((try c.report()["resumed_from_step"] as? Int ?? 0) > 0, "the requeued job did not resume")
            try c.plainRun(seed: 6, args: args)
            try c.expectEqualToPlainRun()
            for pid in frozen { kill(pid, SIGKILL) }
        }
    }
}

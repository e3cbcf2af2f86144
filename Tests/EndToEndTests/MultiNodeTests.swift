import Testing
import Foundation
import SVICore
import SVIFormats

/// Emulated cluster nodes (`Scripts/emulated-nodes`): network namespaces on a private bridge,
/// each with its own hostname, /dev/shm, TMPDIR and scratch folder; mpirun reaches them through
/// the script's launcher agent instead of ssh, and ranks on different nodes talk over TCP.
enum EmulatedNodes {
    static let network = "10.78.0.0/24"
    static func address(_ node: Int) -> String { "10.78.0.\(10 + node)" }
    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Scripts/emulated-nodes").path
    }
    static let base = ProcessInfo.processInfo.environment["SVI_NODES_BASE"] ?? "/tmp/svi-nodes"

    /// Three nodes up (the script is idempotent), or false where this machine cannot make
    /// network namespaces (not root): the tests below are then skipped with that reason.
    static let up: Bool = {
        guard getuid() == 0 else { return false }
        return (try? CLI.run(["start", "3"], executable: script).status) == 0
    }()

    /// The processes called `name` running on emulated node `node` (in its network namespace)
    /// whose working folder is `folder`. The folder tells one test's processes from another's:
    /// suites run side by side on the same emulated nodes, and a test that froze or killed
    /// every `svi` on node2 once took down another suite's job (CI, 2026-12-04).
    static func processes(named name: String, onNode node: Int, workingIn folder: String) -> [pid_t] {
        guard let r = try? Shell.run("/usr/bin/env", ["ip", "netns", "pids", "svi-node\(node)"]) else { return [] }
        let wanted = URL(fileURLWithPath: folder).resolvingSymlinksInPath().path
        return r.stdout.split(separator: "\n").compactMap { pid_t($0) }.filter { pid in
            let comm = ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            let cwd = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd")
            return comm == name && cwd.map { URL(fileURLWithPath: $0).resolvingSymlinksInPath().path } == wanted
        }
    }

    static var hostName: String {
        var h = [CChar](repeating: 0, count: 256)
        gethostname(&h, 255)
        return String(cString: h)
    }
}

/// Issue 28: the same restoration on 2 × 1, 2 × 2 and 3 × 1 emulated nodes (TCP between nodes)
/// as in one process, bit for bit; the report names the nodes; a segment boundary crossed on
/// two nodes; a frozen node's rank ends the job, which then resumes on another set of nodes;
/// a node-local checkpoint folder is refused.
@Suite(.serialized, .enabled(if: EmulatedNodes.up, "needs root to emulate nodes (network namespaces)"))
struct MultiNodeTests {
    let model = CLI.fixtures + "/adm-tiny/weights.safetensors"

    func measurement(frames: Int, spec: String, size: Int = 16) throws -> String {
        let d = CLI.tempDir()
        try NPY.write(CLI.clip(frames: frames, height: size, width: size), to: d + "/x.npy")
        let r = try CLI.run(["degrade", d + "/x.npy", "-o", d + "/y.npy", "--degradation", spec, "--quiet", "--seed", "3"])
        #expect(r.status == 0, "\(r.stderr)")
        return d
    }

    func same(_ a: String, _ b: String) throws -> Bool {
        let x = try NPY.readFloat32(a), y = try NPY.readFloat32(b)
        return x.shape == y.shape && (0..<x.count).allSatisfy { x[$0] == y[$0] }
    }

    func hosts(_ report: String) throws -> [String]? {
        (try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any])?["rank_hosts"] as? [String]
    }

    @Test func restorationIsBitIdenticalOnTwoAndThreeNodes() throws {
        let d = try measurement(frames: 23, spec: "temporal=uniform:9,sr=2")
        let args = ["restore", d + "/y.npy", "--seed", "5", "--quiet", "--model", model, "--nfe", "3", "--batch", "2"]
        let one = try CLI.run(args + ["-o", d + "/one.npy", "--threads", "1"])
        #expect(one.status == 0, "\(one.stderr)")
        for (nodes, perNode) in [([1, 2], 1), ([1, 2], 2), ([1, 2, 3], 1)] {
            let tag = nodes.map(String.init).joined() + "x\(perNode)"
            let r = try MPI.run(ranks: nodes.count * perNode, args + ["-o", d + "/\(tag).npy", "--report", d + "/\(tag).json"], timeout: 180, nodes: nodes)
            #expect(r.status == 0, "\(tag): \(r.stderr)")
            #expect(try same(d + "/\(tag).npy", d + "/one.npy"), "\(tag) differs from one process")
            #expect(try hosts(d + "/\(tag).json") == nodes.flatMap { Array(repeating: "node\($0)", count: perNode) })
        }
    }

    @Test func aSegmentBoundaryIsCrossedOnTwoNodes() throws {
        let d = try measurement(frames: 40, spec: "temporal=uniform:5")
        let args = ["restore", d + "/y.npy", "--seed", "5", "--quiet", "--prior", "gaussian", "--nfe", "6", "--segment-frames", "16", "--overlap", "4"]
        let one = try CLI.run(args + ["-o", d + "/one.npy", "--threads", "1", "--report", d + "/r.json"])
        #expect(one.status == 0, "\(one.stderr)")
        let r = try MPI.run(ranks: 2, args + ["-o", d + "/two.npy"], timeout: 180, nodes: [1, 2])
        #expect(r.status == 0, "\(r.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: d + "/r.json"))) as? [String: Any]
        #expect(((report?["segments"] as? [String: Any])?["count"] as? Int ?? 0) > 1, "one segment only")
        #expect(try same(d + "/two.npy", d + "/one.npy"))
    }

    /// The node of rank 1 freezes (SIGSTOP): the job ends within the bound naming node2; the
    /// same command, started on nodes 2 and 3 (a requeue landing elsewhere), finishes bit-equal.
    @Test func aFrozenNodeEndsTheJobWhichResumesOnOtherNodes() throws {
        // Long enough (300 steps of 48×48) that the freeze lands mid-run.
        let d = try measurement(frames: 12, spec: "temporal=uniform:3", size: 48)
        let args = ["restore", d + "/y.npy", "-o", d + "/r.npy", "--prior", "gaussian", "--nfe", "300", "--seed", "9", "--quiet",
                    "--checkpoint-dir", d + "/ck", "--stall-timeout", "3"]
        let f = MPI.Freezer(rank: 1, checkpoints: d + "/ck")
        let r = try MPI.run(ranks: 2, args, timeout: 120, nodes: [1, 2], whileRunning: f.freeze)
        let ended = Date()
        f.release()
        #expect(r.status == 85, "exit \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("rank 1 on node2 stopped answering"), "\(r.stderr)")
        #expect(ended.timeIntervalSince(f.at) < 3 + 15)
        let again = try MPI.run(ranks: 2, args, timeout: 120, nodes: [2, 3])
        #expect(again.status == 0, "\(again.stderr)")
        let single = try CLI.run(["restore", d + "/y.npy", "-o", d + "/single.npy", "--prior", "gaussian", "--nfe", "300", "--seed", "9", "--quiet", "--threads", "1"])
        #expect(single.status == 0)
        #expect(try same(d + "/r.npy", d + "/single.npy"), "resumed on other nodes, the output differs from one process")
    }

    /// The scheduler's warning signal (USR1 to every rank, as Cluster/slurm.sbatch forwards it)
    /// stops the job on nodes 1 and 2 with a checkpoint and exit 85; the requeued command,
    /// placed on nodes 3 and 1, continues it and ends bit-equal to one process.
    @Test func aSignalledJobResumesOnAnotherNodeSet() throws {
        // Long enough (300 steps of 48×48) that the signal lands mid-run.
        let d = try measurement(frames: 12, spec: "temporal=uniform:3", size: 48)
        let args = ["restore", d + "/y.npy", "-o", d + "/r.npy", "--prior", "gaussian", "--nfe", "300", "--seed", "4", "--quiet", "--checkpoint-dir", d + "/ck"]
        let ck = d + "/ck"
        let r = try MPI.run(ranks: 2, args, timeout: 120, nodes: [1, 2]) { started in
            let until = Date().addingTimeInterval(60)
            while Date() < until && ((try? FileManager.default.contentsOfDirectory(atPath: ck)) ?? []).filter({ $0.hasPrefix("step-") }).isEmpty { usleep(20_000) }
            for name in (try? FileManager.default.contentsOfDirectory(atPath: started)) ?? [] {
                if let pid = pid_t(name.split(separator: "-")[2]) { kill(pid, SIGUSR1) }
            }
        }
        #expect(r.status == 85, "exit \(r.status): \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d + "/r.npy"))
        let again = try MPI.run(ranks: 2, args + ["--report", d + "/r.json"], timeout: 120, nodes: [3, 1])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try hosts(d + "/r.json") == ["node3", "node1"])
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: d + "/r.json"))) as? [String: Any]
        #expect((report?["resumed_from_step"] as? Int ?? 0) > 0, "the requeued run did not resume")
        let single = try CLI.run(["restore", d + "/y.npy", "-o", d + "/single.npy", "--prior", "gaussian", "--nfe", "300", "--seed", "4", "--quiet", "--threads", "1"])
        #expect(single.status == 0)
        #expect(try same(d + "/r.npy", d + "/single.npy"), "resumed on other nodes, the output differs from one process")
    }

    @Test func aNodeLocalCheckpointFolderIsRefused() throws {
        let d = try measurement(frames: 12, spec: "temporal=uniform:3")
        let local = EmulatedNodes.base + "/scratch/ck-\(UUID().uuidString)"
        let r = try MPI.run(ranks: 2, ["restore", d + "/y.npy", "-o", d + "/r.npy", "--prior", "gaussian", "--nfe", "5", "--quiet", "--checkpoint-dir", local],
                            timeout: 60, nodes: [1, 2])
        #expect(r.status != 0)
        #expect(r.stderr.contains("is not one folder for every rank: rank 1 on node2"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d + "/r.npy"))
    }
}

import Testing
import Foundation
import SVICore
import SVIFormats

/// The determinism contract (ARCHITECTURE.md, "Determinism"): a restoration is bit-identical
/// whatever `--batch`, whatever the MPI rank count and whatever the cores a process sees — on
/// this machine's own kernels and on the other kernels it can run. OpenBLAS chooses its
/// kernels by CPU *and* by shape, so the contract can only hold if no GEMM a frame goes through
/// changes shape with the batch or the ranks; a CPU whose kernels round differently is where a
/// violation shows (CI on an AVX2 EPYC once failed when a batched GEMM slipped in).
@Suite(.serialized) struct DeterminismTests {
    /// The kernel environments each run is repeated under, set only in the child processes:
    /// the machine's own; svi's AVX2 kernels; OpenBLAS on a core of the other family (AVX2
    /// kernels on an AVX-512 machine, AVX-only Sandy Bridge kernels on an AVX2 machine: the
    /// older family is the one an AVX2 CPU can run).
    static let environments: [[String: String]] = [
        [:],
        ["SVI_ISA": "avx2"],
        ["OPENBLAS_CORETYPE": hasAVX512 ? "Haswell" : "Sandybridge"],
    ]

    static var hasAVX512: Bool {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        return info.contains(" avx512f")
    }

    /// svi's `BLASCore`: where OpenBLAS falls back to a core without AVX2 (it does on CPUs newer
    /// than itself), svi runs itself again with the CPU's own family, SkylakeX or Haswell; an
    /// OPENBLAS_CORETYPE the user set stays. `SVI_OPENBLAS_ASSUME_GENERIC=1` makes svi take the
    /// detected core as generic, so the re-execution runs on a CPU this OpenBLAS knows.
    @Test func aGenericOpenBLASCoreIsReplacedByTheCPUsOwnFamily() throws {
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil else { return }  // set for the whole run: left alone by design
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let flags = Set(info.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
        let family = ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(flags.contains) ? "skylakex" : "haswell"
        let base = ["bench", "unet", "--model", CLI.fixtures + "/adm-tiny/weights.safetensors", "--size", "32x32", "--repeats", "1", "--warmup", "0", "--json"]
        func machine(_ env: [String: String]) throws -> [String: Any] {
            let r = try CLI.run(base, environment: env)
            #expect(r.status == 0, "\(r.stderr)")
            let line = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
            return (try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:]
        }
        let replaced = try machine(["SVI_OPENBLAS_ASSUME_GENERIC": "1"])
        #expect((replaced["openblas_core"] as? String)?.lowercased() == family, "\(replaced)")
        // The report names what OpenBLAS detected itself: the same as in a run left alone.
        let plain = try machine([:])
        #expect(replaced["openblas_detected"] as? String == plain["openblas_detected"] as? String, "\(replaced) vs \(plain)")
        let chosen = try machine(["SVI_OPENBLAS_ASSUME_GENERIC": "1", "OPENBLAS_CORETYPE": "Sandybridge"])
        #expect((chosen["openblas_core"] as? String)?.lowercased() == "sandybridge", "a core the user chose stays: \(chosen)")

        // Run again, svi keeps its name (schedulers, `pkill svi` and the Slurm tests find it by
        // that name; exec'ing /proc/self/exe named it "exe").
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.binary)
        p.arguments = ["bench", "unet", "--model", CLI.fixtures + "/adm-tiny/weights.safetensors", "--size", "32x32", "--repeats", "100000"]
        p.environment = ProcessInfo.processInfo.environment.merging(["SVI_OPENBLAS_ASSUME_GENERIC": "1"]) { $1 }
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        try p.run()
        defer { p.terminate(); p.waitUntilExit() }
        var replacedNow = false
        for _ in 0..<100 where !replacedNow {   // until the re-executed image has set its marker
            usleep(50_000)
            let env = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(p.processIdentifier)/environ"))) ?? Data()
            replacedNow = String(decoding: env, as: UTF8.self).contains("SVI_OPENBLAS_DETECTED=")
        }
        #expect(replacedNow, "svi did not run itself again")
        let comm = (try? String(contentsOfFile: "/proc/\(p.processIdentifier)/comm", encoding: .utf8)) ?? ""
        #expect(comm.trimmingCharacters(in: .whitespacesAndNewlines) == URL(fileURLWithPath: CLI.binary).lastPathComponent, "process name \(comm)")
    }

    static let taskset: String? = ["/usr/bin/taskset", "/bin/taskset"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// 23 frames of 32×32 through `adm-tiny` (temporal k=9 + SR×2, NFE 4): level 0 (32×32, 64
    /// 4×4 tiles) runs Winograd, level 1 (16×16) im2col + GEMM and attention over 256
    /// positions, plus the 1×1 skips, the timestep MLP and GroupNorm. Batches 1–5 cut the 23
    /// frames into different groups (5 leaves 3, 4 leaves 3, 3 leaves 2); ranks 1–4 give
    /// blocks of 23, 12/11, 8/8/7 and 6/6/6/5, and `mpirun` binds 1 and 2 ranks to one core
    /// each (GEMMs split for one core instead of two); one more run is pinned to one core.
    @Test(arguments: environments)
    func restorationIsBitIdenticalAcrossBatchesRanksAndCores(environment: [String: String]) throws {
        try checkBitIdentical(environment: environment, extra: [])
    }

    /// The contract holds within `--precision bf16` too (on CPUs with AVX-512 BF16; SVI_ISA=avx2
    /// turns bf16 off, so the environments are the machine's own and the other OpenBLAS family,
    /// which still runs attention's GEMMs).
    @Test(.enabled(if: bf16Available), arguments: environments.filter { $0["SVI_ISA"] == nil })
    func bf16RestorationIsBitIdenticalAcrossBatchesRanksAndCores(environment: [String: String]) throws {
        try checkBitIdentical(environment: environment, extra: ["--precision", "bf16"])
    }

    static var bf16Available: Bool {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        return info.contains(" avx512_bf16") && ProcessInfo.processInfo.environment["SVI_ISA"] != "avx2"
    }

    /// Where the CPU has no bf16 arithmetic (or SVI_ISA=avx2 turns it off), `--precision bf16`
    /// is refused in one line, before any work.
    @Test func bf16IsRefusedWhereTheCPUHasNone() throws {
        let r = try CLI.run(["bench", "unet", "--model", CLI.fixtures + "/adm-tiny/weights.safetensors", "--size", "32x32", "--repeats", "1",
                             "--precision", "bf16"], environment: ["SVI_ISA": "avx2"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--precision bf16 needs a CPU with AVX-512 BF16"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }

    private func checkBitIdentical(environment: [String: String], extra: [String]) throws {
        let label = (environment.isEmpty ? "machine's own kernels" : environment.map { "\($0)=\($1)" }.joined()) + extra.map { " " + $0 }.joined()
        let d = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        try NPY.write(CLI.clip(frames: 23, height: 32, width: 32), to: d + "/x.npy")
        let g = try CLI.run(["degrade", d + "/x.npy", "-o", d + "/y.npy", "--degradation", "temporal=uniform:9,sr=2", "--quiet", "--seed", "3"])
        #expect(g.status == 0, "\(g.stderr)")
        let common = ["restore", d + "/y.npy", "--model", CLI.fixtures + "/adm-tiny/weights.safetensors", "--nfe", "4", "--init", "noise", "--seed", "5", "--quiet"] + extra

        var runs: [(name: String, file: String)] = []
        for b in 1...5 {
            let out = d + "/b\(b).npy"
            let r = try CLI.run(common + ["-o", out, "--batch", String(b), "--report", out + ".json"], environment: environment)
            #expect(r.status == 0, "\(label), batch \(b): \(r.stderr)")
            runs.append(("--batch \(b)", out))
        }
        for n in 1...4 {
            let out = d + "/n\(n).npy"
            let r = try MPI.run(ranks: n, common + ["-o", out, "--report", out + ".json"], environment: environment)
            #expect(r.status == 0, "\(label), \(n) ranks: \(r.stderr)")
            runs.append(("\(n) ranks", out))
        }
        if let taskset = DeterminismTests.taskset {
            let out = d + "/core.npy"
            let r = try CLI.run(["-c", "0", CLI.binary] + common + ["-o", out], executable: taskset, environment: environment)
            #expect(r.status == 0, "\(label), one core: \(r.stderr)")
            runs.append(("one core", out))
        }

        // The child processes really ran the kernels asked for.
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: d + "/n3.npy.json"))) as? [String: Any]
        let machine = report?["machine"] as? [String: Any]
        if let core = environment["OPENBLAS_CORETYPE"] { #expect((machine?["openblas_core"] as? String)?.lowercased() == core.lowercased(), "\(machine ?? [:])") }
        if environment["SVI_ISA"] != nil { #expect(machine?["kernels_isa"] as? String == "avx2", "\(machine ?? [:])") }
        if extra.contains("bf16") { #expect((report?["model"] as? String)?.hasSuffix(", bf16)") == true, "\(report?["model"] ?? "no model")") }

        let reference = try NPY.readFloat32(runs[3].file)      // --batch 4, the default
        for run in runs {
            let x = try NPY.readFloat32(run.file)
            #expect(x.shape == reference.shape)
            var differing = 0, worst: Float = 0
            for i in 0..<min(x.count, reference.count) where x[i] != reference[i] {
                differing += 1; worst = max(worst, abs(x[i] - reference[i]))
            }
            #expect(differing == 0, "\(label): \(run.name) differs from --batch 4 in \(differing) values (max \(worst))")
        }
    }
}

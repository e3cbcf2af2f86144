import Foundation
import CBLAS
import CKernels

/// The machine beside every number: CPU model, vector ISA, OpenBLAS core, cores.
package struct MachineInfo: Encodable {
    package var cpu: String
    package var isa: String
    /// The instruction set svi's own vector kernels run with (chosen at run time; `SVI_ISA=avx2`
    /// forces AVX2 on an AVX-512 machine).
    package var kernelsISA: String
    package var openblasCore: String
    /// The core OpenBLAS chose itself when svi replaced a generic one (`BLASCore`).
    package var openblasDetected: String? = BLASCore.detectedBeforeReplacing
    package var cores: Int

    package static var current: MachineInfo {
        let info = cpuinfo()
        let model = info.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces) } ?? "unknown"
        let flags = cpuFlags(info)
        let isa = flags.contains("avx512f") ? "avx512" : flags.contains("avx2") ? "avx2" : "sse"
        let core = openblas_get_corename().map { String(cString: $0) } ?? "unknown"
        return MachineInfo(cpu: model, isa: isa, kernelsISA: String(cString: svi_kernels_isa()), openblasCore: core, cores: ProcessInfo.processInfo.activeProcessorCount)
    }

    package static func cpuinfo() -> String { (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "" }

    /// The first processor's feature flags in /proc/cpuinfo (avx2, avx512f, …).
    package static func cpuFlags(_ info: String = cpuinfo()) -> Set<String> {
        Set(info.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
    }

    package enum CodingKeys: String, CodingKey { case cpu, isa, cores, kernelsISA = "kernels_isa", openblasCore = "openblas_core", openblasDetected = "openblas_detected" }
}

/// OpenBLAS picks its kernels by CPU model, and a build older than the CPU does not know it:
/// Debian 12's OpenBLAS 0.3.21 calls a Sapphire Rapids Xeon (AVX-512, AMX) "Prescott" and runs
/// SSE3 kernels, and the embedded prior's pass took 0.55 s per 256×256 frame instead of 0.24
/// (BENCHMARKS.md, "OpenBLAS on a CPU it does not know"). When OpenBLAS has fallen back to a
/// core without AVX2 on a CPU that has AVX2 and FMA (or AVX-512), svi runs itself again at once
/// — before MPI, threads or any file — with OPENBLAS_CORETYPE naming the newest family the CPU
/// has (SkylakeX, Haswell): OpenBLAS reads it only when it loads. An OPENBLAS_CORETYPE the user
/// set is left alone; the report's machine names the core OpenBLAS detected itself.
package enum BLASCore {
    /// OpenBLAS cores without AVX2 (their kernels are SSE or AVX only).
    package static let generic: Set<String> = ["prescott", "katmai", "coppermine", "northwood", "core2", "penryn", "dunnington",
                                       "nehalem", "atom", "sandybridge", "barcelona", "bobcat", "bulldozer", "piledriver",
                                       "opteron", "opteron_sse3", "athlon", "nano", "unknown"]
    package static let detectedVariable = "SVI_OPENBLAS_DETECTED"

    package static func replaceGenericKernels() {
        // SVI_OPENBLAS_ASSUME_GENERIC=1 (tests): take whatever OpenBLAS detected as generic, so the
        // mechanism is exercised on CPUs this OpenBLAS knows.
        let assume = getenv("SVI_OPENBLAS_ASSUME_GENERIC").map { String(cString: $0) == "1" } ?? false
        guard getenv("OPENBLAS_CORETYPE") == nil, getenv(detectedVariable) == nil,
              let detected = openblas_get_corename().map({ String(cString: $0) }), assume || generic.contains(detected.lowercased()) else { return }
        let flags = MachineInfo.cpuFlags()
        let target: String
        if ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(flags.contains) { target = "SkylakeX" }
        else if flags.contains("avx2") && flags.contains("fma") { target = "Haswell" }
        else { return }
        // The binary's own path, not /proc/self/exe: the process takes its name from the path
        // exec'd, and schedulers, tests and users find svi by that name ("exe" otherwise).
        var path = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &path, Int(PATH_MAX))
        guard n > 0 else { return }
        path[n] = 0
        setenv("OPENBLAS_CORETYPE", target, 1)
        setenv(detectedVariable, detected, 1)
        execv(path, CommandLine.unsafeArgv)
        // exec failed (no /proc?): carry on with the kernels OpenBLAS chose.
        unsetenv("OPENBLAS_CORETYPE")
    }

    /// The core OpenBLAS detected before svi replaced it (nil: not replaced).
    package static var detectedBeforeReplacing: String? { ProcessInfo.processInfo.environment[detectedVariable] }
}

/// Peak resident set size of this process (VmHWM), in MB.
package func peakResidentMB() -> Double? {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return nil }
    let kb = line.split(separator: " ").compactMap { Double($0) }.first
    return kb.map { $0 / 1024 }
}

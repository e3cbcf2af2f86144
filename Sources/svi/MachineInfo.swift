import Foundation
import CBLAS
import CKernels

/// The machine beside every number: CPU model, vector ISA, OpenBLAS core, cores.
struct MachineInfo: Encodable {
    var cpu: String
    var isa: String
    /// The instruction set svi's own vector kernels run with (chosen at run time; `SVI_ISA=avx2`
    /// forces AVX2 on an AVX-512 machine).
    var kernelsISA: String
    var openblasCore: String
    var cores: Int

    static var current: MachineInfo {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = info.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces) } ?? "unknown"
        let flags = Set(info.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
        let isa = flags.contains("avx512f") ? "avx512" : flags.contains("avx2") ? "avx2" : "sse"
        let core = openblas_get_corename().map { String(cString: $0) } ?? "unknown"
        return MachineInfo(cpu: model, isa: isa, kernelsISA: String(cString: svi_kernels_isa()), openblasCore: core, cores: ProcessInfo.processInfo.activeProcessorCount)
    }

    enum CodingKeys: String, CodingKey { case cpu, isa, cores, kernelsISA = "kernels_isa", openblasCore = "openblas_core" }
}

/// Peak resident set size of this process (VmHWM), in MB.
func peakResidentMB() -> Double? {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return nil }
    let kb = line.split(separator: " ").compactMap { Double($0) }.first
    return kb.map { $0 / 1024 }
}

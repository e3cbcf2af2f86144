import Foundation
import CBLAS

/// The machine beside every number: CPU model, vector ISA, OpenBLAS core, cores.
struct MachineInfo: Encodable {
    var cpu: String
    var isa: String
    var openblasCore: String
    var cores: Int

    static var current: MachineInfo {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = info.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces) } ?? "unknown"
        let flags = Set(info.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
        let isa = flags.contains("avx512f") ? "avx512" : flags.contains("avx2") ? "avx2" : "sse"
        let core = openblas_get_corename().map { String(cString: $0) } ?? "unknown"
        return MachineInfo(cpu: model, isa: isa, openblasCore: core, cores: ProcessInfo.processInfo.activeProcessorCount)
    }

    enum CodingKeys: String, CodingKey { case cpu, isa, cores, openblasCore = "openblas_core" }
}

/// Peak resident set size of this process (VmHWM), in MB.
func peakResidentMB() -> Double? {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return nil }
    let kb = line.split(separator: " ").compactMap { Double($0) }.first
    return kb.map { $0 / 1024 }
}

import Foundation

/// Time and FLOPs per kind of layer, for `svi bench unet --profile` and GFLOP/s figures.
/// Layers always count FLOPs (cheap); timing happens only while `enabled`.
public enum Profiler {
    public enum Kind: String, CaseIterable, Sendable {
        case conv3x3 = "3×3 conv", conv1x1 = "1×1 conv", groupNorm = "GroupNorm(+SiLU)", attention = "attention",
             upDown = "up/down", elementwise = "elementwise", linear = "linear"
    }
    public struct Entry: Sendable { public var seconds = 0.0; public var flops = 0.0; public var calls = 0 }

    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) public private(set) static var entries: [Kind: Entry] = [:]

    public static func reset() { entries = [:] }
    public static var totalFlops: Double { entries.values.reduce(0) { $0 + $1.flops } }

    /// Runs `body`, charging its FLOPs (and, when enabled, its time) to `kind`. Called from the
    /// forward pass's driving thread only (layers parallelise inside).
    @inline(__always)
    static func measure<T>(_ kind: Kind, flops: Double, _ body: () throws -> T) rethrows -> T {
        if !enabled {
            entries[kind, default: Entry()].flops += flops
            return try body()
        }
        let t0 = DispatchTime.now().uptimeNanoseconds
        let r = try body()
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        var e = entries[kind, default: Entry()]
        e.seconds += dt; e.flops += flops; e.calls += 1
        entries[kind] = e
        return r
    }

    /// A table: kind, seconds, share, GFLOP, GFLOP/s.
    public static func report() -> String {
        let total = entries.values.reduce(0) { $0 + $1.seconds }
        var lines = ["layer kind            time (s)   share    GFLOP   GFLOP/s"]
        for k in Kind.allCases {
            guard let e = entries[k] else { continue }
            lines.append(String(format: "%-20@ %9.3f  %5.1f%%  %8.1f  %8.1f", k.rawValue as NSString, e.seconds,
                                total > 0 ? 100 * e.seconds / total : 0, e.flops / 1e9, e.seconds > 0 ? e.flops / 1e9 / e.seconds : 0))
        }
        lines.append(String(format: "%-20@ %9.3f  100.0%%  %8.1f  %8.1f", "total" as NSString, total, totalFlops / 1e9, total > 0 ? totalFlops / 1e9 / total : 0))
        return lines.joined(separator: "\n")
    }
}

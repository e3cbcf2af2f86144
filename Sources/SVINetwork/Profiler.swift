import Foundation

/// Time and FLOPs per kind of layer, for `svi bench unet --profile` and GFLOP/s figures.
/// Layers always count FLOPs (cheap); timing happens only while `enabled`.
public enum Profiler {
    public enum Kind: String, CaseIterable, Sendable {
        case conv3x3 = "3×3 conv", conv1x1 = "1×1 conv", groupNorm = "GroupNorm(+SiLU)", attention = "attention",
             upDown = "up/down", elementwise = "elementwise", linear = "linear",
             winogradTransforms = "  Winograd transforms"
        /// Parts of another kind's time (printed under it, not added to the total).
        var isPart: Bool { self == .winogradTransforms }
    }
    public struct Entry: Sendable { public var seconds = 0.0; public var flops = 0.0; public var calls = 0 }

    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) private static var table: [Kind: Entry] = [:]
    /// Forward passes may run on several threads at once (tests, libraries): the table is
    /// updated under a lock (a few hundred times per pass, negligible).
    private static let lock = NSLock()

    public static var entries: [Kind: Entry] { lock.lock(); defer { lock.unlock() }; return table }
    public static func reset() { lock.lock(); table = [:]; lock.unlock() }
    public static var totalFlops: Double { entries.filter { !$0.key.isPart }.values.reduce(0) { $0 + $1.flops } }

    /// Runs `body`, charging its FLOPs (and, when enabled, its time) to `kind`.
    @inline(__always)
    static func measure<T>(_ kind: Kind, flops: Double, _ body: () throws -> T) rethrows -> T {
        let t0 = enabled ? DispatchTime.now().uptimeNanoseconds : 0
        let r = try body()
        let dt = enabled ? Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9 : 0
        lock.lock()
        table[kind, default: Entry()].seconds += dt
        table[kind, default: Entry()].flops += flops
        table[kind, default: Entry()].calls += 1
        lock.unlock()
        return r
    }

    /// A table: kind, seconds, share, GFLOP, GFLOP/s.
    public static func report() -> String {
        let total = entries.filter { !$0.key.isPart }.values.reduce(0) { $0 + $1.seconds }
        var lines = ["layer kind            time (s)   share    GFLOP   GFLOP/s"]
        func pad(_ s: String) -> String { s.count >= 20 ? s : s + String(repeating: " ", count: 20 - s.count) }
        let all = entries
        // Parts print right after the kind they belong to (Winograd transforms: 3×3 conv).
        let order: [Kind] = Kind.allCases.filter { !$0.isPart }.flatMap { $0 == .conv3x3 ? [$0, .winogradTransforms] : [$0] }
        for k in order {
            guard let e = all[k] else { continue }
            lines.append(pad(k.rawValue) + String(format: " %9.3f  %5.1f%%  %8.1f  %8.1f", e.seconds,
                                total > 0 ? 100 * e.seconds / total : 0, e.flops / 1e9, e.seconds > 0 ? e.flops / 1e9 / e.seconds : 0))
        }
        lines.append(pad("total") + String(format: " %9.3f  100.0%%  %8.1f  %8.1f", total, totalFlops / 1e9, total > 0 ? totalFlops / 1e9 / total : 0))
        return lines.joined(separator: "\n")
    }
}

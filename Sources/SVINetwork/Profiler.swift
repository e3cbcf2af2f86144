import Foundation

/// Time and FLOPs per kind of layer, for `svi bench unet --profile` and GFLOP/s figures.
/// Layers charge the calling task's `Profile` (`Profiler.record`): FLOPs always, time when it asks.
public enum Profiler {
    public enum Kind: String, CaseIterable, Sendable {
        case conv3x3 = "3×3 conv", conv1x1 = "1×1 conv", groupNorm = "GroupNorm(+SiLU)", attention = "attention",
             upDown = "up/down", elementwise = "elementwise", linear = "linear",
             winogradTransforms = "  Winograd transforms"
        /// Parts of another kind's time (printed under it, not added to the total).
        var isPart: Bool { self == .winogradTransforms }
    }
    public struct Entry: Sendable { public var seconds = 0.0; public var flops = 0.0; public var calls = 0 }

    /// One profile: what the forward passes run inside `record` charge, under a lock (passes
    /// may run on several threads; a few hundred updates per pass, negligible).
    public final class Profile: @unchecked Sendable {
        /// Time the layers too (FLOPs are always counted).
        public let timing: Bool
        private var table: [Kind: Entry] = [:]
        private let lock = NSLock()
        public init(timing: Bool) { self.timing = timing }

        public var entries: [Kind: Entry] { lock.lock(); defer { lock.unlock() }; return table }
        public var totalFlops: Double { entries.filter { !$0.key.isPart }.values.reduce(0) { $0 + $1.flops } }
        public func reset() { lock.lock(); table = [:]; lock.unlock() }

        func charge(_ kind: Kind, seconds: Double, flops: Double) {
            lock.lock()
            table[kind, default: Entry()].seconds += seconds
            table[kind, default: Entry()].flops += flops
            table[kind, default: Entry()].calls += 1
            lock.unlock()
        }

        /// A table: kind, seconds, share, GFLOP, GFLOP/s.
        public func report() -> String { Profiler.report(entries) }
    }

    /// The profile of the calling task (none: layers count nothing). A task-local value, not a
    /// process-wide switch (issue 29): a benchmark's profile sees only its own passes, and a
    /// test running beside it is not timed.
    @TaskLocal public static var current: Profile?

    /// Runs `body` with `profile` charged by every layer it runs on this task.
    public static func record<T>(into profile: Profile, _ body: () throws -> T) rethrows -> T {
        try $current.withValue(profile) { try body() }
    }

    /// Runs `body`, charging its FLOPs (and, when timing, its time) to `kind` of the task's
    /// profile, if it has one.
    @inline(__always)
    static func measure<T>(_ kind: Kind, flops: Double, _ body: () throws -> T) rethrows -> T {
        guard let p = current else { return try body() }
        let t0 = p.timing ? DispatchTime.now().uptimeNanoseconds : 0
        let r = try body()
        let dt = p.timing ? Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9 : 0
        p.charge(kind, seconds: dt, flops: flops)
        return r
    }

    /// A table: kind, seconds, share, GFLOP, GFLOP/s.
    static func report(_ entries: [Kind: Entry]) -> String {
        let totalFlops = entries.filter { !$0.key.isPart }.values.reduce(0) { $0 + $1.flops }
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

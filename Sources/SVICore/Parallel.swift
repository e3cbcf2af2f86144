import Foundation

/// Work splitting across cores. Every hot loop in svi goes through `Parallel.forEachChunk`,
/// so the thread count is set in one place (`--threads`).
public enum Parallel {
    /// The process's thread count: set once, at start, from `--threads` (`RuntimeOptions`).
    nonisolated(unsafe) private static var configuredThreads: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// A thread count for the work of one task (`withThreads`): tests running in parallel each
    /// pick their own without changing the process's, or each other's.
    @TaskLocal private static var scopedThreads: Int?

    /// Threads used by svi's own kernels (OpenBLAS is set separately by `BLASThreads`): the
    /// calling task's `withThreads` count, else the process's. Read on the calling thread, so
    /// it holds for the loops a kernel starts from there.
    public static var threads: Int {
        get { scopedThreads ?? configuredThreads }
        set { configuredThreads = max(1, newValue) }
    }

    /// Runs `body` with `threads` threads for svi's kernels, for this task only.
    public static func withThreads<T>(_ threads: Int, _ body: () throws -> T) rethrows -> T {
        try $scopedThreads.withValue(max(1, threads)) { try body() }
    }

    /// Calls `body(start, end)` on disjoint chunks covering `0..<count`, in parallel when the
    /// work is large enough. `grain` is the smallest chunk worth a thread.
    @inline(__always)
    public static func forEachChunk(_ count: Int, grain: Int = 32_768, _ body: (Int, Int) -> Void) {
        if count <= 0 { return }
        let t = threads
        let chunks = min(t, (count + grain - 1) / grain)
        if chunks <= 1 { body(0, count); return }
        let per = (count + chunks - 1) / chunks
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let s = c * per
                let e = min(count, s + per)
                if s < e { box.value(s, e) }
            }
        }
    }

    /// Calls `body(i)` for each `i` in `0..<count`, spread over the threads (for coarse items
    /// such as frames or channels).
    @inline(__always)
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        let t = min(threads, count)
        if t <= 1 { for i in 0..<count { body(i) }; return }
        let per = (count + t - 1) / t
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: t) { c in
                let s = c * per
                let e = min(count, s + per)
                var i = s
                while i < e { box.value(i); i += 1 }
            }
        }
    }
}

/// Hands a value to worker threads when the caller guarantees the accesses are disjoint
/// (each chunk of a parallel loop touches its own elements).
public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}

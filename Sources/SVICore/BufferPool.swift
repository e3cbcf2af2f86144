import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reuse of large tensor allocations. A U-Net pass makes and drops hundreds of activations
/// of the same few sizes; fresh ones come from `mmap` (glibc maps every block over its 32 MB
/// threshold anew) and each of their pages faults and is zeroed by the kernel on first touch.
/// Measured on the embedded prior at 256×256, batch 4: ~1.3 million page faults in 6 passes
/// and a quarter of the time. The pool keeps dropped blocks and hands them out again when a
/// block of exactly the same size is asked for (a network asks for the same sizes pass after
/// pass).
///
/// Idle blocks are resident memory, so they must not raise the process's peak much: when a
/// request finds no block of its size and more than `slackBytes` lie idle, the oldest idle
/// blocks (up to as many bytes as asked for) are freed before a new one is made. Live plus
/// idle memory then exceeds the live peak by at most the slack plus one block. The slack
/// (`SVI_POOL_MB`, default 256; 0 turns pooling off) holds what a small network needs
/// entirely (the embedded prior at batch 4: ~150 MB) and the most-used blocks of ADM-256
/// (measured there: +28 MB peak RSS at batch 1), and grows to two of the largest blocks asked
/// for so far, so that big batches (whose activations are each larger than 256 MB) reuse them
/// too. Idle blocks never exceed 8× the slack.
public enum BufferPool {
    /// Blocks below this size come from malloc's own bins, which already reuse them.
    public static let minimumBytes = 1 << 20
    nonisolated(unsafe) public static var slackBytes: Int = {
        if let s = ProcessInfo.processInfo.environment["SVI_POOL_MB"], let mb = Int(s), mb >= 0 { return mb << 20 }
        return 256 << 20
    }()
    nonisolated(unsafe) private static var largestBlock = 0
    private static var slack: Int { slackBytes == 0 ? 0 : max(slackBytes, 2 * largestBlock) }

    private static let lock = NSLock()
    /// Idle blocks, oldest first.
    nonisolated(unsafe) private static var idle: [(bytes: Int, block: UnsafeMutableRawPointer)] = []
    nonisolated(unsafe) private static var idleBytes = 0
    /// Blocks handed out for a smaller request than their size, by address: their own size.
    nonisolated(unsafe) private static var lent: [UnsafeMutableRawPointer: Int] = [:]

    /// A 64-byte-aligned block of `bytes` bytes (contents undefined).
    public static func take(bytes: Int) -> UnsafeMutableRawPointer {
        guard bytes >= minimumBytes else { return UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64) }
        var toFree: [(bytes: Int, block: UnsafeMutableRawPointer)] = []
        lock.lock()
        largestBlock = max(largestBlock, bytes)
        // The most recently dropped block of this size (its pages are the likeliest in cache),
        // else the smallest idle block up to twice the size: a pass asks for many sizes, and
        // a slack of idle blocks of the wrong sizes was freed and mapped again pass after pass
        // (each huge page zeroed by the kernel on its first touch: 5-10 % of a 256×256 pass).
        // The caller gives it back by the size it asked for; `lent` remembers the block's own.
        var pick = idle.lastIndex(where: { $0.bytes == bytes })
        if pick == nil {
            for (i, b) in idle.enumerated() where b.bytes > bytes && b.bytes <= 2 * bytes && (pick == nil || b.bytes < idle[pick!].bytes) { pick = i }
        }
        if let i = pick {
            let (size, p) = idle.remove(at: i)
            idleBytes -= size
            if size != bytes { lent[p] = size }
            lock.unlock()
            return p
        }
        var freed = 0, n = 0
        while freed < bytes && idleBytes - freed > slack && n < idle.count { freed += idle[n].bytes; toFree.append(idle[n]); n += 1 }
        idle.removeFirst(n)
        idleBytes -= freed
        lock.unlock()
        for (b, p) in toFree { release(p, b) }
        return allocate(bytes)
    }

    /// Blocks from this size on are mapped on their own, 2 MB aligned, and marked for
    /// transparent huge pages (Linux): a fresh block then faults once per 2 MB instead of once
    /// per 4 KB, and GEMMs and transforms that stream through it miss the TLB less.
    static let hugeBytes = 4 << 20
    private static let hugePage = 2 << 20
    /// `SVI_HUGE_PAGES=0` maps large blocks through malloc as before (for comparisons).
    static let hugePages = ProcessInfo.processInfo.environment["SVI_HUGE_PAGES"] != "0"

    private static func allocate(_ bytes: Int) -> UnsafeMutableRawPointer {
        #if os(Linux)
        if hugePages && bytes >= hugeBytes {
            let size = (bytes + hugePage - 1) / hugePage * hugePage
            guard let raw = mmap(nil, size + hugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                  raw != MAP_FAILED else {
                outOfMemory(bytes)
            }
            // Trim the mapping to a 2 MB-aligned [start, start + size).
            let addr = UInt(bitPattern: raw)
            let start = (addr + UInt(hugePage) - 1) / UInt(hugePage) * UInt(hugePage)
            let head = Int(start - addr), tail = hugePage - head
            if head > 0 { munmap(raw, head) }
            let block = UnsafeMutableRawPointer(bitPattern: start)!
            if tail > 0 { munmap(block + size, tail) }
            _ = madvise(block, size, 14 /* MADV_HUGEPAGE */)
            return block
        }
        #endif
        return UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
    }

    /// No memory left for a block: one line and exit 71 (SVIError.Kind.outOfMemory; issue 30), not a trap. What the
    /// command had written so far sits under a temporary name, which the next run of the same
    /// command removes (`TemporaryName.removeStale`).
    static func outOfMemory(_ bytes: Int) -> Never {
        let text = "Error: out of memory: could not allocate \(bytes >> 20) MB (the limit is the machine's memory, `ulimit -v` or the job's memory limit); use smaller frames, fewer frames per segment (--segment-frames) or tiles (--tile)\n"
        _ = text.withCString { write(2, $0, strlen($0)) }
        exit(SVIError.Kind.outOfMemory.exitStatus)
    }

    private static func release(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        #if os(Linux)
        if hugePages && bytes >= hugeBytes {
            munmap(p, (bytes + hugePage - 1) / hugePage * hugePage)
            return
        }
        #endif
        p.deallocate()
    }

    /// Gives back a block from `take(bytes:)`.
    public static func give(_ p: UnsafeMutableRawPointer, bytes asked: Int) {
        guard asked >= minimumBytes else { return release(p, asked) }
        lock.lock()
        let bytes = lent.removeValue(forKey: p) ?? asked
        if idleBytes + bytes <= 8 * slack {
            idle.append((bytes, p))
            idleBytes += bytes
            lock.unlock()
            return
        }
        lock.unlock()
        release(p, bytes)
    }
}

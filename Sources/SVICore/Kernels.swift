/// Multithreaded elementwise kernels and float64 reductions over raw buffers, for float32
/// and float64 alike (inlinable, so each caller gets a specialised copy).
///
/// Reductions are deterministic: they split the data into fixed-size blocks (independent of
/// the thread count), sum each block in float64 and add the block sums in order, so the same
/// data gives the same bits on 1 or 16 threads.
public enum Kernels {
    public static let reductionBlock = 8192

    @inlinable public static func fill<S: BinaryFloatingPoint>(_ y: UnsafeMutablePointer<S>, _ v: S, _ n: Int) {
        Parallel.forEachChunk(n) { s, e in (y + s).update(repeating: v, count: e - s) }
    }

    @inlinable public static func copy<S: BinaryFloatingPoint>(_ y: UnsafeMutablePointer<S>, _ x: UnsafePointer<S>, _ n: Int) {
        Parallel.forEachChunk(n) { s, e in (y + s).update(from: x + s, count: e - s) }
    }

    /// y ← y + a·x
    @inlinable public static func axpy<S: BinaryFloatingPoint>(_ y: UnsafeMutablePointer<S>, _ a: S, _ x: UnsafePointer<S>, _ n: Int) {
        Parallel.forEachChunk(n) { s, e in for i in s..<e { y[i] += a * x[i] } }
    }

    /// y ← a·x + b·y
    @inlinable public static func axpby<S: BinaryFloatingPoint>(_ y: UnsafeMutablePointer<S>, _ a: S, _ x: UnsafePointer<S>, _ b: S, _ n: Int) {
        Parallel.forEachChunk(n) { s, e in for i in s..<e { y[i] = a * x[i] + b * y[i] } }
    }

    /// z ← a·x + b·y
    @inlinable public static func lincomb<S: BinaryFloatingPoint>(_ z: UnsafeMutablePointer<S>, _ a: S, _ x: UnsafePointer<S>,
                                                                  _ b: S, _ y: UnsafePointer<S>, _ n: Int) {
        Parallel.forEachChunk(n) { s, e in for i in s..<e { z[i] = a * x[i] + b * y[i] } }
    }

    /// y ← a·y + b (affine map, e.g. [0,1] ↔ [-1,1])
    @inlinable public static func affine<S: BinaryFloatingPoint>(_ y: UnsafeMutablePointer<S>, _ a: S, _ b: S, _ n: Int) {
        Parallel.forEachChunk(n) { s, e in for i in s..<e { y[i] = a * y[i] + b } }
    }

    @inlinable public static func clip<S: BinaryFloatingPoint>(_ y: UnsafeMutablePointer<S>, _ lo: S, _ hi: S, _ n: Int) {
        Parallel.forEachChunk(n) { s, e in for i in s..<e { y[i] = min(max(y[i], lo), hi) } }
    }

    /// Float64 dot product of one contiguous range, summed in fixed blocks.
    @inlinable public static func dot<S: BinaryFloatingPoint>(_ x: UnsafePointer<S>, _ y: UnsafePointer<S>, _ n: Int) -> Double {
        let blocks = (n + reductionBlock - 1) / reductionBlock
        if blocks <= 1 { return blockDot(x, y, n) }
        var partial = [Double](repeating: 0, count: blocks)
        partial.withUnsafeMutableBufferPointer { p in
            let base = p.baseAddress!
            Parallel.forEach(blocks) { b in
                let s = b * reductionBlock
                base[b] = blockDot(x + s, y + s, min(reductionBlock, n - s))
            }
        }
        return partial.reduce(0, +)
    }

    /// `dot` on the calling thread: the same blocks, block sums and order, so the same bits —
    /// for a kernel that has just written one frame and takes its dot product while the frame
    /// is in cache.
    @inlinable public static func serialDot<S: BinaryFloatingPoint>(_ x: UnsafePointer<S>, _ y: UnsafePointer<S>, _ n: Int) -> Double {
        let blocks = (n + reductionBlock - 1) / reductionBlock
        if blocks <= 1 { return blockDot(x, y, n) }
        var sum = 0.0                                   // `partial.reduce(0, +)`, left to right
        for b in 0..<blocks {
            let s = b * reductionBlock
            sum += blockDot(x + s, y + s, min(reductionBlock, n - s))
        }
        return sum
    }

    /// Per-frame float64 dot products: the unit in which distributed sums are combined, so a
    /// sum over the whole video does not depend on how frames are split over ranks.
    @inlinable public static func frameDots<S: BinaryFloatingPoint>(_ x: UnsafePointer<S>, _ y: UnsafePointer<S>, frames: Int, frameSize: Int) -> [Double] {
        var out = [Double](repeating: 0, count: frames)
        for f in 0..<frames { out[f] = dot(x + f * frameSize, y + f * frameSize, frameSize) }
        return out
    }

    /// Per-frame sums of `body(lo, hi)` over fixed blocks of each frame (`reductionBlock`
    /// values, the blocks of `dot`), run in parallel and added in order: the same bits on any
    /// thread count. For fused passes that reduce while they write (`cgUpdate`, ADMM's shrink).
    @inlinable public static func frameBlockSums(frames: Int, frameSize fs: Int, _ body: (Int, Int) -> Double) -> [Double] {
        let perFrame = max(1, (fs + reductionBlock - 1) / reductionBlock), blocks = frames * perFrame
        if blocks == 0 { return [] }
        var partial = [Double](repeating: 0, count: blocks)
        partial.withUnsafeMutableBufferPointer { pp in
            let out = pp.baseAddress!
            Parallel.forEach(blocks) { b in
                let f = b / perFrame, j = b % perFrame
                let lo = f * fs + j * reductionBlock
                out[b] = body(lo, lo + min(reductionBlock, fs - j * reductionBlock))
            }
        }
        return (0..<frames).map { f in perFrame == 1 ? partial[f] : partial[f * perFrame..<(f + 1) * perFrame].reduce(0, +) }
    }

    /// CG's start in one pass: r ← r − q, p ← r, returning the new r's per-frame ‖r‖² — the
    /// bits of `lincomb(r, 1, r, −1, q)`, a copy and `frameDots(r, r)`.
    @inlinable public static func cgStart<S: BinaryFloatingPoint>(r: UnsafeMutablePointer<S>, q: UnsafePointer<S>,
                                                                  p: UnsafeMutablePointer<S>, frames: Int, frameSize fs: Int) -> [Double] {
        let one: S = 1, minusOne: S = -1
        return frameBlockSums(frames: frames, frameSize: fs) { lo, hi in
            for i in lo..<hi {
                let v = one * r[i] + minusOne * q[i]
                r[i] = v
                p[i] = v
            }
            return blockDot(r + lo, r + lo, hi - lo)
        }
    }

    /// CG's update in one pass: u ← u + α·p, r ← r − α·q, returning the new r's per-frame
    /// ‖r‖² — the same expressions, blocks and sums as `axpy`, `axpy`, `frameDots`, so the same
    /// bits, with r read once instead of three times (each block's dot runs while it is in cache).
    @inlinable public static func cgUpdate<S: BinaryFloatingPoint>(u: UnsafeMutablePointer<S>, p: UnsafePointer<S>,
                                                                   r: UnsafeMutablePointer<S>, q: UnsafePointer<S>, alpha: S,
                                                                   frames: Int, frameSize fs: Int) -> [Double] {
        let a = -alpha
        return frameBlockSums(frames: frames, frameSize: fs) { lo, hi in
            for i in lo..<hi {
                u[i] += alpha * p[i]
                r[i] += a * q[i]
            }
            return blockDot(r + lo, r + lo, hi - lo)
        }
    }

    @inlinable @inline(__always)
    static func blockDot<S: BinaryFloatingPoint>(_ x: UnsafePointer<S>, _ y: UnsafePointer<S>, _ n: Int) -> Double {
        var a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0
        var i = 0
        while i + 4 <= n {
            a0 += Double(x[i]) * Double(y[i])
            a1 += Double(x[i + 1]) * Double(y[i + 1])
            a2 += Double(x[i + 2]) * Double(y[i + 2])
            a3 += Double(x[i + 3]) * Double(y[i + 3])
            i += 4
        }
        while i < n { a0 += Double(x[i]) * Double(y[i]); i += 1 }
        return (a0 + a1) + (a2 + a3)
    }
}

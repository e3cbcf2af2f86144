import Testing
@testable import SVICore

/// The pool of large blocks: a request is served by an idle block of its size or, failing
/// that, by the smallest idle block up to twice as large, which comes back to the pool by its
/// own size whatever size its borrower names when giving it back.
@Suite struct BufferPoolTests {
    // Sizes no other test of this target asks for (its tensors are small).
    let large = 61 << 20 + 4_160, smaller = 45 << 20 + 192

    @Test func aLargerIdleBlockServesASmallerRequestAndReturnsWithItsOwnSize() throws {
        let p = BufferPool.take(bytes: large)
        p.storeBytes(of: 1, toByteOffset: large - 8, as: Int.self)
        BufferPool.give(p, bytes: large)
        let q = BufferPool.take(bytes: smaller)            // no idle block of this size: the larger one
        #expect(q == p)
        q.storeBytes(of: 2, toByteOffset: smaller - 8, as: Int.self)
        BufferPool.give(q, bytes: smaller)                 // named by the borrower's size
        let r = BufferPool.take(bytes: large)              // still the large block, all of it usable
        #expect(r == p)
        r.storeBytes(of: 3, toByteOffset: large - 8, as: Int.self)
        BufferPool.give(r, bytes: large)
        // A block more than twice the request is not lent for it.
        let tiny = BufferPool.take(bytes: large / 2 - 4_096)
        #expect(tiny != p)
        BufferPool.give(tiny, bytes: large / 2 - 4_096)
    }
}

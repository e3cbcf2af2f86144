import Testing
import SVICore
@testable import SVINetwork

/// Winograd F(4×4,3×3) equals the direct convolution on awkward sizes (partial tiles, partial
/// tile rows, one-pixel frames), with and without the fused residual sum.
@Suite struct WinogradTests {
    @Test(arguments: [(1, 1), (5, 7), (24, 40), (37, 53), (64, 64), (33, 130)])
    func matchesDirectConvolution(h: Int, w: Int) throws {
        let p = ParameterSource(randomSeed: 7)
        let conv = Conv2d(p, "c", cin: 9, cout: 5, k: 3)
        let x = Tensor(shape: [2, 9, h, w])
        RandomStream(seed: 3, purpose: .initial).normals(offset: 0, count: x.count, into: x.data)
        let direct = withKernels(reference: true) { conv.forward(x) }
        let wino = Winograd43(weight: conv.weight, cin: 9, cout: 5)
        let y = Tensor(shape: direct.shape)
        for i in 0..<2 { wino.forward(x.frame(i), h: h, w: w, bias: conv.bias.data, into: y.frame(i), accumulate: false) }
        #expect(relativeL2(y, direct) < 1e-5)
        // Accumulating onto an existing tensor adds the convolution to it.
        let base = Tensor(shape: direct.shape)
        RandomStream(seed: 4, purpose: .initial).normals(offset: 0, count: base.count, into: base.data)
        let acc = base.copy()
        for i in 0..<2 { wino.forward(x.frame(i), h: h, w: w, bias: conv.bias.data, into: acc.frame(i), accumulate: true) }
        for i in 0..<acc.count { acc[i] -= base[i] }
        #expect(relativeL2(acc, direct) < 1e-5)
    }
}

/// Attention computed in blocks of query rows equals attention computed at once.
@Suite struct AttentionBlockingTests {
    @Test func blockedAttentionMatchesWhole() throws {
        let p = ParameterSource(randomSeed: 5)
        let block = AttentionBlock(p, "a", channels: 32, heads: 2, newOrder: false)
        let x = Tensor(shape: [2, 32, 9, 7])
        RandomStream(seed: 6, purpose: .initial).normals(offset: 0, count: x.count, into: x.data)
        let whole = block.forward(x)
        let saved = AttentionBlock.blockElements
        AttentionBlock.blockElements = 63 * 5          // 5 query rows at a time, the last block shorter
        let blocked = block.forward(x)
        AttentionBlock.blockElements = saved
        #expect(relativeL2(blocked, whole) < 1e-6)
    }
}

import Testing
import SVICore
import CKernels
@testable import SVINetwork

/// Winograd F(4×4,3×3) equals the direct convolution on awkward sizes (partial tiles, partial
/// tile rows, one-pixel frames), with and without the fused residual sum, for a batch of
/// frames transformed together — also when a block of tile rows ends inside a frame.
@Suite(.serialized) struct WinogradTests {
    @Test(arguments: [(1, 1), (5, 7), (24, 40), (37, 53), (64, 64), (33, 130)])
    func matchesDirectConvolution(h: Int, w: Int) throws {
        try check(h: h, w: w)
    }

    @Test func blocksCutAcrossFrames() throws {
        let saved = Winograd43.blockFloats
        Winograd43.blockFloats = 36 * 9 * 16 * 4     // 4 tile rows of 16 padded tiles: blocks straddle frames (6 rows each)
        defer { Winograd43.blockFloats = saved }
        try check(h: 21, w: 37)
    }

    /// Both builds of the transform kernels (AVX2, and AVX-512 where the CPU has it) give the
    /// direct convolution's result; the 16-tile path needs tile rows of ≥ 16 tiles (w ≥ 61).
    @Test func bothInstructionSetsMatch() throws {
        let saved = String(cString: svi_kernels_isa())
        defer { _ = svi_kernels_use(saved) }
        #expect(svi_kernels_use("avx2") == 1)
        try check(h: 19, w: 130)
        if svi_kernels_use("avx512") == 1 {
            #expect(String(cString: svi_kernels_isa()) == "avx512")
            try check(h: 19, w: 130)
        }
        #expect(svi_kernels_use("sse9") == 0)
    }

    private func check(h: Int, w: Int) throws {
        let p = ParameterSource(randomSeed: 7)
        let conv = Conv2d(p, "c", cin: 9, cout: 5, k: 3)
        let x = Tensor(shape: [3, 9, h, w])
        RandomStream(seed: 3, purpose: .initial).normals(offset: 0, count: x.count, into: x.data)
        let direct = withKernels(reference: true) { conv.forward(x) }
        let wino = Winograd43(weight: conv.weight, cin: 9, cout: 5)
        let y = Tensor(shape: direct.shape)
        wino.forward(x.data, frames: 3, h: h, w: w, bias: conv.bias.data, into: y.data, accumulate: false)
        #expect(relativeL2(y, direct) < 1e-5)
        // Accumulating onto an existing tensor adds the convolution to it.
        let base = Tensor(shape: direct.shape)
        RandomStream(seed: 4, purpose: .initial).normals(offset: 0, count: base.count, into: base.data)
        let acc = base.copy()
        wino.forward(x.data, frames: 3, h: h, w: w, bias: conv.bias.data, into: acc.data, accumulate: true)
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

/// Small frames of a batch share one GEMM (columns side by side): the same result as the
/// plain per-frame path, for 1×1 and 3×3 kernels, strides 1 and 2, with and without the
/// fused residual sum.
@Suite struct FrameGroupGEMMTests {
    @Test(arguments: [(1, 1), (3, 1), (3, 2)])
    func groupedFramesMatchPerFrame(k: Int, stride: Int) throws {
        let p = ParameterSource(randomSeed: 11)
        let conv = Conv2d(p, "c", cin: 6, cout: 7, k: k, stride: stride)
        let x = Tensor(shape: [3, 6, 9, 11])
        RandomStream(seed: 12, purpose: .initial).normals(offset: 0, count: x.count, into: x.data)
        let plain = withKernels(reference: true) { conv.forward(x) }
        let grouped = withKernels(reference: false) { conv.forward(x) }
        #expect(relativeL2(grouped, plain) < 1e-6)
        let base = Tensor(shape: plain.shape)
        RandomStream(seed: 13, purpose: .initial).normals(offset: 0, count: base.count, into: base.data)
        let acc = withKernels(reference: false) { conv.forward(x, into: base.copy(), accumulate: true) }
        for i in 0..<acc.count { acc[i] -= base[i] }
        #expect(relativeL2(acc, plain) < 1e-6)
    }
}

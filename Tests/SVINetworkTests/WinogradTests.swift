import Testing
import SVICore
import SVIFormats
import CKernels
@testable import SVINetwork

/// Winograd F(4×4,3×3) equals the direct convolution on awkward sizes (partial tiles, partial
/// tile rows, one-pixel frames), with and without the fused residual sum, for a batch of
/// frames — also when a frame takes several blocks of tile rows.
@Suite(.serialized) struct WinogradTests {
    @Test(arguments: [(1, 1), (5, 7), (24, 40), (37, 53), (64, 64), (33, 130)])
    func matchesDirectConvolution(h: Int, w: Int) throws {
        try check(h: h, w: w)
    }

    @Test func framesCutIntoSeveralBlocks() throws {
        try check(h: 21, w: 37) { o in
            o.winogradBlockFloats = 36 * 9 * 16 * 4     // 4 tile rows of 16 padded tiles per block, 6 rows per frame
            o.winogradMinimumColumns = 1
        }
    }

    /// A frame's result does not depend on the other frames of its batch, to the bit (the
    /// restoration must not depend on how frames are spread over MPI ranks).
    @Test func frameResultsIndependentOfBatch() throws {
        let p = ParameterSource(randomSeed: 7)
        let conv = Conv2d(p, "c", cin: 9, cout: 5, k: 3)
        for (h, w) in [(37, 53), (9, 11)] {        // Winograd and im2col sizes
            let x = Tensor(shape: [3, 9, h, w])
            RandomStream(seed: 3, purpose: .initial).normals(offset: 0, count: x.count, into: x.data)
            let all = conv.forward(x)
            let one = Tensor(shape: [1, 9, h, w])
            one.data.update(from: x.frame(2), count: one.count)
            let alone = conv.forward(one)
            #expect((0..<alone.count).allSatisfy { alone[$0] == all.frame(2)[$0] })
        }
    }

    /// Both builds of the transform kernels (AVX2, and AVX-512 where the CPU has it) give the
    /// direct convolution's result; the 16-tile path needs tile rows of ≥ 16 tiles (w ≥ 61).
    @Test func bothInstructionSetsMatch() throws {
        let saved = String(cString: svi_kernels_isa())
        defer { _ = svi_kernels_use(saved) }
        #expect(svi_kernels_use("avx2") == 1)
        try check(h: 19, w: 130)
        let avx2 = try winogradOutput(h: 19, w: 130)
        if svi_kernels_use("avx512") == 1 {
            #expect(String(cString: svi_kernels_isa()) == "avx512")
            try check(h: 19, w: 130)
            // The same bits: the switch is process-wide, so a network test running beside this
            // one must not see its output change with it (and SVI_ISA=avx2 children in
            // DeterminismTests compare against AVX-512 parents).
            let avx512 = try winogradOutput(h: 19, w: 130)
            #expect(avx2.array == avx512.array, "AVX2 and AVX-512 transforms give other bits")
        }
        #expect(svi_kernels_use("sse9") == 0)
    }

    private func winogradOutput(h: Int, w: Int) throws -> Tensor {
        let p = ParameterSource(randomSeed: 7)
        let conv = Conv2d(p, "c", cin: 9, cout: 5, k: 3)
        let x = Tensor(shape: [2, 9, h, w])
        RandomStream(seed: 3, purpose: .initial).normals(offset: 0, count: x.count, into: x.data)
        let y = Tensor(shape: [2, 5, h, w])
        Winograd43(weight: conv.weight, cin: 9, cout: 5).forward(x.data, frames: 2, h: h, w: w, bias: conv.bias.data, into: y.data,
                                                                  accumulate: false, options: NetworkOptions())
        return y
    }

    /// Winograd (with `options` changed by `configure`) against the direct convolution.
    private func check(h: Int, w: Int, configure: (NetworkOptions) -> Void = { _ in }) throws {
        let p = ParameterSource(randomSeed: 7)
        let conv = Conv2d(p, "c", cin: 9, cout: 5, k: 3)
        let x = Tensor(shape: [3, 9, h, w])
        RandomStream(seed: 3, purpose: .initial).normals(offset: 0, count: x.count, into: x.data)
        p.options.referenceKernels = true
        let direct = conv.forward(x)
        let options = NetworkOptions()
        configure(options)
        let wino = Winograd43(weight: conv.weight, cin: 9, cout: 5)
        let y = Tensor(shape: direct.shape)
        wino.forward(x.data, frames: 3, h: h, w: w, bias: conv.bias.data, into: y.data, accumulate: false, options: options)
        #expect(relativeL2(y, direct) < 1e-5)
        // Accumulating onto an existing tensor adds the convolution to it.
        let base = Tensor(shape: direct.shape)
        RandomStream(seed: 4, purpose: .initial).normals(offset: 0, count: base.count, into: base.data)
        let acc = base.copy()
        wino.forward(x.data, frames: 3, h: h, w: w, bias: conv.bias.data, into: acc.data, accumulate: true, options: options)
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
        p.options.attentionBlockElements = 63 * 5          // 5 query rows at a time, the last block shorter
        let blocked = block.forward(x)
        #expect(relativeL2(blocked, whole) < 1e-6)
    }
}

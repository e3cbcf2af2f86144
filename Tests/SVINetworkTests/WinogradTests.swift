import Testing
import Foundation
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
            o.winogradFusedBytes = 0                    // the stages one after the other, over blocks of
            o.winogradBlockFloats = 36 * 9 * 16 * 4     // 4 tile rows of 16 padded tiles, 6 rows per frame
            o.winogradMinimumColumns = 1
        }
    }

    /// Few-channel layers run fused (each thread transforms, multiplies and transforms back one
    /// block of tile rows): the same bits as the stages one after the other, whatever the
    /// block (one tile row, several, a whole frame), at both precisions, accumulating or not.
    @Test(arguments: [Precision.fp32, Precision.bf16])
    func fusedStagesGiveTheBitsOfSeparateOnes(precision: Precision) throws {
        if precision == .bf16 && !Precision.bf16Available { return }
        let p = ParameterSource(randomSeed: 7)
        let conv = Conv2d(p, "c", cin: 9, cout: 5, k: 3)
        let (h, w) = (37, 130)                          // 10 tile rows of 40 padded tiles
        let x = Tensor(shape: [3, 9, h, w])
        RandomStream(seed: 3, purpose: .initial).normals(offset: 0, count: x.count, into: x.data)
        let base = Tensor(shape: [3, 5, h, w])
        RandomStream(seed: 4, purpose: .initial).normals(offset: 0, count: base.count, into: base.data)
        let wino = Winograd43(weight: conv.weight, cin: 9, cout: 5)
        func run(fusedBytes: Int, accumulate: Bool) -> [Float] {
            let o = NetworkOptions()
            o.precision = precision
            o.winogradFusedBytes = fusedBytes
            let y = accumulate ? base.copy() : Tensor(shape: base.shape)
            wino.forward(x.data, frames: 3, h: h, w: w, bias: conv.bias.data, into: y.data, accumulate: accumulate, options: o)
            return y.array
        }
        let perRow = 4 * 36 * (9 + 5) * 40
        for accumulate in [false, true] {
            let separate = run(fusedBytes: 0, accumulate: accumulate)
            for bytes in [1, 3 * perRow, 100 * perRow] {
                #expect(run(fusedBytes: bytes, accumulate: accumulate) == separate, "\(bytes) bytes, accumulate \(accumulate)")
            }
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

/// Attention computed in blocks of query rows equals attention computed at once (the GEMM path).
@Suite struct AttentionBlockingTests {
    @Test func blockedAttentionMatchesWhole() throws {
        let p = ParameterSource(randomSeed: 5)
        let block = AttentionBlock(p, "a", channels: 32, heads: 2, newOrder: false)
        let x = Tensor(shape: [2, 32, 9, 7])
        RandomStream(seed: 6, purpose: .initial).normals(offset: 0, count: x.count, into: x.data)
        p.options.referenceKernels = true                  // the GEMM path, whose blocks these are
        let whole = block.forward(x)
        p.options.attentionBlockElements = 63 * 5          // 5 query rows at a time, the last block shorter
        let blocked = block.forward(x)
        #expect(relativeL2(blocked, whole) < 1e-6)
    }
}

/// The attention kernel (CKernels/attention.c, issue 31): the softmax attention of float64
/// arithmetic within float32 rounding, the GEMM path's result, and the same bits on AVX2 and
/// AVX-512, at any thread count and wherever a position's block falls.
@Suite struct AttentionKernelTests {
    /// q, k, v of one head, [ch][l] each, and the kernel's output for all positions.
    private func kernel(ch: Int, l: Int, seed: UInt64) -> (q: Tensor, k: Tensor, v: Tensor, out: Tensor) {
        let q = Tensor(shape: [ch, l]), k = Tensor(shape: [ch, l]), v = Tensor(shape: [ch, l])
        for (i, t) in [q, k, v].enumerated() { RandomStream(seed: seed + UInt64(i), purpose: .initial).normals(offset: 0, count: t.count, into: t.data) }
        let out = Tensor(shape: [ch, l])
        AttentionBlock.attendInPlace(q: q.data, k: k.data, v: v.data, ch: ch, l: l, alpha: Float(1 / Double(ch).squareRoot()), out: out.data)
        return (q, k, v, out)
    }

    @Test(arguments: [(16, 63), (64, 256), (7, 33), (32, 1), (3, 100)])
    func matchesFloat64Attention(ch: Int, l: Int) throws {
        let (q, k, v, out) = kernel(ch: ch, l: l, seed: 11)
        let alpha = 1 / Double(ch).squareRoot()
        var num = 0.0, den = 0.0
        var w = [Double](repeating: 0, count: l)
        for t in 0..<l {
            for s in 0..<l { w[s] = alpha * (0..<ch).reduce(0.0) { $0 + Double(q[$1 * l + t]) * Double(k[$1 * l + s]) } }
            let m = w.max()!
            for s in 0..<l { w[s] = exp(w[s] - m) }
            let sum = w.reduce(0, +)
            for c in 0..<ch {
                let a = (0..<l).reduce(0.0) { $0 + Double(v[c * l + $1]) * w[$1] } / sum
                num += (Double(out[c * l + t]) - a) * (Double(out[c * l + t]) - a); den += a * a
            }
        }
        #expect((num / max(den, 1e-30)).squareRoot() < 2e-6, "relative error \((num / max(den, 1e-30)).squareRoot())")
    }

    @Test func matchesTheGEMMPath() throws {
        let p = ParameterSource(randomSeed: 5)
        let block = AttentionBlock(p, "a", channels: 64, heads: 2, newOrder: true)
        let x = Tensor(shape: [2, 64, 11, 13])
        RandomStream(seed: 6, purpose: .initial).normals(offset: 0, count: x.count, into: x.data)
        let fast = block.forward(x)
        p.options.referenceKernels = true
        #expect(relativeL2(fast, block.forward(x)) < 1e-5)
    }

    /// The same bits on both instruction sets (the switch is process-wide: a network test beside
    /// this one must not see its output change) and at 1 and 2 threads (blocks fall on other
    /// threads).
    @Test func sameBitsOnBothInstructionSetsAndAnyThreadCount() throws {
        let saved = String(cString: svi_kernels_isa())
        defer { _ = svi_kernels_use(saved) }
        var outputs: [[Float]] = []
        for isa in ["avx2", "avx512"] where svi_kernels_use(isa) == 1 {
            for threads in [1, 2] {
                outputs.append(Parallel.withThreads(threads) { kernel(ch: 24, l: 200, seed: 3).out.array })
            }
        }
        #expect(outputs.count >= 2)
        #expect(outputs.allSatisfy { $0 == outputs[0] })
    }
}

/// svi_small_gemm (CKernels/smallgemm.c), Winograd's products at few channels: float64's
/// product within float32 rounding, stored or added, at odd sizes (row and column tails), with
/// the same bits on AVX2 and AVX-512.
@Suite struct SmallGEMMTests {
    private func run(m: Int, n: Int, k: Int, accumulate: Bool) -> (a: Tensor, b: Tensor, c0: Tensor, c: Tensor) {
        let a = Tensor(shape: [m, k]), b = Tensor(shape: [k, n]), c0 = Tensor(shape: [m, n])
        RandomStream(seed: 1, purpose: .initial).normals(offset: 0, count: a.count, into: a.data)
        RandomStream(seed: 2, purpose: .initial).normals(offset: 0, count: b.count, into: b.data)
        RandomStream(seed: 3, purpose: .initial).normals(offset: 0, count: c0.count, into: c0.data)
        let c = c0.copy()
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: svi_small_gemm_scratch_floats(k))
        defer { scratch.deallocate() }
        svi_small_gemm(m, n, k, a.data, k, b.data, n, c.data, n, accumulate ? 1 : 0, scratch)
        return (a, b, c0, c)
    }

    @Test(arguments: [(32, 128, 32, false), (64, 96, 64, true), (7, 45, 13, false), (9, 33, 1, true), (1, 1, 5, false)])
    func matchesFloat64(m: Int, n: Int, k: Int, accumulate: Bool) throws {
        let (a, b, c0, c) = run(m: m, n: n, k: k, accumulate: accumulate)
        var num = 0.0, den = 0.0
        for i in 0..<m { for j in 0..<n {
            var s = accumulate ? Double(c0[i * n + j]) : 0
            for p in 0..<k { s += Double(a[i * k + p]) * Double(b[p * n + j]) }
            num += (Double(c[i * n + j]) - s) * (Double(c[i * n + j]) - s); den += s * s
        } }
        #expect((num / den).squareRoot() < 1e-6, "relative error \((num / den).squareRoot())")
    }

    @Test func sameBitsOnBothInstructionSets() throws {
        let saved = String(cString: svi_kernels_isa())
        defer { _ = svi_kernels_use(saved) }
        var outputs: [[Float]] = []
        for isa in ["avx2", "avx512"] where svi_kernels_use(isa) == 1 {
            outputs.append(run(m: 19, n: 70, k: 40, accumulate: true).c.array)
        }
        #expect(outputs.count >= 1)
        #expect(outputs.allSatisfy { $0 == outputs[0] })
    }
}

/// GroupNorm's normalising pass in C: a·x + o and SiLU as float64 computes them (within the
/// exponential's 1e-6), at lengths with a tail, with the same bits on AVX2 and AVX-512.
@Suite struct ScaleShiftSiLUTests {
    @Test(arguments: [1, 15, 16, 37, 4096])
    func matchesFloat64AndBothInstructionSets(n: Int) throws {
        let x = Tensor(shape: [n])
        RandomStream(seed: 9, purpose: .initial).normals(offset: 0, count: n, into: x.data)
        for i in 0..<n { x[i] *= 30 }                       // past the exponential's clamps too
        let saved = String(cString: svi_kernels_isa())
        defer { _ = svi_kernels_use(saved) }
        var outputs: [[Float]] = []
        for isa in ["avx2", "avx512"] where svi_kernels_use(isa) == 1 {
            let y = Tensor(shape: [n])
            svi_scale_shift_silu(x.data, y.data, n, 0.7, -0.2, 1)
            outputs.append(y.array)
            for i in 0..<n {
                let v = 0.7 * Double(x[i]) - 0.2, want = v / (1 + exp(-v))
                #expect(abs(Double(y[i]) - want) <= 2e-6 * max(1, abs(want)), "\(isa) x \(x[i]): \(y[i]) vs \(want)")
            }
            let plain = Tensor(shape: [n])
            svi_scale_shift_silu(x.data, plain.data, n, 0.7, -0.2, 0)
            #expect((0..<n).allSatisfy { plain[$0] == Float(0.7) * x[$0] + Float(-0.2) || abs(plain[$0] - (0.7 * x[$0] - 0.2)) < 1e-5 })
        }
        #expect(outputs.allSatisfy { $0 == outputs[0] })
    }
}

import Testing
import Foundation
import SVICore
import SVIFormats
import CKernels
@testable import SVINetwork

/// `--precision bf16`: the bf16 GEMM computes exactly what it claims (products of bf16-rounded
/// values summed in float32), its results do not depend on how the work is split, and the
/// network in bf16 stays within bf16's error of the reference's forward passes. These run only
/// on CPUs with AVX-512 BF16; the refusal elsewhere is an end-to-end test (CLI).
@Suite(.serialized, .enabled(if: Precision.bf16Available, "this CPU has no AVX-512 BF16"))
struct BF16Tests {
    /// float32 → nearest bf16 (ties to even), as a float32.
    static func roundedBF16(_ f: Float) -> Float {
        var u = f.bitPattern
        u = u &+ 0x7fff &+ ((u >> 16) & 1)
        return Float(bitPattern: u & 0xffff_0000)
    }

    static func random(_ n: Int, seed: UInt64) -> [Float] {
        let t = Tensor(shape: [n])
        RandomStream(seed: seed, purpose: .initial).normals(offset: 0, count: n, into: t.data)
        return (0..<n).map { t[$0] }
    }

    /// Against float64 sums of the bf16-rounded inputs: the only difference left is float32
    /// accumulation, bounded by k·2⁻²⁴·Σ|a·b| per element. Odd k, partial panels of 8 rows and
    /// partial blocks of 32 columns included; `accumulate` adds to what C held.
    @Test(arguments: [(1, 1, 1), (8, 32, 2), (13, 45, 7), (17, 100, 33), (40, 70, 300)])
    func gemmIsBF16ProductsSummedInFloat32(m: Int, n: Int, k: Int) throws {
        let a = Self.random(m * k, seed: 1), b = Self.random(k * n, seed: 2), c0 = Self.random(m * n, seed: 3)
        let packed = a.withUnsafeBufferPointer { PackedBF16($0.baseAddress!, m: m, k: k, lda: k) }
        for accumulate in [false, true] {
            var c = c0
            b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                bf16gemmSerial(packed, n: n, b: bp.baseAddress!, ldb: n, c: cp.baseAddress!, ldc: n, accumulate: accumulate)
            } }
            var worst = 0.0
            for i in 0..<m { for j in 0..<n {
                var s = accumulate ? Double(c0[i * n + j]) : 0, mag = abs(s)
                for p in 0..<k {
                    let t = Double(Self.roundedBF16(a[i * k + p])) * Double(Self.roundedBF16(b[p * n + j]))
                    s += t; mag += abs(t)
                }
                worst = max(worst, abs(Double(c[i * n + j]) - s) / (Double(k + 1) * 0x1p-24 * mag + 1e-30))
            } }
            #expect(worst <= 1, "\(m)×\(n)×\(k) accumulate \(accumulate): error \(worst) of the float32 bound")
        }
    }

    /// Splitting the columns or the rows over threads gives the serial call's bits.
    @Test func threadSplitsGiveTheSerialBits() throws {
        for (m, n, k) in [(64, 3000, 96), (200, 60, 400)] {      // split by columns, by rows
            let a = Self.random(m * k, seed: 4), b = Self.random(k * n, seed: 5)
            let packed = a.withUnsafeBufferPointer { PackedBF16($0.baseAddress!, m: m, k: k, lda: k) }
            var serial = [Float](repeating: 0, count: m * n), split = serial
            b.withUnsafeBufferPointer { bp in
                serial.withUnsafeMutableBufferPointer { bf16gemmSerial(packed, n: n, b: bp.baseAddress!, ldb: n, c: $0.baseAddress!, ldc: n, accumulate: false) }
                split.withUnsafeMutableBufferPointer { bf16gemm(packed, n: n, b: bp.baseAddress!, ldb: n, c: $0.baseAddress!, ldc: n, accumulate: false) }
            }
            #expect(serial == split, "\(m)×\(n)×\(k)")
        }
    }

    /// A frame's bf16 result does not depend on the other frames of its batch, to the bit
    /// (Winograd and im2col sizes, and 1×1), so restorations stay rank-count independent.
    @Test func frameResultsIndependentOfBatch() throws {
        let p = ParameterSource(randomSeed: 7)
        p.options.precision = .bf16
        for k in [3, 1] {
            let conv = Conv2d(p, "c\(k)", cin: 9, cout: 5, k: k)
            for (h, w) in [(37, 53), (9, 11)] {
                let x = Tensor(shape: [3, 9, h, w])
                RandomStream(seed: 3, purpose: .initial).normals(offset: 0, count: x.count, into: x.data)
                let all = conv.forward(x)
                let one = Tensor(shape: [1, 9, h, w])
                one.data.update(from: x.frame(2), count: one.count)
                let alone = conv.forward(one)
                #expect((0..<alone.count).allSatisfy { alone[$0] == all.frame(2)[$0] }, "k \(k), \(h)×\(w)")
            }
        }
    }

    /// The fixtures' forward passes in bf16: within bf16's error of the reference (its unit
    /// roundoff is 2⁻⁹ ≈ 2e-3 per rounded value), measurably apart from fp32. Winograd's
    /// transforms magnify the rounding of the transformed input (measured on the fixtures:
    /// `swift test --filter BF16Tests` prints each case), so the fast path gets the looser bound.
    @Test(arguments: ParityTests.models)
    func fixturesStayWithinBF16Error(model: String) throws {
        let base = Fixtures.path(model)
        let config = try UNetConfig.load(base + "/fixture.json")
        let ckpt = try Checkpoint.load(base + "/weights.safetensors")
        let net = try UNet(config: config, tensors: ckpt.tensors, source: model)
        net.precision = .bf16
        for c in try Fixtures.cases(at: base) {
            let x = try NPY.readFloat32(base + "/" + c.input)
            let t = try NPY.readIntegers(base + "/" + c.timesteps).values
            let expected = try NPY.readFloat32(base + "/" + c.output)
            for (fast, bound) in [(false, 1.5e-2), (true, 8e-2)] {
                net.referenceKernels = !fast
                let y = try net.forward(x, timesteps: t)
                let err = relativeL2(y, expected)
                print("bf16 \(model) \(c.input) \(fast ? "fast" : "reference"): relative L2 \(err)")
                #expect(err <= bound && err > 1e-5, "\(model) \(c.input) \(fast ? "fast" : "reference"): relative L2 \(err)")
            }
        }
    }
}

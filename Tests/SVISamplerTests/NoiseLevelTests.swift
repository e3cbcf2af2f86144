import Testing
import Foundation
import SVICore
import SVIFormats
import SVIContracts
import SVIOperators
@testable import SVISampler

/// The measurement's noise level (issue 27): each part, how they combine, the MAD estimate's
/// accuracy on quantised measurements of known σ, and CG stopped at that level.
@Suite struct NoiseLevelTests {
    /// A moving scene with smooth shading and sharp edges (what a robust estimator must not
    /// mistake for noise), [T][3][H][W] in [0.1, 0.9].
    static func scene(frames: Int, height: Int, width: Int) -> Tensor {
        let x = Tensor(shape: [frames, 3, height, width])
        for t in 0..<frames {
            for c in 0..<3 {
                for i in 0..<height {
                    for j in 0..<width {
                        let fx = Double(j + 2 * t) / Double(width), fy = Double(i) / Double(height)
                        var v = 0.3 + 0.2 * sin(3 * fx + Double(c)) * cos(2 * fy)
                        if (j + t) % 40 < 18 && i % 32 < 20 { v += 0.3 }          // moving blocks: edges
                        x.data[((t * 3 + c) * height + i) * width + j] = Float(min(max(v, 0.1), 0.9))
                    }
                }
            }
        }
        return x
    }

    /// y = A x + n, stored with `bits` bits (0: float), and the true RMS of y − A x.
    static func measurement(spec: String, sigma: Double, bits: Int, seed: UInt64 = 3) throws -> (y: Tensor, trueSigma: Double) {
        let x = scene(frames: 16, height: 96, width: 128)
        let op = try DegradationOperator(spec: .parse(spec), frame: FrameShape(channels: 3, height: 96, width: 128), totalFrames: 16)
        let d = Distribution.local(totalFrames: 16)
        let clean = op.measure(x, d, noiseSeed: 0)
        var noisySpec = op.spec
        noisySpec.noiseSigma = sigma
        let noisyOp = try DegradationOperator(spec: noisySpec, frame: op.inputShape, totalFrames: 16)
        let y = noisyOp.measure(x, d, noiseSeed: seed)
        var sum = 0.0
        for i in 0..<y.count {
            if bits > 0 {
                let levels = Float((1 << bits) - 1)
                y.data[i] = (min(max(y.data[i], 0), 1) * levels).rounded() / levels
            }
            let e = Double(y.data[i]) - Double(clean.data[i])
            sum += e * e
        }
        return (y, (sum / Double(y.count)).squareRoot())
    }

    static func estimate(_ y: Tensor, bits: Int) -> Double? {
        var est = NoiseEstimator(channels: y.shape[1], height: y.shape[2], width: y.shape[3],
                                 step: bits > 0 ? 1 / Double((1 << bits) - 1) : 0)
        for f in 0..<y.frames { est.add(y.frame(f)) }
        return est.estimate()
    }

    @Test(arguments: [8, 16])
    func madEstimateIsWithinTwentyPercentOfKnownNoise(bits: Int) throws {
        for spec in ["temporal=uniform:7", "temporal=gaussian:1,sr=2", "temporal=uniform:7,sr=4"] {
            for sigma in [0.005, 0.01, 0.02] {
                let (y, truth) = try Self.measurement(spec: spec, sigma: sigma, bits: bits)
                let e = try #require(Self.estimate(y, bits: bits))
                #expect(abs(e / truth - 1) < 0.2, "\(spec), σ \(sigma), \(bits) bits: estimate \(e), truth \(truth)")
            }
        }
    }

    /// Without added noise the estimate stays near the rounding (it must not read the scene's
    /// edges as noise): below 2.5× the 8-bit quantisation.
    @Test func madEstimateOfAnEightBitMeasurementIsNearItsRounding() throws {
        let (y, truth) = try Self.measurement(spec: "temporal=gaussian:1,sr=2", sigma: 0, bits: 8)
        let e = try #require(Self.estimate(y, bits: 8))
        #expect(e < 2.5 * NoiseLevel.quantization(bits: 8), "estimate \(e), rounding error \(truth)")
    }

    @Test func quantisationIsStepOverRootTwelve() {
        #expect(abs(NoiseLevel.quantization(bits: 8) - 1 / (255 * 12.0.squareRoot())) < 1e-12)
        #expect(abs(NoiseLevel.quantization(bits: 10) - 1 / (1023 * 12.0.squareRoot())) < 1e-12)
        #expect(NoiseLevel.quantization(bits: 0) == 0)
        // H.264: the quantiser step doubles every 6 QP.
        #expect(abs(NoiseLevel.codecError(meanQP: 28) / NoiseLevel.codecError(meanQP: 22) - 2) < 1e-12)
    }

    /// Y′CbCr rounding carried into RGB: 8-bit limited range ≈ 0.0025 (more than RGB's 0.0011:
    /// fewer levels, and Cr, Cb reach R, G, B amplified by the BT.601 matrix).
    @Test func yuvRoundingIsLargerThanRGB() {
        let v = NoiseLevel.quantization(yuvBits: 8, fullRange: false, rgbBits: 8)
        let expected = (1 / (219.0 * 219 * 12) + 1.911 / (224.0 * 224 * 12) + 1 / (255.0 * 255 * 12)).squareRoot()
        #expect(abs(v - expected) < 2e-6, "\(v) vs \(expected)")
        #expect(NoiseLevel.quantization(yuvBits: 8, fullRange: true, rgbBits: 8) < v)
        #expect(NoiseLevel.quantization(yuvBits: 10, fullRange: false, rgbBits: 16) < v / 3)
    }

    /// 4:2:0 subsampling's loss, estimated from the subsampled frames alone: about the true
    /// loss on a scene with colour edges, nothing on a grey one.
    @Test func chromaLossOfSubsampledFramesIsEstimated() {
        let x = Self.scene(frames: 4, height: 96, width: 128)
        let n = 96 * 128
        // Colour: tint the blocks, so chroma has edges.
        for f in 0..<4 { for i in 0..<n where x.frame(f)[i] > 0.55 { x.frame(f)[2 * n + i] *= 0.5 } }
        let sub = Tensor(shape: x.shape)
        var lossSum = 0.0
        for f in 0..<4 {
            let src = x.frame(f), dst = sub.frame(f)
            var cb = [Double](repeating: 0, count: n), cr = cb, yy = cb
            for i in 0..<n {
                let r = Double(src[i]), g = Double(src[n + i]), b = Double(src[2 * n + i])
                yy[i] = 0.299 * r + 0.587 * g + 0.114 * b; cb[i] = (b - yy[i]) / 1.772; cr[i] = (r - yy[i]) / 1.402
            }
            for by in 0..<48 { for bx in 0..<64 {
                let idx = [2 * by * 128 + 2 * bx, 2 * by * 128 + 2 * bx + 1, (2 * by + 1) * 128 + 2 * bx, (2 * by + 1) * 128 + 2 * bx + 1]
                let mb = idx.map { cb[$0] }.reduce(0, +) / 4, mr = idx.map { cr[$0] }.reduce(0, +) / 4
                for i in idx {
                    let r = yy[i] + 1.402 * mr, b = yy[i] + 1.772 * mb, g = (yy[i] - 0.299 * r - 0.114 * b) / 0.587
                    dst[i] = Float(r); dst[n + i] = Float(g); dst[2 * n + i] = Float(b)
                }
            } }
            for i in 0..<(3 * n) { let e = Double(dst[i]) - Double(src[i]); lossSum += e * e }
        }
        let truth = (lossSum / Double(4 * 3 * n)).squareRoot()
        var est = NoiseEstimator(channels: 3, height: 96, width: 128, step: 0)
        for f in 0..<4 { est.add(sub.frame(f)) }
        let e = est.chromaLoss()!
        #expect(e > truth / 2 && e < truth * 2, "estimate \(e), true loss \(truth)")
        var grey = NoiseEstimator(channels: 3, height: 96, width: 128, step: 0)
        let g = Tensor(shape: [1, 3, 96, 128])
        for i in 0..<n { let v = x.frame(0)[i]; g.data[i] = v; g.data[n + i] = v; g.data[2 * n + i] = v }
        grey.add(g.data)
        #expect(grey.chromaLoss()! < 1e-6)
    }

    @Test func effectiveCombinesThePartsAndHonoursTheOverride() {
        let q = NoiseLevel.quantization(bits: 8)
        var n = NoiseLevel(stated: 0.01, quantization: q, dataEstimate: 0.002, trustsData: true, format: "8-bit ffv1")
        #expect(abs(n.effective - (0.01 * 0.01 + q * q).squareRoot()) < 1e-15)    // the data show less: stated + rounding
        n.dataEstimate = 0.03
        #expect(n.effective == 0.03)                                             // the data show more
        n.trustsData = false
        #expect(abs(n.effective - (0.01 * 0.01 + q * q).squareRoot()) < 1e-15)    // float .npy: as stated
        n.trustsData = true; n.codec = 0.04
        #expect(abs(n.effective - 0.05) < 1e-12)                                 // codec error adds
        n.chroma = 0.05 * 3.0.squareRoot()
        #expect(abs(n.effective - 0.1) < 1e-12)                                  // and so does lost chroma
        // The discrepancy stop counts the white part only: the codec's and the lost chroma's
        // error is detail missing from y, not noise CG must stop short of.
        #expect(n.discrepancySigma == 0.03)
        n.override = 0.007
        #expect(n.effective == 0.007)
        #expect(n.discrepancySigma == 0.007)
        // An exact float measurement without stated noise has none: today's results, bit for bit.
        let exact = NoiseLevel(stated: 0, quantization: 0, dataEstimate: 0.004, trustsData: false, format: "float32 .npy")
        #expect(exact.effective == 0)
        #expect(exact.discrepancySigma == 0)
        // Without a codec, white is all of it: an 8-bit file's stop is unchanged.
        let ffv1 = NoiseLevel(stated: 0, quantization: q, dataEstimate: 0.0016, trustsData: true, format: "8-bit ffv1")
        #expect(ffv1.discrepancySigma == ffv1.effective)
    }

    /// CG on AᵀA u = Aᵀy stopped by the discrepancy principle ends where the residual first
    /// reaches σ√m — not below it, where it would fit the noise — and no later than CG alone.
    @Test func discrepancyStopsCGAtTheNoiseLevel() throws {
        let sigma = 0.01
        let (y, _) = try Self.measurement(spec: "temporal=gaussian:1,sr=2", sigma: sigma, bits: 0)
        var spec = try DegradationSpec.parse("temporal=gaussian:1,sr=2")
        spec.noiseSigma = sigma
        let op = try DegradationOperator(spec: spec, frame: FrameShape(channels: 3, height: 96, width: 128), totalFrames: 16)
        let d = Distribution.local(totalFrames: 16)
        let stopped = DataConsistency(op: op, measurement: y, dist: d, gamma: nil, stopAtNoise: sigma)
        let free = DataConsistency(op: op, measurement: y, dist: d, gamma: nil)
        let bound = try #require(stopped.discrepancyBound)
        #expect(abs(bound - sigma * sigma * Double(y.count)) < 1e-9 * bound)
        let u1 = Tensor64(shape: [16, 3, 96, 128]), u2 = Tensor64(shape: [16, 3, 96, 128])
        let h1 = stopped.solve(u1, iterations: 200)
        let h2 = free.solve(u2, iterations: 200)
        let r1 = stopped.residualParts(u1).residual, r2 = free.residualParts(u2).residual
        #expect(h1.count < h2.count)
        #expect(r1 <= bound)
        #expect(r2 < 0.5 * bound, "CG alone fits the noise: \(r2) vs σ²m = \(bound)")
        // It stopped at the first iterate inside the bound: one iteration earlier was outside.
        let u3 = Tensor64(shape: [16, 3, 96, 128])
        free.solve(u3, iterations: h1.count - 1)
        #expect(free.residualParts(u3).residual > bound)
    }

    /// The default settings follow the effective σ: γ = 0.02·s²/σ, a warm start, the discrepancy
    /// stop; none of it without noise; the paper's sampler never stops early.
    @Test func defaultsFollowTheEffectiveNoise() throws {
        var spec = try DegradationSpec.parse("temporal=uniform:7")
        #expect(!SamplerSettings.defaults(for: spec, seed: 0).discrepancyStop)
        spec.noiseSigma = NoiseLevel.quantization(bits: 8)
        // DDS's rules (the default at a file's rounding is plug-and-play, SamplerTests).
        #expect(SamplerSettings.defaults(for: spec, seed: 0).pnp != nil)
        let s = SamplerSettings.defaults(for: spec, seed: 0, plugAndPlay: false)
        #expect(s.discrepancyStop && s.startFrom == .admmTV && s.start == 0.02)
        var codec = spec
        codec.noiseSigma = 0.007     // a light codec: noised more than rounding alone
        #expect(SamplerSettings.defaults(for: codec, seed: 0).start == 0.05)
        // Rounding-sized σ: γ grows as 1/σ³ below 0.01 (the discrepancy stop holds CG back).
        #expect(abs(s.gamma! - 0.02 / spec.noiseSigma * pow(0.01 / spec.noiseSigma, 2)) < 1e-6 * s.gamma!)
        spec.noiseSigma = 0.01
        #expect(abs(SamplerSettings.defaults(for: spec, seed: 0).gamma! - 2) < 1e-12)   // the tuned value, unchanged
        #expect(!SamplerSettings.paper(for: spec, seed: 0).discrepancyStop)
    }
}

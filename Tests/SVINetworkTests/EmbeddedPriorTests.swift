import Testing
import Foundation
import SVICore
import SVIFormats
import SVINetwork
import SVISampler

/// The prior svi ships in Models/ (Scripts/train-prior): it loads from its own config, stays
/// small, without attention outside the middle block, and has learned to denoise — its noise estimate on a noisy
/// smooth image is far better than an untrained network's (relative error ≈ 1 or worse).
@Suite struct EmbeddedPriorTests {
    static let weights = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Models/prior.safetensors").path

    @Test func loadsAsAConvolutionalHalfPrecisionModelUnder50MB() throws {
        let size = try FileManager.default.attributesOfItem(atPath: Self.weights)[.size] as! Int
        #expect(size <= 50_000_000)
        let (net, ckpt, _) = try ModelLoader.load(weights: Self.weights, preset: nil, config: nil)
        #expect(net.config.attentionDownsample.allSatisfy { $0 > 1 << (net.config.levels - 1) }, "attention would tie the prior to a frame size")
        #expect(ckpt.storageDTypes == ["F16"])
        #expect(net.parameterCount > 100_000 && net.parameterCount < 25_000_000)
    }

    @Test func predictsTheNoiseOfANoisySmoothImage() throws {
        let (net, _, _) = try ModelLoader.load(weights: Self.weights, preset: nil, config: nil)
        let h = 64, w = 64
        let x0 = Tensor(shape: [2, 3, h, w])
        for b in 0..<2 { for c in 0..<3 { for y in 0..<h { for x in 0..<w {
            // soft gradients and one edge: the statistics of a photograph's smooth parts
            let v = 0.6 * sin(Double(x) * 0.08 + Double(c) + Double(b)) * cos(Double(y) * 0.05) + (x > w / 2 + y / 4 ? 0.3 : -0.2)
            x0[((b * 3 + c) * h + y) * w + x] = Float(v)
        } } } }
        let schedule = Schedule()
        for t in [100, 400, 800] {
            let eps = randomTensor(x0.shape, seed: UInt64(t))
            let ab = schedule.alphaBar(at: t)
            let xt = Tensor(shape: x0.shape)
            for i in 0..<x0.count { xt[i] = Float(ab.squareRoot() * Double(x0[i]) + (1 - ab).squareRoot() * Double(eps[i])) }
            let pred = try net.forward(xt, timesteps: [t, t])
            #expect(pred.shape == x0.shape)
            let err = relativeL2(pred, eps)
            #expect(err < 0.5, "t=\(t): relative error of the noise estimate \(err)")
        }
    }
}

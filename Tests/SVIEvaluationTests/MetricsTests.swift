import Testing
import Foundation
import SVICore
@testable import SVIEvaluation

/// PSNR, SSIM and the frame-difference error behave as their definitions say.
@Suite struct MetricsTests {
    func video(_ f: (Int, Int) -> Float, frames: Int = 3) -> Tensor {
        let t = Tensor(shape: [frames, 3, 16, 16])
        for i in 0..<t.count { t[i] = f(i / t.frameSize, i % t.frameSize) }
        return t
    }

    @Test func psnrOfAKnownError() {
        let a = video { _, _ in 0.5 }, b = video { _, _ in 0.6 }
        // MSE 0.01 → 20 dB.
        #expect(abs(Metrics.psnr(a.data, b.data, count: a.frameSize) - 20) < 1e-4)
        #expect(Metrics.psnr(a.data, a.data, count: a.frameSize) == .infinity)
    }

    @Test func ssimIsOneForIdenticalAndLowerForNoise() throws {
        let a = video { _, i in Float(sin(Double(i) * 0.1)) * 0.4 + 0.5 }
        let noisy = a.copy()
        let n = RandomStream(seed: 1, purpose: .initial).normals(count: noisy.count)
        for i in 0..<noisy.count { noisy[i] += 0.1 * n[i] }
        let same = try Metrics.score(restored: a, reference: a)
        #expect(same.ssim.allSatisfy { abs($0 - 1) < 1e-9 })
        let worse = try Metrics.score(restored: noisy, reference: a)
        #expect(worse.meanSSIM < 0.99 && worse.meanSSIM > 0)
        #expect(worse.meanPSNR > 19 && worse.meanPSNR < 21)
    }

    /// The value scikit-image 0.26 gives for the same frames (`structural_similarity`,
    /// gaussian_weights, σ 1.5, use_sample_covariance False, data_range 1, channel_axis 0):
    /// an independent implementation of the same definition.
    @Test func ssimMatchesScikitImage() {
        let a = Tensor(shape: [1, 3, 16, 16]), b = Tensor(shape: [1, 3, 16, 16])
        for i in 0..<a.count {
            a[i] = Float(sin(Double(i) * 0.1) * 0.4 + 0.5)
            b[i] = Float(Double(a[i]) + 0.05 * cos(Double(i) * 0.37))
        }
        let s = Metrics.ssim(a.data, b.data, channels: 3, height: 16, width: 16)
        #expect(abs(s - 0.995204) < 2e-6, "\(s)")
    }

    @Test func frameDifferenceErrorIgnoresConstantOffsets() {
        let a = video { f, i in Float(f) * 0.1 + Float(i % 7) * 0.01 }
        let shifted = video { f, i in Float(f) * 0.1 + Float(i % 7) * 0.01 + 0.2 }
        #expect(Metrics.frameDifferenceError(shifted, a) < 1e-6)
        let flicker = video { f, i in Float(f) * 0.1 + Float(i % 7) * 0.01 + (f == 1 ? 0.1 : 0) }
        #expect(Metrics.frameDifferenceError(flicker, a) > 0.05)
    }

    @Test func mismatchedShapesAreAnError() {
        #expect(throws: SVIError.self) { try Metrics.score(restored: Tensor(shape: [2, 3, 4, 4]), reference: Tensor(shape: [3, 3, 4, 4])) }
    }
}

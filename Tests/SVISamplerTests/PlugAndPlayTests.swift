import Testing
import Foundation
import SVICore
import SVIFormats
import SVIContracts
import SVIOperators
@testable import SVISampler

/// `--sampler pnp` (issue 27): half-quadratic splitting with the network as the denoiser.
@Suite struct PlugAndPlayTests {

    /// A smooth video of `frames` 8×8 frames measured by `spec` (noise seed `noiseSeed`).
    func problem(_ spec: String, frames: Int, noiseSeed: UInt64) throws -> (video: Tensor, op: DegradationOperator, y: Tensor, dist: Distribution) {
        let v = smoothVideo(frames: frames)
        let d = Distribution.local(totalFrames: frames)
        let op = try DegradationOperator(spec: .parse(spec), frame: FrameShape(channels: 3, height: 8, width: 8), totalFrames: frames)
        return (v, op, op.measure(v, d, noiseSeed: noiseSeed), d)
    }

    func settings(levels: Int, from: Double = 0.03, to: Double = 0.004, weight: Double = 1, seed: UInt64 = 3) -> SamplerSettings {
        var s = SamplerSettings(nfe: levels, cgSteps: 200, eta: 0, gamma: nil, batchIndependent: false, seed: seed, batch: 3)
        s.pnp = PnPSchedule(from: from, to: to, weight: weight)
        s.startFrom = .admmTV
        return s
    }

    /// Levels fall geometrically from `from` to `to`; each is the training step whose σ_t is
    /// nearest, so t never rises; the last step ends at t_next = −1 (ᾱ = 1).
    @Test func levelsFallGeometricallyToTheNearestTrainingSteps() {
        let schedule = Schedule()
        let steps = schedule.pnpSteps(count: 8, from: 0.03, to: 0.004)
        #expect(steps.count == 8)
        #expect(zip(steps, steps.dropFirst()).allSatisfy { $0.t >= $1.t && $0.tNext == $1.t })
        #expect(steps.last?.tNext == -1 && steps.last?.alphaBarNext == 1)
        // The first level: no training step is nearer to σ = 0.03 than the one chosen.
        let t0 = steps[0].t
        let gap = abs(schedule.pixelSigma(at: t0) - 0.03)
        #expect(abs(schedule.pixelSigma(at: t0 - 1) - 0.03) >= gap && abs(schedule.pixelSigma(at: t0 + 1) - 0.03) >= gap)
        #expect(gap < 0.002)
        // σ = 0.004 is below the smallest level there is (t = 0: σ ≈ 0.005).
        #expect(steps.last?.t == 0)
        #expect(schedule.pnpSteps(count: 1, from: 0.1, to: 0.1).map(\.tNext) == [-1])
    }

    /// A denoiser that finds no noise (ε = 0): its Tweedie estimate is the estimate it was
    /// given, so one level is exactly HQS's proximal step from the warm start.
    final class FindsNoNoise: Denoiser {
        var name: String { "finds no noise" }
        var preferredBatch: Int { 4 }
        func predictNoise(_ x: UnsafePointer<Float>, count: Int, channels: Int, height: Int, width: Int,
                          timestep: Int, into eps: UnsafeMutablePointer<Float>) throws {
            eps.update(repeating: 0, count: count * channels * height * width)
        }
    }

    /// One level from a start u0 (no noise added): u1 solves (I + γAᵀA)u1 = u0 + γAᵀy with
    /// γ = w·σ_0²/σ_y² — the weight, the level's σ and the measurement's σ as documented.
    @Test func oneLevelIsTheProximalStepWithGammaFromTheLevelAndTheNoise() throws {
        let (v, op, y, d) = try problem("temporal=uniform:3,noise=0.01", frames: 6, noiseSeed: 2)
        let s = settings(levels: 1, from: 0.05, to: 0.05, weight: 0.7)
        let sampler = DDSSampler(op: op, measurement: y, denoiser: FindsNoNoise(), settings: s, dist: d)
        let start = Tensor64(shape: v.shape)
        for i in 0..<v.count { start[i] = Double(v[i]) + 0.05 * sin(Double(i)) }
        sampler.warmStart(from: start)
        try sampler.step()
        #expect(sampler.isFinished)
        let level = Schedule().pixelSigma(at: sampler.steps[0].t)
        let gamma = 0.7 * level * level / (0.01 * 0.01)
        #expect(s.gamma(at: sampler.steps[0], noiseSigma: 0.01) == gamma)
        // (I + γAᵀA)u1 − (u0 + γAᵀy), relative to the right-hand side.
        let u1 = sampler.estimate
        let normal = Tensor64(shape: v.shape), aty = Tensor64(shape: v.shape)
        op.normal(u1, into: normal, d)
        op.adjoint(measurement: y, into: aty, d)
        var err = 0.0, rhs = 0.0
        for i in 0..<v.count {
            let b = min(max(start[i], 0), 1) + gamma * aty[i]
            err += pow(u1[i] + gamma * normal[i] - b, 2); rhs += b * b
        }
        #expect((err / rhs).squareRoot() < 1e-8, "relative residual of the proximal equation \((err / rhs).squareRoot())")
    }

    /// No noise is drawn: the seed changes nothing, and the result is the same at any batch.
    @Test func theResultDoesNotDependOnTheSeedOrTheBatch() throws {
        let (_, op, y, d) = try problem("temporal=uniform:3,noise=0.005", frames: 7, noiseSeed: 1)
        func restore(seed: UInt64, batch: Int) throws -> [Float] {
            var s = settings(levels: 4, seed: seed)
            s.batch = batch
            let sampler = DDSSampler(op: op, measurement: y, denoiser: GaussianPriorDenoiser(), settings: s, dist: d)
            while !sampler.isFinished { try sampler.step() }
            return sampler.output().array
        }
        let a = try restore(seed: 1, batch: 3)
        #expect(a == (try restore(seed: 99, batch: 3)))
        #expect(a == (try restore(seed: 1, batch: 7)))
    }
}

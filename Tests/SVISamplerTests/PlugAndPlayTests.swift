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
        // Started as a resumed run at the first level (x = √ᾱ(2u0 − 1)): a denoiser that finds no
        // noise fails the prior's test on a warm start (it removes nothing), by design.
        let x0 = Tensor(shape: v.shape), a0 = sampler.steps[0].alphaBar.squareRoot()
        for i in 0..<v.count { x0[i] = Float(a0 * (2 * min(max(start[i], 0), 1) - 1)) }
        try sampler.resume(x: x0, stepsDone: 0)
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

    /// The first level from the prior's test: 0.03 where the network fits the footage well
    /// (test ≤ 0.07), 0.006 where it fits poorly (≥ 0.09), geometric and falling in between.
    @Test func theFirstLevelFallsAsThePriorFitsTheFootageWorse() {
        #expect(PnPSchedule.firstLevel(priorTest: 0) == 0.03 && PnPSchedule.firstLevel(priorTest: 0.07) == 0.03)
        #expect(abs(PnPSchedule.firstLevel(priorTest: 0.09) - 0.006) < 1e-15 && abs(PnPSchedule.firstLevel(priorTest: 0.8) - 0.006) < 1e-15)
        #expect(abs(PnPSchedule.firstLevel(priorTest: 0.08) - (0.03 * 0.006).squareRoot()) < 1e-12)
        let rs = stride(from: 0.06, through: 0.1, by: 0.005).map(PnPSchedule.firstLevel(priorTest:))
        #expect(zip(rs, rs.dropFirst()).allSatisfy { $0 >= $1 })
        #expect(PnPSchedule(from: 0.03, to: 0.004, weight: 1, firstLevelFromPriorTest: true).description == "auto:0.004:1.0")
    }

    /// A denoiser whose Tweedie estimate keeps a share κ of the input's departure from a
    /// reference video r ([-1,1] units, every frame in one call): x̂0 = r + κ(x/√ᾱ − r). On a
    /// start equal to r the prior's test reads κ² (what is left of the noise it was given).
    final class ShrinksTowards: Denoiser {
        let reference: [Float], kappa: Double
        let schedule = Schedule()
        init(_ reference: [Float], kappa: Double) { self.reference = reference; self.kappa = kappa }
        var name: String { "shrinks towards a reference by \(kappa)" }
        var preferredBatch: Int { 64 }
        func predictNoise(_ x: UnsafePointer<Float>, count: Int, channels: Int, height: Int, width: Int,
                          timestep: Int, into eps: UnsafeMutablePointer<Float>) throws {
            precondition(count * channels * height * width == reference.count, "one call for every frame")
            let ab = schedule.alphaBar(at: timestep), sa = ab.squareRoot(), s1a = (1 - ab).squareRoot()
            for i in 0..<reference.count {
                let r = Double(reference[i]), x0 = r + kappa * (Double(x[i]) / sa - r)
                eps[i] = Float((Double(x[i]) - sa * x0) / s1a)
            }
        }
    }

    /// "auto": the prior's test picks the first level, and the run is then exactly the run with
    /// that level given; a resumed run with the level its checkpoint recorded ends the same, and
    /// one without it is refused (it could only guess the levels).
    @Test(arguments: [(0.2, 0.03), (0.28, 0.0), (0.4, 0.006)])
    func levelsFromThePriorTestRunAsTheScheduleTheyPickAndResume(kappa: Double, expected: Double) throws {
        let (v, op, y, d) = try problem("temporal=uniform:3,noise=0.002", frames: 7, noiseSeed: 1)
        let start = Tensor64(shape: v.shape)
        for i in 0..<v.count { start[i] = Double(v[i]) }
        let reference = (0..<v.count).map { Float(2 * Double(v[$0]) - 1) }
        func run(_ s: SamplerSettings, until steps: Int = .max, resumeAt: (x: [Float], level: Double?)? = nil) throws -> DDSSampler {
            var s = s
            s.batch = 7
            let sampler = DDSSampler(op: op, measurement: y, denoiser: ShrinksTowards(reference, kappa: kappa), settings: s, dist: d)
            if let r = resumeAt {
                let x = Tensor(shape: v.shape)
                for i in 0..<r.x.count { x[i] = r.x[i] }
                try sampler.resume(x: x, stepsDone: 1, pnpFirstLevel: r.level)
            } else {
                sampler.warmStart(from: start)
            }
            while !sampler.isFinished && sampler.stepIndex < steps { try sampler.step() }
            return sampler
        }
        var auto = settings(levels: 4)
        auto.pnp!.firstLevelFromPriorTest = true
        let first = try run(auto, until: 1)
        let test = try #require(first.priorCheck)
        #expect(abs(test - kappa * kappa) < 0.2 * kappa * kappa, "test \(test) for κ \(kappa)")
        let level = try #require(first.pnpFirstLevel)
        #expect(level == PnPSchedule.firstLevel(priorTest: test))
        if expected > 0 { #expect(abs(level - expected) < 1e-12) } else { #expect(level < 0.03 && level > 0.006) }
        #expect(first.steps.map(\.t) == Schedule().pnpSteps(count: 4, from: level, to: 0.004).map(\.t))

        let whole = try run(auto).output().array
        #expect(whole == (try run(settings(levels: 4, from: level)).output().array))
        #expect(whole == (try run(auto, resumeAt: (first.x.array, level)).output().array))
        #expect(throws: SVIError.self) { try run(auto, resumeAt: (first.x.array, nil)) }
    }
}

import Foundation
import SVICore
import SVIFormats
import SVICluster
import SVIOperators

/// Settings of the batch-consistent DDS sampler (DESIGN §4).
public struct SamplerSettings: Sendable, Equatable {
    public var nfe: Int
    public var cgSteps: Int
    public var eta: Double
    /// nil: plain CG on AᵀA u = Aᵀy; a value: the proximal solve with this γ.
    public var gamma: Double?
    public var batchIndependent: Bool
    public var seed: UInt64
    public var batch: Int

    /// The paper's defaults: 20 steps and η 0.15 for temporal-only degradations; 100 steps and
    /// η 0.8 with a spatial part; 5 CG steps; the proximal step with γ = 1 when σ_y > 0.
    public static func defaults(for spec: DegradationSpec, seed: UInt64) -> SamplerSettings {
        SamplerSettings(nfe: spec.hasSpatialPart ? 100 : 20, cgSteps: 5, eta: spec.hasSpatialPart ? 0.8 : 0.15,
                        gamma: spec.noiseSigma > 0 ? 1.0 : nil, batchIndependent: false, seed: seed, batch: 4)
    }

    public init(nfe: Int, cgSteps: Int, eta: Double, gamma: Double?, batchIndependent: Bool, seed: UInt64, batch: Int) {
        self.nfe = nfe; self.cgSteps = cgSteps; self.eta = eta; self.gamma = gamma
        self.batchIndependent = batchIndependent; self.seed = seed; self.batch = batch
    }
}

/// Batch-consistent DDS as a sequence of steps (DESIGN §4, §9): the caller calls `step()`
/// N times, so progress, timing and (later) checkpoints attach in one place.
///
/// Notation → code: x_t → `x`, ε → `eps`, x̂0 → computed in place in `u`, ᾱ_t → `alphaBar`,
/// η → `settings.eta`, z / n → `RandomStream(seed, .initial / .step)`.
public final class DDSSampler {
    public let settings: SamplerSettings
    public let steps: [Schedule.Step]
    public let dist: Distribution
    public let frame: FrameShape
    let denoiser: Denoiser
    let dc: DataConsistency

    /// x_t on this rank's frames, [-1, 1].
    public let x: Tensor
    private let eps: Tensor
    /// The data-consistency iterate u, [0,1], float64.
    private let u: Tensor64
    private let noise: Tensor
    public private(set) var stepIndex = 0
    /// Seconds spent in the denoiser and in the data-consistency solve.
    public private(set) var denoiseSeconds = 0.0, dataConsistencySeconds = 0.0

    public init(op: DegradationOperator, measurement y: Tensor, denoiser: Denoiser,
                settings: SamplerSettings, dist: Distribution) {
        self.settings = settings
        self.steps = Schedule().steps(nfe: settings.nfe)
        self.dist = dist
        self.frame = op.inputShape
        self.denoiser = denoiser
        dc = DataConsistency(op: op, measurement: y, dist: dist, gamma: settings.gamma)
        x = op.makeInput(frames: y.frames, Float.self)
        eps = op.makeInput(frames: y.frames, Float.self)
        u = op.makeInput(frames: y.frames)
        noise = Tensor(shape: [y.frames, frame.channels, frame.height, frame.width])
        drawNoise(purpose: .initial, step: 0, into: x)
    }

    public var isFinished: Bool { stepIndex >= steps.count }

    /// Continues a run from a snapshot: x_t of this rank's frames after `stepsDone` steps.
    public func resume(x state: Tensor, stepsDone: Int) {
        precondition(state.count == x.count && stepsDone < steps.count)
        x.copy(from: state)
        stepIndex = stepsDone
    }

    /// Fills `out` (this rank's frames) with a noise image: one C×H×W image shared by every
    /// frame (batch-consistent), or a different image per global frame (batch-independent).
    func drawNoise(purpose: NoisePurpose, step: Int, into out: Tensor) {
        let stream = RandomStream(seed: settings.seed, purpose: purpose, step: UInt32(step))
        let fs = out.frameSize
        if settings.batchIndependent {
            let first = dist.localRange.lowerBound
            stream.normals(offset: first * fs, count: out.count, into: out.data)
        } else {
            stream.normals(offset: 0, count: fs, into: out.data)
            for f in 1..<max(out.frames, 1) { out.frame(f).update(from: out.data, count: fs) }
        }
    }

    /// One step: ε → Tweedie → CG over the whole video → DDIM update with shared noise.
    public func step() throws {
        precondition(!isFinished)
        let s = steps[stepIndex]
        let n = x.count, frames = x.frames

        let t0 = Date()
        var f = 0
        while f < frames {
            let b = min(settings.batch, frames - f)
            try denoiser.predictNoise(x.frame(f), count: b, channels: frame.channels, height: frame.height,
                                      width: frame.width, timestep: s.t, into: eps.frame(f))
            f += b
        }
        let t1 = Date()

        // x̂0 = (x_t − √(1−ᾱ_t) ε) / √ᾱ_t, then u = (x̂0 + 1)/2, fused:
        let sa = s.alphaBar.squareRoot(), s1a = (1 - s.alphaBar).squareRoot()
        let a = 0.5 / sa, b = -0.5 * s1a / sa
        let up = u.data, xp = x.data, ep = eps.data
        Parallel.forEachChunk(n) { s, e in for i in s..<e { up[i] = a * Double(xp[i]) + b * Double(ep[i]) + 0.5 } }
        dc.solve(u, iterations: settings.cgSteps)
        let t2 = Date()

        // x̄0 = 2u − 1; x_{t_next} = √ᾱ_next x̄0 + √(1−ᾱ_next) (η n + √(1−η²) ε)
        if s.tNext <= 0 {
            Parallel.forEachChunk(n) { s, e in for i in s..<e { xp[i] = Float(2 * up[i] - 1) } }
        } else {
            drawNoise(purpose: .step, step: stepIndex, into: noise)
            let an = s.alphaBarNext.squareRoot(), s1n = (1 - s.alphaBarNext).squareRoot()
            let eta = settings.eta, keep = (1 - eta * eta).squareRoot()
            let cu = 2 * an, c0 = -an, cn = Float(s1n * eta), ce = Float(s1n * keep)
            let np = noise.data
            Parallel.forEachChunk(n) { s, e in for i in s..<e { xp[i] = Float(cu * up[i] + c0) + cn * np[i] + ce * ep[i] } }
        }
        denoiseSeconds += t1.timeIntervalSince(t0)
        dataConsistencySeconds += t2.timeIntervalSince(t1)
        stepIndex += 1
    }

    /// The CG-corrected estimate u of the last step, [0,1], before clipping.
    public var estimate: Tensor64 { u }

    /// ‖A u − y‖/‖y‖ of the final estimate before clipping.
    public func residual() -> Double { dc.relativeResidual(u) }

    /// The output: u of the last step clipped to [0,1].
    public func output() -> Tensor {
        let out = Tensor(converting: u)
        Kernels.clip(out.data, 0, 1, out.count)
        return out
    }
}

import Foundation
import SVICore
import SVIFormats
import SVIContracts
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
    /// What the reverse process starts from: noise (the paper), or a classical estimate noised
    /// to step `start` (`warmStart`).
    public var startFrom: StartPoint = .noise
    /// Where the reverse process starts, as a fraction of the schedule: 1 from noise; below 1
    /// with a warm start, visiting only the steps with t < start·1000.
    public var start: Double = 1
    /// CG iterations of the last step, whose estimate is the output (nil: `cgSteps`, the
    /// paper). CG stops early once converged to float64 precision.
    public var finalCGSteps: Int?
    /// Stop every step's CG by the discrepancy principle at the measurement's noise σ (the
    /// spec's `noise=`, which `svi restore` sets to the effective σ: `NoiseLevel`) instead of
    /// running all its iterations. Off without noise and in the paper's sampler.
    public var discrepancyStop = false
    /// The σ of that stop when it differs from the spec's: the white part of a compressed
    /// file's noise (`NoiseLevel.discrepancySigma`); nil: the spec's `noise=`.
    public var discrepancySigma: Double?
    /// The paper's schedule (`Schedule.paperSteps`: all of range(0, 1000, 1000 // N)), which
    /// differs from N evenly spaced steps only when N does not divide 1000. Set by `paper`.
    public var paperSchedule = false

    /// Plug-and-play refinement instead of DDS's reverse process (nil: DDS). See `PnPSchedule`.
    public var pnp: PnPSchedule?

    /// The steps this run visits.
    public var visitedSteps: [Schedule.Step] {
        if let p = pnp { return Schedule().pnpSteps(count: nfe, from: p.from, to: p.to) }
        return Schedule().steps(nfe: nfe, start: start, paper: paperSchedule)
    }

    /// Network evaluations per segment: the visited steps, plus plug-and-play's pass for the
    /// prior's test on its start.
    public var networkEvaluations: Int { visitedSteps.count + (pnp != nil && startFrom != .noise ? 1 : 0) }

    /// γ of the proximal solve after step `step` (nil: plain CG): the settings' γ, or with
    /// plug-and-play refinement half-quadratic splitting's weight · σ_k²/σ_y² for the step's
    /// level σ_k and the measurement's σ_y (capped at 1e6 as the default γ is).
    public func gamma(at step: Schedule.Step, noiseSigma: Double) -> Double? {
        guard let p = pnp else { return gamma }
        let sk = Schedule().pixelSigma(at: step.t), sy = max(noiseSigma, 1e-12)
        return min(p.weight * sk * sk / (sy * sy), 1e6)
    }

    /// svi's defaults, chosen per task family on tuning clips (evaluation/TUNING.md, made by
    /// `Scripts/tune`; the clips EVALUATION.md reports were never used):
    /// * noiseless temporal-only: the paper's sampler from noise (20 steps, η 0.15, 5 CG steps)
    ///   with the last step's CG run to convergence — on an invertible A that is the exact
    ///   answer CG alone reaches, elsewhere the prior's guess in A's null space;
    /// * with a spatial part, or with measurement noise: a warm start from ADMM-TV noised to
    ///   t = 80 of a 50-step schedule (5 network evaluations), η 0.8 (spatial) / 0.15, the last
    ///   step's CG to convergence; with noise the proximal step with γ = 0.02·s²/σ_y (1 at
    ///   σ_y = 0.02 without SR: less noise, more weight on the data; ×s² for ×s SR, whose AᵀA
    ///   has norm 1/s²), the warm start's ADMM-TV λ 0.15·σ_y,
    ///   and CG stopped by the discrepancy principle (‖Au − y‖ ≤ σ_y·√m) in every step.
    /// The tuning rule picked a warm start from CG for temporal-only tasks too (it ties at the
    /// 100 dB cap and is fastest); the start from noise is kept there because it ties and keeps
    /// the paper's loop (and its checkpoints' step counts) for the paper's headline task.
    /// `paper(for:seed:)` keeps the paper's own defaults (DESIGN §4).
    /// `plugAndPlay`: nil picks by task (`PnPSchedule.defaults(for:)`), true/false forces it.
    public static func defaults(for spec: DegradationSpec, seed: UInt64, plugAndPlay: Bool? = nil) -> SamplerSettings {
        if plugAndPlay ?? (PnPSchedule.defaults(for: spec) != nil) {
            var s = SamplerSettings(nfe: PnPSchedule.defaultLevels, cgSteps: PnPSchedule.defaultCGSteps, eta: 0, gamma: nil,
                                    batchIndependent: false, seed: seed, batch: 4)
            s.pnp = PnPSchedule.defaults(for: spec) ?? PnPSchedule(from: PnPSchedule.defaultFrom, to: PnPSchedule.defaultTo, weight: 1)
            s.startFrom = .admmTV
            return s
        }
        var s = paper(for: spec, seed: seed)
        s.paperSchedule = false
        s.finalCGSteps = finalCGBudget
        if spec.hasSpatialPart || spec.noiseSigma > 0 {
            s.nfe = 50; s.startFrom = .admmTV; s.start = 0.1
        }
        // γ weighs the data against the prior's estimate where AᵀA has unit norm: ×s SR's
        // block average has ‖AᵀA‖ = 1/s², so γ grows by s² (measured on tuning clips, 8-bit
        // SR ×4: γ = 0.02/σ gave the data a sixteenth of the intended weight, −0.3 dB).
        if spec.noiseSigma > 0 {
            s.gamma = defaultGamma(for: spec)
            s.discrepancyStop = true
            // A temporal-only measurement with a file's rounding or a light codec (σ < 0.01):
            // its ADMM-TV estimate is close, so it is noised less (t < 50 of the 50-step
            // schedule: 3 evaluations; tuning clips, 8-bit: carphone k=7 +1.05 dB, Gaussian
            // σ=1 +0.16, bbb k=7 +1.36; spatial tasks lost with it). Rounding alone (σ below
            // roundingOnlyBelow: 8-bit and deeper files) leaves an estimate closer still:
            // one evaluation from t = 20 (tuning clips, 8-bit, against 0.05: carphone Gaussian
            // σ=1 +0.58 dB, k=7 +0.07, bbb k=7 +1.91, Gaussian σ=1 +0.18, SSIM up on all four;
            // H.264 rows, σ ≥ 0.012, lost 0.02–0.27 dB with it, so they keep 0.1).
            if !spec.hasSpatialPart && spec.noiseSigma < gammaSteepBelow {
                s.start = spec.noiseSigma < roundingOnlyBelow ? 0.02 : 0.05
            }
        }
        return s
    }

    /// γ by default for noise σ (spec.noiseSigma > 0): 0.02/σ (tuning clips, σ 0.01 and 0.02:
    /// beat γ 1, 0.3, 3 and (0.02/σ)²), growing as 1/σ³ below σ = 0.01, where the noise is a
    /// file's rounding or codec rather than a sensor's and the discrepancy stop, not γ, should
    /// hold CG back (tuning clips, 8-bit files, σ ≈ 0.0011–0.002: γ 1e4 ≥ 300 ≥ 100 > 17.7 on
    /// deblurring, SR ×4, k = 7, inpainting; evaluation/TUNING.md); times s² for ×s SR, whose
    /// AᵀA has norm 1/s². Capped at 1e6, so a denormal σ never makes γ infinite.
    public static func defaultGamma(for spec: DegradationSpec) -> Double {
        let sigma = spec.noiseSigma
        let gain = Double((spec.srFactor ?? 1) * (spec.srFactor ?? 1))
        let small = max(1, (gammaSteepBelow / sigma) * (gammaSteepBelow / sigma))
        return min(gammaNoiseScale / sigma * gain * small, 1e6)
    }

    /// σ below which the default γ grows as 1/σ³ instead of 1/σ.
    public static let gammaSteepBelow = 0.01

    /// σ below which a measurement's noise is taken as a file's rounding alone (8-bit RGB
    /// 0.0011, 8-bit Y′CbCr 0.0025, plus what the data shows: 0.0011–0.0023 on the 8-bit rows);
    /// H.264 at crf 18 measured 0.007–0.019.
    public static let roundingOnlyBelow = 0.005

    /// The last step's CG iterations by default: enough to converge on every evaluation task
    /// (CG stops on its own at float64 convergence, so this only caps the work).
    public static let finalCGBudget = 100

    /// γ = gammaNoiseScale / σ_y by default with noise (evaluation/TUNING.md, noisy family:
    /// beat γ 1, γ 0.3, γ 3 and γ = (0.02/σ)² on the mean of the tuning rows).
    public static let gammaNoiseScale = 0.02

    /// The paper's defaults: 20 steps and η 0.15 for temporal-only degradations; 100 steps and
    /// η 0.8 with a spatial part; 5 CG steps; the proximal step with γ = 1 when σ_y > 0.
    public static func paper(for spec: DegradationSpec, seed: UInt64) -> SamplerSettings {
        var s = SamplerSettings(nfe: spec.hasSpatialPart ? 100 : 20, cgSteps: 5, eta: spec.hasSpatialPart ? 0.8 : 0.15,
                                gamma: spec.noiseSigma > 0 ? 1.0 : nil, batchIndependent: false, seed: seed, batch: 4)
        s.paperSchedule = true
        return s
    }

    public init(nfe: Int, cgSteps: Int, eta: Double, gamma: Double?, batchIndependent: Bool, seed: UInt64, batch: Int) {
        self.nfe = nfe; self.cgSteps = cgSteps; self.eta = eta; self.gamma = gamma
        self.batchIndependent = batchIndependent; self.seed = seed; self.batch = batch
    }
}

/// Batch-consistent DDS as a sequence of steps (DESIGN §4, §9): the caller calls `step()`
/// N times, so progress, timing and checkpoints attach in one place.
///
/// Notation → code: x_t → `x`, ε → `x` during the data-consistency solve (see below), x̂0 →
/// computed in place in `u`, ᾱ_t → `alphaBar`, η → `settings.eta`, z / n → `RandomStream(seed,
/// .initial / .step)`.
///
/// Memory per frame (ARCHITECTURE.md): x_t and ε share one float32 vector — once a batch's ε
/// is predicted and its x̂0 formed, that batch's x_t is dead, so ε takes its place — plus u in
/// float64; the shared noise image is one frame; ε of the batch in flight is the only other
/// buffer. The data-consistency solve adds the measurement and CG's vectors.
public final class DDSSampler {
    public let settings: SamplerSettings
    /// The steps this run visits (plug-and-play with its first level from the prior's test:
    /// replaced once the test has chosen it, `pnpFirstLevel`).
    public private(set) var steps: [Schedule.Step]
    public let dist: Distribution
    public let frame: FrameShape
    /// Global index of this problem's first frame in the video (a segment's start): batch-
    /// independent noise is keyed by the video's frame index, so it does not depend on segments.
    public let firstFrame: Int
    let denoiser: Denoiser
    let dc: DataConsistency

    /// x_t on this rank's frames, [-1, 1] (between steps; ε during a step; the output at the end).
    public let x: Tensor
    /// ε of one denoiser call.
    private let epsBatch: Tensor
    /// The data-consistency iterate u, [0,1], float64.
    private let u: Tensor64
    /// One frame of noise (batch-consistent: the image every frame shares).
    private let noise: Tensor
    public private(set) var stepIndex = 0
    /// Whether x holds the warm start (or a resumed state) rather than bare start noise.
    private var warmStarted = false
    /// Seconds spent in the denoiser and in the data-consistency solve.
    public private(set) var denoiseSeconds = 0.0, dataConsistencySeconds = 0.0
    /// The classical estimate of a warm start, kept until the first step has tested the prior on it.
    private var startEstimate: Tensor64?
    /// The prior's test on the warm start (issue 27): ‖û − ĉ‖² of the first step's Tweedie
    /// estimate û against the start ĉ (clipped), over what a denoiser that removes nothing would
    /// leave, N(1 − ᾱ)/(4ᾱ) for N values (x_t = √ᾱ(2ĉ − 1) + √(1−ᾱ) z; u = (x̂0 + 1)/2). A
    /// network that knows images removes most of the noise it was given (0.1–0.3 on the
    /// evaluation's rows); one that returns noise of its own — a checkpoint for other data, a
    /// wrong normalisation, random weights — lands at 1 or above, and refining with it could
    /// only end below the start. nil: no warm start (or resumed after the first step).
    public private(set) var priorCheck: Double?
    /// Whether the prior failed that test: the run then ends at once with the start as its
    /// output — never below the classical estimate it began from.
    public private(set) var priorRejected = false
    /// Plug-and-play's first level as chosen by the prior's test (`PnPSchedule.firstLevel`),
    /// or as a resumed checkpoint recorded it; nil where the schedule gives it.
    public private(set) var pnpFirstLevel: Double?
    /// The ratio at or above which the prior is rejected: no better than removing nothing.
    public static let priorRejectRatio = 1.0
    /// The step of the prior's test under plug-and-play: t = 80, where DDS's default warm start
    /// (start 0.1 of 50 steps) begins.
    public static let pnpPriorTestStep = 80
    /// The seed of that test's noise (fixed: plug-and-play draws nothing from --seed).
    static let pnpPriorTestSeed: UInt64 = 0

    /// Noise images read from files instead of drawn (a test hook: the paper-parity test feeds
    /// svi and the Python reference the same noise). nil: the counter-based generator.
    let noiseImages: NoiseImages?

    public init(op: DegradationOperator, measurement y: Tensor, denoiser: Denoiser,
                settings: SamplerSettings, dist: Distribution, firstFrame: Int = 0, noiseImages: NoiseImages? = nil) {
        precondition(noiseImages == nil || !settings.batchIndependent, "noise images are one image per step (batch-consistent)")
        self.noiseImages = noiseImages
        self.settings = settings
        self.steps = settings.visitedSteps
        self.dist = dist
        self.frame = op.inputShape
        self.firstFrame = firstFrame
        self.denoiser = denoiser
        dc = DataConsistency(op: op, measurement: y, dist: dist, gamma: settings.gamma,
                             stopAtNoise: settings.discrepancyStop ? (settings.discrepancySigma ?? op.spec.noiseSigma) : nil)
        x = op.makeInput(frames: y.frames, Float.self)
        epsBatch = op.makeInput(frames: max(1, min(settings.batch, y.frames)), Float.self)
        u = op.makeInput(frames: y.frames)
        noise = Tensor(shape: [1, frame.channels, frame.height, frame.width])
        drawInitialNoise()
    }

    public var isFinished: Bool { stepIndex >= steps.count }

    /// Continues a run from a snapshot: x_t of this rank's frames after `stepsDone` steps, with
    /// the first level the snapshot's run chose (plug-and-play with `firstLevelFromPriorTest`).
    public func resume(x state: Tensor, stepsDone: Int, pnpFirstLevel: Double? = nil) throws {
        precondition(state.count == x.count && stepsDone < steps.count)
        if let p = settings.pnp, p.firstLevelFromPriorTest {
            guard let level = pnpFirstLevel else {
                throw SVIError("the checkpoint does not record plug-and-play's first level (pnp_first_level), which this run chooses from the prior's test", kind: .badInput)
            }
            useFirstLevel(level)
        }
        x.copy(from: state)
        stepIndex = stepsDone
        warmStarted = true
    }

    /// Plug-and-play's levels from `level` down to the schedule's last.
    private func useFirstLevel(_ level: Double) {
        guard let p = settings.pnp else { return }
        pnpFirstLevel = level
        steps = Schedule().pnpSteps(count: steps.count, from: max(level, p.to), to: p.to)
    }

    /// x_T: one C×H×W image shared by every frame (batch-consistent), or a different image per
    /// frame of the video (batch-independent).
    func drawInitialNoise() {
        let stream = RandomStream(seed: settings.seed, purpose: .initial, step: 0)
        let fs = x.frameSize
        if let given = noiseImages {
            precondition(given.initial.count == fs)
            for f in 0..<x.frames { x.frame(f).update(from: given.initial, count: fs) }
            return
        }
        if settings.batchIndependent {
            stream.normals(offset: (firstFrame + dist.localRange.lowerBound) * fs, count: x.count, into: x.data)
        } else {
            stream.normals(offset: 0, count: fs, into: x.data)
            for f in 1..<max(x.frames, 1) { x.frame(f).update(from: x.data, count: fs) }
        }
    }

    /// Warm start (Chung, Sim & Ye, CVPR 2022): x_{t_s} = √ᾱ_{t_s}(2û − 1) + √(1−ᾱ_{t_s}) z for a
    /// classical estimate û in [0,1] (clipped here), t_s the first visited step and z the start
    /// noise already in x (one image for every frame, or per frame when batch-independent).
    public func warmStart(from estimate: Tensor64) {
        precondition(stepIndex == 0 && estimate.count == x.count)
        warmStarted = true
        startEstimate = estimate
        let s = steps[0]
        // Plug-and-play refines the estimate itself: its error is the noise, none is added.
        let a = s.alphaBar.squareRoot(), b = settings.pnp == nil ? (1 - s.alphaBar).squareRoot() : 0
        let up = estimate.data, xp = x.data
        Parallel.forEachChunk(x.count) { lo, hi in
            for i in lo..<hi { xp[i] = Float(a * (2 * min(max(up[i], 0), 1) - 1)) + Float(b) * xp[i] }
        }
    }

    /// One step: ε → Tweedie → CG over the whole video → DDIM update with shared noise.
    public func step() throws {
        precondition(!isFinished)
        if stepIndex == 0 && settings.startFrom != .noise && !warmStarted {
            // Nobody gave the estimate: the classical method's own defaults (the CLI passes its options).
            warmStart(from: Baselines.estimate(settings.startFrom, op: dc.op, measurement: dc.y, dist: dist,
                                               tv: .warmStartDefaults(for: dc.op.spec, plugAndPlay: settings.pnp != nil)))
        }
        if stepIndex == 0, settings.pnp != nil, let start = startEstimate {
            if try testPriorOnNoisedStart(start) { startEstimate = nil; return }
            if let p = settings.pnp, p.firstLevelFromPriorTest, let r = priorCheck {
                // The levels change, so x (the start at the first level's scale) is redone.
                useFirstLevel(PnPSchedule.firstLevel(priorTest: r))
                warmStarted = false
                warmStart(from: start)
            }
            startEstimate = nil
        }
        let s = steps[stepIndex]
        let frames = x.frames, fs = x.frameSize

        // ε batch by batch, Tweedie's u from it; then ε replaces the batch's x_t.
        let t0 = Date()
        var f = 0
        while f < frames {
            let nb = min(settings.batch, frames - f)
            try tweedie(of: x.frame(f), frames: f..<f + nb, step: s)
            x.frame(f).update(from: epsBatch.data, count: nb * fs)
            f += nb
        }
        let t1 = Date()
        if stepIndex == 0, let start = startEstimate {
            startEstimate = nil
            if testPrior(on: start, alphaBar: s.alphaBar) {
                denoiseSeconds += t1.timeIntervalSince(t0)
                return
            }
        }
        let last = stepIndex == steps.count - 1
        let iterations = last ? (settings.finalCGSteps ?? settings.cgSteps) : settings.cgSteps
        if settings.pnp != nil {
            // HQS's proximal step, solved (no discrepancy stop: γ_k already weighs the noise).
            dc.solve(u, iterations: iterations, gamma: settings.gamma(at: s, noiseSigma: dc.op.spec.noiseSigma), discrepancyStop: false)
        } else {
            dc.solve(u, iterations: iterations)
        }
        let t2 = Date()

        // x̄0 = 2u − 1; x_{t_next} = √ᾱ_next x̄0 + √(1−ᾱ_next) (η n + √(1−η²) ε); plug-and-play:
        // x_{t_next} = √ᾱ_next x̄0 (the next level's input is the estimate itself).
        let up = u.data, xp = x.data
        if settings.pnp != nil {
            let an = s.alphaBarNext.squareRoot()
            Parallel.forEachChunk(x.count) { s, e in for i in s..<e { xp[i] = Float(an * (2 * up[i] - 1)) } }
        } else if s.tNext <= 0 {
            Parallel.forEachChunk(x.count) { s, e in for i in s..<e { xp[i] = Float(2 * up[i] - 1) } }
        } else {
            let stream = RandomStream(seed: settings.seed, purpose: .step, step: UInt32(stepIndex))
            let an = s.alphaBarNext.squareRoot(), s1n = (1 - s.alphaBarNext).squareRoot()
            let eta = settings.eta, keep = (1 - eta * eta).squareRoot()
            let cu = 2 * an, c0 = -an, cn = Float(s1n * eta), ce = Float(s1n * keep)
            let np = noise.data
            if let given = noiseImages {
                guard let image = given.steps[stepIndex], image.count == fs else {
                    throw SVIError("no noise image for step \(stepIndex) of \(fs) values")
                }
                np.update(from: image, count: fs)
            } else if !settings.batchIndependent { stream.normals(offset: 0, count: fs, into: np) }
            for f in 0..<frames {
                if settings.batchIndependent { stream.normals(offset: (firstFrame + dist.localRange.lowerBound + f) * fs, count: fs, into: np) }
                let o = f * fs
                Parallel.forEachChunk(fs) { s, e in
                    for i in s..<e { xp[o + i] = Float(cu * up[o + i] + c0) + cn * np[i] + ce * xp[o + i] }
                }
            }
        }
        denoiseSeconds += t1.timeIntervalSince(t0)
        dataConsistencySeconds += t2.timeIntervalSince(t1)
        stepIndex += 1
    }

    /// The prior's test under plug-and-play, whose start carries no noise (a network that
    /// returns noise of its own would change it by about the level's σ, as a good one does on a
    /// start whose error is that large): the start noised as DDS's warm start would be, at the
    /// step where DDS's default warm start begins (`pnpPriorTestStep`; at plug-and-play's own
    /// low levels even a good network removes little of the little noise there is, and the test
    /// would lose its margin), denoised in one extra pass, and tested as DDS's first step is.
    /// The noised copy goes through `epsBatch`'s twin, one batch at a time.
    private func testPriorOnNoisedStart(_ start: Tensor64) throws -> Bool {
        let t = Self.pnpPriorTestStep, ab = Schedule().alphaBar(at: t)
        let s = Schedule.Step(t: t, tNext: t, alphaBar: ab, alphaBarNext: ab)
        let frames = x.frames, fs = x.frameSize
        let noised = Tensor(shape: epsBatch.shape)
        // Noise of a fixed seed: the test may choose the levels (`firstLevelFromPriorTest`), and
        // plug-and-play's result is not to depend on --seed.
        let stream = RandomStream(seed: Self.pnpPriorTestSeed, purpose: .initial, step: 0)
        let sa = s.alphaBar.squareRoot(), s1a = (1 - s.alphaBar).squareRoot()
        let t0 = Date()
        var f = 0
        while f < frames {
            let nb = min(settings.batch, frames - f)
            for j in 0..<nb {
                let offset = settings.batchIndependent ? (firstFrame + dist.localRange.lowerBound + f + j) * fs : 0
                stream.normals(offset: offset, count: fs, into: noised.frame(j))
            }
            let cp = start.frame(f), np = noised.data
            Parallel.forEachChunk(nb * fs) { lo, hi in
                for i in lo..<hi { np[i] = Float(sa * (2 * min(max(cp[i], 0), 1) - 1)) + Float(s1a) * np[i] }
            }
            try tweedie(of: np, frames: f..<f + nb, step: s)
            f += nb
        }
        denoiseSeconds += Date().timeIntervalSince(t0)
        return testPrior(on: start, alphaBar: s.alphaBar)
    }

    /// ε of `input` (x_t of `frames`, one batch) into `epsBatch`, and Tweedie's estimate in
    /// pixel units into u of those frames: x̂0 = (x_t − √(1−ᾱ_t) ε) / √ᾱ_t, u = (x̂0 + 1)/2, fused.
    private func tweedie(of input: UnsafeMutablePointer<Float>, frames: Range<Int>, step s: Schedule.Step) throws {
        let n = frames.count * x.frameSize
        try denoiser.predictNoise(input, count: frames.count, channels: frame.channels, height: frame.height,
                                  width: frame.width, timestep: s.t, into: epsBatch.data)
        let sa = s.alphaBar.squareRoot(), s1a = (1 - s.alphaBar).squareRoot()
        let a = 0.5 / sa, b = -0.5 * s1a / sa
        let up = u.frame(frames.lowerBound), ep = epsBatch.data
        Parallel.forEachChunk(n) { lo, hi in for i in lo..<hi { up[i] = a * Double(input[i]) + b * Double(ep[i]) + 0.5 } }
    }

    /// Tests the first step's Tweedie estimate (in `u`) against the warm start (`priorCheck`);
    /// when the prior fails, puts the clipped start in `u` and `x` and ends the run.
    private func testPrior(on start: Tensor64, alphaBar: Double) -> Bool {
        let fs = u.frameSize, up = u.data, cp = start.data
        var partials = [Double](repeating: 0, count: u.frames)
        partials.withUnsafeMutableBufferPointer { pp in
            let out = pp.baseAddress!
            Parallel.forEachChunk(u.frames) { lo, hi in
                for f in lo..<hi {
                    var acc = 0.0
                    for i in f * fs..<(f + 1) * fs { let d = up[i] - min(max(cp[i], 0), 1); acc += d * d }
                    out[f] = acc
                }
            }
        }
        let sum = dist.comm.sumInFrameOrder(partials, partition: dist.partition)
        let expected = Double(dist.totalFrames * fs) * (1 - alphaBar) / (4 * alphaBar)
        let ratio = expected > 0 ? sum / expected : 0
        priorCheck = ratio
        guard ratio >= Self.priorRejectRatio else { return false }
        priorRejected = true
        let xp = x.data
        Parallel.forEachChunk(u.count) { lo, hi in
            for i in lo..<hi { let c = min(max(cp[i], 0), 1); up[i] = c; xp[i] = Float(2 * c - 1) }
        }
        stepIndex = steps.count
        return true
    }

    /// The CG-corrected estimate u of the last step, [0,1], before clipping.
    public var estimate: Tensor64 { u }

    /// ‖A u − y‖/‖y‖ of the final estimate before clipping.
    public func residual() -> Double { dc.relativeResidual(u) }

    /// ‖A u − y‖² and ‖y‖² of the final estimate (to combine over segments).
    public func residualParts() -> (residual: Double, measurement: Double) { dc.residualParts(u) }

    /// `output()` without the clipping (the parity test compares every value).
    public func unclippedOutput() -> Tensor {
        let up = u.data, xp = x.data
        Parallel.forEachChunk(x.count) { s, e in for i in s..<e { xp[i] = Float(up[i]) } }
        return x
    }

    /// The output: u of the last step clipped to [0,1], written over x (no longer needed).
    public func output() -> Tensor {
        let up = u.data, xp = x.data
        Parallel.forEachChunk(x.count) { s, e in for i in s..<e { xp[i] = min(max(Float(up[i]), 0), 1) } }
        return x
    }
}

/// Plug-and-play refinement with the diffusion network as the denoiser (issue 27): half-
/// quadratic splitting (Zhang et al., "Plug-and-play image restoration with deep denoiser
/// prior", 2021) over noise levels σ_k spaced geometrically from `from` to `to`:
///
///     z_k = D(u_k, σ_k)          Tweedie's estimate of the network at the step t whose σ_t ≈ σ_k,
///                                fed x_t = √ᾱ_t(2u_k − 1): the estimate's own error is the noise
///     u_{k+1} = argmin_u ‖Au − y‖²/σ_y² + ‖u − z_k‖²/(weight·σ_k²)
///             = (I + γ_k AᵀA)⁻¹(z_k + γ_k Aᵀy),  γ_k = weight·σ_k²/σ_y²   (CG, the whole video)
///
/// No noise is drawn, so every frame's step is the same map (batch-consistent trivially) and
/// the result does not depend on the seed. Where the measurement is a file whose error is a few
/// levels of rounding, DDS's steps add noise the prior then has to remove again; refining the
/// warm start in place removes the ghosts that the rounding leaves in the weakly measured
/// temporal modes (tuning clip carphone 80–95, k=7, 8-bit: ADMM-TV 41.7 dB, DDS 42.2, this
/// 44.7; PnP with BM3D 44.9). In SamplerSettings it reuses DDS's fields: `nfe` is the
/// number of levels K, `cgSteps` every solve's CG budget, the warm start the first u.
public struct PnPSchedule: Sendable, Equatable {
    /// The first and last noise level σ_k, pixel units ([0,1]). With `firstLevelFromPriorTest`
    /// `from` is the highest first level the test can pick, until the test has picked one.
    public var from: Double, to: Double
    /// HQS's weight on the prior's estimate (γ_k = weight·σ_k²/σ_y²).
    public var weight: Double
    /// The first level is chosen by the prior's test on the start (`firstLevel(priorTest:)`),
    /// not given (`--pnp-levels auto:TO`).
    public var firstLevelFromPriorTest = false
    public init(from: Double, to: Double, weight: Double, firstLevelFromPriorTest: Bool = false) {
        self.from = from; self.to = to; self.weight = weight; self.firstLevelFromPriorTest = firstLevelFromPriorTest
    }

    /// Defaults of `--sampler pnp` (tuning clips, evaluation/TUNING.md).
    public static let defaultFrom = 0.03, defaultTo = 0.004, defaultLevels = 8, defaultCGSteps = 30
    /// The first level for a temporal-only measurement whose noise is a file's rounding: its
    /// ADMM-TV start is already close (42–47 dB on the tuning clips), and a first level far
    /// above its error lets the network smooth what the start had right (bbb k=7: 0.03 lost
    /// 1.4 dB to DDS, 0.01 lost 0.25; carphone and bikes gained 0.7–1.8 dB with 0.01).
    public static let temporalOnlyFrom = 0.01

    /// The first level from the prior's test on the start (r, `DDSSampler.priorCheck` at
    /// t = 80: what is left of the noise the network was asked to remove, 0 perfect, 1 none
    /// removed). Where the network knows the footage well (r ≤ `priorFitGood`) its first level
    /// is `firstLevelHigh`; where it fits the footage poorly (r ≥ `priorFitPoor`) it refines
    /// only at `firstLevelLow`, just above its last level, and leaves the start's structure
    /// alone; geometric in between. Tuning clips, 8-bit, temporal-only (evaluation/TUNING.md,
    /// "The first level from the data"): on the photographed clips (r 0.031–0.067) 0.03 beat
    /// 0.01 by up to 3.1 dB; on both animation clips (r 0.094) every level above 0.01 lost to
    /// the start itself, 0.006 held it.
    public static func firstLevel(priorTest r: Double) -> Double {
        let f = min(max((r - priorFitGood) / (priorFitPoor - priorFitGood), 0), 1)
        return firstLevelHigh * pow(firstLevelLow / firstLevelHigh, f)
    }
    public static let firstLevelHigh = 0.03, firstLevelLow = 0.006
    public static let priorFitGood = 0.07, priorFitPoor = 0.09

    /// svi's sampler by task (tuning clips; evaluation/TUNING.md, "Plug-and-play"): plug-and-play
    /// where the measurement is a file's rounding (0 < σ < `SamplerSettings.roundingOnlyBelow`)
    /// or has a spatial part with noise — 8-bit: +0.2 to +2.6 dB over DDS on 15 of 18 tuning
    /// rows; H.264 with a spatial part: +0.2 dB on average, SSIM up on 6 of 7 — and DDS
    /// elsewhere: noiseless measurements (the paper's setting; exact `.npy` rows keep their
    /// numbers) and temporal-only ones with more noise than rounding (H.264 temporal rows tied,
    /// −0.13 to +0.13 dB; stated Gaussian noise was not tuned for it). nil: DDS.
    public static func defaults(for spec: DegradationSpec) -> PnPSchedule? {
        let sigma = spec.noiseSigma
        guard sigma > 0, sigma < SamplerSettings.roundingOnlyBelow || spec.hasSpatialPart else { return nil }
        if spec.hasSpatialPart { return PnPSchedule(from: defaultFrom, to: defaultTo, weight: 1) }
        return PnPSchedule(from: firstLevelHigh, to: defaultTo, weight: 1, firstLevelFromPriorTest: true)
    }

    /// "from:to:weight" ("auto:to:weight" when the prior's test picks the first level), as
    /// checkpoints and the report record it.
    public var description: String { "\(firstLevelFromPriorTest ? "auto" : "\(from)"):\(to):\(weight)" }
}

/// What the reverse process starts from (`--init`).
public enum StartPoint: String, Sendable, CaseIterable {
    case noise, cg, admmTV = "admm-tv"
}

/// The noise of one run given as images (C×H×W each): the start image every frame shares and
/// one image per step that adds noise, keyed by the step's index.
public struct NoiseImages: Sendable {
    public let initial: [Float]
    public let steps: [Int: [Float]]
    public init(initial: [Float], steps: [Int: [Float]]) { self.initial = initial; self.steps = steps }
}

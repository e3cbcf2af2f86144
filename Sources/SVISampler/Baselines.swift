import SVICore
import SVIFormats
import SVIContracts
import SVIOperators
import CKernels

/// The classical baselines svi is compared with (DESIGN §4), through the same operators.
public enum Baselines {
    /// CG alone: `iterations` CG steps on AᵀA u = Aᵀy starting from Aᵀy. Returns u in [0,1]
    /// units (not clipped).
    public static func conjugateGradient(op: DegradationOperator, measurement y: Tensor, iterations: Int,
                                         dist: Distribution) -> Tensor64 {
        let dc = DataConsistency(op: op, measurement: y, dist: dist, gamma: nil)
        let u = dc.makeAdjointOfMeasurement()
        dc.solve(u, iterations: iterations)
        return u
    }

    /// CG alone's iterations unless told otherwise.
    public static let defaultCGIterations = 100

    /// The classical estimate `from` (CG alone or ADMM-TV): the baselines, and where a warm
    /// start begins.
    /// `progress(k, n)`: ADMM-TV finished outer iteration k of n (long on large frames).
    public static func estimate(_ from: StartPoint, op: DegradationOperator, measurement y: Tensor, dist: Distribution,
                                cgIterations: Int = defaultCGIterations, tv: TVSettings,
                                progress: ((Int, Int) -> Void)? = nil) -> Tensor64 {
        switch from {
        case .cg: return conjugateGradient(op: op, measurement: y, iterations: cgIterations, dist: dist)
        case .admmTV: return admmTV(op: op, measurement: y, settings: tv, dist: dist, progress: progress)
        case .noise: preconditionFailure("noise is not a classical estimate")
        }
    }

    public struct TVSettings: Sendable {
        public var lambda: Double = TVSettings.noiselessLambda
        public var rho: Double = 0.05
        public var iterations: Int = 60
        public var innerCG: Int = 8
        /// Nesterov momentum on (z, w) with restart (`admmTV`); false: plain ADMM.
        public var accelerated = false
        /// Vectors in float32 (inner products and the momentum's residual stay float64): the
        /// warm start's choice — its loop is memory-bound, and its estimate is noised to t ≈ 0.1
        /// before the prior sees it. `--method admm-tv` (EVALUATION's baseline) stays float64.
        public var singlePrecision = false
        public init() {}

        /// Default λ, chosen on the tuning clips (evaluation/TUNING.md), never on the clips
        /// EVALUATION.md reports: 0.0001 without noise (the best of 0.0001…0.03 on every
        /// noiseless family), and 0.15·σ_y with noise — the TV weight grows with the noise
        /// (best single λ on the tuning rows was 0.001 at σ 0.01 and 0.003 at σ 0.02; the rule
        /// beat every fixed λ of the grid on their mean). Below σ_y = 0.01 — a file's rounding
        /// or codec error rather than a sensor's noise — the rule falls off as σ³ to the
        /// noiseless λ (tuning clips, 8-bit files of k = 7, σ ≈ 0.0016: λ 0.0001 41.85 / 47.13 dB
        /// against 39.81 / 45.0 at 0.15·σ; evaluation/TUNING.md), so σ ≥ 0.01 is unchanged.
        /// The rule was tuned on temporal-only rows; a spatial part weakens the data term, and
        /// the same noise then asks for less TV (`spatialShare`). Tuning clips, H.264 files:
        /// SR ×4 and Gaussian σ=1 + SR ×2: λ 0.0001 beat 0.15·σ by 0.3–0.7 dB; deblurring σ 2:
        /// 0.0003 beat 0.0011 by 0.37 dB; inpainting 50 %: 0.001 beat 0.0029 by 0.17 dB
        /// (evaluation/TUNING.md).
        public static let noiselessLambda = 0.0001, lambdaPerNoiseSigma = 0.15
        public static func defaults(noiseSigma: Double, spatialShare: Double = 1) -> TVSettings {
            var s = TVSettings()
            if noiseSigma > 0 {
                let fall = min(1, (noiseSigma / SamplerSettings.gammaSteepBelow) * (noiseSigma / SamplerSettings.gammaSteepBelow))
                s.lambda = max(noiselessLambda, lambdaPerNoiseSigma * noiseSigma * fall * spatialShare)
            } else {
                s.lambda = noiselessLambda
            }
            return s
        }

        /// The defaults for a degradation: λ follows its noise σ and its spatial part.
        public static func defaults(for spec: DegradationSpec) -> TVSettings {
            defaults(noiseSigma: spec.noiseSigma, spatialShare: spatialShare(of: spec))
        }

        /// Outer iterations of ADMM-TV as the diffusion's warm start (accelerated). Its result
        /// follows how far ADMM went, most of all where the estimate nearly is the output: a
        /// temporal-only measurement at a file's rounding takes one network evaluation from
        /// t = 20, and there accelerated 100 iterations beat plain ADMM's 60 by 1.50 dB (bbb
        /// k=7, 8-bit) and 0.30 dB (carphone k=7, 8-bit); accelerated 30 lost 0.20 and 0.40
        /// dB on bbb. With a spatial part the network does more and 40 suffice (accelerated 30:
        /// −0.09 to +0.07 dB against plain 60 on the evaluation's warm-start rows; 40: bikes
        /// inpainting +0.20) at two thirds of plain 60's iterations. Issue 31; BENCHMARKS.md,
        /// "The warm start's budget"; `Scripts/warm-start-check`. `--method admm-tv` keeps plain
        /// ADMM and 60: EVALUATION's baseline column was made with it.
        public static let warmStartIterationsTemporalOnly = 100, warmStartIterationsSpatial = 40
        public static let pnpStartIterationsDeblur = 20

        /// The defaults of ADMM-TV as the diffusion's warm start: `defaults(for:)`,
        /// accelerated, with the iterations above.
        /// `plugAndPlay`: the start of plug-and-play refinement, whose first level (σ 0.03)
        /// smooths what more ADMM iterations would settle for a blur alone:
        /// `pnpStartIterationsDeblur` (8-bit, against 40: tuning clips −0.03 / −0.02 dB,
        /// evaluation clips −0.01 to −0.03). Not for SR: 10 iterations looked free on the tuning
        /// clips (−0.01 to +0.21 dB) but cost bikes 0.6–1.2 dB; inpainting and temporal-only
        /// lost 0.14–0.37 dB at 20 on the tuning clips (evaluation/TUNING.md).
        public static func warmStartDefaults(for spec: DegradationSpec, plugAndPlay: Bool = false) -> TVSettings {
            var s = defaults(for: spec)
            s.iterations = spec.hasSpatialPart ? warmStartIterationsSpatial : warmStartIterationsTemporalOnly
            if plugAndPlay && spec.inpaintKeep == nil && (spec.srFactor ?? 1) <= 1 && spec.blurSigma != nil {
                s.iterations = pnpStartIterationsDeblur
            }
            s.accelerated = true
            s.singlePrecision = true
            return s
        }

        /// How much of the TV weight a temporal-only measurement would need a spatial part
        /// asks for: ×s block averaging 1/s² (its AᵀA has norm 1/s², the reason γ carries s²);
        /// inpainting its kept share (only kept pixels enter the data term); a Gaussian blur of
        /// σ_b ≥ 1 px 1/σ_b² (its passband shrinks as 1/σ_b per axis; one blur size, σ_b 2,
        /// was tuned).
        public static func spatialShare(of spec: DegradationSpec) -> Double {
            var g = 1.0
            if let f = spec.srFactor, f > 1 { g /= Double(f * f) }
            if let k = spec.inpaintKeep, k > 0 { g *= min(1, k) }
            if let b = spec.blurSigma, b > 1 { g /= b * b }
            return g
        }
    }

    /// 3-D anisotropic total variation by ADMM:
    ///   min_u ½‖A u − y‖² + λ‖D u‖₁,  split z = D u, scaled dual w:
    ///   u ← argmin ½‖Au − y‖² + ρ/2 ‖Du − ẑ + ŵ‖²   (CG on (AᵀA + ρDᵀD) u = Aᵀy + ρDᵀ(ẑ − ŵ))
    ///   z ← soft(D u + ŵ, λ/ρ);  w ← ŵ + D u − z.
    /// Plain ADMM takes ẑ, ŵ = z, w. Accelerated (`settings.accelerated`; Goldstein, O'Donoghue,
    /// Setzer & Baraniuk 2014, "Fast alternating direction optimization methods", Algorithm 8):
    /// ẑ, ŵ extrapolate z, w along their last change with Nesterov's weights while the combined
    /// residual c = ‖w − ŵ‖² + ‖z − ẑ‖² falls by a factor η, and restart (no momentum) when it
    /// does not. c is a whole-video sum in frame order, so every rank takes the same branch and
    /// the result does not depend on the rank count.
    public static func admmTV(op: DegradationOperator, measurement y: Tensor, settings: TVSettings,
                              dist: Distribution, progress: ((Int, Int) -> Void)? = nil) -> Tensor64 {
        if settings.singlePrecision {
            let aty: Tensor = op.makeInput(frames: y.frames, Float.self)
            op.adjoint(y, into: aty, dist)
            return Tensor64(converting: admmTV(op: op, adjointOfMeasurement: aty, settings: settings, dist: dist, progress: progress))
        }
        let dc = DataConsistency(op: op, measurement: y, dist: dist, gamma: nil)
        return admmTV(op: op, adjointOfMeasurement: dc.makeAdjointOfMeasurement(), settings: settings, dist: dist, progress: progress)
    }

    /// ADMM-TV in float64 or float32 from Aᵀy (also the first u).
    static func admmTV<S: TVScalar>(op: DegradationOperator, adjointOfMeasurement aty: DenseTensor<S>, settings: TVSettings,
                                    dist: Distribution, progress: ((Int, Int) -> Void)?) -> DenseTensor<S> {
        typealias V = DenseTensor<S>
        let s = op.inputShape
        let u = aty.copy()
        let shape = u.shape
        let z = (0..<3).map { _ in V(shape: shape) }      // ẑ (plain: z)
        let w = (0..<3).map { _ in V(shape: shape) }      // ŵ (plain: w)
        var du = (0..<3).map { _ in V(shape: shape) }     // D u, then the new z
        var tmp = (0..<3).map { _ in V(shape: shape) }    // ẑ − ŵ, then the new w
        // The previous z, w (accelerated only).
        var zPrev = settings.accelerated ? (0..<3).map { _ in V(shape: shape) } : []
        var wPrev = settings.accelerated ? (0..<3).map { _ in V(shape: shape) } : []
        let cg = ConjugateGradient<S>(dist)
        let rho = settings.rho, thr = S(settings.lambda / settings.rho)
        let n = u.count
        var momentum = NesterovRestart()
        for iteration in 0..<settings.iterations {
            defer { progress?(iteration + 1, settings.iterations) }
            for i in 0..<3 { Kernels.lincomb(tmp[i].data, 1, z[i].data, -1, w[i].data, n) }
            // The right-hand side Aᵀy + ρDᵀ(ẑ − ŵ) is formed in CG's residual, and M p's frames
            // give CG p·Mp as they are finished (the bits of separate passes, fewer passes).
            cg.solve(solution: u, iterations: settings.innerCG, rhs: { r in
                S.adjointDifferences(dt: tmp[0], dy: tmp[1], dx: tmp[2], into: r, thenAxpby: 1, aty, S(rho), frame: s, dist)
            }, applyWithDots: { v, out in
                S.normal(op, v, into: out, dist)
                return S.addNormalWithDots(v, scale: rho, into: out, frame: s, dist)
            })
            S.differences(u, dt: du[0], dy: du[1], dx: du[2], frame: s, dist)
            guard settings.accelerated else {
                for i in 0..<3 { shrink(du[i], zHat: z[i], wHat: w[i], zOut: z[i], wOut: w[i], threshold: thr, residual: false) }
                continue
            }
            var partials = [Double](repeating: 0, count: u.frames)
            for i in 0..<3 {
                let p = shrink(du[i], zHat: z[i], wHat: w[i], zOut: du[i], wOut: tmp[i], threshold: thr, residual: true)
                for f in 0..<partials.count { partials[f] += p[f] }
            }
            let beta = momentum.next(residual: dist.comm.sumInFrameOrder(partials, partition: dist.partition))
            for i in 0..<3 {
                extrapolate(du[i], previous: zPrev[i], by: S(beta), into: z[i])
                extrapolate(tmp[i], previous: wPrev[i], by: S(beta), into: w[i])
                // The new z and w become the previous ones by trading buffers, not by a copy:
                // du and tmp are written afresh before they are read again.
                swap(&du[i], &zPrev[i])
                swap(&tmp[i], &wPrev[i])
            }
        }
        return u
    }

    /// Nesterov's weights with Goldstein et al.'s restart: `next` takes the combined residual
    /// of an iteration and returns the extrapolation weight β for the next one (0 on a restart).
    struct NesterovRestart {
        var alpha = 1.0, previous = Double.infinity
        let eta = 0.999
        mutating func next(residual c: Double) -> Double {
            guard c < eta * previous else {
                alpha = 1
                previous /= eta
                return 0
            }
            let a = (1 + (1 + 4 * alpha * alpha).squareRoot()) / 2
            defer { alpha = a; previous = c }
            return (alpha - 1) / a
        }
    }

    /// z ← soft(d + ŵ, thr), w ← d + ŵ − z (outputs may alias ŵ, ẑ or d: each element is read
    /// before it is written). With `residual`, returns per frame ‖w − ŵ‖² + ‖z − ẑ‖², summed in
    /// fixed blocks (the same bits on any thread count); the outputs must not be the hats then.
    /// The loop is C (`svi_shrink_f32/f64`): in Swift it ran scalar.
    @discardableResult
    static func shrink<S: TVScalar>(_ d: DenseTensor<S>, zHat: DenseTensor<S>, wHat: DenseTensor<S>, zOut: DenseTensor<S>,
                                    wOut: DenseTensor<S>, threshold thr: S, residual: Bool) -> [Double] {
        let dp = d.data, zh = zHat.data, wh = wHat.data, zo = zOut.data, wo = wOut.data
        precondition(!residual || (zo != zh && zo != wh && wo != zh && wo != wh))
        let sums = Kernels.frameBlockSums(frames: d.frames, frameSize: d.frameSize) { lo, hi in
            S.shrink(dp + lo, zHat: zh + lo, wHat: wh + lo, zOut: zo + lo, wOut: wo + lo, count: hi - lo, threshold: thr, residual: residual)
        }
        return residual ? sums : []
    }

    /// hat ← x + β (x − previous) (the caller then makes x the next `previous`).
    static func extrapolate<S: BinaryFloatingPoint>(_ x: DenseTensor<S>, previous: DenseTensor<S>, by beta: S, into hat: DenseTensor<S>) {
        let xp = x.data, pp = previous.data, hp = hat.data
        Parallel.forEachChunk(x.count) { a, b in
            for k in a..<b {
                let v = xp[k]
                hp[k] = v + beta * (v - pp[k])
            }
        }
    }
}

/// What ADMM-TV needs of its scalar: the operator's and the differences' float64 or float32
/// entry points, chosen statically once `Baselines.admmTV` is specialised.
protocol TVScalar: OperatorScalar {
    static func normal(_ op: DegradationOperator, _ x: DenseTensor<Self>, into out: DenseTensor<Self>, _ d: Distribution)
    static func differences(_ u: DenseTensor<Self>, dt: DenseTensor<Self>, dy: DenseTensor<Self>, dx: DenseTensor<Self>, frame: FrameShape, _ d: Distribution)
    /// out ← a·x + b·Dᵀ(dt, dy, dx).
    static func adjointDifferences(dt: DenseTensor<Self>, dy: DenseTensor<Self>, dx: DenseTensor<Self>, into out: DenseTensor<Self>,
                                   thenAxpby a: Self, _ x: DenseTensor<Self>, _ b: Self, frame: FrameShape, _ d: Distribution)
    /// out ← out + scale·DᵀD u, returning each local frame's u·out.
    static func addNormalWithDots(_ u: DenseTensor<Self>, scale: Double, into out: DenseTensor<Self>, frame: FrameShape, _ d: Distribution) -> [Double]
    /// `Baselines.shrink` on one block; returns its residual (0 without).
    static func shrink(_ d: UnsafePointer<Self>, zHat: UnsafePointer<Self>, wHat: UnsafePointer<Self>, zOut: UnsafeMutablePointer<Self>,
                       wOut: UnsafeMutablePointer<Self>, count: Int, threshold: Self, residual: Bool) -> Double
}

extension Double: TVScalar {
    static func normal(_ op: DegradationOperator, _ x: Tensor64, into out: Tensor64, _ d: Distribution) { op.normal(x, into: out, d) }
    static func differences(_ u: Tensor64, dt: Tensor64, dy: Tensor64, dx: Tensor64, frame: FrameShape, _ d: Distribution) {
        FiniteDifference3D.apply(u, dt: dt, dy: dy, dx: dx, frame: frame, d)
    }
    static func adjointDifferences(dt: Tensor64, dy: Tensor64, dx: Tensor64, into out: Tensor64, thenAxpby a: Double, _ x: Tensor64, _ b: Double,
                                   frame: FrameShape, _ d: Distribution) {
        FiniteDifference3D.adjoint(dt: dt, dy: dy, dx: dx, into: out, thenAxpby: a, x, b, frame: frame, d)
    }
    static func addNormalWithDots(_ u: Tensor64, scale: Double, into out: Tensor64, frame: FrameShape, _ d: Distribution) -> [Double] {
        FiniteDifference3D.addNormalWithDots(u, scale: scale, into: out, frame: frame, d)
    }
    static func shrink(_ d: UnsafePointer<Double>, zHat: UnsafePointer<Double>, wHat: UnsafePointer<Double>, zOut: UnsafeMutablePointer<Double>,
                       wOut: UnsafeMutablePointer<Double>, count: Int, threshold: Double, residual: Bool) -> Double {
        var sum = 0.0
        svi_shrink_f64(d, zHat, wHat, zOut, wOut, count, threshold, residual ? 1 : 0, &sum)
        return sum
    }
}

extension Float: TVScalar {
    static func normal(_ op: DegradationOperator, _ x: Tensor, into out: Tensor, _ d: Distribution) { op.normal(x, into: out, d) }
    static func differences(_ u: Tensor, dt: Tensor, dy: Tensor, dx: Tensor, frame: FrameShape, _ d: Distribution) {
        FiniteDifference3D.apply(u, dt: dt, dy: dy, dx: dx, frame: frame, d)
    }
    static func adjointDifferences(dt: Tensor, dy: Tensor, dx: Tensor, into out: Tensor, thenAxpby a: Float, _ x: Tensor, _ b: Float,
                                   frame: FrameShape, _ d: Distribution) {
        FiniteDifference3D.adjoint(dt: dt, dy: dy, dx: dx, into: out, thenAxpby: a, x, b, frame: frame, d)
    }
    static func addNormalWithDots(_ u: Tensor, scale: Double, into out: Tensor, frame: FrameShape, _ d: Distribution) -> [Double] {
        FiniteDifference3D.addNormalWithDots(u, scale: scale, into: out, frame: frame, d)
    }
    static func shrink(_ d: UnsafePointer<Float>, zHat: UnsafePointer<Float>, wHat: UnsafePointer<Float>, zOut: UnsafeMutablePointer<Float>,
                       wOut: UnsafeMutablePointer<Float>, count: Int, threshold: Float, residual: Bool) -> Double {
        var sum = 0.0
        svi_shrink_f32(d, zHat, wHat, zOut, wOut, count, threshold, residual ? 1 : 0, &sum)
        return sum
    }
}

import Foundation

/// The DDPM noise schedule and the DDIM step list (DESIGN §4).
///
/// β is linear from 1e-4 to 0.02 over 1000 steps (computed as NumPy's linspace does), and
/// ᾱ_t = Π_{s≤t} (1 − β_s) accumulated in float64. With N steps, skip = 1000 / N and the
/// sampler visits t = (N−1)·skip, …, skip, 0, each with t_next = t − skip, and −1 after 0
/// (ᾱ_{−1} = 1).
public struct Schedule: Sendable {
    public static let trainingSteps = 1000
    public let alphaBar: [Double]

    public init() {
        let n = Schedule.trainingSteps
        let start = 1e-4, stop = 0.02
        let delta = (stop - start) / Double(n - 1)
        var betas = (0..<n).map { Double($0) * delta + start }
        betas[n - 1] = stop
        var acc = 1.0
        alphaBar = betas.map { acc *= (1 - $0); return acc }
    }

    /// ᾱ_t, with ᾱ_{−1} = 1.
    public func alphaBar(at t: Int) -> Double { t < 0 ? 1 : alphaBar[t] }

    public struct Step: Sendable, Equatable {
        public let t: Int, tNext: Int
        public let alphaBar: Double, alphaBarNext: Double
    }

    /// The N steps of the sampler, in the order visited.
    public func steps(nfe: Int) -> [Step] {
        precondition(nfe >= 1 && nfe <= Schedule.trainingSteps)
        let skip = Schedule.trainingSteps / nfe
        return (0..<nfe).map { i in
            let t = (nfe - 1 - i) * skip
            let tn = t == 0 ? -1 : t - skip
            return Step(t: t, tNext: tn, alphaBar: alphaBar(at: t), alphaBarNext: alphaBar(at: tn))
        }
    }

    /// The paper's released loop: t runs over `range(0, 1000, skip)` with skip = 1000 // N, all
    /// of it — so an N that does not divide 1000 takes more steps than N (16 for N = 15, from
    /// t = 990). For an N that divides 1000 it is `steps(nfe:)`.
    public func paperSteps(nfe: Int) -> [Step] {
        precondition(nfe >= 1 && nfe <= Schedule.trainingSteps)
        let skip = Schedule.trainingSteps / nfe
        let times = Array(stride(from: 0, to: Schedule.trainingSteps, by: skip))
        return times.reversed().map { t in
            let tn = t == 0 ? -1 : t - skip
            return Step(t: t, tNext: tn, alphaBar: alphaBar(at: t), alphaBarNext: alphaBar(at: tn))
        }
    }

    /// The steps a run visits when the reverse process starts at fraction `start` of the
    /// schedule (Come-Closer-Diffuse-Faster's warm start): the steps of N whose t < start·1000
    /// (≈ start·N network evaluations); at least the last step. start = 1: all N.
    public func steps(nfe: Int, start: Double, paper: Bool = false) -> [Step] {
        let all = paper ? paperSteps(nfe: nfe) : steps(nfe: nfe)
        guard start < 1 else { return all }
        let visited = all.filter { Double($0.t) < start * Double(Schedule.trainingSteps) }
        return visited.isEmpty ? [all.last!] : visited
    }

    /// The noise level σ_t that step t stands for in [0,1] pixel units: x_t/√ᾱ_t = x0 +
    /// √((1−ᾱ_t)/ᾱ_t) ε in the network's [-1,1] units, half that in pixel units.
    public func pixelSigma(at t: Int) -> Double { 0.5 * ((1 - alphaBar(at: t)) / alphaBar(at: t)).squareRoot() }

    /// The steps of plug-and-play refinement (`PnPSchedule`): `count` noise levels spaced
    /// geometrically from `from` down to `to` (pixel units), each the training step whose σ_t
    /// is nearest (σ_0 ≈ 0.005 is the smallest there is, so the last levels may repeat t = 0),
    /// with t_next the next level's step (−1 after the last, ᾱ = 1).
    public func pnpSteps(count: Int, from: Double, to: Double) -> [Step] {
        precondition(count >= 1 && from > 0 && to > 0)
        let ratio = count > 1 ? pow(to / from, 1 / Double(count - 1)) : 1
        let times = (0..<count).map { k -> Int in
            let sigma = from * pow(ratio, Double(k))
            var best = 0
            for t in 1..<Schedule.trainingSteps where abs(pixelSigma(at: t) - sigma) < abs(pixelSigma(at: best) - sigma) { best = t }
            return best
        }
        return times.enumerated().map { k, t in
            let tn = k + 1 < count ? times[k + 1] : -1
            return Step(t: t, tNext: tn, alphaBar: alphaBar(at: t), alphaBarNext: alphaBar(at: tn))
        }
    }
}

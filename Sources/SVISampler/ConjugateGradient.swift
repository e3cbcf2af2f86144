import SVICore
import SVIFormats
import SVIContracts

/// Conjugate gradients on a symmetric positive (semi-)definite system M u = b over a video
/// distributed in frame blocks. Inner products are float64 and combined over ranks in frame
/// order, so every rank takes the same step sizes and the distributed solve is the
/// single-process solve. Vectors are float64 (see `Tensor64`) — or float32 for ADMM-TV's warm
/// start, whose inner solves are memory-bound (inner products stay float64); the three work
/// vectors (r, p, M p) are kept between calls, and b is formed in r, so a solve holds no other copy.
public final class ConjugateGradient<S: BinaryFloatingPoint> {
    public typealias Vector = DenseTensor<S>
    let dist: Distribution
    private var r: Vector?, p: Vector?, mp: Vector?

    public init(_ dist: Distribution) { self.dist = dist }

    private func work(_ like: Vector) -> (Vector, Vector, Vector) {
        if let r, let p, let mp, r.shape == like.shape { return (r, p, mp) }
        r = nil; p = nil; mp = nil
        let nr = Vector(shape: like.shape), np = Vector(shape: like.shape), nm = Vector(shape: like.shape)
        r = nr; p = np; mp = nm
        return (nr, np, nm)
    }

    /// Runs `iterations` CG steps from the start in `u` (updated in place). `apply(v, out)`
    /// computes out ← M v. Returns ‖r‖² after each iteration.
    @discardableResult
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public func solve(rhs b: Vector, solution u: Vector, iterations: Int,
                      apply: (Vector, Vector) -> Void) -> [Double] {
        solve(solution: u, iterations: iterations, rhs: { $0.copy(from: b) }, apply: apply)
    }

    /// As above, with the right-hand side written by `rhs(into)` into CG's own residual vector
    /// (so the caller need not keep b).
    @discardableResult
    /// `stop(u)`, when given, is asked before every iteration (the discrepancy principle:
    /// stop once the iterate explains the measurement to within its noise).
    // Specialised for both scalars: callers in other files (ADMM-TV, data consistency) would
    // otherwise run it generically in debug builds (no whole-module optimisation), ~40× slower.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public func solve(solution u: Vector, iterations: Int, rhs: (Vector) -> Void,
                      stop: ((Vector) -> Bool)? = nil, apply: (Vector, Vector) -> Void) -> [Double] {
        run(solution: u, iterations: iterations, rhs: rhs, stop: stop) { v, out, dots in
            apply(v, out)
            return dots ? Kernels.frameDots(v.data, out.data, frames: v.frames, frameSize: v.frameSize) : []
        }
    }

    /// As above, with `apply(v, out)` also returning each local frame's v·out (float64, the
    /// bits of `Kernels.frameDots`) when it can take them as it writes out: p·Mp without a
    /// pass over both vectors of its own (ADMM-TV's inner solves, issue 31).
    @discardableResult
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public func solve(solution u: Vector, iterations: Int, rhs: (Vector) -> Void,
                      applyWithDots: (Vector, Vector) -> [Double]) -> [Double] {
        run(solution: u, iterations: iterations, rhs: rhs, stop: nil) { v, out, dots in
            let d = applyWithDots(v, out)
            precondition(d.count == v.frames, "applyWithDots returned \(d.count) frame dots for \(v.frames) frames")
            return d
        }
    }

    @_specialize(where S == Float)
    @_specialize(where S == Double)
    private func run(solution u: Vector, iterations: Int, rhs: (Vector) -> Void, stop: ((Vector) -> Bool)?,
                     apply: (Vector, Vector, _ dots: Bool) -> [Double]) -> [Double] {
        let (r, p, mp) = work(u)
        let n = u.count
        rhs(r)                                          // r = b …
        // Converged to the vectors' precision (‖r‖ ≤ 1e-12‖b‖ in float64, 1e-6‖b‖ in float32):
        // further steps would divide rounding noise by rounding noise, which on a singular AᵀA
        // (T a multiple of k) explodes.
        let floor = (S.self == Double.self ? 1e-24 : 1e-12) * max(dist.dot(r, r), Double.leastNormalMagnitude)
        _ = apply(u, mp, false)                         // … − M u
        var rr = dist.comm.sumInFrameOrder(Kernels.cgStart(r: r.data, q: mp.data, p: p.data, frames: r.frames, frameSize: r.frameSize),
                                           partition: dist.partition)
        var history: [Double] = []
        for _ in 0..<iterations {
            if rr <= floor { break }
            if let stop, stop(u) { break }
            let pmp = dist.comm.sumInFrameOrder(apply(p, mp, true), partition: dist.partition)
            if !(pmp > 0) { break }                     // M is singular along p: nothing left to gain
            let alpha = rr / pmp
            let rrNew = dist.comm.sumInFrameOrder(Kernels.cgUpdate(u: u.data, p: p.data, r: r.data, q: mp.data, alpha: S(alpha),
                                                                   frames: r.frames, frameSize: r.frameSize),
                                                  partition: dist.partition)
            let beta = rrNew / rr
            Kernels.axpby(p.data, 1, r.data, S(beta), n)   // p = r + β p
            rr = rrNew
            history.append(rr)
        }
        return history
    }
}

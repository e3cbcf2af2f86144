import SVICore
import SVIFormats
import SVIContracts

/// Forward differences along t, y and x (anisotropic 3-D TV's D), Neumann boundary: the
/// difference past the last frame/row/column is zero. D maps one video to three (stacked as
/// `dt`, `dy`, `dx`); Dᵀ maps them back. The temporal difference needs frame t+1 (forward)
/// and t−1 (adjoint), fetched through the communicator.
/// Float64 (the ADMM-TV baseline) and float32 (ADMM-TV as the warm start) run one generic body.
public enum FiniteDifference3D {
    public static func apply(_ u: Tensor64, dt: Tensor64, dy: Tensor64, dx: Tensor64, frame s: FrameShape, _ d: Distribution) {
        differences(u, dt: dt, dy: dy, dx: dx, frame: s, d)
    }
    public static func apply(_ u: Tensor, dt: Tensor, dy: Tensor, dx: Tensor, frame s: FrameShape, _ d: Distribution) {
        differences(u, dt: dt, dy: dy, dx: dx, frame: s, d)
    }

    public static func adjoint(dt: Tensor64, dy: Tensor64, dx: Tensor64, into out: Tensor64, frame s: FrameShape, _ d: Distribution) {
        adjointDifferences(dt: dt, dy: dy, dx: dx, into: out, frame: s, d)
    }
    public static func adjoint(dt: Tensor, dy: Tensor, dx: Tensor, into out: Tensor, frame s: FrameShape, _ d: Distribution) {
        adjointDifferences(dt: dt, dy: dy, dx: dx, into: out, frame: s, d)
    }

    /// out ← a·x + b·(Dᵀ(dt, dy, dx)), each frame finished while it is in cache: the
    /// expression of `Kernels.axpby(out, a, x, b)` after `adjoint`, so the same bits without a
    /// pass of its own (ADMM-TV's right-hand side Aᵀy + ρDᵀ(z − w)).
    public static func adjoint(dt: Tensor64, dy: Tensor64, dx: Tensor64, into out: Tensor64, thenAxpby a: Double, _ x: Tensor64, _ b: Double,
                               frame s: FrameShape, _ d: Distribution) {
        adjointDifferences(dt: dt, dy: dy, dx: dx, into: out, frame: s, d, finish: (x, a, b))
    }
    public static func adjoint(dt: Tensor, dy: Tensor, dx: Tensor, into out: Tensor, thenAxpby a: Float, _ x: Tensor, _ b: Float,
                               frame s: FrameShape, _ d: Distribution) {
        adjointDifferences(dt: dt, dy: dy, dx: dx, into: out, frame: s, d, finish: (x, a, b))
    }

    /// out ← out + ρ·DᵀD u (below).
    public static func addNormal(_ u: Tensor64, scale rho: Double, into out: Tensor64, frame s: FrameShape, _ d: Distribution) {
        _ = addLaplacian(u, scale: rho, into: out, frame: s, d, dots: false)
    }
    public static func addNormal(_ u: Tensor, scale rho: Double, into out: Tensor, frame s: FrameShape, _ d: Distribution) {
        _ = addLaplacian(u, scale: Float(rho), into: out, frame: s, d, dots: false)
    }

    /// `addNormal`, returning each local frame's u·out (float64, `Kernels.frameDots`' bits)
    /// taken as the frame is finished: CG's p·Mp without a pass of its own.
    public static func addNormalWithDots(_ u: Tensor64, scale rho: Double, into out: Tensor64, frame s: FrameShape, _ d: Distribution) -> [Double] {
        addLaplacian(u, scale: rho, into: out, frame: s, d, dots: true)
    }
    public static func addNormalWithDots(_ u: Tensor, scale rho: Double, into out: Tensor, frame s: FrameShape, _ d: Distribution) -> [Double] {
        addLaplacian(u, scale: Float(rho), into: out, frame: s, d, dots: true)
    }

    static func differences<S: BinaryFloatingPoint>(_ u: DenseTensor<S>, dt: DenseTensor<S>, dy: DenseTensor<S>, dx: DenseTensor<S>,
                                                    frame s: FrameShape, _ d: Distribution) {
        let T = d.totalFrames, local = d.localRange
        let table = d.comm.fetchFrames(of: u, partition: d.partition) { r in
            let rr = d.partition.range(of: r)
            return rr.isEmpty ? [] : Array(rr.lowerBound..<min(rr.upperBound + 1, T))
        }
        Parallel.forEach(local.count) { i in
            let t = local.lowerBound + i
            let cur = UnsafePointer(u.frame(i))
            let ot = dt.frame(i), oy = dy.frame(i), ox = dx.frame(i)
            if t + 1 < T {
                let nxt = table[t + 1]
                for k in 0..<s.count { ot[k] = nxt[k] - cur[k] }
            } else { ot.update(repeating: 0, count: s.count) }
            for c in 0..<s.channels {
                let p = cur + c * s.plane, py = oy + c * s.plane, px = ox + c * s.plane
                for y in 0..<s.height {
                    for x in 0..<s.width {
                        let k = y * s.width + x
                        py[k] = y + 1 < s.height ? p[k + s.width] - p[k] : 0
                        px[k] = x + 1 < s.width ? p[k + 1] - p[k] : 0
                    }
                }
            }
        }
    }

    static func adjointDifferences<S: BinaryFloatingPoint>(dt: DenseTensor<S>, dy: DenseTensor<S>, dx: DenseTensor<S>, into out: DenseTensor<S>,
                                                           frame s: FrameShape, _ d: Distribution,
                                                           finish: (x: DenseTensor<S>, a: S, b: S)? = nil) {
        let local = d.localRange
        let table = d.comm.fetchFrames(of: dt, partition: d.partition) { r in
            let rr = d.partition.range(of: r)
            return rr.isEmpty ? [] : Array(max(rr.lowerBound - 1, 0)..<rr.upperBound)
        }
        Parallel.forEach(local.count) { i in
            let t = local.lowerBound + i
            // (Dᵀp)[t] = p[t−1] − p[t], where p[T−1] (set to zero by D) never contributes.
            let o = out.frame(i), pt = UnsafePointer(dt.frame(i))
            let last = t == d.totalFrames - 1
            if t > 0 {
                let prev = table[t - 1]
                if last { for k in 0..<s.count { o[k] = prev[k] } } else { for k in 0..<s.count { o[k] = prev[k] - pt[k] } }
            } else if last { o.update(repeating: 0, count: s.count) } else { for k in 0..<s.count { o[k] = -pt[k] } }
            for c in 0..<s.channels {
                let py = UnsafePointer(dy.frame(i)) + c * s.plane, px = UnsafePointer(dx.frame(i)) + c * s.plane
                let oc = o + c * s.plane
                for y in 0..<s.height {
                    for x in 0..<s.width {
                        let k = y * s.width + x
                        var v: S = 0
                        if y + 1 < s.height { v -= py[k] }
                        if x + 1 < s.width { v -= px[k] }
                        if y > 0 { v += py[k - s.width] }
                        if x > 0 { v += px[k - 1] }
                        oc[k] += v
                    }
                }
            }
            if let (xs, a, b) = finish {
                let xf = UnsafePointer(xs.frame(i))
                for k in 0..<s.count { o[k] = a * xf[k] + b * o[k] }
            }
        }
    }

    /// out ← out + ρ·DᵀD u in one pass (the 3-D Laplacian with Neumann boundaries: along each
    /// axis 2u[i] − u[i−1] − u[i+1] inside, u[0] − u[1] and u[n−1] − u[n−2] at the ends, 0 for
    /// n = 1). ADMM-TV's inner CG applies it every iteration: fused, it reads u once and writes
    /// out once, where `apply` then `adjoint` wrote and read three difference videos.
    static func addLaplacian<S: BinaryFloatingPoint>(_ u: DenseTensor<S>, scale rho: S, into out: DenseTensor<S>, frame s: FrameShape,
                                                     _ d: Distribution, dots: Bool) -> [Double] {
        let T = d.totalFrames, local = d.localRange
        let table = d.comm.fetchFrames(of: u, partition: d.partition) { r in
            let rr = d.partition.range(of: r)
            return rr.isEmpty ? [] : Array(max(rr.lowerBound - 1, 0)..<min(rr.upperBound + 1, T))
        }
        let W = s.width, H = s.height
        let dotsOut: UnsafeMutablePointer<Double>? = dots ? .allocate(capacity: local.count) : nil
        defer { dotsOut?.deallocate() }
        Parallel.forEach(local.count) { i in
            let t = local.lowerBound + i
            let cur = UnsafePointer(u.frame(i)), o = out.frame(i)
            let prev: UnsafePointer<S>? = t > 0 ? table[t - 1] : nil
            let next: UnsafePointer<S>? = t + 1 < T ? table[t + 1] : nil
            // Temporal part first (whole frame), then the spatial parts plane by plane.
            switch (prev, next) {
            case let (p?, n?): for k in 0..<s.count { o[k] += rho * (2 * cur[k] - p[k] - n[k]) }
            case let (p?, nil): for k in 0..<s.count { o[k] += rho * (cur[k] - p[k]) }
            case let (nil, n?): for k in 0..<s.count { o[k] += rho * (cur[k] - n[k]) }
            case (nil, nil): break
            }
            for c in 0..<s.channels {
                let p = cur + c * s.plane, oc = o + c * s.plane
                for y in 0..<H {
                    let row = p + y * W
                    addRowLaplacian(row, up: y > 0 ? row - W : nil, down: y + 1 < H ? row + W : nil,
                                    into: oc + y * W, width: W, scale: rho)
                }
            }
            if let dotsOut { dotsOut[i] = Kernels.serialDot(cur, UnsafePointer(o), s.count) }
        }
        return dotsOut.map { Array(UnsafeBufferPointer(start: $0, count: local.count)) } ?? []
    }

    /// orow[x] += ρ·l(x), l = (v − up) + (v − down) + (v − left) + (v − right) over the
    /// neighbours that exist, added in that order from 0. The ends of the row take the general
    /// path; inside it the neighbours are known per row, so the loop has no branches and
    /// vectorises (issue 31: the branchy loop was 18 % of the warm start) with the same bits.
    @inline(__always)
    static func addRowLaplacian<S: BinaryFloatingPoint>(_ row: UnsafePointer<S>, up: UnsafePointer<S>?, down: UnsafePointer<S>?,
                                                        into orow: UnsafeMutablePointer<S>, width W: Int, scale rho: S) {
        func general(_ x: Int) {
            let v = row[x]
            var l: S = 0
            if let a = up { l += v - a[x] }
            if let b = down { l += v - b[x] }
            if x > 0 { l += v - row[x - 1] }
            if x + 1 < W { l += v - row[x + 1] }
            orow[x] += rho * l
        }
        general(0)
        if W == 1 { return }
        let inner = 1..<(W - 1)
        switch (up, down) {
        case let (a?, b?):
            for x in inner {
                let v = row[x]
                var l: S = 0
                l += v - a[x]; l += v - b[x]; l += v - row[x - 1]; l += v - row[x + 1]
                orow[x] += rho * l
            }
        case let (a?, nil):
            for x in inner {
                let v = row[x]
                var l: S = 0
                l += v - a[x]; l += v - row[x - 1]; l += v - row[x + 1]
                orow[x] += rho * l
            }
        case let (nil, b?):
            for x in inner {
                let v = row[x]
                var l: S = 0
                l += v - b[x]; l += v - row[x - 1]; l += v - row[x + 1]
                orow[x] += rho * l
            }
        case (nil, nil):
            for x in inner {
                let v = row[x]
                var l: S = 0
                l += v - row[x - 1]; l += v - row[x + 1]
                orow[x] += rho * l
            }
        }
        general(W - 1)
    }
}

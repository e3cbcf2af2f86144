import Foundation
import SVICore
import SVIFormats

/// A linear map applied to every frame alike (the spatial part S of A = S ∘ Tm). Working
/// frame by frame is what lets the distributed code apply it to any frame block unchanged.
///
/// Each operator works in float64 (CG of the diffusion's data consistency, the baselines) and
/// float32 (ADMM-TV as the diffusion's warm start, memory-bound: half the traffic); both run
/// one generic body specialised per type, so the float64 path is the one it always was.
public protocol FrameOperator: Sendable {
    /// The frame shape this operator produces from `input`, or an error if it cannot apply.
    func outputShape(for input: FrameShape) throws -> FrameShape
    /// out ← S x for one frame (`x` has the input shape, `out` the output shape).
    func apply(_ x: UnsafePointer<Double>, _ out: UnsafeMutablePointer<Double>, input: FrameShape)
    /// out ← Sᵀ y for one frame (`y` has the output shape, `out` the input shape).
    func adjoint(_ y: UnsafePointer<Double>, _ out: UnsafeMutablePointer<Double>, input: FrameShape)
    /// The same in float32.
    func apply(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, input: FrameShape)
    func adjoint(_ y: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, input: FrameShape)
}

/// The scalars the operators run in: lets generic code (the operator chain, ADMM-TV) call a
/// `FrameOperator`'s concrete float64 or float32 method once it is specialised.
public protocol OperatorScalar: BinaryFloatingPoint, Sendable {
    static func run(_ op: FrameOperator, _ x: UnsafePointer<Self>, _ out: UnsafeMutablePointer<Self>, input: FrameShape, adjoint: Bool)
}

extension Double: OperatorScalar {
    public static func run(_ op: FrameOperator, _ x: UnsafePointer<Double>, _ out: UnsafeMutablePointer<Double>, input: FrameShape, adjoint: Bool) {
        if adjoint { op.adjoint(x, out, input: input) } else { op.apply(x, out, input: input) }
    }
}

extension Float: OperatorScalar {
    public static func run(_ op: FrameOperator, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, input: FrameShape, adjoint: Bool) {
        if adjoint { op.adjoint(x, out, input: input) } else { op.apply(x, out, input: input) }
    }
}

/// Index reflection without repeating the edge sample (PyTorch/NumPy "reflect"):
/// …, 2, 1, [0, 1, …, n−1], n−2, … — valid for any offset.
@inline(__always)
func reflectIndex(_ i: Int, _ n: Int) -> Int {
    if n == 1 { return 0 }
    let period = 2 * (n - 1)
    var m = i % period
    if m < 0 { m += period }
    return m < n ? m : period - m
}

/// Spatial Gaussian blur σ: a separable normalised kernel of 2⌈3σ⌉+1 taps, reflect boundary.
/// The adjoint scatters each contribution back through the same reflection, so it is exact.
public struct GaussianBlur: FrameOperator {
    public let sigma: Double
    public let taps: [Double]
    public var radius: Int { taps.count / 2 }

    public init(sigma: Double) {
        self.sigma = sigma
        let r = Int((3 * sigma).rounded(.up))
        let w = (-r...r).map { exp(-Double($0 * $0) / (2 * sigma * sigma)) }
        let s = w.reduce(0, +)
        taps = w.map { $0 / s }
    }

    public func outputShape(for input: FrameShape) throws -> FrameShape { input }

    public func apply(_ x: UnsafePointer<Double>, _ out: UnsafeMutablePointer<Double>, input: FrameShape) {
        run(x, out, input, transpose: false)
    }

    public func adjoint(_ y: UnsafePointer<Double>, _ out: UnsafeMutablePointer<Double>, input: FrameShape) {
        run(y, out, input, transpose: true)
    }

    public func apply(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, input: FrameShape) {
        run(x, out, input, transpose: false)
    }

    public func adjoint(_ y: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, input: FrameShape) {
        run(y, out, input, transpose: true)
    }

    /// Separable: rows then columns (forward) or the transposes (adjoint); the two 1-D passes
    /// commute, so the adjoint of the 2-D blur is the product of the 1-D adjoints.
    private func run<S: BinaryFloatingPoint>(_ src: UnsafePointer<S>, _ dst: UnsafeMutablePointer<S>, _ s: FrameShape, transpose: Bool) {
        let h = s.height, w = s.width, r = radius
        let tmp = UnsafeMutablePointer<S>.allocate(capacity: s.plane)
        defer { tmp.deallocate() }
        taps.map { S($0) }.withUnsafeBufferPointer { g in
            for c in 0..<s.channels {
                let sp = src + c * s.plane, dp = dst + c * s.plane
                // Along W into tmp.
                for y in 0..<h {
                    let row = sp + y * w, trow = tmp + y * w
                    // x in [lo, hi) needs no reflection. Each output sums its taps in the
                    // order one loop over x (then taps) with reflection would, so the bits are
                    // those of that loop; inside, the loops run taps outside and x inside, so
                    // they vectorise across the row (issue 31: deblurring's ADMM-TV).
                    let lo = min(r, w), hi = max(lo, w - r)
                    if transpose {
                        trow.update(repeating: 0, count: w)
                        func edge(_ x: Int) { let v = row[x]; for j in 0..<g.count { trow[reflectIndex(x + j - r, w)] += g[j] * v } }
                        for x in 0..<lo { edge(x) }
                        // trow[k] gets its interior contributions in x order: taps descending.
                        for j in (0..<g.count).reversed() {
                            let gj = g[j], t = trow + (j - r)
                            for x in lo..<hi { t[x] += gj * row[x] }
                        }
                        for x in hi..<w { edge(x) }
                    } else {
                        func edge(_ x: Int) {
                            var acc: S = 0
                            for j in 0..<g.count { acc += g[j] * row[reflectIndex(x + j - r, w)] }
                            trow[x] = acc
                        }
                        for x in 0..<lo { edge(x) }
                        for x in lo..<hi { trow[x] = 0 }
                        for j in 0..<g.count {
                            let gj = g[j], shifted = row + (j - r)
                            for x in lo..<hi { trow[x] += gj * shifted[x] }
                        }
                        for x in hi..<w { edge(x) }
                    }
                }
                // Along H into dst.
                if transpose {
                    dp.update(repeating: 0, count: s.plane)
                    for y in 0..<h { for j in 0..<g.count {
                        let dy = reflectIndex(y + j - r, h), gj = g[j]
                        let trow = tmp + y * w, drow = dp + dy * w
                        for x in 0..<w { drow[x] += gj * trow[x] }
                    } }
                } else {
                    for y in 0..<h {
                        let drow = dp + y * w
                        drow.update(repeating: 0, count: w)
                        for j in 0..<g.count {
                            let sy = reflectIndex(y + j - r, h), gj = g[j]
                            let trow = tmp + sy * w
                            for x in 0..<w { drow[x] += gj * trow[x] }
                        }
                    }
                }
            }
        }
    }
}

/// ×s super-resolution measurement: each s×s block averaged. Adjoint: nearest-neighbour
/// upsampling divided by s².
public struct BlockAverage: FrameOperator {
    public let factor: Int
    public init(factor: Int) { self.factor = factor }

    public func outputShape(for input: FrameShape) throws -> FrameShape {
        guard input.height % factor == 0, input.width % factor == 0 else {
            throw SVIError("super-resolution factor \(factor) does not divide the frame size \(input.width)×\(input.height)", kind: .badInput)
        }
        return FrameShape(channels: input.channels, height: input.height / factor, width: input.width / factor)
    }

    public func apply(_ x: UnsafePointer<Double>, _ out: UnsafeMutablePointer<Double>, input s: FrameShape) { average(x, out, s) }
    public func adjoint(_ y: UnsafePointer<Double>, _ out: UnsafeMutablePointer<Double>, input s: FrameShape) { spread(y, out, s) }
    public func apply(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, input s: FrameShape) { average(x, out, s) }
    public func adjoint(_ y: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, input s: FrameShape) { spread(y, out, s) }

    private func average<S: BinaryFloatingPoint>(_ x: UnsafePointer<S>, _ out: UnsafeMutablePointer<S>, _ s: FrameShape) {
        let f = factor, ho = s.height / f, wo = s.width / f, inv = 1 / S(f * f)
        // A row of outputs at a time, each summed in the same order as one block alone (dy,
        // then dx, from 0): the same bits, with the adds running across the row (issue 31:
        // ADMM-TV's warm start applies this 360 times on the demo).
        for c in 0..<s.channels {
            let sp = x + c * s.plane, dp = out + c * ho * wo
            for yo in 0..<ho {
                let acc = dp + yo * wo
                acc.update(repeating: 0, count: wo)
                for dy in 0..<f {
                    let row = sp + (yo * f + dy) * s.width
                    for dx in 0..<f { for xo in 0..<wo { acc[xo] += row[xo * f + dx] } }
                }
                for xo in 0..<wo { acc[xo] *= inv }
            }
        }
    }

    private func spread<S: BinaryFloatingPoint>(_ y: UnsafePointer<S>, _ out: UnsafeMutablePointer<S>, _ s: FrameShape) {
        let f = factor, ho = s.height / f, wo = s.width / f, inv = 1 / S(f * f)
        for c in 0..<s.channels {
            let sp = y + c * ho * wo, dp = out + c * s.plane
            // The first row of each block band written once, the band's other rows copied.
            for yo in 0..<ho {
                let srow = sp + yo * wo, first = dp + yo * f * s.width
                for xo in 0..<wo { let v = srow[xo] * inv; for dx in 0..<f { first[xo * f + dx] = v } }
                for dy in 1..<f { (first + dy * s.width).update(from: first, count: s.width) }
            }
        }
    }
}

/// Inpainting: keeps a random fraction of pixel positions (the same positions in every
/// channel and frame), zeroes the rest. Diagonal, so it is its own adjoint.
public struct InpaintMask: FrameOperator {
    public let keepFraction: Double
    public let seed: UInt64

    public init(keepFraction: Double, seed: UInt64) { self.keepFraction = keepFraction; self.seed = seed }

    /// 1 where the pixel is kept, for an H×W frame; drawn from (seed, inpaint-mask).
    public func mask(height: Int, width: Int) -> [Double] {
        RandomStream(seed: seed, purpose: .inpaintMask).uniforms(offset: 0, count: height * width).map { $0 < keepFraction ? 1 : 0 }
    }

    public func outputShape(for input: FrameShape) throws -> FrameShape { input }

    public func apply(_ x: UnsafePointer<Double>, _ out: UnsafeMutablePointer<Double>, input s: FrameShape) {
        keep(x, out, MaskCache.shared.mask(self, s.height, s.width), s)
    }

    public func adjoint(_ y: UnsafePointer<Double>, _ out: UnsafeMutablePointer<Double>, input s: FrameShape) {
        apply(y, out, input: s)
    }

    public func apply(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, input s: FrameShape) {
        keep(x, out, MaskCache.shared.mask32(self, s.height, s.width), s)
    }

    public func adjoint(_ y: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, input s: FrameShape) {
        apply(y, out, input: s)
    }

    private func keep<S: BinaryFloatingPoint>(_ x: UnsafePointer<S>, _ out: UnsafeMutablePointer<S>, _ m: [S], _ s: FrameShape) {
        m.withUnsafeBufferPointer { mp in
            for c in 0..<s.channels { for i in 0..<s.plane { out[c * s.plane + i] = x[c * s.plane + i] * mp[i] } }
        }
    }
}

/// Masks are drawn once per (seed, fraction, size) and reused by every frame and CG step.
final class MaskCache: @unchecked Sendable {
    static let shared = MaskCache()
    private var cache: [String: [Double]] = [:], cache32: [String: [Float]] = [:]
    private let lock = NSLockShim()

    func mask32(_ op: InpaintMask, _ h: Int, _ w: Int) -> [Float] {
        let key = "\(op.seed)/\(op.keepFraction)/\(h)x\(w)"
        if let m = lock.with({ cache32[key] }) { return m }
        let m = mask(op, h, w).map { Float($0) }
        lock.with { cache32[key] = m }
        return m
    }

    func mask(_ op: InpaintMask, _ h: Int, _ w: Int) -> [Double] {
        let key = "\(op.seed)/\(op.keepFraction)/\(h)x\(w)"
        return lock.with {
            if let m = cache[key] { return m }
            let m = op.mask(height: h, width: w)
            cache[key] = m
            return m
        }
    }
}

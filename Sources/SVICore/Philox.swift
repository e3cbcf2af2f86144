import Foundation

/// Philox-4x32-10 (Salmon et al., SC'11): a counter-based generator. Output block `n` is a
/// pure function of (key, counter), so any thread or rank can draw any number of any noise
/// image without coordination, and results never depend on how work was split.
public struct Philox4x32: Sendable {
    public static let m0: UInt32 = 0xD251_1F53, m1: UInt32 = 0xCD9E_8D57
    public static let w0: UInt32 = 0x9E37_79B9, w1: UInt32 = 0xBB67_AE85

    /// One 4×32-bit output block for `counter` under `key`.
    @inline(__always)
    public static func block(counter c: (UInt32, UInt32, UInt32, UInt32), key k: (UInt32, UInt32)) -> (UInt32, UInt32, UInt32, UInt32) {
        var c0 = c.0, c1 = c.1, c2 = c.2, c3 = c.3
        var k0 = k.0, k1 = k.1
        for r in 0..<10 {
            if r > 0 { k0 &+= w0; k1 &+= w1 }
            let p0 = UInt64(m0) * UInt64(c0)
            let p1 = UInt64(m1) * UInt64(c2)
            let hi0 = UInt32(truncatingIfNeeded: p0 >> 32), lo0 = UInt32(truncatingIfNeeded: p0)
            let hi1 = UInt32(truncatingIfNeeded: p1 >> 32), lo1 = UInt32(truncatingIfNeeded: p1)
            (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
        }
        return (c0, c1, c2, c3)
    }
}

/// What a stream of random numbers is for. The raw values are part of the counter, so they
/// are fixed forever: changing one would change every result made with a given seed.
public enum NoisePurpose: UInt32, Sendable {
    case initial = 1            // z, the start image shared by all frames
    case step = 2               // n, the per-step noise image
    case measurement = 3        // σ_y·w added by `svi degrade`
    case inpaintMask = 4        // which pixel positions an inpainting mask keeps
}

/// Random numbers keyed by (seed, purpose, step, index) (DESIGN §2).
///
/// Element `i` of a stream comes from Philox block `i / 4`, lane `i % 4`, with counter
/// `(block low, block high, step, purpose)` and key = the 64-bit seed.
public struct RandomStream: Sendable {
    public let seed: UInt64
    public let purpose: NoisePurpose
    public let step: UInt32

    public init(seed: UInt64, purpose: NoisePurpose, step: UInt32 = 0) {
        self.seed = seed; self.purpose = purpose; self.step = step
    }

    @inline(__always)
    func rawBlock(_ b: Int) -> (UInt32, UInt32, UInt32, UInt32) {
        let ub = UInt64(b)
        return Philox4x32.block(
            counter: (UInt32(truncatingIfNeeded: ub), UInt32(truncatingIfNeeded: ub >> 32), step, purpose.rawValue),
            key: (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32)))
    }

    /// Uniform in the open interval (0, 1) from 32 random bits.
    @inline(__always)
    static func unit(_ u: UInt32) -> Double { (Double(u) + 0.5) * (1.0 / 4_294_967_296.0) }

    /// Standard normals for elements [offset, offset+count) via Box–Muller on lane pairs
    /// (0,1) and (2,3) of each block.
    public func normals(offset: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
        if count <= 0 { return }
        let first = offset / 4, last = (offset + count - 1) / 4
        let blocks = last - first + 1
        Parallel.forEachChunk(blocks, grain: 4096) { s, e in
            for b in (first + s)..<(first + e) {
                let r = rawBlock(b)
                let rad0 = (-2.0 * log(RandomStream.unit(r.0))).squareRoot(), th0 = 2.0 * Double.pi * RandomStream.unit(r.1)
                let rad1 = (-2.0 * log(RandomStream.unit(r.2))).squareRoot(), th1 = 2.0 * Double.pi * RandomStream.unit(r.3)
                let z = (rad0 * cos(th0), rad0 * sin(th0), rad1 * cos(th1), rad1 * sin(th1))
                let base = b * 4
                for lane in 0..<4 {
                    let i = base + lane - offset
                    if i < 0 || i >= count { continue }
                    switch lane {
                    case 0: out[i] = Float(z.0)
                    case 1: out[i] = Float(z.1)
                    case 2: out[i] = Float(z.2)
                    default: out[i] = Float(z.3)
                    }
                }
            }
        }
    }

    /// Uniforms in (0,1) for elements [offset, offset+count).
    public func uniforms(offset: Int, count: Int) -> [Double] {
        var out = [Double](repeating: 0, count: count)
        for i in 0..<count {
            let g = offset + i
            let r = rawBlock(g / 4)
            let lane: UInt32
            switch g % 4 { case 0: lane = r.0; case 1: lane = r.1; case 2: lane = r.2; default: lane = r.3 }
            out[i] = RandomStream.unit(lane)
        }
        return out
    }

    public func normals(count: Int) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { normals(offset: 0, count: count, into: $0.baseAddress!) }
        return out
    }
}

/// Vector helpers for the network's element-wise kernels (8 lanes: one AVX register).
typealias F8 = SIMD8<Float>

extension SIMD8 where Scalar == Float {
    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> F8 {
        UnsafeRawPointer(p).loadUnaligned(as: F8.self)
    }
    @inline(__always) func store(_ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: self, as: F8.self)
    }
}

/// e^x to ~2.3e-7 relative error: x = n·ln2 + r, |r| ≤ ln2/2, e^r by its degree-6 Taylor
/// polynomial, 2^n by building the exponent bits. Written with plain lane arithmetic only:
/// the generic SIMD helpers (`rounded`, `clamped`, float→int conversion) run lane by lane.
@inline(__always)
func fastExp(_ x: F8) -> F8 {
    let lo = F8(repeating: -87.0), hi = F8(repeating: 88.0)
    var xc = x.replacing(with: lo, where: x .< lo)
    xc = xc.replacing(with: hi, where: xc .> hi)
    // Round to nearest by adding 1.5·2²³: the sum's low mantissa bits then hold n.
    let shifter = F8(repeating: 12_582_912.0)
    let t = xc * 1.442_695_040_888_963_4 + shifter
    let n = t - shifter
    let r = xc - n * 0.693_145_751_953_125 - n * 1.428_606_765_330_187_0e-06
    var p = F8(repeating: 1.0 / 720)
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * r + 1
    p = p * r + 1
    let ni = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000
    return p * unsafeBitCast((ni &+ 127) &<< 23, to: F8.self)
}

/// SiLU(x) = x·σ(x) = x / (1 + e^−x).
@inline(__always)
func fastSiLU(_ x: F8) -> F8 { x / (1 + fastExp(-x)) }

/// Scalar e^x with the same method, for loop tails.
@inline(__always)
func fastExp(_ x: Float) -> Float { fastExp(F8(repeating: x))[0] }

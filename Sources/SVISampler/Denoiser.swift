import SVICore
import SVIFormats
@_exported import SVIContracts

/// An honest classical denoiser: the exact posterior-mean noise for an i.i.d. Gaussian prior
/// x₀ ~ N(μ, s²) per pixel (in [-1,1] units). With x_t = √ᾱ x₀ + √(1−ᾱ) ε,
/// E[ε | x_t] = √(1−ᾱ) (x_t − √ᾱ μ) / (ᾱ s² + 1 − ᾱ).
/// It knows nothing about images; it exists for tests and as a floor for comparisons.
public final class GaussianPriorDenoiser: Denoiser {
    public let mean: Float, std: Float
    let schedule = Schedule()

    public init(mean: Float = 0, std: Float = 0.5) { self.mean = mean; self.std = std }

    public var name: String { "gaussian-prior(mean \(mean), std \(std))" }
    public var preferredBatch: Int { 64 }

    public func predictNoise(_ x: UnsafePointer<Float>, count: Int, channels: Int, height: Int, width: Int,
                             timestep: Int, into eps: UnsafeMutablePointer<Float>) throws {
        let ab = schedule.alphaBar(at: timestep)
        let gain = Float((1 - ab).squareRoot() / (ab * Double(std * std) + 1 - ab))
        let shift = Float(ab.squareRoot()) * mean
        let n = count * channels * height * width
        Parallel.forEachChunk(n) { s, e in for i in s..<e { eps[i] = gain * (x[i] - shift) } }
    }
}

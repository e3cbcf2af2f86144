import Foundation
import SVICore
import SVIFormats
import SVIContracts

/// The U-Net as the sampler's ε_θ: frames of any size are reflect-padded on the bottom and
/// right to a multiple of 2^(levels−1) and cropped back; σ channels are dropped.
public final class UNetDenoiser: Denoiser {
    public let net: UNet
    public let name: String
    public let preferredBatch: Int

    public init(net: UNet, name: String, batch: Int = 4) {
        self.net = net; self.name = name; self.preferredBatch = batch
    }

    public func predictNoise(_ x: UnsafePointer<Float>, count: Int, channels: Int, height: Int, width: Int,
                             timestep: Int, into eps: UnsafeMutablePointer<Float>) throws {
        let m = net.config.sizeMultiple
        let hp = (height + m - 1) / m * m, wp = (width + m - 1) / m * m
        let input = Tensor(shape: [count, channels, hp, wp], zeroed: false)
        Parallel.forEach(count * channels) { p in
            let src = x + p * height * width, dst = input.data + p * hp * wp
            for yy in 0..<hp {
                let sy = reflect(yy, height), drow = dst + yy * wp, srow = src + sy * width
                drow.update(from: srow, count: width)
                for xx in width..<wp { drow[xx] = srow[reflect(xx, width)] }
            }
        }
        let out = try net.forward(input, timesteps: [Int](repeating: timestep, count: count))
        let oc = out.shape[1]
        Parallel.forEach(count * channels) { p in
            let i = p / channels, c = p % channels
            let src = UnsafePointer(out.data) + (i * oc + c) * hp * wp, dst = eps + p * height * width
            for yy in 0..<height { (dst + yy * width).update(from: src + yy * wp, count: width) }
        }
    }
}

/// Reflection without repeating the edge (…, 2, 1, [0 … n−1], n−2, …), for any index.
@inline(__always) func reflect(_ i: Int, _ n: Int) -> Int {
    if n == 1 { return 0 }
    let period = 2 * (n - 1)
    var m = i % period
    if m < 0 { m += period }
    return m < n ? m : period - m
}

/// Loads a model for `svi`: the weights and architecture read and checked by
/// `ModelSource.resolve` (SVIFormats, a checked module), then the network built from them, its
/// parameters checked against the weights by `CheckpointFit`.
public enum ModelLoader {
    public static func load(weights: String, preset: String?, config: String?) throws -> (UNet, Checkpoint, [String]) {
        let (ckpt, cfg, notes) = try ModelSource.resolve(weights: weights, preset: preset, config: config)
        return (try UNet(config: cfg, tensors: ckpt.tensors, source: weights), ckpt, notes)
    }
}

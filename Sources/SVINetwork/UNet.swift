import Foundation
import SVICore
import SVIFormats

/// guided-diffusion's `UNetModel` (DESIGN §5), built from a `UNetConfig` and a checkpoint
/// whose parameter names are the reference's own (`input_blocks.1.0.in_layers.0.weight`, …).
public final class UNet {
    enum Layer {
        case conv(Conv2d)
        case res(ResBlock)
        case attention(AttentionBlock)
        case downsample(Conv2d?)          // conv stride 2, or 2×2 average pool
        case upsample(Conv2d?)            // nearest ×2, then optional conv
    }

    public let config: UNetConfig
    public let parameterCount: Int
    let timeEmbed0: Linear, timeEmbed2: Linear
    let inputBlocks: [[Layer]]
    let middleBlock: [Layer]
    let outputBlocks: [[Layer]]
    let outNorm: GroupNorm, outConv: Conv2d
    let options: NetworkOptions

    /// The convolutions' arithmetic (fp32 by default). Set `bf16` only where
    /// `Precision.bf16Available` (`Precision.checkAvailable` says why not in one line).
    public var precision: Precision {
        get { options.precision }
        set { options.precision = newValue }
    }

    /// `--reference-kernels`: im2col + GEMM for every convolution (the plain path, for
    /// comparisons and parity) instead of Winograd F(4×4, 3×3) for stride-1 3×3 layers.
    public var referenceKernels: Bool {
        get { options.referenceKernels }
        set { options.referenceKernels = newValue }
    }

    /// Builds the network and takes every parameter from `tensors`; any missing, unexpected or
    /// mis-shaped tensor is an error naming them.
    public convenience init(config c: UNetConfig, tensors: [String: Tensor], source: String) throws {
        try self.init(config: c, parameters: ParameterSource(tensors, source: source), source: source)
    }

    /// The architecture without weights: for parameter counts and memory plans only (running
    /// it is an error).
    public convenience init(shapesOf c: UNetConfig) throws {
        try self.init(config: c, parameters: ParameterSource(shapesOnly: true), source: "shapes only")
    }

    /// Estimated bytes one forward pass needs beyond its weights, for `batch` frames of h×w:
    /// the skip connections of every input block and the working tensors of the widest block
    /// (its concatenated input, GroupNorm output, convolution output and residual), with 20%
    /// for transient copies, plus the Winograd scratch and ~128 MB for OpenBLAS's buffers and
    /// the runtime. Against measured peaks of ADM-256 at 256×256 (2 threads): −14% at batch 1,
    /// +10% at batch 4.
    public func activationBytes(batch: Int, height: Int, width: Int) -> Int {
        let structural = structuralActivationBytes(batch: batch, height: height, width: width)
        var widestConv = 0
        for level in 0..<config.levels where ((height >> level) + 3) / 4 * (((width >> level) + 3) / 4) >= Winograd43.minimumTiles {
            widestConv = max(widestConv, 36 * 2 * config.channels(level: level) * config.channels(level: level) * 4)
        }
        let scratch = widestConv + 2 * 4 * (8 << 20)
        return structural * 6 / 5 + scratch + (128 << 20)
    }

    func structuralActivationBytes(batch: Int, height: Int, width: Int) -> Int {
        let c = config
        var skips = c.channels(level: 0) * height * width
        var widest = 0
        for level in 0..<c.levels {
            let plane = (height >> level) * (width >> level)
            skips += c.numResBlocks * c.channels(level: level) * plane
            if level != c.levels - 1 { skips += c.channels(level: level) * plane / 4 }
            widest = max(widest, (2 * c.channels(level: level) + 3 * c.channels(level: level)) * plane)
        }
        return 4 * batch * (skips + widest)
    }

    /// Bytes of Winograd-transformed weights kept (layers up to the cache limit).
    public var winogradCacheBytes: Int {
        var total = 0
        func visit(_ conv: Conv2d) { if conv.k == 3 && conv.stride == 1 && 36 * conv.cin * conv.cout * 4 <= Winograd43.cacheLimitBytes { total += 36 * conv.cin * conv.cout * 4 } }
        func visit(_ layers: [Layer]) {
            for l in layers {
                switch l {
                case .conv(let c): visit(c)
                case .res(let r): visit(r.inConv); visit(r.outConv)
                case .upsample(let c?): visit(c)
                default: break
                }
            }
        }
        for b in inputBlocks { visit(b) }
        visit(middleBlock)
        for b in outputBlocks { visit(b) }
        visit(outConv)
        return total
    }

    /// The architecture with random weights (benchmarks).
    public convenience init(config c: UNetConfig, randomSeed: UInt64) throws {
        try self.init(config: c, parameters: ParameterSource(randomSeed: randomSeed), source: "random weights")
    }

    init(config c: UNetConfig, parameters p: ParameterSource, source: String) throws {
        try c.validate(source: source)
        if let hc = c.numHeadChannels {
            for l in 0..<c.levels where c.attentionDownsample.contains(1 << l) && c.channels(level: l) % hc != 0 {
                throw SVIError.file(source, "\(c.channels(level: l)) channels do not split into heads of \(hc)")
            }
        }
        config = c
        options = p.options
        let mc = c.modelChannels, embDim = 4 * mc
        timeEmbed0 = Linear(p, "time_embed.0", in: mc, out: embDim)
        timeEmbed2 = Linear(p, "time_embed.2", in: embDim, out: embDim)
        func attention(_ name: String, _ ch: Int, up: Bool) -> Layer {
            .attention(AttentionBlock(p, name, channels: ch, heads: c.heads(channels: ch, upsampling: up), newOrder: c.useNewAttentionOrder))
        }

        var ch = c.channels(level: 0)
        var inputs: [[Layer]] = [[.conv(Conv2d(p, "input_blocks.0.0", cin: c.inChannels, cout: ch, k: 3))]]
        var skipChannels = [ch]
        var ds = 1
        for level in 0..<c.levels {
            for _ in 0..<c.numResBlocks {
                let name = "input_blocks.\(inputs.count)"
                let out = c.channels(level: level)
                var layers: [Layer] = [.res(ResBlock(p, name + ".0", channels: ch, embChannels: embDim, outChannels: out, scaleShift: c.useScaleShiftNorm))]
                ch = out
                if c.attentionDownsample.contains(ds) { layers.append(attention(name + ".1", ch, up: false)) }
                inputs.append(layers)
                skipChannels.append(ch)
            }
            if level != c.levels - 1 {
                let name = "input_blocks.\(inputs.count).0"
                if c.resblockUpdown {
                    inputs.append([.res(ResBlock(p, name, channels: ch, embChannels: embDim, outChannels: ch, scaleShift: c.useScaleShiftNorm, resample: .down))])
                } else {
                    inputs.append([.downsample(c.convResample ? Conv2d(p, name + ".op", cin: ch, cout: ch, k: 3, stride: 2) : nil)])
                }
                ds *= 2
                skipChannels.append(ch)
            }
        }
        inputBlocks = inputs
        middleBlock = [
            .res(ResBlock(p, "middle_block.0", channels: ch, embChannels: embDim, outChannels: ch, scaleShift: c.useScaleShiftNorm)),
            attention("middle_block.1", ch, up: false),
            .res(ResBlock(p, "middle_block.2", channels: ch, embChannels: embDim, outChannels: ch, scaleShift: c.useScaleShiftNorm)),
        ]
        var outputs: [[Layer]] = []
        for level in (0..<c.levels).reversed() {
            for i in 0...c.numResBlocks {
                let name = "output_blocks.\(outputs.count)"
                let skip = skipChannels.removeLast()
                let out = c.channels(level: level)
                var layers: [Layer] = [.res(ResBlock(p, name + ".0", channels: ch + skip, embChannels: embDim, outChannels: out, scaleShift: c.useScaleShiftNorm))]
                ch = out
                if c.attentionDownsample.contains(ds) { layers.append(attention(name + ".\(layers.count)", ch, up: true)) }
                if level > 0 && i == c.numResBlocks {
                    let uname = name + ".\(layers.count)"
                    if c.resblockUpdown {
                        layers.append(.res(ResBlock(p, uname, channels: ch, embChannels: embDim, outChannels: ch, scaleShift: c.useScaleShiftNorm, resample: .up)))
                    } else {
                        layers.append(.upsample(c.convResample ? Conv2d(p, uname + ".conv", cin: ch, cout: ch, k: 3) : nil))
                    }
                    ds /= 2
                }
                outputs.append(layers)
            }
        }
        outputBlocks = outputs
        outNorm = GroupNorm(p, "out.0", channels: ch)
        outConv = Conv2d(p, "out.2", cin: ch, cout: c.outChannels, k: 3)
        try p.validate()
        parameterCount = p.declared.values.reduce(0) { $0 + $1.reduce(1, *) }
    }

    /// Sinusoidal timestep embedding (guided-diffusion's `timestep_embedding`, max period
    /// 10 000): [cos(t·f_i), sin(t·f_i)] with f_i = exp(−ln(10000)·i/half), computed in float64.
    static func timestepEmbedding(_ timesteps: [Int], dim: Int) -> Tensor {
        let half = dim / 2
        let e = Tensor(shape: [timesteps.count, dim])
        for (r, t) in timesteps.enumerated() {
            for i in 0..<half {
                let f = exp(-log(10000.0) * Double(i) / Double(half))
                e[r * dim + i] = Float(cos(Double(t) * f))
                e[r * dim + half + i] = Float(sin(Double(t) * f))
            }
        }
        return e
    }

    private func run(_ layers: [Layer], _ x: Tensor, _ siluEmb: Tensor) -> Tensor {
        var h = x
        for layer in layers {
            switch layer {
            case .conv(let conv): h = conv.forward(h)
            case .res(let r): h = r.forward(h, siluEmb: siluEmb)
            case .attention(let a): h = a.forward(h)
            case .downsample(let conv): h = conv.map { $0.forward(h) } ?? averagePool2(h)
            case .upsample(let conv):
                let u = upsampleNearest(h)
                h = conv.map { $0.forward(u) } ?? u
            }
        }
        return h
    }

    /// ε (and σ channels when learned) for a batch `x` [B][C][H][W] at per-image timesteps.
    public func forward(_ x: Tensor, timesteps: [Int]) throws -> Tensor {
        guard x.shape.count == 4, x.shape[1] == config.inChannels else {
            throw SVIError("the network takes [B][\(config.inChannels)][H][W] input, got \(x.shape)")
        }
        let m = config.sizeMultiple
        guard x.shape[2] % m == 0, x.shape[3] % m == 0 else {
            throw SVIError("frame size \(x.shape[3])×\(x.shape[2]) is not a multiple of \(m) (2^(levels−1)); pad it first")
        }
        guard timesteps.count == x.shape[0] else { throw SVIError("\(timesteps.count) timesteps for a batch of \(x.shape[0])") }
        let t = UNet.timestepEmbedding(timesteps, dim: config.modelChannels)
        let emb = timeEmbed2.forward(applySiLU(timeEmbed0.forward(t)))
        let siluEmb = applySiLU(emb)
        var h = x
        var skips: [Tensor] = []
        for block in inputBlocks { h = run(block, h, siluEmb); skips.append(h) }
        h = run(middleBlock, h, siluEmb)
        for block in outputBlocks {
            // Reassign before running, so neither the previous output nor the skip tensor stays
            // alive beside their concatenation (memory at the peak, in the widest blocks).
            h = Profiler.measure(.elementwise, flops: 0) { concatChannels(h, skips.removeLast()) }
            h = run(block, h, siluEmb)
        }
        return outConv.forward(outNorm.forward(h, silu: true))
    }

    private func applySiLU(_ x: Tensor) -> Tensor {
        let y = Tensor(shape: x.shape, zeroed: false)
        for i in 0..<x.count { y[i] = silu(x[i]) }
        return y
    }

    /// torch.cat([h, skip], dim=1).
    private func concatChannels(_ a: Tensor, _ b: Tensor) -> Tensor {
        let n = a.shape[0], ca = a.shape[1], cb = b.shape[1], hh = a.shape[2], ww = a.shape[3]
        let y = Tensor(shape: [n, ca + cb, hh, ww], zeroed: false)
        for i in 0..<n {
            y.frame(i).update(from: a.frame(i), count: a.frameSize)
            (y.frame(i) + a.frameSize).update(from: b.frame(i), count: b.frameSize)
        }
        return y
    }
}

import SVICore

extension UNetConfig {
    /// The architecture read off a checkpoint's tensor names and shapes: input channels,
    /// model channels, channel multipliers, levels, residual blocks per level, attention
    /// placement, scale-shift norm, the kind of up/down sampling and σ output. Heads and the
    /// attention order leave no trace in the shapes: `notes` says what was assumed for them.
    public static func infer(from t: [String: Tensor], source: String) throws -> (config: UNetConfig, notes: [String]) {
        func shape(_ name: String) -> [Int]? { t[name]?.shape }
        func has(_ prefix: String) -> Bool { t.keys.contains { $0.hasPrefix(prefix) } }
        func indices(_ prefix: String) -> [Int] {
            Set(t.keys.compactMap { k -> Int? in
                guard k.hasPrefix(prefix) else { return nil }
                return Int(k.dropFirst(prefix.count).prefix { $0 != "." })
            }).sorted()
        }
        guard let first = shape("input_blocks.0.0.weight"), first.count == 4, let last = shape("out.2.weight") else {
            throw SVIError.file(source, "not a guided-diffusion U-Net checkpoint (no input_blocks.0.0.weight / out.2.weight)")
        }
        let inCh = first[1], mc = first[0]
        guard mc >= 1, inCh >= 1, last.count == 4 else { throw SVIError.file(source, "input_blocks.0.0.weight / out.2.weight have shapes \(first) / \(last), which no U-Net has") }
        let inputCount = (indices("input_blocks.").last ?? 0) + 1
        let outputIdx = indices("output_blocks.")
        let outputCount = (outputIdx.last ?? -1) + 1
        // Output blocks that end in an upsampler: a second (or third, after attention) ResBlock, or a conv.
        var upRes = 0, upConv = 0
        for i in outputIdx {
            let p = "output_blocks.\(i)."
            let lastLayer = (indices(p).last ?? 0)
            if lastLayer >= 1 && has(p + "\(lastLayer).in_layers.") && !has(p + "\(lastLayer).qkv") { upRes += 1 }
            if lastLayer >= 1 && has(p + "\(lastLayer).conv.") { upConv += 1 }
        }
        let emptyInputs = (1..<max(inputCount, 1)).filter { !has("input_blocks.\($0).") }.count
        let levels = max(upRes, upConv, emptyInputs) + 1
        guard outputCount % levels == 0, outputCount / levels >= 2, inputCount == outputCount else {
            throw SVIError.file(source, "cannot read the block structure: \(inputCount) input blocks, \(outputCount) output blocks, \(levels) levels")
        }
        let nrb = outputCount / levels - 1
        var mult: [Double] = []
        var attention = Set<Int>()
        for l in 0..<levels {
            let idx = 1 + l * (nrb + 1)
            guard let o = shape("input_blocks.\(idx).0.out_layers.3.weight") else {
                throw SVIError.file(source, "missing input_blocks.\(idx).0.out_layers.3.weight for level \(l)")
            }
            guard o.count == 4, o[0] >= 1 else { throw SVIError.file(source, "input_blocks.\(idx).0.out_layers.3.weight has shape \(o), which no U-Net has") }
            mult.append(Double(o[0]) / Double(mc))
            if has("input_blocks.\(idx).1.qkv.") { attention.insert(1 << l) }
        }
        let scaleShift = (shape("input_blocks.1.0.emb_layers.1.weight")?[0] ?? 0) == 2 * Int(mult[0] * Double(mc))
        var attnChannels: [Int] = [Int(mult[levels - 1] * Double(mc))]   // the middle block's
        for l in 0..<levels where attention.contains(1 << l) { attnChannels.append(Int(mult[l] * Double(mc))) }
        let headChannels = attnChannels.allSatisfy { $0 % 64 == 0 } ? 64 : nil
        var c = UNetConfig(modelChannels: mc, channelMult: mult, numResBlocks: nrb, attentionDownsample: attention,
                           numHeads: 1, numHeadChannels: headChannels, useScaleShiftNorm: scaleShift,
                           resblockUpdown: upRes > 0, learnSigma: last[0] == 2 * inCh)
        c.inChannels = inCh
        c.convResample = upRes > 0 || upConv > 0
        try c.validate(source: source)
        let notes = [
            headChannels != nil ? "attention heads are not visible in the weights: assumed 64 channels per head (the published ADM checkpoints'); give --preset or --config if different"
                                : "attention heads are not visible in the weights: assumed 1 head; give --preset or --config if different",
            "attention channel order is not visible in the weights: assumed the legacy order (published checkpoints)",
        ]
        return (c, notes)
    }
}

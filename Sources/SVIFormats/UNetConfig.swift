import Foundation
import SVICore

/// The options of guided-diffusion's `create_model` (DESIGN §5), in svi's terms.
public struct UNetConfig: Equatable, Sendable, CustomStringConvertible {
    public var inChannels = 3
    public var modelChannels: Int
    public var channelMult: [Double]
    public var numResBlocks: Int
    /// Downsampling factors (1, 2, 4, …) at which attention blocks sit.
    public var attentionDownsample: Set<Int>
    /// Either a head count, or (when set) channels per head.
    public var numHeads: Int
    public var numHeadChannels: Int?
    public var numHeadsUpsample: Int?
    public var useScaleShiftNorm: Bool
    public var resblockUpdown: Bool
    /// Conv (true) or parameter-free (avg-pool / nearest) resampling when not `resblockUpdown`.
    public var convResample = true
    public var learnSigma: Bool
    public var useNewAttentionOrder = false

    public var outChannels: Int { learnSigma ? 2 * inChannels : inChannels }
    public var levels: Int { channelMult.count }
    public func channels(level: Int) -> Int { Int(channelMult[level] * Double(modelChannels)) }

    public var description: String {
        let heads = numHeadChannels.map { "\($0) head channels" } ?? "\(numHeads) heads"
        let mult = channelMult.map { $0 == $0.rounded() ? String(Int($0)) : String($0) }.joined(separator: ",")
        return "\(modelChannels) ch, mult \(mult), \(numResBlocks) res blocks, \(attentionDownsample.isEmpty ? "attention in the middle block only" : "attention at ds " + attentionDownsample.sorted().map(String.init).joined(separator: ",")), \(heads), "
            + (useScaleShiftNorm ? "scale-shift, " : "") + (resblockUpdown ? "resblock up/down, " : (convResample ? "conv up/down, " : "pool/nearest up/down, "))
            + (learnSigma ? "learned σ" : "fixed σ") + (useNewAttentionOrder ? ", new attention order" : "")
    }

    /// Checkpoints whose options are known by name.
    public static let presets: [String: UNetConfig] = [
        "adm-256-uncond": UNetConfig(modelChannels: 256, channelMult: [1, 1, 2, 2, 4, 4], numResBlocks: 2,
                                     attentionDownsample: [8, 16, 32], numHeads: 4, numHeadChannels: 64,
                                     useScaleShiftNorm: true, resblockUpdown: true, learnSigma: true),
        "adm-ffhq-256": UNetConfig(modelChannels: 128, channelMult: [1, 1, 2, 2, 4, 4], numResBlocks: 1,
                                   attentionDownsample: [16], numHeads: 4, numHeadChannels: 64,
                                   useScaleShiftNorm: true, resblockUpdown: true, learnSigma: true),
    ]

    public init(modelChannels: Int, channelMult: [Double], numResBlocks: Int, attentionDownsample: Set<Int>,
                numHeads: Int, numHeadChannels: Int?, useScaleShiftNorm: Bool, resblockUpdown: Bool, learnSigma: Bool) {
        self.modelChannels = modelChannels; self.channelMult = channelMult; self.numResBlocks = numResBlocks
        self.attentionDownsample = attentionDownsample; self.numHeads = numHeads; self.numHeadChannels = numHeadChannels
        self.useScaleShiftNorm = useScaleShiftNorm; self.resblockUpdown = resblockUpdown; self.learnSigma = learnSigma
    }

    /// Parses guided-diffusion's option names (`model_and_diffusion_defaults` fills the rest),
    /// from a JSON object or one holding it under "config" (as the fixtures' fixture.json).
    public static func fromJSON(_ data: Data, source: String) throws -> UNetConfig {
        guard var obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw SVIError.file(source, "not a JSON object of model options")
        }
        if let inner = obj["config"] as? [String: Any] { obj = inner }
        let known: Set<String> = ["image_size", "num_channels", "num_res_blocks", "channel_mult", "learn_sigma", "attention_resolutions",
                                  "num_heads", "num_head_channels", "num_heads_upsample", "resblock_updown", "use_scale_shift_norm",
                                  "use_new_attention_order", "dropout", "class_cond", "use_checkpoint", "use_fp16", "in_channels", "conv_resample"]
        if let unknown = obj.keys.first(where: { !known.contains($0) }) {
            throw SVIError.file(source, "unknown model option '\(unknown)' (guided-diffusion names: \(known.sorted().joined(separator: ", ")))")
        }
        func int(_ k: String, _ d: Int) throws -> Int {
            guard let v = obj[k] else { return d }
            if let i = v as? Int { return i }
            if let s = v as? String, let i = Int(s) { return i }
            throw SVIError.file(source, "model option '\(k)' must be an integer")
        }
        func bool(_ k: String, _ d: Bool) throws -> Bool {
            guard let v = obj[k] else { return d }
            if let b = v as? Bool { return b }
            throw SVIError.file(source, "model option '\(k)' must be true or false")
        }
        func list(_ k: String, _ d: String) throws -> [Double] {
            let v = obj[k] ?? d
            if let s = v as? String {
                if s.trimmingCharacters(in: .whitespaces).isEmpty { return [] }
                let parts = s.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
                guard parts.allSatisfy({ $0 != nil }) else { throw SVIError.file(source, "model option '\(k)' must be comma-separated numbers, got '\(s)'") }
                return parts.map { $0! }
            }
            if let a = v as? [NSNumber] { return a.map(\.doubleValue) }
            throw SVIError.file(source, "model option '\(k)' must be a string like \"1,2,2\" or a list")
        }
        if try bool("class_cond", false) { throw SVIError.file(source, "class-conditional models are not supported") }
        let imageSize = try int("image_size", 64)
        var mult = try list("channel_mult", "")
        if mult.isEmpty {
            switch imageSize {
            case 512: mult = [0.5, 1, 1, 2, 2, 4, 4]
            case 256: mult = [1, 1, 2, 2, 4, 4]
            case 128: mult = [1, 1, 2, 3, 4]
            case 64: mult = [1, 2, 3, 4]
            default: throw SVIError.file(source, "no default channel_mult for image_size \(imageSize); give channel_mult")
            }
        }
        var ds = Set<Int>()
        guard imageSize >= 1, imageSize <= FormatLimits.maxSide else { throw SVIError.file(source, "model option 'image_size' must be between 1 and \(FormatLimits.maxSide), got \(imageSize)") }
        for r in try list("attention_resolutions", "16,8") {
            // Range-checked before the conversion to Int (a 60-digit number would trap there).
            guard r.isFinite, r >= 1, r <= Double(imageSize), r == r.rounded(), imageSize % Int(r) == 0 else { throw SVIError.file(source, "attention resolution \(r) does not divide image_size \(imageSize)") }
            ds.insert(imageSize / Int(r))
        }
        let headChannels = try int("num_head_channels", -1)
        let headsUp = try int("num_heads_upsample", -1)
        // -1 is guided-diffusion's "not set"; any other value below 1 is a mistake.
        for (k, v) in [("num_head_channels", headChannels), ("num_heads_upsample", headsUp)] where v < 1 && v != -1 {
            throw SVIError.file(source, "model option '\(k)' must be positive or -1 (unset), got \(v)")
        }
        var c = UNetConfig(modelChannels: try int("num_channels", 128), channelMult: mult, numResBlocks: try int("num_res_blocks", 2),
                           attentionDownsample: ds, numHeads: try int("num_heads", 4), numHeadChannels: headChannels > 0 ? headChannels : nil,
                           useScaleShiftNorm: try bool("use_scale_shift_norm", true), resblockUpdown: try bool("resblock_updown", false),
                           learnSigma: try bool("learn_sigma", false))
        c.numHeadsUpsample = headsUp > 0 ? headsUp : nil
        c.useNewAttentionOrder = try bool("use_new_attention_order", false)
        c.inChannels = try int("in_channels", 3)
        c.convResample = try bool("conv_resample", true)
        guard c.modelChannels > 0, c.numResBlocks >= 1, !mult.isEmpty else { throw SVIError.file(source, "model options describe an empty network") }
        try c.validate(source: source)
        return c
    }

    public static func load(_ path: String) throws -> UNetConfig {
        try fromJSON(try SmallFile.read(path, limit: 1 << 20, what: "model options file"), source: path)
    }

    /// Every option in the range a real network has, so that no later division, loop or
    /// allocation sees a zero, a negative, a NaN or an absurd size: each field is named.
    public func validate(source: String) throws {
        func bad(_ field: String, _ why: String) -> SVIError { SVIError.file(source, "model option '\(field)' \(why)") }
        guard (1...FormatLimits.maxChannels).contains(inChannels) else { throw bad("in_channels", "must be between 1 and \(FormatLimits.maxChannels), got \(inChannels)") }
        guard (32...8192).contains(modelChannels), modelChannels % 32 == 0 else {
            throw bad("num_channels", "must be a multiple of 32 (GroupNorm's groups) between 32 and 8192, got \(modelChannels)")
        }
        guard (1...10).contains(channelMult.count) else { throw bad("channel_mult", "must list 1 to 10 levels, got \(channelMult.count)") }
        for m in channelMult {
            guard m.isFinite, m > 0, m <= 64 else { throw bad("channel_mult", "entries must be finite numbers in (0, 64], got \(m)") }
            let ch = m * Double(modelChannels)
            guard ch == ch.rounded(), Int(ch) % 32 == 0, Int(ch) <= 16_384 else {
                throw bad("channel_mult", "gives \(ch) channels at a level; each level needs a whole multiple of 32 up to 16384")
            }
        }
        guard (1...32).contains(numResBlocks) else { throw bad("num_res_blocks", "must be between 1 and 32, got \(numResBlocks)") }
        // Weights of the residual convolutions alone: refuse networks no node could hold.
        let convWeights = (0..<levels).reduce(0.0) { $0 + Double(numResBlocks + 1) * 2 * 9 * pow(Double(channels(level: $1)), 2) }
        guard convWeights <= Double(1 << 34) else { throw bad("num_channels/channel_mult", "describe a network of ~\(Int(convWeights / 1e9)) G parameters; svi holds up to 17 G") }
        for ds in attentionDownsample {
            guard ds >= 1, ds <= 1 << (levels - 1), ds & (ds - 1) == 0 else {
                throw bad("attention_resolutions", "puts attention at downsampling \(ds), which is not one of the network's levels (1…\(1 << (levels - 1)))")
            }
        }
        if let hc = numHeadChannels {
            guard hc >= 1 else { throw bad("num_head_channels", "must be positive or -1, got \(hc)") }
        } else {
            guard numHeads >= 1, numHeads <= 1024 else { throw bad("num_heads", "must be between 1 and 1024, got \(numHeads)") }
        }
        if let u = numHeadsUpsample { guard u >= 1, u <= 1024 else { throw bad("num_heads_upsample", "must be between 1 and 1024 or -1, got \(u)") } }
        // Attention channels must split evenly into heads (the middle block and each attention level).
        var attentionChannels = [(channels(level: levels - 1), false)]
        for l in 0..<levels where attentionDownsample.contains(1 << l) { attentionChannels += [(channels(level: l), false), (channels(level: l), true)] }
        for (ch, up) in attentionChannels {
            let h = heads(channels: ch, upsampling: up)
            guard h >= 1, ch % h == 0, numHeadChannels.map({ ch % $0 == 0 }) ?? true else {
                throw bad(numHeadChannels != nil ? "num_head_channels" : "num_heads", "does not divide the \(ch) channels of an attention block into whole heads")
            }
        }
    }

    /// Heads of an attention block with `channels` channels (guided-diffusion's rule).
    public func heads(channels: Int, upsampling: Bool) -> Int {
        if let hc = numHeadChannels { return channels / hc }
        return upsampling ? (numHeadsUpsample ?? numHeads) : numHeads
    }

    /// Frame sides must be multiples of this (2^(levels−1)).
    public var sizeMultiple: Int { 1 << (levels - 1) }
}

import ArgumentParser
import Foundation
import SVICore
import SVIPipeline
import SVIFormats
import SVINetwork

struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Inspect and run diffusion model checkpoints (guided-diffusion ADM U-Net).",
        subcommands: [Info.self, Run.self])

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a checkpoint's architecture (from the config beside it, else inferred from the weights), parameter count and storage dtype.")

        @Argument(help: "Checkpoint (.safetensors, or PyTorch zip .pt/.pth); default: the embedded prior.")
        var checkpointPath: String?

        @Option(name: .long, help: "The checkpoint, as restore and bench name it (instead of the argument).")
        var model: String?

        @Flag(name: .long, help: "Print JSON.")
        var json = false

        func run() throws {
            if checkpointPath != nil && model != nil { throw ValidationError("give the checkpoint once: as the argument or with --model") }
            let checkpoint = try model ?? checkpointPath ?? EmbeddedPrior.locate()
            let (ckpt, config, notes, net) = try ModelInspection.inspect(checkpoint)
            if json {
                let obj: [String: Any] = [
                    "file": checkpoint, "format": ckpt.format, "storage_dtypes": ckpt.storageDTypes.sorted(),
                    "parameters": ckpt.parameterCount, "tensors": ckpt.tensors.count, "architecture": config.description,
                    "model_channels": config.modelChannels, "channel_mult": config.channelMult, "num_res_blocks": config.numResBlocks,
                    "attention_downsample": config.attentionDownsample.sorted(), "learn_sigma": config.learnSigma,
                    "use_scale_shift_norm": config.useScaleShiftNorm, "resblock_updown": config.resblockUpdown,
                    "size_multiple": config.sizeMultiple, "notes": notes, "fingerprint": ckpt.fingerprint,
                ]
                print(String(data: try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys]), encoding: .utf8)!)
                return
            }
            print("file:          \(checkpoint)")
            print("format:        \(ckpt.format), storage \(ckpt.storageDTypes.sorted().joined(separator: ", "))")
            print("parameters:    \(ckpt.parameterCount) in \(ckpt.tensors.count) tensors (model uses \(net.parameterCount))")
            print("architecture:  \(config)")
            print("input:         \(config.inChannels) channels, frame sides multiple of \(config.sizeMultiple)")
            for n in notes { print("note:          \(n)") }
        }
    }

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the network once: raw output (ε, plus σ channels when learned) for a batch of frames.")

        @Option(name: .long, help: "Checkpoint (.safetensors or .pt).")
        var model: String?

        @Option(name: .long, help: .hidden)
        var weights: String?

        @Option(name: .long, help: "Architecture preset (adm-256-uncond, adm-ffhq-256).")
        var preset: String?

        @Option(name: .long, help: "Architecture as guided-diffusion JSON options (or a fixture.json with a \"config\" key).")
        var config: String?

        @Option(name: .long, help: "Input batch, float32 .npy [B][C][H][W] in [-1,1].")
        var input: String

        @Option(name: .long, help: "Timesteps, int64 .npy with B entries (or one for all).")
        var timesteps: String

        @Option(name: .shortAndLong, help: "Output .npy [B][C_out][H][W].")
        var output: String

        @Flag(name: .long, help: "Replace OUT if it exists.")
        var overwrite = false

        @OptionGroup var runtime: RuntimeOptions
        @OptionGroup var kernels: KernelOptions

        func validate() throws {
            if preset != nil && config != nil { throw ValidationError("give --preset or --config, not both") }
        }

        func run() throws {
            try runtime.apply()
            try OutputGuard.check(outputs: [(output, "-o")], inputs: [input, timesteps] + [model, weights, config].compactMap { $0 }, overwrite: overwrite)
            try AtomicFile.checkWritable(output, overwrite: overwrite)
            guard let weights = try modelOption(model: model, weights: self.weights) else { throw ValidationError("give the checkpoint with --model") }
            let (net, _, notes) = try ModelLoader.load(weights: weights, preset: preset, config: config)
            try kernels.apply(to: net)
            let progress = Progress(quiet: runtime.quiet)
            for n in notes { progress.note("note: \(n)") }
            let x = try NPY.readFloat32(input)
            var t = try NPY.readIntegers(timesteps).values
            if t.count == 1 && x.shape.first ?? 0 > 1 { t = [Int](repeating: t[0], count: x.shape[0]) }
            guard t.allSatisfy({ (0..<1000).contains($0) }) else { throw SVIError.file(timesteps, "timesteps must be in 0…999") }
            let y: Tensor
            do { y = try net.forward(x, timesteps: t) } catch let e as SVIError { throw e.about(input) }
            try NPY.write(y, to: output, overwrite: overwrite)
        }
    }
}

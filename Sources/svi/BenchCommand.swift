import ArgumentParser
import Foundation
import SVICore
import SVIFormats
import SVIMedia
import SVINetwork
import SVISampler

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks.",
        subcommands: [UNetBench.self])

    struct UNetBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "unet",
            abstract: "Time U-Net forward passes: seconds per frame, GFLOP/s, peak memory.",
            discussion: "Without --model the network gets random weights made in-process (the architecture is what matters for speed).")

        @Option(name: .long, help: "Architecture preset (adm-256-uncond, adm-ffhq-256). Default adm-256-uncond.")
        var preset: String?

        @Option(name: .long, help: "Architecture as guided-diffusion JSON options.")
        var config: String?

        @Option(name: .long, help: "Checkpoint to time instead of random weights.")
        var model: String?

        @Option(name: .long, help: .hidden)
        var weights: String?

        @Option(name: .long, help: "Frame size WxH, as everywhere.")
        var size: String = "256x256"

        @Option(name: .long, help: "Frames per forward pass.")
        var batch: Int = 1

        @Option(name: .long, help: "Timed runs after one warm-up; the median is reported.")
        var repeats: Int = 3

        @Flag(name: .long, help: "Print time and GFLOP/s per kind of layer.")
        var profile = false

        @Flag(name: .long, help: "Print one line of JSON at the end.")
        var json = false

        @Option(name: .long, help: "Read the input from this .npy and write the output to --output (for cross-checks with other engines).")
        var input: String?

        @Option(name: .long, help: "Output .npy of the last run (with --input).")
        var output: String?

        @Flag(name: .long, help: "Replace --output if it exists.")
        var overwrite = false

        @Option(name: .long, help: "Timestep of the runs.")
        var timestep: Int = 500

        @OptionGroup var tiles: TileOptions

        @Option(name: .long, help: "Tiles per network call with --tile.")
        var tileBatch: Int = 1

        @Option(name: .long, help: "Untimed passes before the timed ones.")
        var warmup: Int = 1

        @OptionGroup var runtime: RuntimeOptions
        @OptionGroup var kernels: KernelOptions

        func run() throws {
            try runtime.apply()
            kernels.apply()
            if let o = output {
                guard input != nil else { throw ValidationError("--output is for --input (the output of that input)") }
                try OutputGuard.check(outputs: [(o, "--output")], inputs: [input, model, weights, config].compactMap { $0 }, overwrite: overwrite)
                try AtomicFile.checkWritable(o, overwrite: overwrite)
            }
            guard let (w, h) = FrameSelection.parseSize(size), w * h <= 1 << 24 else { throw ValidationError("--size must be WxH of at most 16.7 M pixels (4096x4096), e.g. 256x256") }
            let tile = tiles.tile ?? 0, overlap = tiles.tileOverlap ?? tile / 4
            let weights = try modelOption(model: model, weights: self.weights)
            let net: UNet
            var label: String
            if let wpath = weights {
                net = try ModelLoader.load(weights: wpath, preset: preset, config: config).0
                label = wpath
            } else {
                let cfg: UNetConfig
                if let c = config { cfg = try UNetConfig.load(c) } else {
                    let name = preset ?? "adm-256-uncond"
                    guard let p = UNetConfig.presets[name] else { throw ValidationError("unknown preset '\(name)'") }
                    cfg = p
                }
                net = try UNet(config: cfg, randomSeed: 1)
                label = (preset ?? (config == nil ? "adm-256-uncond" : config!)) + " (random weights)"
            }
            let x: Tensor
            if let i = input {
                x = try NPY.readFloat32(i)
            } else {
                x = Tensor(shape: [batch, net.config.inChannels, h, w])
                RandomStream(seed: 2, purpose: .initial).normals(offset: 0, count: x.count, into: x.data)
            }
            let frames = x.shape[0]
            let t = [Int](repeating: timestep, count: frames)
            var times: [Double] = []
            // Whole frames: the network's raw output. Tiles: ε through the tiled denoiser, as
            // restore runs it (tiles of all frames, --tile-batch per call, blended back).
            let tiled = tile > 0 ? TiledDenoiser(inner: UNetDenoiser(net: net, name: label, batch: tileBatch), tile: tile, overlap: overlap, tileBatch: tileBatch) : nil
            let eps = tiled.map { _ in Tensor(shape: x.shape) }
            func pass() throws -> Tensor {
                if let d = tiled, let e = eps {
                    try d.predictNoise(x.data, count: frames, channels: x.shape[1], height: x.shape[2], width: x.shape[3], timestep: timestep, into: e.data)
                    return e
                }
                return try net.forward(x, timesteps: t)
            }
            var y = x
            for _ in 0..<warmup { y = try pass() }
            Profiler.reset()
            Profiler.enabled = profile
            for _ in 0..<max(1, repeats) {
                let t0 = Date()
                y = try pass()
                times.append(Date().timeIntervalSince(t0))
            }
            let flopsPerRun = Profiler.totalFlops / Double(max(1, repeats))
            let median = times.sorted()[times.count / 2]
            let m = MachineInfo.current
            let tiling = tiled.map { d -> String in
                let g = d.grid(height: x.shape[2], width: x.shape[3])
                return ", tiles \(g.tileWidth)x\(g.tileHeight) overlap \(overlap) (\(g.xs.count)x\(g.ys.count) per frame, \(tileBatch) per call)"
            } ?? ""
            print("svi bench unet: \(label), \(net.parameterCount) parameters (weights \(net.parameterCount * 4 / 1_000_000) MB), input \(x.shape)\(tiling)")
            print("machine: \(m.cpu), \(m.cores) cores, ISA \(m.isa), svi kernels \(m.kernelsISA), OpenBLAS core \(m.openblasCore), threads \(Parallel.threads)")
            print(String(format: "median %.3f s per pass, %.3f s per frame, %.1f GFLOP per frame, %.1f GFLOP/s, peak RSS %.0f MB",
                         median, median / Double(frames), flopsPerRun / 1e9 / Double(frames), flopsPerRun / 1e9 / median, peakResidentMB() ?? -1))
            print("runs (s): " + times.map { String(format: "%.3f", $0) }.joined(separator: " "))
            if profile {
                print(Profiler.report())
            }
            if let o = output { try NPY.write(y, to: o, overwrite: overwrite) }
            if json {
                let obj: [String: Any] = ["seconds_per_frame": median / Double(frames), "batch": frames, "gflops": flopsPerRun / 1e9 / median,
                                          "runs": times, "peak_rss_mb": peakResidentMB() ?? -1, "threads": Parallel.threads,
                                          "weights_mb": Double(net.parameterCount * 4) / 1e6, "tile": tile, "tile_overlap": tile > 0 ? overlap : 0, "tile_batch": tileBatch,
                                          "width": x.shape[3], "height": x.shape[2],
                                          "cpu": m.cpu, "isa": m.isa, "kernels_isa": m.kernelsISA, "openblas_core": m.openblasCore]
                print(String(data: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), encoding: .utf8)!)
            }
        }
    }
}

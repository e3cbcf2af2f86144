import Foundation
import SVICore
import SVIFormats
import SVINetwork
import SVISampler

/// `svi bench unet` without its terminal: the network timed (a checkpoint, a preset or a
/// config with random weights), its passes — whole frames, or ε through the tiled denoiser as
/// a restore runs it — and what they measured. The command parses options and prints.
package enum UNetBenchmark {
    package struct Settings: Sendable {
        package var width = 256, height = 256
        package var batch = 1
        package var repeats = 3
        package var warmup = 1
        package var timestep = 500
        /// Time every layer (`Profiler`), not only count its FLOPs.
        package var profile = false
        /// 0: whole frames. Otherwise ε through `TiledDenoiser` on tile×tile tiles.
        package var tile = 0, tileOverlap = 0, tileBatch = 1
        package init() {}
    }

    package struct Result {
        package let times: [Double]
        /// FLOPs of one timed pass.
        package let flopsPerPass: Double
        package let frames: Int
        package let inputShape: [Int]
        /// The tile grid, when tiled: (tile width, tile height, tiles across, tiles down).
        package let grid: (width: Int, height: Int, across: Int, down: Int)?
        /// Per kind of layer (with `Settings.profile`).
        package let profile: String?
        /// The last pass's output (ε).
        package let output: Tensor

        package var median: Double { times.sorted()[times.count / 2] }
        package var secondsPerFrame: Double { median / Double(frames) }
        package var gflops: Double { flopsPerPass / 1e9 / median }
    }

    /// The network to time: the checkpoint at `model` with its config (preset/config name its
    /// architecture where the file does not), else a preset or a config with random weights
    /// (ADM-256 by default); and how a report names it.
    package static func network(model: String?, preset: String?, config: String?) throws -> (UNet, String) {
        if let path = model {
            return (try ModelLoader.load(weights: path, preset: preset, config: config).0, path)
        }
        let cfg: UNetConfig
        if let c = config { cfg = try UNetConfig.load(c) } else {
            let name = preset ?? "adm-256-uncond"
            guard let p = UNetConfig.presets[name] else {
                throw SVIError.option("--preset", "unknown preset '\(name)' (one of \(UNetConfig.presets.keys.sorted().joined(separator: ", ")))")
            }
            cfg = p
        }
        return (try UNet(config: cfg, randomSeed: 1), (preset ?? config ?? "adm-256-uncond") + " (random weights)")
    }

    /// Times `settings.repeats` passes after `settings.warmup` untimed ones, on `input` (or
    /// normal noise of the settings' size and batch, seed 2).
    package static func run(_ net: UNet, label: String, input: Tensor?, settings s: Settings) throws -> Result {
        let x: Tensor
        if let i = input { x = i } else {
            x = Tensor(shape: [s.batch, net.config.inChannels, s.height, s.width])
            RandomStream(seed: 2, purpose: .initial).normals(offset: 0, count: x.count, into: x.data)
        }
        let frames = x.shape[0]
        let t = [Int](repeating: s.timestep, count: frames)
        // Whole frames: the network's raw output. Tiles: ε through the tiled denoiser, as
        // restore runs it (tiles of all frames, tileBatch per call, blended back).
        let tiled = s.tile > 0
            ? TiledDenoiser(inner: UNetDenoiser(net: net, name: label, batch: s.tileBatch), tile: s.tile, overlap: s.tileOverlap, tileBatch: s.tileBatch)
            : nil
        let eps = tiled.map { _ in Tensor(shape: x.shape) }
        func pass() throws -> Tensor {
            if let d = tiled, let e = eps {
                try d.predictNoise(x.data, count: frames, channels: x.shape[1], height: x.shape[2], width: x.shape[3], timestep: s.timestep, into: e.data)
                return e
            }
            return try net.forward(x, timesteps: t)
        }
        var y = x
        for _ in 0..<s.warmup { y = try pass() }
        // The timed passes charge a profile of their own (FLOPs always, time with `profile`).
        let record = Profiler.Profile(timing: s.profile)
        var times: [Double] = []
        try Profiler.record(into: record) {
            for _ in 0..<max(1, s.repeats) {
                let t0 = Date()
                y = try pass()
                times.append(Date().timeIntervalSince(t0))
            }
        }
        let grid = tiled.map { d -> (Int, Int, Int, Int) in
            let g = d.grid(height: x.shape[2], width: x.shape[3])
            return (g.tileWidth, g.tileHeight, g.xs.count, g.ys.count)
        }
        return Result(times: times, flopsPerPass: record.totalFlops / Double(max(1, s.repeats)), frames: frames, inputShape: x.shape,
                      grid: grid, profile: s.profile ? record.report() : nil, output: y)
    }
}

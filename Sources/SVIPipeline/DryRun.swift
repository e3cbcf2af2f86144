import Foundation
import SVICore
import SVIFormats
import SVICluster
import SVIOperators
import SVISampler
import SVINetwork
import SVIMedia

/// `svi restore --dry-run`: what a job will need, per rank, before it is launched — without
/// running the network over the video (one calibration call at most).
package struct DryRunPlan: Encodable {
    package var ranks: Int, frames: Int, framesPerRankMax: Int, framesPerRankMin: Int, halo: Int
    package var frameShape: [Int], steps: Int, cgSteps: Int, batch: Int
    package var model: String, parameters: Int
    package var weightsMB: Double, winogradCacheMB: Double, activationsMB: Double, videoStateMB: Double, totalPerRankMB: Double
    /// The process before any of the job (runtime, libraries), rank 0's I/O buffers, and the
    /// resulting peak predicted for rank 0 (the busiest: largest block plus the I/O).
    package var runtimeMB: Double, rootIOMB: Double, predictedPeakRank0MB: Double
    /// This dry-run's own peak memory (it allocates nothing of the job).
    package var dryRunPeakMemoryMB: Double?
    package var segments: Int, segmentFrames: Int, overlap: Int, segmentStarts: [Int], segmentReason: String
    package var secondsPerFrame: Double, secondsPerFrameSource: String, dataConsistencySecondsPerStep: Double
    package var secondsPerStep: Double, secondsForJob: Double, bytesExchangedPerStepPerRank: Int
    /// Seconds of warning a scheduler should give before a time limit (`--signal=B:USR1@N`):
    /// the step under way must finish and its checkpoint be written.
    package var signalMarginSeconds: Int
    /// The network's tiles (nil: whole frames).
    package var tiles: TilePolicy?
    package var warnings: [String]
    package var machine = MachineInfo.current
    /// The settings planned for (`RestoreSettings`, as the run's report has them).
    package var request: RestoreSettings?
    /// For the terminal (not in the JSON): the input, the degradation as solved, the noise
    /// line and one checkpoint's write time.
    package var input = "", degradation = "", noise = "", checkpointSeconds = 0.0

    package enum CodingKeys: String, CodingKey {
        case ranks, frames, halo, steps, batch, model, parameters, tiles, warnings, machine, request
        case framesPerRankMax = "frames_per_rank_max", framesPerRankMin = "frames_per_rank_min", frameShape = "frame_shape"
        case cgSteps = "cg_steps", weightsMB = "weights_mb", winogradCacheMB = "winograd_cache_mb", activationsMB = "activations_mb"
        case videoStateMB = "video_state_mb", totalPerRankMB = "total_per_rank_mb", secondsPerFrame = "seconds_per_frame"
        case secondsPerFrameSource = "seconds_per_frame_source", dataConsistencySecondsPerStep = "data_consistency_seconds_per_step"
        case secondsPerStep = "seconds_per_step", secondsForJob = "seconds_for_job", bytesExchangedPerStepPerRank = "bytes_exchanged_per_step_per_rank"
        case signalMarginSeconds = "signal_margin_s", runtimeMB = "runtime_mb", rootIOMB = "root_io_mb", predictedPeakRank0MB = "predicted_peak_rank0_mb"
        case dryRunPeakMemoryMB = "dry_run_peak_memory_mb"
        case segments, segmentFrames = "segment_frames", overlap, segmentStarts = "segment_starts", segmentReason = "segment_reason"
    }
}

extension RestoreSettings {
    /// The dry-run's plan (`RestorePipeline.plan`).
    package func dryRunPlan(ranks launched: Int) throws -> DryRunPlan {
        // Nothing of the job is allocated: headers only (a video's container, an .npy's header).
        let runtimeBytes = currentResidentBytes() ?? 0
        try checkOutputs(writingVideo: false)
        let sel = try selection()
        let (frames, measured) = try measuredShape(sel)
        let sidecar = try Sidecar.load(for: input)
        guard let specText = degradation ?? sidecar?.degradation else {
            throw SVIError.file(input, "no degradation given: pass --degradation SPEC (no sidecar \(Sidecar.path(for: input)) found)")
        }
        let statedSpec = try DegradationSpec.parse(specText)
        let frame = try originalFrame(measured: measured, spec: statedSpec, sidecar: sel.crop == nil && sel.size == nil ? sidecar : nil)
        // The run's settings follow the measurement's effective noise (a decode of its first
        // frames, as the restore does), so the plan counts the steps the run will take.
        let noise = try NoiseProbe.measure(input, selection: sel, firstIndex: sel.range?.lowerBound ?? 0, frames: frames,
                                           stated: statedSpec.noiseSigma, override: noiseSigma, progress: Progress(quiet: true))
        var spec = statedSpec
        spec.noiseSigma = noise.effective
        let ranks = planRanks ?? launched
        guard ranks >= 1 else { throw SVIError.option("--plan-ranks", "--plan-ranks must be at least 1") }
        let settings = samplerSettings(for: spec, seed: 0, noise: noise)
        let halo = (try spec.temporalKernel())?.halo ?? 0
        var warnings: [String] = []

        let cost = try networkCost(frame: frame)
        let modelName = cost.model, parameters = cost.parameters, weightsBytes = cost.weightsBytes, cacheBytes = cost.cacheBytes
        let activationBytes = cost.activationBytes, perFrame = cost.secondsPerFrame, source = cost.source, tiles = cost.tiles
        // Segments, by the plan restore makes (the same function), then the busiest rank.
        let fixed = runtimeBytes + Double(weightsBytes + cacheBytes + activationBytes)
        let (segments, segmentReason) = try planSegments(frames: frames, ranks: ranks, original: [frame.channels, frame.height, frame.width], measured: measured,
                                                         spec: spec, fixedBytes: fixed)
        let partition = FramePartition(totalFrames: segments.segmentFrames, ranks: ranks)
        let most = partition.range(of: 0).count, least = partition.range(of: ranks - 1).count
        if ranks > segments.segmentFrames { warnings.append("\(ranks) ranks for segments of \(segments.segmentFrames) frames: svi refuses more ranks than frames per segment") }
        if least < halo { warnings.append("blocks of \(least) frames are shorter than the temporal halo (\(halo)): halo frames come from several ranks (works; more messages)") }
        if segments.count > 1, let k = try spec.temporalKernel(), k.weights.allSatisfy({ $0 == k.weights[0] }) && k.width > 1 {
            warnings.append("a uniform temporal blur couples the whole video (its inverse is determined only by the video's ends): segments lose quality against one segment (EVALUATION.md, \"Segments\"); give more --memory-per-rank or --segment-frames \(frames) if it fits")
        }
        let dcSeconds = try dataConsistencySeconds(spec: spec, frame: frame, settings: settings, halo: halo, blockFrames: most)
        let blockBytes = MemoryModel.blockBytes(solver(for: spec), frames: most, frameValues: frame.count, measurementValues: measured.reduce(1, *),
                                                spatial: spec.hasSpatialPart, batch: batch)
        let rootIO = MemoryModel.rootIOBytes(ranks: ranks, segmentFrames: segments.segmentFrames, largestBlock: most, overlap: segments.largestOverlap,
                                             frameValues: frame.count, measurementValues: measured.reduce(1, *))
        let videoState = Int(blockBytes)
        let exchanged = ranks > 1 ? (2 * settings.cgSteps + 2) * 2 * halo * frame.count * 8 : 0   // 2(M+1) exchanges of 2h frames
        let perStep = Double(most) * perFrame + dcSeconds
        // The warning before a time limit: a whole step (the signal may come just after one
        // starts) with 50% to spare, the checkpoint, and a minute for the job script.
        let checkpointSeconds = RestoreSettings.checkpointWriteSeconds(frames: segments.segmentFrames, frameValues: frame.count)
        let margin = Int((1.5 * perStep + checkpointSeconds + 60).rounded(.up))
        if margin > RestoreSettings.slurmScriptSignalMargin {
            warnings.append(String(format: "one step takes %.0f s: Cluster/slurm.sbatch's warning of %d s before the time limit is too short to finish it and write the checkpoint; submit with sbatch --signal=B:USR1@%d", perStep, RestoreSettings.slurmScriptSignalMargin, margin))
        }
        let mb = { (b: Int) in Double(b) / 1_048_576 }
        let total = weightsBytes + cacheBytes + activationBytes + videoState
        let peak0 = runtimeBytes + Double(total) + rootIO
        let memTotal = ((try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? "").split(separator: "\n")
            .first { $0.hasPrefix("MemTotal:") }.flatMap { $0.split(separator: " ").compactMap { Int($0) }.first }.map { $0 * 1024 } ?? 0
        if memTotal > 0 && Int(peak0) * ranksPerNode > memTotal {
            warnings.append(String(format: "%d rank(s) per node need %.1f GB; this node has %.1f GB", ranksPerNode, peak0 * Double(ranksPerNode) / 1e9, Double(memTotal) / 1e9))
        }
        let jobSeconds = perStep * Double(settings.networkEvaluations) * Double(segments.count)
        let plan = DryRunPlan(ranks: ranks, frames: frames, framesPerRankMax: most, framesPerRankMin: least, halo: halo,
                              frameShape: [frame.channels, frame.height, frame.width], steps: settings.visitedSteps.count, cgSteps: settings.cgSteps, batch: batch,
                              model: modelName, parameters: parameters, weightsMB: mb(weightsBytes), winogradCacheMB: mb(cacheBytes),
                              activationsMB: mb(activationBytes), videoStateMB: mb(videoState), totalPerRankMB: mb(total),
                              runtimeMB: runtimeBytes / 1_048_576, rootIOMB: rootIO / 1_048_576, predictedPeakRank0MB: peak0 / 1_048_576,
                              segments: segments.count, segmentFrames: segments.segmentFrames, overlap: segments.overlap,
                              segmentStarts: Array(segments.starts.prefix(10_000)), segmentReason: segmentReason,
                              secondsPerFrame: perFrame, secondsPerFrameSource: source, dataConsistencySecondsPerStep: dcSeconds,
                              secondsPerStep: perStep, secondsForJob: jobSeconds,
                              bytesExchangedPerStepPerRank: exchanged, signalMarginSeconds: margin, tiles: tiles, warnings: warnings)
        var p = plan
        p.request = self
        p.input = input; p.degradation = spec.canonical; p.noise = noise.summary; p.checkpointSeconds = checkpointSeconds
        return p
    }

    /// The measurement's frames and frame shape [c, h, w], from headers only (an .npy's
    /// header, a video's container).
    package func measuredShape(_ sel: FrameSelection) throws -> (frames: Int, shape: [Int]) {
        guard MediaIO.isNPY(input) else {
            let p = try VideoStream.probe(input, selection: sel)
            return (p.frames, [3, p.height, p.width])
        }
        if sel.crop != nil || sel.size != nil { throw SVIError.file(input, "--size and --crop apply to video files, not .npy tensors") }
        let shape = try NPY.shapeOfFloat32(input)
        guard shape.count == 4, shape[0] > 0 else { throw SVIError.file(input, "expected a video shaped [T][C][H][W], got shape \(shape)") }
        let r = sel.range ?? 0..<Int.max
        guard r.lowerBound < shape[0] else { throw SVIError.file(input, "frame range starts past the end (\(shape[0]) frames)") }
        return (min(r.upperBound, shape[0]) - r.lowerBound, Array(shape.dropFirst()))
    }

    /// The network a restore would load: its size and its seconds per frame (from --calibrated
    /// or one timed call after a warm-up), and its tiles.
    package struct NetworkCost {
        package var model = "none", parameters = 0, weightsBytes = 0, cacheBytes = 0, activationBytes = 0
        package var secondsPerFrame = 0.0, source = "no network"
        package var tiles: TilePolicy?
    }

    package func networkCost(frame: FrameShape) throws -> NetworkCost {
        var cost = NetworkCost()
        if prior == "gaussian" { cost.model = "gaussian prior"; return cost }
        let net: UNet
        if let weights = model, calibrated == nil {
            net = try ModelLoader.load(weights: weights, preset: preset, config: config).0
            cost.model = weights
        } else if let weights = model {
            let cfg = try preset.map { p in guard let c = UNetConfig.presets[p] else { throw SVIError.option("--preset", "unknown preset '\(p)'") }; return c }
                ?? config.map { try UNetConfig.load($0) } ?? (try UNetConfig.infer(from: try Checkpoint.load(weights).tensors, source: weights).config)
            net = try UNet(shapesOf: cfg)
            cost.model = weights
        } else if let p = preset {
            guard let cfg = UNetConfig.presets[p] else { throw SVIError.option("--preset", "unknown preset '\(p)'") }
            net = calibrated == nil ? try UNet(config: cfg, randomSeed: 1) : try UNet(shapesOf: cfg)
            cost.model = "\(p) (random weights for calibration)"
        } else {
            let weights = try EmbeddedPrior.locate()
            net = try ModelLoader.load(weights: weights, preset: nil, config: nil).0
            cost.model = "embedded prior \(EmbeddedPrior.fileName)"
        }
        cost.parameters = net.parameterCount
        cost.weightsBytes = 4 * cost.parameters
        cost.cacheBytes = net.winogradCacheBytes
        // With tiles the network sees `batch` tiles per call, and a frame costs its tiles.
        let tiles = TilePolicy.choose(requested: tile, overlap: tileOverlap, net: net, batch: batch, height: frame.height, width: frame.width)
        cost.tiles = tiles
        let grid = tiles.map { TileGrid(height: frame.height, width: frame.width, tile: $0.tile, overlap: $0.overlap) }
        let callH = grid?.tileHeight ?? frame.height, callW = grid?.tileWidth ?? frame.width
        let sm = net.config.sizeMultiple
        let hp = (callH + sm - 1) / sm * sm, wp = (callW + sm - 1) / sm * sm
        cost.activationBytes = net.activationBytes(batch: batch, height: hp, width: wp)
        if let c = calibrated {
            cost.secondsPerFrame = c * Double(grid?.count ?? 1)
            cost.source = "--calibrated" + (grid.map { " per \($0.tileWidth)x\($0.tileHeight) tile × \($0.count) tiles per frame" } ?? "")
        } else {
            let x = Tensor(shape: [batch, frame.channels, hp, wp])
            RandomStream(seed: 1, purpose: .initial).normals(offset: 0, count: x.count, into: x.data)
            let t = [Int](repeating: 500, count: batch)
            _ = try net.forward(x, timesteps: t)                // warm-up (weight transforms)
            let t0 = Date()
            _ = try net.forward(x, timesteps: t)
            cost.secondsPerFrame = Date().timeIntervalSince(t0) / Double(batch) * Double(grid?.count ?? 1)
            cost.source = "calibrated: one call of \(batch) \(grid == nil ? "frame" : "tile")(s) on this machine, \(Parallel.threads) thread(s)"
                + (grid.map { ", \($0.count) tiles per frame" } ?? "")
        }
        return cost
    }

    /// Data consistency's seconds per step on a block of `blockFrames` frames: M+1
    /// applications of AᵀA per step, each a few passes over the block; timed on a small block
    /// here and scaled by values (frames × pixels), so nothing of the job's size is allocated.
    package func dataConsistencySeconds(spec: DegradationSpec, frame: FrameShape, settings: SamplerSettings, halo: Int, blockFrames: Int) throws -> Double {
        let probeFrames = max(2 * halo + 1, 6), probeSize = 240
        let probeFrame = FrameShape(channels: frame.channels, height: probeSize * (spec.srFactor ?? 1), width: probeSize * (spec.srFactor ?? 1))
        let probeOp = try DegradationOperator(spec: spec, frame: probeFrame, totalFrames: probeFrames, maskSeed: 0)
        let probeY = probeOp.makeOutput(frames: probeFrames, Float.self)
        let probeDC = DataConsistency(op: probeOp, measurement: probeY, dist: .local(totalFrames: probeFrames), gamma: settings.gamma)
        RandomStream(seed: 1, purpose: .initial).normals(offset: 0, count: probeY.count, into: probeY.data)   // zeros would converge at once
        let probeU: Tensor64 = probeOp.makeInput(frames: probeFrames)
        var best = Double.infinity
        for _ in 0..<3 {
            Kernels.fill(probeU.data, 0.5, probeU.count)
            let t0 = Date()
            probeDC.solve(probeU, iterations: settings.cgSteps)
            best = min(best, Date().timeIntervalSince(t0))
        }
        return best * Double(blockFrames * frame.count) / Double(probeFrames * probeFrame.count)
    }
}

import Foundation
import SVICore
import SVIFormats
import SVIContracts
import SVICluster
import SVIOperators
import SVISampler
import SVIMedia

/// What the settings decide once the degradation and the measurement are known: the sampler's
/// settings, the segment plan, the operator, the checkpoint to resume from, the output.
extension RestoreSettings {
    /// The files this command reads, which no output may name (OutputGuard).
    package var inputFiles: [String] { [input, Sidecar.path(for: input)] + [reference, model, config].compactMap { $0 } }

    /// Refuses an output that names an input or another output, or exists without --overwrite
    /// (the dry-run writes only the report).
    package func checkOutputs(writingVideo: Bool) throws {
        var outputs: [(path: String, option: String)] = writingVideo ? [(output, "-o")] : []
        if let r = report { outputs.append((r, "--report")) }
        try OutputGuard.check(outputs: outputs, inputs: inputFiles, overwrite: overwrite)
    }

    /// Ranges of single options are OptionBounds.table's (checked in SVI.main); what is left

    /// The stall bound in force: --stall-timeout, or (once a step was timed) ten of the longest
    /// steps plus three checkpoint writes, at least 5 minutes (segment I/O on rank 0 included).
    package func stallBound(longestStep: Double?, checkpointSeconds: Double) -> Double? {
        if let t = stallTimeout { return t > 0 ? t : nil }
        guard let s = longestStep else { return nil }
        return max(300, 10 * s + 3 * checkpointSeconds)
    }

    /// Rank 0's answer about a checkpoint to resume from, sent to every rank.
    package struct ResumeDecision: Codable { var stepsDone: Int?; var folder: String?; var pnpFirstLevel: Double? }

    /// Seconds to write one checkpoint: rank 0 gathers every frame's x_t (float32) and writes
    /// it, at 100 MB/s for a shared file system, plus 5 s of slack.
    package static func checkpointWriteSeconds(frames: Int, frameValues: Int) -> Double {
        Double(frames * frameValues * 4) / 100e6 + 5
    }

    /// Where checkpoints are read and written: --checkpoint-dir, or its old spelling --resume
    /// (which also insists that the folder holds a checkpoint already).
    package var checkpointFolder: String? { checkpointDir ?? resume }

    /// The sampler's settings: the defaults for this degradation and the measurement's noise,
    /// then the options given.
    package func samplerSettings(for spec: DegradationSpec, seed: UInt64, noise: NoiseLevel?) -> SamplerSettings {
        // Options of DDS's reverse process alone ask for DDS where the task's default is pnp.
        let impliesDDS = eta != nil || gamma != nil || start != nil || batchIndependent || noiseDir != nil || initEstimate == .noise
        let plugAndPlay = wantsPlugAndPlay ? true : sampler == .dds || impliesDDS ? false : nil
        var settings = paper ? SamplerSettings.paper(for: spec, seed: seed) : SamplerSettings.defaults(for: spec, seed: seed, plugAndPlay: plugAndPlay)
        if var p = settings.pnp {
            if let l = pnpLevels.flatMap(Self.pnpLevels) {
                p.firstLevelFromPriorTest = l.from == nil
                p.from = l.from ?? PnPSchedule.firstLevelHigh; p.to = l.to
            }
            if let w = pnpWeight { p.weight = w }
            settings.pnp = p
            if let n = nfe { settings.nfe = n }
            if let m = cgSteps { settings.cgSteps = m }
            if let i = initEstimate { settings.startFrom = i }
            settings.finalCGSteps = finalCgSteps
            settings.batch = batch
            return settings
        }
        if let n = nfe { settings.nfe = n }
        if let m = cgSteps { settings.cgSteps = m }
        if let e = eta { settings.eta = e }
        if let g = gamma { settings.gamma = g }
        settings.batchIndependent = batchIndependent
        if let i = initEstimate { settings.startFrom = i; if i == .noise { settings.start = 1 } }
        if let f = start { settings.start = f }
        if settings.startFrom != .noise && settings.start >= 1 { settings.start = 0.5 }
        if let n = finalCgSteps { settings.finalCGSteps = n }
        if let c = cgStop { settings.discrepancyStop = c == .discrepancy && spec.noiseSigma > 0 }
        // The discrepancy stop counts only the white part of a compressed file's noise.
        if settings.discrepancyStop, let n = noise, n.discrepancySigma > 0, n.discrepancySigma < spec.noiseSigma {
            settings.discrepancySigma = n.discrepancySigma
        }
        settings.batch = batch
        return settings
    }

    /// --sampler pnp, or its own options given (which imply it).
    package var wantsPlugAndPlay: Bool { sampler == .pnp || (sampler == nil && (pnpLevels != nil || pnpWeight != nil)) }

    /// "FROM:TO" of --pnp-levels, nil unless 0 < TO ≤ FROM ≤ 0.5; FROM "auto" (from nil): the
    /// prior's test picks it, 0 < TO ≤ the lowest first level it picks.
    package static func pnpLevels(_ text: String) -> (from: Double?, to: Double)? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let b = Double(parts[1]), b.isFinite, b > 0 else { return nil }
        if parts[0] == "auto" { return b <= PnPSchedule.firstLevelLow ? (nil, b) : nil }
        guard let a = Double(parts[0]), a.isFinite, b <= a, a <= 0.5 else { return nil }
        return (a, b)
    }

    /// Overlap of neighbouring segments when --overlap is not given: twice the temporal
    /// operator's reach (the frames next to a segment's edge that lose measurement rows, on
    /// each side of the cross-fade), at least 8. Measured in BENCHMARKS.md ("Segments").
    package static func defaultOverlap(reach: Int) -> Int { max(2 * reach, 8) }

    /// The warning Cluster/slurm.sbatch asks Slurm for before the time limit (`--signal=B:USR1@300`).
    package static let slurmScriptSignalMargin = 300

    /// Kept free beside the planned memory: the runtime, FFmpeg, MPI buffers.
    package static let memoryMargin = 512.0 * 1_048_576

    /// What a rank holds while solving `spec` (the spec with the noise the solver assumes: it
    /// decides whether DDS warm-starts from ADMM-TV, whose state then sits beside the sampler's).
    package func solver(for spec: DegradationSpec) -> MemoryModel.Solver {
        switch method {
        case .dds: return samplerSettings(for: spec, seed: 0, noise: nil).startFrom == .admmTV ? .ddsFromTV : .dds
        case .cg: return .cg
        case .admmTV: return .admmTV
        }
    }

    /// --memory-per-rank, or what this node offers: the memory this process may use (cgroup
    /// limit or available memory) shared by the ranks on the node, less 15%.
    package func memoryBudgetPerRank() throws -> (bytes: Double, source: String) {
        if let m = memoryPerRank {
            guard let b = OptionValues.bytes(m) else { throw SVIError.option("--memory-per-rank", "--memory-per-rank must be a size like 8G, 1500M or 2.5G, got '\(m)'") }
            return (b, "--memory-per-rank")
        }
        let env = ProcessInfo.processInfo.environment
        let local = ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE", "PMI_LOCAL_SIZE"]
            .lazy.compactMap { env[$0].flatMap { Int($0.split(separator: "(").first ?? "") } }.first ?? 1
        let avail = MemoryModel.availableBytes() ?? 8e9
        return (avail * 0.85 / Double(max(local, 1)), "available memory shared by \(max(local, 1)) rank(s) on the node, less 15%,")
    }

    /// The segment plan of a clip (restore and its dry-run): `--segment-frames`, or as many
    /// frames as fit in the memory budget per rank beside `fixedBytes` (runtime, weights,
    /// activations) and the margin, by `MemoryModel`. Segments are longer than twice the
    /// overlap and hold at least one frame per rank.
    package func planSegments(frames: Int, ranks: Int, original: [Int], measured: [Int], spec: DegradationSpec,
                      fixedBytes: Double) throws -> (SegmentPlan, String) {
        let reach = (try spec.temporalKernel()).map { $0.width - 1 } ?? 0
        let overlap = self.overlap ?? RestoreSettings.defaultOverlap(reach: reach)
        var segmentFrames: Int
        let reason: String
        if let n = self.segmentFrames {
            segmentFrames = n
            reason = "--segment-frames \(n)"
        } else {
            let budget = try memoryBudgetPerRank()
            let fv = original.reduce(1, *), mv = measured.reduce(1, *)
            let perFrame = MemoryModel.blockBytes(solver(for: spec), frames: 1, frameValues: fv, measurementValues: mv, spatial: spec.hasSpatialPart, batch: 1)
            // Rank 0 also fills another rank's block while scattering and receives one while
            // gathering (with several ranks), and keeps the frames segments share.
            let rootPerFrame = ranks > 1 ? Double((mv + fv) * 4) : 0
            let stitch = Double((2 * overlap + 3) * (fv + mv) * 4)
            let perRank = MemoryModel.framesPerRank(budget: budget.bytes, fixed: fixedBytes + stitch + RestoreSettings.memoryMargin,
                                                    perFrame: perFrame + rootPerFrame)
            segmentFrames = perRank >= Int.max / 8 / max(ranks, 1) ? Int.max / 8 : perRank * ranks
            reason = String(format: "%@ %.1f GB per rank: %d frames per rank", budget.source, budget.bytes / 1e9, perRank)
            // The shortest segment svi makes (longer than twice the overlap, a frame per rank)
            // must fit: refuse up front rather than be killed by the kernel mid-job.
            let shortest = min(frames, max(ranks, 2 * overlap + 1))
            let blockFrames = (shortest + ranks - 1) / ranks
            let need = fixedBytes + stitch + RestoreSettings.memoryMargin + Double(blockFrames) * (perFrame + rootPerFrame)
            if need > budget.bytes {
                throw SVIError.outOfMemory(input, String(format: "restoring %d frames of %dx%d needs %.1f GB per rank even in segments of %d frames; %@ %.1f GB: use more ranks, give --memory-per-rank if this rank may use more, or restore smaller frames (--size, --crop)",
                                                  frames, original[2], original[1], need / 1e9, shortest, budget.source, budget.bytes / 1e9))
            }
        }
        segmentFrames = max(segmentFrames, min(frames, max(ranks, 2 * overlap + 1)))
        return (SegmentPlan(totalFrames: frames, segmentFrames: min(segmentFrames, frames), overlap: overlap), reason)
    }

    /// With --resume DIR (or a --checkpoint-dir holding snapshots), continues from the newest
    /// snapshot: rank 0 checks it against this run and scatters its x_t over the ranks.
    package func resumeIfAsked(_ sampler: DDSSampler, identity: SamplerCheckpoint, comm: Communicator, dist: Distribution, progress: Progress) throws {
        guard let dir = checkpointFolder else { return }
        var state: Tensor?
        let decision: ResumeDecision = try comm.agree {
            if resume != nil && !FileManager.default.fileExists(atPath: dir) { throw SVIError.file(dir, "no such checkpoint folder") }
            // Newest first; a damaged snapshot (bad state, data not matching its hash) is
            // skipped with a warning and the next older one is used.
            var (snapshots, damaged) = SamplerCheckpoint.snapshots(in: dir)
            // Snapshots of another segment of this plan (an earlier one not yet pruned) are not
            // this segment's. One of another plan (or of none) is another run's: it stays, so
            // the check below refuses it — skipping it would start over and drop the progress.
            snapshots = snapshots.filter { $0.0.segment == identity.segment || $0.0.segmentPlan != identity.segmentPlan }
            var found: ResumeDecision?
            for (meta, folder) in snapshots {
                let diff = meta.differences(from: identity)
                guard diff.isEmpty else {
                    throw SVIError.file(folder, "checkpoint does not match this run: " + diff.joined(separator: "; "))
                }
                guard meta.stepsDone < identity.stepsPerSegment else { throw SVIError.file(folder, "checkpoint is past the last step") }
                let x: Tensor
                do { x = try meta.loadState(from: folder) } catch {
                    damaged.append("\(error)")
                    continue
                }
                guard x.shape == [identity.measurementShape[0]] + Array(sampler.x.shape.dropFirst()) else {
                    throw SVIError.file(folder + "/x.npy", "checkpoint state has shape \(x.shape), this run needs \([identity.measurementShape[0]] + Array(sampler.x.shape.dropFirst()))")
                }
                state = x
                found = ResumeDecision(stepsDone: meta.stepsDone, folder: folder, pnpFirstLevel: meta.pnpFirstLevel)
                break
            }
            if found == nil, let first = damaged.first {
                // Never start over silently over damaged snapshots: the user decides.
                throw SVIError.file(dir, "no usable checkpoint (every snapshot is damaged; move the folder away to start over): \(first)")
            }
            for d in damaged { progress.warning("skipping a damaged checkpoint: \(d)") }
            if found == nil && resume != nil {
                throw SVIError.file(dir, "no complete checkpoint in this folder")
            }
            return found ?? ResumeDecision()
        }
        guard let done = decision.stepsDone else { return }
        let block = comm.scatter(state, partition: dist.partition, frameShape: Array(sampler.x.shape.dropFirst()))
        do { try sampler.resume(x: block, stepsDone: done, pnpFirstLevel: decision.pnpFirstLevel) } catch {
            if comm.rank == 0 { throw SVIError(error).about(decision.folder ?? dir) }
            throw SilentFailure(code: SVIError(error).exitStatus)
        }
        progress.note("resuming from \(decision.folder ?? dir) after step \(done)")
    }

    /// `--cg-steps` given to a baseline: its old meaning there, with a warning (one name, one
    /// meaning: --cg-steps is per diffusion step; kept for one release).
    package func legacyCGSteps(_ newName: String) -> Int? {
        guard let m = cgSteps else { return nil }
        log.warning("--cg-steps with --method \(method.rawValue) is now \(newName) (--cg-steps means CG iterations per diffusion step); the old spelling goes in the next release")
        return m
    }

    /// The output, opened under its temporary name (type, frame size, folder and --overwrite
    /// are checked here, before any step runs). Audio is the span of the restored clip.
    package func openSink(plan: RestorePlan, info: VideoInfo?, sidecar: Sidecar?, progress: Progress) throws -> MediaIO.Sink {
        var outInfo = info
        if outInfo == nil, let s = sidecar, let n = s.fpsNum, let d = s.fpsDen {
            let fps = Double(n) / Double(d)
            outInfo = VideoInfo(width: plan.original[2], height: plan.original[1], fpsNum: n, fpsDen: d, source: s.source,
                                startSeconds: (s.startSeconds ?? 0) + Double(plan.clipStart) / fps,
                                durationSeconds: Double(plan.frames) / fps, frames: plan.frames)
        }
        var audio: (path: String, start: Double, duration: Double)?
        if !noAudio, let i = outInfo {
            if info != nil { audio = (input, i.startSeconds, i.durationSeconds) }
            else if let s = sidecar, !MediaIO.isNPY(s.source), let source = s.readableSource { audio = (source, i.startSeconds, i.durationSeconds) }
        }
        return try MediaIO.Sink(path: output, shape: [plan.frames] + plan.original, info: outInfo, codec: codec, crf: crf,
                                audioFrom: audio, overwrite: overwrite, progress: progress)
    }

    /// The checkpoint folder exists (or can be made) and is writable.
    package func checkCheckpointFolder(_ dir: String) throws {
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        catch { throw SVIError.io(dir, "cannot create the checkpoint folder") }
        guard FileManager.default.isWritableFile(atPath: dir) else { throw SVIError.io(dir, "checkpoint folder is not writable") }
    }

    /// Without `--seed`, a run that continues from a checkpoint takes the seed the checkpoint
    /// was made with (the first run drew it at random and recorded it there and in the report),
    /// so running the same command again resumes — what a requeued Slurm job does.
    package func checkpointSeed() -> UInt64? {
        guard method == .dds, let dir = checkpointFolder else { return nil }
        if let done = try? SegmentProgress.load(dir) { return done.identity.seed }
        return (try? SamplerCheckpoint.latest(in: dir))??.0.seed
    }

    /// The operator of a window of the clip's file (a segment; the whole clip for checks).
    package func makeOperator(_ plan: RestorePlan, window: VideoWindow) throws -> DegradationOperator {
        let frame = FrameShape(channels: plan.original[0], height: plan.original[1], width: plan.original[2])
        do { return try DegradationOperator(spec: try DegradationSpec.parse(plan.spec), frame: frame, window: window, maskSeed: plan.maskSeed) }
        catch let e as SVIError { throw e.about(input) }
    }

    /// The clean frame shape: the sidecar's, or the measured frame's [c, h, w] scaled back by
    /// the SR factor.
    package func originalFrame(measured: [Int], spec: DegradationSpec, sidecar: Sidecar?) throws -> FrameShape {
        if let s = sidecar, s.originalShape.count == 3, degradation == nil || (try? DegradationSpec.parse(s.degradation)) == spec {
            return FrameShape(channels: s.originalShape[0], height: s.originalShape[1], width: s.originalShape[2])
        }
        let f = spec.srFactor ?? 1
        return FrameShape(channels: measured[0], height: measured[1] * f, width: measured[2] * f)
    }
}

import ArgumentParser
import Foundation
import SVICore
import SVIFormats
import SVICluster
import SVIOperators
import SVISampler
import SVIMedia
import SVIEvaluation

enum RestoreMethod: String, ExpressibleByArgument, CaseIterable {
    case dds, cg, admmTV = "admm-tv"
}

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a degraded video (batch-consistent DDS, or a classical baseline).",
        discussion: """
        The degradation comes from --degradation or, when not given, from the sidecar IN.json
        written by `svi degrade`. Defaults follow the paper: 20 steps and η 0.15 for temporal-only
        degradations, 100 steps and η 0.8 with a spatial part (blur, sr, inpaint), 5 CG steps per
        step; with measurement noise the proximal step (I + γAᵀA)u = u0 + γAᵀy with γ = 1.
        """)

    @Argument(help: "Measurement: a video file (e.g. the .mkv `svi degrade` wrote) or a float32 .npy [T][C][h][w].")
    var input: String

    @Option(name: .shortAndLong, help: "Restored video: .npy (float32), .mp4 (H.264), .mkv (FFV1 lossless) or a PNG pattern like out/%05d.png.")
    var output: String

    @Option(name: .long, help: "Output codec: h264, ffv1, ffv1-16 or png (default: from the extension).")
    var codec: String?

    @Option(name: .long, help: "H.264 quality (CRF: lower is better and larger).")
    var crf: Int = 18

    @Flag(name: .long, help: "Do not copy the measurement's (or source's) audio and subtitles into the output.")
    var noAudio = false

    @Option(name: .long, help: "Ground truth (video file or .npy): adds per-frame PSNR/SSIM to the report and the log.")
    var reference: String?

    @Option(name: .long, help: "Degradation spec (default: from the sidecar IN.json).")
    var degradation: String?

    @Option(name: .long, help: "Seed of the inpainting mask (default: from the sidecar, else 0).")
    var maskSeed: UInt64?

    @Option(name: .long, help: "Method: dds (diffusion), cg (CG alone from Aᵀy) or admm-tv (3-D total variation).")
    var method: RestoreMethod = .dds

    @Option(name: .long, help: "Diffusion model weights (.safetensors or PyTorch .pt) for --method dds (default: the embedded prior, Models/prior.safetensors; $SVI_PRIOR overrides).")
    var model: String?

    @Option(name: .long, help: "Architecture preset of --model (adm-256-uncond, adm-ffhq-256); inferred from the weights when omitted.")
    var preset: String?

    @Option(name: .long, help: "Architecture as guided-diffusion JSON options (a file, or one with a \"config\" key).")
    var config: String?

    @Option(name: .long, help: "Use a classical prior instead of a network: 'gaussian' (i.i.d. Gaussian pixels; for tests and comparisons).")
    var prior: String?

    @Option(name: .long, help: "Diffusion steps N (NFE). Default 20, or 100 with a spatial part.")
    var nfe: Int?

    @Option(name: .long, help: "CG iterations per diffusion step (default 5).")
    var cgSteps: Int?

    @Option(name: .long, help: "--method cg: CG iterations in all (default 100).")
    var cgIterations: Int?

    @Option(name: .long, help: "--method admm-tv: CG iterations inside each ADMM iteration (default 8).")
    var tvInnerCg: Int?

    @Option(name: .long, help: "DDIM η, share of fresh noise (default 0.15, or 0.8 with a spatial part).")
    var eta: Double?

    @Option(name: .long, help: "Proximal weight γ: solve (I + γAᵀA)u = u0 + γAᵀy (default 1 when the spec has noise, else plain CG).")
    var gamma: Double?

    @Flag(name: .long, help: "Draw independent noise per frame (the ablation) instead of one image shared by all frames.")
    var batchIndependent = false

    @Option(name: .long, help: "Seed of all sampler noise (default: the seed of the checkpoint this run continues from, else random; recorded in the report and the checkpoints).")
    var seed: UInt64?

    @Option(name: .long, help: "Frames per denoiser call (tiles per call with --tile).")
    var batch: Int = 4

    @OptionGroup var tiles: TileOptions

    @Option(name: .long, help: "ADMM-TV: weight λ of the TV term (default 0.0001 for noiseless measurements — the best of 0.0001…0.03 on 8 of the 10 clip-tasks of EVALUATION.md — and 0.003 with noise, not re-tuned).")
    var tvLambda: Double?

    @Option(name: .long, help: "ADMM-TV: penalty ρ.")
    var tvRho: Double = 0.05

    @Option(name: .long, help: "ADMM-TV: outer iterations.")
    var tvIterations: Int = 60

    @Option(name: .long, help: "Write a JSON report (settings, per-stage times, residual) here.")
    var report: String?

    @Flag(name: .long, help: "Replace OUT (and the report) if they exist.")
    var overwrite = false

    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var kernels: KernelOptions

    func validate() throws {
        if let n = nfe, !(1...1000).contains(n) { throw ValidationError("--nfe must be between 1 and 1000") }
        if checkpointEvery < 1 { throw ValidationError("--checkpoint-every must be at least 1") }
        if (checkpointDir != nil || resume != nil) && method != .dds { throw ValidationError("checkpoints are for --method dds") }
        if let a = checkpointDir, let b = resume, a != b { throw ValidationError("--resume is the old spelling of --checkpoint-dir: give one folder") }
        if deadline != nil && checkpointFolder == nil { throw ValidationError("--deadline needs --checkpoint-dir (stopping early without one would lose the work)") }
        if let d = deadline, !d.isFinite || d <= 0 { throw ValidationError("--deadline must be a time in Unix seconds") }
        if let m = cgSteps, m < 0 { throw ValidationError("--cg-steps must be ≥ 0") }
        if let m = cgIterations, m < 0 { throw ValidationError("--cg-iterations must be ≥ 0") }
        if let m = tvInnerCg, m < 0 { throw ValidationError("--tv-inner-cg must be ≥ 0") }
        if cgIterations != nil && method != .cg { throw ValidationError("--cg-iterations is for --method cg") }
        if tvInnerCg != nil && method != .admmTV { throw ValidationError("--tv-inner-cg is for --method admm-tv") }
        if let e = eta, !(0...1).contains(e) { throw ValidationError("--eta must be in [0, 1]") }
        if let g = gamma, !(g > 0) { throw ValidationError("--gamma must be positive") }
        if batch < 1 || batch > 4096 { throw ValidationError("--batch must be between 1 and 4096") }
        if let n = cgSteps, n > 10_000 { throw ValidationError("--cg-steps must be at most 10000") }
        if let n = cgIterations, n > 1_000_000 { throw ValidationError("--cg-iterations must be at most 1000000") }
        if let n = tvInnerCg, n > 10_000 { throw ValidationError("--tv-inner-cg must be at most 10000") }
        if let g = gamma, !g.isFinite { throw ValidationError("--gamma must be finite") }
        if let l = tvLambda, !(l.isFinite && l >= 0) { throw ValidationError("--tv-lambda must be a finite number ≥ 0") }
        if !(tvRho.isFinite && tvRho > 0) { throw ValidationError("--tv-rho must be a finite number > 0") }
        if !(1...100_000).contains(tvIterations) { throw ValidationError("--tv-iterations must be between 1 and 100000") }
        if !(0...51).contains(crf) { throw ValidationError("--crf must be between 0 and 51 (H.264's scale)") }
        if checkpointEvery > 1_000_000 { throw ValidationError("--checkpoint-every must be at most 1000000") }
        if let p = prior, p != "gaussian" { throw ValidationError("--prior must be 'gaussian'") }
        if ranksPerNode < 1 { throw ValidationError("--ranks-per-node must be at least 1") }
        if model != nil && prior != nil { throw ValidationError("give --model or --prior, not both") }
    }

    @Option(name: .long, help: "Write a resumable checkpoint (x_t of every frame, step, settings) into this folder during the run; the same command continues from it.")
    var checkpointDir: String?

    @Option(name: .long, help: "Steps between checkpoints.")
    var checkpointEvery: Int = 1

    @Option(name: .long, help: "Stop with a checkpoint (exit 85) before this time (Unix seconds) when the next step might not finish by then, judged from the longest step so far; needs --checkpoint-dir. Cluster/slurm.sbatch passes the job's end time.")
    var deadline: Double?

    @Option(name: .long, help: "Old spelling of --checkpoint-dir (warns; the folder must hold a checkpoint already).")
    var resume: String?

    @Flag(name: .long, help: "Print the plan (frames and memory per rank, time per step and for the job, bytes exchanged, warnings) without running the restoration.")
    var dryRun = false

    @Option(name: .long, help: "With --dry-run: plan for this many ranks (default: the ranks of this launch).")
    var planRanks: Int?

    @Option(name: .long, help: "With --dry-run: seconds per frame (per tile, with tiles) of one denoiser call, instead of timing one call here.")
    var calibrated: Double?

    @Option(name: .long, help: "With --dry-run: ranks sharing one node's memory.")
    var ranksPerNode: Int = 1

    @Option(name: .long, help: .hidden)
    var failOnRank: Int?

    @Option(name: .long, help: .hidden)
    var failAtStep: Int = 1

    /// What rank 0 reads and decides, sent to every rank before the work starts.
    struct Plan: Codable {
        var spec: String
        var maskSeed: UInt64
        var frames: Int
        var original: [Int]
        var seed: UInt64
        var measurementHash = ""
        var error: String?
    }

    /// Rank 0's answer about a checkpoint to resume from, sent to every rank.
    struct ResumeDecision: Codable { var stepsDone: Int?; var folder: String?; var error: String? }

    /// Seconds to write one checkpoint: rank 0 gathers every frame's x_t (float32) and writes
    /// it, at 100 MB/s for a shared file system, plus 5 s of slack.
    static func checkpointWriteSeconds(frames: Int, frameValues: Int) -> Double {
        Double(frames * frameValues * 4) / 100e6 + 5
    }

    /// Where checkpoints are read and written: --checkpoint-dir, or its old spelling --resume
    /// (which also insists that the folder holds a checkpoint already).
    var checkpointFolder: String? { checkpointDir ?? resume }

    func run() throws {
        let started = Date()
        if resume != nil {
            log.warning("--resume DIR is the old spelling of --checkpoint-dir DIR, which continues from the newest checkpoint there and keeps writing them; it goes in the next release")
        }
        try runtime.apply()
        kernels.apply()
        try SchedulerCheck.refuseTasksWithoutMPI()
        let comm: Communicator = MPICommunicator.launchedByMPI ? try MPICommunicator() : LocalCommunicator()
        let mpi = comm as? MPICommunicator
        defer { mpi?.finalize() }
        if dryRun {
            if comm.rank == 0 { try dryRun(ranks: comm.size) }
            return
        }
        do {
            try restore(comm, started: started)
        } catch let e as SilentFailure {
            throw ExitCode(e.code)
        } catch {
            // An error seen by this rank alone while others may wait in a collective: end the
            // whole job now, with this one line.
            if let m = mpi, m.size > 1 {
                FileHandle.standardError.write("Error: rank \(m.rank): \(error)\n".data(using: .utf8)!)
                m.abort(code: 1)
            }
            throw error
        }
    }

    /// Thrown on ranks that stop because rank 0 reported the problem.
    struct SilentFailure: Error { let code: Int32 }

    func restore(_ comm: Communicator, started: Date) throws {
        let rank = comm.rank
        let progress = Progress(quiet: runtime.quiet || rank != 0)

        // Rank 0 reads the measurement and settles A; every rank learns the plan (or the error).
        var whole: Tensor?
        var info: VideoInfo?
        var sink: MediaIO.Sink?
        // Read before the first step so that a wrong reference fails at once (rank 0 holds it
        // during the solve, as it holds the measurement; streaming both is the long-footage work).
        var referenceVideo: Tensor?
        var plan = Plan(spec: "", maskSeed: 0, frames: 0, original: [], seed: 0, error: nil)
        if rank == 0 {
            do {
                try AtomicFile.checkWritable(output, overwrite: overwrite)
                if let r = report { try AtomicFile.checkWritable(r, overwrite: true) }
                let (y, videoInfo) = try MediaIO.read(input, selection: FrameSelection(), progress: progress)
                guard y.shape.count == 4, y.frames > 0 else { throw SVIError.file(input, "expected a video shaped [T][C][H][W], got shape \(y.shape)") }
                info = videoInfo
                let sidecar = try Sidecar.load(for: input)
                guard let specText = degradation ?? sidecar?.degradation else {
                    throw SVIError.file(input, "no degradation given: pass --degradation SPEC (no sidecar \(Sidecar.path(for: input)) found)")
                }
                let spec = try DegradationSpec.parse(specText)
                let frame = try originalFrame(measurement: y, spec: spec, sidecar: sidecar)
                plan = Plan(spec: spec.canonical, maskSeed: maskSeed ?? sidecar?.maskSeed ?? 0, frames: y.frames,
                            original: [frame.channels, frame.height, frame.width],
                            seed: seed ?? checkpointSeed() ?? UInt64.random(in: 0...UInt64(UInt32.max)), error: nil)
                let op = try makeOperator(plan)
                let mshape = [op.outputShape.channels, op.outputShape.height, op.outputShape.width]
                guard Array(y.shape.dropFirst()) == mshape else {
                    throw SVIError.file(input, "measurement frames are \(Array(y.shape.dropFirst())) but \(spec.canonical) of \(frame) frames gives \(mshape)")
                }
                plan.measurementHash = SamplerCheckpoint.hash(y)
                // Everything that could fail after the solve is tried before the first step:
                // the output is opened (type, size, folder, --overwrite), the reference's shape
                // and the checkpoint folder are checked.
                if let r = reference {
                    referenceVideo = try MediaIO.read(r, selection: FrameSelection(), progress: progress).0
                    guard referenceVideo!.shape == [plan.frames] + plan.original else {
                        throw SVIError.file(r, "reference has shape \(referenceVideo!.shape), the restored video \([plan.frames] + plan.original)")
                    }
                }
                if let dir = resume, !FileManager.default.fileExists(atPath: dir) { throw SVIError.file(dir, "no such checkpoint folder") }
                if let dir = checkpointFolder, method == .dds { try checkCheckpointFolder(dir) }
                sink = try openSink(plan: plan, info: info, sidecar: sidecar, progress: progress)
                StopRequest.removeOnSignal(sink?.temporaryPath)
                whole = y
            } catch {
                plan.error = "\(error)"
            }
        }
        if comm.size > 1 {
            let bytes = comm.broadcast(bytes: rank == 0 ? Array(try JSONEncoder().encode(plan)) : [])
            plan = try JSONDecoder().decode(Plan.self, from: Data(bytes))
        }
        if let e = plan.error {
            if rank == 0 { throw SVIError(e) }
            throw SilentFailure(code: 1)
        }
        let spec = try DegradationSpec.parse(plan.spec)
        let frame = FrameShape(channels: plan.original[0], height: plan.original[1], width: plan.original[2])
        let op = try makeOperator(plan)
        let dist = Distribution(comm: comm, totalFrames: plan.frames)
        guard comm.size <= plan.frames else {
            throw SVIError("\(comm.size) ranks for \(plan.frames) frames: use at most \(plan.frames) ranks (one frame per rank at least)")
        }
        let y = comm.scatter(whole, partition: dist.partition, frameShape: [op.outputShape.channels, op.outputShape.height, op.outputShape.width])
        whole = nil
        let loadSeconds = seconds(since: started)

        var rep = RestoreReport(input: input, output: output, method: method.rawValue, degradation: spec.canonical,
                                frames: plan.frames, frameShape: plan.original, threads: Parallel.threads)
        rep.ranks = comm.size
        if comm.size > 1 { rep.mpiChunkBytes = MPICommunicator.chunkBytes }
        rep.timings["load_s"] = loadSeconds
        let result: Tensor
        let solveStart = Date()
        var denoiseSeconds = 0.0, dcSeconds = 0.0
        switch method {
        case .dds:
            var settings = SamplerSettings.defaults(for: spec, seed: plan.seed)
            if let n = nfe { settings.nfe = n }
            if let m = cgSteps { settings.cgSteps = m }
            if let e = eta { settings.eta = e }
            if let g = gamma { settings.gamma = g }
            settings.batchIndependent = batchIndependent
            settings.batch = batch
            // Every rank loads the model; a failure anywhere stops every rank cleanly.
            var denoiser: Denoiser?
            var loadError: Error?
            do {
                (denoiser, rep.tiles) = try makeDenoiser(model: model, preset: preset, config: config, prior: prior, batch: batch, tile: tiles.tile, tileOverlap: tiles.tileOverlap,
                                                         height: frame.height, width: frame.width, progress: progress)
            } catch { loadError = error }
            if comm.size > 1, comm.allreduceMax([loadError == nil ? 0 : 1])[0] > 0 {
                if let e = loadError { if rank == 0 { throw e }; FileHandle.standardError.write("Error: rank \(rank): \(e)\n".data(using: .utf8)!) }
                throw SilentFailure(code: 1)
            }
            if let e = loadError { throw e }
            rep.model = denoiser!.name
            rep.settings = .init(settings)
            let sampler = DDSSampler(op: op, measurement: y, denoiser: denoiser!, settings: settings, dist: dist)
            let identity = SamplerCheckpoint(stepsDone: 0, settings: settings, degradation: spec.canonical, maskSeed: plan.maskSeed,
                                             measurementShape: [plan.frames, op.outputShape.channels, op.outputShape.height, op.outputShape.width],
                                             measurementHash: plan.measurementHash, model: denoiser!.name)
            try resumeIfAsked(sampler, identity: identity, comm: comm, dist: dist, progress: progress)
            rep.resumedFromStep = sampler.stepIndex > 0 ? sampler.stepIndex : nil
            progress.note("svi restore: \(plan.frames) frames \(frame) on \(comm.size) rank(s), \(spec.canonical), \(settings.nfe) steps, \(denoiser!.name), seed \(plan.seed)")
            StopRequest.install(exitAtOnce: checkpointFolder == nil)
            let firstStep = sampler.stepIndex
            var longestStep = 0.0
            let checkpointSeconds = RestoreCommand.checkpointWriteSeconds(frames: plan.frames, frameValues: frame.count)
            while !sampler.isFinished {
                let stepStart = Date()
                if let r = failOnRank, r == rank, sampler.stepIndex + 1 == failAtStep {
                    throw SVIError("injected failure at step \(failAtStep) (--fail-on-rank)")
                }
                try sampler.step()
                progress.step("step", sampler.stepIndex, of: sampler.steps.count, first: firstStep)
                longestStep = max(longestStep, seconds(since: stepStart))
                // --deadline: stop now if another step and its checkpoint might not fit before it.
                let late = deadline.map { Date().timeIntervalSince1970 + 1.25 * longestStep + checkpointSeconds > $0 } ?? false
                // Every rank stops at the same step when any of them was signalled (or is late).
                let stopHere = StopRequest.requested || late
                // A NaN or infinity in x_t (a network that diverges on this input, say) would
                // end as an all-NaN video: stop at the step it appears, on every rank, and
                // write nothing (no output, no checkpoint of it).
                let nonFinite = FiniteCheck.firstNonFinite(sampler.x.data, sampler.x.count) != nil
                let flags = comm.size > 1 ? comm.allreduceMax([stopHere ? 1 : 0, nonFinite ? 1 : 0]) : [stopHere ? 1 : 0, nonFinite ? 1 : 0]
                if flags[1] > 0 {
                    if rank == 0 { throw SVIError("step \(sampler.stepIndex) of \(sampler.steps.count) produced NaN or infinite values (the model diverged on this input); nothing was written") }
                    throw SilentFailure(code: 1)
                }
                let stop = flags[0] > 0
                if sampler.isFinished { break }
                if let dir = checkpointFolder, stop || sampler.stepIndex % checkpointEvery == 0 {
                    var meta = identity
                    meta.stepsDone = sampler.stepIndex
                    try meta.write(x: sampler.x, dist: dist, to: dir)
                }
                if stop {
                    if let dir = checkpointFolder {
                        progress.note("stopped \(StopRequest.requested ? "by a signal" : "before --deadline") after step \(sampler.stepIndex)/\(sampler.steps.count); checkpoint in \(dir): run the same command to continue")
                    } else {
                        progress.note("stopped by a signal after step \(sampler.stepIndex)/\(sampler.steps.count); no --checkpoint-dir, nothing saved")
                    }
                    throw SilentFailure(code: StopRequest.exitStatus)
                }
            }
            // From here on output files get written: a signal waits for them to be cleaned up.
            StopRequest.exitAtOnce = 0
            denoiseSeconds = sampler.denoiseSeconds
            dcSeconds = sampler.dataConsistencySeconds
            rep.residual = sampler.residual()
            result = sampler.output()
        case .cg, .admmTV:
            let u: Tensor64
            if method == .cg {
                let iterations = cgIterations ?? legacyCGSteps("--cg-iterations") ?? 100
                rep.baseline = ["cg_iterations": Double(iterations)]
                u = Baselines.conjugateGradient(op: op, measurement: y, iterations: iterations, dist: dist)
            } else {
                var tv = Baselines.TVSettings()
                tv.lambda = tvLambda ?? (spec.noiseSigma > 0 ? 0.003 : 0.0001); tv.rho = tvRho; tv.iterations = tvIterations; tv.innerCG = tvInnerCg ?? legacyCGSteps("--tv-inner-cg") ?? 8
                rep.baseline = ["lambda": tv.lambda, "rho": tv.rho, "iterations": Double(tv.iterations), "inner_cg": Double(tv.innerCG)]
                u = Baselines.admmTV(op: op, measurement: y, settings: tv, dist: dist)
            }
            rep.residual = DataConsistency(op: op, measurement: y, dist: dist, gamma: nil).relativeResidual(u)
            result = Tensor(converting: u)
            Kernels.clip(result.data, 0, 1, result.count)
            dcSeconds = seconds(since: solveStart)
        }
        rep.timings["solve_s"] = seconds(since: solveStart)
        rep.timings["denoise_s"] = denoiseSeconds
        rep.timings["data_consistency_s"] = dcSeconds

        // Rank 0 writes the frames in order as they arrive (and scores them against --reference).
        let writeStart = Date()
        let ref = referenceVideo
        let frameSize = result.frameSize
        var psnr: [Double] = [], ssim: [Double] = []
        try comm.gather(result, partition: dist.partition) { range, p in
            try sink?.append(p, frames: range.count)
            if let r = ref {
                for (k, f) in range.enumerated() {
                    psnr.append(min(Metrics.psnr(p + k * frameSize, r.frame(f), count: frameSize), 100))
                    ssim.append(Metrics.ssim(p + k * frameSize, r.frame(f), channels: plan.original[0], height: plan.original[1], width: plan.original[2]))
                }
            }
        }
        try sink?.finish()
        if !psnr.isEmpty {
            rep.quality = ["psnr": psnr, "ssim": ssim, "mean_psnr": [psnr.reduce(0, +) / Double(psnr.count)], "mean_ssim": [ssim.reduce(0, +) / Double(ssim.count)]]
            progress.note(String(format: "against %@: mean PSNR %.2f dB, mean SSIM %.4f", reference!, psnr.reduce(0, +) / Double(psnr.count), ssim.reduce(0, +) / Double(ssim.count)))
        }
        rep.timings["write_s"] = seconds(since: writeStart)

        // Per-rank accounting, gathered on rank 0.
        let m = comm as? MPICommunicator
        let mine = [denoiseSeconds, dcSeconds - (m?.haloSeconds ?? 0) - (m?.reduceSeconds ?? 0), m?.haloSeconds ?? 0,
                    m?.reduceSeconds ?? 0, Double(m?.bytesSent ?? 0), peakResidentMB() ?? 0, Double(m?.reductions ?? 0)]
        let all = comm.gatherToRoot(mine)
        if rank == 0 {
            let k = mine.count
            rep.perRank = (0..<comm.size).map { r in
                let v = Array(all[(r * k)..<(r * k + k)])
                return ["rank": Double(r), "frames": Double(dist.partition.range(of: r).count), "denoise_s": v[0], "cg_arithmetic_s": v[1],
                        "halo_exchange_s": v[2], "allreduce_s": v[3], "bytes_sent": v[4], "peak_memory_mb": v[5], "reductions": v[6]]
            }
            rep.timings["total_s"] = seconds(since: started)
            rep.peakMemoryMB = peakResidentMB()
            if let r = report { try writeJSON(rep, to: r) }
            progress.note(String(format: "wrote %@ in %.1fs (residual ‖Au−y‖/‖y‖ = %.3g)", output, rep.timings["total_s"]!, rep.residual ?? .nan))
        }
    }

    /// With --resume DIR (or a --checkpoint-dir holding snapshots), continues from the newest
    /// snapshot: rank 0 checks it against this run and scatters its x_t over the ranks.
    func resumeIfAsked(_ sampler: DDSSampler, identity: SamplerCheckpoint, comm: Communicator, dist: Distribution, progress: Progress) throws {
        guard let dir = checkpointFolder else { return }
        var decision = ResumeDecision()
        var state: Tensor?
        if comm.rank == 0 {
            do {
                if resume != nil && !FileManager.default.fileExists(atPath: dir) { throw SVIError.file(dir, "no such checkpoint folder") }
                // Newest first; a damaged snapshot (bad state, data not matching its hash) is
                // skipped with a warning and the next older one is used.
                var (snapshots, damaged) = SamplerCheckpoint.snapshots(in: dir)
                var found = false
                for (meta, folder) in snapshots {
                    let diff = meta.differences(from: identity)
                    guard diff.isEmpty else {
                        throw SVIError.file(folder, "checkpoint does not match this run: " + diff.joined(separator: "; "))
                    }
                    guard meta.stepsDone < identity.nfe else { throw SVIError.file(folder, "checkpoint is past the last step") }
                    let x: Tensor
                    do { x = try meta.loadState(from: folder) } catch {
                        damaged.append("\(error)")
                        continue
                    }
                    guard x.shape == [identity.measurementShape[0]] + Array(sampler.x.shape.dropFirst()) else {
                        throw SVIError.file(folder + "/x.npy", "checkpoint state has shape \(x.shape), this run needs \([identity.measurementShape[0]] + Array(sampler.x.shape.dropFirst()))")
                    }
                    state = x
                    decision = ResumeDecision(stepsDone: meta.stepsDone, folder: folder, error: nil)
                    found = true
                    break
                }
                if !found, let first = damaged.first {
                    // Never start over silently over damaged snapshots: the user decides.
                    throw SVIError("no usable checkpoint in \(dir) (every snapshot is damaged; move the folder away to start over): \(first)")
                }
                for d in damaged { progress.warning("skipping a damaged checkpoint: \(d)") }
                if !found && resume != nil {
                    throw SVIError.file(dir, "no complete checkpoint in this folder")
                }
            } catch {
                decision.error = "\(error)"
            }
        }
        if comm.size > 1 {
            let bytes = comm.broadcast(bytes: comm.rank == 0 ? Array(try JSONEncoder().encode(decision)) : [])
            decision = try JSONDecoder().decode(ResumeDecision.self, from: Data(bytes))
        }
        if let e = decision.error {
            if comm.rank == 0 { throw SVIError(e) }
            throw SilentFailure(code: 1)
        }
        guard let done = decision.stepsDone else { return }
        let block = comm.scatter(state, partition: dist.partition, frameShape: Array(sampler.x.shape.dropFirst()))
        sampler.resume(x: block, stepsDone: done)
        progress.note("resuming from \(decision.folder ?? dir) after step \(done)")
    }

    /// `--cg-steps` given to a baseline: its old meaning there, with a warning (one name, one
    /// meaning: --cg-steps is per diffusion step; kept for one release).
    func legacyCGSteps(_ newName: String) -> Int? {
        guard let m = cgSteps else { return nil }
        log.warning("--cg-steps with --method \(method.rawValue) is now \(newName) (--cg-steps means CG iterations per diffusion step); the old spelling goes in the next release")
        return m
    }

    /// The output, opened under its temporary name (type, frame size, folder and --overwrite
    /// are checked here, before any step runs).
    func openSink(plan: Plan, info: VideoInfo?, sidecar: Sidecar?, progress: Progress) throws -> MediaIO.Sink {
        var outInfo = info
        if outInfo == nil, let s = sidecar, let n = s.fpsNum, let d = s.fpsDen {
            outInfo = VideoInfo(width: plan.original[2], height: plan.original[1], fpsNum: n, fpsDen: d, source: s.source,
                                startSeconds: s.startSeconds ?? 0, durationSeconds: Double(plan.frames) * Double(d) / Double(n), frames: plan.frames)
        }
        var audio: (path: String, start: Double, duration: Double)?
        if !noAudio, let i = outInfo {
            if info != nil { audio = (input, 0, i.durationSeconds) }
            else if let s = sidecar, !MediaIO.isNPY(s.source), let source = s.readableSource { audio = (source, i.startSeconds, i.durationSeconds) }
        }
        return try MediaIO.Sink(path: output, shape: [plan.frames] + plan.original, info: outInfo, codec: codec, crf: crf,
                                audioFrom: audio, overwrite: overwrite, progress: progress)
    }

    /// The checkpoint folder exists (or can be made) and is writable.
    func checkCheckpointFolder(_ dir: String) throws {
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        catch { throw SVIError.file(dir, "cannot create the checkpoint folder") }
        guard FileManager.default.isWritableFile(atPath: dir) else { throw SVIError.file(dir, "checkpoint folder is not writable") }
    }

    /// Without `--seed`, a run that continues from a checkpoint takes the seed the checkpoint
    /// was made with (the first run drew it at random and recorded it there and in the report),
    /// so running the same command again resumes — what a requeued Slurm job does.
    func checkpointSeed() -> UInt64? {
        guard method == .dds, let dir = checkpointFolder, let found = try? SamplerCheckpoint.latest(in: dir) else { return nil }
        return found.0.seed
    }

    func makeOperator(_ plan: Plan) throws -> DegradationOperator {
        let frame = FrameShape(channels: plan.original[0], height: plan.original[1], width: plan.original[2])
        do { return try DegradationOperator(spec: try DegradationSpec.parse(plan.spec), frame: frame, totalFrames: plan.frames, maskSeed: plan.maskSeed) }
        catch let e as SVIError { throw SVIError.file(input, e.message) }
    }

    /// The clean frame shape: the sidecar's, or the measurement's scaled back by the SR factor.
    func originalFrame(measurement y: Tensor, spec: DegradationSpec, sidecar: Sidecar?) throws -> FrameShape {
        if let s = sidecar, s.originalShape.count == 3, degradation == nil || (try? DegradationSpec.parse(s.degradation)) == spec {
            return FrameShape(channels: s.originalShape[0], height: s.originalShape[1], width: s.originalShape[2])
        }
        let f = spec.srFactor ?? 1
        return FrameShape(channels: y.shape[1], height: y.shape[2] * f, width: y.shape[3] * f)
    }
}

struct RestoreReport: Encodable {
    struct Settings: Encodable {
        var nfe: Int, cgSteps: Int, eta: Double, gamma: Double?, batchIndependent: Bool, seed: UInt64, batch: Int
        init(_ s: SamplerSettings) {
            nfe = s.nfe; cgSteps = s.cgSteps; eta = s.eta; gamma = s.gamma
            batchIndependent = s.batchIndependent; seed = s.seed; batch = s.batch
        }
        enum CodingKeys: String, CodingKey {
            case nfe, eta, gamma, seed, batch
            case cgSteps = "cg_steps", batchIndependent = "batch_independent"
        }
    }
    var sviVersion = SVI.version
    var input: String, output: String, method: String, degradation: String
    var frames: Int, frameShape: [Int], threads: Int
    var ranks = 1
    /// The largest MPI message (bytes): larger blocks travel in pieces of this size.
    var mpiChunkBytes: Int?
    var perRank: [[String: Double]]?
    var resumedFromStep: Int?
    var quality: [String: [Double]]?
    var model: String?
    var settings: Settings?
    var baseline: [String: Double]?
    /// Tiles of the network (nil: whole frames), and why.
    var tiles: TilePolicy?
    var timings: [String: Double] = [:]
    var residual: Double?
    var peakMemoryMB: Double?
    var machine = MachineInfo.current

    enum CodingKeys: String, CodingKey {
        case sviVersion = "svi_version", frameShape = "frame_shape", peakMemoryMB = "peak_memory_mb", perRank = "per_rank", ranks, mpiChunkBytes = "mpi_chunk_bytes", resumedFromStep = "resumed_from_step", quality
        case input, output, method, degradation, frames, threads, model, settings, baseline, tiles, timings, residual, machine
    }
}

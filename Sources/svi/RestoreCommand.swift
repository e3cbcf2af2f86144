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

enum CGStop: String, ExpressibleByArgument, CaseIterable {
    case discrepancy, iterations
}

extension StartPoint: ExpressibleByArgument {}

/// `--sampler`: DDS's reverse process (the paper) or plug-and-play refinement with the same network.
enum SamplerKind: String, ExpressibleByArgument, CaseIterable {
    case dds, pnp
}

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a degraded video (batch-consistent DDS, or a classical baseline).",
        discussion: """
        The degradation comes from --degradation or, when not given, from the sidecar IN.json
        written by `svi degrade`. Defaults were chosen on tuning clips (evaluation/TUNING.md):
        noiseless temporal-only degradations run the paper's sampler from noise (20 steps, η 0.15,
        5 CG steps) with the last step's CG to convergence; with a spatial part (blur, sr,
        inpaint) or noise the reverse process starts at t = 0.1 of a 50-step schedule from a
        noised ADMM-TV estimate (η 0.8 with a spatial part); with measurement noise σ the
        proximal step (I + γAᵀA)u = u0 + γAᵀy with γ = 0.02·s²/σ (s: the SR factor, else 1) and every step's CG stopped by the
        discrepancy principle (‖Au − y‖ ≈ σ·√m). σ is the measurement's effective noise, not
        only the spec's: a decoded file adds its quantisation (8-bit ≈ 0.0011) and H.264's
        quantiser error, and more when the data show more (`svi noise IN` prints each part;
        --noise-sigma sets it). Float .npy measurements are taken as the spec states.
        Where that noise is a file's rounding (σ < 0.005), or noise meets a spatial part, svi
        refines the ADMM-TV estimate by plug-and-play instead (--sampler pnp: the network as
        the denoiser at 8 falling noise levels, each followed by the proximal solve; no noise
        drawn). --paper runs the paper's own.
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

    @Option(name: .long, help: "Diffusion steps N (NFE) of DDS's schedule (default 20 from noise; 50 with a warm start, which visits those below --start; --paper: 20, or 100 with a spatial part); with --sampler pnp the number of levels (default 8).")
    var nfe: Int?

    @Option(name: .long, help: "CG iterations per diffusion step (default 5).")
    var cgSteps: Int?

    @Option(name: .long, help: "--method cg: CG iterations in all (default 100).")
    var cgIterations: Int?

    @Option(name: .long, help: "--method admm-tv: CG iterations inside each ADMM iteration (default 8).")
    var tvInnerCg: Int?

    @Option(name: .long, help: "DDIM η, share of fresh noise (default 0.15, or 0.8 with a spatial part).")
    var eta: Double?

    @Option(name: .long, help: "Proximal weight γ: solve (I + γAᵀA)u = u0 + γAᵀy (default 0.02·s²/σ with noise σ and ×s SR, ×(0.01/σ)² below σ 0.01 — 1 at σ 0.02 without SR, chosen on tuning clips; --paper: 1 — else plain CG).")
    var gamma: Double?

    @Option(name: .long, help: "Noise σ of the measurement (pixel values in [0, 1]), instead of svi's own: the spec's noise= plus the file's quantisation (from the decoded pixel format: 8-bit ≈ 0.0011) and H.264 quantiser, or more when a robust estimate from the data (median absolute 3-D Haar detail) finds more. Float .npy measurements are taken as the spec states. It sets γ = 0.02·s²/σ, the warm start's λ, and where CG stops (the report's 'noise' shows each part).")
    var noiseSigma: Double?

    @Option(name: .long, help: "Where each step's CG stops: discrepancy (once ‖Au − y‖ ≤ σ·√m for noise σ over m measured values, σ the white part of the noise — rounding, stated, or the data's estimate, not a codec's error; svi's default when σ > 0) or iterations (every iteration asked for; the paper, and always without noise).")
    var cgStop: CGStop?

    @Flag(name: .long, help: "The paper's sampler and defaults exactly (DESIGN §4: from noise; 20 steps, η 0.15 temporal-only, 100 steps, η 0.8 with a spatial part; 5 CG steps in every step; γ 1 with noise) instead of svi's tuned defaults; other options still apply.")
    var paper = false

    @Option(name: .customLong("init"), help: "What the reverse process starts from: noise (the paper), or a warm start (Come-Closer-Diffuse-Faster) from the classical estimate cg or admm-tv (with their own options) noised to step --start: fewer network evaluations. Default: by task, see --start.")
    var initEstimate: StartPoint?

    @Option(name: .long, help: "With a warm start: where the reverse process starts, as a fraction of the schedule (0 < F < 1); about F × NFE network evaluations. Defaults, chosen on tuning clips (EVALUATION.md): noise for noiseless temporal-only degradations; admm-tv at 0.02 for temporal-only ones whose noise is a file's rounding alone (σ < 0.005: one network evaluation), at 0.05 for temporal-only ones up to σ 0.01, at 0.1 otherwise.")
    var start: Double?

    @Option(name: .long, help: "How the network refines: dds (the paper's reverse process: Tweedie, CG, a DDIM step with shared noise) or pnp (plug-and-play: the warm start's estimate denoised in place by the network at falling noise levels, each followed by the proximal solve (I + γ_k AᵀA)u = z + γ_k Aᵀy with γ_k = w·σ_k²/σ_y²; no noise drawn; --nfe levels (default 8), --cg-steps per solve (default 30)). Default, chosen on tuning clips: pnp from the ADMM-TV estimate when the measurement's noise is a file's rounding alone (0 < σ < 0.005, e.g. 8-bit files) or it has noise and a spatial part (blur, sr, inpaint); dds otherwise (noiseless measurements, temporal-only ones with more noise). DDS-only options (--eta, --gamma, --start, --init noise, --batch-independent, --paper) ask for dds.")
    var sampler: SamplerKind?

    @Option(name: .long, help: "--sampler pnp (implied): the noise levels FROM:TO (pixel units) the network is run at, spaced geometrically (default 0.03:0.004). FROM 'auto': the first level is chosen from the prior's test on the start — 0.03 where the network removes noise from this footage well (test ≤ 0.07), 0.006 where it fits the footage poorly (≥ 0.09, e.g. animation), geometric between; the default for a temporal-only measurement whose noise is a file's rounding (auto:0.004).")
    var pnpLevels: String?

    @Option(name: .long, help: "--sampler pnp (implied): the weight w of the prior's estimate in γ_k = w·σ_k²/σ_y² (default 1).")
    var pnpWeight: Double?

    @Option(name: .long, help: "CG iterations of the last step, whose estimate is the output (default: --cg-steps, as the paper; CG stops early once converged).")
    var finalCgSteps: Int?

    @Flag(name: .long, help: "Draw independent noise per frame (the ablation) instead of one image shared by all frames.")
    var batchIndependent = false

    @Option(name: .long, help: "Seed of all sampler noise (default: the seed of the checkpoint this run continues from, else random; recorded in the report and the checkpoints).")
    var seed: UInt64?

    @Option(name: .long, help: "Frames per denoiser call (tiles per call with --tile).")
    var batch: Int = 4

    @OptionGroup var tiles: TileOptions

    @Option(name: .long, help: "ADMM-TV: weight λ of the TV term (default 0.0001 for noiseless measurements and 0.15·σ with noise σ ≥ 0.01, falling off as σ³ to 0.0001 below — a file's rounding — and scaled by the spatial part: 1/s² for ×s SR, the kept share for inpainting, 1/σ_b² for a blur of σ_b ≥ 1; all chosen on tuning clips, evaluation/TUNING.md). Also the λ of an --init admm-tv warm start.")
    var tvLambda: Double?

    @Option(name: .long, help: "ADMM-TV: penalty ρ (default 0.05).")
    var tvRho: Double?

    @Option(name: .long, help: "ADMM-TV: outer iterations (default 60 for --method admm-tv; for an --init admm-tv warm start, accelerated, 100 on a temporal-only degradation and 40 with a spatial part: BENCHMARKS.md, \"The warm start's budget\").")
    var tvIterations: Int?

    @Flag(name: .customLong("tv-accelerate"), inversion: .prefixedNo, help: "ADMM-TV: Nesterov momentum with restart (Goldstein et al. 2014): about half the iterations for the same estimate (default: on for an --init admm-tv warm start, off for --method admm-tv).")
    var tvAccelerate: Bool?

    @Option(name: .long, help: "Write a JSON report (settings, per-stage times, residual) here.")
    var report: String?

    @Flag(name: .long, help: "Replace OUT (and the report) if they exist.")
    var overwrite = false

    @OptionGroup(title: "Part of the input (video files; --frames also .npy)") var selection: SelectionOptions

    @Option(name: .long, help: "Frames per temporal segment: a video longer than this is restored as overlapping segments, each one exact problem over all ranks, cross-faded on rank 0 (default: as many as fit in --memory-per-rank).")
    var segmentFrames: Int?

    @Option(name: .long, help: "Frames shared by neighbouring segments, cross-faded with weights that sum to one (default: twice the temporal blur's reach, at least 8).")
    var overlap: Int?

    @Option(name: .long, help: "Memory each rank may use, e.g. 8G or 1500M: sets the segment length (default: the node's available memory shared by its ranks, less 15%).")
    var memoryPerRank: String?

    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var kernels: KernelOptions

    /// The files this command reads, which no output may name (OutputGuard).
    var inputFiles: [String] { [input, Sidecar.path(for: input)] + [reference, model, config].compactMap { $0 } }

    /// Refuses an output that names an input or another output, or exists without --overwrite
    /// (the dry-run writes only the report).
    func checkOutputs(writingVideo: Bool) throws {
        var outputs: [(path: String, option: String)] = writingVideo ? [(output, "-o")] : []
        if let r = report { outputs.append((r, "--report")) }
        try OutputGuard.check(outputs: outputs, inputs: inputFiles, overwrite: overwrite)
    }

    /// Ranges of single options are OptionBounds.table's (checked in SVI.main); what is left
    /// here are the rules between options.
    func validate() throws {
        if (checkpointDir != nil || resume != nil) && method != .dds { throw ValidationError("checkpoints are for --method dds") }
        if let a = checkpointDir, let b = resume, a != b { throw ValidationError("--resume is the old spelling of --checkpoint-dir: give one folder") }
        if deadline != nil && checkpointFolder == nil { throw ValidationError("--deadline needs --checkpoint-dir (stopping early without one would lose the work)") }
        if cgIterations != nil && method != .cg && initEstimate != .cg { throw ValidationError("--cg-iterations is for --method cg or --init cg") }
        if tvInnerCg != nil && method != .admmTV && initEstimate != .admmTV { throw ValidationError("--tv-inner-cg is for --method admm-tv or --init admm-tv") }
        if initEstimate != nil && method != .dds { throw ValidationError("--init is for --method dds (a warm start of the diffusion)") }
        if start != nil {
            if initEstimate == .noise { throw ValidationError("--start is for a warm start (--init cg or admm-tv); from noise the process starts at the top") }
        }
        if (sampler != nil || pnpLevels != nil || pnpWeight != nil) && method != .dds { throw ValidationError("--sampler is for --method dds (the network's refinement)") }
        if (pnpLevels != nil || pnpWeight != nil) && sampler == .dds { throw ValidationError("--pnp-levels and --pnp-weight are for --sampler pnp") }
        if wantsPlugAndPlay {
            if initEstimate == .noise { throw ValidationError("--sampler pnp refines an estimate: --init cg or admm-tv (default admm-tv)") }
            if start != nil || eta != nil || gamma != nil || batchIndependent || noiseDir != nil || paper {
                throw ValidationError("--sampler pnp draws no noise and sets γ per level: --start, --eta, --gamma, --batch-independent, --noise-dir and --paper are for --sampler dds")
            }
            if let l = pnpLevels, Self.pnpLevels(l) == nil { throw ValidationError("--pnp-levels must be FROM:TO with 0 < TO ≤ FROM ≤ 0.5, or auto:TO with 0 < TO ≤ \(PnPSchedule.firstLevelLow), got '\(l)'") }
        }
        if noiseDir != nil && (method != .dds || batchIndependent) { throw ValidationError("--noise-dir is for batch-consistent --method dds") }
        if let p = prior, p != "gaussian" { throw ValidationError("--prior must be 'gaussian'") }
        if model != nil && prior != nil { throw ValidationError("give --model or --prior, not both") }
        if let o = overlap, let n = segmentFrames, o >= n && n > 1 { throw ValidationError("--overlap must be smaller than --segment-frames") }
        if let m = memoryPerRank, OptionValues.bytes(m) == nil { throw ValidationError("--memory-per-rank must be a size like 8G, 1500M or 2.5G, got '\(m)'") }
    }

    @Option(name: .long, help: "Write a resumable checkpoint (x_t of every frame, step, settings) into this folder during the run; the same command continues from it.")
    var checkpointDir: String?

    @Option(name: .long, help: "Seconds a rank may wait for the others in one exchange before the job counts as stalled (a frozen rank, a node that stopped answering): the job then ends with one line naming the rank and host, exit 85 with the last checkpoint intact (the Slurm script requeues it). Default: 10 of the longest steps so far plus 3 checkpoint writes, at least 300 s, from the second step on; 0 waits forever.")
    var stallTimeout: Double?

    /// The stall bound in force: --stall-timeout, or (once a step was timed) ten of the longest
    /// steps plus three checkpoint writes, at least 5 minutes (segment I/O on rank 0 included).
    func stallBound(longestStep: Double?, checkpointSeconds: Double) -> Double? {
        if let t = stallTimeout { return t > 0 ? t : nil }
        guard let s = longestStep else { return nil }
        return max(300, 10 * s + 3 * checkpointSeconds)
    }

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

    /// Test hook (paper parity): the sampler's noise images from DIR/initial.npy and
    /// DIR/step-K.npy (float32 C×H×W) instead of the generator.
    @Option(name: .long, help: .hidden)
    var noiseDir: String?

    /// Test hook (paper parity, one process): write x after step K (x_{t_next}, [-1, 1]; x̄0 at
    /// the last step) to DIR/x-K.npy, so the reference can be run step for step from svi's states.
    @Option(name: .long, help: .hidden)
    var traceDir: String?

    /// Test hook (paper parity): write the last estimate without clipping it to [0, 1].
    @Flag(name: .long, help: .hidden)
    var noClip = false

    @Option(name: .long, help: .hidden)
    var failOnRank: Int?

    @Option(name: .long, help: .hidden)
    var failAtStep: Int = 1

    /// Rank 0's answer about a checkpoint to resume from, sent to every rank.
    struct ResumeDecision: Codable { var stepsDone: Int?; var folder: String?; var pnpFirstLevel: Double? }

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
        try SchedulerCheck.refuseTasksWithoutMPI()
        let comm: Communicator = MPICommunicator.launchedByMPI ? try MPICommunicator() : LocalCommunicator()
        let mpi = comm as? MPICommunicator
        defer { mpi?.finalize() }
        if let m = mpi, m.size > 1 {
            m.stallBound = stallBound(longestStep: nil, checkpointSeconds: 0)
            let folder = checkpointFolder
            m.onStall = { line in
                let tail = folder.map { "; the last checkpoint in \($0) is intact: run the same command to resume" } ?? "; no --checkpoint-dir, nothing was saved"
                FileHandle.standardError.write("Error: \(line)\(tail)\n".data(using: .utf8)!)
                m.abort(code: folder == nil ? 1 : StopRequest.exitStatus)
            }
        }
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
                m.abort(code: SVIError(error).exitStatus)
            }
            throw error
        }
    }

    func restore(_ comm: Communicator, started: Date) throws {
        try RestoreJob(self, comm: comm, started: started).run()
    }

    /// The sampler's settings: the defaults for this degradation and the measurement's noise,
    /// then the options given.
    func samplerSettings(for spec: DegradationSpec, seed: UInt64, noise: NoiseLevel?) -> SamplerSettings {
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
    var wantsPlugAndPlay: Bool { sampler == .pnp || (sampler == nil && (pnpLevels != nil || pnpWeight != nil)) }

    /// "FROM:TO" of --pnp-levels, nil unless 0 < TO ≤ FROM ≤ 0.5; FROM "auto" (from nil): the
    /// prior's test picks it, 0 < TO ≤ the lowest first level it picks.
    static func pnpLevels(_ text: String) -> (from: Double?, to: Double)? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let b = Double(parts[1]), b.isFinite, b > 0 else { return nil }
        if parts[0] == "auto" { return b <= PnPSchedule.firstLevelLow ? (nil, b) : nil }
        guard let a = Double(parts[0]), a.isFinite, b <= a, a <= 0.5 else { return nil }
        return (a, b)
    }

    /// Overlap of neighbouring segments when --overlap is not given: twice the temporal
    /// operator's reach (the frames next to a segment's edge that lose measurement rows, on
    /// each side of the cross-fade), at least 8. Measured in BENCHMARKS.md ("Segments").
    static func defaultOverlap(reach: Int) -> Int { max(2 * reach, 8) }

    /// The warning Cluster/slurm.sbatch asks Slurm for before the time limit (`--signal=B:USR1@300`).
    static let slurmScriptSignalMargin = 300

    /// Kept free beside the planned memory: the runtime, FFmpeg, MPI buffers.
    static let memoryMargin = 512.0 * 1_048_576

    /// What a rank holds while solving `spec` (the spec with the noise the solver assumes: it
    /// decides whether DDS warm-starts from ADMM-TV, whose state then sits beside the sampler's).
    func solver(for spec: DegradationSpec) -> MemoryModel.Solver {
        switch method {
        case .dds: return samplerSettings(for: spec, seed: 0, noise: nil).startFrom == .admmTV ? .ddsFromTV : .dds
        case .cg: return .cg
        case .admmTV: return .admmTV
        }
    }

    /// --memory-per-rank, or what this node offers: the memory this process may use (cgroup
    /// limit or available memory) shared by the ranks on the node, less 15%.
    func memoryBudgetPerRank() throws -> (bytes: Double, source: String) {
        if let m = memoryPerRank {
            guard let b = OptionValues.bytes(m) else { throw ValidationError("--memory-per-rank must be a size like 8G, 1500M or 2.5G, got '\(m)'") }
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
    func planSegments(frames: Int, ranks: Int, original: [Int], measured: [Int], spec: DegradationSpec,
                      fixedBytes: Double) throws -> (SegmentPlan, String) {
        let reach = (try spec.temporalKernel()).map { $0.width - 1 } ?? 0
        let overlap = self.overlap ?? RestoreCommand.defaultOverlap(reach: reach)
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
            let perRank = MemoryModel.framesPerRank(budget: budget.bytes, fixed: fixedBytes + stitch + RestoreCommand.memoryMargin,
                                                    perFrame: perFrame + rootPerFrame)
            segmentFrames = perRank >= Int.max / 8 / max(ranks, 1) ? Int.max / 8 : perRank * ranks
            reason = String(format: "%@ %.1f GB per rank: %d frames per rank", budget.source, budget.bytes / 1e9, perRank)
            // The shortest segment svi makes (longer than twice the overlap, a frame per rank)
            // must fit: refuse up front rather than be killed by the kernel mid-job.
            let shortest = min(frames, max(ranks, 2 * overlap + 1))
            let blockFrames = (shortest + ranks - 1) / ranks
            let need = fixedBytes + stitch + RestoreCommand.memoryMargin + Double(blockFrames) * (perFrame + rootPerFrame)
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
    func resumeIfAsked(_ sampler: DDSSampler, identity: SamplerCheckpoint, comm: Communicator, dist: Distribution, progress: Progress) throws {
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
    func legacyCGSteps(_ newName: String) -> Int? {
        guard let m = cgSteps else { return nil }
        log.warning("--cg-steps with --method \(method.rawValue) is now \(newName) (--cg-steps means CG iterations per diffusion step); the old spelling goes in the next release")
        return m
    }

    /// The output, opened under its temporary name (type, frame size, folder and --overwrite
    /// are checked here, before any step runs). Audio is the span of the restored clip.
    func openSink(plan: RestorePlan, info: VideoInfo?, sidecar: Sidecar?, progress: Progress) throws -> MediaIO.Sink {
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
    func checkCheckpointFolder(_ dir: String) throws {
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        catch { throw SVIError.io(dir, "cannot create the checkpoint folder") }
        guard FileManager.default.isWritableFile(atPath: dir) else { throw SVIError.io(dir, "checkpoint folder is not writable") }
    }

    /// Without `--seed`, a run that continues from a checkpoint takes the seed the checkpoint
    /// was made with (the first run drew it at random and recorded it there and in the report),
    /// so running the same command again resumes — what a requeued Slurm job does.
    func checkpointSeed() -> UInt64? {
        guard method == .dds, let dir = checkpointFolder else { return nil }
        if let done = try? SegmentProgress.load(dir) { return done.identity.seed }
        return (try? SamplerCheckpoint.latest(in: dir))??.0.seed
    }

    /// The operator of a window of the clip's file (a segment; the whole clip for checks).
    func makeOperator(_ plan: RestorePlan, window: VideoWindow) throws -> DegradationOperator {
        let frame = FrameShape(channels: plan.original[0], height: plan.original[1], width: plan.original[2])
        do { return try DegradationOperator(spec: try DegradationSpec.parse(plan.spec), frame: frame, window: window, maskSeed: plan.maskSeed) }
        catch let e as SVIError { throw e.about(input) }
    }

    /// The clean frame shape: the sidecar's, or the measured frame's [c, h, w] scaled back by
    /// the SR factor.
    func originalFrame(measured: [Int], spec: DegradationSpec, sidecar: Sidecar?) throws -> FrameShape {
        if let s = sidecar, s.originalShape.count == 3, degradation == nil || (try? DegradationSpec.parse(s.degradation)) == spec {
            return FrameShape(channels: s.originalShape[0], height: s.originalShape[1], width: s.originalShape[2])
        }
        let f = spec.srFactor ?? 1
        return FrameShape(channels: measured[0], height: measured[1] * f, width: measured[2] * f)
    }
}

struct RestoreReport: Encodable {
    struct Settings: Encodable {
        var nfe: Int, cgSteps: Int, eta: Double, gamma: Double?, batchIndependent: Bool, seed: UInt64, batch: Int
        /// Network evaluations per segment (fewer than nfe with a warm start).
        var evaluations: Int, start: Double, finalCGSteps: Int
        var initEstimate: String?
        var cgStop: String
        /// The discrepancy stop's σ where it is not the spec's (the white part of a codec's noise).
        var cgStopSigma: Double?
        /// dds or pnp, and plug-and-play's levels and weight ("from:to:weight").
        var sampler: String, pnp: String?
        init(_ s: SamplerSettings) {
            sampler = s.pnp == nil ? "dds" : "pnp"; pnp = s.pnp?.description
            cgStop = s.discrepancyStop ? "discrepancy" : "iterations"
            cgStopSigma = s.discrepancyStop ? s.discrepancySigma : nil
            nfe = s.nfe; cgSteps = s.cgSteps; eta = s.eta; gamma = s.gamma
            batchIndependent = s.batchIndependent; seed = s.seed; batch = s.batch
            evaluations = s.networkEvaluations; start = s.start; finalCGSteps = s.finalCGSteps ?? s.cgSteps
            initEstimate = s.startFrom == .noise ? nil : s.startFrom.rawValue
        }
        enum CodingKeys: String, CodingKey {
            case nfe, eta, gamma, seed, batch, evaluations, start, sampler, pnp
            case cgSteps = "cg_steps", batchIndependent = "batch_independent", finalCGSteps = "final_cg_steps", initEstimate = "init", cgStop = "cg_stop", cgStopSigma = "cg_stop_sigma"
        }
    }
    var sviVersion = SVI.version
    var input: String, output: String, method: String, degradation: String
    var frames: Int, frameShape: [Int], threads: Int
    var ranks = 1
    /// The host of each rank, in rank order (multi-rank runs).
    var rankHosts: [String]?
    /// The stall bound in force at the end (seconds; nil: none).
    var stallBoundSeconds: Double?
    /// The largest MPI message (bytes): larger blocks travel in pieces of this size.
    var mpiChunkBytes: Int?
    var perRank: [[String: Double]]?
    var resumedFromStep: Int?
    /// Segments finished by an earlier run (their frames came from the checkpoint).
    var resumedFromSegment: Int?
    /// [a, b) of the input's frames, when only part of it was restored.
    var clip: [Int]?
    struct Segments: Encodable {
        var count: Int, segmentFrames: Int, overlap: Int, largestOverlap: Int, reason: String
        enum CodingKeys: String, CodingKey { case count, overlap, reason, segmentFrames = "segment_frames", largestOverlap = "largest_overlap" }
    }
    var segments: Segments?
    var quality: [String: [Double]]?
    var model: String?
    var settings: Settings?
    var baseline: [String: Double]?
    /// The measurement's noise: each part and where it came from; `noiseSigma` is the σ used.
    var noise: NoiseLevel?
    var noiseSigma: Double?
    /// The prior's test on the warm start (`DDSSampler.priorCheck`, the largest over segments)
    /// and the segments whose output is the start because the prior failed it.
    var priorCheck: Double?
    /// Plug-and-play's first level per segment where the prior's test chose it ("auto" levels).
    var pnpFirstLevels: [Double]?
    var priorRejectedSegments: [Int]?
    /// Tiles of the network (nil: whole frames), and why.
    var tiles: TilePolicy?
    var timings: [String: Double] = [:]
    var residual: Double?
    var peakMemoryMB: Double?
    var machine = MachineInfo.current

    enum CodingKeys: String, CodingKey {
        case sviVersion = "svi_version", frameShape = "frame_shape", peakMemoryMB = "peak_memory_mb", perRank = "per_rank", ranks, mpiChunkBytes = "mpi_chunk_bytes", resumedFromStep = "resumed_from_step", quality
        case resumedFromSegment = "resumed_from_segment", clip, segments
        case input, output, method, degradation, frames, threads, model, settings, baseline, tiles, timings, residual, machine, noise
        case noiseSigma = "noise_sigma", priorCheck = "prior_check", priorRejectedSegments = "prior_rejected_segments", pnpFirstLevels = "pnp_first_levels"
        case rankHosts = "rank_hosts", stallBoundSeconds = "stall_bound_seconds"
    }
}

import ArgumentParser
import Foundation
import SVICore
import SVIFormats
import SVICluster
import SVIOperators
import SVISampler
import SVIMedia
import SVIEvaluation
import SVIPipeline
import SVINetwork

extension RestoreMethod: ExpressibleByArgument {}
extension CGStop: ExpressibleByArgument {}
extension StartPoint: ExpressibleByArgument {}
extension SamplerKind: ExpressibleByArgument {}

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
    var crf: Int = RestoreSettings().crf

    @Flag(name: .long, help: "Do not copy the measurement's (or source's) audio and subtitles into the output.")
    var noAudio = false

    @Option(name: .long, help: "Ground truth (video file or .npy): adds per-frame PSNR/SSIM to the report and the log.")
    var reference: String?

    @Option(name: .long, help: "Degradation spec (default: from the sidecar IN.json).")
    var degradation: String?

    @Option(name: .long, help: "Seed of the inpainting mask (default: from the sidecar, else 0).")
    var maskSeed: UInt64?

    @Option(name: .long, help: "Method: dds (diffusion), cg (CG alone from Aᵀy) or admm-tv (3-D total variation).")
    var method: RestoreMethod = RestoreSettings().method

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
    var batch: Int = RestoreSettings().batch

    @OptionGroup var tiles: TileOptions

    @Option(name: .long, help: "ADMM-TV: weight λ of the TV term (default 0.0001 for noiseless measurements and 0.15·σ with noise σ ≥ 0.01, falling off as σ³ to 0.0001 below — a file's rounding — and scaled by the spatial part: 1/s² for ×s SR, the kept share for inpainting, 1/σ_b² for a blur of σ_b ≥ 1; all chosen on tuning clips, evaluation/TUNING.md). Also the λ of an --init admm-tv warm start.")
    var tvLambda: Double?

    @Option(name: .long, help: "ADMM-TV: penalty ρ (default 0.05).")
    var tvRho: Double?

    @Option(name: .long, help: "ADMM-TV: outer iterations (default 60 for --method admm-tv; for an --init admm-tv warm start, accelerated, 100 on a temporal-only degradation and 40 with a spatial part: BENCHMARKS.md, \"The warm start's budget\").")
    var tvIterations: Int?

    @Flag(name: .customLong("tv-accelerate"), inversion: .prefixedNo, help: "ADMM-TV: Nesterov momentum with restart (Goldstein et al. 2014): about half the iterations for the same estimate (default: on for an --init admm-tv warm start, off for --method admm-tv).")
    var tvAccelerate: Bool?

    @Flag(name: .customLong("tv-float32"), inversion: .prefixedNo, help: "ADMM-TV: vectors in float32 (inner products float64): half the memory traffic of its memory-bound loop (default: on for an --init admm-tv warm start, whose estimate is noised before the prior sees it; off for --method admm-tv, EVALUATION's baseline).")
    var tvFloat32: Bool?

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

    @Option(name: .long, help: "Write a resumable checkpoint (x_t of every frame, step, settings) into this folder during the run; the same command continues from it.")
    var checkpointDir: String?

    @Option(name: .long, help: "Seconds a rank may wait for the others in one exchange before the job counts as stalled (a frozen rank, a node that stopped answering): the job then ends with one line naming the rank and host, exit 85 with the last checkpoint intact (the Slurm script requeues it). Default: 10 of the longest steps so far plus 3 checkpoint writes, at least 300 s, from the second step on; 0 waits forever.")
    var stallTimeout: Double?


    @Option(name: .long, help: "Steps between checkpoints.")
    var checkpointEvery: Int = RestoreSettings().checkpointEvery

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
    var ranksPerNode: Int = RestoreSettings().ranksPerNode

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
    var failAtStep: Int = RestoreSettings().failAtStep

    /// The options as one value: what the pipeline runs, the checks of `validate()`.
    var settings: RestoreSettings {
        var s = RestoreSettings()
        s.input = input; s.output = output; s.codec = codec; s.crf = crf; s.noAudio = noAudio
        s.reference = reference; s.report = report; s.overwrite = overwrite
        s.frames = selection.frames; s.crop = selection.crop; s.size = selection.size
        s.degradation = degradation; s.maskSeed = maskSeed; s.noiseSigma = noiseSigma
        s.method = method; s.model = model; s.preset = preset; s.config = config; s.prior = prior; s.batch = batch
        s.tile = tiles.tile; s.tileOverlap = tiles.tileOverlap
        s.referenceKernels = kernels.referenceKernels; s.precision = kernels.precision
        s.nfe = nfe; s.cgSteps = cgSteps; s.eta = eta; s.gamma = gamma; s.cgStop = cgStop; s.paper = paper
        s.initEstimate = initEstimate; s.start = start; s.sampler = sampler; s.pnpLevels = pnpLevels; s.pnpWeight = pnpWeight
        s.finalCgSteps = finalCgSteps; s.batchIndependent = batchIndependent; s.seed = seed
        s.cgIterations = cgIterations; s.tvInnerCg = tvInnerCg; s.tvLambda = tvLambda; s.tvRho = tvRho
        s.tvIterations = tvIterations; s.tvAccelerate = tvAccelerate; s.tvFloat32 = tvFloat32
        s.segmentFrames = segmentFrames; s.overlap = overlap; s.memoryPerRank = memoryPerRank
        s.checkpointDir = checkpointDir; s.resume = resume; s.checkpointEvery = checkpointEvery; s.deadline = deadline
        s.stallTimeout = stallTimeout
        s.planRanks = planRanks; s.calibrated = calibrated; s.ranksPerNode = ranksPerNode
        s.quiet = runtime.quiet
        s.noiseDir = noiseDir; s.traceDir = traceDir; s.noClip = noClip; s.failOnRank = failOnRank; s.failAtStep = failAtStep
        return s
    }

    /// The rules between options are the settings' (`RestoreSettings.validate`); a usage error
    /// here, as ArgumentParser shows them.
    func validate() throws {
        do { try settings.validate() } catch let e as SVIError { throw ValidationError(e.message) }
    }

    func run() throws {
        let started = Date()
        if resume != nil {
            log.warning("--resume DIR is the old spelling of --checkpoint-dir DIR, which continues from the newest checkpoint there and keeps writing them; it goes in the next release")
        }
        try runtime.apply()
        try SchedulerCheck.refuseTasksWithoutMPI()
        let pipeline = try RestorePipeline(settings)
        let comm: Communicator = MPICommunicator.launchedByMPI ? try MPICommunicator() : LocalCommunicator()
        let mpi = comm as? MPICommunicator
        defer { mpi?.finalize() }
        if let m = mpi, m.size > 1 {
            m.stallBound = settings.stallBound(longestStep: nil, checkpointSeconds: 0)
            let folder = settings.checkpointFolder
            m.onStall = { line in
                let tail = folder.map { "; the last checkpoint in \($0) is intact: run the same command to resume" } ?? "; no --checkpoint-dir, nothing was saved"
                FileHandle.standardError.write("Error: \(line)\(tail)\n".data(using: .utf8)!)
                m.abort(code: folder == nil ? 1 : StopRequest.exitStatus)
            }
        }
        if dryRun {
            // The dry-run prints the plan the run would execute (RestorePipeline.plan).
            if comm.rank == 0 {
                let plan = try pipeline.plan(ranks: comm.size)
                plan.printSummary()
                if let r = report {
                    var p = plan
                    p.dryRunPeakMemoryMB = peakResidentMB()
                    try writeJSON(p, to: r, overwrite: overwrite)
                }
            }
            return
        }
        do {
            try pipeline.run(comm: comm, started: started, control: .signals)
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
}

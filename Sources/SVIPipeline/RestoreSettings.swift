import Foundation
import SVICore
import SVIFormats
import SVIMedia
import SVISampler
import SVINetwork

/// `svi restore`'s method.
package enum RestoreMethod: String, Codable, CaseIterable, Sendable {
    case dds, cg, admmTV = "admm-tv"
}

/// Where each step's CG stops (`--cg-stop`).
package enum CGStop: String, Codable, CaseIterable, Sendable {
    case discrepancy, iterations
}

/// `--sampler`: DDS's reverse process (the paper) or plug-and-play refinement with the same network.
package enum SamplerKind: String, Codable, CaseIterable, Sendable {
    case dds, pnp
}

extension StartPoint: Codable {}

/// Everything one restore is asked to do, as one value (issue 29): `svi restore` fills it from
/// its options, `RestorePipeline` plans and runs it, the tests build it in-process. A default
/// is written here once; nil means "svi chooses" (by the degradation and the measurement's
/// noise, `samplerSettings(for:)`). Rules between options are `validate()`'s; the range of
/// each single option is the command line's table (OptionBounds).
package struct RestoreSettings: Codable, Equatable, Sendable {
    // MARK: files
    package var input = ""
    package var output = ""
    package var codec: String?
    package var crf = 18
    package var noAudio = false
    package var reference: String?
    package var report: String?
    package var overwrite = false
    /// Part of the input: frames a:b, crop WxH+X+Y, size WxH (as given).
    package var frames: String?
    package var crop: String?
    package var size: String?

    // MARK: the degradation and its noise
    package var degradation: String?
    package var maskSeed: UInt64?
    package var noiseSigma: Double?

    // MARK: method and network
    package var method: RestoreMethod = .dds
    package var model: String?
    package var preset: String?
    package var config: String?
    package var prior: String?
    package var batch = 4
    package var tile: Int?
    package var tileOverlap: Int?
    package var referenceKernels = false
    package var precision: Precision = .fp32

    // MARK: the sampler
    package var nfe: Int?
    package var cgSteps: Int?
    package var eta: Double?
    package var gamma: Double?
    package var cgStop: CGStop?
    package var paper = false
    package var initEstimate: StartPoint?
    package var start: Double?
    package var sampler: SamplerKind?
    package var pnpLevels: String?
    package var pnpWeight: Double?
    package var finalCgSteps: Int?
    package var batchIndependent = false
    package var seed: UInt64?

    // MARK: classical methods and the warm start
    package var cgIterations: Int?
    package var tvInnerCg: Int?
    package var tvLambda: Double?
    package var tvRho: Double?
    package var tvIterations: Int?
    package var tvAccelerate: Bool?
    package var tvFloat32: Bool?

    // MARK: segments and memory
    package var segmentFrames: Int?
    package var overlap: Int?
    package var memoryPerRank: String?

    // MARK: checkpoints and the scheduler
    package var checkpointDir: String?
    /// Old spelling of checkpointDir (the folder must hold a checkpoint already).
    package var resume: String?
    package var checkpointEvery = 1
    package var deadline: Double?
    package var stallTimeout: Double?

    // MARK: the dry-run's plan
    /// Plan for this many ranks (nil: the ranks of this launch).
    package var planRanks: Int?
    /// Seconds per frame (per tile) of one denoiser call, instead of timing one call.
    package var calibrated: Double?
    package var ranksPerNode = 1

    // MARK: output
    package var quiet = false

    // MARK: test hooks
    /// The sampler's noise images from DIR/initial.npy and DIR/step-K.npy.
    package var noiseDir: String?
    /// x after every step to DIR/x-K.npy (one process).
    package var traceDir: String?
    /// The last estimate without clipping to [0, 1].
    package var noClip = false
    package var failOnRank: Int?
    package var failAtStep = 1

    package init() {}

    /// JSON keys as the reports write theirs (snake_case).
    package enum CodingKeys: String, CodingKey {
        case input, output, codec, crf, noAudio = "no_audio", reference, report, overwrite, frames, crop, size
        case degradation, maskSeed = "mask_seed", noiseSigma = "noise_sigma", method, model, preset, config
        case prior, batch, tile, tileOverlap = "tile_overlap", referenceKernels = "reference_kernels"
        case precision, nfe, cgSteps = "cg_steps", eta, gamma, cgStop = "cg_stop", paper
        case initEstimate = "init_estimate", start, sampler, pnpLevels = "pnp_levels"
        case pnpWeight = "pnp_weight", finalCgSteps = "final_cg_steps", batchIndependent = "batch_independent"
        case seed, cgIterations = "cg_iterations", tvInnerCg = "tv_inner_cg", tvLambda = "tv_lambda"
        case tvRho = "tv_rho", tvIterations = "tv_iterations", tvAccelerate = "tv_accelerate", tvFloat32 = "tv_float32"
        case segmentFrames = "segment_frames", overlap, memoryPerRank = "memory_per_rank"
        case checkpointDir = "checkpoint_dir", resume, checkpointEvery = "checkpoint_every", deadline
        case stallTimeout = "stall_timeout", planRanks = "plan_ranks", calibrated
        case ranksPerNode = "ranks_per_node", quiet, noiseDir = "noise_dir", traceDir = "trace_dir"
        case noClip = "no_clip", failOnRank = "fail_on_rank", failAtStep = "fail_at_step"
    }

    /// The frames, crop and scale asked for.
    package func selection() throws -> FrameSelection {
        try FrameSelection.parse(frames: frames, crop: crop, size: size)
    }

    /// The rules between options (one place: `svi restore` calls it before anything runs, and
    /// `RestorePipeline` again for settings built in code).
    package func validate() throws {
        func refuse(_ option: String, _ text: String) -> SVIError { SVIError.option(option, text) }
        if (checkpointDir != nil || resume != nil) && method != .dds { throw refuse("--checkpoint-dir", "checkpoints are for --method dds") }
        if let a = checkpointDir, let b = resume, a != b { throw refuse("--resume", "--resume is the old spelling of --checkpoint-dir: give one folder") }
        if deadline != nil && checkpointFolder == nil { throw refuse("--deadline", "--deadline needs --checkpoint-dir (stopping early without one would lose the work)") }
        if cgIterations != nil && method != .cg && initEstimate != .cg { throw refuse("--cg-iterations", "--cg-iterations is for --method cg or --init cg") }
        if tvInnerCg != nil && method != .admmTV && initEstimate != .admmTV { throw refuse("--tv-inner-cg", "--tv-inner-cg is for --method admm-tv or --init admm-tv") }
        if initEstimate != nil && method != .dds { throw refuse("--init", "--init is for --method dds (a warm start of the diffusion)") }
        if start != nil {
            if initEstimate == .noise { throw refuse("--start", "--start is for a warm start (--init cg or admm-tv); from noise the process starts at the top") }
        }
        if (sampler != nil || pnpLevels != nil || pnpWeight != nil) && method != .dds { throw refuse("--sampler", "--sampler is for --method dds (the network's refinement)") }
        if (pnpLevels != nil || pnpWeight != nil) && sampler == .dds { throw refuse("--pnp-levels", "--pnp-levels and --pnp-weight are for --sampler pnp") }
        if wantsPlugAndPlay {
            if initEstimate == .noise { throw refuse("--sampler", "--sampler pnp refines an estimate: --init cg or admm-tv (default admm-tv)") }
            if start != nil || eta != nil || gamma != nil || batchIndependent || noiseDir != nil || paper {
                throw refuse("--sampler", "--sampler pnp draws no noise and sets γ per level: --start, --eta, --gamma, --batch-independent, --noise-dir and --paper are for --sampler dds")
            }
            if let l = pnpLevels, Self.pnpLevels(l) == nil { throw refuse("--pnp-levels", "--pnp-levels must be FROM:TO with 0 < TO ≤ FROM ≤ 0.5, or auto:TO with 0 < TO ≤ \(PnPSchedule.firstLevelLow), got '\(l)'") }
        }
        if noiseDir != nil && (method != .dds || batchIndependent) { throw refuse("--noise-dir", "--noise-dir is for batch-consistent --method dds") }
        if let p = prior, p != "gaussian" { throw refuse("--prior", "--prior must be 'gaussian'") }
        if model != nil && prior != nil { throw refuse("--model", "give --model or --prior, not both") }
        if let o = overlap, let n = segmentFrames, o >= n && n > 1 { throw refuse("--overlap", "--overlap must be smaller than --segment-frames") }
        if let m = memoryPerRank, OptionValues.bytes(m) == nil { throw refuse("--memory-per-rank", "--memory-per-rank must be a size like 8G, 1500M or 2.5G, got '\(m)'") }
        if let o = tileOverlap, o > (tile ?? TilePolicy.nativeSize) / 2 { throw refuse("--tile-overlap", "--tile-overlap must be between 0 and half the tile") }
        _ = try selection()
    }
}

import Foundation
import SVIFormats
import SVISampler

/// svi's version: `svi --version`, and every report.
package let currentSVIVersion = "0.1.0"

/// The JSON report of `svi restore` (--report).
package struct RestoreReport: Encodable {
    package struct Settings: Encodable {
        package var nfe: Int, cgSteps: Int, eta: Double, gamma: Double?, batchIndependent: Bool, seed: UInt64, batch: Int
        /// Network evaluations per segment (fewer than nfe with a warm start).
        package var evaluations: Int, start: Double, finalCGSteps: Int
        package var initEstimate: String?
        package var cgStop: String
        /// The discrepancy stop's σ where it is not the spec's (the white part of a codec's noise).
        package var cgStopSigma: Double?
        /// dds or pnp, and plug-and-play's levels and weight ("from:to:weight").
        package var sampler: String, pnp: String?
        package init(_ s: SamplerSettings) {
            sampler = s.pnp == nil ? "dds" : "pnp"; pnp = s.pnp?.description
            cgStop = s.discrepancyStop ? "discrepancy" : "iterations"
            cgStopSigma = s.discrepancyStop ? s.discrepancySigma : nil
            nfe = s.nfe; cgSteps = s.cgSteps; eta = s.eta; gamma = s.gamma
            batchIndependent = s.batchIndependent; seed = s.seed; batch = s.batch
            evaluations = s.networkEvaluations; start = s.start; finalCGSteps = s.finalCGSteps ?? s.cgSteps
            initEstimate = s.startFrom == .noise ? nil : s.startFrom.rawValue
        }
        package enum CodingKeys: String, CodingKey {
            case nfe, eta, gamma, seed, batch, evaluations, start, sampler, pnp
            case cgSteps = "cg_steps", batchIndependent = "batch_independent", finalCGSteps = "final_cg_steps", initEstimate = "init", cgStop = "cg_stop", cgStopSigma = "cg_stop_sigma"
        }
    }
    package var sviVersion = currentSVIVersion
    package var input: String, output: String, method: String, degradation: String
    package var frames: Int, frameShape: [Int], threads: Int
    package var ranks = 1
    /// The host of each rank, in rank order (multi-rank runs).
    package var rankHosts: [String]?
    /// The stall bound in force at the end (seconds; nil: none).
    package var stallBoundSeconds: Double?
    /// The largest MPI message (bytes): larger blocks travel in pieces of this size.
    package var mpiChunkBytes: Int?
    package var perRank: [[String: Double]]?
    package var resumedFromStep: Int?
    /// Segments finished by an earlier run (their frames came from the checkpoint).
    package var resumedFromSegment: Int?
    /// [a, b) of the input's frames, when only part of it was restored.
    package var clip: [Int]?
    package struct Segments: Encodable {
        package var count: Int, segmentFrames: Int, overlap: Int, largestOverlap: Int, reason: String
        package enum CodingKeys: String, CodingKey { case count, overlap, reason, segmentFrames = "segment_frames", largestOverlap = "largest_overlap" }
    }
    package var segments: Segments?
    package var quality: [String: [Double]]?
    package var model: String?
    package var settings: Settings?
    package var baseline: [String: Double]?
    /// The measurement's noise: each part and where it came from; `noiseSigma` is the σ used.
    package var noise: NoiseLevel?
    package var noiseSigma: Double?
    /// The prior's test on the warm start (`DDSSampler.priorCheck`, the largest over segments)
    /// and the segments whose output is the start because the prior failed it.
    package var priorCheck: Double?
    /// Plug-and-play's first level per segment where the prior's test chose it ("auto" levels).
    package var pnpFirstLevels: [Double]?
    package var priorRejectedSegments: [Int]?
    /// Tiles of the network (nil: whole frames), and why.
    package var tiles: TilePolicy?
    package var timings: [String: Double] = [:]
    package var residual: Double?
    package var peakMemoryMB: Double?
    package var machine = MachineInfo.current
    /// What was asked, as one value (the options as given; the sampler's settings above are
    /// what they came to for this degradation and noise).
    package var request: RestoreSettings?

    package enum CodingKeys: String, CodingKey {
        case sviVersion = "svi_version", frameShape = "frame_shape", peakMemoryMB = "peak_memory_mb", perRank = "per_rank", ranks, mpiChunkBytes = "mpi_chunk_bytes", resumedFromStep = "resumed_from_step", quality
        case resumedFromSegment = "resumed_from_segment", clip, segments
        case input, output, method, degradation, frames, threads, model, settings, baseline, tiles, timings, residual, machine, noise
        case noiseSigma = "noise_sigma", priorCheck = "prior_check", priorRejectedSegments = "prior_rejected_segments", pnpFirstLevels = "pnp_first_levels"
        case rankHosts = "rank_hosts", stallBoundSeconds = "stall_bound_seconds", request
    }
}

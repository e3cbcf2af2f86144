import Foundation
import SVICore
import SVIOperators
import SVIPipeline

extension DryRunPlan {
    /// The plan as the terminal shows it.
    func printSummary() {
        let frame = FrameShape(channels: frameShape[0], height: frameShape[1], width: frameShape[2])
        print("svi restore --dry-run: \(input)")
        print("  job:        \(frames) frames \(frame), \(degradation), \(steps) steps × \(cgSteps) CG, batch \(batch)")
        print("  noise:      \(noise)")
        let listed = segmentStarts.prefix(6).map { "\($0)–\($0 + segmentFrames - 1)" }.joined(separator: ", ") + (segments > 6 ? ", …" : "")
        print("  segments:   \(segments) of \(segmentFrames) frames, overlap \(overlap) (\(segmentReason)): \(listed)")
        let least = framesPerRankMin, most = framesPerRankMax
        print("  ranks:      \(ranks); frames per rank \(least == most ? "\(most)" : "\(least)–\(most)") per segment; temporal halo \(halo) frame(s) each side")
        print("  model:      \(model)\(parameters > 0 ? ", \(parameters) parameters" : "")")
        if let t = tiles { print("  tiles:      \(t.tile)×\(t.tile), overlap \(t.overlap), \(batch) per call (\(t.reason))") }
        print(String(format: "  memory:     per rank %.0f MB = weights %.0f + Winograd cache %.0f + activations %.0f (batch %d) + video state %.0f",
                     totalPerRankMB, weightsMB, winogradCacheMB, activationsMB, batch, videoStateMB))
        print(String(format: "              rank 0 peak %.0f MB (+ runtime %.0f, I/O buffers %.0f)", predictedPeakRank0MB, runtimeMB, rootIOMB))
        print(String(format: "  time:       %.3f s per frame (%@); data consistency %.3f s per step", secondsPerFrame, secondsPerFrameSource, dataConsistencySecondsPerStep))
        print(String(format: "              %.1f s per step, %.1f s (%.2f h) for the job (%d segment(s) × %d steps)", secondsPerStep, secondsForJob, secondsForJob / 3600, segments, steps))
        print(String(format: "  exchange:   %.1f MB per step per rank (halo frames, float64)", Double(bytesExchangedPerStepPerRank) / 1e6))
        print(String(format: "  scheduler:  sbatch --signal=B:USR1@%d (one step %.1f s × 1.5 + checkpoint %.0f s + 60 s); Cluster/slurm.sbatch also passes --deadline", signalMarginSeconds, secondsPerStep, checkpointSeconds))
        for w in warnings { print("  warning:    \(w)") }
    }
}

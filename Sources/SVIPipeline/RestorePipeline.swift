import Foundation
import SVICore
import SVIContracts

/// One restore, as a library call (issue 29): built from a `RestoreSettings` value (files,
/// degradation, sampler, segments, checkpoints), it plans and runs the job. `svi restore`
/// parses its options into the settings and calls `run`; `--dry-run` prints `plan` — the
/// planning code the run uses (`RestoreSettings.planSegments`, the noise probe, the sampler's
/// settings), so the two cannot drift. Tests call both in-process.
package struct RestorePipeline: Sendable {
    package let settings: RestoreSettings

    /// Refuses settings whose options contradict each other (`RestoreSettings.validate`).
    package init(_ settings: RestoreSettings) throws {
        try settings.validate()
        self.settings = settings
    }

    /// What the job will need, per rank, before it is launched on `ranks` ranks
    /// (`settings.planRanks` overrides): segments, tiles, memory, time, bytes exchanged —
    /// from the files' headers and one timed denoiser call at most (`settings.calibrated`
    /// skips it). Nothing of the job is allocated.
    package func plan(ranks: Int) throws -> DryRunPlan {
        try settings.dryRunPlan(ranks: ranks)
    }

    /// Runs the job on every rank of `comm` (each rank calls it): reads the measurement on
    /// rank 0, restores it segment by segment, writes the output and the report. Returns the
    /// report on rank 0 (nil on the others). `control`: how a stop is asked for — the
    /// process's signals (`svi restore`) or a handler (the default: never). Errors are
    /// `SVIError`s; a stop (exit status 85, with a checkpoint when the settings give a folder)
    /// and other ranks' share of a failure rank 0 reports are `SilentFailure`.
    @discardableResult
    package func run(comm: Communicator, started: Date = Date(), control: RunControl = .handler({ false })) throws -> RestoreReport? {
        try RestoreJob(settings, comm: comm, started: started, control: control).run()
    }
}

import Foundation
import SVICore
import SVIFormats
import SVICluster

/// SIGTERM, SIGUSR1 (what Slurm sends before a time limit or pre-emption), SIGHUP (a closed
/// terminal or ssh session) and SIGINT ask a
/// running restore to stop after the current step, write a checkpoint and exit with
/// `StopRequest.exitStatus`. A second SIGINT ends the process at once.
package enum StopRequest {
    /// The exit status of a run that stopped early with a checkpoint: the Slurm script requeues on it.
    package static let exitStatus: Int32 = 85

    package nonisolated(unsafe) static var signalled: sig_atomic_t = 0
    /// Set while the steps run without a checkpoint folder: there is nothing to save, so a
    /// signal ends the process at once (128 + signal) instead of after the step under way, which
    /// can take minutes on large frames. Nothing of the output exists yet then.
    package nonisolated(unsafe) static var exitAtOnce: sig_atomic_t = 0

    /// The output's temporary file, removed by a signal that ends the process at once.
    nonisolated(unsafe) private static var temporaryCString: UnsafeMutablePointer<CChar>?
    package static func removeOnSignal(_ path: String?) {
        let old = temporaryCString
        temporaryCString = path.map { strdup($0) }
        free(old)
    }

    package static func install(exitAtOnce atOnce: Bool = false) {
        exitAtOnce = atOnce ? 1 : 0
        let handler: @convention(c) (Int32) -> Void = { sig in
            if StopRequest.exitAtOnce != 0 {
                if let t = StopRequest.temporaryCString { unlink(t) }     // async-signal-safe
                _exit(128 + sig)
            }
            if sig == SIGINT && StopRequest.signalled != 0 { _exit(130) }
            StopRequest.signalled = sig_atomic_t(sig)
        }
        // A parent may have blocked them (the mask is inherited across exec): unblock them here.
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGTERM, SIGUSR1, SIGINT, SIGHUP] { signal(s, handler); sigaddset(&set, s) }
        sigprocmask(SIG_UNBLOCK, &set, nil)
    }

    package static var requested: Bool { signalled != 0 }
}

/// How a running restore learns it should stop after the step under way (with a checkpoint
/// when it has a folder): the command line's signals (`StopRequest`), or a handler an
/// in-process caller gives — a test, a service — which installs no signal handler.
package struct RunControl: Sendable {
    /// Asked after every step and between segments, on every rank (any rank's yes stops all).
    package var shouldStop: @Sendable () -> Bool
    /// Install SIGTERM/SIGUSR1/SIGHUP/SIGINT handlers for the steps (the process's own).
    package var handlesSignals: Bool
    /// How the stop is named in the progress line.
    package var stopReason: String

    /// Signals, as `svi restore` runs.
    package static let signals = RunControl(shouldStop: { StopRequest.requested }, handlesSignals: true, stopReason: "by a signal")

    /// A handler; no signal handlers.
    package static func handler(_ shouldStop: @escaping @Sendable () -> Bool) -> RunControl {
        RunControl(shouldStop: shouldStop, handlesSignals: false, stopReason: "on request")
    }

    /// The steps begin: with signals, a signal now stops after the step (or at once when
    /// there is nothing to save).
    func enterSteps(exitAtOnce: Bool) {
        if handlesSignals { StopRequest.install(exitAtOnce: exitAtOnce) }
    }

    /// Output is being written: a signal must not end the process at once.
    func leaveSteps() {
        if handlesSignals { StopRequest.exitAtOnce = 0 }
    }
}

/// What svi checks of the scheduler that started it.
package enum SchedulerCheck {
    /// `srun` started several tasks of one step but none of them joined an MPI job (the site's
    /// default `MpiDefault=none`, or `srun` without `--mpi=pmix`): every task would run the
    /// whole job alone and they would all write the same output and checkpoints. Refuse.
    package static func refuseTasksWithoutMPI(environment env: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard !MPICommunicator.launchedByMPI(env), env["SLURM_PROCID"] != nil,
              let tasks = env["SLURM_STEP_NUM_TASKS"].flatMap({ Int($0) }), tasks > 1 else { return }
        throw SVIError.cluster("srun started \(tasks) tasks but MPI is not initialised in them (each would run the whole job alone): launch with srun --mpi=pmix, or mpirun")
    }
}

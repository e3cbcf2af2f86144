import ArgumentParser
import Foundation
import SVICore
import SVIPipeline
import SVIFormats
import CBLAS
import Logging
import SVINetwork

@main
struct SVI: ParsableCommand {
    static let version = currentSVIVersion
    static let configuration = CommandConfiguration(
        commandName: "svi",
        abstract: "Restore degraded video with a pre-trained image diffusion model (batch-consistent DDS).",
        discussion: """
        Videos are any file FFmpeg reads (mp4, mkv, PNG sequences, …) or float32 .npy tensors
        shaped [T][C][H][W]; pixel values are in [0,1]. Sizes are WIDTHxHEIGHT and frame
        ranges a:b in every command.
        A degradation is a spec string such as temporal=uniform:13 or temporal=gaussian:1.0,sr=4
        (keys: temporal, boundary, blur, sr, inpaint, noise; see `svi degrade --help`).
        Exit status: 0 done; 64 bad option; 65 bad input file; 69 ranks cannot work together;
        70 the computation failed (NaN); 71 not enough memory; 74 read/write failed;
        85 stopped with a checkpoint (run the same command to continue); 1 anything else.
        """,
        version: version,
        subcommands: [DegradeCommand.self, RestoreCommand.self, EvalCommand.self, NoiseCommand.self, CompareCommand.self, ModelCommand.self, BenchCommand.self, SynthCommand.self]
    )

    /// Release builds use AVX2 and FMA: say so plainly on a processor without them rather
    /// than die of an illegal instruction.
    static func main() {
        #if arch(x86_64) && !DEBUG
        let flags = MachineInfo.cpuFlags()   // empty where /proc/cpuinfo has none: no check
        if !flags.isEmpty && (!flags.contains("avx2") || !flags.contains("fma")) {
            FileHandle.standardError.write("Error: this svi build needs a processor with AVX2 and FMA (x86-64 since 2013); rebuild with `swift build -c debug` to run without them\n".data(using: .utf8)!)
            Foundation.exit(1)
        }
        #endif
        BLASCore.replaceGenericKernels()
        // Test hook (the MPI test helper): mark that this rank reached svi, so a launch that
        // failed before svi started can be told from a failure of svi.
        if let dir = ProcessInfo.processInfo.environment["SVI_TEST_LAUNCH_DIR"] {
            let rank = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_RANK"] ?? "single"
            FileManager.default.createFile(atPath: dir + "/rank-\(rank)-\(getpid())", contents: nil)
        }
        // Past a file-size limit (`ulimit -f`) a write fails with EFBIG and the command ends
        // with one line, its temporary file removed, instead of dying of SIGXFSZ and leaving it.
        signal(SIGXFSZ, SIG_IGN)
        // Swift decodes arguments with invalid UTF-8 by replacing the bad bytes with U+FFFD, so
        // `-o $'bad\xff.npy'` would name another file (one with U+FFFD in its name): refuse.
        for i in 1..<Int(CommandLine.argc) {
            guard let raw = CommandLine.unsafeArgv[i], String(validatingCString: raw) == nil else { continue }
            let shown = String(decoding: UnsafeBufferPointer(start: UnsafeRawPointer(raw).assumingMemoryBound(to: UInt8.self), count: strlen(raw)), as: UTF8.self)
            FileHandle.standardError.write("Error: argument \(i) ('\(shown)') is not valid UTF-8: svi takes file names and options in UTF-8 (rename the file)\n".data(using: .utf8)!)
            Foundation.exit(64)
        }
        // Errors are one line (a usage error too: ArgumentParser would add the usage block),
        // exit 64 for bad options, svi's errors by kind (SVIError.Kind), 1 for anything else;
        // --help and --version as usual.
        do {
            var command = try parseAsRoot(nil)
            try OptionBounds.check(command)
            try command.run()
            // `svi eval --json > FILE` on a full disk: stdio's buffered output fails only when
            // flushed, so flush here and say so instead of exiting 0 with an empty file.
            if fflush(nil) != 0 {
                FileHandle.standardError.write("Error: cannot write to standard output: \(String(cString: strerror(errno)))\n".data(using: .utf8)!)
                Foundation.exit(SVIError.Kind.io.exitStatus)
            }
        } catch {
            // svi's own errors carry their kind's status (sysexits.h: 64 option, 65 input file,
            // 69 cluster, 70 numeric, 71 memory, 74 I/O); ArgumentParser's keep its own.
            let code = (error as? SVIError).map { ExitCode($0.exitStatus) } ?? exitCode(for: error)
            if code == .success || error is ExitCode || error is CleanExit { exit(withError: error) }
            var text = message(for: error).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " ")
            if code == .validationFailure { text += " (see svi --help)" }
            FileHandle.standardError.write("Error: \(text)\n".data(using: .utf8)!)
            Foundation.exit(code.rawValue)
        }
    }
}

/// Threads and progress output: every command that computes.
struct RuntimeOptions: ParsableArguments {
    @Option(name: .long, help: "Threads for svi's kernels and OpenBLAS (default: the cores this process may use, shared among the MPI ranks of the node when they are not bound to cores).")
    var threads: Int?

    @Flag(name: .long, help: "No progress output.")
    var quiet = false

    func apply() throws {
        if let t = threads {
            Parallel.threads = t
        } else {
            Parallel.threads = RuntimeOptions.defaultThreads(environment: ProcessInfo.processInfo.environment,
                                                             usable: ProcessInfo.processInfo.activeProcessorCount,
                                                             machine: ProcessInfo.processInfo.processorCount)
        }
        GEMMThreading.configureBLAS()
    }
}

/// The network's kernels: only for the commands that run a network (restore, model run, bench).
struct KernelOptions: ParsableArguments {
    @Flag(name: .long, help: "Run the plain convolution kernels (im2col + GEMM) instead of the fast path (Winograd), for comparison.")
    var referenceKernels = false

    @Option(name: .long, help: ArgumentHelp("Arithmetic of the network's convolutions: fp32 (default), or bf16 — weights and activations rounded to bfloat16, products summed in float32 (AVX-512 BF16, about twice the multiply rate; needs a CPU with avx512_bf16). GroupNorm, attention's softmax and everything outside the network stay float32.", valueName: "fp32|bf16"))
    var precision: Precision = .fp32

    /// Sets the network's kernels and precision, refusing bf16 on a CPU without it (one line).
    func apply(to net: UNet) throws {
        try precision.checkAvailable(cpu: MachineInfo.current.cpu)
        net.precision = precision
        net.referenceKernels = referenceKernels
    }
}

extension Precision: ExpressibleByArgument {}

extension RuntimeOptions {
    /// Threads per process when --threads is not given. A rank the launcher bound to cores
    /// sees only those (`usable`); unbound ranks on one node would each see the whole machine
    /// and oversubscribe it — spinning BLAS threads then run ~10× slower — so they split it.
    static func defaultThreads(environment: [String: String], usable: Int, machine: Int) -> Int {
        let local = ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE", "PMI_LOCAL_SIZE"]
            .lazy.compactMap { environment[$0].flatMap { Int($0.split(separator: "(").first ?? "") } }.first ?? 1
        if usable >= machine && local > 1 { return max(1, machine / local) }
        return max(1, usable)
    }
}

/// `--model`, or the old spelling `--weights` with a warning (kept for one release).
func modelOption(model: String?, weights: String?) throws -> String? {
    if let w = weights {
        if model != nil { throw ValidationError("give --model only (--weights is its old spelling)") }
        log.warning("--weights is now --model (as in svi restore); the old spelling goes in the next release")
        return w
    }
    return model
}

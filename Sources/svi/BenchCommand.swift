import ArgumentParser
import Foundation
import SVICore
import SVIPipeline
import SVIFormats
import SVIMedia
import SVINetwork
import SVISampler
import SVICluster

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks.",
        subcommands: [UNetBench.self, CommBench.self])

    struct UNetBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "unet",
            abstract: "Time U-Net forward passes: seconds per frame, GFLOP/s, peak memory.",
            discussion: "Without --model the network gets random weights made in-process (the architecture is what matters for speed).")

        @Option(name: .long, help: "Architecture preset (adm-256-uncond, adm-ffhq-256). Default adm-256-uncond.")
        var preset: String?

        @Option(name: .long, help: "Architecture as guided-diffusion JSON options.")
        var config: String?

        @Option(name: .long, help: "Checkpoint to time instead of random weights.")
        var model: String?

        @Option(name: .long, help: .hidden)
        var weights: String?

        @Option(name: .long, help: "Frame size WxH, as everywhere.")
        var size: String = "256x256"

        @Option(name: .long, help: "Frames per forward pass.")
        var batch: Int = 1

        @Option(name: .long, help: "Timed runs after one warm-up; the median is reported.")
        var repeats: Int = 3

        @Flag(name: .long, help: "Print time and GFLOP/s per kind of layer.")
        var profile = false

        @Flag(name: .long, help: "Print one line of JSON at the end.")
        var json = false

        @Option(name: .long, help: "Read the input from this .npy and write the output to --output (for cross-checks with other engines).")
        var input: String?

        @Option(name: .long, help: "Output .npy of the last run (with --input).")
        var output: String?

        @Flag(name: .long, help: "Replace --output if it exists.")
        var overwrite = false

        @Option(name: .long, help: "Timestep of the runs.")
        var timestep: Int = 500

        @OptionGroup var tiles: TileOptions

        @Option(name: .long, help: "Tiles per network call with --tile.")
        var tileBatch: Int = 1

        @Option(name: .long, help: "Untimed passes before the timed ones.")
        var warmup: Int = 1

        @OptionGroup var runtime: RuntimeOptions
        @OptionGroup var kernels: KernelOptions

        func run() throws {
            try runtime.apply()
            if let o = output {
                guard input != nil else { throw ValidationError("--output is for --input (the output of that input)") }
                try OutputGuard.check(outputs: [(o, "--output")], inputs: [input, model, weights, config].compactMap { $0 }, overwrite: overwrite)
                try AtomicFile.checkWritable(o, overwrite: overwrite)
            }
            guard let (w, h) = FrameSelection.parseSize(size), w * h <= 1 << 24 else { throw ValidationError("--size must be WxH of at most 16.7 M pixels (4096x4096), e.g. 256x256") }
            var s = UNetBenchmark.Settings()
            (s.width, s.height, s.batch, s.repeats, s.warmup, s.timestep, s.profile) = (w, h, batch, repeats, warmup, timestep, profile)
            s.tile = tiles.tile ?? 0; s.tileOverlap = tiles.tileOverlap ?? s.tile / 4; s.tileBatch = tileBatch
            let (net, label) = try UNetBenchmark.network(model: try modelOption(model: model, weights: weights), preset: preset, config: config)
            try kernels.apply(to: net)
            let r = try UNetBenchmark.run(net, label: label, input: try input.map { try NPY.readFloat32($0) }, settings: s)
            let m = MachineInfo.current
            let tiling = r.grid.map { g in ", tiles \(g.width)x\(g.height) overlap \(s.tileOverlap) (\(g.across)x\(g.down) per frame, \(tileBatch) per call)" } ?? ""
            print("svi bench unet: \(label), \(net.parameterCount) parameters (weights \(net.parameterCount * 4 / 1_000_000) MB), input \(r.inputShape)\(tiling), precision \(net.precision.rawValue)")
            print("machine: \(m.cpu), \(m.cores) cores, ISA \(m.isa), svi kernels \(m.kernelsISA), OpenBLAS core \(m.openblasCore)\(m.openblasDetected.map { " (OpenBLAS detected \($0); svi chose this, see BLASCore)" } ?? ""), threads \(Parallel.threads)")
            print(String(format: "median %.3f s per pass, %.3f s per frame, %.1f GFLOP per frame, %.1f GFLOP/s, peak RSS %.0f MB",
                         r.median, r.secondsPerFrame, r.flopsPerPass / 1e9 / Double(r.frames), r.gflops, peakResidentMB() ?? -1))
            print("runs (s): " + r.times.map { String(format: "%.3f", $0) }.joined(separator: " "))
            if let p = r.profile { print(p) }
            if let o = output { try NPY.write(r.output, to: o, overwrite: overwrite) }
            if json {
                let obj: [String: Any] = ["seconds_per_frame": r.secondsPerFrame, "batch": r.frames, "gflops": r.gflops,
                                          "runs": r.times, "peak_rss_mb": peakResidentMB() ?? -1, "threads": Parallel.threads,
                                          "weights_mb": Double(net.parameterCount * 4) / 1e6, "tile": s.tile, "tile_overlap": s.tile > 0 ? s.tileOverlap : 0,
                                          "tile_batch": tileBatch, "width": r.inputShape[3], "height": r.inputShape[2], "precision": net.precision.rawValue,
                                          "cpu": m.cpu, "isa": m.isa, "kernels_isa": m.kernelsISA, "openblas_core": m.openblasCore,
                                          "openblas_detected": m.openblasDetected ?? m.openblasCore]
                print(String(data: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), encoding: .utf8)!)
            }
        }
    }
}

extension BenchCommand {
    /// The two kinds of communication a restore does, timed alone under mpirun (issue 28: the
    /// cost model's constants measured on the network the job runs on, not on shared memory).
    struct CommBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "comm",
            abstract: "Time MPI exchanges as restore does them: halo exchange of B bytes with each neighbouring rank, and a reduction (run under mpirun).",
            discussion: "Each rank owns one frame of B bytes and fetches its neighbours' (as the temporal operator's halo), then all ranks reduce one number (as CG's inner products). Prints the median over --repeats of the slowest rank, per size; --json prints one line per size.")

        @Option(name: .long, help: "Message sizes in bytes, comma-separated.")
        var bytes: String = "8,4096,65536,1048576,8388608"

        @Option(name: .long, help: "Timed exchanges per size (after 3 untimed); the median is reported.")
        var repeats: Int = 20

        @Flag(name: .long, help: "One line of JSON per size.")
        var json = false

        func run() throws {
            let sizes = bytes.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !sizes.isEmpty, sizes.allSatisfy({ $0 != nil && (8...(1 << 30)).contains($0!) }) else {
                throw ValidationError("--bytes must be sizes from 8 to 1073741824, comma-separated, got '\(bytes)'")
            }
            guard MPICommunicator.launchedByMPI else { throw SVIError.cluster("svi bench comm measures MPI between ranks: run it under mpirun (or srun --mpi=pmix) with 2 or more ranks") }
            let comm = try MPICommunicator()
            defer { comm.finalize() }
            guard comm.size > 1 else { throw SVIError.cluster("svi bench comm needs 2 or more ranks (mpirun -np 2 …)") }
            let partition = FramePartition(totalFrames: comm.size, ranks: comm.size)
            let m = MachineInfo.current
            if comm.rank == 0 && !json {
                print("machine: \(m.cpu), \(m.cores) cores; \(comm.size) ranks on \(Set(comm.hosts).count) host(s): \(comm.hosts.joined(separator: ","))")
                print("| bytes | halo exchange s (median, slowest rank) | reduction s (median, slowest rank) |")
                print("| --- | --- | --- |")
            }
            for b in sizes.map({ $0! }) {
                let local = Tensor64(shape: [1, max(b / 8, 1)])
                var halo: [Double] = [], reduce: [Double] = []
                for i in 0..<(repeats + 3) {
                    comm.barrier()
                    var t0 = Date()
                    _ = comm.fetchFrames(of: local, partition: partition) { r in [r - 1, r + 1].filter { (0..<comm.size).contains($0) } }
                    let h = Date().timeIntervalSince(t0)
                    comm.barrier()
                    t0 = Date()
                    _ = comm.allreduceMax([Double(i)])
                    let a = Date().timeIntervalSince(t0)
                    if i >= 3 { halo.append(h); reduce.append(a) }
                }
                func median(_ v: [Double]) -> Double { let s = v.sorted(); return s[s.count / 2] }
                let mine = [median(halo), median(reduce)]
                let worst = comm.allreduceMax(mine)
                if comm.rank == 0 {
                    if json {
                        let line: [String: Any] = ["bytes": b, "ranks": comm.size, "hosts": Set(comm.hosts).count, "halo_s": worst[0], "reduction_s": worst[1], "repeats": repeats]
                        print(String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self))
                    } else {
                        print(String(format: "| %d | %.6f | %.6f |", b, worst[0], worst[1]))
                    }
                }
            }
        }
    }
}

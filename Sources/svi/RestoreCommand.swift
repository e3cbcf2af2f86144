import ArgumentParser
import Foundation
import SVICore
import SVICluster
import SVIOperators
import SVISampler

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

    @Argument(help: "Measurement, float32 .npy shaped [T][C][h][w].")
    var input: String

    @Option(name: .shortAndLong, help: "Restored video (.npy), [0,1].")
    var output: String

    @Option(name: .long, help: "Degradation spec (default: from the sidecar IN.json).")
    var degradation: String?

    @Option(name: .long, help: "Seed of the inpainting mask (default: from the sidecar, else 0).")
    var maskSeed: UInt64?

    @Option(name: .long, help: "Method: dds (diffusion), cg (CG alone from Aᵀy) or admm-tv (3-D total variation).")
    var method: RestoreMethod = .dds

    @Option(name: .long, help: "Diffusion model weights (.safetensors or PyTorch .pt) for --method dds.")
    var model: String?

    @Option(name: .long, help: "Architecture preset of --model (adm-256-uncond, adm-ffhq-256); inferred from the weights when omitted.")
    var preset: String?

    @Option(name: .long, help: "Architecture as guided-diffusion JSON options (a file, or one with a \"config\" key).")
    var config: String?

    @Option(name: .long, help: "Use a classical prior instead of a network: 'gaussian' (i.i.d. Gaussian pixels; for tests and comparisons).")
    var prior: String?

    @Option(name: .long, help: "Diffusion steps N (NFE). Default 20, or 100 with a spatial part.")
    var nfe: Int?

    @Option(name: .long, help: "CG iterations per diffusion step (default 5); for --method cg, total iterations (default 100); for admm-tv, inner iterations (default 8).")
    var cgSteps: Int?

    @Option(name: .long, help: "DDIM η, share of fresh noise (default 0.15, or 0.8 with a spatial part).")
    var eta: Double?

    @Option(name: .long, help: "Proximal weight γ: solve (I + γAᵀA)u = u0 + γAᵀy (default 1 when the spec has noise, else plain CG).")
    var gamma: Double?

    @Flag(name: .long, help: "Draw independent noise per frame (the ablation) instead of one image shared by all frames.")
    var batchIndependent = false

    @Option(name: .long, help: "Seed of all sampler noise (default: random, recorded in the report).")
    var seed: UInt64?

    @Option(name: .long, help: "Frames per denoiser call (default 4).")
    var batch: Int = 4

    @Option(name: .long, help: "ADMM-TV: weight λ of the TV term (default 0.003).")
    var tvLambda: Double = 0.003

    @Option(name: .long, help: "ADMM-TV: penalty ρ (default 0.05).")
    var tvRho: Double = 0.05

    @Option(name: .long, help: "ADMM-TV: outer iterations (default 60).")
    var tvIterations: Int = 60

    @Option(name: .long, help: "Write a JSON report (settings, per-stage times, residual) here.")
    var report: String?

    @Flag(name: .long, help: "Replace OUT (and the report) if they exist.")
    var overwrite = false

    @OptionGroup var runtime: RuntimeOptions

    func validate() throws {
        if let n = nfe, !(1...1000).contains(n) { throw ValidationError("--nfe must be between 1 and 1000") }
        if let m = cgSteps, m < 0 { throw ValidationError("--cg-steps must be ≥ 0") }
        if let e = eta, !(0...1).contains(e) { throw ValidationError("--eta must be in [0, 1]") }
        if let g = gamma, !(g > 0) { throw ValidationError("--gamma must be positive") }
        if batch < 1 { throw ValidationError("--batch must be at least 1") }
        if let p = prior, p != "gaussian" { throw ValidationError("--prior must be 'gaussian'") }
        if model != nil && prior != nil { throw ValidationError("give --model or --prior, not both") }
    }

    func run() throws {
        let started = Date()
        try runtime.apply()
        try AtomicFile.checkWritable(output, overwrite: overwrite)
        if let r = report { try AtomicFile.checkWritable(r, overwrite: true) }
        let progress = Progress(quiet: runtime.quiet)

        // Measurement, degradation and the operator.
        let y = try readVideo(input)
        let sidecar = try Sidecar.load(for: input)
        guard let specText = degradation ?? sidecar?.degradation else {
            throw SVIError.file(input, "no degradation given: pass --degradation SPEC (no sidecar \(Sidecar.path(for: input)) found)")
        }
        let spec = try DegradationSpec.parse(specText)
        let frame = try originalFrame(measurement: y, spec: spec, sidecar: sidecar)
        let dist = Distribution.local(totalFrames: y.frames)
        let op: DegradationOperator
        do { op = try DegradationOperator(spec: spec, frame: frame, totalFrames: y.frames, maskSeed: maskSeed ?? sidecar?.maskSeed ?? 0) }
        catch let e as SVIError { throw SVIError.file(input, e.message) }
        let mshape = [op.outputShape.channels, op.outputShape.height, op.outputShape.width]
        guard Array(y.shape.dropFirst()) == mshape else {
            throw SVIError.file(input, "measurement frames are \(Array(y.shape.dropFirst())) but \(spec.canonical) of \(frame) frames gives \(mshape)")
        }
        let loadSeconds = seconds(since: started)

        var rep = RestoreReport(input: input, output: output, method: method.rawValue, degradation: spec.canonical,
                                frames: y.frames, frameShape: [frame.channels, frame.height, frame.width],
                                threads: Parallel.threads)
        rep.timings["load_s"] = loadSeconds
        let result: Tensor
        let solveStart = Date()
        switch method {
        case .dds:
            var settings = SamplerSettings.defaults(for: spec, seed: seed ?? UInt64.random(in: 0...UInt64(UInt32.max)))
            if let n = nfe { settings.nfe = n }
            if let m = cgSteps { settings.cgSteps = m }
            if let e = eta { settings.eta = e }
            if let g = gamma { settings.gamma = g }
            settings.batchIndependent = batchIndependent
            settings.batch = batch
            let denoiser = try makeDenoiser(model: model, preset: preset, config: config, prior: prior, batch: batch, progress: progress)
            rep.model = denoiser.name
            rep.settings = .init(settings)
            let sampler = DDSSampler(op: op, measurement: y, denoiser: denoiser, settings: settings, dist: dist)
            progress.note("svi restore: \(y.frames) frames \(frame), \(spec.canonical), \(settings.nfe) steps, \(denoiser.name)")
            while !sampler.isFinished {
                try sampler.step()
                progress.step("step", sampler.stepIndex, of: sampler.steps.count)
            }
            rep.timings["denoise_s"] = sampler.denoiseSeconds
            rep.timings["data_consistency_s"] = sampler.dataConsistencySeconds
            rep.residual = sampler.residual()
            result = sampler.output()
        case .cg, .admmTV:
            let u: Tensor64
            if method == .cg {
                let iterations = cgSteps ?? 100
                rep.baseline = ["cg_iterations": Double(iterations)]
                u = Baselines.conjugateGradient(op: op, measurement: y, iterations: iterations, dist: dist)
            } else {
                var tv = Baselines.TVSettings()
                tv.lambda = tvLambda; tv.rho = tvRho; tv.iterations = tvIterations; tv.innerCG = cgSteps ?? 8
                rep.baseline = ["lambda": tv.lambda, "rho": tv.rho, "iterations": Double(tv.iterations), "inner_cg": Double(tv.innerCG)]
                u = Baselines.admmTV(op: op, measurement: y, settings: tv, dist: dist)
            }
            rep.residual = DataConsistency(op: op, measurement: y, dist: dist, gamma: nil).relativeResidual(u)
            result = Tensor(converting: u)
            Kernels.clip(result.data, 0, 1, result.count)
            rep.timings["data_consistency_s"] = seconds(since: solveStart)
        }
        rep.timings["solve_s"] = seconds(since: solveStart)

        let writeStart = Date()
        try NPY.write(result, to: output, overwrite: overwrite)
        rep.timings["write_s"] = seconds(since: writeStart)
        rep.timings["total_s"] = seconds(since: started)
        rep.peakMemoryMB = peakResidentMB()
        if let r = report { try writeJSON(rep, to: r) }
        progress.note(String(format: "wrote %@ in %.1fs (residual ‖Au−y‖/‖y‖ = %.3g)", output, rep.timings["total_s"]!, rep.residual ?? .nan))
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
    var model: String?
    var settings: Settings?
    var baseline: [String: Double]?
    var timings: [String: Double] = [:]
    var residual: Double?
    var peakMemoryMB: Double?
    var machine = MachineInfo.current

    enum CodingKeys: String, CodingKey {
        case sviVersion = "svi_version", frameShape = "frame_shape", peakMemoryMB = "peak_memory_mb"
        case input, output, method, degradation, frames, threads, model, settings, baseline, timings, residual, machine
    }
}

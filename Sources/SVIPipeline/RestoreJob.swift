import Foundation
import SVICore
import SVIFormats
import SVICluster
import SVIOperators
import SVISampler
import SVIMedia
import SVIEvaluation

/// What rank 0 reads and decides, sent to every rank before the work starts.
package struct RestorePlan: Codable {
    /// The degradation the solver uses: the spec given, with its noise σ replaced by the
    /// measurement's effective σ (`NoiseLevel`: quantisation, codec and data included).
    package var spec = ""
    /// The spec as given (the report's degradation).
    package var statedSpec = ""
    package var noise: NoiseLevel?
    package var maskSeed: UInt64 = 0
    /// Frames of the clip being restored (all of the input, or `--frames a:b`).
    package var frames = 0
    /// Clean frame [C, H, W] and measured frame [c, h, w].
    package var original: [Int] = []
    package var measured: [Int] = []
    package var seed: UInt64 = 0
    /// Where the clip sits in its file: its first frame, and the file's length (see
    /// `FrameSource.fileFrames`) — the temporal operator's rows at the clip's ends.
    package var clipStart = 0
    package var fileFrames = 0
}

/// Rank 0's decision on segments and resuming, sent to every rank once the model is loaded.
package struct SegmentDecision: Codable {
    package var plan: SegmentPlan?
    package var segmentsDone = 0
    package var reason = ""
}

/// One `svi restore` run (issue 15): reads the measurement frame by frame on rank 0, restores
/// it as a sequence of overlapping temporal segments — each one exact distributed problem over
/// all ranks — cross-fades the segments on rank 0 and streams the frames into the output.
/// Memory per rank depends on the segment's length, not the video's.
package final class RestoreJob {
    /// What was asked (the settings; `settings` below is the sampler's).
    package let request: RestoreSettings
    package let comm: Communicator
    package let started: Date
    package let progress: Progress
    /// How a stop is asked for: signals (the command line) or a handler (in-process callers).
    let control: RunControl
    package var rank: Int { comm.rank }

    // Rank 0's I/O.
    private var source: FrameSource?
    private var referenceSource: FrameSource?
    private var sink: MediaIO.Sink?
    /// Measured frames segment k shares with segment k+1 (rank 0), and an error while reading.
    private var kept: Tensor?, nextKept: Tensor?
    private var keptStart = 0, keptCount = 0, nextKeptStart = 0, nextKeptCount = 0
    private var stagingError: Error?
    private var prefixHasher = FNV1a()
    private var prefixHashes: [Int: String] = [:]
    /// Where a finished segment's progress needs the prefix hash: the segments' starts and the
    /// clip's end (only these are kept, so nothing grows with the video).
    private var prefixWanted: Set<Int> = []
    private var psnr: [Double] = [], ssim: [Double] = []
    private var referenceFrame: Tensor?
    /// The job step this process started at (for the ETA across segments).
    private var firstJobStep: Int?
    /// When this process began its first DDS step (the ETA counts from there).
    private var stepsStarted: Date?

    package init(_ request: RestoreSettings, comm: Communicator, started: Date, control: RunControl) {
        self.request = request
        self.control = control
        self.comm = comm
        self.started = started
        progress = Progress(quiet: request.quiet || comm.rank != 0)
    }

    /// Issue 28: `--checkpoint-dir` and the output's folder must be one folder for every rank
    /// (a requeued job's rank 0 may start on another node and must find the checkpoints there).
    /// Rank 0 leaves a token in each, every rank looks for it, and a folder some rank cannot see
    /// (a node-local disk) stops the job before the first step, naming the rank and its host.
    private func checkFoldersAreShared() throws {
        var folders = [("the output's folder", URL(fileURLWithPath: request.output).deletingLastPathComponent().path)]
        if request.method == .dds, let d = request.checkpointFolder { folders.append(("--checkpoint-dir", d)) }
        // The folders' times before the tokens, put back after (the check leaves no trace).
        var times: [String: stat] = [:]
        let tokens: [String] = try comm.agree {
            var paths: [String] = []
            for (_, dir) in folders {
                var st = stat()
                if stat(dir, &st) == 0 { times[dir] = st }
                let (path, fd) = try TemporaryName.file(for: dir + "/.svi-shared-folder-check")
                close(fd)
                paths.append(path)
            }
            return paths
        }
        let seen = comm.gatherToRoot(tokens.map { FileManager.default.fileExists(atPath: $0) ? 1 : 0 })
        _ = try comm.agree { () throws -> Bool in
            for p in tokens { unlink(p) }
            for (dir, st) in times {
                var t = [st.st_atim, st.st_mtim]
                _ = utimensat(AT_FDCWD, dir, &t, 0)
            }
            let hosts = (comm as? MPICommunicator)?.hosts ?? []
            for (i, (what, dir)) in folders.enumerated() {
                let blind = (0..<comm.size).filter { seen[$0 * folders.count + i] == 0 }
                guard !blind.isEmpty else { continue }
                let names = blind.prefix(4).map { r in "rank \(r)" + (r < hosts.count ? " on \(hosts[r])" : "") }.joined(separator: ", ") + (blind.count > 4 ? " and \(blind.count - 4) more" : "")
                throw SVIError.cluster("\(what) \(dir) is not one folder for every rank: \(names) cannot see what rank 0 writes there (a node-local disk?); give a folder on a file system every node mounts")
            }
            return true
        }
    }

    // MARK: planning (rank 0)

    /// Opens the input, the reference and the output, and settles the degradation.
    private func openInputs() throws -> RestorePlan {
        try request.checkOutputs(writingVideo: true)
        try AtomicFile.checkWritable(request.output, overwrite: request.overwrite)
        if let r = request.report { try AtomicFile.checkWritable(r, overwrite: request.overwrite) }
        let selection = try request.selection()
        let src = try FrameSource(request.input, selection: selection, progress: progress)
        let sidecar = try Sidecar.load(for: request.input)
        guard let specText = request.degradation ?? sidecar?.degradation else {
            throw SVIError.file(request.input, "no degradation given: pass --degradation SPEC (no sidecar \(Sidecar.path(for: request.input)) found)")
        }
        let spec = try DegradationSpec.parse(specText)
        if (selection.crop != nil || selection.size != nil) && spec.inpaintKeep != nil {
            throw SVIError.file(request.input, "--crop and --size change the frame, but the inpainting mask of \(spec.canonical) belongs to the whole frame: restore whole frames")
        }
        let useSidecarShape = selection.crop == nil && selection.size == nil
        let frame = try request.originalFrame(measured: src.frameShape, spec: spec, sidecar: useSidecarShape ? sidecar : nil)
        // The noise the solver assumes: what the spec states, the file's quantisation and codec,
        // and what the data show (issue 27).
        let noise = try NoiseProbe.measure(request.input, selection: selection, firstIndex: src.firstIndex, frames: src.frames,
                                           stated: spec.noiseSigma, override: request.noiseSigma, progress: progress)
        var solverSpec = spec
        solverSpec.noiseSigma = noise.effective
        let plan = RestorePlan(spec: solverSpec.canonical, statedSpec: spec.canonical, noise: noise,
                               maskSeed: request.maskSeed ?? sidecar?.maskSeed ?? 0, frames: src.frames,
                               original: [frame.channels, frame.height, frame.width], measured: src.frameShape,
                               seed: request.seed ?? request.checkpointSeed() ?? UInt64.random(in: 0...UInt64(UInt32.max)),
                               clipStart: src.firstIndex, fileFrames: src.fileFrames)
        let op = try request.makeOperator(plan, window: VideoWindow(start: plan.clipStart, frames: 1, videoFrames: plan.fileFrames))
        let mshape = [op.outputShape.channels, op.outputShape.height, op.outputShape.width]
        guard src.frameShape == mshape else {
            throw SVIError.file(request.input, "measurement frames are \(src.frameShape) but \(spec.canonical) of \(frame) frames gives \(mshape)")
        }
        // Everything that could fail after the solve is tried before the first step: the
        // output is opened (type, size, folder, --overwrite), the reference and the checkpoint
        // folder are checked.
        if let r = request.reference {
            var refSel = FrameSelection(range: selection.range)
            let f = spec.srFactor ?? 1
            if let c = selection.crop { refSel.crop = (c.width * f, c.height * f, c.x * f, c.y * f) }
            if let z = selection.size { refSel.size = (z.width * f, z.height * f) }
            let ref = try FrameSource(r, selection: MediaIO.isNPY(r) ? FrameSelection(range: selection.range) : refSel, progress: progress)
            guard ref.frames == plan.frames, ref.frameShape == plan.original else {
                throw SVIError.file(r, "reference has shape \([ref.frames] + ref.frameShape), the restored video \([plan.frames] + plan.original)")
            }
            referenceSource = ref
        }
        if let dir = request.resume, !FileManager.default.fileExists(atPath: dir) { throw SVIError.file(dir, "no such checkpoint folder") }
        if let dir = request.checkpointFolder, request.method == .dds { try request.checkCheckpointFolder(dir) }
        sink = try request.openSink(plan: plan, info: src.info, sidecar: sidecar, progress: progress)
        if control.handlesSignals { StopRequest.removeOnSignal(sink?.temporaryPath) }
        source = src
        return plan
    }

    /// The segment plan: the checkpoint's when resuming; else `--segment-frames`, or as many
    /// frames as fit in `--memory-per-rank` (default: the memory this rank may use, less a
    /// margin) beside what is already loaded (`fixedBytes`: weights, activations).
    private func decideSegments(_ plan: RestorePlan, fixedBytes: Double) throws -> SegmentDecision {
        let spec = try DegradationSpec.parse(plan.spec)
        var decision = SegmentDecision()
        var (segments, reason) = try request.planSegments(frames: plan.frames, ranks: comm.size, original: plan.original, measured: plan.measured,
                                                      spec: spec, fixedBytes: fixedBytes)
        decision.reason = reason
        if request.method == .dds, let dir = request.checkpointFolder, let done = try SegmentProgress.load(dir) {
            guard done.plan.totalFrames == plan.frames else {
                throw SVIError.file(SegmentProgress.folder(dir), "holds a job of \(done.plan.totalFrames) frames; this one has \(plan.frames)")
            }
            if (request.segmentFrames != nil || request.overlap != nil) && (done.plan.segmentFrames != segments.segmentFrames || done.plan.overlap != segments.overlap) {
                throw SVIError.file(SegmentProgress.folder(dir), "was made with \(done.plan.summary); drop --segment-frames/--overlap or give the same values")
            }
            segments = done.plan
            decision.segmentsDone = done.segmentsDone
            decision.reason = "the checkpoint's plan"
        } else if request.method == .dds, let dir = request.checkpointFolder, let (snap, _) = try SamplerCheckpoint.latest(in: dir), let p = snap.segmentPlan {
            // Killed in the first segment: its snapshots name the plan.
            if request.segmentFrames == nil && request.overlap == nil { segments = p; decision.reason = "the checkpoint's plan" }
        }
        guard comm.size <= segments.segmentFrames else {
            throw SVIError.option("--segment-frames", "\(comm.size) ranks for segments of \(segments.segmentFrames) frames: use at most \(segments.segmentFrames) ranks (one frame per rank at least), or longer segments")
        }
        decision.plan = segments
        return decision
    }

    // MARK: rank 0's streams

    /// Rank 0's part of scattering segment k's measurement: fills `frames` (segment indices)
    /// of the block going to one rank, from the frames the previous segment shares with this
    /// one (kept) or read in order from the input; keeps the frames the next segment shares.
    /// A read error is remembered (the other ranks are waiting) and reported after.
    private func fillMeasured(segment k: Int, segments: SegmentPlan, frames: Range<Int>, into p: UnsafeMutablePointer<Float>) {
        let fs = source!.frameSize
        let first = segments.starts[k]
        let keepFrom = k + 1 < segments.count ? segments.starts[k + 1] : Int.max
        if kept == nil {
            kept = Tensor(shape: [max(segments.largestOverlap, 1), fs], zeroed: false)
            nextKept = Tensor(shape: [max(segments.largestOverlap, 1), fs], zeroed: false)
        }
        for (i, j) in frames.enumerated() {
            let t = first + j, dst = p + i * fs
            if stagingError != nil { dst.update(repeating: 0, count: fs); continue }
            do {
                if t < keptStart + keptCount && t >= keptStart {
                    dst.update(from: kept!.frame(t - keptStart), count: fs)
                } else {
                    precondition(t == source!.position, "measurement frames are read in order")
                    try readMeasured(into: dst)
                }
                if t >= keepFrom {
                    if nextKeptCount == 0 { nextKeptStart = t }
                    nextKept!.frame(t - nextKeptStart).update(from: dst, count: fs)
                    nextKeptCount += 1
                }
            } catch {
                stagingError = error
                dst.update(repeating: 0, count: fs)
            }
        }
    }

    /// After segment k is scattered: the frames it shares with segment k+1 become the kept ones.
    private func rotateKept() {
        swap(&kept, &nextKept)
        keptStart = nextKeptStart; keptCount = nextKeptCount
        nextKeptCount = 0
    }

    /// The next measured frame, hashed into the prefix hash (checked on resume).
    private func readMeasured(into p: UnsafeMutablePointer<Float>) throws {
        let src = source!
        try src.read(into: p)
        prefixHasher.add(UnsafeRawBufferPointer(start: p, count: src.frameSize * 4))
        if prefixWanted.contains(src.position) { prefixHashes[src.position] = prefixHasher.hex }
    }

    /// Hands a complete frame to the output (and the reference's scores).
    private func emit(_ t: Int, _ p: UnsafePointer<Float>, plan: RestorePlan) throws {
        try sink?.append(p, frames: 1)
        if let ref = referenceSource {
            if referenceFrame == nil { referenceFrame = Tensor(shape: [1, ref.frameSize], zeroed: false) }
            precondition(ref.position == t)
            try ref.read(into: referenceFrame!.data)
            let n = ref.frameSize
            psnr.append(min(Metrics.psnr(p, referenceFrame!.data, count: n), 100))
            ssim.append(Metrics.ssim(p, referenceFrame!.data, channels: plan.original[0], height: plan.original[1], width: plan.original[2]))
        }
    }

    // MARK: the job

    /// What every rank knows once the job is settled: the plan, the sampler, the model and the
    /// segments (with how many a checkpoint already holds).
    private struct Settled {
        package let plan: RestorePlan
        package let spec: DegradationSpec
        package let frame: FrameShape
        package let settings: SamplerSettings
        package let denoiser: Denoiser?
        package let segments: SegmentPlan
        package var decision: SegmentDecision
        /// The checkpoint identity of every segment (its measurement hash and segment filled in per segment).
        package let identity: SamplerCheckpoint
        package var multi: Bool { segments.count > 1 }
        package var stepsPerSegment: Int { settings.visitedSteps.count }
        package var totalSteps: Int { segments.count * stepsPerSegment }
    }

    /// Seconds and residual sums over the segments (the report's timings and residual).
    private struct Totals {
        package var denoise = 0.0, dataConsistency = 0.0, write = 0.0, warmStart = 0.0
        package var residual = 0.0, measurement = 0.0
    }

    package func run() throws -> RestoreReport? {
        let (plan, spec, frame) = try agreeOnPlan()
        var rep = RestoreReport(input: request.input, output: request.output, method: request.method.rawValue, degradation: plan.statedSpec,
                                frames: plan.frames, frameShape: plan.original, threads: Parallel.threads)
        rep.noise = plan.noise
        rep.request = request
        rep.noiseSigma = spec.noiseSigma
        rep.ranks = comm.size
        if comm.size > 1 { rep.mpiChunkBytes = MPICommunicator.chunkBytes; rep.rankHosts = (comm as? MPICommunicator)?.hosts }
        if plan.clipStart > 0 || plan.fileFrames != plan.clipStart + plan.frames { rep.clip = [plan.clipStart, plan.clipStart + plan.frames] }

        let settings = request.samplerSettings(for: spec, seed: plan.seed, noise: plan.noise)
        let (denoiser, fixedBytes) = try loadDenoiser(frame: frame, settings: settings, rep: &rep)
        let job = try settleSegments(plan: plan, spec: spec, frame: frame, settings: settings, denoiser: denoiser,
                                     fixedBytes: fixedBytes, rep: &rep)
        let stitcher = rank == 0 ? SegmentStitcher(plan: job.segments, frameSize: frame.count, clips: !request.noClip) : nil
        if job.decision.segmentsDone > 0 {
            _ = try comm.agree { () throws -> Bool in
                try replayFinished(job.decision, plan: plan, identity: job.identity, stitcher: stitcher!)
                return true
            }
            rep.resumedFromSegment = job.decision.segmentsDone
            progress.note("resuming after segment \(job.decision.segmentsDone) of \(job.segments.count) (finished frames come from the checkpoint)")
        }
        rep.timings["load_s"] = seconds(since: started)
        announce(job)

        // The segments, in order.
        let solveStart = Date()
        var totals = Totals()
        for k in job.decision.segmentsDone..<job.segments.count {
            let (result, op, dist) = try solveSegment(k, job, totals: &totals, rep: &rep)
            let writeStart = Date()
            control.leaveSteps()
            try writeSegment(k, result, job, dist: dist, stitcher: stitcher)
            totals.write += seconds(since: writeStart)
            op.releaseScratch()
            if k + 1 < job.segments.count { try stopBetweenSegments(after: k, of: job.segments.count) }
        }
        control.leaveSteps()
        rep.residual = totals.measurement > 0 ? (totals.residual / totals.measurement).squareRoot() : totals.residual.squareRoot()
        rep.timings["solve_s"] = seconds(since: solveStart) - totals.write
        rep.timings["denoise_s"] = totals.denoise
        rep.timings["data_consistency_s"] = totals.dataConsistency
        if settings.startFrom != .noise { rep.timings["warm_start_s"] = totals.warmStart }
        try finish(job, totals: totals, rep: &rep)
        return rank == 0 ? rep : nil
    }

    /// Rank 0 opens everything and settles A; every rank learns the plan (or the error).
    private func agreeOnPlan() throws -> (RestorePlan, DegradationSpec, FrameShape) {
        let plan = try comm.agree { try openInputs() }
        if comm.size > 1 { try checkFoldersAreShared() }
        if let dir = request.traceDir {
            guard comm.size == 1 else { throw SVIError.option("--trace-dir", "--trace-dir writes this process's frames: run it on one rank") }
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        let spec = try DegradationSpec.parse(plan.spec)
        let frame = FrameShape(channels: plan.original[0], height: plan.original[1], width: plan.original[2])
        return (plan, spec, frame)
    }

    /// The model, on every rank (DDS only); a failure anywhere stops every rank cleanly.
    /// Returns it and the bytes already in use (weights, activations, the process so far).
    private func loadDenoiser(frame: FrameShape, settings: SamplerSettings, rep: inout RestoreReport) throws -> (Denoiser?, Double) {
        var denoiser: Denoiser?
        var fixedBytes = 0.0
        if request.method == .dds {
            var loadError: Error?
            do {
                let made = try makeDenoiser(model: request.model, preset: request.preset, config: request.config, prior: request.prior, batch: request.batch,
                                            tile: request.tile, tileOverlap: request.tileOverlap, height: frame.height, width: frame.width,
                                            referenceKernels: request.referenceKernels, precision: request.precision, progress: progress)
                denoiser = made.denoiser; rep.tiles = made.tiles; fixedBytes = made.workingBytes
            } catch { loadError = error }
            try comm.agreeNoneFailed(loadError)
            rep.model = denoiser!.name
            rep.settings = .init(settings)
        }
        return (denoiser, fixedBytes + (currentResidentBytes() ?? 0))
    }

    /// Segments, and how much of the job a checkpoint already holds (rank 0 decides, every
    /// rank learns); the checkpoint identity the segments share.
    private func settleSegments(plan: RestorePlan, spec: DegradationSpec, frame: FrameShape, settings: SamplerSettings,
                                denoiser: Denoiser?, fixedBytes: Double, rep: inout RestoreReport) throws -> Settled {
        let decision = try comm.agree { try decideSegments(plan, fixedBytes: fixedBytes) }
        let segments = decision.plan!
        rep.segments = .init(count: segments.count, segmentFrames: segments.segmentFrames, overlap: segments.overlap,
                             largestOverlap: segments.largestOverlap, reason: decision.reason)
        if segments.count > 1 && request.checkpointFolder != nil { prefixWanted = Set(segments.starts.dropFirst()).union([segments.totalFrames]) }
        var identity = SamplerCheckpoint(stepsDone: 0, settings: settings, degradation: spec.canonical, maskSeed: plan.maskSeed,
                                         measurementShape: [segments.segmentFrames] + plan.measured, measurementHash: "",
                                         model: denoiser?.name ?? "")
        if let t = rep.tiles, t.tile > 0 { identity.tiles = [t.tile, t.overlap] }
        if settings.startFrom != .noise {
            identity.warmStart = settings.startFrom.rawValue + " " + classicalSettings(settings.startFrom, spec: spec, plugAndPlay: settings.pnp != nil).named
                .sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        return Settled(plan: plan, spec: spec, frame: frame, settings: settings, denoiser: denoiser, segments: segments,
                       decision: decision, identity: identity)
    }

    /// "20 steps", "5 steps from admm-tv at t=80", "plug-and-play, 8 levels σ 0.01 → 0.004 from admm-tv".
    private func samplerSummary(_ settings: SamplerSettings) -> String {
        let steps = settings.visitedSteps
        if let p = settings.pnp {
            if p.firstLevelFromPriorTest {
                return "plug-and-play, \(steps.count) levels σ (\(PnPSchedule.firstLevelLow)–\(PnPSchedule.firstLevelHigh) by the prior's test) → \(p.to) from \(settings.startFrom.rawValue)"
            }
            return "plug-and-play, \(steps.count) levels σ \(p.from) → \(p.to) (t \(steps[0].t) → \(steps[steps.count - 1].t)) from \(settings.startFrom.rawValue)"
        }
        return "\(steps.count) steps" + (settings.startFrom != .noise ? " from \(settings.startFrom.rawValue) at t=\(steps[0].t)" : "")
    }

    /// The start line: what is restored, how, on how many ranks; and the noise the solver assumes.
    private func announce(_ job: Settled) {
        let settings = job.settings
        progress.note("svi restore: \(job.plan.frames) frames \(job.frame) on \(comm.size) rank(s), \(job.spec.canonical)" +
                      (request.method == .dds ? ", " + samplerSummary(settings) + ", \(job.denoiser!.name), seed \(job.plan.seed)" : ", \(request.method.rawValue)") +
                      (job.multi ? "; \(job.segments.summary) (\(job.decision.reason))" : ""))
        if let n = job.plan.noise { progress.note(n.summary + (settings.discrepancyStop ? "; CG stops at ‖Au − y‖ ≈ σ·√m" + (settings.discrepancySigma.map { String(format: ", σ %.4g (white part)", $0) } ?? "") : "")) }
    }

    /// Segment k's measurement, scattered over the ranks: rank 0 fills each rank's block in
    /// turn (never the whole segment); every rank learns whether reading failed, and the
    /// segment's hash (the checkpoint's identity).
    private func scatterMeasurement(segment k: Int, _ job: Settled, dist: Distribution) throws -> (Tensor, String) {
        var hasher = FNV1a()
        let y = comm.scatter(partition: dist.partition, frameShape: job.plan.measured) { frames, p in
            fillMeasured(segment: k, segments: job.segments, frames: frames, into: p)
            hasher.add(UnsafeRawBufferPointer(start: p, count: frames.count * source!.frameSize * 4))
        }
        if rank == 0 { rotateKept() }
        _ = try comm.agree { () throws -> Bool in
            if let e = stagingError { throw e }
            return true
        }
        return (y, hasher.hex)
    }

    /// Restores segment k (DDS, or a classical method); returns its frames [0, 1] (clipped
    /// unless --no-clip), its operator (whose scratch the caller releases) and distribution.
    private func solveSegment(_ k: Int, _ job: Settled, totals: inout Totals, rep: inout RestoreReport) throws -> (Tensor, DegradationOperator, Distribution) {
        let plan = job.plan, settings = job.settings, segments = job.segments
        let window = VideoWindow(start: plan.clipStart + segments.starts[k], frames: segments.segmentFrames, videoFrames: plan.fileFrames)
        let op = try request.makeOperator(plan, window: window)
        let dist = Distribution(comm: comm, totalFrames: segments.segmentFrames)
        let (y, segmentHash) = try scatterMeasurement(segment: k, job, dist: dist)
        let segmentStart = Date()
        switch request.method {
        case .dds:
            let sampler = DDSSampler(op: op, measurement: y, denoiser: job.denoiser!, settings: settings, dist: dist,
                                     firstFrame: window.start, noiseImages: try request.noiseDir.map { try loadNoiseImages($0, settings: settings, frame: job.frame) })
            var identity = job.identity
            identity.measurementHash = segmentHash
            if job.multi { identity.segment = k; identity.segmentPlan = segments }
            try request.resumeIfAsked(sampler, identity: identity, comm: comm, dist: dist, progress: progress)
            if sampler.stepIndex > 0 { rep.resumedFromStep = k * job.stepsPerSegment + sampler.stepIndex }
            if sampler.stepIndex == 0, settings.startFrom != .noise {
                let t0 = Date()
                sampler.warmStart(from: classicalEstimate(settings.startFrom, op: op, y: y, dist: dist, spec: job.spec,
                                                          plugAndPlay: settings.pnp != nil, rep: &rep))
                totals.warmStart += seconds(since: t0)
            }
            control.enterSteps(exitAtOnce: request.checkpointFolder == nil)
            try runSteps(sampler, identity: identity, dist: dist, segment: k, totalSteps: job.totalSteps, frame: job.frame)
            totals.denoise += sampler.denoiseSeconds
            totals.dataConsistency += sampler.dataConsistencySeconds
            if let c = sampler.priorCheck { rep.priorCheck = max(rep.priorCheck ?? 0, c) }
            if let l = sampler.pnpFirstLevel {
                rep.pnpFirstLevels = (rep.pnpFirstLevels ?? []) + [l]
                if sampler.priorCheck != nil {
                    progress.note(String(format: "plug-and-play's first level σ %.4g (the prior's test on the start: %.3f)", l, sampler.priorCheck!)
                                  + (job.multi ? " in segment \(k + 1)" : ""))
                }
            }
            if sampler.priorRejected {
                rep.priorRejectedSegments = (rep.priorRejectedSegments ?? []) + [k]
                let test = String(format: "%.2f", sampler.priorCheck ?? 0)
                progress.note("the prior did no better than removing nothing on the warm start (test \(test) ≥ \(DDSSampler.priorRejectRatio))"
                              + (job.multi ? " in segment \(k + 1)" : "") + ": the output is the \(settings.startFrom.rawValue) estimate")
            }
            let parts = sampler.residualParts()
            totals.residual += parts.residual; totals.measurement += parts.measurement
            return (request.noClip ? sampler.unclippedOutput() : sampler.output(), op, dist)
        case .cg, .admmTV:
            let u = classicalEstimate(request.method == .cg ? .cg : .admmTV, op: op, y: y, dist: dist, spec: job.spec, rep: &rep)
            let parts = DataConsistency(op: op, measurement: y, dist: dist, gamma: nil).residualParts(u)
            totals.residual += parts.residual; totals.measurement += parts.measurement
            let result = Tensor(converting: u)
            Kernels.clip(result.data, 0, 1, result.count)
            totals.dataConsistency += seconds(since: segmentStart)
            if job.multi { progress.step("segment", k + 1, of: segments.count, first: job.decision.segmentsDone) }
            return (result, op, dist)
        }
    }

    /// Rank 0 cross-fades segment k into what came before and writes the frames that no later
    /// segment reaches (and, with a checkpoint folder, keeps them there with the job's progress).
    private func writeSegment(_ k: Int, _ result: Tensor, _ job: Settled, dist: Distribution, stitcher: SegmentStitcher?) throws {
        let segments = job.segments, frame = job.frame
        let keeper: FinishedFramesWriter? = (rank == 0 && job.multi && request.checkpointFolder != nil)
            ? try FinishedFramesWriter(dir: request.checkpointFolder!, segment: k, frames: segments.finalized(after: k).count, frameSize: frame.count) : nil
        try comm.gather(result, partition: dist.partition) { range, p in
            let first = segments.starts[k]
            try stitcher!.add(segment: k, range: (first + range.lowerBound)..<(first + range.upperBound), p) { t, f in
                try emit(t, f, plan: job.plan)
                try keeper?.append(f, count: frame.count)
            }
        }
        guard let keeper, let dir = request.checkpointFolder else { return }
        let done = k + 1
        let pending = stitcher!.pendingFrames()
        let prefixEnd = done < segments.count ? segments.starts[done] : segments.totalFrames
        var hashes = (try SegmentProgress.load(dir))?.frameFileHashes ?? []
        hashes = Array(hashes.prefix(k)) + [keeper.hash]
        let p = SegmentProgress(segmentsDone: done, plan: segments, identity: job.identity,
                                prefixHash: prefixHashes.removeValue(forKey: prefixEnd) ?? "", prefixFrames: prefixEnd, frameFileHashes: hashes,
                                pendingStart: pending.start, pendingCount: pending.frames.frames,
                                pendingHash: SamplerCheckpoint.hash(pending.frames))
        try SegmentProgress.commit(dir, progress: p, frames: keeper, pending: pending.frames)
        SamplerCheckpoint.prune(dir, keep: 0)   // this segment's snapshots are done with
    }

    /// Between segments every rank stops together when one was signalled.
    private func stopBetweenSegments(after k: Int, of count: Int) throws {
        let stop = comm.allreduceMax([control.shouldStop() ? 1 : 0])[0] > 0
        if stop {
            if let dir = request.checkpointFolder {
                progress.note("stopped \(control.stopReason) after segment \(k + 1)/\(count); checkpoint in \(dir): run the same command to continue")
            } else {
                progress.note("stopped \(control.stopReason) after segment \(k + 1)/\(count); no --checkpoint-dir, nothing saved")
            }
            throw SilentFailure(code: StopRequest.exitStatus)
        }
        if request.method == .dds { control.enterSteps(exitAtOnce: request.checkpointFolder == nil) }
    }

    /// Closes the output, scores it against the reference, gathers every rank's accounting on
    /// rank 0 and writes the report.
    private func finish(_ job: Settled, totals: Totals, rep: inout RestoreReport) throws {
        let finishStart = Date()
        try sink?.finish()
        if rank == 0, job.multi, let dir = request.checkpointFolder { SegmentProgress.remove(dir) }
        rep.timings["write_s"] = totals.write + seconds(since: finishStart)
        if !psnr.isEmpty {
            rep.quality = ["psnr": psnr, "ssim": ssim, "mean_psnr": [psnr.reduce(0, +) / Double(psnr.count)], "mean_ssim": [ssim.reduce(0, +) / Double(ssim.count)]]
            progress.note(String(format: "against %@: mean PSNR %.2f dB, mean SSIM %.4f", request.reference!, psnr.reduce(0, +) / Double(psnr.count), ssim.reduce(0, +) / Double(ssim.count)))
        }
        // Per-rank accounting, gathered on rank 0.
        let m = comm as? MPICommunicator
        let lastPartition = FramePartition(totalFrames: job.segments.segmentFrames, ranks: comm.size)
        let mine = [totals.denoise, totals.dataConsistency - (m?.haloSeconds ?? 0) - (m?.reduceSeconds ?? 0), m?.haloSeconds ?? 0,
                    m?.reduceSeconds ?? 0, Double(m?.bytesSent ?? 0), peakResidentMB() ?? 0, Double(m?.reductions ?? 0)]
        let all = comm.gatherToRoot(mine)
        guard rank == 0 else { return }
        let n = mine.count
        rep.perRank = (0..<comm.size).map { r in
            let v = Array(all[(r * n)..<(r * n + n)])
            return ["rank": Double(r), "frames": Double(lastPartition.range(of: r).count), "denoise_s": v[0], "cg_arithmetic_s": v[1],
                    "halo_exchange_s": v[2], "allreduce_s": v[3], "bytes_sent": v[4], "peak_memory_mb": v[5], "reductions": v[6]]
        }
        rep.timings["total_s"] = seconds(since: started)
        rep.stallBoundSeconds = (comm as? MPICommunicator)?.stallBound
        rep.peakMemoryMB = peakResidentMB()
        if let r = request.report { try writeJSON(rep, to: r, overwrite: request.overwrite) }
        progress.note(String(format: "wrote %@ in %.1fs (residual ‖Au−y‖/‖y‖ = %.3g)", request.output, rep.timings["total_s"]!, rep.residual ?? .nan))
    }

    /// The settings of the classical method `method` from the command and the spec: CG's
    /// iterations, ADMM-TV's λ, ρ, iterations and inner CG — and the same as named numbers.
    private func classicalSettings(_ method: StartPoint, spec: DegradationSpec, plugAndPlay: Bool = false) -> (iterations: Int, tv: Baselines.TVSettings, named: [String: Double]) {
        let iterations = request.cgIterations ?? (request.method == .cg ? request.legacyCGSteps("--cg-iterations") : nil) ?? Baselines.defaultCGIterations
        var tv = request.method == .admmTV ? Baselines.TVSettings.defaults(for: spec) : .warmStartDefaults(for: spec, plugAndPlay: plugAndPlay)
        if let l = request.tvLambda { tv.lambda = l }
        if let r = request.tvRho { tv.rho = r }
        if let i = request.tvIterations { tv.iterations = i }
        if let a = request.tvAccelerate { tv.accelerated = a }
        if let f = request.tvFloat32 { tv.singlePrecision = f }
        if let i = request.tvInnerCg ?? (request.method == .admmTV ? request.legacyCGSteps("--tv-inner-cg") : nil) { tv.innerCG = i }
        let named = method == .cg ? ["cg_iterations": Double(iterations)]
            : ["lambda": tv.lambda, "rho": tv.rho, "iterations": Double(tv.iterations), "inner_cg": Double(tv.innerCG),
               "accelerated": tv.accelerated ? 1 : 0, "float32": tv.singlePrecision ? 1 : 0]
        return (iterations, tv, named)
    }

    /// CG alone (from Aᵀy) or ADMM-TV with the command's options: the classical methods, and
    /// the estimate a warm start begins from.
    private func classicalEstimate(_ method: StartPoint, op: DegradationOperator, y: Tensor, dist: Distribution,
                                   spec: DegradationSpec, plugAndPlay: Bool = false, rep: inout RestoreReport) -> Tensor64 {
        let s = classicalSettings(method, spec: spec, plugAndPlay: plugAndPlay)
        rep.baseline = s.named
        // ADMM-TV on large frames takes minutes: its own progress line (elapsed and ETA from
        // its start, not the job's).
        let stage = Progress(quiet: progress.quiet)
        let label = request.method == .dds ? "warm start (ADMM-TV) iteration" : "ADMM-TV iteration"
        return Baselines.estimate(method, op: op, measurement: y, dist: dist, cgIterations: s.iterations, tv: s.tv) { k, n in
            stage.step(label, k, of: n)
        }
    }

    /// The DDS steps of one segment, with checkpoints, signals, --deadline and the NaN check.
    private func runSteps(_ sampler: DDSSampler, identity: SamplerCheckpoint, dist: Distribution, segment k: Int, totalSteps: Int, frame: FrameShape) throws {
        let nfe = sampler.steps.count
        if firstJobStep == nil { firstJobStep = k * nfe + sampler.stepIndex; stepsStarted = Date() }
        let firstStep = firstJobStep!
        var longestStep = 0.0
        let checkpointSeconds = RestoreSettings.checkpointWriteSeconds(frames: dist.totalFrames, frameValues: frame.count)
        while !sampler.isFinished {
            let stepStart = Date()
            if let r = request.failOnRank, r == rank, k * nfe + sampler.stepIndex + 1 == request.failAtStep {
                throw SVIError("injected failure at step \(request.failAtStep) (--fail-on-rank)")
            }
            try sampler.step()
            if let dir = request.traceDir {        // test hook: x after every step, one process only
                try NPY.write(sampler.x, to: (dir as NSString).appendingPathComponent("x-\(sampler.stepIndex - 1).npy"))
            }
            progress.step(totalSteps > nfe ? "segment \(k + 1)/\(totalSteps / nfe), job step" : "step", k * nfe + sampler.stepIndex, of: totalSteps, first: firstStep, since: stepsStarted)
            longestStep = max(longestStep, seconds(since: stepStart))
            if let m = comm as? MPICommunicator { m.stallBound = request.stallBound(longestStep: longestStep, checkpointSeconds: checkpointSeconds) }
            // --deadline: stop now if another step and its checkpoint might not fit before it.
            let late = request.deadline.map { Date().timeIntervalSince1970 + 1.25 * longestStep + checkpointSeconds > $0 } ?? false
            // Every rank stops at the same step when any of them was signalled (or is late).
            let asked = control.shouldStop()
            let stopHere = asked || late
            // A NaN or infinity in x_t (a network that diverges on this input, say) would end as
            // an all-NaN video: stop at the step it appears, on every rank, and write nothing
            // more (no checkpoint of it).
            let nonFinite = FiniteCheck.firstNonFinite(sampler.x.data, sampler.x.count) != nil
            let flags = comm.size > 1 ? comm.allreduceMax([stopHere ? 1 : 0, nonFinite ? 1 : 0]) : [stopHere ? 1 : 0, nonFinite ? 1 : 0]
            if flags[1] > 0 {
                if rank == 0 { throw SVIError.numeric("step \(sampler.stepIndex) of \(sampler.steps.count)\(totalSteps > nfe ? " of segment \(k + 1)" : "") produced NaN or infinite values (the model diverged on this input); nothing was written") }
                throw SilentFailure(code: SVIError.Kind.numeric.exitStatus)
            }
            let stop = flags[0] > 0
            if sampler.isFinished { break }
            if let dir = request.checkpointFolder, stop || sampler.stepIndex % request.checkpointEvery == 0 {
                var meta = identity
                meta.stepsDone = sampler.stepIndex
                meta.pnpFirstLevel = sampler.pnpFirstLevel
                try meta.write(x: sampler.x, dist: dist, to: dir)
            }
            if stop {
                if let dir = request.checkpointFolder {
                    progress.note("stopped \(asked ? control.stopReason : "before --deadline") after step \(sampler.stepIndex)/\(sampler.steps.count)\(totalSteps > nfe ? " of segment \(k + 1)" : ""); checkpoint in \(dir): run the same command to continue")
                } else {
                    progress.note("stopped \(control.stopReason) after step \(sampler.stepIndex)/\(sampler.steps.count); no --checkpoint-dir, nothing saved")
                }
                throw SilentFailure(code: StopRequest.exitStatus)
            }
        }
    }

    /// Resuming after finished segments (rank 0): checks the progress against this run, feeds
    /// the finished frames to the output, restores the cross-fade sums and moves the input past
    /// the frames no unfinished segment reads (checking their hash).
    private func replayFinished(_ decision: SegmentDecision, plan: RestorePlan, identity: SamplerCheckpoint, stitcher: SegmentStitcher) throws {
        let dir = request.checkpointFolder!
        guard let done = try SegmentProgress.load(dir) else { throw SVIError.file(dir, "segment progress vanished") }
        var mine = identity, theirs = done.identity
        mine.measurementHash = ""; theirs.measurementHash = ""
        let diff = theirs.differences(from: mine)
        guard diff.isEmpty else { throw SVIError.file(SegmentProgress.folder(dir), "finished segments do not match this run: " + diff.joined(separator: "; ")) }
        let fs = plan.original.reduce(1, *)
        for k in 0..<done.segmentsDone {
            try done.readFrames(dir, segment: k, frameSize: fs) { t, p in try emit(t, p, plan: plan) }
        }
        let pending = try done.readPending(dir, frameSize: fs)
        stitcher.restorePending(start: done.pendingStart, frames: pending.data, count: done.pendingCount)
        // The measurement before the next segment: read (and hashed) but not kept.
        let skip = Tensor(shape: [1, source!.frameSize], zeroed: false)
        while source!.position < done.prefixFrames { try readMeasured(into: skip.data) }
        guard prefixHasher.hex == done.prefixHash else {
            throw SVIError.file(request.input, "is not the measurement the finished segments in \(dir) were restored from (its first \(done.prefixFrames) frames differ)")
        }
    }
}

/// Resident memory of this process now (bytes), from /proc/self/statm.
package func currentResidentBytes() -> Double? {
    guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
    let f = s.split(separator: " ")
    guard f.count > 1, let pages = Double(f[1]) else { return nil }
    return pages * Double(sysconf(Int32(_SC_PAGESIZE)))
}

/// --noise-dir: the start image and one image per noise-adding step, each C×H×W float32.
package func loadNoiseImages(_ dir: String, settings: SamplerSettings, frame: FrameShape) throws -> NoiseImages {
    let shape = [frame.channels, frame.height, frame.width]
    func read(_ name: String) throws -> [Float] {
        let path = (dir as NSString).appendingPathComponent(name)
        let t = try NPY.readFloat32(path)
        guard t.shape == shape else { throw SVIError.file(path, "noise image has shape \(t.shape), the frames need \(shape)") }
        return Array(UnsafeBufferPointer(start: t.data, count: t.count))
    }
    var steps: [Int: [Float]] = [:]
    for (k, s) in settings.visitedSteps.enumerated() where s.tNext > 0 { steps[k] = try read("step-\(k).npy") }
    return NoiseImages(initial: try read("initial.npy"), steps: steps)
}

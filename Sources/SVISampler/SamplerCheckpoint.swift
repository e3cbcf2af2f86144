import Foundation
import SVICore
import SVIFormats
import SVIContracts

/// A resumable snapshot of a DDS run between two steps (DESIGN §4's loop state): x_t of every
/// frame, indexed by frame (so any rank count can resume it), the number of steps done, and
/// everything that must match for the continuation to be the same run — settings, the
/// degradation, the measurement and the model.
///
/// On disk: `DIR/step-000007/` holding `x.npy` ([T][C][H][W] float32) and `state.json`. A
/// snapshot is written into a hidden temporary folder and renamed into place when complete,
/// so an interrupted write leaves the previous snapshot valid; older snapshots are pruned.
public struct SamplerCheckpoint: Codable, Equatable {
    public static let formatVersion = 1

    public var format = SamplerCheckpoint.formatVersion
    public var stepsDone: Int
    public var nfe: Int
    public var cgSteps: Int
    public var eta: Double
    public var gamma: Double?
    public var batchIndependent: Bool
    public var seed: UInt64
    public var degradation: String
    public var maskSeed: UInt64
    public var measurementShape: [Int]
    public var measurementHash: String
    public var model: String
    public var stateHash: String = ""
    /// In a job of several temporal segments: the segment this snapshot belongs to and the
    /// segment plan (nil for a job of one segment, as before segments existed).
    public var segment: Int?
    public var segmentPlan: SegmentPlan?
    /// Warm start: where the reverse process started (nil: from noise), from which classical
    /// estimate, and the last step's CG iterations (nil: as every step's).
    public var start: Double?
    public var initMethod: String?
    public var finalCGSteps: Int?
    /// CG stopped by the discrepancy principle (nil: no, as before it existed).
    public var discrepancyStop: Bool?
    /// The stop's σ when it is not the spec's (nil: the spec's, as before it existed).
    public var discrepancySigma: Double?
    /// The paper's schedule (nil: N evenly spaced steps), and the steps of a segment it gives.
    public var paperSchedule: Bool?
    /// The network's tiles, [tile, overlap] (nil: whole frames), and the warm start's own
    /// settings (nil: from noise): both change x_t, so a run under others must not continue it.
    public var tiles: [Int]?
    public var warmStart: String?
    /// Plug-and-play refinement's "from:to:weight" (nil: DDS, as before it existed).
    public var pnp: String?
    /// The first level plug-and-play's run chose from the prior's test ("auto" levels): an
    /// outcome of this segment's run, not a setting, so it is not compared, it is resumed with.
    public var pnpFirstLevel: Double?
    public var stepsPerSegment: Int { paperSchedule == true ? Schedule().paperSteps(nfe: nfe).count : nfe }

    /// The job's step count at this snapshot: steps of finished segments plus this one's.
    /// Snapshot folders are named by it, so the newest is the largest in any segment.
    public var jobStep: Int { (segment ?? 0) * stepsPerSegment + stepsDone }

    enum CodingKeys: String, CodingKey {
        case format, nfe, eta, gamma, seed, degradation, model, segment, start
        case initMethod = "init", finalCGSteps = "final_cg_steps", discrepancyStop = "discrepancy_stop", discrepancySigma = "discrepancy_sigma", paperSchedule = "paper_schedule"
        case segmentPlan = "segment_plan", tiles, warmStart = "warm_start", pnp, pnpFirstLevel = "pnp_first_level"
        case stepsDone = "steps_done", cgSteps = "cg_steps", batchIndependent = "batch_independent", maskSeed = "mask_seed"
        case measurementShape = "measurement_shape", measurementHash = "measurement_hash", stateHash = "state_hash"
    }

    public init(stepsDone: Int, settings: SamplerSettings, degradation: String, maskSeed: UInt64,
                measurementShape: [Int], measurementHash: String, model: String) {
        self.stepsDone = stepsDone; nfe = settings.nfe; cgSteps = settings.cgSteps; eta = settings.eta; gamma = settings.gamma
        batchIndependent = settings.batchIndependent; seed = settings.seed
        start = settings.start < 1 ? settings.start : nil; finalCGSteps = settings.finalCGSteps
        discrepancyStop = settings.discrepancyStop ? true : nil
        discrepancySigma = settings.discrepancyStop ? settings.discrepancySigma : nil
        // Recorded only where it changes the steps (N not dividing 1000).
        paperSchedule = settings.paperSchedule && Schedule.trainingSteps % settings.nfe != 0 ? true : nil
        initMethod = settings.startFrom == .noise ? nil : settings.startFrom.rawValue
        pnp = settings.pnp?.description
        self.degradation = degradation; self.maskSeed = maskSeed
        self.measurementShape = measurementShape; self.measurementHash = measurementHash; self.model = model
    }

    /// What differs between this snapshot and the run about to continue it ("" when nothing).
    public func differences(from other: SamplerCheckpoint) -> [String] {
        var d: [String] = []
        if measurementShape != other.measurementShape || measurementHash != other.measurementHash { d.append("the measurement (shape \(measurementShape), hash \(measurementHash) vs shape \(other.measurementShape), hash \(other.measurementHash))") }
        if degradation != other.degradation { d.append("the degradation ('\(degradation)' vs '\(other.degradation)')") }
        if maskSeed != other.maskSeed { d.append("the mask seed (\(maskSeed) vs \(other.maskSeed))") }
        if model != other.model { d.append("the model ('\(model)' vs '\(other.model)')") }
        if nfe != other.nfe { d.append("--nfe (\(nfe) vs \(other.nfe))") }
        if cgSteps != other.cgSteps { d.append("--cg-steps (\(cgSteps) vs \(other.cgSteps))") }
        if eta != other.eta { d.append("--eta (\(eta) vs \(other.eta))") }
        if gamma != other.gamma { d.append("--gamma (\(gamma.map { "\($0)" } ?? "none") vs \(other.gamma.map { "\($0)" } ?? "none"))") }
        if batchIndependent != other.batchIndependent { d.append("--batch-independent") }
        if start != other.start { d.append("--start (\(start.map { "\($0)" } ?? "1") vs \(other.start.map { "\($0)" } ?? "1"))") }
        if initMethod != other.initMethod { d.append("--init (\(initMethod ?? "noise") vs \(other.initMethod ?? "noise"))") }
        if finalCGSteps != other.finalCGSteps { d.append("--final-cg-steps") }
        if discrepancyStop != other.discrepancyStop { d.append("--cg-stop") }
        if discrepancySigma != other.discrepancySigma { d.append("the discrepancy stop's σ (\(discrepancySigma.map { "\($0)" } ?? "the spec's") vs \(other.discrepancySigma.map { "\($0)" } ?? "the spec's"))") }
        if paperSchedule != other.paperSchedule { d.append("--paper (its schedule for --nfe \(nfe))") }
        if pnp != other.pnp { d.append("--sampler (\(pnp.map { "pnp \($0)" } ?? "dds") vs \(other.pnp.map { "pnp \($0)" } ?? "dds"))") }
        if seed != other.seed { d.append("--seed (\(seed) vs \(other.seed))") }
        if tiles != other.tiles { d.append("the tiles (\(tiles.map { "--tile \($0[0]) --tile-overlap \($0[1])" } ?? "whole frames") vs \(other.tiles.map { "--tile \($0[0]) --tile-overlap \($0[1])" } ?? "whole frames"))") }
        if warmStart != other.warmStart { d.append("the warm start's settings (\(warmStart ?? "none") vs \(other.warmStart ?? "none"))") }
        if segmentPlan != other.segmentPlan { d.append("the segment plan (\(segmentPlan.map(\.summary) ?? "one segment") vs \(other.segmentPlan.map(\.summary) ?? "one segment"))") }
        return d
    }

    // MARK: files

    static func folderName(_ step: Int) -> String { String(format: "step-%06d", step) }

    /// The file svi puts in every snapshot folder it makes. Only folders holding it are ever
    /// pruned: a user's `step-0-notes.txt` or `step-00-draft/` beside them is never touched.
    static let marker = ".svi-checkpoint"

    /// Whether `name` is exactly a snapshot folder's name (`step-` and six or more digits).
    static func isSnapshotName(_ name: String) -> Bool {
        guard name.hasPrefix("step-") else { return false }
        let digits = name.dropFirst(5)
        return digits.count >= 6 && digits.allSatisfy { $0.isASCII && $0.isNumber }
    }

    /// Snapshot folders in `dir`, newest first (by step number).
    static func snapshotFolders(in dir: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter(isSnapshotName).sorted { (Int($0.dropFirst(5)) ?? 0) > (Int($1.dropFirst(5)) ?? 0) }.map { dir + "/" + $0 }
    }

    /// Decodes and range-checks a snapshot's `state.json`; the message names the field.
    public static func parse(_ data: Data, path: String) throws -> SamplerCheckpoint {
        let meta: SamplerCheckpoint
        do { meta = try JSONDecoder().decode(SamplerCheckpoint.self, from: data) } catch {
            throw SVIError.file(path, "corrupt checkpoint state (\(JSONProblem.describe(error)))")
        }
        try meta.validate(path: path)
        return meta
    }

    func validate(path: String) throws {
        func bad(_ field: String, _ why: String) -> SVIError { SVIError.file(path, "corrupt checkpoint state: '\(field)' \(why)") }
        guard format == SamplerCheckpoint.formatVersion else { throw SVIError.file(path, "checkpoint format \(format) is not this svi's (\(SamplerCheckpoint.formatVersion))") }
        guard (1...1000).contains(nfe) else { throw bad("nfe", "must be between 1 and 1000, got \(nfe)") }
        guard stepsDone >= 1, stepsDone < stepsPerSegment else { throw bad("steps_done", "must be between 1 and \(stepsPerSegment - 1), got \(stepsDone)") }
        guard (0...10_000).contains(cgSteps) else { throw bad("cg_steps", "must be between 0 and 10000, got \(cgSteps)") }
        if let f = start { guard f.isFinite, f > 0, f < 1 else { throw bad("start", "must be in (0, 1), got \(f)") } }
        if let m = initMethod { guard let p = StartPoint(rawValue: m), p != .noise else { throw bad("init", "must be cg or admm-tv, got '\(m)'") } }
        if let n = finalCGSteps { guard (0...100_000).contains(n) else { throw bad("final_cg_steps", "must be between 0 and 100000, got \(n)") } }
        guard eta.isFinite, (0...1).contains(eta) else { throw bad("eta", "must be in [0, 1], got \(eta)") }
        if let g = gamma { guard g.isFinite, g > 0 else { throw bad("gamma", "must be a finite number > 0, got \(g)") } }
        if let l = pnpFirstLevel { guard l.isFinite, l > 0, l <= 0.5 else { throw bad("pnp_first_level", "must be in (0, 0.5], got \(l)") } }
        guard measurementShape.count == 4, FormatLimits.elementCount(measurementShape) != nil,
              (1...FormatLimits.maxFrames).contains(measurementShape[0]), measurementShape.dropFirst().allSatisfy({ (1...FormatLimits.maxSide).contains($0) }) else {
            throw bad("measurement_shape", "must be [T, C, H, W] of positive sizes, got \(measurementShape)")
        }
        do { _ = try DegradationSpec.parse(degradation) } catch let e as SVIError { throw bad("degradation", "is not a valid spec: \(e.message)") }
        guard stateHash.count == 16, stateHash.allSatisfy(\.isHexDigit) else { throw bad("state_hash", "must be 16 hex digits") }
        if let p = segmentPlan { try p.validate(path: path) }
        if let k = segment {
            guard let p = segmentPlan, (0..<p.count).contains(k) else { throw bad("segment", "must name a segment of the plan, got \(k)") }
            guard measurementShape[0] == p.segmentFrames else { throw bad("measurement_shape", "must have the segment's \(p.segmentFrames) frames") }
        } else if segmentPlan != nil { throw bad("segment", "is missing beside segment_plan") }
    }

    /// The snapshots in `dir` whose `state.json` is whole and valid, newest first, with their
    /// folders. A damaged one is reported through `warn` and skipped, so a run falls back to
    /// the older snapshot that is still good; `damaged` lists what was skipped.
    public static func snapshots(in dir: String, warn: (String) -> Void = { _ in }) -> (valid: [(SamplerCheckpoint, String)], damaged: [String]) {
        var valid: [(SamplerCheckpoint, String)] = [], damaged: [String] = []
        for folder in snapshotFolders(in: dir) {
            let statePath = folder + "/state.json"
            guard SmallFile.isRegularFile(statePath) else { continue }   // not a snapshot (or an unfinished one)
            do {
                let meta = try parse(try SmallFile.read(statePath, limit: 1 << 20, what: "checkpoint state"), path: statePath)
                guard folder.hasSuffix("/" + folderName(meta.jobStep)) else {
                    throw SVIError.file(statePath, "corrupt checkpoint state: 'steps_done' is \(meta.stepsDone)\(meta.segment.map { " of segment \($0)" } ?? ""), the folder says otherwise")
                }
                valid.append((meta, folder))
            } catch {
                let e = "\(error)"
                warn("skipping a damaged checkpoint: \(e)")
                damaged.append(e)
            }
        }
        return (valid, damaged)
    }

    /// The newest valid snapshot in `dir` (see `snapshots`); nil when there is none.
    public static func latest(in dir: String) throws -> (SamplerCheckpoint, String)? {
        snapshots(in: dir).valid.first
    }

    /// Reads and verifies the x_t of a snapshot.
    public func loadState(from folder: String) throws -> Tensor {
        let x = try NPY.readFloat32(folder + "/x.npy")
        guard SamplerCheckpoint.hash(x) == stateHash else {
            throw SVIError.file(folder + "/x.npy", "checkpoint data does not match its recorded hash (damaged); delete the folder to fall back to an older one")
        }
        return x
    }

    /// Writes a snapshot of the distributed x_t: rank 0 gathers blocks in frame order into the
    /// temporary folder, then renames it into place and prunes all but the newest `keep`.
    public func write(x: Tensor, dist: Distribution, to dir: String, keep: Int = 2) throws {
        let comm = dist.comm
        var meta = self
        let shape = [dist.totalFrames] + Array(x.shape.dropFirst())
        var tmp = ""
        var writer: NPYStreamWriter?
        var hasher = FNV1a()
        if comm.rank == 0 {
            // An unpredictable, freshly created folder (mkdtemp): nothing planted in advance is used.
            tmp = try TemporaryName.folder(in: dir, prefix: "." + SamplerCheckpoint.folderName(jobStep) + ".partial-")
            try Data("written by svi: a resumable snapshot (see --checkpoint-dir); svi prunes only folders holding this file\n".utf8)
                .write(to: URL(fileURLWithPath: tmp + "/" + SamplerCheckpoint.marker))
            writer = try NPYStreamWriter(path: tmp + "/x.npy", shape: shape, overwrite: true)
        }
        try comm.gather(x, partition: dist.partition) { range, p in
            try writer?.append(p, count: range.count * x.frameSize)
            hasher.add(UnsafeRawBufferPointer(start: p, count: range.count * x.frameSize * 4))
        }
        guard comm.rank == 0 else { return }
        try writer?.finish()
        meta.stateHash = hasher.hex
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(meta).write(to: URL(fileURLWithPath: tmp + "/state.json"))
        let final = dir + "/" + SamplerCheckpoint.folderName(jobStep)
        // Replaced only when svi made it (a rerun of the same step); anything else in the way is an error.
        if FileManager.default.fileExists(atPath: final) {
            guard FileManager.default.fileExists(atPath: final + "/" + SamplerCheckpoint.marker) else {
                try? FileManager.default.removeItem(atPath: tmp)
                throw SVIError.file(final, "is in the way of a checkpoint and was not made by svi; move it elsewhere")
            }
            try? FileManager.default.removeItem(atPath: final)
        }
        guard rename(tmp, final) == 0 else { throw SVIError.io(final, "cannot move the checkpoint into place: \(String(cString: strerror(errno)))") }
        SamplerCheckpoint.prune(dir, keep: keep)
    }

    /// Removes svi's snapshot folders in `dir` but the newest `keep` (all with 0: a finished
    /// segment's snapshots are of no further use).
    public static func prune(_ dir: String, keep: Int) {
        let ours = snapshotFolders(in: dir).filter { FileManager.default.fileExists(atPath: $0 + "/" + marker) }
        for folder in ours.dropFirst(keep) { try? FileManager.default.removeItem(atPath: folder) }
    }

    /// FNV-1a (64-bit) of a tensor's bytes, as hex.
    public static func hash(_ t: Tensor) -> String {
        var h = FNV1a()
        h.add(UnsafeRawBufferPointer(start: t.data, count: t.count * 4))
        return h.hex
    }
}

/// 64-bit FNV-1a over bytes, fed in pieces.
public struct FNV1a {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    public init() {}
    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var h = value
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        value = h
    }
    public var hex: String { String(format: "%016llx", value) }
}

import Foundation
import SVICore
import SVIFormats
import SVICluster

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

    enum CodingKeys: String, CodingKey {
        case format, nfe, eta, gamma, seed, degradation, model
        case stepsDone = "steps_done", cgSteps = "cg_steps", batchIndependent = "batch_independent", maskSeed = "mask_seed"
        case measurementShape = "measurement_shape", measurementHash = "measurement_hash", stateHash = "state_hash"
    }

    public init(stepsDone: Int, settings: SamplerSettings, degradation: String, maskSeed: UInt64,
                measurementShape: [Int], measurementHash: String, model: String) {
        self.stepsDone = stepsDone; nfe = settings.nfe; cgSteps = settings.cgSteps; eta = settings.eta; gamma = settings.gamma
        batchIndependent = settings.batchIndependent; seed = settings.seed
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
        if seed != other.seed { d.append("--seed (\(seed) vs \(other.seed))") }
        return d
    }

    // MARK: files

    static func folderName(_ step: Int) -> String { String(format: "step-%06d", step) }

    /// The newest complete snapshot in `dir` whose data matches its recorded hash, with its
    /// folder; nil when there is none. Damaged snapshots are reported, not used.
    public static func latest(in dir: String) throws -> (SamplerCheckpoint, String)? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return nil }
        for name in names.filter({ $0.hasPrefix("step-") }).sorted(by: >) {
            let folder = dir + "/" + name
            guard let data = FileManager.default.contents(atPath: folder + "/state.json") else { continue }
            guard let meta = try? JSONDecoder().decode(SamplerCheckpoint.self, from: data) else {
                throw SVIError.file(folder + "/state.json", "corrupt checkpoint state (not valid JSON of this format)")
            }
            guard meta.format == formatVersion else {
                throw SVIError.file(folder, "checkpoint format \(meta.format) is not this svi's (\(formatVersion))")
            }
            return (meta, folder)
        }
        return nil
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
        let tmp = dir + "/." + SamplerCheckpoint.folderName(stepsDone) + ".partial-\(getpid())"
        var writer: NPYStreamWriter?
        var hasher = FNV1a()
        if comm.rank == 0 {
            try? FileManager.default.removeItem(atPath: tmp)
            try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
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
        let final = dir + "/" + SamplerCheckpoint.folderName(stepsDone)
        try? FileManager.default.removeItem(atPath: final)
        guard rename(tmp, final) == 0 else { throw SVIError.file(final, "cannot move the checkpoint into place: \(String(cString: strerror(errno)))") }
        let old = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix("step-") }.sorted(by: >)
        for name in old.dropFirst(keep) { try? FileManager.default.removeItem(atPath: dir + "/" + name) }
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

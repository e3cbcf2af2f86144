import Foundation
import SVICore
import SVIFormats

/// The finished part of a job of several temporal segments, kept in the checkpoint folder
/// (issue 15, item 4): `DIR/finished/progress.json`, the complete frames each finished segment
/// produced (`frames-NNNNNN.npy`, float32) and the cross-fade sums waiting for the next
/// segment (`pending-NNNNNN.npy`). A resumed job re-sends the finished frames to the output
/// and never recomputes a finished segment; `progress.json` is written last (atomically), so
/// a kill at any moment leaves the previous state valid.
///
/// Disk: the finished frames in float32 until the job ends (then the folder is removed).
public struct SegmentProgress: Codable, Equatable {
    public static let formatVersion = 1
    public var format = SegmentProgress.formatVersion
    public var segmentsDone: Int
    public var plan: SegmentPlan
    /// The run's identity (settings, seed, degradation, model); its measurement fields are
    /// empty: the measurement is checked by `prefixHash`.
    public var identity: SamplerCheckpoint
    /// FNV-1a of the measurement's frames before the next segment's start (the frames the
    /// finished segments used and no later one reads) — checked against the input on resume.
    public var prefixHash: String
    public var prefixFrames: Int
    public var frameFileHashes: [String]
    public var pendingStart: Int
    public var pendingCount: Int
    public var pendingHash: String

    public init(segmentsDone: Int, plan: SegmentPlan, identity: SamplerCheckpoint, prefixHash: String, prefixFrames: Int,
                frameFileHashes: [String], pendingStart: Int, pendingCount: Int, pendingHash: String) {
        self.segmentsDone = segmentsDone; self.plan = plan; self.identity = identity; self.prefixHash = prefixHash
        self.prefixFrames = prefixFrames; self.frameFileHashes = frameFileHashes; self.pendingStart = pendingStart
        self.pendingCount = pendingCount; self.pendingHash = pendingHash
    }

    enum CodingKeys: String, CodingKey {
        case format, plan, identity
        case segmentsDone = "segments_done", prefixHash = "prefix_hash", prefixFrames = "prefix_frames"
        case frameFileHashes = "frame_file_hashes", pendingStart = "pending_start", pendingCount = "pending_count", pendingHash = "pending_hash"
    }

    public static func folder(_ dir: String) -> String { dir + "/finished" }
    static func framesFile(_ dir: String, _ k: Int) -> String { folder(dir) + String(format: "/frames-%06d.npy", k) }
    static func pendingFile(_ dir: String, _ k: Int) -> String { folder(dir) + String(format: "/pending-%06d.npy", k) }
    static func progressFile(_ dir: String) -> String { folder(dir) + "/progress.json" }

    /// Reads and checks `progress.json` (nil when there is none). Every field from the file is
    /// range-checked against the plan before it is used.
    public static func load(_ dir: String) throws -> SegmentProgress? {
        let path = progressFile(dir)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let p: SegmentProgress
        do { p = try JSONDecoder().decode(SegmentProgress.self, from: try SmallFile.read(path, limit: 16 << 20, what: "segment progress")) }
        catch let e as SVIError { throw e }
        catch { throw SVIError.file(path, "corrupt segment progress (\(JSONProblem.describe(error)))") }
        func bad(_ f: String, _ why: String) -> SVIError { SVIError.file(path, "corrupt segment progress: '\(f)' \(why)") }
        guard p.format == formatVersion else { throw bad("format", "is \(p.format), this svi writes \(formatVersion)") }
        try p.plan.validate(path: path)
        guard (1...p.plan.count).contains(p.segmentsDone) else { throw bad("segments_done", "must be in 1…\(p.plan.count)") }
        guard p.frameFileHashes.count == p.segmentsDone, p.frameFileHashes.allSatisfy({ $0.count == 16 && $0.allSatisfy(\.isHexDigit) }) else {
            throw bad("frame_file_hashes", "must hold one 16-digit hash per finished segment")
        }
        let k = p.segmentsDone - 1
        let expectedPending = k + 1 < p.plan.count ? (p.plan.starts[k + 1], p.plan.range(k).upperBound - p.plan.starts[k + 1]) : (p.plan.totalFrames, 0)
        guard p.pendingStart == expectedPending.0, p.pendingCount == expectedPending.1 else { throw bad("pending_start", "does not agree with the plan") }
        guard p.prefixFrames == expectedPending.0 else { throw bad("prefix_frames", "does not agree with the plan") }
        return p
    }

    /// Reads the finished frames of segment k, one frame at a time, checking the file's hash.
    public func readFrames(_ dir: String, segment k: Int, frameSize: Int, _ each: (Int, UnsafePointer<Float>) throws -> Void) throws {
        let path = SegmentProgress.framesFile(dir, k)
        let r = try NPYFrameReader(path)
        let range = plan.finalized(after: k)
        guard r.shape == [range.count, frameSize] else { throw SVIError.file(path, "holds shape \(r.shape), the finished segment \(k) needs \([range.count, frameSize])") }
        let buf = Tensor(shape: [1, frameSize], zeroed: false)
        var h = FNV1a()
        for i in 0..<range.count {
            try r.read(frame: i, into: buf.data)
            h.add(UnsafeRawBufferPointer(start: buf.data, count: frameSize * 4))
        }
        guard h.hex == frameFileHashes[k] else { throw SVIError.file(path, "does not match its recorded hash (damaged): move the checkpoint folder away to start over") }
        for i in 0..<range.count {
            try r.read(frame: i, into: buf.data)
            try each(range.lowerBound + i, buf.data)
        }
    }

    /// The pending cross-fade sums after the last finished segment.
    public func readPending(_ dir: String, frameSize: Int) throws -> Tensor {
        let path = SegmentProgress.pendingFile(dir, segmentsDone - 1)
        if pendingCount == 0 { return Tensor(shape: [0, frameSize]) }
        let t = try NPY.readFloat32(path)
        guard t.shape == [pendingCount, frameSize], SamplerCheckpoint.hash(t) == pendingHash else {
            throw SVIError.file(path, "does not match the segment progress (damaged): move the checkpoint folder away to start over")
        }
        return t
    }

    /// Writes segment k's finished frames (already written to `framesTemp` by the caller through
    /// `FinishedFramesWriter`), the pending sums, then `progress.json`; removes older pending files.
    public static func commit(_ dir: String, progress: SegmentProgress, frames: FinishedFramesWriter, pending: Tensor) throws {
        let k = progress.segmentsDone - 1
        try frames.finish(to: framesFile(dir, k))
        try NPY.write(pending, to: pendingFile(dir, k), overwrite: true)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try enc.encode(progress), to: progressFile(dir), overwrite: true)
        if k > 0 { try? FileManager.default.removeItem(atPath: pendingFile(dir, k - 1)) }
    }

    /// Removes the finished frames once the output is complete.
    public static func remove(_ dir: String) {
        try? FileManager.default.removeItem(atPath: folder(dir))
    }
}

/// Streams one finished segment's frames into the checkpoint folder under a temporary name,
/// hashing them; `SegmentProgress.commit` moves the file into place.
public final class FinishedFramesWriter {
    private let writer: NPYStreamWriter
    private var hasher = FNV1a()
    private let tmp: String
    public init(dir: String, segment k: Int, frames: Int, frameSize: Int) throws {
        let folder = SegmentProgress.folder(dir)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        tmp = folder + String(format: "/.frames-%06d.partial.npy", k)
        writer = try NPYStreamWriter(path: tmp, shape: [frames, frameSize], overwrite: true)
    }
    public func append(_ p: UnsafePointer<Float>, count: Int) throws {
        try writer.append(p, count: count)
        hasher.add(UnsafeRawBufferPointer(start: p, count: count * 4))
    }
    public var hash: String { hasher.hex }
    func finish(to path: String) throws {
        try writer.finish()
        guard rename(tmp, path) == 0 else { throw SVIError.io(path, "cannot move finished frames into place: \(String(cString: strerror(errno)))") }
    }
}

import Foundation
import SVICore
import SVIFormats
import SVIMedia
import SVISampler

/// One entry per loader that reads files from strangers: the fuzzers (`Fuzz/`, built with
/// `-sanitize=fuzzer,address` by `Scripts/fuzz`) call these with arbitrary bytes, and the
/// test suite replays every stored corpus input through them. A loader may refuse an input
/// (an `SVIError`); anything else — a crash, a hang, a sanitizer report, an error of another
/// type — is a finding.
public enum FuzzEntry {
    public static let targets = ["npy", "safetensors", "torch", "model-config", "spec", "sidecar", "checkpoint-state", "segment-progress", "video", "png-pattern", "option-values"]

    /// A scratch file per process for the loaders that read paths (in /dev/shm when there is one).
    static let scratch: String = {
        let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        return dir + "/svi-fuzz-\(getpid())"
    }()

    static func asFile(_ data: Data, suffix: String) -> String {
        let path = scratch + suffix
        FileManager.default.createFile(atPath: path, contents: data)
        return path
    }

    /// Feeds `data` to `target`'s loader. Returns normally when the input was read or refused
    /// with an `SVIError`; throws `Finding` for any other outcome the loader reported.
    public static func run(_ target: String, _ data: Data) throws {
        defer {
            for suffix in [".npy", ".pt", ".safetensors", ".video"] { unlink(scratch + suffix) }
            try? FileManager.default.removeItem(atPath: scratch + ".dir")
        }
        do {
            switch target {
            case "npy":
                let p = asFile(data, suffix: ".npy")
                _ = try? NPY.shapeOfFloat32(p)
                _ = try? NPY.readIntegers(p)
                if let r = try? NPYFrameReader(p) {
                    let buf = UnsafeMutablePointer<Float>.allocate(capacity: max(r.frameSize, 1))
                    defer { buf.deallocate() }
                    _ = try? r.read(frame: r.frames - 1, into: buf)
                }
                _ = try NPY.readFloat32(p)
            case "safetensors", "torch":
                _ = try Checkpoint.load(asFile(data, suffix: target == "torch" ? ".pt" : ".safetensors"))
            case "model-config":
                let c = try UNetConfig.fromJSON(data, source: "config.json")
                _ = c.description
            case "spec":
                _ = try DegradationSpec.parse(String(decoding: data, as: UTF8.self))
            case "sidecar":
                _ = try Sidecar.parse(data, path: "x.npy.json")
            case "checkpoint-state":
                _ = try SamplerCheckpoint.parse(data, path: "state.json")
            case "segment-progress":
                let dir = scratch + ".dir"
                try? FileManager.default.createDirectory(atPath: dir + "/finished", withIntermediateDirectories: true)
                FileManager.default.createFile(atPath: dir + "/finished/progress.json", contents: data)
                if let p = try SegmentProgress.load(dir) { _ = p.plan.finalized(after: p.segmentsDone - 1) }
            case "video":
                var s = FrameSelection()
                s.range = 0..<3
                _ = try VideoReader.read(asFile(data, suffix: ".video"), selection: s)
            case "png-pattern":
                let p = try PNGPattern(String(decoding: data, as: UTF8.self))
                _ = p.name(12345)
            case "option-values":
                // The parsers of option values that are not plain numbers (--frames a:b, --size
                // WxH, --crop WxH+X+Y, --memory-per-rank 8G): whatever they accept must be in range.
                let text = String(decoding: data, as: UTF8.self)
                if let r = FrameSelection.parseRange(text), !(r.lowerBound >= 0 && r.upperBound > r.lowerBound) {
                    throw Finding(message: "parseRange accepted \(r) from '\(text)'")
                }
                let sides = 1...FormatLimits.maxSide
                if let z = FrameSelection.parseSize(text), !(sides.contains(z.width) && sides.contains(z.height)) {
                    throw Finding(message: "parseSize accepted \(z) from '\(text)'")
                }
                if let c = FrameSelection.parseCrop(text), !(sides.contains(c.width) && sides.contains(c.height) && (0...FormatLimits.maxSide).contains(c.x) && (0...FormatLimits.maxSide).contains(c.y)) {
                    throw Finding(message: "parseCrop accepted \(c) from '\(text)'")
                }
                if let b = OptionValues.bytes(text), !(b.isFinite && b > 0 && b < 1e16) {
                    throw Finding(message: "bytes accepted \(b) from '\(text)'")
                }
            default:
                throw Finding(message: "unknown fuzz target '\(target)' (targets: \(targets.joined(separator: ", ")))")
            }
        } catch is SVIError {
            return   // a clean refusal
        }
    }

    public struct Finding: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }
}

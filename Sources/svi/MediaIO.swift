import Foundation
import SVICore
import SVIFormats
import SVIMedia

/// Video in and out for the commands: `.npy` tensors as they are, anything else through
/// FFmpeg (decoding any format it reads; encoding by the output's extension or `--codec`).
enum MediaIO {
    static func isNPY(_ path: String) -> Bool { path.lowercased().hasSuffix(".npy") }

    /// Reads a clip: a `.npy` tensor [T][C][H][W] (selection options apply to video files
    /// only), or any video file FFmpeg reads.
    static func read(_ path: String, selection: FrameSelection, progress: Progress) throws -> (Tensor, VideoInfo?) {
        if isNPY(path) {
            if selection.range != nil || selection.size != nil || selection.crop != nil {
                throw SVIError.file(path, "--frames, --size and --crop apply to video files, not .npy tensors")
            }
            return (try readVideo(path), nil)
        }
        let (t, info) = try VideoReader.read(path, selection: selection, warn: { progress.warning($0) },
                                             decoded: { progress.count("decoding \(URL(fileURLWithPath: path).lastPathComponent): frame", $0) })
        progress.count("decoding \(URL(fileURLWithPath: path).lastPathComponent): frame", t.frames, done: true)
        return (t, info)
    }

    /// A sink for frames in order: an `.npy` (streamed) or a video file.
    final class Sink {
        private var npy: NPYStreamWriter?
        private var video: VideoWriter?
        private let frameSize: Int

        init(path: String, shape: [Int], info: VideoInfo?, codec: String?, crf: Int, audioFrom: (path: String, start: Double, duration: Double)?,
             overwrite: Bool, progress: Progress) throws {
            frameSize = shape.dropFirst().reduce(1, *)
            if isNPY(path) && codec == nil {
                npy = try NPYStreamWriter(path: path, shape: shape, overwrite: overwrite)
                return
            }
            guard let kind = codec.map({ VideoCodec(rawValue: $0) }) ?? VideoCodec.forPath(path) else {
                throw SVIError.file(path, "unknown output type: use .npy, .mp4 (H.264), .mkv (FFV1) or a PNG pattern like out/%05d.png, or --codec \(VideoCodec.allCases.map(\.rawValue).joined(separator: "|"))")
            }
            guard shape.count == 4, shape[1] == 3 else { throw SVIError.file(path, "video files hold 3-channel frames; this video has \(shape.count == 4 ? shape[1] : 0)") }
            let fps = info.map { ($0.fpsNum, $0.fpsDen) } ?? (25, 1)
            video = try VideoWriter(path: path, codec: kind, width: shape[3], height: shape[2], fpsNum: fps.0, fpsDen: fps.1, crf: crf,
                                    overwrite: overwrite, audioFrom: audioFrom) { progress.warning($0) }
        }

        func append(_ p: UnsafePointer<Float>, frames: Int) throws {
            if let n = npy { try n.append(p, count: frames * frameSize); return }
            for f in 0..<frames { try video!.append(p + f * frameSize) }
        }

        func finish() throws {
            try npy?.finish()
            try video?.finish()
        }

        /// The file being written until `finish` renames it (nil for PNG sequences, whose
        /// frames are written at the end).
        var temporaryPath: String? { npy?.temporaryPath ?? video?.temporaryPath }
    }
}

/// Options that select frames from a video file.
import ArgumentParser

struct SelectionOptions: ParsableArguments {
    @Option(name: .long, help: "Frames a:b of a video file (half-open, by decoded index; either side may be empty).")
    var frames: String?

    @Option(name: .long, help: "Crop WxH+X+Y (source pixels) before scaling.")
    var crop: String?

    @Option(name: .long, help: "Scale frames to WxH (default: native size).")
    var size: String?

    func selection() throws -> FrameSelection {
        var s = FrameSelection()
        if let f = frames {
            guard let r = FrameSelection.parseRange(f) else { throw ValidationError("--frames must be a:b with 0 ≤ a < b, got '\(f)'") }
            s.range = r
        }
        if let c = crop {
            guard let v = FrameSelection.parseCrop(c) else { throw ValidationError("--crop must be WxH+X+Y, got '\(c)'") }
            s.crop = v
        }
        if let z = size {
            guard let v = FrameSelection.parseSize(z) else { throw ValidationError("--size must be WxH, got '\(z)'") }
            s.size = v
        }
        return s
    }
}

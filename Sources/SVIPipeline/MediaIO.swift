import Foundation
import SVICore
import SVIFormats
import SVIMedia

/// Video in and out for the commands: `.npy` tensors as they are, anything else through
/// FFmpeg (decoding any format it reads; encoding by the output's extension or `--codec`).
package enum MediaIO {
    package static func isNPY(_ path: String) -> Bool { path.lowercased().hasSuffix(".npy") }

    /// Reads a clip: a `.npy` tensor [T][C][H][W] (selection options apply to video files
    /// only), or any video file FFmpeg reads.
    package static func read(_ path: String, selection: FrameSelection, progress: Progress) throws -> (Tensor, VideoInfo?) {
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
    package final class Sink {
        private var npy: NPYStreamWriter?
        private var video: VideoWriter?
        private let frameSize: Int

        package init(path: String, shape: [Int], info: VideoInfo?, codec: String?, crf: Int, audioFrom: (path: String, start: Double, duration: Double)?,
             overwrite: Bool, encoderThreads: Int? = nil, progress: Progress) throws {
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
                                    overwrite: overwrite, audioFrom: audioFrom, encoderThreads: encoderThreads) { progress.warning($0) }
        }

        package func append(_ p: UnsafePointer<Float>, frames: Int) throws {
            if let n = npy { try n.append(p, count: frames * frameSize); return }
            for f in 0..<frames { try video!.append(p + f * frameSize) }
        }

        package func finish() throws {
            try npy?.finish()
            try video?.finish()
        }

        /// The file being written until `finish` renames it (nil for PNG sequences, whose
        /// frames are written at the end).
        package var temporaryPath: String? { npy?.temporaryPath ?? video?.temporaryPath }
    }
}

/// Frames of a measurement or reference, read one at a time in order (issue 15: rank 0 never
/// holds a whole video): a float32 `.npy` by positioned reads, or any video FFmpeg reads,
/// decoded as it goes. The length is known before the first frame (the `.npy` header; for a
/// video, a decoding pass that counts the selected frames without converting them).
package final class FrameSource {
    package let path: String
    /// Selected frames, and the shape of one ([C][H][W]).
    package let frames: Int
    package let frameShape: [Int]
    package var frameSize: Int { frameShape.reduce(1, *) }
    /// Index of the first selected frame in the file, and the file's length in frames when the
    /// selection reaches its end (else a length past the selection: the clip does not touch
    /// the file's end, which is all the temporal operator needs to know).
    package let firstIndex: Int
    package let fileFrames: Int
    package let info: VideoInfo?
    /// Next frame `read` gives (0-based in the selection).
    private(set) var position = 0
    private var npy: NPYFrameReader?
    private var stream: VideoStream?
    private var peeked: Tensor?

    package init(_ path: String, selection: FrameSelection, progress: Progress) throws {
        self.path = path
        if MediaIO.isNPY(path) {
            if selection.size != nil || selection.crop != nil {
                throw SVIError.file(path, "--size and --crop apply to video files, not .npy tensors")
            }
            let r = try NPYFrameReader(path)
            guard r.shape.count == 4 else { throw SVIError.file(path, "expected a video shaped [T][C][H][W], got shape \(r.shape)") }
            let range = selection.range ?? 0..<Int.max
            guard range.lowerBound < r.frames, range.upperBound == Int.max || range.upperBound <= r.frames else {
                throw SVIError.file(path, "frame range \(range.lowerBound):\(range.upperBound == Int.max ? "" : "\(range.upperBound)") is beyond the end (the file has \(r.frames) frames)")
            }
            npy = r
            firstIndex = range.lowerBound
            frames = min(range.upperBound, r.frames) - range.lowerBound
            frameShape = Array(r.shape.dropFirst())
            fileFrames = r.frames
            info = nil
            return
        }
        // Count first (decoding only), one frame past the selection to learn whether the clip
        // reaches the file's end.
        var countSel = selection
        if let r = selection.range, r.upperBound != Int.max { countSel.range = r.lowerBound..<(r.upperBound + 1) }
        let name = URL(fileURLWithPath: path).lastPathComponent
        progress.note("counting the frames of \(name)…")
        let counted = try VideoStream(path: path, selection: countSel, warn: { progress.warning($0) }).countRemaining()
        let a = selection.range?.lowerBound ?? 0
        let wanted = selection.range.map { $0.upperBound == Int.max ? Int.max : $0.count } ?? Int.max
        let s = try VideoStream(path: path, selection: selection, warn: { progress.warning($0) })
        guard let first = try s.next() else {
            try s.checkEnd(delivered: 0)
            throw SVIError.file(path, "no frames selected")
        }
        let n = min(counted, wanted)
        if wanted != Int.max && counted < wanted {
            throw SVIError.file(path, "frame range \(a):\(a + wanted) is beyond the end (the video has \(a + counted) frames)")
        }
        stream = s
        peeked = first
        firstIndex = a
        frames = n
        frameShape = Array(first.shape.dropFirst())
        fileFrames = counted > n ? a + n + 1 : a + n
        info = s.info(frames: n)
    }

    /// Reads the next frame into `dst` (frameSize floats).
    package func read(into dst: UnsafeMutablePointer<Float>) throws {
        precondition(position < frames)
        if let r = npy {
            try r.read(frame: firstIndex + position, into: dst)
        } else {
            let f: Tensor
            if let p = peeked { f = p; peeked = nil } else {
                guard let next = try stream!.next() else { throw SVIError.file(path, "ended after \(position) frames; it had \(frames) when counted") }
                f = next
            }
            guard f.count == frameSize else { throw SVIError.file(path, "frame \(firstIndex + position) has another size than the first") }
            dst.update(from: f.data, count: frameSize)
        }
        position += 1
    }
}

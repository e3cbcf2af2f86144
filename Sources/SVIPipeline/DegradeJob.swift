import Foundation
import SVICore
import SVIFormats
import SVIContracts
import SVIOperators
import SVIMedia

extension FrameSelection {
    /// The frames a:b, crop WxH+X+Y and scale WxH a command was given (as typed), checked.
    package static func parse(frames: String?, crop: String?, size: String?) throws -> FrameSelection {
        var s = FrameSelection()
        if let f = frames {
            guard let r = FrameSelection.parseRange(f) else { throw SVIError.option("--frames", "--frames must be a:b with 0 ≤ a < b, got '\(f)'") }
            s.range = r
        }
        if let c = crop {
            guard let v = FrameSelection.parseCrop(c) else { throw SVIError.option("--crop", "--crop must be WxH+X+Y, got '\(c)'") }
            s.crop = v
        }
        if let z = size {
            guard let v = FrameSelection.parseSize(z) else { throw SVIError.option("--size", "--size must be WxH, got '\(z)'") }
            s.size = v
        }
        return s
    }
}

/// What `svi degrade` is asked to do: simulate y = A(x) + noise from a clean video.
package struct DegradeSettings: Codable, Equatable, Sendable {
    package var input = ""
    package var output = ""
    package var frames: String?
    package var crop: String?
    package var size: String?
    package var codec: String?
    package var crf = 18
    package var noAudio = false
    package var degradation = ""
    /// Seed of the measurement noise (and of the inpainting mask unless `maskSeed`).
    package var seed: UInt64 = 0
    package var maskSeed: UInt64?
    package var overwrite = false
    package var quiet = false

    package init() {}
}

/// `svi degrade` as a library call: reads the clean clip (whole: degrade holds it, and says so
/// before decoding when it cannot fit), applies the spec's operator with its noise, writes the
/// measurement and the sidecar `svi restore` reads (spec, seeds, source, shapes, frame rate).
package enum DegradeJob {
    /// Threads of the measurement's video encoder, whatever the machine (see `run`).
    package static let encoderThreads = 2

    package static func run(_ s: DegradeSettings, version: String) throws {
        let spec = try DegradationSpec.parse(s.degradation)
        let selection = try FrameSelection.parse(frames: s.frames, crop: s.crop, size: s.size)
        try OutputGuard.check(outputs: [(s.output, "-o"), (Sidecar.path(for: s.output), "-o's sidecar")], inputs: [s.input], overwrite: s.overwrite)
        try AtomicFile.checkWritable(s.output, overwrite: s.overwrite)
        let progress = Progress(quiet: s.quiet)
        // degrade holds the clip whole (a decoded copy, the frames and the measurement): refuse
        // a clip that cannot fit before decoding a frame, instead of dying in the allocator.
        if !MediaIO.isNPY(s.input), let p = try? VideoStream.probe(s.input, selection: selection) {
            do { try FormatLimits.requireMemory(3 * Double(p.frames) * Double(3 * p.width * p.height) * 4, for: "degrading \(p.frames) frames of \(p.width)x\(p.height)") }
            catch let e as SVIError { throw SVIError(kind: e.kind, file: s.input, e.message + " (degrade holds the clip whole: cut it with --frames or --size)") }
        }
        let (x, info) = try MediaIO.read(s.input, selection: selection, progress: progress)
        guard x.shape.count == 4, x.frames > 0 else { throw SVIError.file(s.input, "expected a video shaped [T][C][H][W], got shape \(x.shape)") }
        let frame = FrameShape(channels: x.shape[1], height: x.shape[2], width: x.shape[3])
        let ms = s.maskSeed ?? s.seed
        let op: DegradationOperator
        do { op = try DegradationOperator(spec: spec, frame: frame, totalFrames: x.frames, maskSeed: ms) }
        catch let e as SVIError { throw e.about(s.input) }
        let y = op.measure(x, .local(totalFrames: x.frames), noiseSeed: s.seed)
        let audio = s.noAudio ? nil : info.map { (path: s.input, start: $0.startSeconds, duration: $0.durationSeconds) }
        // The encoder on a fixed number of threads: x264's bytes depend on it, and a measurement
        // must be the same file on any machine (the evaluation checks its rows' files by σ).
        // Two: what every measurement recorded so far was made with (2-core machines).
        let sink = try MediaIO.Sink(path: s.output, shape: y.shape, info: info, codec: s.codec, crf: s.crf, audioFrom: audio,
                                    overwrite: s.overwrite, encoderThreads: DegradeJob.encoderThreads, progress: progress)
        try sink.append(y.data, frames: y.frames)
        try sink.finish()
        let o = op.outputShape
        var sidecar = Sidecar(degradation: spec.canonical, seed: s.seed, maskSeed: ms, source: s.input, frames: x.frames,
                              originalShape: [frame.channels, frame.height, frame.width],
                              measurementShape: [o.channels, o.height, o.width], sviVersion: version)
        if let i = info {
            let r = selection.range
            sidecar.frameRange = [r?.lowerBound ?? 0, (r?.lowerBound ?? 0) + i.frames]
            sidecar.fpsNum = i.fpsNum; sidecar.fpsDen = i.fpsDen; sidecar.startSeconds = i.startSeconds
        }
        try writeJSON(sidecar, to: Sidecar.path(for: s.output), overwrite: s.overwrite)
        progress.note("wrote \(s.output) (\(x.frames) frames, \(o)) and \(Sidecar.path(for: s.output))")
    }
}

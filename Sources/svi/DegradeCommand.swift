import ArgumentParser
import Foundation
import SVICore
import SVIPipeline
import SVIFormats
import SVIMedia
import SVICluster
import SVIOperators

struct DegradeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "degrade",
        abstract: "Simulate a measurement y = A(x) + noise from a clean video.",
        discussion: """
        Writes OUT and a JSON sidecar OUT.json (spec, seeds, source, shapes) that `svi restore` reads.
        Spec keys (comma-separated):
          temporal=uniform:K     mean of the K frames centred on t (K odd)
          temporal=gaussian:S    normalised Gaussian over 2⌈3S⌉+1 frames
          boundary=circular|replicate   frames beyond the ends (default circular)
          blur=S                 spatial Gaussian blur σ=S, reflect boundary
          sr=F                   F×F block average (super-resolution); H and W must be multiples of F
          inpaint=R              keep a random fraction R (0.01–1) of pixel positions (same mask for all frames)
          noise=S                additive Gaussian noise σ_y=S (pixel range [0,1])
        Spatial parts apply in the order blur, sr, inpaint, after the temporal part.
        """)

    @Argument(help: "Clean video: any file FFmpeg reads, or a float32 .npy [T][C][H][W] in [0,1].")
    var input: String

    @Option(name: .shortAndLong, help: "Output measurement: .npy (float32), .mkv (FFV1, lossless 8-bit; --codec ffv1-16 for 16-bit), .mp4, or a PNG pattern.")
    var output: String

    @OptionGroup var selection: SelectionOptions

    @Option(name: .long, help: "Output codec: h264, ffv1, ffv1-16 or png (default: from the extension).")
    var codec: String?

    @Option(name: .long, help: "H.264 quality (CRF: lower is better and larger).")
    var crf: Int = 18

    @Flag(name: .long, help: "Do not copy the source's audio and subtitle streams.")
    var noAudio = false

    @Option(name: .long, help: "Degradation spec, e.g. temporal=uniform:13 or temporal=uniform:7,sr=4.")
    var degradation: String

    @Option(name: .long, help: "Seed of the measurement noise.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Seed of the inpainting mask (default: the --seed value).")
    var maskSeed: UInt64?

    @Flag(name: .long, help: "Replace OUT if it exists.")
    var overwrite = false

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        let spec = try DegradationSpec.parse(degradation)
        try OutputGuard.check(outputs: [(output, "-o"), (Sidecar.path(for: output), "-o's sidecar")], inputs: [input], overwrite: overwrite)
        try AtomicFile.checkWritable(output, overwrite: overwrite)
        let progress = Progress(quiet: runtime.quiet)
        // degrade holds the clip whole (a decoded copy, the frames and the measurement): refuse
        // a clip that cannot fit before decoding a frame, instead of dying in the allocator.
        if !MediaIO.isNPY(input), let p = try? VideoStream.probe(input, selection: try selection.selection()) {
            do { try FormatLimits.requireMemory(3 * Double(p.frames) * Double(3 * p.width * p.height) * 4, for: "degrading \(p.frames) frames of \(p.width)x\(p.height)") }
            catch let e as SVIError { throw SVIError(kind: e.kind, file: input, e.message + " (degrade holds the clip whole: cut it with --frames or --size)") }
        }
        let (x, info) = try MediaIO.read(input, selection: try selection.selection(), progress: progress)
        guard x.shape.count == 4, x.frames > 0 else { throw SVIError.file(input, "expected a video shaped [T][C][H][W], got shape \(x.shape)") }
        let frame = FrameShape(channels: x.shape[1], height: x.shape[2], width: x.shape[3])
        let ms = maskSeed ?? seed
        let op: DegradationOperator
        do { op = try DegradationOperator(spec: spec, frame: frame, totalFrames: x.frames, maskSeed: ms) }
        catch let e as SVIError { throw e.about(input) }
        let y = op.measure(x, .local(totalFrames: x.frames), noiseSeed: seed)
        let audio = noAudio ? nil : info.map { (path: input, start: $0.startSeconds, duration: $0.durationSeconds) }
        let sink = try MediaIO.Sink(path: output, shape: y.shape, info: info, codec: codec, crf: crf, audioFrom: audio,
                                    overwrite: overwrite, progress: progress)
        try sink.append(y.data, frames: y.frames)
        try sink.finish()
        let o = op.outputShape
        var sidecar = Sidecar(degradation: spec.canonical, seed: seed, maskSeed: ms, source: input, frames: x.frames,
                              originalShape: [frame.channels, frame.height, frame.width],
                              measurementShape: [o.channels, o.height, o.width], sviVersion: SVI.version)
        if let i = info {
            let r = try selection.selection().range
            sidecar.frameRange = [r?.lowerBound ?? 0, (r?.lowerBound ?? 0) + i.frames]
            sidecar.fpsNum = i.fpsNum; sidecar.fpsDen = i.fpsDen; sidecar.startSeconds = i.startSeconds
        }
        try writeJSON(sidecar, to: Sidecar.path(for: output), overwrite: overwrite)
        progress.note("wrote \(output) (\(x.frames) frames, \(o)) and \(Sidecar.path(for: output))")
    }
}

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

    @Option(name: .long, help: "Output codec: h264, ffv1, ffv1-16 or png (default: from the extension). H.264 is encoded on two threads on any machine, so the same command writes the same file everywhere.")
    var codec: String?

    @Option(name: .long, help: "H.264 quality (CRF: lower is better and larger).")
    var crf: Int = DegradeSettings().crf

    @Flag(name: .long, help: "Do not copy the source's audio and subtitle streams.")
    var noAudio = false

    @Option(name: .long, help: "Degradation spec, e.g. temporal=uniform:13 or temporal=uniform:7,sr=4.")
    var degradation: String

    @Option(name: .long, help: "Seed of the measurement noise.")
    var seed: UInt64 = DegradeSettings().seed

    @Option(name: .long, help: "Seed of the inpainting mask (default: the --seed value).")
    var maskSeed: UInt64?

    @Flag(name: .long, help: "Replace OUT if it exists.")
    var overwrite = false

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        var s = DegradeSettings()
        s.input = input; s.output = output; s.frames = selection.frames; s.crop = selection.crop; s.size = selection.size
        s.codec = codec; s.crf = crf; s.noAudio = noAudio; s.degradation = degradation; s.seed = seed; s.maskSeed = maskSeed
        s.overwrite = overwrite; s.quiet = runtime.quiet
        try DegradeJob.run(s, version: SVI.version)
    }
}

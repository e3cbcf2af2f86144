import ArgumentParser
import Foundation
import SVICore
import SVIPipeline
import SVIFormats
import SVIMedia

/// A synthetic clip with known content, for demos and quick checks without footage.
struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Write a synthetic test video: soft coloured discs and a striped bar moving over a gradient.")

    @Option(name: .shortAndLong, help: "Output .npy [T][3][H][W], values in [0,1].")
    var output: String

    @Option(name: .long, help: "Frames a:b of the synthetic motion (half-open, as --frames everywhere; a plain count N, the old spelling, means 0:N).")
    var frames: String = "0:16"

    @Option(name: .long, help: "Frame size WxH, as everywhere.")
    var size: String = "64x64"

    @Option(name: .long, help: "Pixels moved per frame.")
    var speed: Double = 1.5

    @Flag(name: .long, help: "Replace OUT if it exists.")
    var overwrite = false

    func run() throws {
        try OutputGuard.check(outputs: [(output, "-o")], inputs: [], overwrite: overwrite)
        guard let (w, h) = FrameSelection.parseSize(size), w <= 16384, h <= 16384 else { throw ValidationError("--size must be WxH, e.g. 64x64") }
        let range: Range<Int>
        if let n = Int(frames) {
            guard n > 0 else { throw ValidationError("--frames must be a:b with 0 ≤ a < b") }
            log.warning("synth --frames \(n): a count is the old spelling; --frames is a range a:b in every command (here 0:\(n))")
            range = 0..<n
        } else {
            guard let r = FrameSelection.parseRange(frames), r.upperBound != Int.max else { throw ValidationError("--frames must be a:b with 0 ≤ a < b, got '\(frames)'") }
            range = r
        }
        try FormatLimits.requireMemory(Double(range.count) * Double(3 * h * w) * 4, for: "synth --frames \(frames) --size \(size)")
        let v = SyntheticClip.render(frames: range, width: w, height: h, speed: speed)
        try NPY.write(v, to: output, overwrite: overwrite)
    }
}

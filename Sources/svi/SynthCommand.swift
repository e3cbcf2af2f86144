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
        let v = Tensor(shape: [range.count, 3, h, w])
        let discs: [(Double, Double, Double, [Double])] = [   // centre x, y (fractions), radius, colour
            (0.3, 0.35, 0.18, [0.9, 0.3, 0.2]), (0.65, 0.6, 0.22, [0.2, 0.6, 0.9]), (0.45, 0.8, 0.12, [0.95, 0.85, 0.3]),
        ]
        for f in 0..<range.count {
            let shift = Double(range.lowerBound + f) * speed
            for y in 0..<h { for x in 0..<w {
                let fx = Double(x) / Double(w), fy = Double(y) / Double(h)
                var rgb = [0.25 + 0.3 * fy, 0.3 + 0.2 * fx, 0.35 + 0.15 * (1 - fy)]
                for (k, d) in discs.enumerated() {
                    let dir = k % 2 == 0 ? 1.0 : -1.0
                    let cx = d.0 * Double(w) + dir * shift, cy = d.1 * Double(h) + 0.3 * shift
                    let r = d.2 * Double(min(h, w))
                    let dist = ((Double(x) - cx) * (Double(x) - cx) + (Double(y) - cy) * (Double(y) - cy)).squareRoot()
                    let a = 1 / (1 + exp((dist - r) / 1.5))
                    for c in 0..<3 { rgb[c] = rgb[c] * (1 - a) + d.3[c] * a }
                }
                // A vertical bar with fine stripes sweeping right.
                let bx = (Double(x) - shift * 2).truncatingRemainder(dividingBy: Double(w))
                if bx >= 0.1 * Double(w) && bx < 0.2 * Double(w) {
                    let stripe = Int(Double(y) / 3) % 2 == 0 ? 0.85 : 0.15
                    for c in 0..<3 { rgb[c] = 0.3 * rgb[c] + 0.7 * stripe }
                }
                for c in 0..<3 { v[((f * 3 + c) * h + y) * w + x] = Float(min(max(rgb[c], 0), 1)) }
            } }
        }
        try NPY.write(v, to: output, overwrite: overwrite)
    }
}

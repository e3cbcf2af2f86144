import ArgumentParser
import Foundation
import SVICore
import SVIPipeline
import SVIFormats
import SVIMedia
import SVISampler

/// `svi noise IN`: the noise level `svi restore` would assume for a measurement, part by part.
struct NoiseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "noise",
        abstract: "The noise σ svi restore assumes for a measurement: stated, quantisation, codec, estimated from the data.",
        discussion: """
        The effective σ is √(max(stated² + quantisation², estimate²) + codec²): the spec's noise=
        (from --degradation or the sidecar IN.json; 0 when neither says), the rounding of the
        decoded pixel format (8-bit: 1/(255·√12) ≈ 0.0011), the error of H.264's quantiser (from
        the QP the decoder reports), and the median absolute 3-D Haar detail of the first
        \(NoiseEstimator.framesWanted) frames. Float .npy measurements are taken as stated.
        """)

    @Argument(help: "Measurement: a video file or a float32 .npy [T][C][h][w].")
    var input: String

    @Option(name: .long, help: "Degradation spec whose noise= is the stated σ (default: the sidecar IN.json's, else none).")
    var degradation: String?

    @OptionGroup(title: "Part of the input (video files; --frames also .npy)") var selection: SelectionOptions

    @Flag(name: .long, help: "Print JSON (each part, and 'effective').")
    var json = false

    func run() throws {
        let n = try NoiseProbe.measure(input, degradation: degradation, selection: try selection.selection())
        if json {
            struct Out: Encodable { var noise: NoiseLevel; var effective: Double; var source: String }
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(data: try enc.encode(Out(noise: n, effective: n.effective, source: n.source)), encoding: .utf8)!)
        } else {
            print(n.summary)
        }
    }
}

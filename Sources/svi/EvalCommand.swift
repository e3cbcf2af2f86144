import ArgumentParser
import Foundation
import SVICore
import SVIPipeline
import SVIFormats
import SVIEvaluation
import SVIMedia

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "PSNR and SSIM per frame and mean, and the frame-difference error, of a restored video.")

    @Option(name: .long, help: "Reference (ground-truth) video: any file FFmpeg reads, or .npy in [0,1].")
    var reference: String

    @Option(name: .long, help: "Restored video: any file FFmpeg reads, or .npy in [0,1].")
    var restored: String

    /// --frames/--crop/--size select from the reference (a clip cut from a longer file); the
    /// restored video is read whole.
    @OptionGroup(title: "Reference selection (video files)") var selection: SelectionOptions

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        let progress = Progress(quiet: true)
        let sel = try selection.selection()
        let ref = try MediaIO.read(reference, selection: MediaIO.isNPY(reference) ? FrameSelection() : sel, progress: progress).0
        let res = try MediaIO.read(restored, selection: FrameSelection(), progress: progress).0
        guard ref.shape == res.shape else {
            throw SVIError.file(restored, "shape \(res.shape) does not match the reference \(reference) shape \(ref.shape)")
        }
        let s = try Metrics.score(restored: res, reference: ref)
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(data: try enc.encode(s), encoding: .utf8)!)
        } else {
            print("frame   PSNR(dB)   SSIM")
            for i in 0..<s.psnr.count { print(String(format: "%5d   %8.3f   %.4f", i, s.psnr[i], s.ssim[i])) }
            print(String(format: " mean   %8.3f   %.4f   frame-diff error %.5f", s.meanPSNR, s.meanSSIM, s.frameDifferenceError))
        }
    }
}

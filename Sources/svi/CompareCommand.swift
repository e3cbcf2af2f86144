import ArgumentParser
import Foundation
import SVICore
import SVIPipeline
import SVIFormats
import SVIMedia

/// A still for eyes: chosen frames of several videos side by side in one PNG.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Write chosen frames of several videos side by side into one PNG (one row per video).",
        discussion: """
        Rows are the videos in the order given (e.g. measurement, restored, reference); columns
        are the frames of --show. Every row is scaled to the largest frame size by pixel
        replication, so a low-resolution measurement shows its real pixels. --frames selects
        the clip from the --reference video file (the other videos are read whole), as in
        `svi eval`. A 2-pixel white gutter separates the tiles.
        """)

    @Argument(help: "Videos (any file FFmpeg reads, or .npy in [0,1]), one row each.")
    var videos: [String] = []

    @Option(name: .long, help: "A reference video, shown as the last row; --frames/--crop/--size select from it.")
    var reference: String?

    @OptionGroup(title: "Reference selection (video files)") var selection: SelectionOptions

    @Option(name: .long, help: "Frame indices to show, comma-separated (default: 4 evenly spaced).")
    var show: String?

    @Option(name: .long, help: "Row labels, comma-separated, one per row (default: the file names, and 'truth' for --reference).")
    var labels: String?

    @Flag(name: .long, help: "No row labels or frame numbers: the bare grid of frames.")
    var noLabels = false

    @Option(name: .shortAndLong, help: "The PNG to write.")
    var output: String

    @Flag(name: .long, help: "Replace OUT if it exists.")
    var overwrite = false

    func validate() throws {
        if videos.isEmpty && reference == nil { throw ValidationError("give at least one video") }
        if noLabels && labels != nil { throw ValidationError("give --labels or --no-labels, not both") }
        guard output.lowercased().hasSuffix(".png"), !output.contains("%") else { throw ValidationError("--output must be one .png file") }
    }

    func run() throws {
        try OutputGuard.check(outputs: [(output, "-o")], inputs: videos + [reference].compactMap { $0 }, overwrite: overwrite)
        let progress = Progress(quiet: true)
        var rows: [(String, Tensor)] = try videos.map { ($0, try MediaIO.read($0, selection: FrameSelection(), progress: progress).0) }
        if let r = reference {
            let sel = try selection.selection()
            rows.append((r, try MediaIO.read(r, selection: MediaIO.isNPY(r) ? FrameSelection() : sel, progress: progress).0))
        }
        for (path, t) in rows where t.shape.count != 4 || t.shape[1] != 3 {
            throw SVIError.file(path, "expected RGB frames [T][3][H][W], got shape \(t.shape)")
        }
        let frames = rows.map { $0.1.frames }.min()!
        let columns: [Int]
        if let s = show {
            let parsed = s.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !parsed.isEmpty, parsed.allSatisfy({ $0 != nil }) else { throw ValidationError("--show must be comma-separated frame indices, got '\(s)'") }
            columns = parsed.map { $0! }
            if let bad = columns.first(where: { !(0..<frames).contains($0) }) {
                throw ValidationError("--show: frame \(bad) is outside 0..<\(frames) (the shortest video has \(frames) frames)")
            }
        } else {
            let n = min(4, frames)
            columns = (0..<n).map { n == 1 ? 0 : $0 * (frames - 1) / (n - 1) }
        }
        let tileH = rows.map { $0.1.shape[2] }.max()!, tileW = rows.map { $0.1.shape[3] }.max()!
        for (path, t) in rows where tileH % t.shape[2] != 0 || tileW % t.shape[3] != 0 {
            throw SVIError.file(path, "frame size \(t.shape[3])x\(t.shape[2]) does not divide \(tileW)x\(tileH); give videos whose sizes are integer ratios")
        }
        // Row labels on the left, frame numbers above the columns (5×7 font, scaled with the tiles).
        let names: [String]
        if let l = labels {
            names = l.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingCharacters(in: .whitespaces) }
            guard names.count == rows.count else { throw ValidationError("--labels has \(names.count) label(s) for \(rows.count) row(s)") }
        } else {
            names = rows.enumerated().map { i, row in
                reference != nil && i == rows.count - 1 ? "truth" : URL(fileURLWithPath: row.0).deletingPathExtension().lastPathComponent
            }
        }
        let shown = names.map { String($0.prefix(28)) }
        let scale = max(1, min(4, tileH / 48))
        let pad = 3 * scale
        let labelW = noLabels ? 0 : (shown.map { BitmapFont.width($0, scale: scale) }.max() ?? 0) + 2 * pad
        let headerH = noLabels ? 0 : BitmapFont.glyphHeight * scale + 2 * pad
        let gutter = 2
        var width = labelW + columns.count * tileW + (columns.count - 1) * gutter
        var height = headerH + rows.count * tileH + (rows.count - 1) * gutter
        width += width % 2; height += height % 2
        let sheet = Tensor(shape: [1, 3, height, width], zeroed: false)
        sheet.data.initialize(repeating: 1, count: sheet.count)
        for (c, f) in columns.enumerated() where !noLabels {
            let long = "frame \(f)"
            let text = BitmapFont.width(long, scale: scale) <= tileW ? long : "\(f)"
            let x = labelW + c * (tileW + gutter) + (tileW - BitmapFont.width(text, scale: scale)) / 2
            BitmapFont.draw(text, into: sheet.data, channels: 3, height: height, width: width, x: x, y: pad, scale: scale, value: 0)
        }
        for (r, text) in shown.enumerated() where !noLabels {
            let y = headerH + r * (tileH + gutter) + (tileH - BitmapFont.glyphHeight * scale) / 2
            BitmapFont.draw(text, into: sheet.data, channels: 3, height: height, width: width, x: pad, y: y, scale: scale, value: 0)
        }
        for (r, (_, video)) in rows.enumerated() {
            let h = video.shape[2], w = video.shape[3], sy = tileH / h, sx = tileW / w
            for (c, f) in columns.enumerated() {
                let src = video.frame(f)
                let y0 = headerH + r * (tileH + gutter), x0 = labelW + c * (tileW + gutter)
                for ch in 0..<3 {
                    for y in 0..<tileH {
                        let srow = src + ch * h * w + (y / sy) * w
                        let drow = sheet.data + ch * height * width + (y0 + y) * width + x0
                        for x in 0..<tileW { drow[x] = min(max(srow[x / sx], 0), 1) }
                    }
                }
            }
        }
        try AtomicFile.checkWritable(output, overwrite: overwrite)
        let writer = try VideoWriter(path: output, codec: .png, width: width, height: height, fpsNum: 1, fpsDen: 1, overwrite: overwrite, singleImage: true)
        try writer.append(sheet.data)
        try writer.finish()
        print("wrote \(output): \(rows.count) rows (\(rows.map { URL(fileURLWithPath: $0.0).lastPathComponent }.joined(separator: ", "))) × frames \(columns.map(String.init).joined(separator: ","))")
    }
}

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
            columns = ContactSheet.defaultColumns(frames: frames)
        }
        let names: [String]
        if let l = labels {
            names = l.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingCharacters(in: .whitespaces) }
            guard names.count == rows.count else { throw ValidationError("--labels has \(names.count) label(s) for \(rows.count) row(s)") }
        } else {
            names = rows.enumerated().map { i, row in
                reference != nil && i == rows.count - 1 ? "truth" : URL(fileURLWithPath: row.0).deletingPathExtension().lastPathComponent
            }
        }
        let sheet = try ContactSheet.render(zip(rows, names).map { ContactSheet.Row(path: $0.0.0, label: $0.1, video: $0.0.1) },
                                            columns: columns, labels: !noLabels)
        let height = sheet.shape[2], width = sheet.shape[3]
        try AtomicFile.checkWritable(output, overwrite: overwrite)
        let writer = try VideoWriter(path: output, codec: .png, width: width, height: height, fpsNum: 1, fpsDen: 1, overwrite: overwrite, singleImage: true)
        try writer.append(sheet.data)
        try writer.finish()
        print("wrote \(output): \(rows.count) rows (\(rows.map { URL(fileURLWithPath: $0.0).lastPathComponent }.joined(separator: ", "))) × frames \(columns.map(String.init).joined(separator: ","))")
    }
}

import Foundation
import SVICore

/// A PNG sequence's name pattern, `out/frame-%05d.png`: exactly one `%d` or `%0Nd` (N ≤ 9) in
/// the file name and no other `%`. Names are built here, never by `String(format:)`, so a
/// pattern from the command line cannot read arguments that are not there.
public struct PNGPattern: Sendable {
    public let folder: String
    let prefix: String, suffix: String, width: Int

    /// Whether `path` names a PNG sequence (a `%` in a `.png` name) rather than one file.
    public static func isSequence(_ path: String) -> Bool { path.contains("%") && path.lowercased().hasSuffix(".png") }

    /// `single`: a plain `name.png` (no `%`) is accepted too, for a writer of one image.
    public init(_ path: String, single: Bool = false) throws {
        let url = URL(fileURLWithPath: path)
        folder = url.deletingLastPathComponent().path
        let name = url.lastPathComponent
        if single && !path.contains("%") && name.lowercased().hasSuffix(".png") {
            prefix = name; suffix = ""; width = -1
            return
        }
        let bad = SVIError.file(path, "a PNG sequence needs one frame-number field %d or %0Nd (N ≤ 9) in the file name and no other %, e.g. out/%05d.png")
        guard name.lowercased().hasSuffix(".png"), !url.deletingLastPathComponent().path.contains("%"),
              let percent = name.firstIndex(of: "%") else { throw bad }
        var rest = name[name.index(after: percent)...]
        var w = 0
        if rest.first == "0" {
            rest = rest.dropFirst()
            guard let digit = rest.first, let v = digit.wholeNumberValue, (1...9).contains(v) else { throw bad }
            w = v
            rest = rest.dropFirst()
        }
        guard rest.first == "d" else { throw bad }
        rest = rest.dropFirst()
        guard !rest.contains("%") else { throw bad }
        prefix = String(name[..<percent]); suffix = String(rest); width = w
    }

    /// The file name (no folder) of frame `index`.
    public func name(_ index: Int) -> String {
        if width < 0 { return prefix }   // a single image
        let digits = String(index)
        return prefix + String(repeating: "0", count: max(0, width - digits.count)) + digits + suffix
    }

    public func path(_ index: Int) -> String { folder + "/" + name(index) }

    /// Whether a file name in `folder` is one of this sequence's frames.
    public func matches(_ file: String) -> Bool {
        if width < 0 { return file == prefix }
        guard file.hasPrefix(prefix), file.hasSuffix(suffix), file.count > prefix.count + suffix.count else { return false }
        let middle = file.dropFirst(prefix.count).dropLast(suffix.count)
        return middle.allSatisfy { $0.isASCII && $0.isNumber } && (width == 0 || middle.count >= width)
    }

    /// The first existing frame of this sequence in its folder, if any.
    public func existingFrame() -> String? {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted().first(where: matches).map { folder + "/" + $0 }
    }
}

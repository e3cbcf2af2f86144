import Testing
import Foundation
import SVICore
import SVIFormats

/// What the documents promise a user, checked: figures say what their rows are, and an
/// installed svi keeps its embedded prior.
@Suite struct DocsMatchTests {
    /// `svi compare` labels its rows (file names, 'truth', or --labels) and its columns (frame
    /// numbers): the PNG gains a label column on the left with dark text in every row.
    @Test func compareLabelsRowsAndColumns() throws {
        let d = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        try NPY.write(CLI.clip(frames: 4, height: 64, width: 64), to: d + "/a.npy")
        let r = try CLI.run(["compare", d + "/a.npy", "--reference", d + "/a.npy", "--show", "0,3", "--labels", "restored,truth", "-o", d + "/c.png"])
        #expect(r.status == 0, "\(r.stderr)")
        // Decode to grey pixels with ffmpeg (installed by Scripts/setup for the tests).
        let probe = try Shell.run("/usr/bin/ffprobe", ["-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0", d + "/c.png"])
        let wh = probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").compactMap { Int($0) }
        try #require(wh.count == 2)
        let (w, h) = (wh[0], wh[1])
        #expect(w > 2 * 64 + 2 && h > 2 * 64 + 2, "no room for labels: \(w)x\(h)")
        #expect(try Shell.run("/usr/bin/ffmpeg", ["-v", "error", "-i", d + "/c.png", "-f", "rawvideo", "-pix_fmt", "gray", d + "/c.gray"]).status == 0)
        let grey = [UInt8](try Data(contentsOf: URL(fileURLWithPath: d + "/c.gray")))
        try #require(grey.count == w * h)
        let labelWidth = w - (2 * 64 + 2)
        let header = h - (2 * 64 + 2)
        for row in 0..<2 {
            let y0 = header + row * 66
            let dark = (y0..<(y0 + 64)).reduce(0) { n, y in n + (0..<labelWidth).filter { grey[y * w + $0] < 64 }.count }
            #expect(dark > 20, "row \(row) has no label text")
        }
        let bad = try CLI.run(["compare", d + "/a.npy", "--labels", "one,two", "-o", d + "/e.png"])
        #expect(bad.status != 0 && bad.stderr.contains("--labels has 2 label(s) for 1 row(s)"), "\(bad.stderr)")
    }

    /// `Scripts/install --prefix P` puts svi in P/bin and the embedded prior in P/share/svi,
    /// where the installed binary finds it (not through the checkout).
    @Test func installedBinaryFindsItsPrior() throws {
        let p = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: p) }
        let r = try Shell.run(SlurmCluster.repo + "/Scripts/install", ["--prefix", p])
        #expect(r.status == 0, "\(r.stderr)")
        let info = try Shell.run(p + "/bin/svi", ["model", "info"])
        #expect(info.status == 0, "\(info.stderr)")
        #expect(info.stdout.contains("file:          \(p)/share/svi/prior.safetensors"), "\(info.stdout)")
        #expect(info.stdout.contains("architecture from \(p)/share/svi/prior.safetensors.json"), "\(info.stdout)")
    }
}

import Testing
import Foundation
import SVICore
import SVIFormats
import SVITestSupport

/// `svi restore` without --model runs the prior shipped in Models/, and `svi compare` draws
/// the side-by-side still the demo shows.
@Suite struct DefaultPriorTests {
    @Test func restoreWithoutAModelUsesTheEmbeddedPriorAndFitsTheData() throws {
        let d = CLI.tempDir()
        try NPY.write(CLI.clip(frames: 8, height: 32, width: 32), to: d + "/x.npy")
        var r = try CLI.run(["degrade", d + "/x.npy", "-o", d + "/y.npy", "--degradation", "temporal=uniform:3", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try CLI.run(["restore", d + "/y.npy", "-o", d + "/r.npy", "--nfe", "3", "--seed", "1", "--quiet",
                         "--reference", d + "/x.npy", "--report", d + "/r.json"])
        #expect(r.status == 0, "\(r.stderr)")
        let rep = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: d + "/r.json"))) as! [String: Any]
        #expect((rep["model"] as? String ?? "").contains("embedded prior"), "\(rep["model"] ?? "none")")
        let residual = rep["residual"] as? Double ?? 1
        #expect(residual < 1e-2)
    }

    @Test func compareTilesFramesOfDifferentSizesIntoOnePNG() throws {
        let d = CLI.tempDir()
        let big = CLI.clip(frames: 6, height: 16, width: 24), small = CLI.clip(frames: 6, height: 8, width: 12)
        try NPY.write(big, to: d + "/big.npy"); try NPY.write(small, to: d + "/small.npy")
        let out = d + "/side.png"
        let r = try CLI.run(["compare", d + "/small.npy", d + "/big.npy", "--show", "0,5", "--no-labels", "-o", out])
        #expect(r.status == 0, "\(r.stderr)")
        let png = try Data(contentsOf: URL(fileURLWithPath: out))
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        let width = png[16..<20].reduce(0) { $0 << 8 | Int($1) }, height = png[20..<24].reduce(0) { $0 << 8 | Int($1) }
        #expect(width == 2 * 24 + 2 && height == 2 * 16 + 2)   // 2 rows × 2 frames of 24×16, 2-pixel gutter
        // Decoded back (identity "degradation"): the top-left tile is the small clip's frame 0
        // with every pixel replicated 2×2; the bottom-right is the big clip's frame 5.
        let dec = try CLI.run(["degrade", out, "-o", d + "/px.npy", "--degradation", "temporal=uniform:1", "--quiet"])
        #expect(dec.status == 0, "\(dec.stderr)")
        let px = try NPY.readFloat32(d + "/px.npy")
        func sheet(_ c: Int, _ y: Int, _ x: Int) -> Float { px[(c * height + y) * width + x] }
        var worst: Float = 0
        for c in 0..<3 { for y in 0..<16 { for x in 0..<24 {
            worst = max(worst, abs(sheet(c, y, x) - small[(c * 8 + y / 2) * 12 + x / 2]))
            worst = max(worst, abs(sheet(c, 18 + y, 26 + x) - big[((5 * 3 + c) * 16 + y) * 24 + x]))
        } } }
        #expect(worst <= 1.0 / 255 + 1e-6)
        let again = try CLI.run(["compare", d + "/small.npy", "-o", out])
        #expect(again.status != 0 && again.stderr.contains("exists"), "\(again.stderr)")
        let bad = try CLI.run(["compare", d + "/small.npy", d + "/big.npy", d + "/x.npy", "-o", d + "/b.png"])
        #expect(bad.status != 0 && !FileManager.default.fileExists(atPath: d + "/b.png"))
    }
}

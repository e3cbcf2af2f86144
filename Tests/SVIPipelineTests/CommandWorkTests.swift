import Testing
import Foundation
import SVICore
import SVIFormats
import SVIPipeline

/// Issue 29: the other commands' work lives in the library too (`svi` only parses and prints),
/// so it is tested here in-process.
@Suite struct CommandWorkTests {
    /// `bench unet`'s passes: as many timed as asked, FLOPs counted, ε of the input's shape —
    /// and through the tiled denoiser, the grid a restore would use.
    @Test func unetBenchmarkTimesTheAskedPassesWholeAndTiled() throws {
        let (net, label) = try UNetBenchmark.network(model: try EmbeddedPrior.locate(), preset: nil, config: nil)
        var s = UNetBenchmark.Settings()
        (s.width, s.height, s.batch, s.repeats, s.warmup) = (32, 16, 2, 3, 0)
        let whole = try UNetBenchmark.run(net, label: label, input: nil, settings: s)
        #expect(whole.times.count == 3 && whole.frames == 2 && whole.inputShape == [2, 3, 16, 32])
        #expect(whole.output.shape == [2, 3, 16, 32] && whole.flopsPerPass > 0 && whole.grid == nil && whole.profile == nil)
        (s.tile, s.tileOverlap, s.profile) = (16, 4, true)
        let tiled = try UNetBenchmark.run(net, label: label, input: nil, settings: s)
        let g = try #require(tiled.grid)
        #expect(g.width == 16 && g.height == 16 && g.across == 3 && g.down == 1, "\(g)")
        #expect(tiled.flopsPerPass > whole.flopsPerPass, "overlapping tiles cost more than the whole frame")
        #expect(tiled.profile?.isEmpty == false)
        #expect(throws: SVIError.self) { try UNetBenchmark.network(model: nil, preset: "no-such-preset", config: nil) }
    }

    /// `compare`'s sheet: a half-size row is replicated ×2 into its tiles, white gutters
    /// between tiles, and a size that does not divide the largest is refused naming the file.
    @Test func contactSheetReplicatesSmallRowsAndRefusesSizesThatDoNotDivide() throws {
        let big = Tensor(shape: [2, 3, 8, 8]), small = Tensor(shape: [2, 3, 4, 4])
        for i in 0..<big.count { big[i] = 0.25 }
        for i in 0..<small.count { small[i] = Float(i % 16) / 16 }
        let rows = [ContactSheet.Row(path: "big.npy", label: "big", video: big), ContactSheet.Row(path: "small.npy", label: "small", video: small)]
        let sheet = try ContactSheet.render(rows, columns: [0, 1], labels: false)
        #expect(sheet.shape == [1, 3, 18, 18])                     // 2 rows and columns of 8 + a 2-pixel gutter
        let W = 18
        #expect(sheet[0] == 0.25 && sheet[8] == 1 && sheet[8 * W] == 1)   // big tile, gutter column, gutter row
        // Row 1, column 0, pixel (y 3, x 5) shows small frame 0 at (1, 2), channel 0.
        #expect(sheet[(10 + 3) * W + 5] == small[1 * 4 + 2])
        let odd = ContactSheet.Row(path: "odd.npy", label: "odd", video: Tensor(shape: [2, 3, 3, 3]))
        #expect(throws: SVIError.file("odd.npy", "frame size 3x3 does not divide 8x8; give videos whose sizes are integer ratios")) {
            try ContactSheet.render([rows[0], odd], columns: [0], labels: true)
        }
        #expect(ContactSheet.defaultColumns(frames: 10) == [0, 3, 6, 9] && ContactSheet.defaultColumns(frames: 1) == [0])
    }

    /// `synth`'s frame f is the same picture whatever range it is rendered in, values in [0,1].
    @Test func syntheticClipFramesDependOnlyOnTheirIndex() {
        let a = SyntheticClip.render(frames: 0..<4, width: 24, height: 16, speed: 1.5)
        let b = SyntheticClip.render(frames: 2..<3, width: 24, height: 16, speed: 1.5)
        #expect(Array(UnsafeBufferPointer(start: a.frame(2), count: a.frameSize)) == b.array)
        #expect(a.array.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(a.array[0..<a.frameSize] != a.array[a.frameSize..<(2 * a.frameSize)], "the content moves")
    }
}

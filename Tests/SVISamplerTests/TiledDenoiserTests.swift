import Testing
import Foundation
import SVICore
import SVISampler

/// Issue 16: tiles cover every pixel, their blending weights sum to one (frame edges,
/// frames smaller than a tile, odd sizes), a frame that is one tile is exactly the inner
/// denoiser, and batching tiles differently changes no bit.
@Suite struct TiledDenoiserTests {
    /// (height, width, tile, overlap): square and odd frames, frames smaller than a tile in one
    /// or both axes, overlap 0, and a last tile that overlaps more than asked.
    static let cases: [(Int, Int, Int, Int)] = [(64, 64, 32, 8), (37, 53, 16, 5), (10, 100, 32, 8), (7, 9, 32, 8),
                                               (50, 50, 16, 0), (33, 33, 32, 16), (1, 1, 8, 2), (300, 17, 64, 16)]

    @Test(arguments: cases)
    func tilesCoverTheFrameAndTheirWeightsSumToOne(_ c: (Int, Int, Int, Int)) {
        let (h, w, t, o) = c
        let g = TileGrid(height: h, width: w, tile: t, overlap: o)
        var sum = [Double](repeating: 0, count: h * w)
        for (iy, y0) in g.ys.enumerated() { for (ix, x0) in g.xs.enumerated() {
            #expect(y0 >= 0 && y0 + g.tileHeight <= h && x0 >= 0 && x0 + g.tileWidth <= w)
            for y in 0..<g.tileHeight { for x in 0..<g.tileWidth {
                let v = g.weight(tile: iy, ix, y: y, x: x)
                #expect(v > 0)
                sum[(y0 + y) * w + x0 + x] += Double(v)
            } }
        } }
        #expect(sum.allSatisfy { abs($0 - 1) < 1e-6 }, "weights do not sum to one for \(c)")
        #expect(g.tileHeight == min(t, h) && g.tileWidth == min(t, w))
        // Consecutive tiles overlap by at least the asked overlap (more for the last one).
        for s in [g.ys, g.xs] where s.count > 1 { for i in 1..<s.count { #expect(s[i] > s[i - 1]) } }
    }

    @Test func startsAreWhereTheTypeSays() {
        #expect(TileGrid.starts(length: 100, tile: 32, overlap: 8) == [0, 24, 48, 68])
        #expect(TileGrid.starts(length: 32, tile: 32, overlap: 8) == [0])
        #expect(TileGrid.starts(length: 20, tile: 32, overlap: 8) == [0])
        #expect(TileGrid.starts(length: 64, tile: 32, overlap: 0) == [0, 32])
    }

    /// A stand-in network whose output at a pixel depends on its whole tile (so tile
    /// boundaries matter) and on nothing outside it, batch-independent by construction.
    final class TileMeanDenoiser: Denoiser {
        var calls: [Int] = []
        var name: String { "tile-mean" }
        var preferredBatch: Int { 4 }
        func predictNoise(_ x: UnsafePointer<Float>, count: Int, channels: Int, height: Int, width: Int,
                          timestep: Int, into eps: UnsafeMutablePointer<Float>) throws {
            calls.append(count)
            let plane = height * width
            for p in 0..<(count * channels) {
                var m: Float = 0
                for i in 0..<plane { m += x[p * plane + i] }
                m /= Float(plane)
                for i in 0..<plane { eps[p * plane + i] = 0.5 * x[p * plane + i] + m + Float(timestep) * 1e-3 }
            }
        }
    }

    @Test func aFrameThatIsOneTileIsExactlyTheInnerDenoiser() throws {
        let x = randomTensor([3, 3, 20, 24], seed: 4)
        let plain = Tensor(shape: x.shape), tiled = Tensor(shape: x.shape)
        try TileMeanDenoiser().predictNoise(x.data, count: 3, channels: 3, height: 20, width: 24, timestep: 7, into: plain.data)
        try TiledDenoiser(inner: TileMeanDenoiser(), tile: 32, overlap: 8, tileBatch: 2)
            .predictNoise(x.data, count: 3, channels: 3, height: 20, width: 24, timestep: 7, into: tiled.data)
        #expect(plain.array == tiled.array)
    }

    /// The same frames through tile batches of 1, 2, 3, 5 and 64: bit-identical.
    @Test func tileBatchesChangeNoBit() throws {
        let x = randomTensor([3, 3, 45, 61], seed: 9)
        var reference: [Float]?
        for batch in [1, 2, 3, 5, 64] {
            let inner = TileMeanDenoiser()
            let eps = Tensor(shape: x.shape)
            try TiledDenoiser(inner: inner, tile: 24, overlap: 6, tileBatch: batch)
                .predictNoise(x.data, count: 3, channels: 3, height: 45, width: 61, timestep: 500, into: eps.data)
            #expect(inner.calls.allSatisfy { $0 <= batch })
            if let r = reference { #expect(eps.array == r, "tile batch \(batch)") } else { reference = eps.array }
        }
        // And frame by frame (what a different rank split or --batch does) equals all at once.
        let one = Tensor(shape: [1, 3, 45, 61])
        let den = TiledDenoiser(inner: TileMeanDenoiser(), tile: 24, overlap: 6, tileBatch: 4)
        for f in 0..<3 {
            try den.predictNoise(x.frame(f), count: 1, channels: 3, height: 45, width: 61, timestep: 500, into: one.data)
            #expect(one.array == Array(reference![(f * one.count)..<((f + 1) * one.count)]))
        }
    }

    /// A constant prediction stays that constant through blending (weights sum to one).
    @Test func aConstantPredictionIsBlendedToTheSameConstant() throws {
        final class Constant: Denoiser {
            var name: String { "constant" }
            var preferredBatch: Int { 1 }
            func predictNoise(_ x: UnsafePointer<Float>, count: Int, channels: Int, height: Int, width: Int, timestep: Int, into eps: UnsafeMutablePointer<Float>) throws {
                eps.update(repeating: 0.375, count: count * channels * height * width)
            }
        }
        let x = randomTensor([2, 3, 70, 33], seed: 1)
        let eps = Tensor(shape: x.shape)
        try TiledDenoiser(inner: Constant(), tile: 16, overlap: 5, tileBatch: 7).predictNoise(x.data, count: 2, channels: 3, height: 70, width: 33, timestep: 1, into: eps.data)
        #expect(eps.array.allSatisfy { abs($0 - 0.375) < 1e-6 })
    }
}

import SVICore

/// Where overlapping tiles of one frame lie, and how their predictions are blended.
///
/// Along each axis of length n, tiles of length L = min(tile, n) start at 0, step, 2·step, …
/// (step = tile − overlap) and the last one ends exactly at n, so every pixel is covered and
/// no tile leaves the frame. A tile's weight along an axis ramps linearly, (i + ½)/v, across
/// the v pixels it shares with the previous tile and down across those it shares with the
/// next, and is 1 elsewhere (also at the frame's own edges). The 2-D weight is the product
/// of the two axes'; blending divides by the sum of the weights of every tile covering a
/// pixel, so the weights of a pixel sum to one — MultiDiffusion's average of overlapping
/// predictions (Bar-Tal et al. 2023), with ramps instead of a flat average so that no tile
/// edge shows.
public struct TileGrid: Equatable, Sendable {
    public let height: Int, width: Int
    public let tileHeight: Int, tileWidth: Int
    public let ys: [Int], xs: [Int]
    /// 1-D weights per tile start, along y and x.
    let wy: [[Float]], wx: [[Float]]
    /// 1 / Σ weights at every pixel of the frame ([H][W]).
    let inverseSum: [Float]

    public var count: Int { ys.count * xs.count }

    public init(height: Int, width: Int, tile: Int, overlap: Int) {
        precondition(height >= 1 && width >= 1 && tile >= 1 && overlap >= 0 && overlap < tile)
        self.height = height; self.width = width
        tileHeight = min(tile, height); tileWidth = min(tile, width)
        ys = TileGrid.starts(length: height, tile: tile, overlap: overlap)
        xs = TileGrid.starts(length: width, tile: tile, overlap: overlap)
        wy = TileGrid.weights(starts: ys, length: tileHeight)
        wx = TileGrid.weights(starts: xs, length: tileWidth)
        var sum = [Double](repeating: 0, count: height * width)
        for (iy, y0) in ys.enumerated() { for (ix, x0) in xs.enumerated() {
            for y in 0..<tileHeight { for x in 0..<tileWidth {
                sum[(y0 + y) * width + x0 + x] += Double(wy[iy][y]) * Double(wx[ix][x])
            } }
        } }
        inverseSum = sum.map { Float(1 / $0) }
    }

    /// Tile starts along an axis of `length` (see the type's comment).
    public static func starts(length n: Int, tile: Int, overlap: Int) -> [Int] {
        let l = min(tile, n)
        if l == n { return [0] }
        let step = tile - overlap
        var s: [Int] = []
        var p = 0
        while p + l < n { s.append(p); p += step }
        s.append(n - l)
        return s
    }

    static func weights(starts: [Int], length l: Int) -> [[Float]] {
        starts.indices.map { i in
            let before = i > 0 ? starts[i - 1] + l - starts[i] : 0                 // pixels shared with the previous tile
            let after = i + 1 < starts.count ? starts[i] + l - starts[i + 1] : 0  // … and with the next
            return (0..<l).map { p in
                var w = 1.0
                if before > 0 && p < before { w = min(w, (Double(p) + 0.5) / Double(before)) }
                if after > 0 && p >= l - after { w = min(w, (Double(l - 1 - p) + 0.5) / Double(after)) }
                return Float(w)
            }
        }
    }

    /// The normalised weight of tile (iy, ix) at tile pixel (y, x): these sum to one over the
    /// tiles covering any frame pixel.
    public func weight(tile iy: Int, _ ix: Int, y: Int, x: Int) -> Float {
        wy[iy][y] * wx[ix][x] * inverseSum[(ys[iy] + y) * width + xs[ix] + x]
    }
}

/// A denoiser that runs another on overlapping spatial tiles (issue 16): each frame is cut
/// into the tiles of a `TileGrid`, the tiles of all frames of a call go to the inner
/// denoiser `tileBatch` at a time, and the predictions are blended back with weights that sum
/// to one. The network's memory is then that of one tile batch, whatever the frame size.
/// The noise of the sampler and data consistency stay on whole frames: only ε is tiled.
///
/// Results do not depend on how tiles are grouped into batches (the inner denoiser's outputs
/// are per-tile and batch-independent, and each frame accumulates its tiles in a fixed
/// order), so they stay bit-identical across `--batch` and rank counts.
public final class TiledDenoiser: Denoiser {
    public let inner: Denoiser
    public let tile: Int, overlap: Int
    public let tileBatch: Int
    private var grid: TileGrid?
    private var input: [Float] = [], output: [Float] = []

    public init(inner: Denoiser, tile: Int, overlap: Int, tileBatch: Int) {
        precondition(tile >= 1 && overlap >= 0 && overlap < tile && tileBatch >= 1)
        self.inner = inner; self.tile = tile; self.overlap = overlap; self.tileBatch = tileBatch
    }

    public var name: String { inner.name }
    public var preferredBatch: Int { inner.preferredBatch }

    /// The tiles of one frame of this size (for plans and reports).
    public func grid(height: Int, width: Int) -> TileGrid {
        if let g = grid, g.height == height, g.width == width { return g }
        let g = TileGrid(height: height, width: width, tile: tile, overlap: overlap)
        grid = g
        return g
    }

    public func predictNoise(_ x: UnsafePointer<Float>, count: Int, channels: Int, height: Int, width: Int,
                             timestep: Int, into eps: UnsafeMutablePointer<Float>) throws {
        let g = grid(height: height, width: width)
        if g.count == 1 {   // the frame is one tile: exactly the inner denoiser
            try inner.predictNoise(x, count: count, channels: channels, height: height, width: width, timestep: timestep, into: eps)
            return
        }
        let th = g.tileHeight, tw = g.tileWidth, tileSize = channels * th * tw, frameSize = channels * height * width
        let perFrame = g.count, total = count * perFrame
        let batch = min(tileBatch, total)
        if input.count < batch * tileSize { input = [Float](repeating: 0, count: batch * tileSize); output = input }
        eps.update(repeating: 0, count: count * frameSize)
        var first = 0
        while first < total {
            let k = min(batch, total - first)
            // Gather: tile j of the chunk is tile (first + j) % perFrame of frame (first + j) / perFrame.
            input.withUnsafeMutableBufferPointer { buf in
                let dst = buf.baseAddress!
                Parallel.forEach(k * channels) { job in
                    let j = job / channels, c = job % channels
                    let t = first + j, f = t / perFrame, iy = (t % perFrame) / g.xs.count, ix = (t % perFrame) % g.xs.count
                    let src = x + f * frameSize + c * height * width + g.ys[iy] * width + g.xs[ix]
                    let out = dst + j * tileSize + c * th * tw
                    for y in 0..<th { (out + y * tw).update(from: src + y * width, count: tw) }
                }
            }
            try input.withUnsafeBufferPointer { i in
                try output.withUnsafeMutableBufferPointer { o in
                    try inner.predictNoise(i.baseAddress!, count: k, channels: channels, height: th, width: tw, timestep: timestep, into: o.baseAddress!)
                }
            }
            // Scatter-add, frame by frame and channel by channel in parallel; within a frame the
            // tiles are added in their fixed order, whatever the chunking.
            output.withUnsafeBufferPointer { buf in
                g.inverseSum.withUnsafeBufferPointer { inv in
                    let src = buf.baseAddress!, inverse = inv.baseAddress!
                    let f0 = first / perFrame, f1 = (first + k - 1) / perFrame
                    Parallel.forEach((f1 - f0 + 1) * channels) { job in
                        let f = f0 + job / channels, c = job % channels
                        let frame = eps + f * frameSize + c * height * width
                        for t in max(first, f * perFrame)..<min(first + k, (f + 1) * perFrame) {
                            let iy = (t % perFrame) / g.xs.count, ix = (t % perFrame) % g.xs.count
                            let tilePlane = src + (t - first) * tileSize + c * th * tw
                            let wx = g.wx[ix]
                            for y in 0..<th {
                                let offset = (g.ys[iy] + y) * width + g.xs[ix]
                                let row = frame + offset, irow = inverse + offset, prow = tilePlane + y * tw, wyv = g.wy[iy][y]
                                for xx in 0..<tw { row[xx] += wyv * wx[xx] * irow[xx] * prow[xx] }
                            }
                        }
                    }
                }
            }
            first += k
        }
    }
}

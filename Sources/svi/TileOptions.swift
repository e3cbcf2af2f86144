import ArgumentParser
import SVIPipeline

/// `--tile` / `--tile-overlap`, for restore (and its dry-run) and bench.
struct TileOptions: ParsableArguments {
    @Option(name: .long, help: "Run the network on overlapping N×N tiles of each frame, blended back with weights that sum to one (0: whole frames). restore's default: tiles of 256 when frames are larger than 256 and the model has attention, or when whole frames would take more than 2 GB of activations per call; bench's: whole frames.")
    var tile: Int?

    @Option(name: .long, help: "Pixels shared by neighbouring tiles (default: a quarter of the tile).")
    var tileOverlap: Int?

    func validate() throws {
        if let o = tileOverlap, o > (tile ?? TilePolicy.nativeSize) / 2 { throw ValidationError("--tile-overlap must be between 0 and half the tile") }
    }
}


import ArgumentParser
import SVICore
import SVIMedia
import SVIPipeline

/// Options that select frames from a video file.
struct SelectionOptions: ParsableArguments {
    @Option(name: .long, help: "Frames a:b of a video file (half-open, by decoded index; either side may be empty).")
    var frames: String?

    @Option(name: .long, help: "Crop WxH+X+Y (source pixels) before scaling.")
    var crop: String?

    @Option(name: .long, help: "Scale frames to WxH (default: native size).")
    var size: String?

    /// The selection, checked (`FrameSelection.parse`); a bad value is a usage error.
    func selection() throws -> FrameSelection {
        do { return try FrameSelection.parse(frames: frames, crop: crop, size: size) }
        catch let e as SVIError { throw ValidationError(e.message) }
    }
}

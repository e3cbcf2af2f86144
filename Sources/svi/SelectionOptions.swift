import ArgumentParser
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

    func selection() throws -> FrameSelection {
        var s = FrameSelection()
        if let f = frames {
            guard let r = FrameSelection.parseRange(f) else { throw ValidationError("--frames must be a:b with 0 ≤ a < b, got '\(f)'") }
            s.range = r
        }
        if let c = crop {
            guard let v = FrameSelection.parseCrop(c) else { throw ValidationError("--crop must be WxH+X+Y, got '\(c)'") }
            s.crop = v
        }
        if let z = size {
            guard let v = FrameSelection.parseSize(z) else { throw ValidationError("--size must be WxH, got '\(z)'") }
            s.size = v
        }
        return s
    }
}


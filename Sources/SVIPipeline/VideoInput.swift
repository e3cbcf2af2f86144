import SVICore
import SVIFormats

/// Reads a video tensor and checks it is `[T][C][H][W]` with at least one frame.
package func readVideo(_ path: String) throws -> Tensor {
    let t = try NPY.readFloat32(path)
    guard t.shape.count == 4 else {
        throw SVIError.file(path, "expected a video shaped [T][C][H][W], got shape \(t.shape)")
    }
    guard t.frames > 0, t.frameSize > 0 else { throw SVIError.file(path, "video has no frames or empty frames (shape \(t.shape))") }
    return t
}

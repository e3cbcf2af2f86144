@_exported import SVITestSupport
import SVICore
import Foundation

/// A smooth moving pattern, [frames, 3, h, w] in [0.2, 0.8]: what the sampler tests restore.
func smoothVideo(frames: Int, h: Int = 8, w: Int = 8) -> Tensor {
    let v = Tensor(shape: [frames, 3, h, w])
    for f in 0..<frames { for c in 0..<3 { for y in 0..<h { for x in 0..<w {
        v[((f * 3 + c) * h + y) * w + x] = 0.5 + 0.3 * Float(sin(Double(x + 2 * y + c) * 0.4 + Double(f) * 0.3))
    } } } }
    return v
}

import Foundation
import SVICore

/// A synthetic clip with known content (`svi synth`), for demos and quick checks without
/// footage: three soft coloured discs drifting over a gradient and a finely striped bar
/// sweeping right, `speed` pixels per frame. Frame f of any range is the same picture.
package enum SyntheticClip {
    package static func render(frames range: Range<Int>, width w: Int, height h: Int, speed: Double) -> Tensor {
        let v = Tensor(shape: [range.count, 3, h, w])
        let discs: [(Double, Double, Double, [Double])] = [   // centre x, y (fractions), radius, colour
            (0.3, 0.35, 0.18, [0.9, 0.3, 0.2]), (0.65, 0.6, 0.22, [0.2, 0.6, 0.9]), (0.45, 0.8, 0.12, [0.95, 0.85, 0.3]),
        ]
        for f in 0..<range.count {
            let shift = Double(range.lowerBound + f) * speed
            for y in 0..<h { for x in 0..<w {
                let fx = Double(x) / Double(w), fy = Double(y) / Double(h)
                var rgb = [0.25 + 0.3 * fy, 0.3 + 0.2 * fx, 0.35 + 0.15 * (1 - fy)]
                for (k, d) in discs.enumerated() {
                    let dir = k % 2 == 0 ? 1.0 : -1.0
                    let cx = d.0 * Double(w) + dir * shift, cy = d.1 * Double(h) + 0.3 * shift
                    let r = d.2 * Double(min(h, w))
                    let dist = ((Double(x) - cx) * (Double(x) - cx) + (Double(y) - cy) * (Double(y) - cy)).squareRoot()
                    let a = 1 / (1 + exp((dist - r) / 1.5))
                    for c in 0..<3 { rgb[c] = rgb[c] * (1 - a) + d.3[c] * a }
                }
                // A vertical bar with fine stripes sweeping right.
                let bx = (Double(x) - shift * 2).truncatingRemainder(dividingBy: Double(w))
                if bx >= 0.1 * Double(w) && bx < 0.2 * Double(w) {
                    let stripe = Int(Double(y) / 3) % 2 == 0 ? 0.85 : 0.15
                    for c in 0..<3 { rgb[c] = 0.3 * rgb[c] + 0.7 * stripe }
                }
                for c in 0..<3 { v[((f * 3 + c) * h + y) * w + x] = Float(min(max(rgb[c], 0), 1)) }
            } }
        }
        return v
    }
}

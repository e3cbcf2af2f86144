import SVICore
import SVIFormats

/// Hands checkpoint tensors to layers by name and shape, and reports every missing,
/// unexpected and mis-shaped tensor by name once the whole model has asked.
final class ParameterSource {
    let tensors: [String: Tensor]
    let source: String
    private(set) var declared: [String: [Int]] = [:]
    private var missing: [String] = []
    private var misshaped: [String] = []

    /// When set, every parameter is drawn at random instead (benchmarks without a checkpoint).
    private let randomSeed: UInt64?

    init(_ tensors: [String: Tensor], source: String) { self.tensors = tensors; self.source = source; randomSeed = nil; shapesOnly = false }

    init(randomSeed: UInt64) { tensors = [:]; source = "random weights"; self.randomSeed = randomSeed; shapesOnly = false }

    /// Declares shapes only, allocating nothing (a network that can be measured, not run).
    private let shapesOnly: Bool
    init(shapesOnly: Bool) { tensors = [:]; source = "shapes only"; randomSeed = nil; self.shapesOnly = shapesOnly }

    /// The tensor `name` with `shape` (or zeros, recorded as a problem, when absent or mis-shaped).
    func take(_ name: String, _ shape: [Int]) -> Tensor {
        if let seed = randomSeed { declared[name] = shape; return random(name, shape, seed) }
        if shapesOnly { declared[name] = shape; return Tensor(shape: [0]) }
        declared[name] = shape
        guard let t = tensors[name] else { missing.append(name); return Tensor(shape: shape) }
        guard t.shape == shape else {
            misshaped.append("\(name) is \(t.shape), expected \(shape)")
            return Tensor(shape: shape)
        }
        return t
    }

    /// N(0, 1/fan_in) for weights, N(1, 0.1²) for norm scales, N(0, 0.01²) for biases: keeps
    /// activations of order one through any depth, like a trained network's.
    private func random(_ name: String, _ shape: [Int], _ seed: UInt64) -> Tensor {
        let t = Tensor(shape: shape, zeroed: false)
        var h: UInt32 = 2166136261
        for b in name.utf8 { h = (h ^ UInt32(b)) &* 16777619 }
        RandomStream(seed: seed, purpose: .initial, step: h).normals(offset: 0, count: t.count, into: t.data)
        let isNorm = name.contains("norm") || name.contains("in_layers.0") || name.contains("out_layers.0") || name.hasPrefix("out.0")
        let (scale, shift): (Float, Float) = shape.count >= 2 ? (Float(1 / Double(shape.dropFirst().reduce(1, *)).squareRoot()), 0)
            : (name.hasSuffix(".weight") && isNorm ? (0.1, 1) : (0.01, 0))
        Kernels.affine(t.data, scale, shift, t.count)
        return t
    }

    func validate() throws {
        let unexpected = tensors.keys.filter { declared[$0] == nil }.sorted()
        guard missing.isEmpty && misshaped.isEmpty && unexpected.isEmpty else {
            func list(_ xs: [String]) -> String { xs.prefix(6).joined(separator: ", ") + (xs.count > 6 ? " … (\(xs.count) in all)" : "") }
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing \(list(missing.sorted()))") }
            if !misshaped.isEmpty { parts.append("mis-shaped \(list(misshaped.sorted()))") }
            if !unexpected.isEmpty { parts.append("unexpected \(list(unexpected))") }
            throw SVIError.file(source, "weights do not fit the architecture: " + parts.joined(separator: "; "))
        }
    }
}

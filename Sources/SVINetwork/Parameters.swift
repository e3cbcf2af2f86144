import SVICore
import SVIFormats

/// Hands checkpoint tensors to layers by name and shape, and reports every missing,
/// unexpected and mis-shaped tensor by name once the whole model has asked.
final class ParameterSource {
    let tensors: [String: Tensor]
    let source: String
    private(set) var declared: [String: [Int]] = [:]
    /// Run-time settings of the network being built, shared by its layers.
    let options = NetworkOptions()

    /// When set, every parameter is drawn at random instead (benchmarks without a checkpoint).
    private let randomSeed: UInt64?

    init(_ tensors: [String: Tensor], source: String) { self.tensors = tensors; self.source = source; randomSeed = nil; shapesOnly = false }

    init(randomSeed: UInt64) { tensors = [:]; source = "random weights"; self.randomSeed = randomSeed; shapesOnly = false }

    /// Declares shapes only, allocating nothing (a network that can be measured, not run).
    private let shapesOnly: Bool
    init(shapesOnly: Bool) { tensors = [:]; source = "shapes only"; randomSeed = nil; self.shapesOnly = shapesOnly }

    /// The tensor `name` with `shape` (zeros when absent or mis-shaped: `validate` then fails,
    /// naming it; a network is never run with them).
    func take(_ name: String, _ shape: [Int]) -> Tensor {
        if let seed = randomSeed { declared[name] = shape; return random(name, shape, seed) }
        if shapesOnly { declared[name] = shape; return Tensor(shape: [0]) }
        declared[name] = shape
        guard let t = tensors[name], t.shape == shape else { return Tensor(shape: shape) }
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

    /// The checkpoint against every parameter the network asked for, compared in the checked
    /// SVIFormats (this module is built without Swift's checks).
    func validate() throws {
        guard randomSeed == nil && !shapesOnly else { return }
        try CheckpointFit.check(tensors, declared: declared, source: source)
    }
}

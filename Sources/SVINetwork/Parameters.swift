import SVICore

/// Hands checkpoint tensors to layers by name and shape, and reports every missing,
/// unexpected and mis-shaped tensor by name once the whole model has asked.
final class ParameterSource {
    let tensors: [String: Tensor]
    let source: String
    private(set) var declared: [String: [Int]] = [:]
    private var missing: [String] = []
    private var misshaped: [String] = []

    init(_ tensors: [String: Tensor], source: String) { self.tensors = tensors; self.source = source }

    /// The tensor `name` with `shape` (or zeros, recorded as a problem, when absent or mis-shaped).
    func take(_ name: String, _ shape: [Int]) -> Tensor {
        declared[name] = shape
        guard let t = tensors[name] else { missing.append(name); return Tensor(shape: shape) }
        guard t.shape == shape else {
            misshaped.append("\(name) is \(t.shape), expected \(shape)")
            return Tensor(shape: shape)
        }
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

import Foundation
import SVICore

/// Where a model's weights and architecture come from, read and checked here — in a module
/// built with Swift's checks — before the unchecked network code sees any of it (issue 29):
/// the checkpoint (`Checkpoint.load`), the architecture from a preset, a JSON config, a config
/// file beside the weights (`W.json`, `config.json` or `fixture.json`), or inference from the
/// weights, and the fit of the weights to the architecture (`CheckpointFit`).
public enum ModelSource {
    /// The checkpoint, its architecture and notes on where the architecture came from.
    public static func resolve(weights: String, preset: String?, config: String?) throws -> (Checkpoint, UNetConfig, [String]) {
        let ckpt = try Checkpoint.load(weights)
        if let p = preset {
            guard let c = UNetConfig.presets[p] else {
                throw SVIError.option("--preset", "unknown preset '\(p)' (known: \(UNetConfig.presets.keys.sorted().joined(separator: ", ")))")
            }
            return (ckpt, c, [])
        }
        if let path = config { return (ckpt, try UNetConfig.load(path), []) }
        if let beside = configBeside(weights) { return (ckpt, try UNetConfig.load(beside), ["architecture from \(beside)"]) }
        let inferred = try UNetConfig.infer(from: ckpt.tensors, source: weights)
        return (ckpt, inferred.config, inferred.notes)
    }

    /// `W.json`, then `config.json`, then `fixture.json` in the folder of the weights `W`.
    public static func configBeside(_ weights: String) -> String? {
        let url = URL(fileURLWithPath: weights)
        let dir = url.deletingLastPathComponent()
        for candidate in [weights + ".json", dir.appendingPathComponent("config.json").path, dir.appendingPathComponent("fixture.json").path]
        where FileManager.default.fileExists(atPath: candidate) {
            return candidate
        }
        return nil
    }
}

/// Whether a checkpoint's tensors are exactly the parameters an architecture declares (name →
/// shape): every missing, mis-shaped and unexpected tensor is named, at most six of each.
public enum CheckpointFit {
    public static func check(_ tensors: [String: Tensor], declared: [String: [Int]], source: String) throws {
        var missing: [String] = [], misshaped: [String] = []
        for (name, shape) in declared {
            guard let t = tensors[name] else { missing.append(name); continue }
            if t.shape != shape { misshaped.append("\(name) is \(t.shape), expected \(shape)") }
        }
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

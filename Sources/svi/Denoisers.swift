import Foundation
import SVICore
import SVIFormats
import SVIOperators
import SVISampler
import SVINetwork

/// The prior svi ships (Models/prior.safetensors, see Models/MODEL.md): used when neither
/// --model nor --prior is given.
enum EmbeddedPrior {
    static let fileName = "prior.safetensors"

    /// Where to look, in order: $SVI_PRIOR; beside the executable and in ../share/svi (an
    /// installed copy); the source tree this binary was built from (a build in the repo).
    static var candidates: [String] {
        var c: [String] = []
        if let env = ProcessInfo.processInfo.environment["SVI_PRIOR"], !env.isEmpty { c.append(env) }
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        c.append(exe.appendingPathComponent(fileName).path)
        c.append(exe.deletingLastPathComponent().appendingPathComponent("share/svi/\(fileName)").path)
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        c.append(repo.appendingPathComponent("Models/\(fileName)").path)
        return c
    }

    static func locate() throws -> String {
        if let env = ProcessInfo.processInfo.environment["SVI_PRIOR"], !env.isEmpty {
            guard FileManager.default.fileExists(atPath: env) else { throw SVIError.file(env, "SVI_PRIOR names no file") }
            return env
        }
        guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw SVIError("the embedded prior is missing (looked in \(candidates.joined(separator: ", "))); pass --model WEIGHTS or set SVI_PRIOR")
        }
        return found
    }
}

/// The denoiser `svi restore` runs: the U-Net from --model, the embedded prior, or the
/// classical Gaussian prior.
func makeDenoiser(model: String?, preset: String?, config: String?, prior: String?, batch: Int, progress: Progress) throws -> Denoiser {
    if prior == "gaussian" { return GaussianPriorDenoiser() }
    let weights = try model ?? EmbeddedPrior.locate()
    let (net, ckpt, notes) = try ModelLoader.load(weights: weights, preset: preset, config: config)
    for n in notes where model != nil { progress.note("note: \(n)") }
    let label = model == nil ? "embedded prior \(EmbeddedPrior.fileName)" : URL(fileURLWithPath: weights).lastPathComponent
    let name = "\(label) (\(net.parameterCount) parameters, \(ckpt.fingerprint))"
    return UNetDenoiser(net: net, name: name, batch: batch)
}

import Foundation
import SVICore
import SVIOperators
import SVISampler
import SVINetwork

/// The denoiser `svi restore` runs: the U-Net from --model, or the classical Gaussian prior.
func makeDenoiser(model: String?, preset: String?, config: String?, prior: String?, batch: Int, progress: Progress) throws -> Denoiser {
    if prior == "gaussian" { return GaussianPriorDenoiser() }
    guard let weights = model else {
        throw SVIError("no model: pass --model WEIGHTS (.safetensors or .pt), or --prior gaussian for the classical prior")
    }
    let (net, ckpt, notes) = try ModelLoader.load(weights: weights, preset: preset, config: config)
    for n in notes { progress.note("note: \(n)") }
    let name = "\(URL(fileURLWithPath: weights).lastPathComponent) (\(net.parameterCount) parameters, \(ckpt.fingerprint))"
    return UNetDenoiser(net: net, name: name, batch: batch)
}

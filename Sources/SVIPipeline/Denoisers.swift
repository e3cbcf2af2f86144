import Foundation
import SVICore
import SVIFormats
import SVIOperators
import SVISampler
import SVINetwork

/// The prior svi ships (Models/prior.safetensors, see Models/MODEL.md): used when neither
/// --model nor --prior is given.
package enum EmbeddedPrior {
    package static let fileName = "prior.safetensors"

    /// Where to look, in order: $SVI_PRIOR; beside the executable and in ../share/svi (an
    /// installed copy); the source tree this binary was built from (a build in the repo).
    package static var candidates: [String] {
        var c: [String] = []
        if let env = ProcessInfo.processInfo.environment["SVI_PRIOR"], !env.isEmpty { c.append(env) }
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        c.append(exe.appendingPathComponent(fileName).path)
        c.append(exe.deletingLastPathComponent().appendingPathComponent("share/svi/\(fileName)").path)
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        c.append(repo.appendingPathComponent("Models/\(fileName)").path)
        return c
    }

    package static func locate() throws -> String {
        if let env = ProcessInfo.processInfo.environment["SVI_PRIOR"], !env.isEmpty {
            guard FileManager.default.fileExists(atPath: env) else { throw SVIError.file(env, "SVI_PRIOR names no file") }
            return env
        }
        guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw SVIError("the embedded prior is missing (looked in \(candidates.joined(separator: ", "))); pass --model WEIGHTS or set SVI_PRIOR", kind: .badInput)
        }
        return found
    }
}

/// How frames are cut into tiles for the network (issue 16): `--tile N --tile-overlap M`,
/// `--tile 0` for whole frames, or chosen here when not given.
package struct TilePolicy: Codable, Equatable {
    package var tile: Int
    package var overlap: Int
    package var reason: String

    /// Activations one denoiser call may take before tiling turns on by itself.
    package static let activationBudget = 2 << 30
    /// The size the published ADM models were trained at; attention models see frames much
    /// larger than this only in tiles.
    package static let nativeSize = 256

    /// nil: whole frames. `requested` nil means automatic: tiles of 256 with an overlap of 64
    /// when the frame is larger than the model's native size and the model has attention (its
    /// global context would see a scene it was never trained on), or when one call's
    /// activations would pass `activationBudget`. The options' ranges are `TileOptions.validate`'s.
    package static func choose(requested: Int?, overlap: Int?, net: UNet?, batch: Int, height: Int, width: Int) -> TilePolicy? {
        if let t = requested {
            if t == 0 { return nil }
            return TilePolicy(tile: t, overlap: overlap ?? t / 4, reason: "--tile \(t)")
        }
        guard let net, max(height, width) > nativeSize else { return nil }
        let o = overlap ?? nativeSize / 4
        if !net.config.attentionDownsample.isEmpty {
            return TilePolicy(tile: nativeSize, overlap: o, reason: "automatic: \(width)x\(height) frames are larger than the model's native \(nativeSize)x\(nativeSize)")
        }
        let bytes = net.activationBytes(batch: batch, height: height, width: width)
        if bytes > activationBudget {
            return TilePolicy(tile: nativeSize, overlap: o, reason: String(format: "automatic: whole frames would take %.1f GB of activations per call", Double(bytes) / 1e9))
        }
        return nil
    }
}

/// The denoiser `svi restore` runs: the U-Net from --model, the embedded prior, or the
/// classical Gaussian prior; on tiles when `TilePolicy` says so.
/// `workingBytes`: what one call needs beside the loaded weights (activations of a batch and
/// the Winograd cache), for planning segments.
package func makeDenoiser(model: String?, preset: String?, config: String?, prior: String?, batch: Int, tile: Int?, tileOverlap: Int?,
                  height: Int, width: Int, referenceKernels: Bool, precision: Precision, progress: Progress) throws -> (denoiser: Denoiser, tiles: TilePolicy?, workingBytes: Double) {
    var net: UNet?
    let inner: Denoiser
    if prior == "gaussian" {
        inner = GaussianPriorDenoiser()
    } else {
        let weights = try model ?? EmbeddedPrior.locate()
        try precision.checkAvailable(cpu: MachineInfo.current.cpu)
        let (loaded, ckpt, notes) = try ModelLoader.load(weights: weights, preset: preset, config: config)
        for n in notes where model != nil { progress.note("note: \(n)") }
        loaded.precision = precision
        loaded.referenceKernels = referenceKernels
        let label = model == nil ? "embedded prior \(EmbeddedPrior.fileName)" : URL(fileURLWithPath: weights).lastPathComponent
        // The name is the checkpoint's model identity: bf16, or the plain kernels, give another
        // network's bits, which a resumed run must not mix with these.
        let arithmetic = (precision == .fp32 ? "" : ", \(precision.rawValue)") + (referenceKernels ? ", reference kernels" : "")
        inner = UNetDenoiser(net: loaded, name: "\(label) (\(loaded.parameterCount) parameters, \(ckpt.fingerprint)\(arithmetic))", batch: batch)
        net = loaded
    }
    let policy = TilePolicy.choose(requested: tile, overlap: tileOverlap, net: net, batch: batch, height: height, width: width)
    var working = 0.0
    if let net {
        let grid = policy.map { TileGrid(height: height, width: width, tile: $0.tile, overlap: $0.overlap) }
        let sm = net.config.sizeMultiple
        let h = grid?.tileHeight ?? height, w = grid?.tileWidth ?? width
        working = Double(net.activationBytes(batch: batch, height: (h + sm - 1) / sm * sm, width: (w + sm - 1) / sm * sm) + net.winogradCacheBytes)
    }
    guard let p = policy else { return (inner, nil, working) }
    return (TiledDenoiser(inner: inner, tile: p.tile, overlap: p.overlap, tileBatch: batch), p, working)
}

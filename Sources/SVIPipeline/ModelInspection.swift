import SVIFormats
import SVINetwork

/// What `svi model info` reports of a checkpoint: the file as read, its architecture (from the
/// config file beside it, else inferred from the weights' names and shapes, with notes on
/// how), and the network built from it (which proves the weights fit that architecture).
package enum ModelInspection {
    package static func inspect(_ path: String) throws -> (checkpoint: Checkpoint, config: UNetConfig, notes: [String], net: UNet) {
        let ckpt = try Checkpoint.load(path)
        let (config, notes): (UNetConfig, [String])
        if let beside = ModelSource.configBeside(path) {
            (config, notes) = (try UNetConfig.load(beside), ["architecture from \(beside)"])
        } else {
            (config, notes) = try UNetConfig.infer(from: ckpt.tensors, source: path)
        }
        return (ckpt, config, notes, try UNet(config: config, tensors: ckpt.tensors, source: path))
    }
}

import Testing
import Foundation
import SVICore
@testable import SVINetwork

/// The U-Net reproduces the reference's float64 forward passes on every fixture case.
@Suite struct ParityTests {
    static let models = ["adm-tiny", "adm-plain", "adm-ffhq-like", "adm256-narrow"]

    @Test(arguments: models)
    func matchesReference(model: String) throws {
        let config = try UNetConfig.load(Fixtures.path(model + "/fixture.json"))
        let ckpt = try Checkpoint.load(Fixtures.path(model + "/weights.safetensors"))
        let net = try UNet(config: config, tensors: ckpt.tensors, source: model)
        for c in try Fixtures.cases(model) {
            let x = try NPY.readFloat32(Fixtures.path(model + "/" + c.input))
            let t = try NPY.readIntegers(Fixtures.path(model + "/" + c.timesteps)).values
            let expected = try NPY.readFloat32(Fixtures.path(model + "/" + c.output))
            let y = try net.forward(x, timesteps: t)
            #expect(y.shape == expected.shape)
            let err = relativeL2(y, expected)
            #expect(err <= 1e-5, "\(model) \(c.input): relative L2 \(err)")
        }
    }
}

import Testing
import Foundation
import SVICore
import SVIFormats
@testable import SVINetwork

/// The U-Net reproduces the reference's float64 forward passes on every fixture case.
@Suite struct ParityTests {
    static let models = ["adm-tiny", "adm-plain", "adm-ffhq-like", "adm256-narrow"]

    @Test(arguments: models)
    func referenceKernelsMatchReference(model: String) throws {
        try check(model, fast: false, tolerance: 1e-5)
    }

    /// The fast path (Winograd and fused kernels) stays within 1e-4.
    @Test(arguments: models)
    func fastKernelsMatchReference(model: String) throws {
        try check(model, fast: true, tolerance: 1e-4)
    }

    /// Options the shared fixtures do not cover (new attention order, separate upsampling head
    /// count, parameter-free resampling, two res blocks, non-square inputs), with outputs made by
    /// the reference implementation (Scripts/make-reference-cases).
    static let localCases = ["new-order", "pool-nearest"]

    @Test(arguments: localCases)
    func moreOptionsMatchReference(model: String) throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Reference/" + model).path
        try check(model, fast: false, tolerance: 1e-5, dir: dir)
        try check(model, fast: true, tolerance: 1e-4, dir: dir)
    }

    func check(_ model: String, fast: Bool, tolerance: Double, dir: String? = nil) throws {
        let base = dir ?? Fixtures.path(model)
        let config = try UNetConfig.load(base + "/fixture.json")
        let ckpt = try Checkpoint.load(base + "/weights.safetensors")
        let net = try UNet(config: config, tensors: ckpt.tensors, source: model)
        for c in try Fixtures.cases(at: base) {
            let x = try NPY.readFloat32(base + "/" + c.input)
            let t = try NPY.readIntegers(base + "/" + c.timesteps).values
            let expected = try NPY.readFloat32(base + "/" + c.output)
            net.referenceKernels = !fast
            let y = try net.forward(x, timesteps: t)
            #expect(y.shape == expected.shape)
            let err = relativeL2(y, expected)
            print("parity \(model) \(c.input) \(fast ? "fast" : "reference"): relative L2 \(err)")
            #expect(err <= tolerance, "\(model) \(c.input): relative L2 \(err)")
        }
    }
}

// The kernel choice and the block sizes are settings of each network (`NetworkOptions`), not
// of the process: suites run in parallel, and a process-wide block size changed under another
// test's forward pass once changed its GEMM shapes and so its bits (a clean-clone CI run failed
// BatchIndependenceTests that way). Each test sets them on its own network or layer.

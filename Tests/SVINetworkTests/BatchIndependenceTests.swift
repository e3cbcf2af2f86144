import Testing
import Foundation
import SVICore
import SVIFormats
@testable import SVINetwork

/// A frame's output is bit-identical whatever batch it is computed in (the determinism
/// contract in ARCHITECTURE.md). In-process, on this machine's kernels; the end-to-end
/// `DeterminismTests` repeat the check on other kernels in child processes.
@Suite(.serialized) struct BatchIndependenceTests {
    /// Every layer kind at once: adm-tiny at 32×32 runs Winograd (level 0), im2col (level 1),
    /// attention, 1×1 skips, GroupNorm and the timestep MLP. Each frame of a batch of 5 equals
    /// the same frame run alone and in a batch of 2, to the bit, on both kernel paths.
    @Test(arguments: [false, true])
    func networkOutputOfAFrameIsIndependentOfItsBatch(referenceKernels: Bool) throws {
        let base = Fixtures.path("adm-tiny")
        let net = try UNet(config: try UNetConfig.load(base + "/fixture.json"),
                           tensors: try Checkpoint.load(base + "/weights.safetensors").tensors, source: "adm-tiny")
        net.referenceKernels = referenceKernels
        let x = randomTensor([5, 3, 32, 32], seed: 21)
        let all = try net.forward(x, timesteps: [Int](repeating: 640, count: 5))
        for (start, count) in [(0, 1), (3, 1), (1, 2), (3, 2)] {
            let part = Tensor(shape: [count, 3, 32, 32])
            part.data.update(from: x.frame(start), count: part.count)
            let out = try net.forward(part, timesteps: [Int](repeating: 640, count: count))
            let differing = (0..<out.count).filter { out[$0] != all.frame(start)[$0] }.count
            #expect(differing == 0, "frames \(start)..<\(start + count): \(differing) values differ from the batch of 5")
        }
    }

    /// The layer that broke the contract: a batched GEMM with m = batch rounded rows
    /// differently at batch 1, 2, 5 than at 3, 4 on OpenBLAS's Zen/Haswell kernels.
    @Test func linearRowsAreIndependentOfTheBatch() throws {
        let p = ParameterSource(randomSeed: 5)
        let layer = Linear(p, "l", in: 96, out: 384)
        let x = randomTensor([7, 96], seed: 9)
        let all = layer.forward(x)
        for b in 1...6 {
            let part = Tensor(shape: [b, 96])
            part.data.update(from: x.data, count: part.count)
            let y = layer.forward(part)
            #expect((0..<y.count).allSatisfy { y[$0] == all[$0] }, "batch \(b)")
        }
    }
}

import Testing
import SVICore
@testable import SVIFormats

/// The fit of a checkpoint's tensors to an architecture's parameters is decided in this checked
/// module (issue 29): every missing, mis-shaped and unexpected tensor is named, and a checkpoint
/// that fits passes.
@Suite struct CheckpointFitTests {
    let declared: [String: [Int]] = ["a.weight": [4, 3], "a.bias": [4], "b.weight": [2]]

    @Test func aCheckpointThatFitsPasses() throws {
        let tensors = declared.mapValues { Tensor(shape: $0) }
        try CheckpointFit.check(tensors, declared: declared, source: "w.safetensors")
    }

    @Test func missingMisshapedAndUnexpectedTensorsAreAllNamed() {
        let tensors: [String: Tensor] = ["a.weight": Tensor(shape: [3, 4]), "a.bias": Tensor(shape: [4]), "extra": Tensor(shape: [1])]
        do {
            try CheckpointFit.check(tensors, declared: declared, source: "w.safetensors")
            Issue.record("a checkpoint that does not fit was accepted")
        } catch {
            let text = "\(error)"
            #expect(text.contains("w.safetensors"), "\(text)")
            #expect(text.contains("missing b.weight"), "\(text)")
            #expect(text.contains("mis-shaped a.weight is [3, 4], expected [4, 3]"), "\(text)")
            #expect(text.contains("unexpected extra"), "\(text)")
        }
    }

    @Test func longListsAreCutAfterSix() {
        let many = Dictionary(uniqueKeysWithValues: (0..<9).map { ("p\($0)", [1]) })
        do {
            try CheckpointFit.check([:], declared: many, source: "w")
            Issue.record("an empty checkpoint was accepted")
        } catch {
            #expect("\(error)".contains("(9 in all)"), "\(error)")
        }
    }
}

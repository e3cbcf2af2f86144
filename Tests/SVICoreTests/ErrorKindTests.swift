import Foundation
import Testing
import SVICore

/// svi's errors say who can fix them: each kind has its own exit status, the line names the
/// file, and the kind survives re-wrapping and the trip between ranks.
@Suite struct ErrorKindTests {
    @Test func everyKindHasItsOwnStatus() {
        let statuses = SVIError.Kind.allCases.map(\.exitStatus)
        #expect(Set(statuses).count == statuses.count)
        #expect(SVIError.Kind.badOption.exitStatus == 64)    // what ArgumentParser gives a bad option
        #expect(SVIError.Kind.badInput.exitStatus == 65)
        #expect(SVIError.Kind.other.exitStatus == 1)
        // None collides with the checkpoint-and-requeue status or a signal's.
        #expect(!statuses.contains(85) && statuses.allSatisfy { $0 > 0 && $0 < 128 })
    }

    @Test func theLineNamesTheFileAndTheKindSurvivesWrapping() {
        let inner = SVIError.outOfMemory(nil, "tensor 'w' needs about 9.0 GB")
        let outer = inner.about("/data/model.safetensors")
        #expect(outer.kind == .outOfMemory)
        #expect(outer.message == "/data/model.safetensors: tensor 'w' needs about 9.0 GB")
        let twice = SVIError.file("inner.npy", "bad header").about("outer.zip")
        #expect(twice.message == "outer.zip: inner.npy: bad header" && twice.kind == .badInput)
        #expect(SVIError.option("--nfe", "must be 1–1000").field == "--nfe")
        #expect(SVIError.io("out.npy", "cannot write").exitStatus == 74)
    }

    @Test func errorsTravelAsJSON() throws {
        let e = SVIError(kind: .badInput, file: "y.npy", field: "shape", "shape [0] is empty")
        let back = try JSONDecoder().decode(SVIError.self, from: JSONEncoder().encode(e))
        #expect(back == e && back.description == "y.npy: shape [0] is empty")
    }
}

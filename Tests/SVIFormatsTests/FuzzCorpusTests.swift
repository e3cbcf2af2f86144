import Testing
import Foundation
import SVITestSupport

/// Every input in the fuzzers' corpora (seeds, and the inputs of past findings, kept as
/// `regress-*`) goes through its loader again in every test run: each must be read or
/// refused with an SVIError — never a crash, a trap or another kind of error.
@Suite struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus").path

    @Test(arguments: FuzzEntry.targets)
    func corpusInputsAreReadOrRefusedCleanly(_ target: String) throws {
        let dir = Self.corpus + "/" + target
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(!files.isEmpty, "no seeds for \(target) in \(dir)")
        for f in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + f))
            #expect(throws: Never.self, "\(target)/\(f)") { try FuzzEntry.run(target, data) }
        }
    }
}

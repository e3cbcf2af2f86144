import Foundation
import SVICore

enum Fixtures {
    static var root: String {
        if let e = ProcessInfo.processInfo.environment["SVI_FIXTURES"] { return e }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return repo.deletingLastPathComponent().appendingPathComponent("shared/fixtures").path
    }
    static func path(_ p: String) -> String { root + "/" + p }

    struct Case: Decodable { let input: String; let timesteps: String; let output: String }
    struct File: Decodable { let cases: [Case] }

    static func cases(at dir: String) throws -> [Case] {
        let d = try Data(contentsOf: URL(fileURLWithPath: dir + "/fixture.json"))
        return try JSONDecoder().decode(File.self, from: d).cases
    }
}

/// ‖a − b‖₂ / ‖b‖₂ in float64.
func relativeL2(_ a: Tensor, _ b: Tensor) -> Double {
    var num = 0.0, den = 0.0
    for i in 0..<b.count { let d = Double(a[i]) - Double(b[i]); num += d * d; den += Double(b[i]) * Double(b[i]) }
    return (num / den).squareRoot()
}

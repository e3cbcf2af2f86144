import Foundation
import SVICore
import SVIFormats

/// Helpers shared by the test targets (not part of svi itself).
public enum Fixtures {
    /// `../shared/fixtures` beside the repository (or $SVI_FIXTURES).
    public static var root: String {
        if let e = ProcessInfo.processInfo.environment["SVI_FIXTURES"] { return e }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return repo.deletingLastPathComponent().appendingPathComponent("shared/fixtures").path
    }
    public static func path(_ p: String) -> String { root + "/" + p }

    public struct Case: Decodable { public let input: String; public let timesteps: String; public let output: String }
    struct File: Decodable { let cases: [Case] }

    /// The cases listed in `dir/fixture.json`.
    public static func cases(at dir: String) throws -> [Case] {
        let d = try Data(contentsOf: URL(fileURLWithPath: dir + "/fixture.json"))
        return try JSONDecoder().decode(File.self, from: d).cases
    }
}

/// Standard normals from a fixed seed, shaped as asked.
public func randomTensor(_ shape: [Int], seed: UInt64) -> Tensor {
    let t = Tensor(shape: shape)
    RandomStream(seed: seed, purpose: .initial).normals(offset: 0, count: t.count, into: t.data)
    return t
}

/// max|a − b| / max|b|.
public func maxRelativeError<A, B>(_ a: DenseTensor<A>, _ b: DenseTensor<B>) -> Double {
    var num = 0.0, den = 0.0
    for i in 0..<a.count {
        num = max(num, abs(Double(a[i]) - Double(b[i])))
        den = max(den, abs(Double(b[i])))
    }
    return num / max(den, 1e-30)
}

/// ‖a − b‖₂ / ‖b‖₂ in float64.
public func relativeL2(_ a: Tensor, _ b: Tensor) -> Double {
    var num = 0.0, den = 0.0
    for i in 0..<b.count { let d = Double(a[i]) - Double(b[i]); num += d * d; den += Double(b[i]) * Double(b[i]) }
    return (num / den).squareRoot()
}

/// The sample clips (bikes, carphone, Big Buck Bunny): `Scripts/fetch-samples` downloads them
/// once into `.cache/samples` and prints the folder.
public enum Samples {
    public static let folder: String = {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: repo.appendingPathComponent("Scripts/fetch-samples").path)
        let out = Pipe()
        p.standardOutput = out
        try? p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }()
    public static func path(_ name: String) -> String { folder + "/" + name }
}

import Testing
@testable import SVICore

/// Philox-4x32-10 reproduces the Random123 known-answer vectors, and the streams built on it
/// give the same numbers however the work is split.
@Suite struct PhiloxTests {
    @Test func knownAnswerVectors() {
        let a = Philox4x32.block(counter: (0, 0, 0, 0), key: (0, 0))
        #expect([a.0, a.1, a.2, a.3] == [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8])
        let m = UInt32.max
        let b = Philox4x32.block(counter: (m, m, m, m), key: (m, m))
        #expect([b.0, b.1, b.2, b.3] == [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd])
        let c = Philox4x32.block(counter: (0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), key: (0xa4093822, 0x299f31d0))
        #expect([c.0, c.1, c.2, c.3] == [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1])
    }

    /// Golden values: a fixed seed gives fixed first normals, forever (changing them would
    /// change every restoration made with a given seed).
    @Test func goldenNormals() {
        let z = RandomStream(seed: 42, purpose: .initial).normals(count: 4)
        let again = RandomStream(seed: 42, purpose: .initial).normals(count: 4)
        #expect(z == again)
        #expect(z == RandomStream.goldenSeed42Initial)
    }

    @Test func sameNumbersAtAnyOffsetAndThreadCount() {
        let s = RandomStream(seed: 7, purpose: .step, step: 3)
        let whole = Parallel.withThreads(1) { s.normals(count: 100_003) }
        let whole2 = Parallel.withThreads(2) { s.normals(count: 100_003) }
        #expect(whole == whole2)
        var part = [Float](repeating: 0, count: 1001)
        part.withUnsafeMutableBufferPointer { s.normals(offset: 50_001, count: 1001, into: $0.baseAddress!) }
        #expect(part == Array(whole[50_001..<51_002]))
    }

    @Test func normalMoments() {
        let z = RandomStream(seed: 1, purpose: .initial).normals(count: 1 << 20).map(Double.init)
        let n = Double(z.count)
        let mean = z.reduce(0, +) / n
        let variance = z.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n
        let kurt = z.reduce(0) { $0 + pow4($1 - mean) } / n / (variance * variance)
        #expect(abs(mean) < 0.005)
        #expect(abs(variance - 1) < 0.005)
        #expect(abs(kurt - 3) < 0.05)
    }

    @Test func streamsAreIndependent() {
        let n = 1 << 18
        let a = RandomStream(seed: 1, purpose: .step, step: 1).normals(count: n)
        let b = RandomStream(seed: 1, purpose: .step, step: 2).normals(count: n)
        let c = RandomStream(seed: 2, purpose: .step, step: 1).normals(count: n)
        let d = RandomStream(seed: 1, purpose: .initial, step: 1).normals(count: n)
        for other in [b, c, d] {
            let corr = zip(a, other).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } / Double(n)
            #expect(abs(corr) < 0.01)
        }
    }

    @Test func uniformsInOpenUnitInterval() {
        let u = RandomStream(seed: 9, purpose: .inpaintMask).uniforms(offset: 0, count: 100_000)
        #expect(u.allSatisfy { $0 > 0 && $0 < 1 })
        #expect(abs(u.reduce(0, +) / 100_000 - 0.5) < 0.005)
    }
}

private func pow4(_ x: Double) -> Double { let y = x * x; return y * y }

extension RandomStream {
    /// First four normals of (seed 42, initial, step 0), recorded when the generator was
    /// written; they pin the stream format.
    static let goldenSeed42Initial: [Float] = [-1.6914357, -1.1320295, 0.32612854, -1.4560038]
}

import Testing
import Foundation
@testable import SVIFormats
import SVICore
import SVITestSupport

/// `.npy` files: float32 round trips exactly; other dtypes, Fortran order and truncation are
/// refused with a message naming the file.
@Suite struct NPYTests {
    let dir: String = {
        let d = NSTemporaryDirectory() + "svi-npy-\(getpid())-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }()

    func raw(descr: String, fortran: Bool = false, shape: String, payload: [UInt8]) -> Data {
        Crafted.npy(header: "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }", payload: payload)
    }

    @Test func float32RoundTrip() throws {
        let t = Tensor(shape: [2, 3, 4, 5], values: (0..<120).map { Float($0) * 0.37 - 3 })
        let path = dir + "/t.npy"
        try NPY.write(t, to: path)
        let back = try NPY.readFloat32(path)
        #expect(back.shape == [2, 3, 4, 5])
        #expect(back.array == t.array)
        // No temporary file left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains("partial") }.isEmpty)
    }

    @Test func readsTheFixtures() throws {
        let v = try NPY.readFloat32(Fixtures.path("temporal-cg/video.npy"))
        #expect(v.shape == [16, 3, 8, 8])
        let ts = try NPY.readIntegers(Fixtures.path("adm-tiny/timesteps0.npy"))
        #expect(ts.values == [10, 900])
    }

    @Test func refusesFloat64() throws {
        let path = dir + "/f8.npy"
        try raw(descr: "<f8", shape: "(2,)", payload: [UInt8](repeating: 0, count: 16)).write(to: URL(fileURLWithPath: path))
        let e = #expect(throws: SVIError.self) { try NPY.readFloat32(path) }
        #expect(e?.message.contains(path) == true)
        #expect(e?.message.contains("<f8") == true)
    }

    @Test func refusesBigEndianAndFortranOrder() throws {
        let be = dir + "/be.npy"
        try raw(descr: ">f4", shape: "(2,)", payload: [UInt8](repeating: 0, count: 8)).write(to: URL(fileURLWithPath: be))
        #expect(throws: SVIError.self) { try NPY.readFloat32(be) }
        let fo = dir + "/fo.npy"
        try raw(descr: "<f4", fortran: true, shape: "(2, 2)", payload: [UInt8](repeating: 0, count: 16)).write(to: URL(fileURLWithPath: fo))
        let e = #expect(throws: SVIError.self) { try NPY.readFloat32(fo) }
        #expect(e?.message.contains("Fortran") == true)
    }

    @Test func refusesTruncatedAndNonNpy() throws {
        let tr = dir + "/tr.npy"
        try raw(descr: "<f4", shape: "(4, 4)", payload: [UInt8](repeating: 0, count: 20)).write(to: URL(fileURLWithPath: tr))
        let e = #expect(throws: SVIError.self) { try NPY.readFloat32(tr) }
        #expect(e?.message.contains("truncated") == true)
        let txt = dir + "/txt.npy"
        try Data("hello world, not numpy".utf8).write(to: URL(fileURLWithPath: txt))
        #expect(throws: SVIError.self) { try NPY.readFloat32(txt) }
        let missing = dir + "/missing.npy"
        let m = #expect(throws: SVIError.self) { try NPY.readFloat32(missing) }
        #expect(m?.message == "\(missing): no such file")
    }
}


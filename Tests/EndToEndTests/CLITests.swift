import Testing
import Foundation
import SVICore
import SVIFormats

/// Runs the built `svi` binary on files, as a user would.
enum CLI {
    static var binary: String {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("svi").path,
            Bundle.main.bundleURL.appendingPathComponent("svi").path,
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent(".build/debug/svi").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last!
    }

    struct Result { let status: Int32; let stdout: String; let stderr: String }

    @discardableResult
    /// `svi ARGS`, or `executable ARGS` (a wrapper such as taskset that runs svi itself).
    static func run(_ args: [String], executable: String? = nil, environment: [String: String] = [:]) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable ?? binary)
        p.arguments = args
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    static func tempDir() -> String {
        let d = NSTemporaryDirectory() + "svi-e2e-\(getpid())-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    static var fixtures: String {
        if let e = ProcessInfo.processInfo.environment["SVI_FIXTURES"] { return e }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/fixtures").path
    }

    /// A smooth moving pattern, [T][3][H][W] in [0,1].
    static func clip(frames: Int, height: Int, width: Int) -> Tensor {
        let v = Tensor(shape: [frames, 3, height, width])
        for f in 0..<frames { for c in 0..<3 { for y in 0..<height { for x in 0..<width {
            let phase = Double(x) * 0.35 + Double(y) * 0.2 + Double(c) + Double(f) * 0.25
            v[((f * 3 + c) * height + y) * width + x] = Float(0.5 + 0.35 * sin(phase))
        } } } }
        return v
    }
}

@Suite struct DegradeRestoreTests {
    @Test func degradeReproducesTheReferenceMeasurement() throws {
        let d = CLI.tempDir()
        let r = try CLI.run(["degrade", CLI.fixtures + "/temporal-cg/video.npy", "-o", d + "/m.npy", "--degradation", "temporal=uniform:13", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let m = try NPY.readFloat32(d + "/m.npy"), ref = try NPY.readFloat32(CLI.fixtures + "/temporal-cg/measurement.npy")
        var num = 0.0, den = 0.0
        for i in 0..<ref.count { num = max(num, Double(abs(m[i] - ref[i]))); den = max(den, Double(abs(ref[i]))) }
        #expect(num / den < 1e-5)
        let side = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: d + "/m.npy.json"))) as! [String: Any]
        #expect(side["degradation"] as? String == "temporal=uniform:13")
    }

    /// The acceptance run: 16 frames of 32×32, temporal k=7 + SR×2, adm-tiny, NFE 4,
    /// seed 7 — twice bit-identical, residual below 1e-2.
    @Test func restoreWithTheNetworkIsReproducibleAndDataConsistent() throws {
        let d = CLI.tempDir()
        try NPY.write(CLI.clip(frames: 16, height: 32, width: 32), to: d + "/x.npy")
        var r = try CLI.run(["degrade", d + "/x.npy", "-o", d + "/y.npy", "--degradation", "temporal=uniform:7,sr=2", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        for out in ["r1", "r2"] {
            r = try CLI.run(["restore", d + "/y.npy", "-o", d + "/\(out).npy", "--degradation", "temporal=uniform:7,sr=2",
                             "--model", CLI.fixtures + "/adm-tiny/weights.safetensors", "--nfe", "4", "--seed", "7", "--report", d + "/\(out).json"])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let a = try NPY.readFloat32(d + "/r1.npy"), b = try NPY.readFloat32(d + "/r2.npy")
        #expect(a.shape == [16, 3, 32, 32])
        let same = a.array == b.array
        #expect(same)
        let rep = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: d + "/r1.json"))) as! [String: Any]
        let residual = try #require(rep["residual"] as? Double)
        #expect(residual < 1e-2)
        let settings = try #require(rep["settings"] as? [String: Any])
        #expect(settings["nfe"] as? Int == 4 && settings["seed"] as? Int == 7)
        #expect((rep["timings"] as? [String: Any])?["denoise_s"] != nil)
    }

    @Test func baselinesAndEvalRun() throws {
        let d = CLI.tempDir()
        try NPY.write(CLI.clip(frames: 8, height: 16, width: 16), to: d + "/x.npy")
        #expect(try CLI.run(["degrade", d + "/x.npy", "-o", d + "/y.npy", "--degradation", "temporal=uniform:3,noise=0.01", "--quiet"]).status == 0)
        for m in ["cg", "admm-tv"] {
            let r = try CLI.run(["restore", d + "/y.npy", "-o", d + "/\(m).npy", "--method", m, "--quiet"])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let r = try CLI.run(["restore", d + "/y.npy", "-o", d + "/g.npy", "--prior", "gaussian", "--nfe", "3", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let e = try CLI.run(["eval", "--reference", d + "/x.npy", "--restored", d + "/admm-tv.npy", "--json"])
        #expect(e.status == 0)
        let scores = try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as! [String: Any]
        #expect((scores["mean_psnr"] as? Double ?? 0) > 20)
    }
}

/// Bad input: one clear line naming the problem, a non-zero exit, no output file.
@Suite struct BadInputTests {
    func expectFailure(_ args: [String], output: String, says: String, environment: [String: String] = [:]) throws {
        let r = try CLI.run(args, environment: environment)
        #expect(r.status != 0 && r.status < 128)
        let lines = r.stderr.split(separator: "\n").filter { !$0.isEmpty }
        #expect(lines.count == 1, "\(r.stderr)")
        #expect(r.stderr.contains(says), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: output))
        #expect(!FileManager.default.fileExists(atPath: output + ".json"))
    }

    @Test func badInputs() throws {
        let d = CLI.tempDir()
        try NPY.write(CLI.clip(frames: 4, height: 6, width: 6), to: d + "/x.npy")
        var f8 = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        var header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        f8.append(contentsOf: [UInt8(header.utf8.count), 0]); f8.append(contentsOf: Array(header.utf8)); f8.append(Data(count: 16))
        try f8.write(to: URL(fileURLWithPath: d + "/f8.npy"))
        let out = d + "/out.npy"
        try expectFailure(["degrade", d + "/missing.npy", "-o", out, "--degradation", "temporal=uniform:3"], output: out, says: "missing.npy: no such file")
        try expectFailure(["degrade", d + "/f8.npy", "-o", out, "--degradation", "temporal=uniform:3"], output: out, says: "<f8")
        try expectFailure(["degrade", d + "/x.npy", "-o", out, "--degradation", "temporl=uniform:3"], output: out, says: "unknown key 'temporl'")
        try expectFailure(["degrade", d + "/x.npy", "-o", out, "--degradation", "temporal=uniform:3,sr=4"], output: out, says: "does not divide")
        try expectFailure(["degrade", d + "/x.npy", "-o", out, "--degradation", "temporal=uniform:4"], output: out, says: "odd")
        try expectFailure(["degrade", d + "/x.npy", "-o", d + "/nodir/out.npy", "--degradation", "temporal=uniform:3"], output: d + "/nodir/out.npy", says: "does not exist")
        try expectFailure(["restore", d + "/x.npy", "-o", out, "--prior", "gaussian"], output: out, says: "no degradation given")
        try expectFailure(["restore", d + "/x.npy", "-o", out, "--degradation", "temporal=uniform:3"], output: out, says: "SVI_PRIOR names no file",
                          environment: ["SVI_PRIOR": d + "/missing.safetensors"])
        try expectFailure(["restore", d + "/x.npy", "-o", out, "--degradation", "temporal=uniform:3", "--model", d + "/x.npy"], output: out, says: "not a checkpoint")
    }

    @Test func existingOutputIsNotOverwritten() throws {
        let d = CLI.tempDir()
        try NPY.write(CLI.clip(frames: 4, height: 6, width: 6), to: d + "/x.npy")
        try Data("precious".utf8).write(to: URL(fileURLWithPath: d + "/out.npy"))
        let r = try CLI.run(["degrade", d + "/x.npy", "-o", d + "/out.npy", "--degradation", "temporal=uniform:3"])
        #expect(r.status != 0 && r.stderr.contains("--overwrite"))
        #expect(try String(contentsOfFile: d + "/out.npy", encoding: .utf8) == "precious")
        #expect(try CLI.run(["degrade", d + "/x.npy", "-o", d + "/out.npy", "--degradation", "temporal=uniform:3", "--overwrite", "--quiet"]).status == 0)
    }
}

@Suite struct ModelCLITests {
    @Test func modelRunMatchesTheFixture() throws {
        let d = CLI.tempDir()
        let f = CLI.fixtures + "/adm-plain/"
        let r = try CLI.run(["model", "run", "--model", f + "weights.safetensors", "--config", f + "fixture.json",
                             "--input", f + "input0.npy", "--timesteps", f + "timesteps0.npy", "-o", d + "/y.npy", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let y = try NPY.readFloat32(d + "/y.npy"), ref = try NPY.readFloat32(f + "output0.npy")
        var num = 0.0, den = 0.0
        for i in 0..<ref.count { let e = Double(y[i] - ref[i]); num += e * e; den += Double(ref[i] * ref[i]) }
        #expect((num / den).squareRoot() < 1e-5)
    }

    @Test func modelInfoDescribesTheCheckpoint() throws {
        let r = try CLI.run(["model", "info", CLI.fixtures + "/adm256-narrow/weights.safetensors", "--json"])
        #expect(r.status == 0)
        let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        #expect(o["parameters"] as? Int == 8_675_526)
        #expect(o["channel_mult"] as? [Double] == [1, 1, 2, 2, 4, 4])
        #expect(o["num_res_blocks"] as? Int == 2 && o["learn_sigma"] as? Bool == true)
    }

    @Test func maliciousCheckpointIsRefusedByTheCLI() throws {
        let r = try CLI.run(["model", "info", CLI.fixtures + "/temporal-cg/video.npy"])
        #expect(r.status != 0 && r.status < 128 && r.stderr.contains("not a checkpoint"))
    }
}

import Testing
import Foundation
import SVICore
import SVIFormats

/// One meaning per name across commands: --size is WIDTHxHEIGHT, --frames a range, the
/// checkpoint is --model, --cg-steps is per diffusion step; old spellings still work with a
/// warning for one release. And the help says each default once.
@Suite struct VocabularyTests {
    @Test func synthTakesWidthByHeightAndAFrameRange() throws {
        let d = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        #expect(try CLI.run(["synth", "-o", d + "/a.npy", "--size", "48x32", "--frames", "0:6"]).status == 0)
        let a = try NPY.readFloat32(d + "/a.npy")
        #expect(a.shape == [6, 3, 32, 48])
        #expect(try CLI.run(["synth", "-o", d + "/b.npy", "--size", "48x32", "--frames", "2:6"]).status == 0)
        let b = try NPY.readFloat32(d + "/b.npy")
        #expect(b.shape == [4, 3, 32, 48])
        #expect((0..<b.count).allSatisfy { b[$0] == a[2 * a.frameSize + $0] })
        // The old count still works, with a warning.
        let old = try CLI.run(["synth", "-o", d + "/c.npy", "--size", "48x32", "--frames", "6"])
        #expect(old.status == 0 && old.stderr.contains("--frames is a range a:b"), "\(old.stderr)")
        #expect(try NPY.readFloat32(d + "/c.npy").shape == [6, 3, 32, 48])
    }

    @Test func theCheckpointIsModelEverywhere() throws {
        let f = CLI.fixtures + "/adm-tiny/"
        let info = try CLI.run(["model", "info", "--model", f + "weights.safetensors"])
        #expect(info.status == 0 && info.stdout.contains("828358"), "\(info.stderr)")
        let d = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let old = try CLI.run(["model", "run", "--weights", f + "weights.safetensors", "--config", f + "fixture.json",
                               "--input", f + "input0.npy", "--timesteps", f + "timesteps0.npy", "-o", d + "/y.npy"])
        #expect(old.status == 0 && old.stderr.contains("--weights is now --model"), "\(old.stderr)")
    }

    @Test func cgStepsMeansOneThing() throws {
        let d = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        try NPY.write(CLI.clip(frames: 6, height: 16, width: 16), to: d + "/x.npy")
        #expect(try CLI.run(["degrade", d + "/x.npy", "-o", d + "/y.npy", "--degradation", "temporal=uniform:3,sr=2", "--quiet"]).status == 0)
        #expect(try CLI.run(["restore", d + "/y.npy", "-o", d + "/a.npy", "--method", "cg", "--cg-iterations", "7", "--quiet"]).status == 0)
        let old = try CLI.run(["restore", d + "/y.npy", "-o", d + "/b.npy", "--method", "cg", "--cg-steps", "7", "--quiet"])
        #expect(old.status == 0 && old.stderr.contains("is now --cg-iterations"), "\(old.stderr)")
        let a = try NPY.readFloat32(d + "/a.npy"), b = try NPY.readFloat32(d + "/b.npy")
        #expect((0..<a.count).allSatisfy { a[$0] == b[$0] })
        let wrong = try CLI.run(["restore", d + "/y.npy", "-o", d + "/c.npy", "--prior", "gaussian", "--cg-iterations", "7"])
        #expect(wrong.status != 0 && wrong.stderr.contains("--cg-iterations is for --method cg"), "\(wrong.stderr)")
    }

    /// `--sampler pnp` draws no noise and sets γ per level: the options of DDS's noise and γ
    /// are refused beside it with one line, as are its own options without it.
    @Test(arguments: [
        (["--sampler", "pnp", "--eta", "0.5"], "--sampler pnp draws no noise"),
        (["--sampler", "pnp", "--gamma", "3"], "--sampler pnp draws no noise"),
        (["--sampler", "pnp", "--init", "noise"], "--sampler pnp refines an estimate"),
        (["--sampler", "pnp", "--pnp-levels", "0.001:0.01"], "--pnp-levels must be FROM:TO"),
        (["--sampler", "dds", "--pnp-weight", "2"], "--pnp-levels and --pnp-weight are for --sampler pnp"),
        (["--pnp-weight", "2", "--eta", "0.3"], "--sampler pnp draws no noise"),
        (["--method", "cg", "--sampler", "pnp"], "--sampler is for --method dds"),
    ])
    func plugAndPlayOptionsOutsideItsSamplerAreRefused(extra: [String], says: String) throws {
        let d = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        try NPY.write(CLI.clip(frames: 4, height: 8, width: 8), to: d + "/x.npy")
        #expect(try CLI.run(["degrade", d + "/x.npy", "-o", d + "/y.npy", "--degradation", "temporal=uniform:3,noise=0.01", "--quiet"]).status == 0)
        let r = try CLI.run(["restore", d + "/y.npy", "-o", d + "/r.npy", "--prior", "gaussian", "--quiet"] + extra)
        #expect(r.status != 0 && r.stderr.contains(says), "\(extra): \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d + "/r.npy"))
    }

    @Test(arguments: [["restore"], ["degrade"], ["synth"], ["eval"], ["compare"], ["bench", "unet"], ["model", "run"], ["model", "info"]])
    func helpSaysEachDefaultOnceAndOffersOnlyWhatTheCommandUses(command: [String]) throws {
        let r = try CLI.run(command + ["--help"])
        #expect(r.status == 0)
        let doubled = r.stdout.range(of: #"default[^()]*\)[.;]?\s*\(default:"#, options: .regularExpression)
        #expect(doubled == nil, "\(command): \(r.stdout)")
        if command == ["degrade"] || command == ["synth"] { #expect(!r.stdout.contains("--reference-kernels")) }
    }

    /// --resume and --checkpoint-dir overlapped: --resume is now the old spelling of
    /// --checkpoint-dir (it warns, and still insists that the folder holds a checkpoint).
    @Test func resumeIsTheOldSpellingOfCheckpointDir() throws {
        let d = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        try NPY.write(CLI.clip(frames: 4, height: 16, width: 16), to: d + "/x.npy")
        #expect(try CLI.run(["degrade", d + "/x.npy", "-o", d + "/y.npy", "--degradation", "temporal=uniform:3", "--quiet"]).status == 0)
        let args = ["restore", d + "/y.npy", "--prior", "gaussian", "--nfe", "4", "--seed", "3", "--quiet"]
        #expect(try CLI.run(args + ["-o", d + "/a.npy", "--checkpoint-dir", d + "/ck"]).status == 0)
        let old = try CLI.run(args + ["-o", d + "/b.npy", "--resume", d + "/ck"])
        #expect(old.status == 0 && old.stderr.contains("--resume DIR is the old spelling of --checkpoint-dir"), "\(old.stderr)")
        let both = try CLI.run(args + ["-o", d + "/c.npy", "--resume", d + "/ck", "--checkpoint-dir", d + "/other"])
        #expect(both.status != 0 && both.stderr.contains("give one folder"), "\(both.stderr)")
    }

    @Test func topLevelHelpNamesVideoFiles() throws {
        let r = try CLI.run(["--help"])
        #expect(r.stdout.contains("any file FFmpeg reads") && r.stdout.contains("WIDTHxHEIGHT"), "\(r.stdout)")
    }
}

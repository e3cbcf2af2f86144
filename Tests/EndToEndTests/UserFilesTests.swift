import Testing
import Foundation
import SVICore
import SVIFormats
import SVITestSupport

/// Issue 30: nothing of the user's is overwritten without `--overwrite` (and never an input),
/// limits of the machine end in one line instead of a trap, and PNG sequences read back.
/// Each case runs the real binary as a user would (`Hostile.expectRefused`: exit 1 or 64, one
/// line naming the file or option, nothing in the folder changed).
@Suite struct UserFilesTests {
    /// `sh -c SCRIPT` with `$SVI` set to the binary: for limits (`ulimit`), redirections and
    /// argument bytes that `Process` cannot pass (invalid UTF-8).
    static func shell(_ script: String, in dir: String) throws -> CLI.Result {
        try CLI.run(["-c", "cd '\(dir)' && " + script], executable: "/bin/sh", environment: ["SVI": CLI.binary])
    }

    static func expectOneLine(_ r: CLI.Result, status: Int32, mentions: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == status, "exit \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
        let lines = r.stderr.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        #expect(lines.count == 1, "expected one line: \(r.stderr)", sourceLocation: sourceLocation)
        for m in mentions { #expect(r.stderr.contains(m), "'\(m)' not in: \(r.stderr)", sourceLocation: sourceLocation) }
    }

    // MARK: no output over an input, another output, or an existing file

    @Test(arguments: ["measurement", "sidecar", "reference", "earlier report", "output"])
    func reportNeverReplacesAUserFile(_ target: String) throws {
        let d = CLI.tempDir()
        let y = try Hostile.measurement(in: d)
        try Data("{}".utf8).write(to: URL(fileURLWithPath: d + "/earlier.json"))
        let report = ["measurement": y, "sidecar": y + ".json", "reference": d + "/x.npy", "earlier report": d + "/earlier.json", "output": d + "/out.npy"][target]!
        try Hostile.expectRefused(["restore", y, "-o", d + "/out.npy", "--method", "cg", "--quiet", "--reference", d + "/x.npy", "--report", report],
                                  in: d, mentions: [URL(fileURLWithPath: report).lastPathComponent, "--report"])
        // --overwrite replaces an earlier report, but never an input or the output itself.
        let r = try CLI.run(["restore", y, "-o", d + "/out.npy", "--method", "cg", "--quiet", "--reference", d + "/x.npy", "--report", report, "--overwrite"])
        if target == "earlier report" {
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: report)).count > 100)
        } else {
            #expect(r.status == 64, "\(target) with --overwrite: exit \(r.status) (64: an option's problem): \(r.stderr)")
        }
    }

    @Test func restoreNeverWritesOverItsInputEvenWithOverwrite() throws {
        let d = CLI.tempDir()
        let y = try Hostile.measurement(in: d)
        try Hostile.expectRefused(["restore", y, "-o", y, "--method", "cg", "--quiet", "--overwrite"], in: d, mentions: ["y.npy", "input"])
        // The same file under another spelling (a hard link) is the same file.
        #expect(link(y, d + "/alias.npy") == 0)
        try Hostile.expectRefused(["restore", y, "-o", d + "/alias.npy", "--method", "cg", "--quiet", "--overwrite"], in: d, mentions: ["alias.npy", "input"])
    }

    @Test func degradeKeepsAnotherMeasurementsSidecar() throws {
        let d = CLI.tempDir()
        try NPY.write(CLI.clip(frames: 4, height: 16, width: 16), to: d + "/x.npy")
        try Data("{\"degradation\": \"someone else's\"}".utf8).write(to: URL(fileURLWithPath: d + "/y.npy.json"))
        try Hostile.expectRefused(["degrade", d + "/x.npy", "-o", d + "/y.npy", "--degradation", "temporal=uniform:3", "--quiet"],
                                  in: d, mentions: ["y.npy.json", "--overwrite"])
    }

    @Test func benchOutputNeedsOverwriteAndNeverNamesItsInput() throws {
        let d = CLI.tempDir()
        try NPY.write(randomTensor([1, 3, 32, 32], seed: 1), to: d + "/in.npy")
        try Data("mine".utf8).write(to: URL(fileURLWithPath: d + "/out.npy"))
        let base = ["bench", "unet", "--model", CLI.fixtures + "/adm-tiny/weights.safetensors", "--size", "32x32", "--repeats", "1", "--input", d + "/in.npy"]
        try Hostile.expectRefused(base + ["--output", d + "/out.npy"], in: d, mentions: ["out.npy", "--overwrite"])
        try Hostile.expectRefused(base + ["--output", d + "/in.npy", "--overwrite"], in: d, mentions: ["in.npy", "input"])
        let r = try CLI.run(base + ["--output", d + "/out.npy", "--overwrite"])
        #expect(r.status == 0, "\(r.stderr)")
        let shape = try NPY.readFloat32(d + "/out.npy").shape
        #expect(shape.count == 4 && shape[0] == 1 && shape[2...] == [32, 32], "\(shape)")
    }

    /// Swift would read the bytes as U+FFFD and write to a different, existing file.
    @Test func outputNameThatIsNotUTF8IsRefused() throws {
        let d = CLI.tempDir()
        let y = try Hostile.measurement(in: d)
        try Data("another file".utf8).write(to: URL(fileURLWithPath: d + "/bad\u{FFFD}.npy"))
        let before = Hostile.snapshot(d)
        let r = try Self.shell("\"$SVI\" restore y.npy -o \"$(printf 'bad\\377.npy')\" --method cg --quiet", in: d)
        Self.expectOneLine(r, status: 64, mentions: ["UTF-8"])
        #expect(Hostile.snapshot(d) == before)
    }

    @Test func overwritingALongerPNGSequenceReplacesItWhole() throws {
        let d = CLI.tempDir()
        let y = try Hostile.measurement(in: d)
        try FileManager.default.createDirectory(atPath: d + "/seq", withIntermediateDirectories: true)
        for i in 0..<12 { try Data("old run".utf8).write(to: URL(fileURLWithPath: d + String(format: "/seq/%03d.png", i))) }
        try Data("not a frame".utf8).write(to: URL(fileURLWithPath: d + "/seq/notes.txt"))
        let r = try CLI.run(["restore", y, "-o", d + "/seq/%03d.png", "--method", "cg", "--quiet", "--overwrite"])
        #expect(r.status == 0, "\(r.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: d + "/seq").sorted()
        #expect(files == (0..<8).map { String(format: "%03d.png", $0) } + ["notes.txt"], "\(files)")
    }

    // MARK: PNG sequences round-trip

    /// A measurement written as a PNG sequence restores exactly as the same 8-bit measurement in
    /// an FFV1 file (same pixels, same sidecar).
    @Test func pngSequenceMeasurementReadsBackLikeTheSameFramesInAVideoFile() throws {
        let d = CLI.tempDir()
        try NPY.write(CLI.clip(frames: 6, height: 16, width: 24), to: d + "/x.npy")
        try FileManager.default.createDirectory(atPath: d + "/y", withIntermediateDirectories: true)
        for out in [d + "/y/%03d.png", d + "/y.mkv"] {
            let r = try CLI.run(["degrade", d + "/x.npy", "-o", out, "--degradation", "temporal=uniform:3", "--quiet"])
            #expect(r.status == 0, "\(r.stderr)")
        }
        for (input, out) in [(d + "/y/%03d.png", d + "/a.npy"), (d + "/y.mkv", d + "/b.npy")] {
            let r = try CLI.run(["restore", input, "-o", out, "--method", "cg", "--quiet"])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let a = try NPY.readFloat32(d + "/a.npy"), b = try NPY.readFloat32(d + "/b.npy")
        #expect(a.shape == [6, 3, 16, 24])
        #expect(a.shape == b.shape && (0..<a.count).allSatisfy { a[$0] == b[$0] }, "PNG and FFV1 measurements restored differently")
        // A pattern with no frames is one line naming it.
        try Hostile.expectRefused(["restore", d + "/none/%03d.png", "-o", d + "/c.npy", "--method", "cg", "--quiet", "--degradation", "temporal=uniform:3"],
                                  in: d, mentions: ["%03d.png"])
    }

    // MARK: limits of the machine: one line, exit 1, nothing left behind

    @Test(arguments: [["synth", "-o", "big.npy", "--frames", "0:10000", "--size", "256x256"],
                      ["degrade", "v.mkv", "-o", "big.npy", "--degradation", "temporal=uniform:3", "--size", "20000x20000"]])
    func workLargerThanTheMemoryLimitIsRefusedBeforeAllocating(_ args: [String]) throws {
        let d = CLI.tempDir()
        var r = try CLI.run(["synth", "-o", d + "/v.npy", "--frames", "0:3", "--size", "16x16"])
        r = try CLI.run(["degrade", d + "/v.npy", "-o", d + "/v.mkv", "--degradation", "temporal=uniform:1", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let before = Hostile.snapshot(d)
        r = try Self.shell("ulimit -v 3000000 && exec \"$SVI\" " + args.joined(separator: " "), in: d)
        Self.expectOneLine(r, status: 71, mentions: ["GB", "ulimit -v"])
        #expect(Hostile.snapshot(d) == before)
    }

    @Test func fileSizeLimitIsOneLineAndLeavesNoPartialFile() throws {
        let d = CLI.tempDir()
        let r = try Self.shell("ulimit -f 10 && exec \"$SVI\" synth -o out.npy --frames 0:4 --size 64x64", in: d)
        Self.expectOneLine(r, status: 74, mentions: ["out.npy", "File too large"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: d).isEmpty)
    }

    /// What a killed run leaves (its temporary, named with host and pid) is removed by the next
    /// run of the same output; a live process's, or another host's, is kept.
    @Test func temporariesOfDeadProcessesAreRemovedByTheNextRun() throws {
        let d = CLI.tempDir()
        let dead = Process()
        dead.executableURL = URL(fileURLWithPath: "/bin/true")
        try dead.run(); dead.waitUntilExit()
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let me = String(cString: host).map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") ? String($0) : "_" }.joined()
        let stale = ".out.npy.partial-\(me)~\(dead.processIdentifier)~abc123"
        let live = ".out.npy.partial-\(me)~\(getpid())~def456"
        let remote = ".out.npy.partial-othernode~\(dead.processIdentifier)~ghi789"
        for n in [stale, live, remote] { try Data("partial".utf8).write(to: URL(fileURLWithPath: d + "/" + n)) }
        let r = try CLI.run(["synth", "-o", d + "/out.npy", "--frames", "0:2", "--size", "8x8"])
        #expect(r.status == 0, "\(r.stderr)")
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: d))
        #expect(files == [live, remote, "out.npy"], "\(files)")
    }

    // MARK: silent garbage

    @Test func aKeptFractionThatKeepsNothingIsRefused() throws {
        let d = CLI.tempDir()
        try NPY.write(CLI.clip(frames: 4, height: 16, width: 16), to: d + "/x.npy")
        try Hostile.expectRefused(["degrade", d + "/x.npy", "-o", d + "/y.npy", "--degradation", "inpaint=1e-300", "--quiet"], in: d, mentions: ["inpaint"])
    }

    @Test func standardOutputOnAFullDiskIsAnError() throws {
        let d = CLI.tempDir()
        try NPY.write(CLI.clip(frames: 4, height: 16, width: 16), to: d + "/x.npy")
        let r = try Self.shell("exec \"$SVI\" eval --json --reference x.npy --restored x.npy > /dev/full", in: d)
        Self.expectOneLine(r, status: 74, mentions: ["standard output"])
    }
}

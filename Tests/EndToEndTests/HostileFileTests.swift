import Testing
import Foundation
import SVICore
import SVIFormats
import SVITestSupport

/// Issue 17: files from strangers never crash svi, hang it, corrupt its memory or lose data.
/// Every example of the issue runs the real binary as a user would and must end in one
/// error line and exit 1 (or 64 for options), having written nothing and deleted nothing.
enum Hostile {
    /// Everything under `dir`: path → (size, modification time), to prove nothing changed.
    static func snapshot(_ dir: String) -> [String: String] {
        var out: [String: String] = [:]
        let fm = FileManager.default
        guard let e = fm.enumerator(atPath: dir) else { return out }
        for case let rel as String in e {
            let a = (try? fm.attributesOfItem(atPath: dir + "/" + rel)) ?? [:]
            out[rel] = "\(a[.size] ?? "-") \((a[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
        }
        return out
    }

    /// Runs svi under `timeout` (a hang fails the test instead of stalling the suite) and
    /// checks the refusal: the status of a bad input file (65), a bad option (64) or a file
    /// asking for more memory than there is (71) — never the untyped 1 —, one line on stderr
    /// naming `mentions`, no change to the files in `dir`.
    static func expectRefused(_ args: [String], in dir: String, mentions: [String], statuses: [Int32] = [64, 65, 71],
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = snapshot(dir)
        let r = try CLI.run(["60", CLI.binary] + args, executable: "/usr/bin/timeout")
        #expect(statuses.contains(r.status), "exit \(r.status) (124 = hung) for \(args): \(r.stderr)", sourceLocation: sourceLocation)
        let lines = r.stderr.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        #expect(lines.count == 1, "expected one error line for \(args), got: \(r.stderr)", sourceLocation: sourceLocation)
        for m in mentions { #expect(r.stderr.contains(m), "'\(m)' not in: \(r.stderr)", sourceLocation: sourceLocation) }
        #expect(snapshot(dir) == before, "files changed under \(dir) for \(args)", sourceLocation: sourceLocation)
    }

    static func write(_ d: Data, _ path: String) throws { try d.write(to: URL(fileURLWithPath: path)) }

    /// A small measurement (8 frames of 16×16, temporal=uniform:3) with its sidecar.
    static func measurement(in d: String) throws -> String {
        try NPY.write(CLI.clip(frames: 8, height: 16, width: 16), to: d + "/x.npy")
        let r = try CLI.run(["degrade", d + "/x.npy", "-o", d + "/y.npy", "--degradation", "temporal=uniform:3", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        return d + "/y.npy"
    }
}

@Suite struct HostileCheckpointTests {
    @Test func safetensorsWhoseByteCountWraps() throws {
        let d = CLI.tempDir(), f = d + "/wrap.safetensors"
        // F64 × (2⁶²+1) elements: 8 · (2⁶²+1) wraps to 8, matching data_offsets [0, 8].
        try Hostile.write(Crafted.safetensors(header: #"{"w":{"dtype":"F64","shape":[4611686018427387905],"data_offsets":[0,8]}}"#,
                                              data: [UInt8](repeating: 0x41, count: 8)), f)
        try Hostile.expectRefused(["model", "info", f], in: d, mentions: [f, "'w'"])
    }

    @Test(arguments: [UInt64(0x7fff_ffff_ffff_fff8), UInt64.max, UInt64(1) << 40])
    func safetensorsHeaderLengthNear2To63(_ length: UInt64) throws {
        let d = CLI.tempDir(), f = d + "/long.safetensors"
        try Hostile.write(Crafted.safetensors(header: "{}", data: [], lengthOverride: length), f)
        try Hostile.expectRefused(["model", "info", f], in: d, mentions: [f, "header"])
    }

    @Test(arguments: [[Int64(-1) << 40, Int64(1) << 40], [-2, 1], [Int64.max, 1]])
    func torchTensorWithHostileStrides(_ stride: [Int64]) throws {
        let d = CLI.tempDir(), f = d + "/stride.pt"
        let pickle = Crafted.stateDictPickle(numel: 4, offset: 2, size: [2, 2], stride: stride)
        try Hostile.write(Crafted.torchCheckpoint(pickle: pickle, storage: [UInt8](repeating: 0, count: 16)), f)
        try Hostile.expectRefused(["model", "info", f], in: d, mentions: [f, "stride"])
    }

    @Test(arguments: [[Int64(1) << 62, 4], [-1, 4], [Int64(1) << 31, Int64(1) << 31]])
    func torchTensorWithHostileSizes(_ size: [Int64]) throws {
        let d = CLI.tempDir(), f = d + "/size.pt"
        let pickle = Crafted.stateDictPickle(numel: 4, offset: 0, size: size, stride: [1, 1])
        try Hostile.write(Crafted.torchCheckpoint(pickle: pickle, storage: [UInt8](repeating: 0, count: 16)), f)
        try Hostile.expectRefused(["model", "info", f], in: d, mentions: [f])
    }

    @Test(arguments: [UInt64(0x7fff_ffff_ffff_fff0), UInt64.max, UInt64(1) << 63])
    func zip64SizesNear2To63(_ size: UInt64) throws {
        let d = CLI.tempDir(), f = d + "/zip64.pt"
        let pickle = Crafted.stateDictPickle(numel: 4, offset: 0, size: [4], stride: [1])
        try Hostile.write(Crafted.torchCheckpoint(pickle: pickle, storage: [UInt8](repeating: 0, count: 16), storageZip64Size: size), f)
        try Hostile.expectRefused(["model", "info", f], in: d, mentions: [f, "zip"])
    }

    @Test(arguments: ["NaN", "Infinity"])
    func nonFiniteWeightsAreRefusedNamingTheTensor(_ value: String) throws {
        let d = CLI.tempDir(), f = d + "/nan.safetensors"
        var ck = try Checkpoint.load(CLI.fixtures + "/adm-tiny/weights.safetensors")
        let t = ck.tensors["out.2.bias"]!
        t[1] = value == "NaN" ? .nan : .infinity
        try SafeTensors.write(ck.tensors, to: f)
        ck.tensors = [:]
        try Hostile.expectRefused(["model", "info", f], in: d, mentions: [f, "out.2.bias", "NaN or infinite"])
        let y = try Hostile.measurement(in: d)
        try Hostile.expectRefused(["restore", y, "-o", d + "/out.npy", "--model", f, "--nfe", "2", "--quiet"], in: d, mentions: ["out.2.bias"])
    }

    /// Each hostile model option beside a checkpoint (svi reads `config.json` there by itself).
    @Test(arguments: [
        (#"{"num_heads": 0}"#, "num_heads"), (#"{"num_heads": -3}"#, "num_heads"), (#"{"num_head_channels": -5}"#, "num_head_channels"),
        (#"{"channel_mult": "nan"}"#, "channel_mult"), (#"{"channel_mult": "-1"}"#, "channel_mult"), (#"{"channel_mult": "1,inf"}"#, "channel_mult"),
        (#"{"in_channels": -3}"#, "in_channels"), (#"{"num_channels": 1000000000}"#, "num_channels"),
        (#"{"num_channels": 4096, "channel_mult": "64,64"}"#, "channel_mult"), (#"{"num_res_blocks": -1}"#, "empty network"),
        (#"{"num_channels": 33}"#, "num_channels"), (#"{"image_size": -32}"#, "image_size"),
    ])
    func hostileModelOptions(_ json: String, _ field: String) throws {
        let d = CLI.tempDir()
        try FileManager.default.copyItem(atPath: CLI.fixtures + "/adm-tiny/weights.safetensors", toPath: d + "/weights.safetensors")
        let base = #"{"image_size": 32, "num_channels": 32, "num_res_blocks": 1, "channel_mult": "1,2", "learn_sigma": true, "attention_resolutions": "16", "num_head_channels": 16, "resblock_updown": true, "use_scale_shift_norm": true}"#
        var obj = try JSONSerialization.jsonObject(with: Data(base.utf8)) as! [String: Any]
        for (k, v) in try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any] { obj[k] = v }
        if obj["num_heads"] != nil && json.contains("num_heads\"") { obj["num_head_channels"] = -1 }
        try JSONSerialization.data(withJSONObject: obj).write(to: URL(fileURLWithPath: d + "/config.json"))
        try Hostile.expectRefused(["model", "info", d + "/weights.safetensors"], in: d, mentions: [field])
    }
}

@Suite struct HostileInputTests {
    @Test(arguments: ["(4, 1, 1073741824, 1073741824)", "(-1, 3, 4, 4)", "(99999999999999999999, 3)", "(4, 3, 4, 4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)"])
    func npyShapeThatWrapsOrLies(_ shape: String) throws {
        let d = CLI.tempDir(), f = d + "/x.npy"
        try Hostile.write(Crafted.npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }", payload: [UInt8](repeating: 0, count: 64)), f)
        try Hostile.expectRefused(["restore", f, "-o", d + "/out.npy", "--degradation", "temporal=uniform:3", "--method", "cg", "--quiet"], in: d, mentions: [f])
    }

    /// A sparse file as long as its header claims (240 GB) but holding nothing: refused
    /// before the allocation, by the memory it would take.
    @Test func npyLargerThanMemoryIsRefusedBeforeAllocating() throws {
        let d = CLI.tempDir(), f = d + "/sparse.npy"
        let shape = [1190, 3, 4096, 4096]
        try Hostile.write(Crafted.npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (1190, 3, 4096, 4096), }", payload: []), f)
        let headerBytes = (try FileManager.default.attributesOfItem(atPath: f)[.size] as? Int) ?? 0
        guard truncate(f, off_t(headerBytes + shape.reduce(1, *) * 4)) == 0, ProcessInfo.processInfo.physicalMemory < 200_000_000_000 else { return }
        try Hostile.expectRefused(["restore", f, "-o", d + "/out.npy", "--degradation", "temporal=uniform:3", "--method", "cg", "--quiet"], in: d, mentions: [f, "GB"])
    }

    /// The old reader found keys by substring search: a key hidden in a string fooled it.
    @Test func npyHeaderIsParsedNotSearched() throws {
        let d = CLI.tempDir(), f = d + "/x.npy"
        try Hostile.write(Crafted.npy(header: "{'descr': '<f4', 'fortran_order': False, 'note': \"'shape': (1,)\", 'shape': (1000000, 3, 64, 64), }",
                                      payload: [UInt8](repeating: 0, count: 64)), f)
        try Hostile.expectRefused(["restore", f, "-o", d + "/out.npy", "--degradation", "temporal=uniform:3", "--method", "cg", "--quiet"], in: d, mentions: [f, "note"])
    }

    @Test(arguments: [Float.nan, Float.infinity, -Float.infinity])
    func nonFiniteMeasurementIsRefused(_ v: Float) throws {
        let d = CLI.tempDir()
        let y = try Hostile.measurement(in: d)
        let t = try NPY.readFloat32(y)
        t[37] = v
        try NPY.write(t, to: y)
        try Hostile.expectRefused(["restore", y, "-o", d + "/out.npy", "--method", "cg", "--quiet"], in: d, mentions: [y, "NaN or infinite"])
    }

    /// Two H.264 streams of different sizes spliced into one file, both ways round.
    @Test(arguments: [("64x48", "32x32"), ("32x32", "64x48")])
    func videoWhoseResolutionChangesMidStream(_ sizes: (String, String)) throws {
        let d = CLI.tempDir()
        for (name, size) in [("a", sizes.0), ("b", sizes.1)] {
            let r = try CLI.run(["-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=\(size):rate=25:duration=0.4", "-c:v", "libx264",
                                 "-pix_fmt", "yuv420p", "-f", "h264", d + "/\(name).h264"], executable: "/usr/bin/ffmpeg")
            #expect(r.status == 0, "\(r.stderr)")
        }
        var spliced = try Data(contentsOf: URL(fileURLWithPath: d + "/a.h264"))
        spliced.append(try Data(contentsOf: URL(fileURLWithPath: d + "/b.h264")))
        try Hostile.write(spliced, d + "/spliced.h264")
        try Hostile.expectRefused(["degrade", d + "/spliced.h264", "-o", d + "/y.npy", "--degradation", "temporal=uniform:3", "--quiet"],
                                  in: d, mentions: ["spliced.h264", "frame size changes"])
        // With --size every frame is scaled to one size, which is what the message suggests.
        let r = try CLI.run(["degrade", d + "/spliced.h264", "-o", d + "/y.npy", "--degradation", "temporal=uniform:3", "--size", "32x32", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test(arguments: ["temporal=uniform:999999999", "temporal=gaussian:1e9", "blur=1e9", "blur=1e300", "sr=100000", "noise=1e300",
                      "temporal=uniform:3,inpaint=nan", String(repeating: "blur=1,", count: 400) + "sr=2"])
    func absurdDegradationSpecs(_ spec: String) throws {
        let d = CLI.tempDir()
        try NPY.write(CLI.clip(frames: 4, height: 16, width: 16), to: d + "/x.npy")
        try Hostile.expectRefused(["degrade", d + "/x.npy", "-o", d + "/y.npy", "--degradation", spec, "--quiet"], in: d, mentions: ["degradation spec"])
    }

    @Test func absurdSpecInASidecar() throws {
        let d = CLI.tempDir()
        let y = try Hostile.measurement(in: d)
        var side = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: y + ".json"))) as! [String: Any]
        side["degradation"] = "temporal=uniform:3,blur=1e300"
        try JSONSerialization.data(withJSONObject: side).write(to: URL(fileURLWithPath: y + ".json"))
        try Hostile.expectRefused(["restore", y, "-o", d + "/out.npy", "--method", "cg", "--quiet"], in: d, mentions: [y + ".json", "degradation"])
    }

    @Test(arguments: [["--tv-iterations=-5"], ["--tv-iterations", "0"], ["--tv-rho", "nan"], ["--tv-lambda=-1"], ["--crf", "99"], ["--batch", "0"], ["--threads", "0"]])
    func absurdOptions(_ extra: [String]) throws {
        let d = CLI.tempDir()
        let y = try Hostile.measurement(in: d)
        try Hostile.expectRefused(["restore", y, "-o", d + "/out.npy", "--method", "admm-tv", "--quiet"] + extra, in: d, mentions: [extra[0].split(separator: "=")[0].description])
    }

    /// Sizes and ranges on the command line that would overflow or exhaust memory.
    @Test(arguments: [["synth", "--frames", "0:1000000000", "--size", "16x16"], ["synth", "--size", "100000x100000"],
                      ["bench", "unet", "--size", "99999x99999"], ["bench", "unet", "--repeats", "0"],
                      ["degrade", "IN", "--degradation", "temporal=uniform:3", "--crop", "8x8+99999999999999999999+0"],
                      ["degrade", "IN", "--degradation", "temporal=uniform:3", "--size", "0x16"]])
    func absurdSizesOnTheCommandLine(_ args: [String]) throws {
        let d = CLI.tempDir()
        let r = try CLI.run(["synth", "-o", d + "/in.mkv", "--size", "16x16", "--frames", "0:2"])
        #expect(r.status == 0, "\(r.stderr)")
        let output = args[0] == "bench" ? [] : ["-o", d + "/out.npy"]
        let option = args.last { $0.hasPrefix("--") }!
        try Hostile.expectRefused(args.map { $0 == "IN" ? d + "/in.mkv" : $0 } + output, in: d, mentions: [args[0] == "synth" && option == "--frames" ? "GB" : option])
    }

    /// A sidecar whose `source` is a FIFO: opening it for its audio would block forever.
    @Test func sidecarSourceThatIsAFIFO() throws {
        let d = CLI.tempDir()
        let y = try Hostile.measurement(in: d)
        #expect(mkfifo(d + "/fifo.mp4", 0o600) == 0)
        var side = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: y + ".json"))) as! [String: Any]
        side["source"] = d + "/fifo.mp4"; side["fps_num"] = 25; side["fps_den"] = 1
        try JSONSerialization.data(withJSONObject: side).write(to: URL(fileURLWithPath: y + ".json"))
        try Hostile.expectRefused(["restore", y, "-o", d + "/out.mkv", "--method", "cg", "--quiet"], in: d, mentions: ["fifo.mp4", "not a regular file"])
        // The measurement itself as a FIFO: refused, not waited on.
        #expect(mkfifo(d + "/m.npy", 0o600) == 0)
        try Hostile.expectRefused(["restore", d + "/m.npy", "-o", d + "/out2.npy", "--degradation", "temporal=uniform:3", "--method", "cg", "--quiet"],
                                  in: d, mentions: ["m.npy", "not a regular file"])
    }
}

@Suite struct HostileOutputTests {
    @Test(arguments: ["%s.png", "%n.png", "%x%d.png", "%05d-%d.png", "%5d.png", "%010d.png", "%%d.png", "%@.png", "frame.png"])
    func pngPatternsOtherThanAFrameNumber(_ pattern: String) throws {
        let d = CLI.tempDir()
        let y = try Hostile.measurement(in: d)
        try Hostile.expectRefused(["restore", y, "-o", d + "/" + pattern, "--method", "cg", "--quiet"], in: d, mentions: [])
    }

    @Test func pngSequenceKeepsExistingFramesWithoutOverwrite() throws {
        let d = CLI.tempDir()
        let y = try Hostile.measurement(in: d)
        try FileManager.default.createDirectory(atPath: d + "/seq", withIntermediateDirectories: true)
        try Data("the user's frame".utf8).write(to: URL(fileURLWithPath: d + "/seq/00003.png"))
        try Hostile.expectRefused(["restore", y, "-o", d + "/seq/%05d.png", "--method", "cg", "--quiet"], in: d, mentions: ["00003.png", "--overwrite"])
        // With --overwrite the sequence is written whole and nothing hidden is left behind.
        let r = try CLI.run(["restore", y, "-o", d + "/seq/%05d.png", "--method", "cg", "--quiet", "--overwrite"])
        #expect(r.status == 0, "\(r.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: d + "/seq").sorted()
        #expect(files == (0..<8).map { String(format: "%05d.png", $0) }, "\(files)")
    }

    @Test func temporaryNamesAreUnpredictableAndExclusive() throws {
        let d = CLI.tempDir()
        let (a, fa) = try TemporaryName.file(for: d + "/out.npy")
        let (b, fb) = try TemporaryName.file(for: d + "/out.npy")
        close(fa); close(fb)
        #expect(a != b)
        #expect(!URL(fileURLWithPath: a).lastPathComponent.hasSuffix("partial-\(getpid())"))
        // A symlink planted at the old, pid-based name is never written through.
        let victim = d + "/victim.txt"
        try Data("precious".utf8).write(to: URL(fileURLWithPath: victim))
        let y = try Hostile.measurement(in: d)
        symlink(victim, d + "/.out.npy.partial-\(getpid())")
        let r = try CLI.run(["restore", y, "-o", d + "/out.npy", "--method", "cg", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious")
    }
}

/// Checkpoint folders: tampered state, fallback to the older valid snapshot, pruning that
/// touches only what svi made.
@Suite(.serialized) struct HostileResumeTests {
    static let common = ["--prior", "gaussian", "--nfe", "4", "--seed", "3", "--checkpoint-every", "1", "--quiet"]

    /// Steps 1 and 2 checkpointed, then an injected failure before step 3.
    func interrupted(_ d: String, _ y: String) throws {
        let r = try CLI.run(["restore", y, "-o", d + "/out.npy", "--checkpoint-dir", d + "/ck", "--fail-on-rank", "0", "--fail-at-step", "3"] + Self.common)
        #expect(r.status != 0)
        #expect(FileManager.default.fileExists(atPath: d + "/ck/step-000002/state.json"))
    }

    func tamper(_ file: String, _ key: String, _ value: Any) throws {
        var obj = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as! [String: Any]
        obj[key] = value
        try JSONSerialization.data(withJSONObject: obj).write(to: URL(fileURLWithPath: file))
    }

    @Test(arguments: [("steps_done", "-1"), ("steps_done", "99"), ("nfe", "0"), ("measurement_shape", "[-1, 3, 16, 16]"), ("eta", "\"nan\""),
                      ("state_hash", "\"../../etc\"")])
    func tamperedStateAloneIsRefused(_ change: (String, String)) throws {
        let d = CLI.tempDir()
        let y = try Hostile.measurement(in: d)
        try interrupted(d, y)
        try FileManager.default.removeItem(atPath: d + "/ck/step-000001")
        try tamper(d + "/ck/step-000002/state.json", change.0, try JSONSerialization.jsonObject(with: Data(change.1.utf8), options: .fragmentsAllowed))
        try Hostile.expectRefused(["restore", y, "-o", d + "/out.npy", "--checkpoint-dir", d + "/ck"] + Self.common, in: d, mentions: ["damaged"])
    }

    @Test func tamperedStateUnderMPIIsRefusedOnEveryRank() throws {
        let d = CLI.tempDir()
        let y = try Hostile.measurement(in: d)
        try interrupted(d, y)
        try FileManager.default.removeItem(atPath: d + "/ck/step-000001")
        try tamper(d + "/ck/step-000002/state.json", "steps_done", -1)
        let before = Hostile.snapshot(d)
        let r = try MPI.run(ranks: 2, ["restore", y, "-o", d + "/out.npy", "--checkpoint-dir", d + "/ck"] + Self.common, timeout: 120)
        #expect(r.status != 0 && r.status != 15, "exit \(r.status): \(r.stderr)")
        let errorLines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }
        #expect(errorLines.count == 1 && errorLines[0].contains("damaged"), "expected one error line, got: \(r.stderr)")
        #expect(Hostile.snapshot(d) == before, "files changed under \(d)")
    }

    /// A newer damaged snapshot: the run falls back to the older one and finishes with the
    /// uninterrupted run's result, bit for bit.
    @Test(arguments: ["state", "data"])
    func damagedNewestSnapshotFallsBackToTheOlder(_ what: String) throws {
        let d = CLI.tempDir()
        let y = try Hostile.measurement(in: d)
        var r = try CLI.run(["restore", y, "-o", d + "/ref.npy"] + Self.common)
        #expect(r.status == 0, "\(r.stderr)")
        try interrupted(d, y)
        if what == "state" {
            try tamper(d + "/ck/step-000002/state.json", "steps_done", -1)
        } else {
            let x = try NPY.readFloat32(d + "/ck/step-000002/x.npy")
            x[5] += 1
            try NPY.write(x, to: d + "/ck/step-000002/x.npy")
        }
        r = try CLI.run(["restore", y, "-o", d + "/out.npy", "--checkpoint-dir", d + "/ck"] + Self.common.dropLast())
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("skipping a damaged checkpoint"), "\(r.stderr)")
        #expect(r.stderr.contains("step-000001"), "\(r.stderr)")
        #expect(try NPY.readFloat32(d + "/out.npy").array == NPY.readFloat32(d + "/ref.npy").array)
    }

    @Test func pruningRemovesOnlyWhatSviMade() throws {
        let d = CLI.tempDir()
        let y = try Hostile.measurement(in: d)
        try FileManager.default.createDirectory(atPath: d + "/ck/step-00-draft", withIntermediateDirectories: true)
        try Data("mine".utf8).write(to: URL(fileURLWithPath: d + "/ck/step-00-draft/notes.txt"))
        try Data("mine".utf8).write(to: URL(fileURLWithPath: d + "/ck/step-0-notes.txt"))
        // A folder with a snapshot's name that svi did not make (no marker) is never deleted.
        try FileManager.default.createDirectory(atPath: d + "/ck/step-000000", withIntermediateDirectories: true)
        try Data("mine".utf8).write(to: URL(fileURLWithPath: d + "/ck/step-000000/keep.txt"))
        let r = try CLI.run(["restore", y, "-o", d + "/out.npy", "--checkpoint-dir", d + "/ck"] + Self.common)
        #expect(r.status == 0, "\(r.stderr)")
        let left = try FileManager.default.contentsOfDirectory(atPath: d + "/ck").sorted()
        #expect(left == ["step-0-notes.txt", "step-00-draft", "step-000000", "step-000002", "step-000003"], "\(left)")
        #expect(FileManager.default.fileExists(atPath: d + "/ck/step-00-draft/notes.txt"))
        #expect(FileManager.default.fileExists(atPath: d + "/ck/step-000000/keep.txt"))
    }

    /// A model that overflows (finite weights × 10³⁰): the step it happens is named and no
    /// output or checkpoint of it is written.
    @Test func nonFiniteValuesDuringSamplingStopTheJob() throws {
        let d = CLI.tempDir()
        let y = try Hostile.measurement(in: d)
        let ck = try Checkpoint.load(CLI.fixtures + "/adm-tiny/weights.safetensors")
        for (_, t) in ck.tensors { for i in 0..<t.count { t[i] *= 1e30 } }
        try SafeTensors.write(ck.tensors, to: d + "/huge.safetensors")
        try Hostile.expectRefused(["restore", y, "-o", d + "/out.npy", "--model", d + "/huge.safetensors", "--nfe", "3", "--quiet"],
                                  in: d, mentions: ["step 1", "NaN or infinite"], statuses: [70])
    }
}


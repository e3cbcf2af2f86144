import Testing
import Foundation
import SVICore
import SVIFormats
import SVITestSupport

/// Issue 16: the network on overlapping tiles, end to end.
@Suite(.serialized) struct TiledRestoreTests {
    static var model: String { CLI.fixtures + "/adm-tiny/weights.safetensors" }

    func report(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    }

    /// Tiles on (16×16, overlap 4, on 24×40 frames: 2×3 tiles each): the same bits at --batch
    /// 1 and 3 and at 1 and 2 ranks, and a report that says so.
    @Test func tiledRestoreIsBitIdenticalAcrossBatchesAndRanks() throws {
        let d = CLI.tempDir()
        try NPY.write(CLI.clip(frames: 6, height: 24, width: 40), to: d + "/x.npy")
        var r = try CLI.run(["degrade", d + "/x.npy", "-o", d + "/y.npy", "--degradation", "temporal=uniform:3,sr=2", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        // From noise: the random-weight fixture would fail the prior's test on a warm start,
        // and every run would return the same ADMM-TV estimate, tiles or not.
        let common = ["restore", d + "/y.npy", "--model", Self.model, "--nfe", "3", "--init", "noise", "--seed", "5", "--tile", "16", "--tile-overlap", "4", "--quiet"]
        for b in ["1", "3"] {
            r = try CLI.run(common + ["-o", d + "/b\(b).npy", "--batch", b, "--report", d + "/b\(b).json"])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let mpi = try MPI.run(ranks: 2, common + ["-o", d + "/mpi.npy"])
        #expect(mpi.status == 0, "\(mpi.stderr)")
        let b1 = try NPY.readFloat32(d + "/b1.npy").array
        #expect(try NPY.readFloat32(d + "/b3.npy").array == b1)
        #expect(try NPY.readFloat32(d + "/mpi.npy").array == b1)
        let tiles = try report(d + "/b1.json")["tiles"] as? [String: Any]
        #expect(tiles?["tile"] as? Int == 16 && tiles?["overlap"] as? Int == 4, "\(String(describing: tiles))")
        // Whole frames give another (valid) result: the tiles are really used.
        r = try CLI.run(common.filter { $0 != "16" && $0 != "4" && $0 != "--tile" && $0 != "--tile-overlap" } + ["-o", d + "/whole.npy", "--tile", "0", "--report", d + "/whole.json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try NPY.readFloat32(d + "/whole.npy").array != b1)
        #expect(try report(d + "/whole.json")["tiles"] == nil)
    }

    /// A tile as large as the frame is the whole-frame restoration, bit for bit.
    @Test func oneTilePerFrameIsTheWholeFrameRestoration() throws {
        let d = CLI.tempDir()
        try NPY.write(CLI.clip(frames: 4, height: 16, width: 16), to: d + "/x.npy")
        var r = try CLI.run(["degrade", d + "/x.npy", "-o", d + "/y.npy", "--degradation", "temporal=uniform:3", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        for (name, tile) in [("whole", "0"), ("tiled", "32")] {
            r = try CLI.run(["restore", d + "/y.npy", "-o", d + "/\(name).npy", "--model", Self.model, "--nfe", "2", "--seed", "1", "--tile", tile, "--quiet"])
            #expect(r.status == 0, "\(r.stderr)")
        }
        #expect(try NPY.readFloat32(d + "/whole.npy").array == NPY.readFloat32(d + "/tiled.npy").array)
    }

    @Test(arguments: [["--tile", "4"], ["--tile", "64", "--tile-overlap", "40"], ["--tile-overlap=-1"], ["--tile", "100000"]])
    func tileOptionsOutOfRangeAreRefused(_ extra: [String]) throws {
        let d = CLI.tempDir()
        let y = try Hostile.measurement(in: d)
        try Hostile.expectRefused(["restore", y, "-o", d + "/out.npy", "--model", Self.model, "--quiet"] + extra, in: d, mentions: ["--tile"])
    }

    /// A real 1280×720 clip (Big Buck Bunny, 2 frames, one step) from video file to video file with the
    /// embedded prior: tiles turn on by themselves (whole 720p frames would take more than
    /// the activation budget), and the output is a 1280×720 video with the source's audio.
    @Test func bigBuckBunny720pRestoresWithTiles() throws {
        let d = CLI.tempDir()
        let src = Samples.path("bigbuckbunny.mp4")
        var r = try CLI.run(["degrade", src, "--frames", "30:32", "-o", d + "/y.mkv", "--degradation", "temporal=uniform:3", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try CLI.run(["restore", d + "/y.mkv", "-o", d + "/out.mp4", "--nfe", "1", "--init", "noise", "--seed", "3", "--report", d + "/r.json", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let rep = try report(d + "/r.json")
        let tiles = rep["tiles"] as? [String: Any]
        #expect(tiles?["tile"] as? Int == 256, "\(String(describing: tiles))")
        #expect((tiles?["reason"] as? String)?.contains("automatic") == true)
        let probe = try CLI.run(["-v", "error", "-show_entries", "stream=codec_type,width,height", "-of", "csv=p=0", d + "/out.mp4"], executable: "/usr/bin/ffprobe")
        #expect(probe.stdout.contains("video,1280,720"), "\(probe.stdout)")
        #expect(probe.stdout.contains("audio"), "\(probe.stdout)")
    }
}

import Testing
import Foundation
import SVICore
import SVIFormats
@testable import SVIMedia
import SVITestSupport

/// Encodes every frame of `v` into `path` with `codec`.
func write(_ v: Tensor, to path: String, codec: VideoCodec, fpsNum: Int32, fpsDen: Int32) throws {
    let w = try VideoWriter(path: path, codec: codec, width: v.shape[3], height: v.shape[2], fpsNum: fpsNum, fpsDen: fpsDen, overwrite: false)
    for f in 0..<v.frames { try w.append(v.frame(f)) }
    try w.finish()
}

func tempDir() -> String {
    let d = NSTemporaryDirectory() + "svi-media-\(getpid())-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

/// Decoding and encoding real footage through FFmpeg's libraries.
@Suite struct MediaTests {
    /// Issue 15: `--frames a:b` seeks to the keyframe before a instead of decoding from the
    /// start; the frames it returns are exactly those sequential decoding gives, and the
    /// counting pass agrees with the frames decoded.
    @Test(arguments: [("bikes.mp4", 173), ("bigbuckbunny.mp4", 101), ("carphone_pristine.mp4", 57)])
    func seekingToAFrameGivesTheFramesOfSequentialDecoding(_ c: (String, Int)) throws {
        let path = Samples.path(c.0), a = c.1
        let size = (width: 32, height: 18)
        let (seq, _) = try VideoReader.read(path, selection: FrameSelection(range: 0..<(a + 3), size: size))
        let stream = try VideoStream(path: path, selection: FrameSelection(range: a..<(a + 3), size: size))
        for k in 0..<3 {
            let f = try #require(try stream.next())
            #expect(Array(UnsafeBufferPointer(start: f.data, count: f.count)) == Array(UnsafeBufferPointer(start: seq.frame(a + k), count: seq.frameSize)),
                    "frame \(a + k) of \(c.0) differs after seeking")
        }
        #expect(try stream.next() == nil)
        let all = try VideoStream(path: path, selection: FrameSelection(size: size)).countRemaining()
        let probe = try VideoStream.probe(path)
        #expect(all == probe.frames, "\(c.0): counted \(all), the container says \(probe.frames)")
    }

    @Test func decodesFrameRangeSizeAndCrop() throws {
        let (v, info) = try VideoReader.read(Samples.path("bikes.mp4"), selection: FrameSelection(range: 3..<8))
        #expect(v.shape == [5, 3, 272, 640])
        #expect(info.fpsNum == 25 && info.fpsDen == 1)
        #expect(abs(info.startSeconds - 3.0 / 25) < 1e-6)
        #expect(v.array.allSatisfy { $0 >= 0 && $0 <= 1 })
        let (c, _) = try VideoReader.read(Samples.path("bikes.mp4"), selection: FrameSelection(range: 0..<2, crop: (320, 200, 100, 40), size: (160, 100)))
        #expect(c.shape == [2, 3, 100, 160])
        let (o, _) = try VideoReader.read(Samples.path("carphone_pristine.mp4"), selection: FrameSelection(range: 0..<2, crop: (64, 32, 10, 20)))
        let (full, _) = try VideoReader.read(Samples.path("carphone_pristine.mp4"), selection: FrameSelection(range: 0..<2))
        // The crop is exactly the window of the full frame.
        #expect(o[0] == full[20 * 176 + 10] && o[31 * 64 + 63] == full[51 * 176 + 73])
    }

    /// Decode → FFV1 → decode is bit-exact for 8-bit content.
    @Test func ffv1RoundTripIsBitExact() throws {
        let d = tempDir()
        let (v, info) = try VideoReader.read(Samples.path("carphone_pristine.mp4"), selection: FrameSelection(range: 0..<6))
        try write(v, to: d + "/c.mkv", codec: .ffv1, fpsNum: info.fpsNum, fpsDen: info.fpsDen)
        let (back, binfo) = try VideoReader.read(d + "/c.mkv")
        #expect(back.shape == v.shape)
        let same = back.array == v.array
        #expect(same)
        #expect(binfo.fpsNum == info.fpsNum && binfo.fpsDen == info.fpsDen)
        #expect(try FileManager.default.contentsOfDirectory(atPath: d) == ["c.mkv"])
    }

    /// FFV1 16-bit keeps 16 bits: float → 16-bit → float within half a 16-bit step.
    @Test func ffv1SixteenBitKeepsPrecision() throws {
        let d = tempDir()
        let v = Tensor(shape: [2, 3, 8, 10])
        for i in 0..<v.count { v[i] = Float((i * 7919) % 1000) / 999 }
        try write(v, to: d + "/deep.mkv", codec: .ffv1_16, fpsNum: 30, fpsDen: 1)
        let (back, _) = try VideoReader.read(d + "/deep.mkv")
        var worst: Float = 0
        for i in 0..<v.count { worst = max(worst, abs(back[i] - v[i])) }
        #expect(worst <= 0.5 / 65535 + 1e-7)
    }

    @Test func pngSequence() throws {
        let d = tempDir()
        let (v, info) = try VideoReader.read(Samples.path("carphone_pristine.mp4"), selection: FrameSelection(range: 0..<3))
        try write(v, to: d + "/%05d.png", codec: .png, fpsNum: info.fpsNum, fpsDen: info.fpsDen)
        #expect(try FileManager.default.contentsOfDirectory(atPath: d).sorted() == ["00000.png", "00001.png", "00002.png"])
        let (back, _) = try VideoReader.read(d + "/00001.png")
        let same = Array(back.array) == Array(v.array[(3 * 176 * 144)..<(6 * 176 * 144)])
        #expect(same)
    }

    @Test func damagedAndWrongFilesAreClearErrors() throws {
        let d = tempDir()
        let cut = d + "/cut.mp4"
        try Data(try Data(contentsOf: URL(fileURLWithPath: Samples.path("bikes.mp4"))).prefix(100_000)).write(to: URL(fileURLWithPath: cut))
        #expect(throws: SVIError.self) { try VideoReader.read(cut) }
        let text = d + "/text.mp4"
        try Data("not a video at all".utf8).write(to: URL(fileURLWithPath: text))
        let e = #expect(throws: SVIError.self) { try VideoReader.read(text) }
        #expect(e?.message.hasPrefix(text) == true)
        let r = #expect(throws: SVIError.self) { try VideoReader.read(Samples.path("bikes.mp4"), selection: FrameSelection(range: 240..<260)) }
        #expect(r?.message.contains("beyond the end (the video has 250 frames)") == true)
        #expect(throws: SVIError.self) { try VideoReader.read(d + "/missing.mp4") }
        #expect(throws: SVIError.self) { try VideoWriter(path: d + "/odd.mp4", codec: .h264, width: 17, height: 10, fpsNum: 25, fpsDen: 1, overwrite: false) }
    }

    @Test func optionParsing() {
        #expect(FrameSelection.parseRange("0:12") == 0..<12)
        #expect(FrameSelection.parseRange("5:") == 5..<Int.max)
        #expect(FrameSelection.parseRange("7:3") == nil)
        #expect(FrameSelection.parseSize("640x272")! == (640, 272))
        #expect(FrameSelection.parseCrop("64x32+10+20")! == (64, 32, 10, 20))
        #expect(FrameSelection.parseCrop("64x32") == nil)
    }
}

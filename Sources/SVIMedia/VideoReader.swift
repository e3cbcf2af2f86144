import Foundation
import CFFmpeg
import SVICore
import SVIFormats

/// Decodes any file FFmpeg reads into RGB float frames [T][3][H][W] in [0,1] (a whole clip in
/// memory: for short clips — `degrade`, `eval`, `compare`; `restore` streams with
/// `VideoStream`).
public enum VideoReader {
    /// `decoded(n)` is called after each selected frame (for progress displays).
    public static func read(_ path: String, selection: FrameSelection = FrameSelection(),
                            warn: (String) -> Void = { _ in }, decoded: (Int) -> Void = { _ in }) throws -> (Tensor, VideoInfo) {
        try withoutActuallyEscaping(warn) { warn in
            try readAll(path, selection: selection, warn: warn, decoded: decoded)
        }
    }

    private static func readAll(_ path: String, selection: FrameSelection, warn: @escaping (String) -> Void,
                                decoded: (Int) -> Void) throws -> (Tensor, VideoInfo) {
        let stream = try VideoStream(path: path, selection: selection, warn: warn)
        var frames: [Tensor] = []
        while let f = try stream.next() {
            frames.append(f)
            decoded(frames.count)
        }
        try stream.checkEnd(delivered: frames.count)
        let first = frames[0]
        let video = Tensor(shape: [frames.count] + Array(first.shape.dropFirst()), zeroed: false)
        for (i, f) in frames.enumerated() { video.frame(i).update(from: f.data, count: f.count) }
        return (video, stream.info(frames: frames.count))
    }
}

/// Decodes a video file frame by frame (issue 15: footage of any length is never whole in
/// memory). Frames `selection.range` are returned in order, cropped and scaled; a range that
/// starts later than frame 0 is reached by seeking to the keyframe before it when the frame
/// rate is constant (frame index = presentation time × rate), else by decoding from the start.
///
/// Damaged data: packets the decoder rejects are skipped with a warning, a read error ends
/// the clip early with a warning. Rotated inputs (display-matrix side data) are refused with
/// the fix; variable frame rate is carried as the average rate, with a warning.
public final class VideoStream {
    public let path: String
    public let selection: FrameSelection
    private var fmt: UnsafeMutablePointer<AVFormatContext>?
    private var dec: UnsafeMutablePointer<AVCodecContext>?
    private var pkt: UnsafeMutablePointer<AVPacket>?
    private var frame: UnsafeMutablePointer<AVFrame>?
    private let vi: Int32
    private let converter: FrameConverter
    private let warn: (String) -> Void
    public let rate: AVRational
    private let timeBase: AVRational
    private let constantRate: Bool
    /// Decoded index of the next frame the decoder gives.
    private var index = 0
    private var firstPTS: Int64?
    private var outW = 0, outH = 0
    private var warnedBad = false
    private var ended = false, flushed = false
    /// Frames decoded in all (the clip's length once the stream has ended).
    public var decodedFrames: Int { index }
    /// Mean H.264 quantiser (QP) over the selected frames delivered so far, when the decoder
    /// reports one (the codec's share of a measurement's noise, `NoiseLevel.codec`).
    public var meanQP: Double? { qpFrames > 0 ? qpSum / Double(qpFrames) : nil }
    private var qpSum = 0.0, qpFrames = 0
    /// The decoded samples: bits per component, codec name, and whether the codec is lossy.
    public private(set) var sampleFormat = SampleFormat(bits: 8, codec: "", lossy: false, chromaSubsampled: false)

    /// `quantiser`: report the H.264 quantiser (`meanQP`). The decoder then runs on one thread:
    /// with frame threads the per-frame QP it exports was not the frame's own — `svi noise` on
    /// one file gave mean QP 18.3, 18.4 or 19.6 from run to run (σ 0.0065–0.0074), and every
    /// setting that follows σ moved with it.
    public init(path: String, selection: FrameSelection = FrameSelection(), quantiser: Bool = false,
                warn: @escaping (String) -> Void = { _ in }) throws {
        _ = quietFFmpegLog
        self.path = path; self.selection = selection; self.warn = warn
        // A PNG sequence (`y/%05d.png`, what `svi degrade` and `restore` write) is read by
        // FFmpeg's image2 demuxer, from the first frame 0…4 on, as `ffmpeg -i` reads it.
        var demuxer: UnsafePointer<AVInputFormat>? = nil
        if PNGPattern.isSequence(path) {
            let pattern = try PNGPattern(path)
            guard (0..<5).contains(where: { SmallFile.isRegularFile(pattern.path($0)) }) else {
                throw SVIError.file(path, "no such PNG sequence: none of its first frames \(pattern.name(0))…\(pattern.name(4)) exists in \(pattern.folder)")
            }
            demuxer = av_find_input_format("image2")
        } else {
            guard FileManager.default.fileExists(atPath: path) else { throw SVIError.file(path, "no such file") }
            // A FIFO or device would block FFmpeg's probe (or stream forever).
            guard SmallFile.isRegularFile(path) else { throw SVIError.file(path, "not a regular file") }
        }
        let rc = avformat_open_input(&fmt, path, demuxer, nil)
        guard rc >= 0, let ctx = fmt else { throw SVIError.file(path, "not a video file FFmpeg can read (\(ffmpegError(rc)))") }
        var decoder: UnsafePointer<AVCodec>?
        var stream: UnsafeMutablePointer<AVStream>?
        var found: Int32 = -1
        do {
            try check(avformat_find_stream_info(ctx, nil), path, "cannot read stream information")
            found = av_find_best_stream(ctx, AVMEDIA_TYPE_VIDEO, -1, -1, &decoder, 0)
            guard found >= 0, decoder != nil else { throw SVIError.file(path, "no video stream") }
            stream = ctx.pointee.streams[Int(found)]!
            if let side = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, nil) {
                let angle = av_display_rotation_get(UnsafeRawPointer(side).assumingMemoryBound(to: Int32.self))
                if angle.isFinite && abs(angle) > 0.5 {
                    throw SVIError.file(path, String(format: "rotated video (%.0f°) is not supported: rotate it first, e.g. with ffmpeg -i IN -c:a copy OUT.mkv (which applies the rotation)", angle))
                }
            }
        } catch {
            avformat_close_input(&fmt)
            throw error
        }
        vi = found
        let st = stream!
        var r = st.pointee.avg_frame_rate
        let real = st.pointee.r_frame_rate
        if r.num <= 0 || r.den <= 0 { r = real }
        if r.num <= 0 || r.den <= 0 { r = AVRational(num: 25, den: 1); warn("\(path): no frame rate in the file; assuming 25 fps") }
        let variable = real.num > 0 && real.den > 0 && av_cmp_q(real, r) != 0 && abs(av_q2d(real) - av_q2d(r)) > 0.01 * av_q2d(r)
        if variable {
            warn(String(format: "%@: variable frame rate (%.3f fps nominal, %.3f average): the output uses the average rate", path, av_q2d(real), av_q2d(r)))
        }
        rate = r
        constantRate = !variable
        timeBase = st.pointee.time_base
        converter = FrameConverter(selection: selection, path: path)
        pkt = av_packet_alloc()
        frame = av_frame_alloc()
        guard let d = avcodec_alloc_context3(decoder) else { throw SVIError.file(path, "out of memory") }
        dec = d
        try check(avcodec_parameters_to_context(d, st.pointee.codecpar), path, "unsupported video parameters")
        d.pointee.thread_count = quantiser ? 1 : Int32(Parallel.threads)
        if quantiser { d.pointee.export_side_data |= svi_export_venc_params() }
        let name = decoder.map { String(cString: $0.pointee.name) } ?? "unknown"
        let lossy = (avcodec_descriptor_get(st.pointee.codecpar.pointee.codec_id)?.pointee.props ?? 0) & svi_codec_prop_lossy() != 0
        sampleFormat = SampleFormat(pixelFormat: AVPixelFormat(st.pointee.codecpar.pointee.format), codec: name, lossy: lossy)
        try check(avcodec_open2(d, decoder, nil), path, "cannot open the video decoder")
        if let a = selection.range?.lowerBound, a > 0 { seek(to: a) }
    }

    deinit {
        av_packet_free(&pkt); av_frame_free(&frame)
        avcodec_free_context(&dec)
        avformat_close_input(&fmt)
    }

    /// What the container says without decoding (for plans): the frame count (the header's,
    /// else duration × rate) and the selected frame's width and height after crop and scale.
    public static func probe(_ path: String, selection: FrameSelection = FrameSelection()) throws -> (frames: Int, width: Int, height: Int) {
        let s = try VideoStream(path: path, selection: selection)
        let st = s.fmt!.pointee.streams[Int(s.vi)]!
        var n = Int(st.pointee.nb_frames)
        if n <= 0 {
            let d = st.pointee.duration != svi_av_nopts_value() ? Double(st.pointee.duration) * av_q2d(s.timeBase)
                : Double(s.fmt!.pointee.duration) / Double(AV_TIME_BASE)
            n = d.isFinite && d > 0 ? Int((d * av_q2d(s.rate)).rounded()) : 0
        }
        guard n > 0 else { throw SVIError.file(path, "the container does not say how many frames it holds") }
        if let r = selection.range { n = max(0, min(n, r.upperBound) - r.lowerBound) }
        guard n > 0 else { throw SVIError.file(path, "the frame range selects no frame of the \(Int(st.pointee.nb_frames)) in the file") }
        var w = Int(st.pointee.codecpar.pointee.width), h = Int(st.pointee.codecpar.pointee.height)
        if let c = selection.crop { w = c.width; h = c.height }
        if let z = selection.size { w = z.width; h = z.height }
        guard w >= 1, h >= 1 else { throw SVIError.file(path, "no frame size in the container") }
        return (n, w, h)
    }

    /// Presentation time (stream units) of the file's first frame.
    private var streamStart: Int64 {
        let s = fmt!.pointee.streams[Int(vi)]!.pointee.start_time
        return s == svi_av_nopts_value() ? 0 : s
    }

    /// Decoded index of a frame from its presentation time (constant rate only).
    private func indexOf(pts: Int64) -> Int {
        let seconds = Double(pts - streamStart) * av_q2d(timeBase)
        return Int((seconds * av_q2d(rate)).rounded())
    }

    /// Jumps to the keyframe at or before frame `target`; the decoder then discards the frames
    /// before it. On a variable-rate file, or when the container cannot seek, decoding starts
    /// from the beginning instead (correct, only slower).
    private func seek(to target: Int) {
        guard constantRate, target > 0 else { return }
        let seconds = Double(target) / av_q2d(rate)
        let ts = streamStart + Int64((seconds / av_q2d(timeBase)).rounded(.down))
        guard av_seek_frame(fmt, vi, ts, AVSEEK_FLAG_BACKWARD) >= 0 else { return }
        avcodec_flush_buffers(dec)
        seekedTo = target
    }
    /// Set after a seek: the next decoded frame's index comes from its timestamp.
    private var seekedTo: Int?

    /// The next selected frame, [1][3][H][W], or nil at the end of the selection or the file.
    public func next() throws -> Tensor? {
        let range = selection.range ?? 0..<Int.max
        while true {
            if index >= range.upperBound { return nil }
            guard let f = try nextDecoded() else { return nil }
            defer { av_frame_unref(f) }
            if let target = seekedTo {
                // The first frame after a seek tells where we landed; past the target (a
                // container whose index lied) → start again from the beginning.
                seekedTo = nil
                let ts = f.pointee.best_effort_timestamp
                let landed = ts == svi_av_nopts_value() ? nil : indexOf(pts: ts)
                if let l = landed, l <= target, l >= 0 {
                    index = l
                } else {
                    guard av_seek_frame(fmt, vi, streamStart, AVSEEK_FLAG_BACKWARD) >= 0 else {
                        throw SVIError.file(path, "cannot seek back to the start to find frame \(target)")
                    }
                    avcodec_flush_buffers(dec)
                    index = 0
                    continue
                }
            }
            let i = index
            index += 1
            guard range.contains(i) else { continue }
            if firstPTS == nil {
                let ts = f.pointee.best_effort_timestamp
                firstPTS = ts == svi_av_nopts_value() ? 0 : ts
            }
            let qp = svi_frame_mean_qp(f)
            if qp >= 0 && qp.isFinite && qp <= 100 { qpSum += qp; qpFrames += 1 }
            // The decoded frame's own format (the stream header can omit it).
            sampleFormat = SampleFormat(pixelFormat: AVPixelFormat(f.pointee.format), codec: sampleFormat.codec, lossy: sampleFormat.lossy,
                                        fullRange: f.pointee.color_range == AVCOL_RANGE_JPEG)
            let t = try converter.convert(f)
            // A stream whose frame size changes (spliced clips) cannot be one video: refuse it
            // by name rather than copy frames of the wrong size.
            if outW != 0 && (t.shape[3] != outW || t.shape[2] != outH) {
                throw SVIError.file(path, "the frame size changes mid-stream (frame \(i) is \(f.pointee.width)x\(f.pointee.height), earlier frames gave \(outW)x\(outH)); svi needs one size: split the file, or pass --size to scale every frame")
            }
            outW = t.shape[3]; outH = t.shape[2]
            return t
        }
    }

    /// Counts the selected frames without converting them (decoding only): the clip's length
    /// before a streamed job is planned.
    public func countRemaining() throws -> Int {
        let range = selection.range ?? 0..<Int.max
        var n = 0
        while index < range.upperBound, let f = try nextDecoded() {
            av_frame_unref(f)
            if let target = seekedTo {
                seekedTo = nil
                let ts = f.pointee.best_effort_timestamp
                if ts != svi_av_nopts_value(), case let l = indexOf(pts: ts), l <= target, l >= 0 { index = l } else {
                    guard av_seek_frame(fmt, vi, streamStart, AVSEEK_FLAG_BACKWARD) >= 0 else { throw SVIError.file(path, "cannot seek back to the start") }
                    avcodec_flush_buffers(dec)
                    index = 0
                    continue
                }
            }
            if range.contains(index) { n += 1 }
            index += 1
        }
        return n
    }

    /// The next decoded frame (any index), or nil at the end of the file.
    private func nextDecoded() throws -> UnsafeMutablePointer<AVFrame>? {
        while true {
            let r = avcodec_receive_frame(dec, frame)
            if r >= 0 { return frame }
            if r == svi_averror_eof() { return nil }
            if r != svi_averror_eagain() {
                if !warnedBad { warn("\(path): damaged video data (\(ffmpegError(r))); skipping what cannot be decoded"); warnedBad = true }
                if flushed { return nil }
            }
            if ended {
                if !flushed { avcodec_send_packet(dec, nil); flushed = true; continue }
                return nil
            }
            let rr = av_read_frame(fmt, pkt)
            if rr < 0 {
                if rr != svi_averror_eof() { warn("\(path): read error (\(ffmpegError(rr))); keeping the frames decoded so far") }
                ended = true
                continue
            }
            defer { av_packet_unref(pkt) }
            guard pkt!.pointee.stream_index == vi else { continue }
            let s = avcodec_send_packet(dec, pkt)
            if s < 0 && s != svi_averror_eagain() {
                if !warnedBad { warn("\(path): damaged video data (\(ffmpegError(s))); skipping what cannot be decoded"); warnedBad = true }
            }
        }
    }

    /// After the last frame: refuses a selection that lies beyond the clip, or an empty one.
    public func checkEnd(delivered: Int) throws {
        guard index > 0 else { throw SVIError.file(path, "no decodable video frames") }
        if let sel = selection.range, sel.lowerBound >= index || (sel.upperBound != Int.max && sel.upperBound > index) {
            throw SVIError.file(path, "frame range \(sel.lowerBound):\(sel.upperBound) is beyond the end (the video has \(index) frames)")
        }
        guard delivered > 0 else { throw SVIError.file(path, "no frames selected") }
    }

    /// What the selected clip carries to its output (after `frames` frames were delivered).
    public func info(frames: Int) -> VideoInfo {
        let ctx = fmt!
        let start = Double(firstPTS ?? 0) * av_q2d(timeBase) - (ctx.pointee.start_time == svi_av_nopts_value() ? 0 : Double(ctx.pointee.start_time) / Double(AV_TIME_BASE))
        return VideoInfo(width: outW, height: outH, fpsNum: rate.num, fpsDen: rate.den, source: path,
                         startSeconds: max(0, start), durationSeconds: Double(frames) / av_q2d(rate), frames: frames)
    }
}

/// What a video's decoded samples are: their bit depth (of the decoded pixel format, not the
/// file name), the codec, whether it is lossy, and whether chroma is subsampled.
public struct SampleFormat: Sendable, Equatable {
    public var bits: Int
    public var codec: String
    public var lossy: Bool
    public var chromaSubsampled: Bool
    /// Y′CbCr samples (converted to RGB by svi), limited ("TV") range unless `fullRange`.
    public var yuv: Bool
    public var fullRange: Bool

    public init(bits: Int, codec: String, lossy: Bool, chromaSubsampled: Bool, yuv: Bool = false, fullRange: Bool = false) {
        self.bits = bits; self.codec = codec; self.lossy = lossy; self.chromaSubsampled = chromaSubsampled
        self.yuv = yuv; self.fullRange = fullRange
    }

    init(pixelFormat: AVPixelFormat, codec: String, lossy: Bool, fullRange: Bool = false) {
        let desc = av_pix_fmt_desc_get(pixelFormat)
        bits = Int(desc?.pointee.comp.0.depth ?? 8)
        self.codec = codec; self.lossy = lossy
        chromaSubsampled = (desc?.pointee.log2_chroma_w ?? 0) > 0 || (desc?.pointee.log2_chroma_h ?? 0) > 0
        let flags = desc?.pointee.flags ?? 0
        yuv = desc != nil && (flags & svi_pix_fmt_flag_rgb()) == 0 && (desc?.pointee.nb_components ?? 0) >= 3
        let name = desc.map { String(cString: $0.pointee.name) } ?? ""
        self.fullRange = fullRange || name.hasPrefix("yuvj")
    }

    public var description: String {
        "\(bits)-bit \(codec)" + (yuv ? (chromaSubsampled ? " yuv, subsampled chroma" : " yuv") : "") + (lossy ? " (lossy)" : "")
    }

    /// Spacing of the float values svi hands on: frames become 8-bit RGB (1/255), or 16-bit
    /// RGB for deeper sources (1/65535) (`FrameConverter`).
    public var sampleStep: Double { bits > 8 ? 1.0 / 65535 : 1.0 / 255 }
}

/// Decoded frame → RGB float [1][3][H][W]: to packed RGB at the source size (RGB24, or RGB48
/// for sources deeper than 8 bits; exact for RGB sources), crop, then (when asked) scale with
/// bicubic filtering.
final class FrameConverter {
    let selection: FrameSelection
    let path: String
    private var toRGB: OpaquePointer?
    private var scaler: OpaquePointer?

    init(selection: FrameSelection, path: String) { self.selection = selection; self.path = path }
    deinit { sws_freeContext(toRGB); sws_freeContext(scaler) }

    func convert(_ f: UnsafeMutablePointer<AVFrame>) throws -> Tensor {
        let w = Int(f.pointee.width), h = Int(f.pointee.height)
        // The decoder's word, from the file: bounded before any buffer is sized by it.
        guard w >= 1, h >= 1, w <= FormatLimits.maxSide, h <= FormatLimits.maxSide, w * h <= 1 << 28 else {
            throw SVIError.file(path, "a decoded frame is \(w)x\(h); svi reads frames of up to \(FormatLimits.maxSide) pixels a side and 2^28 pixels")
        }
        let source = AVPixelFormat(f.pointee.format)
        let deep = (av_pix_fmt_desc_get(source)?.pointee.comp.0.depth ?? 8) > 8
        let packedFormat = deep ? AV_PIX_FMT_RGB48LE : AV_PIX_FMT_RGB24
        let bytes = deep ? 2 : 1
        toRGB = sws_getCachedContext(toRGB, Int32(w), Int32(h), source, Int32(w), Int32(h), packedFormat, svi_sws_flags_point(), nil, nil, nil)
        guard let sws = toRGB else { throw SVIError.file(path, "cannot convert pixel format \(f.pointee.format) to RGB") }
        var rgb = [UInt8](repeating: 0, count: w * h * 3 * bytes)
        rgb.withUnsafeMutableBufferPointer { buf in
            var dst: [UnsafeMutablePointer<UInt8>?] = [buf.baseAddress, nil, nil, nil]
            var stride: [Int32] = [Int32(w * 3 * bytes), 0, 0, 0]
            withUnsafePointer(to: &f.pointee.data) { dp in
                withUnsafePointer(to: &f.pointee.linesize) { lp in
                    let src = UnsafeRawPointer(dp).assumingMemoryBound(to: UnsafePointer<UInt8>?.self)
                    let ls = UnsafeRawPointer(lp).assumingMemoryBound(to: Int32.self)
                    _ = sws_scale(sws, src, ls, 0, Int32(h), &dst, &stride)
                }
            }
        }
        var cw = w, ch = h
        if let c = selection.crop {
            guard c.x + c.width <= w, c.y + c.height <= h else {
                throw SVIError.file(path, "crop \(c.width)x\(c.height)+\(c.x)+\(c.y) lies outside the \(w)x\(h) frame")
            }
            let rowBytes = c.width * 3 * bytes
            var cropped = [UInt8](repeating: 0, count: c.height * rowBytes)
            for y in 0..<c.height {
                let s = ((c.y + y) * w + c.x) * 3 * bytes
                cropped.replaceSubrange((y * rowBytes)..<((y + 1) * rowBytes), with: rgb[s..<(s + rowBytes)])
            }
            rgb = cropped; cw = c.width; ch = c.height
        }
        if let s = selection.size, s.width != cw || s.height != ch {
            scaler = sws_getCachedContext(scaler, Int32(cw), Int32(ch), packedFormat, Int32(s.width), Int32(s.height), packedFormat,
                                          svi_sws_flags_bicubic_exact(), nil, nil, nil)
            guard let sc = scaler else { throw SVIError.file(path, "cannot scale to \(s.width)x\(s.height)") }
            var scaled = [UInt8](repeating: 0, count: s.width * s.height * 3 * bytes)
            rgb.withUnsafeBufferPointer { src in
                scaled.withUnsafeMutableBufferPointer { dst in
                    var sp: [UnsafePointer<UInt8>?] = [src.baseAddress, nil, nil, nil]
                    var ss: [Int32] = [Int32(cw * 3 * bytes), 0, 0, 0]
                    var dp: [UnsafeMutablePointer<UInt8>?] = [dst.baseAddress, nil, nil, nil]
                    var ds: [Int32] = [Int32(s.width * 3 * bytes), 0, 0, 0]
                    _ = sws_scale(sc, &sp, &ss, 0, Int32(ch), &dp, &ds)
                }
            }
            rgb = scaled; cw = s.width; ch = s.height
        }
        let t = Tensor(shape: [1, 3, ch, cw], zeroed: false)
        let plane = cw * ch
        rgb.withUnsafeBytes { raw in
            for i in 0..<plane {
                for c in 0..<3 {
                    t.data[c * plane + i] = deep
                        ? Float(UInt16(littleEndian: raw.load(fromByteOffset: 2 * (3 * i + c), as: UInt16.self))) / 65535
                        : Float(raw[3 * i + c]) / 255
                }
            }
        }
        return t
    }
}

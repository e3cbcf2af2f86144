import Foundation
import CFFmpeg
import SVICore
import SVIFormats

/// Decodes any file FFmpeg reads into RGB float frames [T][3][H][W] in [0,1].
///
/// Damaged data: packets the decoder rejects are skipped with a warning, a read error ends
/// the clip early with a warning; a file that yields no frame at all is an error. Rotated
/// inputs (display-matrix side data) are refused with the fix; variable frame rate is
/// carried as the average rate, with a warning.
public enum VideoReader {
    /// `decoded(n)` is called after each selected frame (for progress displays).
    public static func read(_ path: String, selection: FrameSelection = FrameSelection(),
                            warn: (String) -> Void = { _ in }, decoded: (Int) -> Void = { _ in }) throws -> (Tensor, VideoInfo) {
        _ = quietFFmpegLog
        guard FileManager.default.fileExists(atPath: path) else { throw SVIError.file(path, "no such file") }
        var fmt: UnsafeMutablePointer<AVFormatContext>?
        let rc = avformat_open_input(&fmt, path, nil, nil)
        guard rc >= 0, let ctx = fmt else { throw SVIError.file(path, "not a video file FFmpeg can read (\(ffmpegError(rc)))") }
        defer { avformat_close_input(&fmt) }
        try check(avformat_find_stream_info(ctx, nil), path, "cannot read stream information")

        var decoder: UnsafePointer<AVCodec>?
        let vi = av_find_best_stream(ctx, AVMEDIA_TYPE_VIDEO, -1, -1, &decoder, 0)
        guard vi >= 0, let codec = decoder else { throw SVIError.file(path, "no video stream") }
        let stream = ctx.pointee.streams[Int(vi)]!
        if let side = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, nil) {
            let angle = av_display_rotation_get(UnsafeRawPointer(side).assumingMemoryBound(to: Int32.self))
            if angle.isFinite && abs(angle) > 0.5 {
                throw SVIError.file(path, String(format: "rotated video (%.0f°) is not supported: rotate it first, e.g. with ffmpeg -i IN -c:a copy OUT.mkv (which applies the rotation)", angle))
            }
        }
        var rate = stream.pointee.avg_frame_rate
        let real = stream.pointee.r_frame_rate
        if rate.num <= 0 || rate.den <= 0 { rate = real }
        if rate.num <= 0 || rate.den <= 0 { rate = AVRational(num: 25, den: 1); warn("\(path): no frame rate in the file; assuming 25 fps") }
        if real.num > 0 && real.den > 0 && av_cmp_q(real, rate) != 0 && abs(av_q2d(real) - av_q2d(rate)) > 0.01 * av_q2d(rate) {
            warn(String(format: "%@: variable frame rate (%.3f fps nominal, %.3f average): the output uses the average rate", path, av_q2d(real), av_q2d(rate)))
        }

        guard let dec = avcodec_alloc_context3(codec) else { throw SVIError.file(path, "out of memory") }
        var decp: UnsafeMutablePointer<AVCodecContext>? = dec
        defer { avcodec_free_context(&decp) }
        try check(avcodec_parameters_to_context(dec, stream.pointee.codecpar), path, "unsupported video parameters")
        dec.pointee.thread_count = Int32(Parallel.threads)
        try check(avcodec_open2(dec, codec, nil), path, "cannot open the video decoder")

        let range = selection.range ?? 0..<Int.max
        var frames: [Tensor] = []
        var outW = 0, outH = 0
        var firstPTS: Int64?
        var index = 0
        var warnedBad = false
        let timeBase = stream.pointee.time_base
        let converter = FrameConverter(selection: selection, path: path)
        var pkt = av_packet_alloc()
        var frame = av_frame_alloc()
        defer { av_packet_free(&pkt); av_frame_free(&frame) }

        func drain() throws -> Bool {
            while true {
                let r = avcodec_receive_frame(dec, frame)
                if r == svi_averror_eagain() || r == svi_averror_eof() { return false }
                if r < 0 {
                    if !warnedBad { warn("\(path): damaged video data (\(ffmpegError(r))); skipping what cannot be decoded"); warnedBad = true }
                    return false
                }
                defer { av_frame_unref(frame) }
                if range.contains(index) {
                    if firstPTS == nil {
                        let ts = frame!.pointee.best_effort_timestamp
                        firstPTS = ts == svi_av_nopts_value() ? 0 : ts
                    }
                    let t = try converter.convert(frame!)
                    // A stream whose frame size changes (spliced clips) cannot be one video
                    // tensor: refuse it by name rather than copy frames of the wrong size.
                    if !frames.isEmpty && (t.shape[3] != outW || t.shape[2] != outH) {
                        throw SVIError.file(path, "the frame size changes mid-stream (frame \(index) is \(frame!.pointee.width)x\(frame!.pointee.height), earlier frames gave \(outW)x\(outH)); svi needs one size: split the file, or pass --size to scale every frame")
                    }
                    outW = t.shape[3]; outH = t.shape[2]
                    frames.append(t)
                    decoded(frames.count)
                }
                index += 1
                if index >= range.upperBound { return true }
            }
        }

        var done = false
        while !done {
            let r = av_read_frame(ctx, pkt)
            if r < 0 {
                if r != svi_averror_eof() { warn("\(path): read error (\(ffmpegError(r))); keeping the \(frames.count) frame(s) decoded so far") }
                break
            }
            defer { av_packet_unref(pkt) }
            guard pkt!.pointee.stream_index == vi else { continue }
            let s = avcodec_send_packet(dec, pkt)
            if s < 0 && s != svi_averror_eagain() {
                if !warnedBad { warn("\(path): damaged video data (\(ffmpegError(s))); skipping what cannot be decoded"); warnedBad = true }
                continue
            }
            done = try drain()
        }
        if !done {
            avcodec_send_packet(dec, nil)
            _ = try drain()
        }
        guard index > 0 else { throw SVIError.file(path, "no decodable video frames") }
        if let sel = selection.range, sel.lowerBound >= index || (sel.upperBound != Int.max && sel.upperBound > index) {
            throw SVIError.file(path, "frame range \(sel.lowerBound):\(sel.upperBound) is beyond the end (the video has \(index) frames)")
        }
        guard !frames.isEmpty else { throw SVIError.file(path, "no frames selected") }
        let video = Tensor(shape: [frames.count, 3, outH, outW], zeroed: false)
        for (i, f) in frames.enumerated() {
            precondition(f.count == video.frameSize, "decoded frame size changed")   // checked above; kept as a guard
            video.frame(i).update(from: f.data, count: f.count)
        }
        let start = Double(firstPTS ?? 0) * av_q2d(timeBase) - (ctx.pointee.start_time == svi_av_nopts_value() ? 0 : Double(ctx.pointee.start_time) / Double(AV_TIME_BASE))
        let info = VideoInfo(width: outW, height: outH, fpsNum: rate.num, fpsDen: rate.den, source: path,
                             startSeconds: max(0, start), durationSeconds: Double(frames.count) / av_q2d(rate), frames: frames.count)
        return (video, info)
    }
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

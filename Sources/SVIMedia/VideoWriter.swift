import Foundation
import CFFmpeg
import SVICore
import SVIFormats

/// How a video is stored.
public enum VideoCodec: String, CaseIterable, Sendable {
    case h264          // .mp4: H.264 yuv420p (libx264), for viewing
    case ffv1          // .mkv: FFV1 lossless, RGB 8-bit
    case ffv1_16 = "ffv1-16"   // .mkv: FFV1 lossless, planar RGB 16-bit
    case png           // a PNG sequence: out/%05d.png

    /// The codec an output path implies.
    public static func forPath(_ path: String) -> VideoCodec? {
        if PNGPattern.isSequence(path) { return .png }
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "mp4", "mov", "m4v": return .h264
        case "mkv": return .ffv1
        default: return nil
        }
    }
}

/// Encodes RGB float frames [3][H][W] in [0,1] into a video file, then copies the audio and
/// subtitle streams of a source clip (trimmed to the same time span) into it. The file is
/// written under a temporary name and renamed when complete.
public final class VideoWriter {
    public let path: String
    let temporary: String
    /// The container file being written until `finish` renames it (nil for PNG sequences:
    /// their frames wait in a hidden `.svi-png-*` folder beside the output).
    public var temporaryPath: String? { png == nil ? temporary : nil }
    let codecKind: VideoCodec
    let width: Int, height: Int
    let rate: AVRational
    private var fmt: UnsafeMutablePointer<AVFormatContext>?
    private var enc: UnsafeMutablePointer<AVCodecContext>?
    private var stream: UnsafeMutablePointer<AVStream>?
    private var sws: OpaquePointer?
    private var frame: UnsafeMutablePointer<AVFrame>?
    private var pkt: UnsafeMutablePointer<AVPacket>?
    private var next: Int64 = 0
    private var finished = false
    /// PNG sequences: the pattern, and the hidden folder the frames are written into until
    /// `finish` moves them into place.
    private var png: PNGPattern?
    private var pngFolder: String?
    private var pngFrames: [String] = []
    private let overwrite: Bool
    private var copied: [(input: Int32, output: UnsafeMutablePointer<AVStream>)] = []
    private var audioSource: (path: String, start: Double, duration: Double)?
    private var sourceContext: UnsafeMutablePointer<AVFormatContext>?
    var warn: (String) -> Void

    /// `audioFrom`: copy the audio/subtitle streams of this file, from `start` seconds for
    /// `duration` seconds, into the output (skipped, with a warning, where the container
    /// cannot hold them).
    /// `encoderThreads`: the encoder's thread count (default: svi's). x264's bytes depend on
    /// it (frame threads), so a file that must be the same on any machine fixes it.
    public init(path: String, codec: VideoCodec, width: Int, height: Int, fpsNum: Int32, fpsDen: Int32, crf: Int = 18,
                overwrite: Bool, audioFrom: (path: String, start: Double, duration: Double)? = nil, singleImage: Bool = false,
                encoderThreads: Int? = nil, warn: @escaping (String) -> Void = { _ in }) throws {
        _ = quietFFmpegLog
        self.path = path; self.codecKind = codec; self.width = width; self.height = height
        self.rate = AVRational(num: fpsNum, den: fpsDen); self.warn = warn; self.crfValue = crf; self.overwrite = overwrite
        self.encoderThreads = encoderThreads
        if codec == .png {
            let pattern = try PNGPattern(path, single: singleImage)
            let dir = pattern.folder
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else { throw SVIError(kind: .badOption, file: path, field: "-o", "output folder \(dir) does not exist") }
            guard FileManager.default.isWritableFile(atPath: dir) else { throw SVIError.io(path, "output folder \(dir) is not writable") }
            if !overwrite, let existing = pattern.existingFrame() {
                throw SVIError(kind: .badOption, file: path, field: "--overwrite", "frames of this sequence exist (\(existing)); pass --overwrite to replace them")
            }
            png = pattern
            pngFolder = try TemporaryName.folder(in: dir, prefix: ".svi-png-")
            temporary = pngFolder!
        } else {
            try AtomicFile.checkWritable(path, overwrite: overwrite)
            let ext = URL(fileURLWithPath: path).pathExtension
            // Created exclusively under an unpredictable name, then reopened by FFmpeg.
            let (tmp, fd) = try TemporaryName.file(for: path, extension: ext)
            close(fd)
            temporary = tmp
        }
        if codec == .h264 && (width % 2 != 0 || height % 2 != 0) {
            throw SVIError.file(path, "H.264 (yuv420p) needs an even width and height, got \(width)x\(height); write .mkv (FFV1) or crop")
        }
        try open(overwrite: overwrite)
        if let a = audioFrom, codec != .png { try openAudio(a) }
        if codec != .png {
            if fmt!.pointee.oformat.pointee.flags & svi_avfmt_nofile() == 0 {
                try check(avio_open(&fmt!.pointee.pb, temporary, svi_avio_flag_write()), path, "cannot create the output file")
            }
            try check(avformat_write_header(fmt, nil), path, "cannot write the container header")
        }
    }

    private func open(overwrite: Bool) throws {
        let name: String, pix: AVPixelFormat
        switch codecKind {
        case .h264: name = "libx264"; pix = AV_PIX_FMT_YUV420P
        case .ffv1: name = "ffv1"; pix = AV_PIX_FMT_BGR0        // FFV1 codes 8-bit RGB as 0RGB32 (lossless RCT)
        case .ffv1_16: name = "ffv1"; pix = AV_PIX_FMT_GBRP16LE
        case .png: name = "png"; pix = AV_PIX_FMT_RGB24
        }
        guard let codec = avcodec_find_encoder_by_name(name) else { throw SVIError.file(path, "this FFmpeg has no \(name) encoder") }
        if codecKind != .png {
            let container = codecKind == .h264 ? "mp4" : "matroska"
            try check(avformat_alloc_output_context2(&fmt, nil, container, temporary), path, "cannot create a \(container) container")
            stream = avformat_new_stream(fmt, nil)
        }
        enc = avcodec_alloc_context3(codec)
        guard let e = enc else { throw SVIError.outOfMemory(path, "out of memory") }
        e.pointee.width = Int32(width); e.pointee.height = Int32(height)
        e.pointee.pix_fmt = pix
        e.pointee.time_base = AVRational(num: rate.den, den: rate.num)
        e.pointee.framerate = rate
        e.pointee.thread_count = codecKind == .png ? 1 : Int32(encoderThreads ?? Parallel.threads)   // PNG: one packet per frame, at once
        if codecKind == .h264 {
            av_opt_set(e.pointee.priv_data, "crf", String(crfValue), 0)
            av_opt_set(e.pointee.priv_data, "preset", "medium", 0)
            e.pointee.color_range = AVCOL_RANGE_MPEG
        }
        if codecKind == .png {
            // Per-row best filter and full deflate: about a third smaller than FFmpeg's
            // unfiltered default on photographs, still lossless.
            av_opt_set(e.pointee.priv_data, "pred", "mixed", 0)
            e.pointee.compression_level = 9
        }
        if let f = fmt, f.pointee.oformat.pointee.flags & svi_avfmt_globalheader() != 0 {
            e.pointee.flags |= svi_codec_flag_global_header()
        }
        try check(avcodec_open2(e, codec, nil), path, "cannot open the \(name) encoder")
        if let s = stream {
            try check(avcodec_parameters_from_context(s.pointee.codecpar, e), path, "cannot set stream parameters")
            s.pointee.time_base = e.pointee.time_base
            s.pointee.avg_frame_rate = rate
        }
        frame = av_frame_alloc()
        frame!.pointee.format = pix.rawValue
        frame!.pointee.width = Int32(width); frame!.pointee.height = Int32(height)
        try check(av_frame_get_buffer(frame, 0), path, "out of memory")
        pkt = av_packet_alloc()
        sws = sws_getContext(Int32(width), Int32(height), codecKind == .ffv1_16 ? AV_PIX_FMT_RGB48LE : AV_PIX_FMT_RGB24, Int32(width), Int32(height), pix,
                             codecKind == .h264 ? svi_sws_flags_bicubic_exact() : svi_sws_flags_point(), nil, nil, nil)
        guard sws != nil else { throw SVIError.file(path, "cannot convert RGB to the encoder's pixel format") }
    }

    let crfValue: Int
    let encoderThreads: Int?

    private func openAudio(_ a: (path: String, start: Double, duration: Double)) throws {
        var src: UnsafeMutablePointer<AVFormatContext>?
        guard avformat_open_input(&src, a.path, nil, nil) >= 0, let s = src else { warn("\(a.path): cannot reopen for audio; output has no audio"); return }
        sourceContext = s
        guard avformat_find_stream_info(s, nil) >= 0 else { return }
        for i in 0..<Int32(s.pointee.nb_streams) {
            let st = s.pointee.streams[Int(i)]!
            let type = st.pointee.codecpar.pointee.codec_type
            guard type == AVMEDIA_TYPE_AUDIO || type == AVMEDIA_TYPE_SUBTITLE else { continue }
            let id = st.pointee.codecpar.pointee.codec_id
            if avformat_query_codec(fmt!.pointee.oformat, id, 0) != 1 {
                warn("\(path): the container cannot hold the source's \(String(cString: avcodec_get_name(id))) stream; it is left out")
                continue
            }
            guard let out = avformat_new_stream(fmt, nil) else { continue }
            avcodec_parameters_copy(out.pointee.codecpar, st.pointee.codecpar)
            out.pointee.codecpar.pointee.codec_tag = 0
            out.pointee.time_base = st.pointee.time_base
            copied.append((i, out))
        }
        audioSource = a
    }

    /// Appends one frame [3][H][W] in [0,1] (values outside are clipped), quantised to 8 bits
    /// (16 for `ffv1-16`) with rounding.
    public func append(_ rgb: UnsafePointer<Float>) throws {
        let plane = width * height
        let deep = codecKind == .ffv1_16
        let scale: Float = deep ? 65535 : 255
        var packed = [UInt8](repeating: 0, count: plane * 3 * (deep ? 2 : 1))
        packed.withUnsafeMutableBytes { raw in
            for i in 0..<plane {
                for c in 0..<3 {
                    let v = max(0, min(scale, (rgb[c * plane + i] * scale).rounded()))
                    if deep { raw.storeBytes(of: UInt16(v).littleEndian, toByteOffset: 2 * (3 * i + c), as: UInt16.self) }
                    else { raw[3 * i + c] = UInt8(v) }
                }
            }
        }
        try check(av_frame_make_writable(frame), path, "out of memory")
        packed.withUnsafeBufferPointer { src in
            var sp: [UnsafePointer<UInt8>?] = [src.baseAddress, nil, nil, nil]
            var ss: [Int32] = [Int32(width * 3 * (deep ? 2 : 1)), 0, 0, 0]
            withUnsafeMutablePointer(to: &frame!.pointee.data) { dp in
                withUnsafeMutablePointer(to: &frame!.pointee.linesize) { lp in
                    let d = UnsafeMutableRawPointer(dp).assumingMemoryBound(to: UnsafeMutablePointer<UInt8>?.self)
                    let l = UnsafeMutableRawPointer(lp).assumingMemoryBound(to: Int32.self)
                    _ = sws_scale(sws, &sp, &ss, 0, Int32(height), d, l)
                }
            }
        }
        frame!.pointee.pts = next
        if codecKind == .png { try encodePNG(index: Int(next)) } else { try encode(frame) }
        next += 1
    }

    private func encode(_ f: UnsafeMutablePointer<AVFrame>?) throws {
        try check(avcodec_send_frame(enc, f), path, "encoding failed")
        while true {
            let r = avcodec_receive_packet(enc, pkt)
            if r == svi_averror_eagain() || r == svi_averror_eof() { return }
            try check(r, path, "encoding failed")
            av_packet_rescale_ts(pkt, enc!.pointee.time_base, stream!.pointee.time_base)
            pkt!.pointee.stream_index = stream!.pointee.index
            try check(av_interleaved_write_frame(fmt, pkt), path, "cannot write a video packet")
        }
    }

    private func encodePNG(index: Int) throws {
        try check(avcodec_send_frame(enc, frame), path, "PNG encoding failed")
        try check(avcodec_receive_packet(enc, pkt), path, "PNG encoding failed")
        defer { av_packet_unref(pkt) }
        let name = png!.name(index)
        guard !pngFrames.contains(name) else { throw SVIError.file(png!.path(index), "a single-image PNG output takes one frame") }
        let data = Data(bytes: pkt!.pointee.data, count: Int(pkt!.pointee.size))
        guard FileManager.default.createFile(atPath: pngFolder! + "/" + name, contents: data) else { throw SVIError.io(png!.path(index), "cannot write") }
        pngFrames.append(name)
    }

    /// Flushes the encoder, copies the source's audio span, writes the trailer and moves the
    /// file into place.
    public func finish() throws {
        if let pattern = png, let folder = pngFolder {
            // All or nothing: without --overwrite no frame may have appeared meanwhile.
            if !overwrite, let clash = pngFrames.first(where: { FileManager.default.fileExists(atPath: pattern.folder + "/" + $0) }) {
                throw SVIError.file(pattern.folder + "/" + clash, "appeared while svi was writing the sequence (pass --overwrite to replace it)")
            }
            for name in pngFrames where rename(folder + "/" + name, pattern.folder + "/" + name) != 0 {
                throw SVIError.file(pattern.folder + "/" + name, "cannot move into place: \(String(cString: strerror(errno)))")
            }
            try? FileManager.default.removeItem(atPath: folder)
            // --overwrite replaces the sequence whole: frames of an earlier, longer run left
            // beside the new ones would read back as one video mixing the two (issue 30).
            if overwrite {
                let written = Set(pngFrames)
                for old in ((try? FileManager.default.contentsOfDirectory(atPath: pattern.folder)) ?? []) where pattern.matches(old) && !written.contains(old) {
                    unlink(pattern.folder + "/" + old)
                }
            }
            finished = true
            return
        }
        try encode(nil)
        if let a = audioSource, let src = sourceContext { try copyStreams(from: src, start: a.start, duration: a.duration) }
        try check(av_write_trailer(fmt), path, "cannot finish the container")
        avio_closep(&fmt!.pointee.pb)
        do { try TemporaryName.moveIntoPlace(temporary, path, overwrite: overwrite) } catch { finished = true; throw error }
        finished = true
    }

    /// Packets of the copied streams whose time lies in [start, start + duration), shifted so
    /// that `start` becomes 0 — the clip's audio, in sync with its first frame.
    private func copyStreams(from src: UnsafeMutablePointer<AVFormatContext>, start: Double, duration: Double) throws {
        let startTime = src.pointee.start_time == svi_av_nopts_value() ? 0 : Double(src.pointee.start_time) / Double(AV_TIME_BASE)
        let t0 = startTime + start, t1 = t0 + duration
        var p = av_packet_alloc()
        defer { av_packet_free(&p) }
        while av_read_frame(src, p) >= 0 {
            defer { av_packet_unref(p) }
            guard let pair = copied.first(where: { $0.input == p!.pointee.stream_index }) else { continue }
            let inTB = src.pointee.streams[Int(pair.input)]!.pointee.time_base
            let ts = p!.pointee.pts != svi_av_nopts_value() ? p!.pointee.pts : p!.pointee.dts
            guard ts != svi_av_nopts_value() else { continue }
            let seconds = Double(ts) * av_q2d(inTB)
            if seconds < t0 - 1e-9 || seconds >= t1 - 1e-9 { continue }
            let shift = Int64((t0 / av_q2d(inTB)).rounded())
            if p!.pointee.pts != svi_av_nopts_value() { p!.pointee.pts -= shift }
            if p!.pointee.dts != svi_av_nopts_value() { p!.pointee.dts -= shift }
            av_packet_rescale_ts(p, inTB, pair.output.pointee.time_base)
            p!.pointee.stream_index = pair.output.pointee.index
            p!.pointee.pos = -1
            try check(av_interleaved_write_frame(fmt, p), path, "cannot write an audio packet")
        }
    }

    deinit {
        avcodec_free_context(&enc)
        av_frame_free(&frame)
        av_packet_free(&pkt)
        sws_freeContext(sws)
        if sourceContext != nil { avformat_close_input(&sourceContext) }
        if let f = fmt {
            if f.pointee.pb != nil { avio_closep(&fmt!.pointee.pb) }
            avformat_free_context(f)
        }
        if !finished {
            if let folder = pngFolder { try? FileManager.default.removeItem(atPath: folder) } else { unlink(temporary) }
        }
    }
}

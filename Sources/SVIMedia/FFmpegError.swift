import CFFmpeg
import SVICore
import SVIFormats

/// FFmpeg's error codes as text.
func ffmpegError(_ code: Int32) -> String {
    var buf = [CChar](repeating: 0, count: 128)
    av_strerror(code, &buf, buf.count)
    return String(cString: buf)
}

/// Throws `SVIError.file(path, what: text)` when `code` < 0.
@discardableResult
func check(_ code: Int32, _ path: String, _ what: String) throws -> Int32 {
    if code < 0 { throw SVIError.file(path, "\(what): \(ffmpegError(code))") }
    return code
}

/// FFmpeg's own log shows errors only (svi reports warnings itself, one line each).
let quietFFmpegLog: Void = svi_av_log_errors_only()

import Foundation
import SVICore

/// Positioned reads from a file, so checkpoints go straight from disk into tensors without a
/// second copy of the whole file in memory (a 2.2 GB checkpoint would otherwise double the
/// peak memory while loading).
public final class FileReader {
    public let path: String
    public let size: Int
    private let fd: Int32

    public init(_ path: String) throws {
        self.path = path
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever; it is
        // refused below as not a regular file (and means nothing for regular files).
        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            throw SVIError.file(path, FileManager.default.fileExists(atPath: path) ? "cannot open: \(String(cString: strerror(errno)))" : "no such file")
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else { close(fd); throw SVIError.io(path, "cannot stat") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { close(fd); throw SVIError.file(path, "not a regular file") }
        size = Int(st.st_size)
    }

    deinit { close(fd) }

    /// Reads exactly `count` bytes at `offset` into `buffer`.
    public func read(into buffer: UnsafeMutableRawPointer, offset: Int, count: Int) throws {
        guard FormatLimits.end(offset: offset, count: count, within: size) != nil else {
            throw SVIError.file(path, "truncated: needs \(count) bytes at offset \(offset), the file has \(size)")
        }
        var done = 0
        while done < count {
            let n = pread(fd, buffer + done, min(count - done, 1 << 30), off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw SVIError.file(path, "read failed at byte \(offset + done): \(n == 0 ? "unexpected end of file" : String(cString: strerror(errno)))") }
            done += n
        }
    }

    public func bytes(offset: Int, count: Int) throws -> [UInt8] {
        guard FormatLimits.end(offset: offset, count: count, within: size) != nil else {
            throw SVIError.file(path, "truncated: needs \(count) bytes at offset \(offset), the file has \(size)")
        }
        if count == 0 { return [] }
        var out = [UInt8](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { try read(into: $0.baseAddress!, offset: offset, count: count) }
        return out
    }

    /// Reads `count` elements of `dtype` at `offset` into float32 `dst` (F32 directly; other
    /// dtypes through a bounded staging buffer).
    func readElements(dtype: String, offset: Int, count: Int, into dst: UnsafeMutablePointer<Float>) throws {
        if dtype == "F32" { try read(into: dst, offset: offset, count: count * 4); return }
        guard let es = elementSize(dtype) else { throw SVIError.file(path, "tensor dtype \(dtype) is not supported (F32, F16, BF16, F64)") }
        let chunk = 1 << 20
        let stage = UnsafeMutableRawPointer.allocate(byteCount: chunk * es, alignment: 16)
        defer { stage.deallocate() }
        var done = 0
        while done < count {
            let n = min(chunk, count - done)
            try read(into: stage, offset: offset + done * es, count: n * es)
            try decodeElements(UnsafeRawPointer(stage), dtype: dtype, count: n, into: dst + done, path: path)
            done += n
        }
    }
}

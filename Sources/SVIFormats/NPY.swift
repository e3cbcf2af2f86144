import Foundation
import SVICore

/// NumPy `.npy` files (format versions 1–3). svi's video tensors are float32 little-endian in
/// C order; the reader also returns int64 arrays (timesteps). Anything else is an error that
/// names the file and what was found.
public enum NPY {
    public struct Header: Equatable {
        public var descr: String
        public var fortranOrder: Bool
        public var shape: [Int]
    }

    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]

    /// Parses the header at the start of `bytes` (the first 64 KiB of the file or more); returns
    /// it and the offset of the data. The header is a Python dict literal: it is parsed as one
    /// (keys, strings, booleans, a tuple of integers), never by searching for substrings.
    public static func parseHeader(_ bytes: [UInt8], path: String) throws -> (Header, Int) {
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw SVIError.file(path, "not a .npy file (missing the \\x93NUMPY magic)")
        }
        let major = bytes[6]
        let headerLen: Int, start: Int
        switch major {
        case 1:
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8; start = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw SVIError.file(path, "truncated .npy header") }
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24; start = 12
        default:
            throw SVIError.file(path, "unsupported .npy format version \(major)")
        }
        guard headerLen <= maxHeaderBytes else { throw SVIError.file(path, ".npy header says \(headerLen) bytes; svi reads headers up to \(maxHeaderBytes)") }
        guard headerLen <= bytes.count - start else { throw SVIError.file(path, "truncated .npy header") }
        var parser = HeaderParser(bytes: Array(bytes[start..<(start + headerLen)]), path: path)
        return (try parser.parse(), start + headerLen)
    }

    /// NumPy writes headers of a few hundred bytes; this is its own limit for reading.
    static let maxHeaderBytes = 10_000

    /// The checked shape of a header for `elementBytes`-byte elements: element and byte counts
    /// without overflow, and the data present in a file of `fileSize` bytes after `offset`.
    static func checkedSize(_ h: Header, elementBytes: Int, offset: Int, fileSize: Int, path: String) throws -> Int {
        guard let n = FormatLimits.elementCount(h.shape) else {
            throw SVIError.file(path, "shape \(h.shape) is not a tensor svi can hold (negative, too many dimensions, or more than \(FormatLimits.maxElements) elements)")
        }
        let bytes = n * elementBytes   // ≤ 2³⁶ · 8: no overflow
        guard FormatLimits.end(offset: offset, count: bytes, within: fileSize) != nil else {
            throw SVIError.file(path, "truncated: shape \(h.shape) needs \(bytes) data bytes, the file has \(max(0, fileSize - offset))")
        }
        return n
    }

    /// The checked size of a video read frame by frame: one frame within the in-memory caps,
    /// at most `FormatLimits.maxFrames` frames, and all of them inside the file (a video
    /// streamed this way may be far larger than memory).
    static func checkedFrames(_ h: Header, offset: Int, fileSize: Int, path: String) throws -> Int {
        guard h.shape.count >= 2, let fs = FormatLimits.elementCount(Array(h.shape.dropFirst())), (1...FormatLimits.maxFrames).contains(h.shape[0]) else {
            throw SVIError.file(path, "shape \(h.shape) is not a video svi can read (frames [T][…] of at most \(FormatLimits.maxElements) values, 1…\(FormatLimits.maxFrames) frames)")
        }
        let (bytes, o) = (fs * 4).multipliedReportingOverflow(by: h.shape[0])
        guard !o, FormatLimits.end(offset: offset, count: bytes, within: fileSize) != nil else {
            throw SVIError.file(path, "truncated: shape \(h.shape) needs \(o ? "more" : "\(bytes)") data bytes, the file has \(max(0, fileSize - offset))")
        }
        return fs
    }

    /// The shape of a float32 .npy video without reading its data (plans, dry runs); checks
    /// that the file is as long as the header says.
    public static func shapeOfFloat32(_ path: String) throws -> [Int] {
        let file = try FileReader(path)
        let (h, off) = try parseHeader(try file.bytes(offset: 0, count: min(file.size, 65_536)), path: path)
        guard h.descr == "<f4", !h.fortranOrder else { throw SVIError.file(path, "dtype '\(h.descr)' is not supported: svi needs float32 little-endian ('<f4') in C order") }
        _ = try checkedFrames(h, offset: off, fileSize: file.size, path: path)
        return h.shape
    }

    /// Reads a float32 little-endian C-order array straight from the file into the tensor.
    /// Values must be finite unless `allowNonFinite` (a NaN pixel would turn the whole
    /// restoration into NaN through the data-consistency solve).
    public static func readFloat32(_ path: String, allowNonFinite: Bool = false) throws -> Tensor {
        let file = try FileReader(path)
        let (h, off) = try parseHeader(try file.bytes(offset: 0, count: min(file.size, 65_536)), path: path)
        guard h.descr == "<f4" else {
            throw SVIError.file(path, "dtype '\(h.descr)' is not supported: svi needs float32 little-endian ('<f4'); convert with numpy: a.astype('<f4')")
        }
        guard !h.fortranOrder else { throw SVIError.file(path, "Fortran-order array: svi needs C order (np.ascontiguousarray)") }
        let n = try checkedSize(h, elementBytes: 4, offset: off, fileSize: file.size, path: path)
        // A sparse file can be as long as its header claims without holding the bytes.
        do { try FormatLimits.requireMemory(Double(n) * 4, for: "reading shape \(h.shape)") } catch let e as SVIError { throw e.about(path) }
        let t = Tensor(shape: h.shape, zeroed: false)
        try file.read(into: t.data, offset: off, count: n * 4)
        if !allowNonFinite, let bad = FiniteCheck.firstNonFinite(t.data, n) {
            throw SVIError.file(path, "holds NaN or infinite values (element \(bad) is \(t.data[bad])): svi needs finite pixel values")
        }
        return t
    }

    /// Reads an integer array (int64 or int32 little-endian) as `[Int]`, with its shape.
    public static func readIntegers(_ path: String) throws -> (shape: [Int], values: [Int]) {
        let file = try FileReader(path)
        let (h, off) = try parseHeader(try file.bytes(offset: 0, count: min(file.size, 65_536)), path: path)
        guard !h.fortranOrder || h.shape.count <= 1 else { throw SVIError.file(path, "Fortran-order array: svi needs C order") }
        let width: Int
        switch h.descr { case "<i8": width = 8; case "<i4": width = 4
        default: throw SVIError.file(path, "dtype '\(h.descr)' is not an integer type svi reads ('<i8' or '<i4')") }
        let n = try checkedSize(h, elementBytes: width, offset: off, fileSize: file.size, path: path)
        guard n <= 1 << 24 else { throw SVIError.file(path, "\(n) integers: svi reads integer arrays (timesteps) of up to \(1 << 24)") }
        let raw = try file.bytes(offset: off, count: n * width)
        var values = [Int](repeating: 0, count: n)
        raw.withUnsafeBytes { raw in
            for i in 0..<n {
                if width == 8 { values[i] = Int(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))) }
                else { values[i] = Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
            }
        }
        return (h.shape, values)
    }

    /// Serialises a float32 tensor as a version-1.0 .npy (header padded to 64 bytes).
    public static func encode(_ t: Tensor) -> Data {
        var d = header(shape: t.shape)
        d.append(Data(bytes: t.data, count: t.count * 4))
        return d
    }

    /// Writes atomically: a temporary file in the same folder, renamed when complete.
    public static func write(_ t: Tensor, to path: String, overwrite: Bool = true) throws {
        try AtomicFile.write(encode(t), to: path, overwrite: overwrite)
    }
}

/// Writes a float32 .npy frame block by frame block (the header first, with the final shape),
/// to a temporary name that `finish()` renames into place. Dropped unfinished, it deletes the
/// partial file: a half-written output never looks finished.
public final class NPYStreamWriter {
    public let path: String
    let temporary: String
    /// Where the data goes until `finish` renames it into place.
    public var temporaryPath: String { temporary }
    private var fd: Int32
    let expectedFloats: Int
    private var written = 0
    private var finished = false

    let overwrite: Bool

    public init(path: String, shape: [Int], overwrite: Bool) throws {
        try AtomicFile.checkWritable(path, overwrite: overwrite)
        self.path = path
        self.overwrite = overwrite
        let (tmp, fd) = try TemporaryName.file(for: path)
        temporary = tmp
        self.fd = fd
        expectedFloats = shape.reduce(1, *)
        let header = NPY.header(shape: shape)
        if let e = header.withUnsafeBytes({ AtomicFile.writeAll(fd, $0.baseAddress, $0.count) }) {
            close(fd); self.fd = -1
            unlink(tmp)
            throw SVIError.io(path, "cannot write: \(String(cString: strerror(e)))")
        }
    }

    public func append(_ data: UnsafePointer<Float>, count: Int) throws {
        if let e = AtomicFile.writeAll(fd, UnsafeRawPointer(data), count * 4) {
            throw SVIError.io(path, "cannot write: \(String(cString: strerror(e)))")
        }
        written += count
    }

    public func finish() throws {
        let closed = close(fd) == 0 ? nil : errno
        fd = -1
        if let e = closed {
            unlink(temporary)
            throw SVIError.io(path, "cannot write: \(String(cString: strerror(e)))")
        }
        guard written == expectedFloats else {
            unlink(temporary)
            throw SVIError.file(path, "internal error: wrote \(written) of \(expectedFloats) values")
        }
        do { try TemporaryName.moveIntoPlace(temporary, path, overwrite: overwrite) } catch { finished = true; throw error }
        finished = true
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !finished { unlink(temporary) }
    }
}

extension NPY {
    /// The version-1.0 header of a float32 C-order array of `shape` (padded to 64 bytes).
    public static func header(shape: [Int]) -> Data {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        let total = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var d = Data(magic + [1, 0])
        let hl = UInt16(header.utf8.count)
        d.append(contentsOf: [UInt8(hl & 0xff), UInt8(hl >> 8)])
        d.append(contentsOf: Array(header.utf8))
        return d
    }
}

/// Reads a float32 `.npy` video [T][…] one frame at a time (positioned reads), so a long
/// measurement is never whole in memory. The header is checked as `NPY.readFloat32` checks
/// it; each frame's values must be finite.
public final class NPYFrameReader {
    public let path: String
    public let shape: [Int]
    public var frames: Int { shape[0] }
    public let frameSize: Int
    private let file: FileReader
    private let offset: Int

    public init(_ path: String) throws {
        self.path = path
        file = try FileReader(path)
        let (h, off) = try NPY.parseHeader(try file.bytes(offset: 0, count: min(file.size, 65_536)), path: path)
        guard h.descr == "<f4" else {
            throw SVIError.file(path, "dtype '\(h.descr)' is not supported: svi needs float32 little-endian ('<f4'); convert with numpy: a.astype('<f4')")
        }
        guard !h.fortranOrder else { throw SVIError.file(path, "Fortran-order array: svi needs C order (np.ascontiguousarray)") }
        frameSize = try NPY.checkedFrames(h, offset: off, fileSize: file.size, path: path)
        shape = h.shape
        offset = off
    }

    /// Reads frame `index` into `dst` (frameSize floats).
    public func read(frame index: Int, into dst: UnsafeMutablePointer<Float>) throws {
        precondition(index >= 0 && index < frames)
        try file.read(into: dst, offset: offset + index * frameSize * 4, count: frameSize * 4)
        if let bad = FiniteCheck.firstNonFinite(dst, frameSize) {
            throw SVIError.file(path, "holds NaN or infinite values (element \(index * frameSize + bad) is \(dst[bad])): svi needs finite pixel values")
        }
    }
}

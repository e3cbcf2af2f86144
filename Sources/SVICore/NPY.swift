import Foundation

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

    /// Parses the header of `bytes`; returns it and the offset of the data.
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
        guard bytes.count >= start + headerLen else { throw SVIError.file(path, "truncated .npy header") }
        guard let text = String(bytes: bytes[start..<(start + headerLen)], encoding: major == 3 ? .utf8 : .isoLatin1) else {
            throw SVIError.file(path, "unreadable .npy header")
        }
        func value(_ key: String) throws -> Substring {
            guard let r = text.range(of: "'\(key)':") else { throw SVIError.file(path, ".npy header has no '\(key)'") }
            return text[r.upperBound...].drop(while: { $0 == " " })
        }
        let d = try value("descr")
        guard d.first == "'", let close = d.dropFirst().firstIndex(of: "'") else { throw SVIError.file(path, "malformed descr in .npy header") }
        let descr = String(d[d.index(after: d.startIndex)..<close])
        let fo = try value("fortran_order")
        let fortran = fo.hasPrefix("True")
        let s = try value("shape")
        guard s.first == "(", let end = s.firstIndex(of: ")") else { throw SVIError.file(path, "malformed shape in .npy header") }
        let dims = s[s.index(after: s.startIndex)..<end].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var shape: [Int] = []
        for dim in dims {
            guard let v = Int(dim), v >= 0 else { throw SVIError.file(path, "malformed shape in .npy header") }
            shape.append(v)
        }
        return (Header(descr: descr, fortranOrder: fortran, shape: shape), start + headerLen)
    }

    static func readBytes(_ path: String) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else { throw SVIError.file(path, "no such file") }
        guard let d = FileManager.default.contents(atPath: path) else { throw SVIError.file(path, "cannot read file") }
        return [UInt8](d)
    }

    /// The shape of a float32 .npy without reading its data (plans, dry runs); checks that the
    /// file is as long as the header says.
    public static func shapeOfFloat32(_ path: String) throws -> [Int] {
        guard let fh = FileHandle(forReadingAtPath: path) else {
            throw SVIError.file(path, FileManager.default.fileExists(atPath: path) ? "cannot read file" : "no such file")
        }
        defer { try? fh.close() }
        let head = [UInt8](fh.readData(ofLength: 65_536))
        let (h, off) = try parseHeader(head, path: path)
        guard h.descr == "<f4", !h.fortranOrder else { throw SVIError.file(path, "dtype '\(h.descr)' is not supported: svi needs float32 little-endian ('<f4') in C order") }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        guard size - off >= h.shape.reduce(1, *) * 4 else { throw SVIError.file(path, "truncated: shape \(h.shape) needs \(h.shape.reduce(1, *) * 4) data bytes") }
        return h.shape
    }

    /// Reads a float32 little-endian C-order array.
    public static func readFloat32(_ path: String) throws -> Tensor {
        let bytes = try readBytes(path)
        let (h, off) = try parseHeader(bytes, path: path)
        guard h.descr == "<f4" else {
            throw SVIError.file(path, "dtype '\(h.descr)' is not supported: svi needs float32 little-endian ('<f4'); convert with numpy: a.astype('<f4')")
        }
        guard !h.fortranOrder else { throw SVIError.file(path, "Fortran-order array: svi needs C order (np.ascontiguousarray)") }
        let t = Tensor(shape: h.shape, zeroed: false)
        guard bytes.count - off >= t.count * 4 else {
            throw SVIError.file(path, "truncated: shape \(h.shape) needs \(t.count * 4) data bytes, file has \(bytes.count - off)")
        }
        bytes.withUnsafeBytes { raw in
            UnsafeMutableRawPointer(t.data).copyMemory(from: raw.baseAddress! + off, byteCount: t.count * 4)
        }
        return t
    }

    /// Reads an integer array (int64 or int32 little-endian) as `[Int]`, with its shape.
    public static func readIntegers(_ path: String) throws -> (shape: [Int], values: [Int]) {
        let bytes = try readBytes(path)
        let (h, off) = try parseHeader(bytes, path: path)
        guard !h.fortranOrder || h.shape.count <= 1 else { throw SVIError.file(path, "Fortran-order array: svi needs C order") }
        let n = h.shape.reduce(1, *)
        let width: Int
        switch h.descr { case "<i8": width = 8; case "<i4": width = 4
        default: throw SVIError.file(path, "dtype '\(h.descr)' is not an integer type svi reads ('<i8' or '<i4')") }
        guard bytes.count - off >= n * width else { throw SVIError.file(path, "truncated: shape \(h.shape) needs \(n * width) data bytes") }
        var values = [Int](repeating: 0, count: n)
        bytes.withUnsafeBytes { raw in
            for i in 0..<n {
                if width == 8 { values[i] = Int(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: off + 8 * i, as: Int64.self))) }
                else { values[i] = Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: off + 4 * i, as: Int32.self))) }
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
    let handle: FileHandle
    let expectedFloats: Int
    private var written = 0
    private var finished = false

    public init(path: String, shape: [Int], overwrite: Bool) throws {
        try AtomicFile.checkWritable(path, overwrite: overwrite)
        self.path = path
        temporary = AtomicFile.temporaryPath(for: path)
        expectedFloats = shape.reduce(1, *)
        guard FileManager.default.createFile(atPath: temporary, contents: NPY.header(shape: shape)) else {
            throw SVIError.file(path, "cannot write (temporary file \(temporary))")
        }
        guard let h = FileHandle(forWritingAtPath: temporary) else { throw SVIError.file(path, "cannot open \(temporary)") }
        handle = h
        handle.seekToEndOfFile()
    }

    public func append(_ data: UnsafePointer<Float>, count: Int) throws {
        handle.write(Data(bytes: data, count: count * 4))
        written += count
    }

    public func finish() throws {
        try handle.close()
        guard written == expectedFloats else {
            unlink(temporary)
            throw SVIError.file(path, "internal error: wrote \(written) of \(expectedFloats) values")
        }
        if rename(temporary, path) != 0 {
            let err = String(cString: strerror(errno))
            unlink(temporary)
            throw SVIError.file(path, "cannot move the finished file into place: \(err)")
        }
        finished = true
    }

    deinit {
        if !finished { try? handle.close(); unlink(temporary) }
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

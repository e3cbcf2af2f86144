import Foundation
import SVICore

/// The stored (uncompressed) entries of a zip archive, as PyTorch's `torch.save` writes them
/// (with ZIP64 records for large files). Compressed entries are refused by name.
struct ZipArchive {
    struct Entry { let name: String; let offset: Int; let size: Int; let method: UInt16 }
    let entries: [String: Entry]
    let data: Data
    let path: String

    init(_ data: Data, path: String) throws {
        self.data = data; self.path = path
        let bytes = data
        func u16(_ o: Int) -> Int { Int(bytes[bytes.startIndex + o]) | Int(bytes[bytes.startIndex + o + 1]) << 8 }
        func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
        func u64(_ o: Int) -> Int { u32(o) | u32(o + 4) << 32 }
        let truncated = SVIError.file(path, "truncated or corrupt zip archive (no central directory)")
        // End of central directory: scan back over a possible comment.
        var eocd = -1
        var i = bytes.count - 22
        while i >= max(0, bytes.count - 22 - 65_535) {
            if u32(i) == 0x0605_4b50 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw truncated }
        var count = u16(eocd + 10), cdSize = u32(eocd + 12), cdOffset = u32(eocd + 16)
        if (count == 0xffff || cdOffset == 0xffff_ffff || cdSize == 0xffff_ffff), eocd >= 20, u32(eocd - 20) == 0x0706_4b50 {
            let z = u64(eocd - 20 + 8)
            guard z + 56 <= bytes.count, u32(z) == 0x0606_4b50 else { throw truncated }
            count = u64(z + 32); cdSize = u64(z + 40); cdOffset = u64(z + 48)
        }
        guard cdOffset + cdSize <= bytes.count else { throw truncated }
        var entries: [String: Entry] = [:]
        var p = cdOffset
        for _ in 0..<count {
            guard p + 46 <= bytes.count, u32(p) == 0x0201_4b50 else { throw truncated }
            let method = UInt16(u16(p + 10))
            var size = u32(p + 24)
            let nameLen = u16(p + 28), extraLen = u16(p + 30), commentLen = u16(p + 32)
            var local = u32(p + 42)
            guard p + 46 + nameLen + extraLen <= bytes.count else { throw truncated }
            let name = String(decoding: bytes[(bytes.startIndex + p + 46)..<(bytes.startIndex + p + 46 + nameLen)], as: UTF8.self)
            // ZIP64 extra field: 64-bit sizes/offset for the fields set to 0xffffffff, in order.
            var e = p + 46 + nameLen
            let eEnd = e + extraLen
            while e + 4 <= eEnd {
                let id = u16(e), len = u16(e + 2)
                if id == 0x0001 {
                    var q = e + 4
                    if u32(p + 24) == 0xffff_ffff { size = u64(q); q += 8 }
                    if u32(p + 20) == 0xffff_ffff { q += 8 }
                    if u32(p + 42) == 0xffff_ffff { local = u64(q) }
                }
                e += 4 + len
            }
            guard local + 30 <= bytes.count, u32(local) == 0x0403_4b50 else { throw truncated }
            let start = local + 30 + u16(local + 26) + u16(local + 28)
            guard start + size <= bytes.count else {
                throw SVIError.file(path, "truncated: zip entry '\(name)' ends past the end of the file")
            }
            entries[name] = Entry(name: name, offset: start, size: size, method: method)
            p += 46 + nameLen + extraLen + commentLen
        }
        self.entries = entries
    }

    /// The bytes of a stored entry.
    func contents(_ name: String) throws -> Data {
        guard let e = entries[name] else { throw SVIError.file(path, "zip archive has no entry '\(name)'") }
        guard e.method == 0 else { throw SVIError.file(path, "zip entry '\(name)' is compressed (method \(e.method)); PyTorch writes stored entries — re-save with torch.save") }
        return data.subdata(in: (data.startIndex + e.offset)..<(data.startIndex + e.offset + e.size))
    }
}

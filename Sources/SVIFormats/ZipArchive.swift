import Foundation
import SVICore

/// The stored (uncompressed) entries of a zip archive, as PyTorch's `torch.save` writes them
/// (with ZIP64 records for large files), read through positioned reads. Compressed entries are
/// refused by name.
struct ZipArchive {
    struct Entry { let name: String; let offset: Int; let size: Int; let method: UInt16 }
    let entries: [String: Entry]
    let file: FileReader
    var path: String { file.path }

    /// Entries a checkpoint may have (PyTorch writes one per tensor storage plus a few).
    static let maxEntries = 1_000_000

    init(_ file: FileReader) throws {
        self.file = file
        let path = file.path
        let truncated = SVIError.file(path, "truncated or corrupt zip archive (no central directory)")
        // Every size and offset below comes from the file: each is checked (non-negative, no
        // overflow, inside the file) before it is used to read or allocate.
        func within(_ offset: Int, _ count: Int) -> Bool { FormatLimits.end(offset: offset, count: count, within: file.size) != nil }
        // The tail holds the end-of-central-directory record (after a comment of ≤ 64 KB) and
        // the ZIP64 locator just before it.
        guard file.size >= 22 else { throw truncated }
        let tailStart = max(0, file.size - (22 + 65_535 + 20))
        let tail = try file.bytes(offset: tailStart, count: file.size - tailStart)
        func t16(_ o: Int) -> Int { Int(tail[o - tailStart]) | Int(tail[o - tailStart + 1]) << 8 }
        func t32(_ o: Int) -> Int { t16(o) | t16(o + 2) << 16 }
        /// Unsigned 64-bit fields above Int.max are as invalid as any other out-of-file value.
        func u64(_ lo: Int, _ hi: Int) -> Int { hi >= 0x8000_0000 ? -1 : lo | hi << 32 }
        var eocd = -1
        var i = file.size - 22
        while i >= tailStart {
            if t32(i) == 0x0605_4b50 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw truncated }
        var count = t16(eocd + 10), cdSize = t32(eocd + 12), cdOffset = t32(eocd + 16)
        if (count == 0xffff || cdOffset == 0xffff_ffff || cdSize == 0xffff_ffff), eocd - 20 >= tailStart, t32(eocd - 20) == 0x0706_4b50 {
            let z = u64(t32(eocd - 20 + 8), t32(eocd - 20 + 12))
            guard within(z, 56) else { throw truncated }
            let rec = try file.bytes(offset: z, count: 56)
            func r32(_ o: Int) -> Int { Int(rec[o]) | Int(rec[o + 1]) << 8 | Int(rec[o + 2]) << 16 | Int(rec[o + 3]) << 24 }
            guard r32(0) == 0x0606_4b50 else { throw truncated }
            count = u64(r32(32), r32(36)); cdSize = u64(r32(40), r32(44)); cdOffset = u64(r32(48), r32(52))
        }
        guard count >= 0, count <= ZipArchive.maxEntries, within(cdOffset, cdSize) else { throw truncated }
        let bytes = try file.bytes(offset: cdOffset, count: cdSize)
        func u16(_ o: Int) -> Int { Int(bytes[o]) | Int(bytes[o + 1]) << 8 }
        func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
        var entries: [String: Entry] = [:]
        var p = 0
        for _ in 0..<count {
            guard p + 46 <= bytes.count, u32(p) == 0x0201_4b50 else { throw truncated }
            let method = UInt16(u16(p + 10))
            var size = u32(p + 24)
            let nameLen = u16(p + 28), extraLen = u16(p + 30), commentLen = u16(p + 32)
            var local = u32(p + 42)
            guard p + 46 + nameLen + extraLen + commentLen <= bytes.count else { throw truncated }
            let name = String(decoding: bytes[(p + 46)..<(p + 46 + nameLen)], as: UTF8.self)
            // ZIP64 extra field: 64-bit sizes/offset for the fields set to 0xffffffff, in order.
            var e = p + 46 + nameLen
            let eEnd = e + extraLen
            while e + 4 <= eEnd {
                let id = u16(e), len = u16(e + 2)
                guard e + 4 + len <= eEnd else { throw truncated }
                if id == 0x0001 {
                    var q = e + 4
                    let qEnd = e + 4 + len
                    func next() throws -> Int {
                        guard q + 8 <= qEnd else { throw truncated }
                        defer { q += 8 }
                        return u64(u32(q), u32(q + 4))
                    }
                    if u32(p + 24) == 0xffff_ffff { size = try next() }
                    if u32(p + 20) == 0xffff_ffff { _ = try next() }
                    if u32(p + 42) == 0xffff_ffff { local = try next() }
                }
                e += 4 + len
            }
            guard within(local, 30) else { throw truncated }
            let lh = try file.bytes(offset: local, count: 30)
            let l16 = { (o: Int) in Int(lh[o]) | Int(lh[o + 1]) << 8 }
            guard l16(0) | l16(2) << 16 == 0x0403_4b50 else { throw truncated }
            let start = local + 30 + l16(26) + l16(28)   // local < file.size: no overflow
            guard within(start, size) else {
                throw SVIError.file(path, "truncated or corrupt: zip entry '\(name)' lies outside the file")
            }
            entries[name] = Entry(name: name, offset: start, size: size, method: method)
            p += 46 + nameLen + extraLen + commentLen
        }
        self.entries = entries
    }

    /// A stored entry (where its bytes lie in the file).
    func entry(_ name: String) throws -> Entry {
        guard let e = entries[name] else { throw SVIError.file(path, "zip archive has no entry '\(name)'") }
        guard e.method == 0 else { throw SVIError.file(path, "zip entry '\(name)' is compressed (method \(e.method)); PyTorch writes stored entries — re-save with torch.save") }
        return e
    }

    /// The bytes of a (small) stored entry.
    func contents(_ name: String) throws -> [UInt8] {
        let e = try entry(name)
        return try file.bytes(offset: e.offset, count: e.size)
    }
}

import SVICore

/// NumPy's `.npy` header: a Python dict literal with exactly the keys `descr` (a string),
/// `fortran_order` (True/False) and `shape` (a tuple of non-negative integers), as `np.save`
/// writes it. Parsed token by token; anything else is an error naming the file and the byte.
struct HeaderParser {
    let bytes: [UInt8]
    let path: String
    var pos = 0

    init(bytes: [UInt8], path: String) { self.bytes = bytes; self.path = path }

    func fail(_ why: String) -> SVIError { SVIError.file(path, "malformed .npy header: \(why) at header byte \(pos)") }

    mutating func skipSpace() { while pos < bytes.count, [0x20, 0x09, 0x0a, 0x0d].contains(bytes[pos]) { pos += 1 } }

    mutating func expect(_ c: UInt8) throws {
        skipSpace()
        guard pos < bytes.count, bytes[pos] == c else { throw fail("expected '\(Character(Unicode.Scalar(c)))'") }
        pos += 1
    }

    mutating func peek() -> UInt8? { skipSpace(); return pos < bytes.count ? bytes[pos] : nil }

    mutating func string() throws -> String {
        skipSpace()
        guard pos < bytes.count, bytes[pos] == 0x27 || bytes[pos] == 0x22 else { throw fail("expected a quoted string") }
        let quote = bytes[pos]
        pos += 1
        let start = pos
        while pos < bytes.count, bytes[pos] != quote {
            guard bytes[pos] != 0x5c, bytes[pos] >= 0x20, bytes[pos] < 0x7f else { throw fail("unexpected character in a string") }
            pos += 1
        }
        guard pos < bytes.count, pos - start <= 64 else { throw fail("unterminated or overlong string") }
        pos += 1
        return String(decoding: bytes[start..<(pos - 1)], as: UTF8.self)
    }

    mutating func word() -> String {
        skipSpace()
        let start = pos
        while pos < bytes.count, (bytes[pos] >= 0x41 && bytes[pos] <= 0x5a) || (bytes[pos] >= 0x61 && bytes[pos] <= 0x7a) { pos += 1 }
        return String(decoding: bytes[start..<pos], as: UTF8.self)
    }

    /// A non-negative decimal integer of at most 18 digits (no overflow possible).
    mutating func integer() throws -> Int {
        skipSpace()
        let start = pos
        var v = 0
        while pos < bytes.count, bytes[pos] >= 0x30, bytes[pos] <= 0x39 {
            guard pos - start < 18 else { throw fail("dimension too large") }
            v = v * 10 + Int(bytes[pos] - 0x30)
            pos += 1
        }
        guard pos > start else { throw fail("expected a non-negative integer") }
        if pos < bytes.count, bytes[pos] == 0x4c { pos += 1 }   // Python 2's long suffix
        return v
    }

    mutating func shape() throws -> [Int] {
        try expect(0x28)
        var dims: [Int] = []
        while peek() != 0x29 {
            dims.append(try integer())
            guard dims.count <= FormatLimits.maxRank else { throw fail("more than \(FormatLimits.maxRank) dimensions") }
            if peek() == 0x2c { pos += 1 } else { break }
        }
        try expect(0x29)
        return dims
    }

    mutating func parse() throws -> NPY.Header {
        try expect(0x7b)
        var descr: String?, fortran: Bool?, dims: [Int]?
        while peek() != 0x7d {
            let key = try string()
            try expect(0x3a)
            switch key {
            case "descr":
                guard descr == nil else { throw fail("'descr' given twice") }
                descr = try string()
            case "fortran_order":
                guard fortran == nil else { throw fail("'fortran_order' given twice") }
                switch word() { case "True": fortran = true; case "False": fortran = false; default: throw fail("fortran_order must be True or False") }
            case "shape":
                guard dims == nil else { throw fail("'shape' given twice") }
                dims = try shape()
            default:
                throw fail("unknown key '\(key)'")
            }
            if peek() == 0x2c { pos += 1 } else { break }
        }
        try expect(0x7d)
        guard let d = descr else { throw SVIError.file(path, ".npy header has no 'descr'") }
        guard let f = fortran else { throw SVIError.file(path, ".npy header has no 'fortran_order'") }
        guard let s = dims else { throw SVIError.file(path, ".npy header has no 'shape'") }
        return NPY.Header(descr: d, fortranOrder: f, shape: s)
    }
}

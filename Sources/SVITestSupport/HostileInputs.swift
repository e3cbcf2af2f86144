import Foundation

/// Builders of crafted files, as an attacker would write them: used by the tests of every
/// loader (each example of issue 17 is one of these) and to seed the fuzzers' corpora.
public enum Crafted {
    /// A safetensors file: the 8-byte header length (or `lengthOverride`), the JSON, the data.
    public static func safetensors(header: String, data: [UInt8], lengthOverride: UInt64? = nil) -> Data {
        var d = Data()
        var n = (lengthOverride ?? UInt64(header.utf8.count)).littleEndian
        d.append(Data(bytes: &n, count: 8))
        d.append(contentsOf: Array(header.utf8))
        d.append(contentsOf: data)
        return d
    }

    /// A `.npy` file with a literal header text (padded as NumPy pads it) and payload.
    public static func npy(header: String, payload: [UInt8]) -> Data {
        var h = header
        let total = 10 + h.utf8.count + 1
        h += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var d = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(h.utf8.count & 0xff), UInt8(h.utf8.count >> 8)])
        d.append(contentsOf: Array(h.utf8))
        d.append(contentsOf: payload)
        return d
    }

    // MARK: pickles

    /// Pickle opcodes for a PyTorch state dict, protocol 2.
    public struct Pickle {
        public var bytes: [UInt8] = [0x80, 0x02]
        public init() {}
        mutating func op(_ b: UInt8) { bytes.append(b) }
        public mutating func global(_ module: String, _ name: String) { op(0x63); bytes += Array((module + "\n" + name + "\n").utf8) }
        public mutating func string(_ s: String) {
            op(0x58)
            let u = Array(s.utf8)
            bytes += withUnsafeBytes(of: UInt32(u.count).littleEndian, Array.init) + u
        }
        /// Any Int64, as LONG1 (8 bytes, two's complement).
        public mutating func int(_ v: Int64) { op(0x8a); op(8); bytes += withUnsafeBytes(of: v.littleEndian, Array.init) }
        public mutating func mark() { op(0x28) }
        public mutating func tuple() { op(0x74) }
        public mutating func reduce() { op(0x52) }
        public mutating func persid() { op(0x51) }
        public mutating func setitem() { op(0x73) }
        public mutating func stop() { op(0x2e) }
        public mutating func emptyTuple() { op(0x29) }
        public mutating func falseValue() { op(0x89) }
    }

    /// `{name: tensor}` whose tensor is `_rebuild_tensor_v2(storage '0' of `numel` floats,
    /// offset, size, stride)`.
    public static func stateDictPickle(name: String = "w", numel: Int64, offset: Int64, size: [Int64], stride: [Int64]) -> [UInt8] {
        var p = Pickle()
        p.global("collections", "OrderedDict"); p.emptyTuple(); p.reduce()
        p.string(name)
        p.global("torch._utils", "_rebuild_tensor_v2")
        p.mark()
        p.mark(); p.string("storage"); p.global("torch", "FloatStorage"); p.string("0"); p.string("cpu"); p.int(numel); p.tuple(); p.persid()
        p.int(offset)
        p.mark(); for s in size { p.int(s) }; p.tuple()
        p.mark(); for s in stride { p.int(s) }; p.tuple()
        p.falseValue()
        p.tuple()
        p.reduce()
        p.setitem()
        p.stop()
        return p.bytes
    }

    // MARK: zip

    public struct ZipEntry {
        public var name: String
        public var data: [UInt8]
        /// When set, the central directory records this size through a ZIP64 extra field.
        public var zip64Size: UInt64?
        public init(_ name: String, _ data: [UInt8], zip64Size: UInt64? = nil) { self.name = name; self.data = data; self.zip64Size = zip64Size }
    }

    /// A stored (uncompressed) zip archive, as `torch.save` writes one.
    public static func zip(_ entries: [ZipEntry], eocdCountOverride: UInt16? = nil) -> Data {
        var out: [UInt8] = []
        func u16(_ v: Int) -> [UInt8] { [UInt8(v & 0xff), UInt8((v >> 8) & 0xff)] }
        func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
        func u64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
        var central: [UInt8] = []
        for e in entries {
            let offset = UInt32(out.count)
            let name = Array(e.name.utf8)
            out += u32(0x0403_4b50) + u16(20) + u16(0) + u16(0) + u16(0) + u16(0) + u32(0)
            out += u32(UInt32(e.data.count)) + u32(UInt32(e.data.count)) + u16(name.count) + u16(0) + name + e.data
            var extra: [UInt8] = []
            var size32 = UInt32(e.data.count)
            if let big = e.zip64Size { extra = u16(1) + u16(8) + u64(big); size32 = 0xffff_ffff }
            central += u32(0x0201_4b50) + u16(20) + u16(20) + u16(0) + u16(0) + u16(0) + u16(0) + u32(0)
            central += u32(UInt32(e.data.count)) + u32(size32) + u16(name.count) + u16(extra.count) + u16(0) + u16(0) + u16(0) + u32(0) + u32(offset)
            central += name + extra
        }
        let cdOffset = out.count
        out += central
        let count = Int(eocdCountOverride ?? UInt16(entries.count))
        out += u32(0x0605_4b50) + u16(0) + u16(0) + u16(count) + u16(count) + u32(UInt32(central.count)) + u32(UInt32(cdOffset)) + u16(0)
        return Data(out)
    }

    /// A PyTorch zip checkpoint holding `pickle` and one storage of `storage` bytes.
    public static func torchCheckpoint(pickle: [UInt8], storage: [UInt8], storageZip64Size: UInt64? = nil) -> Data {
        zip([ZipEntry("archive/data.pkl", pickle), ZipEntry("archive/byteorder", Array("little".utf8)),
             ZipEntry("archive/data/0", storage, zip64Size: storageZip64Size)])
    }
}

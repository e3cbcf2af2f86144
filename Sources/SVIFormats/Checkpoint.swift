import Foundation
import SVICore

/// Named float32 tensors from a checkpoint file, whatever its format and storage dtype.
public struct Checkpoint {
    public var tensors: [String: Tensor]
    /// Storage dtypes seen in the file ("F32", "F16", "BF16"), for `svi model info`.
    public var storageDTypes: Set<String>
    public var format: String

    public var parameterCount: Int { tensors.values.reduce(0) { $0 + $1.count } }

    /// SHA-256-free identity of the weights, cheap to compute: size + FNV-1a of every tensor's
    /// name and bytes. Used to tell checkpoints apart in reports.
    public var fingerprint: String {
        var h: UInt64 = 0xcbf29ce484222325
        for name in tensors.keys.sorted() {
            for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
            let t = tensors[name]!
            let raw = UnsafeRawBufferPointer(start: t.data, count: t.count * 4)
            var i = 0
            while i < raw.count { h = (h ^ UInt64(raw[i])) &* 0x100000001b3; i += 97 }
        }
        return String(format: "%016llx", h)
    }

    /// Reads a `.safetensors` file or a PyTorch zip `.pt`/`.pth` (by content, not extension),
    /// tensor by tensor from disk.
    public static func load(_ path: String) throws -> Checkpoint {
        let file = try FileReader(path)
        guard file.size >= 8 else { throw SVIError.file(path, "too short to be a checkpoint (\(file.size) bytes)") }
        let head = try file.bytes(offset: 0, count: min(16, file.size))
        if head[0] == 0x50 && head[1] == 0x4B {
            return try TorchZip.load(file)
        }
        if file.size > 9 && head[8] == UInt8(ascii: "{") {
            return try SafeTensors.load(file)
        }
        if head[0] == 0x80 {
            throw SVIError.file(path, "legacy (non-zip) PyTorch checkpoint; convert it once with: python -c \"import torch; torch.save(torch.load('\(path)', map_location='cpu', weights_only=True), 'converted.pt')\"")
        }
        throw SVIError.file(path, "not a checkpoint: neither safetensors nor a PyTorch zip archive")
    }
}

/// IEEE half and bfloat16 to float32.
enum HalfFloat {
    @inline(__always) static func half(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exp = Int((h >> 10) & 0x1f), mant = UInt32(h & 0x3ff)
        if exp == 0 {
            if mant == 0 { return Float(bitPattern: sign) }
            let v = Float(mant) * Float(sign: .plus, exponent: -24, significand: 1)   // subnormal: mant·2⁻²⁴
            return sign != 0 ? -v : v
        }
        if exp == 31 { return Float(bitPattern: sign | 0x7f80_0000 | (mant << 13)) }
        return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
    }

    @inline(__always) static func bfloat(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

    /// float32 to IEEE half, round to nearest even (for writing float16 checkpoints).
    static func toHalf(_ f: Float) -> UInt16 {
        let bits = f.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let exp = Int((bits >> 23) & 0xff) - 127 + 15
        var mant = bits & 0x7f_ffff
        if (bits >> 23) & 0xff == 0xff { return sign | 0x7c00 | (mant != 0 ? 0x200 : 0) }
        if exp >= 31 { return sign | 0x7c00 }
        if exp <= 0 {
            if exp < -10 { return sign }
            mant |= 0x80_0000
            let shift = UInt32(14 - exp)
            var h = UInt16(mant >> shift)
            let rem = mant & ((1 << shift) - 1), halfway = UInt32(1) << (shift - 1)
            if rem > halfway || (rem == halfway && h & 1 == 1) { h += 1 }
            return sign | h
        }
        var h = UInt16(exp) << 10 | UInt16(mant >> 13)
        let rem = mant & 0x1fff
        if rem > 0x1000 || (rem == 0x1000 && h & 1 == 1) { h += 1 }
        return sign | h
    }
}

/// Copies `count` elements of a storage dtype at `src` into float32.
func decodeElements(_ src: UnsafeRawPointer, dtype: String, count: Int, into dst: UnsafeMutablePointer<Float>, path: String) throws {
    switch dtype {
    case "F32":
        UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
    case "F16":
        for i in 0..<count { dst[i] = HalfFloat.half(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
    case "BF16":
        for i in 0..<count { dst[i] = HalfFloat.bfloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
    case "F64":
        for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
    default:
        throw SVIError.file(path, "tensor dtype \(dtype) is not supported (F32, F16, BF16, F64)")
    }
}

func elementSize(_ dtype: String) -> Int? {
    switch dtype { case "F32": 4; case "F16", "BF16": 2; case "F64": 8; default: nil }
}

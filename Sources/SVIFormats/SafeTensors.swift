import Foundation
import SVICore

/// safetensors: an 8-byte little-endian header length, a JSON header mapping names to
/// {dtype, shape, data_offsets}, then the raw data. Every offset is checked against the file.
public enum SafeTensors {
    /// The JSON header of a safetensors file (the format itself caps it at 100 MB).
    static let maxHeaderBytes = 100_000_000

    static func load(_ file: FileReader) throws -> Checkpoint {
        let path = file.path
        let raw = try file.bytes(offset: 0, count: 8)
        let n64 = raw.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.1) << UInt64(8 * $1.0) }
        // Checked before any arithmetic: a length near 2⁶⁴ must not wrap the bounds test.
        guard n64 > 0, n64 <= UInt64(file.size - 8), n64 <= UInt64(maxHeaderBytes) else {
            throw SVIError.file(path, "truncated or corrupt safetensors header (says \(n64) bytes, file has \(file.size), limit \(maxHeaderBytes))")
        }
        let n = Int(n64)
        guard let header = try? JSONSerialization.jsonObject(with: Data(try file.bytes(offset: 8, count: n))) as? [String: Any] else {
            throw SVIError.file(path, "corrupt safetensors header (not a JSON object)")
        }
        let base = 8 + n
        var tensors: [String: Tensor] = [:]
        var dtypes = Set<String>()
        for (name, value) in header where name != "__metadata__" {
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2 else {
                throw SVIError.file(path, "corrupt safetensors entry for '\(name)'")
            }
            guard let size = elementSize(dtype) else { throw SVIError.file(path, "tensor '\(name)' has dtype \(dtype); svi reads F32, F16, BF16, F64") }
            guard let count = FormatLimits.elementCount(shape) else {
                throw SVIError.file(path, "tensor '\(name)' has shape \(shape), which is not a tensor svi can hold")
            }
            // Every quantity is checked without overflow before anything is allocated.
            guard offsets[0] >= 0, offsets[1] >= offsets[0], offsets[1] - offsets[0] == count * size,
                  FormatLimits.end(offset: base, count: offsets[1], within: file.size) != nil else {
                throw SVIError.file(path, "truncated or corrupt: tensor '\(name)' (\(dtype) \(shape)) lies outside the file or disagrees with its offsets")
            }
            do { try FormatLimits.requireMemory(Double(count) * 4, for: "tensor '\(name)'") } catch let e as SVIError { throw e.about(path) }
            let t = Tensor(shape: shape, zeroed: false)
            try file.readElements(dtype: dtype, offset: base + offsets[0], count: count, into: t.data)
            try FiniteCheck.require(t, name: name, path: path)
            tensors[name] = t
            dtypes.insert(dtype)
        }
        return Checkpoint(tensors: tensors, storageDTypes: dtypes, format: "safetensors")
    }

    /// Writes tensors as safetensors (F32, or F16 when `half`), atomically.
    public static func write(_ tensors: [String: Tensor], to path: String, half: Bool = false, metadata: [String: String] = [:]) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let t = tensors[name]!
            let bytes = t.count * (half ? 2 : 4)
            header[name] = ["dtype": half ? "F16" : "F32", "shape": t.shape, "data_offsets": [offset, offset + bytes]]
            offset += bytes
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var out = Data()
        var n = UInt64(json.count).littleEndian
        out.append(Data(bytes: &n, count: 8))
        out.append(json)
        for name in names {
            let t = tensors[name]!
            if half {
                var h = [UInt16](repeating: 0, count: t.count)
                for i in 0..<t.count { h[i] = HalfFloat.toHalf(t[i]).littleEndian }
                h.withUnsafeBytes { out.append(contentsOf: $0) }
            } else {
                out.append(Data(bytes: t.data, count: t.count * 4))
            }
        }
        try AtomicFile.write(out, to: path, overwrite: true)
    }
}

import Foundation
import SVICore

/// safetensors: an 8-byte little-endian header length, a JSON header mapping names to
/// {dtype, shape, data_offsets}, then the raw data. Every offset is checked against the file.
public enum SafeTensors {
    static func load(_ file: FileReader) throws -> Checkpoint {
        let path = file.path
        let n = try file.bytes(offset: 0, count: 8).enumerated().reduce(0) { $0 | Int($1.1) << (8 * $1.0) }
        guard n > 0, 8 + n <= file.size else { throw SVIError.file(path, "truncated safetensors header (says \(n) bytes, file has \(file.size))") }
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
            let count = shape.reduce(1, *)
            guard offsets[0] >= 0, offsets[1] - offsets[0] == count * size, base + offsets[1] <= file.size else {
                throw SVIError.file(path, "truncated or corrupt: tensor '\(name)' (\(dtype) \(shape)) lies outside the file")
            }
            let t = Tensor(shape: shape, zeroed: false)
            try file.readElements(dtype: dtype, offset: base + offsets[0], count: count, into: t.data)
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

import Foundation
import SVICore

/// A restricted pickle reader for PyTorch `state_dict` files (protocols 2–5).
///
/// It interprets only the opcodes a state dict uses and resolves only a short list of
/// globals; any other global is an error naming it. Nothing is ever imported or executed:
/// "calls" (REDUCE) are interpreted by this file for the allowed globals alone.
final class Unpickler {
    /// The globals a state dict may name, and nothing else.
    static let allowedGlobals: Set<String> = [
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
        "torch.FloatStorage", "torch.HalfStorage", "torch.BFloat16Storage", "torch.DoubleStorage",
    ]

    final class Box<T> { var value: T; init(_ v: T) { value = v } }

    struct Storage { let dtype: String; let key: String }

    indirect enum Value {
        case none, bool(Bool), int(Int), float(Double), string(String), bytes([UInt8])
        case tuple([Value]), list(Box<[Value]>), dict(Box<[(Value, Value)]>)
        case global(String), storage(Storage), tensor(Tensor), mark

        var string: String? { if case .string(let s) = self { return s }; return nil }
        var int: Int? { if case .int(let i) = self { return i }; return nil }
        var items: [Value]? {
            switch self { case .tuple(let t): return t; case .list(let l): return l.value; default: return nil }
        }
    }

    let bytes: [UInt8]
    let path: String
    let file: FileReader
    /// Where a persistent id's storage ('storage', type, key, location, numel) lies in the file.
    let locateStorage: (Storage) throws -> ZipArchive.Entry
    private var pos = 0
    private var stack: [Value] = []
    private var memo: [Int: Value] = [:]
    private var marks: [Int] = []

    init(_ pickle: [UInt8], file: FileReader, locateStorage: @escaping (Storage) throws -> ZipArchive.Entry) {
        bytes = pickle; self.file = file; path = file.path; self.locateStorage = locateStorage
    }

    private func fail(_ why: String) -> SVIError { SVIError.file(path, "corrupt or unsupported pickle: \(why) at byte \(pos)") }

    private func read(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= bytes.count - pos else { throw fail("truncated") }   // no `pos + n`: n may be near 2⁶³
        defer { pos += n }
        return bytes[pos..<(pos + n)]
    }
    private func le(_ n: Int) throws -> Int {
        var v = 0
        for (i, b) in try read(n).enumerated() { v |= Int(b) << (8 * i) }
        return v
    }
    private func line() throws -> String {
        guard let nl = bytes[pos...].firstIndex(of: 0x0a) else { throw fail("unterminated text") }
        defer { pos = nl + 1 }
        return String(decoding: bytes[pos..<nl], as: UTF8.self)
    }
    private func pop() throws -> Value {
        guard let v = stack.popLast() else { throw fail("stack underflow") }
        return v
    }
    private func popMark() throws -> [Value] {
        guard let m = marks.popLast(), m <= stack.count else { throw fail("MARK missing") }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    /// Bounds on what a pickle may build: a state dict needs a few thousand stack entries
    /// and memo slots; a crafted file must not fill memory with millions of empty lists.
    static let maxStack = 100_000, maxMemo = 1_000_000

    func load() throws -> Value {
        while true {
            guard stack.count <= Unpickler.maxStack, memo.count <= Unpickler.maxMemo, marks.count <= Unpickler.maxStack else {
                throw fail("more nested values than a state dict has")
            }
            let op = try read(1).first!
            if op == 0x2e { return try pop() }                           // STOP
            if let v = try literal(op) { stack.append(v); continue }
            if try collect(op) { continue }
            switch op {
            case 0x80: _ = try read(1)                                   // PROTO
            case 0x95: _ = try read(8)                                   // FRAME
            case 0x28: marks.append(stack.count)                         // MARK
            case 0x71: memo[try le(1)] = stack.last                      // BINPUT
            case 0x72: memo[try le(4)] = stack.last                      // LONG_BINPUT
            case 0x94: memo[memo.count] = stack.last                     // MEMOIZE
            case 0x68, 0x6a:                                             // BINGET, LONG_BINGET
                let k = try le(op == 0x68 ? 1 : 4)
                guard let v = memo[k] else { throw fail("memo \(k) unset") }
                stack.append(v)
            case 0x63:                                                   // GLOBAL
                let module = try line(), name = try line()
                stack.append(try global(module, name))
            case 0x93:                                                   // STACK_GLOBAL
                let name = try pop(), module = try pop()
                guard let m = module.string, let n = name.string else { throw fail("STACK_GLOBAL needs strings") }
                stack.append(try global(m, n))
            case 0x51:                                                   // BINPERSID
                stack.append(try persistent(try pop()))
            case 0x52:                                                   // REDUCE
                let args = try pop(), f = try pop()
                stack.append(try call(f, args))
            case 0x81:                                                   // NEWOBJ
                let args = try pop(), cls = try pop()
                stack.append(try call(cls, args))
            case 0x62:                                                   // BUILD: state of an OrderedDict (_metadata) or tensor; ignored
                _ = try pop()
            default:
                throw fail(String(format: "opcode 0x%02x is not used by state dicts", op))
            }
        }
    }

    /// The value a literal opcode pushes (None, booleans, numbers, strings, bytes, empty
    /// containers), read from the stream; nil for every other opcode.
    private func literal(_ op: UInt8) throws -> Value? {
        switch op {
        case 0x7d: return .dict(Box([]))                                 // EMPTY_DICT
        case 0x5d: return .list(Box([]))                                 // EMPTY_LIST
        case 0x29: return .tuple([])                                     // EMPTY_TUPLE
        case 0x4e: return Value.none
        case 0x88: return .bool(true)
        case 0x89: return .bool(false)
        case 0x4a: return .int(Int(Int32(truncatingIfNeeded: try le(4))))   // BININT
        case 0x4b: return .int(try le(1))                                // BININT1
        case 0x4d: return .int(try le(2))                                // BININT2
        case 0x8a:                                                       // LONG1
            let n = try le(1)
            let raw = Array(try read(n))
            guard n <= 8 else { throw fail("integer too large") }
            var v: Int64 = 0
            for (i, b) in raw.enumerated() { v |= Int64(b) << (8 * Int64(i)) }
            if n > 0 && n < 8 && raw[n - 1] & 0x80 != 0 { v -= Int64(1) << (8 * Int64(n)) }
            return .int(Int(v))
        case 0x47:                                                       // BINFLOAT (big-endian)
            var v: UInt64 = 0
            for b in try read(8) { v = v << 8 | UInt64(b) }
            return .float(Double(bitPattern: v))
        case 0x58: return .string(String(decoding: try read(try le(4)), as: UTF8.self))   // BINUNICODE
        case 0x8c: return .string(String(decoding: try read(try le(1)), as: UTF8.self))   // SHORT_BINUNICODE
        case 0x8d: return .string(String(decoding: try read(try le(8)), as: UTF8.self))   // BINUNICODE8
        case 0x55, 0x43: return .bytes(Array(try read(try le(1))))                        // SHORT_BINSTRING, SHORT_BINBYTES
        case 0x54, 0x42: return .bytes(Array(try read(try le(4))))                        // BINSTRING, BINBYTES
        default: return nil
        }
    }

    /// Tuples, lists and dicts built from values on the stack; false for every other opcode.
    private func collect(_ op: UInt8) throws -> Bool {
        switch op {
        case 0x74: stack.append(.tuple(try popMark()))                   // TUPLE
        case 0x85: stack.append(.tuple([try pop()]))                     // TUPLE1
        case 0x86: let b = try pop(), a = try pop(); stack.append(.tuple([a, b]))
        case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(.tuple([a, b, c]))
        case 0x6c: stack.append(.list(Box(try popMark())))               // LIST
        case 0x61:                                                       // APPEND
            let v = try pop()
            guard case .list(let l) = stack.last else { throw fail("APPEND to a non-list") }
            l.value.append(v)
        case 0x65:                                                       // APPENDS
            let items = try popMark()
            guard case .list(let l) = stack.last else { throw fail("APPENDS to a non-list") }
            l.value.append(contentsOf: items)
        case 0x73:                                                       // SETITEM
            let v = try pop(), k = try pop()
            guard case .dict(let d) = stack.last else { throw fail("SETITEM on a non-dict") }
            d.value.append((k, v))
        case 0x75:                                                       // SETITEMS
            let items = try popMark()
            guard case .dict(let d) = stack.last, items.count % 2 == 0 else { throw fail("SETITEMS on a non-dict") }
            for i in stride(from: 0, to: items.count, by: 2) { d.value.append((items[i], items[i + 1])) }
        default: return false
        }
        return true
    }

    private func global(_ module: String, _ name: String) throws -> Value {
        let full = module + "." + name
        guard Unpickler.allowedGlobals.contains(full) else {
            throw SVIError.file(path, "refused: the pickle names the global '\(full)', which a state dict never needs (nothing was run)")
        }
        return .global(full)
    }

    private func persistent(_ pid: Value) throws -> Value {
        guard let t = pid.items, t.count >= 3, t[0].string == "storage", case .global(let type) = t[1], let key = t[2].string ?? t[2].int.map(String.init) else {
            throw fail("unexpected persistent id")
        }
        let dtype: String
        switch type {
        case "torch.FloatStorage": dtype = "F32"
        case "torch.HalfStorage": dtype = "F16"
        case "torch.BFloat16Storage": dtype = "BF16"
        case "torch.DoubleStorage": dtype = "F64"
        default: throw fail("storage type \(type)")
        }
        return .storage(Storage(dtype: dtype, key: key))
    }

    private func call(_ f: Value, _ args: Value) throws -> Value {
        guard case .global(let name) = f else { throw fail("call of a non-global") }
        let a = args.items ?? []
        switch name {
        case "collections.OrderedDict":
            return .dict(Box([]))
        case "torch._utils._rebuild_parameter":
            guard let t = a.first else { throw fail("_rebuild_parameter without data") }
            return t
        case "torch._utils._rebuild_tensor_v2":
            guard a.count >= 4, case .storage(let s) = a[0], let offset = a[1].int,
                  let size = a[2].items?.compactMap(\.int), let stride = a[3].items?.compactMap(\.int), size.count == stride.count else {
                throw fail("malformed _rebuild_tensor_v2 arguments")
            }
            return .tensor(try rebuild(s, offset: offset, size: size, stride: stride))
        default:
            throw SVIError.file(path, "refused: the pickle calls '\(name)'")
        }
    }

    /// A tensor from storage elements at `offset` with the given strides (any layout), read
    /// from the file; contiguous tensors go straight into the tensor's memory.
    private func rebuild(_ s: Storage, offset: Int, size: [Int], stride: [Int]) throws -> Tensor {
        let entry = try locateStorage(s)
        let es = elementSize(s.dtype)!
        let available = entry.size / es
        // Checked before anything is allocated or read: sizes and strides are non-negative
        // (PyTorch never saves negative strides), the element count is sane, and the last
        // element addressed lies inside the storage — all without overflow.
        let corrupt = SVIError.file(path, "truncated or corrupt: a tensor of shape \(size) with strides \(stride) at offset \(offset) does not fit its storage '\(s.key)' (\(available) elements)")
        guard offset >= 0, size.allSatisfy({ $0 >= 0 }), stride.allSatisfy({ $0 >= 0 }), let count = FormatLimits.elementCount(size) else { throw corrupt }
        if count == 0 { return Tensor(shape: size, zeroed: false) }
        var maxIndex = offset
        for (n, st) in zip(size, stride) {
            let (step, o1) = (n - 1).multipliedReportingOverflow(by: st)
            let (sum, o2) = maxIndex.addingReportingOverflow(step)
            guard !o1, !o2 else { throw corrupt }
            maxIndex = sum
        }
        guard maxIndex < available else { throw corrupt }
        do { try FormatLimits.requireMemory(Double(count) * 4, for: "tensor '\(s.key)'") } catch let e as SVIError { throw e.about(path) }
        let t = Tensor(shape: size, zeroed: false)
        let contiguous: Bool = {
            var expect = 1
            for (n, st) in zip(size, stride).reversed() where n != 1 { if st != expect { return false }; expect *= n }
            return true
        }()
        if contiguous {
            try file.readElements(dtype: s.dtype, offset: entry.offset + offset * es, count: t.count, into: t.data)
            return t
        }
        let all = Tensor(shape: [available], zeroed: false)
        try file.readElements(dtype: s.dtype, offset: entry.offset, count: available, into: all.data)
        var index = [Int](repeating: 0, count: size.count)
        for i in 0..<t.count {
            var e = offset
            for d in 0..<size.count { e += index[d] * stride[d] }
            t.data[i] = all.data[e]
            var d = size.count - 1
            while d >= 0 { index[d] += 1; if index[d] < size[d] { break }; index[d] = 0; d -= 1 }
        }
        return t
    }
}

/// PyTorch's zip checkpoint: `<prefix>/data.pkl` (the pickled state dict) and
/// `<prefix>/data/<key>` (raw storages, little-endian).
enum TorchZip {
    static func load(_ file: FileReader) throws -> Checkpoint {
        let path = file.path
        let zip = try ZipArchive(file)
        guard let pkl = zip.entries.keys.first(where: { $0.hasSuffix("/data.pkl") || $0 == "data.pkl" }) else {
            throw SVIError.file(path, "zip archive is not a PyTorch checkpoint (no data.pkl)")
        }
        let prefix = String(pkl.dropLast("data.pkl".count))
        if let bo = try? zip.contents(prefix + "byteorder"), String(decoding: bo, as: UTF8.self) != "little" {
            throw SVIError.file(path, "big-endian PyTorch checkpoints are not supported")
        }
        var dtypes = Set<String>()
        guard let pe = zip.entries[pkl], pe.size <= 1 << 28 else { throw SVIError.file(path, "the checkpoint's pickle is larger than a state dict's (256 MB)") }
        let unpickler = Unpickler(try zip.contents(pkl), file: file) { storage in
            dtypes.insert(storage.dtype)
            return try zip.entry(prefix + "data/" + storage.key)
        }
        let root = try unpickler.load()
        var tensors: [String: Tensor] = [:]
        func collect(_ v: Unpickler.Value) throws {
            guard case .dict(let d) = v else { throw SVIError.file(path, "the checkpoint's top level is not a dict of tensors") }
            for (k, value) in d.value {
                guard let name = k.string else { continue }
                if case .tensor(let t) = value {
                try FiniteCheck.require(t, name: name, path: path)
                tensors[name] = t
            }
            }
        }
        try collect(root)
        // Training checkpoints sometimes wrap the weights: {"state_dict": {...}} or {"model": {...}}.
        if tensors.isEmpty, case .dict(let d) = root,
           let inner = d.value.first(where: { ["state_dict", "model", "ema"].contains($0.0.string ?? "") })?.1 {
            try collect(inner)
        }
        guard !tensors.isEmpty else { throw SVIError.file(path, "the checkpoint holds no tensors") }
        return Checkpoint(tensors: tensors, storageDTypes: dtypes, format: "pytorch-zip")
    }
}

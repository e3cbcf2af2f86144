import Foundation
import SVICore

/// Caps on what svi accepts from a file before anything is allocated: far above any real
/// video or model, far below what would exhaust a node.
public enum FormatLimits {
    /// Frames of one video (18,000 frames = 10 minutes at 30 fps; 10⁸ is ~40 days).
    public static let maxFrames = 100_000_000
    /// One side of a frame, in pixels (16K video is 15,360 wide).
    public static let maxSide = 65_536
    public static let maxChannels = 64
    /// Elements of one tensor read from a file (2³⁶ float32 = 256 GiB).
    public static let maxElements = 1 << 36
    /// Dimensions of one tensor.
    public static let maxRank = 16

    /// The element count of `shape`, or nil when a dimension is negative, the rank is absurd,
    /// or the product overflows or passes `maxElements` (checked arithmetic, whatever the build).
    public static func elementCount(_ shape: [Int]) -> Int? {
        guard shape.count <= maxRank else { return nil }
        var n = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (p, o) = n.multipliedReportingOverflow(by: d)
            guard !o, p <= maxElements else { return nil }
            n = p
        }
        return n
    }

    /// Refuses work whose buffers would not fit in this machine's memory (instead of dying in
    /// the allocator): `bytes` is what the command is about to allocate.
    public static func requireMemory(_ bytes: Double, for what: String) throws {
        let (available, source) = availableMemory()
        guard bytes <= available else {
            throw SVIError.outOfMemory(nil, String(format: "%@ needs about %.1f GB; %@ allows %.1f GB", what, bytes / 1e9, source, available / 1e9))
        }
    }

    /// What this process may still allocate, and what sets it: 80 % of the machine's memory,
    /// or less under an address-space or data limit (`ulimit -v`, `ulimit -d`) or a cgroup
    /// memory limit (a container's, a Slurm job's), each net of what is in use already.
    public static func availableMemory() -> (bytes: Double, source: String) {
        var best = (0.8 * Double(ProcessInfo.processInfo.physicalMemory), "this machine")
        func consider(_ bytes: Double, _ source: String) { if bytes < best.0 { best = (max(bytes, 0), source) } }
        let page = Double(sysconf(Int32(_SC_PAGESIZE)))
        let statm = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8))?.split(separator: " ").compactMap { Double($0) } ?? []
        let virtual = (statm.first ?? 0) * page, resident = (statm.count > 1 ? statm[1] : 0) * page
        var lim = rlimit()
        #if os(Linux)
        if getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &lim) == 0, lim.rlim_cur != rlim_t.max { consider(Double(lim.rlim_cur) - virtual, "the address-space limit (ulimit -v)") }
        if getrlimit(__rlimit_resource_t(RLIMIT_DATA.rawValue), &lim) == 0, lim.rlim_cur != rlim_t.max { consider(Double(lim.rlim_cur) - resident, "the data limit (ulimit -d)") }
        #endif
        // cgroup v2: this process's group's memory.max (a job's or container's limit).
        if let line = (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8))?.split(separator: "\n").first(where: { $0.hasPrefix("0::") }) {
            let dir = "/sys/fs/cgroup" + line.dropFirst(3)
            if let maxText = try? String(contentsOfFile: dir + "/memory.max", encoding: .utf8),
               let limit = Double(maxText.trimmingCharacters(in: .whitespacesAndNewlines)) {
                let used = (try? String(contentsOfFile: dir + "/memory.current", encoding: .utf8)).flatMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
                consider(0.9 * (limit - used), "the cgroup memory limit")
            }
        }
        return best
    }

    /// `offset + count` when both are non-negative and the sum stays within `limit`.
    public static func end(offset: Int, count: Int, within limit: Int) -> Int? {
        guard offset >= 0, count >= 0 else { return nil }
        let (e, o) = offset.addingReportingOverflow(count)
        guard !o, e <= limit else { return nil }
        return e
    }
}

/// Reads small text files (sidecars, model options, checkpoint state) with a size cap, and
/// only when they are regular files: a FIFO or device would block or stream forever.
public enum SmallFile {
    public static func isRegularFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    public static func read(_ path: String, limit: Int, what: String) throws -> Data {
        var st = stat()
        guard stat(path, &st) == 0 else { throw SVIError.file(path, "no such file") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw SVIError.file(path, "\(what) is not a regular file") }
        guard Int(st.st_size) <= limit else { throw SVIError.file(path, "\(what) is \(st.st_size) bytes, more than the \(limit) a \(what) can be") }
        // Our own positioned reads, not FileManager.contents(atPath:), which leaks its buffer
        // for an empty file (found by the segment-progress fuzzer under LeakSanitizer).
        let file = try FileReader(path)
        guard file.size <= limit else { throw SVIError.file(path, "\(what) grew past \(limit) bytes while being read") }
        return Data(try file.bytes(offset: 0, count: file.size))
    }
}

/// One line for a JSON decoding error (Foundation's own descriptions run over several lines).
public enum JSONProblem {
    public static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let k, _): return "missing field '\(k.stringValue)'"
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
            return "field '\(c.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type"
        case DecodingError.dataCorrupted(let c):
            return c.codingPath.isEmpty ? "not JSON" : "field '\(c.codingPath.map(\.stringValue).joined(separator: "."))' is invalid"
        default: return "not JSON"
        }
    }
}

/// Where the first NaN or infinity lies in `count` floats (nil when all are finite).
public enum FiniteCheck {
    public static func firstNonFinite(_ p: UnsafePointer<Float>, _ count: Int) -> Int? {
        var i = 0
        while i < count {
            // Blocks of 4096: one branch per block in the common (all finite) case.
            let end = min(count, i + 4096)
            var ok = true
            for j in i..<end { ok = ok && p[j].isFinite }
            if !ok { for j in i..<end where !p[j].isFinite { return j } }
            i = end
        }
        return nil
    }
}

extension FiniteCheck {
    /// Refuses a checkpoint tensor holding NaN or infinity, naming the file and the tensor.
    static func require(_ t: Tensor, name: String, path: String) throws {
        if let i = firstNonFinite(t.data, t.count) {
            throw SVIError.file(path, "tensor '\(name)' holds NaN or infinite values (element \(i) is \(t.data[i])): the weights are damaged")
        }
    }
}

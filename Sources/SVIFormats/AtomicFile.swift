import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SVICore

/// Output files appear complete or not at all: data goes to a hidden temporary name in the
/// destination folder and is renamed over the destination when fully written.
public enum AtomicFile {
    public static func checkWritable(_ path: String, overwrite: Bool) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw SVIError.file(path, "output folder \(dir) does not exist")
        }
        guard FileManager.default.isWritableFile(atPath: dir) else {
            throw SVIError.io(path, "output folder \(dir) is not writable")
        }
        if !overwrite && FileManager.default.fileExists(atPath: path) {
            throw SVIError(kind: .badOption, file: path, field: "--overwrite", "output exists (pass --overwrite to replace it)")
        }
    }

    public static func write(_ data: Data, to path: String, overwrite: Bool = true) throws {
        try checkWritable(path, overwrite: overwrite)
        let (tmp, fd) = try TemporaryName.file(for: path)
        let failed = data.withUnsafeBytes { writeAll(fd, $0.baseAddress, $0.count) } ?? (close(fd) == 0 ? nil : errno)
        if let e = failed {
            close(fd)
            unlink(tmp)
            throw SVIError.io(path, "cannot write: \(String(cString: strerror(e)))")
        }
        try TemporaryName.moveIntoPlace(tmp, path, overwrite: overwrite)
    }

    /// Writes all `count` bytes to `fd` (retrying short writes and EINTR); the errno of a
    /// failure (ENOSPC, EFBIG past `ulimit -f`, EIO), or nil.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawPointer?, _ count: Int) -> Int32? {
        guard let base = bytes, count > 0 else { return nil }
        var done = 0
        while done < count {
            let n = Glibc.write(fd, base + done, count - done)
            if n < 0 { if errno == EINTR { continue }; return errno }
            if n == 0 { return EIO }
            done += n
        }
        return nil
    }
}

/// Temporary names nobody can guess, created exclusively: a name planted in advance (a
/// symlink to a user's file, say) is never opened or written through.
public enum TemporaryName {
    static func randomSuffix() -> String {
        var g = SystemRandomNumberGenerator()
        return String((0..<12).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement(using: &g)! })
    }

    /// This host and process, in every temporary name: a later run can then tell a leftover of
    /// a process that died (SIGKILL, a file-size limit, a killed MPI job) from the file of a
    /// run still going, and remove only the former (`removeStale`).
    static let owner: String = {
        "\(host)~\(getpid())~"
    }()

    static let host: String = {
        var buf = [CChar](repeating: 0, count: 256)
        let name = gethostname(&buf, 255) == 0 ? String(cString: buf) : "host"
        return String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") ? $0 : "_" }.prefix(64))
    }()

    /// Removes temporaries named `prefix`OWNER… in `dir` whose process is gone: same host,
    /// and no process with that id. Others' (another host's, or a live process's) are kept.
    public static func removeStale(in dir: String, prefix: String) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where name.hasPrefix(prefix) {
            let fields = name.dropFirst(prefix.count).split(separator: "~", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, fields[0] == host, let pid = Int32(fields[1]), pid > 0, pid != getpid() else { continue }
            if kill(pid, 0) == 0 || errno != ESRCH { continue }     // alive, or not ours to judge
            try? FileManager.default.removeItem(atPath: dir + "/" + name)
        }
    }

    /// A new, empty file beside `path` (`.NAME.partial-HOST~PID~RANDOM[.ext]`), opened for
    /// writing with O_CREAT|O_EXCL|O_NOFOLLOW; its descriptor belongs to the caller. Leftovers
    /// of earlier runs for the same name whose process died are removed first.
    public static func file(for path: String, extension ext: String? = nil) throws -> (String, Int32) {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        removeStale(in: dir, prefix: "." + url.lastPathComponent + ".partial-")
        for _ in 0..<16 {
            let tmp = dir + "/." + url.lastPathComponent + ".partial-" + owner + randomSuffix() + (ext.map { "." + $0 } ?? "")
            let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o666)
            if fd >= 0 { return (tmp, fd) }
            if errno != EEXIST { throw SVIError.io(path, "cannot create a temporary file in \(dir): \(String(cString: strerror(errno)))") }
        }
        throw SVIError.io(path, "cannot create a temporary file in \(dir)")
    }

    /// A new, empty folder in `dir` named `prefix` + HOST~PID~ + random characters (mkdtemp),
    /// after removing the leftovers of dead processes with the same prefix.
    public static func folder(in dir: String, prefix: String) throws -> String {
        removeStale(in: dir, prefix: prefix)
        var template = Array((dir + "/" + prefix + owner + "XXXXXXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw SVIError.io(dir, "cannot create a temporary folder: \(String(cString: strerror(errno)))")
        }
        return String(cString: made)
    }

    /// Renames a finished temporary file onto `path`. Without `overwrite`, a file that
    /// appeared at `path` meanwhile is kept (link + unlink never replaces).
    public static func moveIntoPlace(_ tmp: String, _ path: String, overwrite: Bool) throws {
        if overwrite {
            if rename(tmp, path) != 0 {
                let err = String(cString: strerror(errno))
                unlink(tmp)
                throw SVIError.io(path, "cannot move the finished file into place: \(err)")
            }
            return
        }
        if link(tmp, path) != 0 {
            let err = errno
            unlink(tmp)
            throw SVIError(kind: err == EEXIST ? .badOption : .io, file: path, err == EEXIST ? "output appeared while svi was writing it (pass --overwrite to replace it)" : "cannot move the finished file into place: \(String(cString: strerror(err)))")
        }
        unlink(tmp)
    }
}

/// What a command writes, checked against what it reads before any work starts (issue 30):
/// no output names an input (not even with --overwrite: a restore's output over its own
/// measurement loses the measurement), two outputs of one command never name one file (the
/// report over the video), and an existing file is replaced only with --overwrite.
public enum OutputGuard {
    /// How a path is told apart: an existing file by device and inode (links and `./x`
    /// spellings included), a missing one by its folder's real path and its name; a PNG
    /// sequence by its folder's real path and its pattern.
    static func identity(_ path: String) -> String {
        var st = stat()
        if stat(path, &st) == 0 { return "inode \(st.st_dev):\(st.st_ino)" }
        let url = URL(fileURLWithPath: path)
        return "path " + realFolder(of: path) + "/" + url.lastPathComponent
    }

    static func realFolder(of path: String) -> String {
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        guard let r = realpath(dir, nil) else { return dir }
        defer { free(r) }
        return String(cString: r)
    }

    /// Whether writing `output` would write `input` (or one of its frames).
    static func clash(_ output: String, _ input: String) -> Bool {
        if identity(output) == identity(input) { return true }
        let outSeq = PNGPattern.isSequence(output), inSeq = PNGPattern.isSequence(input)
        guard outSeq || inSeq, realFolder(of: output) == realFolder(of: input) else { return false }
        let outName = URL(fileURLWithPath: output).lastPathComponent, inName = URL(fileURLWithPath: input).lastPathComponent
        if outSeq && inSeq { return outName == inName }
        // A sequence and one file in the same folder: the file is one of the sequence's frames?
        let (patternPath, file) = outSeq ? (output, inName) : (input, outName)
        return (try? PNGPattern(patternPath))?.matches(file) ?? false
    }

    /// `outputs`: (path, how the user named it, e.g. "-o" or "--report"); `inputs`: every file
    /// the command reads. Throws the first clash, naming both.
    public static func check(outputs: [(path: String, option: String)], inputs: [String], overwrite: Bool) throws {
        for (i, o) in outputs.enumerated() {
            for input in inputs where clash(o.path, input) {
                throw SVIError(kind: .badOption, file: o.path, field: o.option, "\(o.option) names the input \(input): svi never writes over what it reads (choose another name)")
            }
            for other in outputs[..<i] where clash(o.path, other.path) {
                throw SVIError(kind: .badOption, file: o.path, field: o.option, "\(o.option) and \(other.option) name the same file: give each output its own name")
            }
            if !overwrite && !PNGPattern.isSequence(o.path) && FileManager.default.fileExists(atPath: o.path) {
                throw SVIError(kind: .badOption, file: o.path, field: o.option, "\(o.option) names a file that exists (pass --overwrite to replace it)")
            }
        }
    }
}

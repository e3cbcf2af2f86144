import Foundation
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
            throw SVIError.file(path, "output folder \(dir) is not writable")
        }
        if !overwrite && FileManager.default.fileExists(atPath: path) {
            throw SVIError.file(path, "output exists (pass --overwrite to replace it)")
        }
    }

    public static func write(_ data: Data, to path: String, overwrite: Bool = true) throws {
        try checkWritable(path, overwrite: overwrite)
        let (tmp, fd) = try TemporaryName.file(for: path)
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        do { try handle.write(contentsOf: data); try handle.close() } catch {
            unlink(tmp)
            throw SVIError.file(path, "cannot write (temporary file \(tmp)): \(error.localizedDescription)")
        }
        try TemporaryName.moveIntoPlace(tmp, path, overwrite: overwrite)
    }
}

/// Temporary names nobody can guess, created exclusively: a name planted in advance (a
/// symlink to a user's file, say) is never opened or written through.
public enum TemporaryName {
    static func randomSuffix() -> String {
        var g = SystemRandomNumberGenerator()
        return String((0..<12).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement(using: &g)! })
    }

    /// A new, empty file beside `path` (`.NAME.partial-RANDOM[.ext]`), opened for writing with
    /// O_CREAT|O_EXCL|O_NOFOLLOW; its descriptor belongs to the caller.
    public static func file(for path: String, extension ext: String? = nil) throws -> (String, Int32) {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        for _ in 0..<16 {
            let tmp = dir + "/." + url.lastPathComponent + ".partial-" + randomSuffix() + (ext.map { "." + $0 } ?? "")
            let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o666)
            if fd >= 0 { return (tmp, fd) }
            if errno != EEXIST { throw SVIError.file(path, "cannot create a temporary file in \(dir): \(String(cString: strerror(errno)))") }
        }
        throw SVIError.file(path, "cannot create a temporary file in \(dir)")
    }

    /// A new, empty folder in `dir` named `prefix` + random characters (mkdtemp).
    public static func folder(in dir: String, prefix: String) throws -> String {
        var template = Array((dir + "/" + prefix + "XXXXXXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw SVIError.file(dir, "cannot create a temporary folder: \(String(cString: strerror(errno)))")
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
                throw SVIError.file(path, "cannot move the finished file into place: \(err)")
            }
            return
        }
        if link(tmp, path) != 0 {
            let err = errno
            unlink(tmp)
            throw SVIError.file(path, err == EEXIST ? "output appeared while svi was writing it (pass --overwrite to replace it)" : "cannot move the finished file into place: \(String(cString: strerror(err)))")
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
                throw SVIError.file(o.path, "\(o.option) names the input \(input): svi never writes over what it reads (choose another name)")
            }
            for other in outputs[..<i] where clash(o.path, other.path) {
                throw SVIError.file(o.path, "\(o.option) and \(other.option) name the same file: give each output its own name")
            }
            if !overwrite && !PNGPattern.isSequence(o.path) && FileManager.default.fileExists(atPath: o.path) {
                throw SVIError.file(o.path, "\(o.option) names a file that exists (pass --overwrite to replace it)")
            }
        }
    }
}

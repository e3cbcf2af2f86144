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

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

    public static func temporaryPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        return dir + "/." + url.lastPathComponent + ".partial-\(getpid())"
    }

    public static func write(_ data: Data, to path: String, overwrite: Bool = true) throws {
        try checkWritable(path, overwrite: overwrite)
        let tmp = temporaryPath(for: path)
        guard FileManager.default.createFile(atPath: tmp, contents: data) else {
            throw SVIError.file(path, "cannot write (temporary file \(tmp))")
        }
        if rename(tmp, path) != 0 {
            let err = String(cString: strerror(errno))
            unlink(tmp)
            throw SVIError.file(path, "cannot move the finished file into place: \(err)")
        }
    }
}

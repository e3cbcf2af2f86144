import Foundation
import SVICore

/// Thrown on a rank that stops because another rank reported the problem (rank 0 prints the
/// one line): it exits with `code` and prints nothing.
public struct SilentFailure: Error {
    public let code: Int32
    public init(code: Int32) { self.code = code }
}

/// Rank 0's outcome as it travels to the other ranks: its value, or the error that stopped it.
private struct Outcome<T: Codable>: Codable {
    var value: T?
    var error: SVIError?
}

extension SVIError {
    /// Any error as an SVIError (kept as is when it is one; otherwise its text, of kind other).
    public init(_ error: Error) {
        if let e = error as? SVIError { self = e } else { self.init("\(error)") }
    }
}

extension Communicator {
    /// Runs `decide` on rank 0 and gives every rank its value, or stops every rank on its
    /// error: rank 0 throws the error itself (one line, its exit status), the others throw
    /// `SilentFailure` with the same status. Rank 0 reads files and decides; the ranks never
    /// exchange error strings of their own.
    public func agree<T: Codable>(_ decide: () throws -> T) throws -> T {
        var outcome = Outcome<T>()
        var original: Error?
        if rank == 0 {
            do { outcome.value = try decide() } catch { original = error; outcome.error = SVIError(error) }
        }
        if size > 1 {
            let bytes = broadcast(bytes: rank == 0 ? Array(try JSONEncoder().encode(outcome)) : [])
            outcome = try JSONDecoder().decode(Outcome<T>.self, from: Data(bytes))
        }
        if let e = outcome.error {
            if rank == 0 { throw original ?? e }
            throw SilentFailure(code: e.exitStatus)
        }
        guard let value = outcome.value else { throw SVIError("rank \(rank): rank 0 sent no decision") }
        return value
    }

    /// `error` (nil: none) as seen by every rank: when any rank failed, every rank stops — rank
    /// 0 with its own error, or with the first failing rank's line when it had none, and a rank
    /// with an error of its own prints it first (it may be the only one that knows).
    public func agreeNoneFailed(_ error: Error?) throws {
        let mine = error.map { SVIError($0) }
        let failed = size > 1 ? allreduceMax([mine == nil ? 0 : 1])[0] > 0 : mine != nil
        guard failed else { return }
        if rank == 0, let e = error { throw e }
        if let e = mine { FileHandle.standardError.write("Error: rank \(rank): \(e)\n".data(using: .utf8)!) }
        throw SilentFailure(code: mine?.exitStatus ?? 1)
    }
}

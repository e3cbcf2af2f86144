/// The one error type users see: every case renders as one line that names the file (when
/// there is one) and what is wrong with it, and its kind gives the exit status, so a scheduler
/// can tell a bad input (do not retry) from an I/O failure or a lack of memory (retry elsewhere).
///
/// Codable: ranks agree on an outcome by sending rank 0's error to every rank
/// (`Communicator.agree`), which then fails with the same line and status.
public struct SVIError: Error, CustomStringConvertible, Equatable, Sendable, Codable {
    /// What went wrong, by who can fix it. Exit statuses follow BSD's sysexits.h.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// An option or a combination of options: 64 (EX_USAGE).
        case badOption = "bad_option"
        /// A file the user gave is missing, unreadable or malformed: 65 (EX_DATAERR).
        case badInput = "bad_input"
        /// The computation failed (a diverging model, NaN, a solver that broke down): 70 (EX_SOFTWARE).
        case numeric
        /// The job's ranks cannot work together (MPI, a folder some rank cannot see): 69 (EX_UNAVAILABLE).
        case cluster
        /// Reading or writing failed (full disk, permissions, a rename): 74 (EX_IOERR).
        case io
        /// The job does not fit the memory it may use: 71 (EX_OSERR).
        case outOfMemory = "out_of_memory"
        /// Anything else: 1.
        case other

        public var exitStatus: Int32 {
            switch self {
            case .badOption: return 64
            case .badInput: return 65
            case .numeric: return 70
            case .cluster: return 69
            case .io: return 74
            case .outOfMemory: return 71
            case .other: return 1
            }
        }
    }

    public let kind: Kind
    /// The file the error is about (printed first), if any.
    public let file: String?
    /// The option or the file's field that is wrong (e.g. "--nfe", "steps_done"), if known.
    public let field: String?
    /// What is wrong, without the file's name.
    public let reason: String

    public init(_ message: String, kind: Kind = .other, field: String? = nil) {
        self.kind = kind; file = nil; self.field = field; reason = message
    }

    public init(kind: Kind, file: String?, field: String? = nil, _ reason: String) {
        self.kind = kind; self.file = file; self.field = field; self.reason = reason
    }

    /// A file the user gave is missing or malformed: "`path`: reason".
    public static func file(_ path: String, _ reason: String, field: String? = nil) -> SVIError {
        SVIError(kind: .badInput, file: path, field: field, reason)
    }
    /// Reading or writing `path` failed for a reason outside its content.
    public static func io(_ path: String, _ reason: String) -> SVIError { SVIError(kind: .io, file: path, reason) }
    /// An option (or options together) that cannot be honoured.
    public static func option(_ name: String, _ reason: String) -> SVIError { SVIError(reason, kind: .badOption, field: name) }
    /// The computation failed.
    public static func numeric(_ reason: String) -> SVIError { SVIError(reason, kind: .numeric) }
    /// The ranks of the job cannot work together.
    public static func cluster(_ reason: String) -> SVIError { SVIError(reason, kind: .cluster) }
    /// The job needs more memory than it may use (about `path`, when one input decides it).
    public static func outOfMemory(_ path: String?, _ reason: String) -> SVIError { SVIError(kind: .outOfMemory, file: path, reason) }

    /// The same error about another file (an inner reader's error seen from the file that holds it).
    public func about(_ path: String) -> SVIError {
        SVIError(kind: kind, file: path, field: field, file.map { "\($0): " + reason } ?? reason)
    }

    /// The one line users see.
    public var message: String { file.map { "\($0): \(reason)" } ?? reason }
    public var description: String { message }
    public var exitStatus: Int32 { kind.exitStatus }
}

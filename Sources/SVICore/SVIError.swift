/// The one error type users see: every case renders as one line that names the file (when
/// there is one) and what is wrong with it.
public struct SVIError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    /// An error about a specific file: "`path`: reason".
    public static func file(_ path: String, _ reason: String) -> SVIError {
        SVIError("\(path): \(reason)")
    }
    public var description: String { message }
}

import Foundation
import Logging
import SVIFormats

/// svi's log: warnings and the like go through swift-log to standard error, one line each.
package let log: Logger = {
    LoggingSystem.bootstrap { label in
        var h = StreamLogHandler.standardError(label: label)
        h.logLevel = .info
        return h
    }
    return Logger(label: "svi")
}()

/// Step progress on standard error: a self-updating line on a terminal, plain lines otherwise.
package final class Progress {
    package let quiet: Bool
    package let isTerminal = isatty(STDERR_FILENO) != 0
    package let start = Date()
    private var lastPlain = Date.distantPast

    package init(quiet: Bool) { self.quiet = quiet }

    /// Step `i` of `n` done; `first` is the step this process started at (after a resume);
    /// `since`: when step `first` began, if not at this progress's start (the ETA then leaves
    /// out what came before, such as loading and the first warm start).
    package func step(_ label: String, _ i: Int, of n: Int, first: Int = 0, since: Date? = nil) {
        guard !quiet else { return }
        let elapsed = Date().timeIntervalSince(start)
        let working = since.map { Date().timeIntervalSince($0) } ?? elapsed
        let eta = i > first ? working / Double(i - first) * Double(n - i) : 0
        let text = String(format: "%@ %d/%d  elapsed %.1fs  ETA %.1fs", label, i, n, elapsed, eta)
        if isTerminal {
            FileHandle.standardError.write(("\r\u{1B}[K" + text + (i == n ? "\n" : "")).data(using: .utf8)!)
        } else if i == n || i == 1 || Date().timeIntervalSince(lastPlain) > 5 {
            lastPlain = Date()
            FileHandle.standardError.write((text + "\n").data(using: .utf8)!)
        }
    }

    /// A running count without a known total (decoding): a self-updating line on a terminal,
    /// a plain line every few seconds otherwise, and a last line when `done`.
    package func count(_ label: String, _ n: Int, done: Bool = false) {
        guard !quiet else { return }
        if isTerminal {
            FileHandle.standardError.write(("\r\u{1B}[K\(label) \(n)" + (done ? "\n" : "")).data(using: .utf8)!)
        } else if done || Date().timeIntervalSince(lastPlain) > 5 {
            lastPlain = Date()
            FileHandle.standardError.write("\(label) \(n)\n".data(using: .utf8)!)
        }
    }

    /// Warnings are shown even with --quiet.
    package func warning(_ text: String) {
        log.warning("\(text)")
    }

    package func note(_ text: String) {
        guard !quiet else { return }
        FileHandle.standardError.write((text + "\n").data(using: .utf8)!)
    }
}

/// Seconds since `start`, for per-stage timings in reports.
package func seconds(since start: Date) -> Double { Date().timeIntervalSince(start) }

/// JSON with sorted keys, written atomically.
package func writeJSON<T: Encodable>(_ value: T, to path: String, overwrite: Bool) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    try AtomicFile.write(try enc.encode(value), to: path, overwrite: overwrite)
}


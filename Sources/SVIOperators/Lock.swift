import Foundation

/// A tiny lock wrapper (Foundation's NSLock) used for caches read from worker threads.
final class NSLockShim: @unchecked Sendable {
    private let lock = NSLock()
    func with<T>(_ body: () -> T) -> T { lock.lock(); defer { lock.unlock() }; return body() }
}

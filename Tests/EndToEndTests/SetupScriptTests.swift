import Testing
import Foundation
import SVICore

/// `Scripts/setup` on machines where things go wrong: it used to pipe the build through
/// `grep … || true`, so a failed build ended with "ready" and the previous binary.
@Suite struct SetupScriptTests {
    static let setup = SlurmTests.repo + "/Scripts/setup"

    /// A `swift` that fails as a broken build does, first on PATH.
    @Test func aFailedBuildFailsSetup() throws {
        let d = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        try "#!/bin/sh\necho 'error: something broke' >&2\nexit 1\n".write(toFile: d + "/swift", atomically: true, encoding: .utf8)
        chmod(d + "/swift", 0o755)
        let r = try Shell.run("/bin/bash", [SetupScriptTests.setup], environment: ["PATH": d + ":/usr/sbin:/usr/bin:/sbin:/bin"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("setup: build failed") && r.stderr.contains("error: something broke"), "\(r.stderr)")
        #expect(!r.stdout.contains("ready"), "\(r.stdout)")
    }

    @Test func noSwiftIsSaidPlainly() throws {
        let r = try Shell.run("/bin/bash", [SetupScriptTests.setup], environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("no 'swift' on PATH"), "\(r.stderr)")
    }
}

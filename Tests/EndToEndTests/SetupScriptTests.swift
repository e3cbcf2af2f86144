import Testing
import Foundation
import SVICore
import SVIFormats

/// `Scripts/setup` on machines where things go wrong: it used to pipe the build through
/// `grep … || true`, so a failed build ended with "ready" and the previous binary.
@Suite struct SetupScriptTests {
    static let setup = SlurmCluster.repo + "/Scripts/setup"

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

    /// `Scripts/python-env PKG…` installs the packages asked for that the venv lacks. It used
    /// to pass them to pip only when PyTorch itself was missing, so on a venv made for training
    /// `Scripts/bench-unet` never got OpenVINO or ONNX Runtime. Run on a copy of the script with
    /// a stand-in venv whose python imports only torch, guided_diffusion and numpy.
    @Test func pythonEnvInstallsTheExtrasAskedFor() throws {
        let d = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        for dir in ["/Scripts", "/.venv/bin"] { try FileManager.default.createDirectory(atPath: d + dir, withIntermediateDirectories: true) }
        try FileManager.default.copyItem(atPath: SlurmCluster.repo + "/Scripts/python-env", toPath: d + "/Scripts/python-env")
        let python = "#!/bin/bash\ncase \"$2\" in \"import torch\"|\"import guided_diffusion\"|\"import numpy\"|\"import torch, guided_diffusion, numpy\") exit 0;; *) exit 1;; esac\n"
        let pip = "#!/bin/bash\necho \"$@\" >> \"$(dirname \"$0\")/pip.log\"\n"
        try python.write(toFile: d + "/.venv/bin/python", atomically: true, encoding: .utf8)
        try pip.write(toFile: d + "/.venv/bin/pip", atomically: true, encoding: .utf8)
        chmod(d + "/.venv/bin/python", 0o755); chmod(d + "/.venv/bin/pip", 0o755)
        let r = try Shell.run("/bin/bash", [d + "/Scripts/python-env", "openvino", "onnxruntime", "onnx", "scikit-image"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasSuffix("/.venv/bin/python\n"), "\(r.stdout)")
        let log = (try? String(contentsOfFile: d + "/.venv/bin/pip.log", encoding: .utf8)) ?? ""
        #expect(log == "install -q openvino onnxruntime onnx scikit-image\n", "pip got: \(log)")
        // Nothing asked for that is missing: pip is not called.
        try? FileManager.default.removeItem(atPath: d + "/.venv/bin/pip.log")
        #expect(try Shell.run("/bin/bash", [d + "/Scripts/python-env"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: d + "/.venv/bin/pip.log"))
    }

    @Test func noSwiftIsSaidPlainly() throws {
        let r = try Shell.run("/bin/bash", [SetupScriptTests.setup], environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("no 'swift' on PATH"), "\(r.stderr)")
    }
}

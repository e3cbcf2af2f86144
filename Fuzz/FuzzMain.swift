import Foundation
import SVITestSupport

/// libFuzzer's entry point: `SVI_FUZZ_TARGET` picks the loader (see `FuzzEntry.targets`).
/// Built only by `Scripts/fuzz` (SVI_FUZZ=1 swift build --sanitize=fuzzer --sanitize=address).
let target = ProcessInfo.processInfo.environment["SVI_FUZZ_TARGET"] ?? ""

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ bytes: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let data = bytes.map { Data(bytes: $0, count: size) } ?? Data()
    do { try FuzzEntry.run(target, data) } catch {
        // Not a clean SVIError refusal: report it as a crash so libFuzzer keeps the input.
        FileHandle.standardError.write("svi-fuzz: \(target): \(error)\n".data(using: .utf8)!)
        abort()
    }
    return 0
}

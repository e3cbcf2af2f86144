// swift-tools-version:6.0
import PackageDescription
import Foundation

// Layering (DESIGN §8, ARCHITECTURE.md): svi → SVIPipeline → SVINetwork, SVISampler → SVIOperators → SVIContracts → SVICore → CBLAS;
// SVINetwork and SVISampler (ADMM-TV's shrinkage) also use CKernels.
// SVIContracts holds what the layers meet through (Communicator, FramePartition, Distribution,
// Denoiser); only svi and SVICluster (the MPI communicator) link libmpi.
// Release builds of the numerical modules target AVX2 + FMA (every x86-64 server since 2013;
// `svi` checks the CPU at start-up and says so plainly instead of crashing on older ones).
#if arch(x86_64)
let targetCPU = ["-target-cpu", "haswell"]
#else
let targetCPU: [String] = []
#endif
// Debug builds (what `swift test` runs, the end-to-end tests' `svi` included) still optimise the
// numerical code, with every check kept: unoptimised, one 32×32 adm-tiny restore took ~90 s
// instead of ~1 s, and the end-to-end tests could not cover the network's kernel paths.
let optimise: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"] + targetCPU, .when(configuration: .release)),
                                .unsafeFlags(["-O"] + targetCPU, .when(configuration: .debug))]
// Everything that reads what users and strangers hand svi (files, specs, options, FFmpeg's
// output, MPI messages) keeps Swift's overflow and bounds checks in every build: `-Ounchecked`
// would turn a crafted size into a silent wrap and a heap overwrite (issue 17). Only the
// numerical modules above, whose hot loops were measured to need it, drop the checks.
let checked: [SwiftSetting] = [.unsafeFlags(["-O", "-wmo"] + targetCPU, .when(configuration: .release)),
                               .unsafeFlags(["-O"] + targetCPU, .when(configuration: .debug))]

let package = Package(
    name: "svi",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "svi", targets: ["svi"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "CFFmpeg", path: "Sources/CFFmpeg", pkgConfig: "libavformat",
                       providers: [.apt(["libavformat-dev", "libavcodec-dev", "libswscale-dev", "libavutil-dev"])]),
        // Hand-written vector kernels in C, each built for AVX-512 and for AVX2 and chosen at run
        // time (Swift has no per-function target attributes).
        .target(name: "CKernels", path: "Sources/CKernels", cSettings: [.unsafeFlags(["-O3"], .when(configuration: .release)),
                                                                        .unsafeFlags(["-O2"], .when(configuration: .debug))]),
        .target(name: "SVICore", dependencies: ["CBLAS"], swiftSettings: optimise),
        // Parsers of every file format svi reads or writes (.npy, safetensors, PyTorch zip +
        // pickle, model options, degradation specs, sidecars), built with checks.
        .target(name: "SVIFormats", dependencies: ["SVICore"], swiftSettings: checked),
        .target(name: "SVIContracts", dependencies: ["SVICore"], swiftSettings: checked),
        .target(name: "SVICluster", dependencies: ["SVICore", "SVIContracts", "CMPI"], swiftSettings: checked),
        .target(name: "SVIOperators", dependencies: ["SVICore", "SVIFormats", "SVIContracts"], swiftSettings: optimise),
        .target(name: "SVISampler", dependencies: ["SVICore", "SVIFormats", "SVIContracts", "SVIOperators", "CKernels"], swiftSettings: checked),
        .target(name: "SVIEvaluation", dependencies: ["SVICore"], swiftSettings: optimise),
        .target(name: "SVIMedia", dependencies: ["SVICore", "SVIFormats", "CFFmpeg"], swiftSettings: checked),
        .target(name: "SVINetwork", dependencies: ["SVICore", "SVIFormats", "SVIContracts", "CBLAS", "CKernels"], swiftSettings: optimise),
        // The restore pipeline (issue 29): settings, planning, the job over ranks, media I/O,
        // the report. Everything `svi restore` does beside parsing options and printing.
        .target(name: "SVIPipeline", dependencies: [
            "SVICore", "SVIFormats", "SVIContracts", "SVICluster", "SVIOperators", "SVISampler", "SVINetwork", "SVIEvaluation", "SVIMedia",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: checked),
        .executableTarget(name: "svi", dependencies: [
            "SVICore", "SVIFormats", "SVIContracts", "SVICluster", "SVIOperators", "SVISampler", "SVINetwork", "SVIEvaluation", "SVIMedia", "SVIPipeline", "CKernels",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: checked),
        // Helpers shared by the test targets (fixture paths, random tensors, error measures).
        .target(name: "SVITestSupport", dependencies: ["SVICore", "SVIFormats", "SVIMedia", "SVISampler"], swiftSettings: checked),
        .testTarget(name: "SVICoreTests", dependencies: ["SVICore", "SVITestSupport"]),
        .testTarget(name: "SVIFormatsTests", dependencies: ["SVIFormats", "SVICore", "SVITestSupport"]),
        .testTarget(name: "SVIContractsTests", dependencies: ["SVIContracts", "SVICore"]),
        .testTarget(name: "SVIOperatorsTests", dependencies: ["SVIFormats", "SVIOperators", "SVIContracts", "SVICore", "SVITestSupport"]),
        .testTarget(name: "SVISamplerTests", dependencies: ["SVIFormats", "SVISampler", "SVIOperators", "SVIContracts", "SVICore", "SVITestSupport"]),
        .testTarget(name: "SVINetworkTests", dependencies: ["SVIFormats", "SVINetwork", "SVISampler", "SVICore", "SVITestSupport", "CKernels"],
                    exclude: ["Reference"]),
        .testTarget(name: "SVIEvaluationTests", dependencies: ["SVIEvaluation", "SVICore"]),
        .testTarget(name: "SVIMediaTests", dependencies: ["SVIFormats", "SVIMedia", "SVICore", "SVITestSupport"]),
        .testTarget(name: "SVIPipelineTests", dependencies: ["SVIPipeline", "SVIContracts", "SVIFormats", "SVICore", "SVIMedia", "SVISampler", "SVITestSupport"]),
        .testTarget(name: "EndToEndTests", dependencies: ["SVIFormats", "SVICore", "SVITestSupport", "svi"]),
    ]
)

// The libFuzzer driver, only when asked (`Scripts/fuzz` sets SVI_FUZZ=1 and builds it with
// --sanitize=fuzzer --sanitize=address): libFuzzer brings its own main.
if ProcessInfo.processInfo.environment["SVI_FUZZ"] == "1" {
    package.products.append(.executable(name: "svi-fuzz", targets: ["svi-fuzz"]))
    package.targets.append(.executableTarget(name: "svi-fuzz", dependencies: ["SVITestSupport"], path: "Fuzz",
                                             exclude: ["corpus"], swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
}

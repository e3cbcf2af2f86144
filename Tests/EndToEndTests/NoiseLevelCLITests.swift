import Testing
import Foundation
import SVICore
import SVIFormats
import SVITestSupport

/// Measurements as users have them (issue 27): svi reads the noise of a decoded file from its
/// pixel format and codec, the restore uses it, and exact float measurements are untouched.
@Suite struct NoiseLevelCLITests {
    struct Noise: Decodable { let quantization: Double; let stated: Double; let format: String; let codec: Double?; let data_estimate: Double? }
    struct Settings: Decodable { let cg_stop: String; let cg_stop_sigma: Double?; let gamma: Double?; let `init`: String?; let sampler: String? }
    struct Report: Decodable { let noise: Noise; let noise_sigma: Double; let degradation: String; let settings: Settings? }

    func report(_ path: String) throws -> Report {
        try JSONDecoder().decode(Report.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// An 8-bit FFV1 measurement of a noiseless spec: σ is at least the rounding (from the
    /// decoded pixel format), the restore says so, refines by plug-and-play (svi's default at a
    /// file's rounding) or, with `--sampler dds`, stops CG by the discrepancy principle, and
    /// keeps the spec as given in the report. A 16-bit file of the same clip rounds ~257× less.
    @Test func eightBitFileCarriesItsRounding() throws {
        let d = CLI.tempDir()
        let src = Samples.path("carphone_pristine.mp4")
        var r = try CLI.run(["degrade", src, "--frames", "0:6", "--size", "64x48", "-o", d + "/y8.mkv", "--degradation", "temporal=uniform:3", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try CLI.run(["restore", d + "/y8.mkv", "-o", d + "/r.npy", "--prior", "gaussian", "--report", d + "/rep.json", "--seed", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("noise σ"), "the start line names the noise: \(r.stderr)")
        let rep = try report(d + "/rep.json")
        let q = 1 / (255 * 12.0.squareRoot())
        #expect(abs(rep.noise.quantization - q) < 1e-9)
        #expect(rep.noise.format.hasPrefix("8-bit ffv1"), "\(rep.noise.format)")
        #expect(rep.noise_sigma >= q && rep.noise_sigma < 0.01)
        #expect(rep.degradation == "temporal=uniform:3")
        #expect(rep.settings?.sampler == "pnp" && rep.settings?.`init` == "admm-tv")
        r = try CLI.run(["restore", d + "/y8.mkv", "-o", d + "/dds.npy", "--prior", "gaussian", "--report", d + "/dds.json", "--seed", "1", "--sampler", "dds", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let dds = try report(d + "/dds.json")
        #expect(dds.settings?.sampler == "dds" && dds.settings?.cg_stop == "discrepancy")
        #expect(dds.settings?.cg_stop_sigma == nil, "no codec: the stop is at the whole σ")
        #expect(dds.settings?.`init` == "admm-tv")

        r = try CLI.run(["degrade", src, "--frames", "0:6", "--size", "64x48", "-o", d + "/y16.mkv", "--codec", "ffv1-16", "--degradation", "temporal=uniform:3", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try CLI.run(["noise", d + "/y16.mkv", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("16-bit ffv1"), "\(r.stdout)")
        struct Out: Decodable { let effective: Double; let noise: Noise }
        let o = try JSONDecoder().decode(Out.self, from: Data(r.stdout.utf8))
        #expect(abs(o.noise.quantization - 1 / (65535 * 12.0.squareRoot())) < 1e-12)
        // No added noise: what is left is the estimator's reading of a small, detailed clip
        // (its texture), well below anything that would change a restoration much.
        #expect(o.effective < 2 * q, "\(o.effective)")
    }

    /// H.264: the decoder's quantisers give the codec's share; --noise-sigma overrides all.
    @Test func h264FileCarriesItsQuantiser() throws {
        let d = CLI.tempDir()
        var r = try CLI.run(["degrade", Samples.path("bikes.mp4"), "--frames", "0:8", "--size", "128x64", "-o", d + "/y.mp4", "--crf", "28",
                             "--degradation", "temporal=uniform:3", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try CLI.run(["noise", d + "/y.mp4", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        struct Out: Decodable { let effective: Double; let noise: Noise }
        let o = try JSONDecoder().decode(Out.self, from: Data(r.stdout.utf8))
        let codec = try #require(o.noise.codec, "no codec share for H.264: \(r.stdout)")
        #expect(codec > 0.003 && codec < 0.1, "crf 28 quantiser error \(codec)")
        #expect(o.noise.format.contains("h264") && o.noise.format.contains("lossy"))
        // The restore's γ and λ take the whole σ; its CG stops at the white part only
        // (rounding or the data's estimate), below the codec's share.
        r = try CLI.run(["restore", d + "/y.mp4", "-o", d + "/r.npy", "--prior", "gaussian", "--report", d + "/rep.json", "--seed", "1", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        var rep = try report(d + "/rep.json")
        let stop = try #require(rep.settings?.cg_stop_sigma, "an H.264 file's stop is at its white part")
        #expect(abs(rep.noise_sigma - o.effective) < 1e-12)
        #expect(stop < codec && stop >= o.noise.quantization, "stop σ \(stop), codec \(codec), σ \(rep.noise_sigma)")
        r = try CLI.run(["restore", d + "/y.mp4", "-o", d + "/r.npy", "--prior", "gaussian", "--noise-sigma", "0.02", "--report", d + "/rep.json",
                         "--seed", "1", "--quiet", "--overwrite"])
        #expect(r.status == 0, "\(r.stderr)")
        rep = try report(d + "/rep.json")
        #expect(rep.noise_sigma == 0.02 && rep.settings?.cg_stop_sigma == nil, "--noise-sigma is taken as white")
    }

    /// Exact float32 measurements are taken as the spec states: σ 0, CG as before.
    @Test func floatMeasurementIsTakenAsStated() throws {
        let d = CLI.tempDir()
        var r = try CLI.run(["degrade", Samples.path("carphone_pristine.mp4"), "--frames", "0:6", "--size", "64x48", "-o", d + "/y.npy",
                             "--degradation", "temporal=uniform:3", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try CLI.run(["restore", d + "/y.npy", "-o", d + "/r.npy", "--prior", "gaussian", "--report", d + "/rep.json", "--seed", "1", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let rep = try report(d + "/rep.json")
        #expect(rep.noise_sigma == 0 && rep.noise.quantization == 0 && rep.noise.format == "float32 .npy")
        #expect(rep.settings?.cg_stop == "iterations" && rep.settings?.gamma == nil)
    }

    @Test func noiseSigmaOutOfRangeIsAUsageError() throws {
        let r = try CLI.run(["restore", "x.npy", "-o", "y.npy", "--noise-sigma", "nan"])
        #expect(r.status == 64, "\(r.stderr)")
    }
}

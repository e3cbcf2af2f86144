import Testing
import Foundation
import SVICore
import SVIFormats
@testable import SVINetwork

/// Checkpoints load natively and safely: PyTorch zip = safetensors bit for bit, foreign
/// globals refused, damaged files one clear error.
@Suite struct CheckpointTests {
    let dir: String = {
        let d = NSTemporaryDirectory() + "svi-ckpt-\(getpid())-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }()

    @Test func torchZipEqualsSafetensorsBitForBit() throws {
        let a = try Checkpoint.load(Fixtures.path("adm-tiny/weights.pt"))
        let b = try Checkpoint.load(Fixtures.path("adm-tiny/weights.safetensors"))
        #expect(a.format == "pytorch-zip" && b.format == "safetensors")
        #expect(Set(a.tensors.keys) == Set(b.tensors.keys))
        for (k, t) in b.tensors {
            let same = a.tensors[k]!.shape == t.shape && a.tensors[k]!.array == t.array
            #expect(same, "\(k)")
        }
        let config = try UNetConfig.load(Fixtures.path("adm-tiny/fixture.json"))
        let x = try NPY.readFloat32(Fixtures.path("adm-tiny/input0.npy"))
        let ya = try UNet(config: config, tensors: a.tensors, source: "pt").forward(x, timesteps: [10, 900])
        let yb = try UNet(config: config, tensors: b.tensors, source: "st").forward(x, timesteps: [10, 900])
        let identical = ya.array == yb.array
        #expect(identical)
    }

    /// A zip archive with stored entries, as torch.save writes (CRCs left zero: svi ignores them).
    func zip(_ entries: [(String, [UInt8])]) -> Data {
        var out = [UInt8](), central = [UInt8]()
        func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff)] }
        func le32(_ v: Int) -> [UInt8] { le16(v & 0xffff) + le16(v >> 16 & 0xffff) }
        for (name, body) in entries {
            let n = Array(name.utf8), offset = out.count
            out += le32(0x04034b50) + le16(20) + le16(0) + le16(0) + le16(0) + le16(0) + le32(0) + le32(body.count) + le32(body.count) + le16(n.count) + le16(0) + n + body
            central += le32(0x02014b50) + le16(20) + le16(20) + le16(0) + le16(0) + le16(0) + le16(0) + le32(0) + le32(body.count) + le32(body.count)
                + le16(n.count) + le16(0) + le16(0) + le16(0) + le16(0) + le32(0) + le32(offset) + n
        }
        let cd = out.count
        out += central + le32(0x06054b50) + le16(0) + le16(0) + le16(entries.count) + le16(entries.count) + le32(central.count) + le32(cd) + le16(0)
        return Data(out)
    }

    @Test func foreignGlobalIsRefusedAndNothingRuns() throws {
        let marker = dir + "/pwned"
        // pickle: os.system("touch <marker>")
        let cmd = Array("touch \(marker)".utf8)
        var pkl: [UInt8] = [0x80, 0x02] + Array("cos\nsystem\n".utf8) + [0x58] + [UInt8(cmd.count), 0, 0, 0] + cmd + [0x85, 0x52, 0x2e]
        let path = dir + "/evil.pt"
        try zip([("evil/data.pkl", pkl), ("evil/byteorder", Array("little".utf8))]).write(to: URL(fileURLWithPath: path))
        let e = #expect(throws: SVIError.self) { try Checkpoint.load(path) }
        #expect(e?.message.contains("os.system") == true)
        #expect(e?.message.hasPrefix(path) == true)
        #expect(!FileManager.default.fileExists(atPath: marker))
        // The same through STACK_GLOBAL (protocol 4).
        pkl = [0x80, 0x04, 0x8c, 8] + Array("builtins".utf8) + [0x8c, 4] + Array("eval".utf8) + [0x93, 0x2e]
        try zip([("evil/data.pkl", pkl)]).write(to: URL(fileURLWithPath: path))
        let e2 = #expect(throws: SVIError.self) { try Checkpoint.load(path) }
        #expect(e2?.message.contains("builtins.eval") == true)
    }

    @Test func damagedFilesGiveOneClearLine() throws {
        let st = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("adm-tiny/weights.safetensors")))
        let pt = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("adm-tiny/weights.pt")))
        let cases: [(String, Data, String)] = [
            ("cut.safetensors", st.prefix(100_000), "truncated"),
            ("cut.pt", pt.prefix(100_000), "truncated"),
            ("text.pt", Data("just some text, not weights at all".utf8), "not a checkpoint"),
            ("tiny.pt", Data([1, 2, 3]), "too short"),
            ("legacy.pt", Data([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]), "legacy"),
        ]
        for (name, bytes, says) in cases {
            let path = dir + "/" + name
            try bytes.write(to: URL(fileURLWithPath: path))
            let e = #expect(throws: SVIError.self) { try Checkpoint.load(path) }
            #expect(e?.message.contains(says) == true, "\(name): \(e?.message ?? "no error")")
            #expect(e?.message.contains("\n") == false)
        }
        #expect(throws: SVIError.self) { try Checkpoint.load(dir + "/missing.pt") }
    }

    @Test func halfAndBFloat16Safetensors() throws {
        let t = Tensor(shape: [2, 3], values: [0, 1, -2.5, 65504, 6.1e-5, 3.14159])
        let path = dir + "/half.safetensors"
        try SafeTensors.write(["w": t], to: path, half: true)
        let back = try Checkpoint.load(path)
        #expect(back.storageDTypes == ["F16"])
        let w = back.tensors["w"]!
        #expect(w.array[0...3] == [0, 1, -2.5, 65504])
        #expect(abs(w[4] - 6.1e-5) < 1e-7 && abs(w[5] - 3.14159) < 2e-3)
        // bfloat16: the top half of float32's bits.
        let header = Array(#"{"b":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}"#.utf8)
        var bytes = [UInt8(header.count), 0, 0, 0, 0, 0, 0, 0] + header
        bytes += [0x80, 0x3f, 0x40, 0xc0]    // 1.0, -3.0
        let bp = dir + "/b.safetensors"
        try Data(bytes).write(to: URL(fileURLWithPath: bp))
        #expect(try Checkpoint.load(bp).tensors["b"]!.array == [1, -3])
    }
}

/// The architecture is read off the weights, and a config that does not fit is refused
/// naming the tensors.
@Suite struct ConfigTests {
    @Test(arguments: ParityTests.models)
    func inferenceRecoversTheFixtureConfig(model: String) throws {
        let given = try UNetConfig.load(Fixtures.path(model + "/fixture.json"))
        let ckpt = try Checkpoint.load(Fixtures.path(model + "/weights.safetensors"))
        var inferred = try UNetConfig.infer(from: ckpt.tensors, source: model).config
        // Heads and attention order are not in the shapes: compare the rest.
        inferred.numHeads = given.numHeads; inferred.numHeadChannels = given.numHeadChannels
        inferred.numHeadsUpsample = given.numHeadsUpsample; inferred.useNewAttentionOrder = given.useNewAttentionOrder
        #expect(inferred == given)
    }

    @Test func mismatchedConfigNamesTheTensors() throws {
        let ckpt = try Checkpoint.load(Fixtures.path("adm-tiny/weights.safetensors"))
        let wrong = try UNetConfig.load(Fixtures.path("adm-plain/fixture.json"))
        let e = #expect(throws: SVIError.self) { try UNet(config: wrong, tensors: ckpt.tensors, source: "adm-tiny") }
        #expect(e?.message.contains("mis-shaped") == true)
        #expect(e?.message.contains("input_blocks") == true)
    }

    @Test func presetsHaveThePublishedSizes() throws {
        // Parameter counts of the published checkpoints follow from the presets alone.
        let c = UNetConfig.presets["adm-256-uncond"]!
        #expect(c.outChannels == 6 && c.channels(level: 5) == 1024)
        #expect(UNetConfig.presets["adm-ffhq-256"]!.numResBlocks == 1)
    }

    @Test func jsonOptionsAreChecked() {
        #expect(throws: SVIError.self) { try UNetConfig.fromJSON(Data(#"{"num_chanels": 3}"#.utf8), source: "c.json") }
        #expect(throws: SVIError.self) { try UNetConfig.fromJSON(Data(#"{"image_size": 100}"#.utf8), source: "c.json") }
        #expect(throws: SVIError.self) { try UNetConfig.fromJSON(Data("nope".utf8), source: "c.json") }
    }
}

/// The denoiser wrapper pads to the network's size multiple and crops back.
@Suite struct DenoiserTests {
    @Test func paddingAndCropping() throws {
        let config = try UNetConfig.load(Fixtures.path("adm-tiny/fixture.json"))
        let net = try UNet(config: config, tensors: try Checkpoint.load(Fixtures.path("adm-tiny/weights.safetensors")).tensors, source: "t")
        let den = UNetDenoiser(net: net, name: "adm-tiny")
        // A multiple of the size: ε is exactly the network's first three channels.
        let x = try NPY.readFloat32(Fixtures.path("adm-tiny/input1.npy"))   // 1×3×24×40
        let eps = Tensor(shape: x.shape)
        try den.predictNoise(x.data, count: 1, channels: 3, height: 24, width: 40, timestep: 250, into: eps.data)
        let full = try net.forward(x, timesteps: [250])
        let same = eps.array == Array(full.array[0..<(3 * 24 * 40)])
        #expect(same)
        // An odd size runs and gives finite values.
        let odd = Tensor(shape: [2, 3, 23, 37])
        RandomStream(seed: 1, purpose: .initial).normals(offset: 0, count: odd.count, into: odd.data)
        let e2 = Tensor(shape: odd.shape)
        try den.predictNoise(odd.data, count: 2, channels: 3, height: 23, width: 37, timestep: 500, into: e2.data)
        #expect(e2.array.allSatisfy { $0.isFinite } && e2.array.contains { $0 != 0 })
    }
}

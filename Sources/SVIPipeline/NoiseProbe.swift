import Foundation
import SVICore
import SVIFormats
import SVIMedia
import SVISampler

/// The measurement's noise level (issue 27), measured by rank 0 before the run is planned:
/// the spec's σ, the decoded samples' quantisation (from the pixel format the decoder gives,
/// not the file name), the H.264 quantiser's error, and the MAD estimate from the first
/// `NoiseEstimator.framesWanted` frames of the clip — read through a stream of their own, so
/// memory stays one frame whatever the video's length.
package enum NoiseProbe {
    /// `svi noise`: the level of a measurement's first frames (of the selection), the stated σ
    /// from `degradation`, else the sidecar's spec, else none.
    package static func measure(_ path: String, degradation: String?, selection sel: FrameSelection) throws -> NoiseLevel {
        let stated: Double
        if let d = degradation { stated = try DegradationSpec.parse(d).noiseSigma }
        else if let s = try Sidecar.load(for: path) { stated = try DegradationSpec.parse(s.degradation).noiseSigma }
        else { stated = 0 }
        var first = 0, frames = NoiseEstimator.framesWanted
        if let r = sel.range { first = r.lowerBound; frames = min(r.count, frames) }
        if MediaIO.isNPY(path) {
            let r = try NPYFrameReader(path)
            guard first < r.frames else { throw SVIError.file(path, "frame \(first) is beyond the end (the file has \(r.frames) frames)") }
            frames = min(frames, r.frames - first)
        }
        return try measure(path, selection: sel, firstIndex: first, frames: frames, stated: stated, override: nil, progress: Progress(quiet: true))
    }

    package static func measure(_ path: String, selection: FrameSelection, firstIndex: Int, frames: Int,
                        stated: Double, override: Double?, progress: Progress) throws -> NoiseLevel {
        let n = min(frames, NoiseEstimator.framesWanted)
        if MediaIO.isNPY(path) {
            let r = try NPYFrameReader(path)
            let shape = Array(r.shape.dropFirst())
            guard shape.count == 3 else { throw SVIError.file(path, "expected a video shaped [T][C][H][W], got shape \(r.shape)") }
            var est = NoiseEstimator(channels: shape[0], height: shape[1], width: shape[2], step: 0)
            let buf = Tensor(shape: [1, r.frameSize], zeroed: false)
            for i in 0..<n {
                try r.read(frame: firstIndex + i, into: buf.data)
                est.add(buf.data)
            }
            // Float data: taken as stated (exact measurements keep their results); the data's
            // own estimate is reported beside it.
            return NoiseLevel(stated: stated, quantization: 0, dataEstimate: est.estimate(), trustsData: false,
                              override: override, format: "float32 .npy")
        }
        var sel = selection
        sel.range = firstIndex..<(firstIndex + n)
        let stream = try VideoStream(path: path, selection: sel, quantiser: true, warn: { progress.warning($0) })
        var est: NoiseEstimator?
        var read = 0
        while let f = try stream.next() {
            if est == nil { est = NoiseEstimator(channels: f.shape[1], height: f.shape[2], width: f.shape[3], step: stream.sampleFormat.sampleStep) }
            est!.add(f.data)
            read += 1
        }
        let format = stream.sampleFormat
        let codec = format.lossy ? stream.meanQP.map { NoiseLevel.codecError(meanQP: $0) } : nil
        // Y′CbCr sources are rounded in Y′CbCr, then again to svi's RGB samples.
        let q = format.yuv ? NoiseLevel.quantization(yuvBits: format.bits, fullRange: format.fullRange, rgbBits: format.bits > 8 ? 16 : 8)
                           : NoiseLevel.quantization(bits: format.bits)
        let chroma = format.chromaSubsampled ? est?.chromaLoss() : nil
        return NoiseLevel(stated: stated, quantization: q, codec: codec, chroma: chroma,
                          dataEstimate: est?.estimate(), trustsData: true, override: override,
                          format: format.description + (stream.meanQP.map { String(format: ", mean QP %.1f", $0) } ?? ""))
    }
}

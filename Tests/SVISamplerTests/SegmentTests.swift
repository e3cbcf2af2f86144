import Testing
import Foundation
import SVICore
import SVIContracts
import SVIFormats
import SVIOperators
import SVISampler

/// Issue 15: segments cover the video with the asked overlap, cross-fade weights sum to one,
/// the stitcher gives every frame once and in order (a frame of one segment unchanged), and a
/// segment's operator is the video's operator with its edge frame replicated beyond the
/// segment, with an exact adjoint.
@Suite struct SegmentTests {
    static let plans: [(Int, Int, Int)] = [(100, 30, 8), (40, 16, 8), (41, 17, 12), (10, 10, 4), (10, 30, 4), (7, 3, 1), (1000, 64, 0), (23, 2, 1)]

    @Test(arguments: plans)
    func segmentsCoverTheVideoAndWeightsSumToOne(_ c: (Int, Int, Int)) {
        let (t, l, o) = c
        let p = SegmentPlan(totalFrames: t, segmentFrames: l, overlap: o)
        #expect(p.starts.first == 0 && p.range(p.count - 1).upperBound == t)
        #expect(p.segmentFrames <= min(l, t) && (p.count == 1 || p.segmentFrames > p.overlap))
        #expect(p.largestOverlap <= max(p.overlap, 0) + 1 || p.count == 1, "overlap grew to \(p.largestOverlap) in \(c)")
        for k in 1..<max(p.count, 1) where p.count > 1 {
            #expect(p.starts[k] > p.starts[k - 1])
            #expect(p.range(k - 1).upperBound - p.starts[k] >= p.overlap, "segments \(k - 1), \(k) overlap less than asked in \(c)")
        }
        var finalized: [Int] = []
        for k in 0..<p.count { finalized += Array(p.finalized(after: k)) }
        #expect(finalized == Array(0..<t))
        for f in 0..<t {
            let ks = p.segments(containing: f)
            #expect(!ks.isEmpty)
            let sum = ks.reduce(0.0) { $0 + Double(p.weight(segment: $1, frame: f)) }
            #expect(abs(sum - 1) < 1e-6, "weights at frame \(f) sum to \(sum) in \(c)")
            #expect(ks.allSatisfy { p.weight(segment: $0, frame: f) > 0 })
        }
        if l >= t { #expect(p.count == 1 && p.weight(segment: 0, frame: t - 1) == 1) }
    }

    /// The stitcher emits each frame once, in order; a constant video stitches to itself, and
    /// frames only one segment holds come out bit for bit.
    @Test func stitchingEmitsEveryFrameOnceAndBlendsOverlaps() throws {
        let p = SegmentPlan(totalFrames: 37, segmentFrames: 12, overlap: 5)
        let fs = 6
        let st = SegmentStitcher(plan: p, frameSize: fs)
        var got: [Int] = []
        var values: [[Float]] = []
        for k in 0..<p.count {
            // Segment k's output: frame t holds t/100 + k/1000 (so blends are visible), given in
            // two blocks as a gather of two ranks would.
            let r = p.range(k)
            let out = (r.lowerBound..<r.upperBound).flatMap { t in [Float](repeating: Float(t) / 100 + Float(k) / 1000, count: fs) }
            let half = r.count / 2
            try out.withUnsafeBufferPointer { b in
                try st.add(segment: k, range: r.lowerBound..<(r.lowerBound + half), b.baseAddress!) { t, f in got.append(t); values.append(Array(UnsafeBufferPointer(start: f, count: fs))) }
                try st.add(segment: k, range: (r.lowerBound + half)..<r.upperBound, b.baseAddress! + half * fs) { t, f in got.append(t); values.append(Array(UnsafeBufferPointer(start: f, count: fs))) }
            }
        }
        #expect(got == Array(0..<37))
        for (t, v) in values.enumerated() {
            let ks = p.segments(containing: t)
            let expected = ks.reduce(Float(0)) { $0 + p.weight(segment: $1, frame: t) * (Float(t) / 100 + Float($1) / 1000) }
            #expect(v.allSatisfy { abs($0 - expected) < 1e-6 })
            if ks.count == 1 { #expect(v[0] == Float(t) / 100 + Float(ks[0]) / 1000) }
        }
    }

    /// ⟨A_w x, y⟩ = ⟨x, A_wᵀ y⟩ on windows of a video (both boundaries); rows inside the window
    /// are the video's rows, edge rows are the video's rows of a video that repeats the edge frame.
    @Test(arguments: ["temporal=uniform:5", "temporal=gaussian:1.5,boundary=replicate", "temporal=uniform:3,blur=1.0", "temporal=uniform:7,sr=2"])
    func windowOperatorIsTheVideosRowsInsideTheWindow(_ specText: String) throws {
        let spec = try DegradationSpec.parse(specText)
        let frame = FrameShape(channels: 2, height: 8, width: 6)
        let video = 20
        let whole = try DegradationOperator(spec: spec, frame: frame, totalFrames: video)
        let x = Tensor64(shape: [video, 2, 8, 6])
        for i in 0..<x.count { x.data[i] = sin(Double(i) * 0.37) }
        let ax: Tensor64 = whole.makeOutput(frames: video)
        whole.apply(x, into: ax, .local(totalFrames: video))
        for (start, n) in [(0, 9), (5, 9), (11, 9), (0, 20), (3, 1)] {
            let w = try DegradationOperator(spec: spec, frame: frame, window: VideoWindow(start: start, frames: n, videoFrames: video))
            let d = Distribution.local(totalFrames: n)
            let xs = Tensor64(shape: [n, 2, 8, 6])
            xs.data.update(from: x.frame(start), count: xs.count)
            let out: Tensor64 = w.makeOutput(frames: n)
            w.apply(xs, into: out, d)
            let edge = Set(w.temporal?.edgeRows ?? [])
            for i in 0..<n where !edge.contains(i) {
                // A row that reads only frames inside the window equals the video's row.
                for j in 0..<out.frameSize { #expect(abs(out.frame(i)[j] - ax.frame(start + i)[j]) < 1e-12) }
            }
            // An edge row reads the window's edge frame for what lies beyond: on a video whose
            // frames outside the window repeat the edge frame, it equals the video's row too.
            if start > 0 || start + n < video, !edge.isEmpty {
                let padded = Tensor64(shape: x.shape)
                for f in 0..<video { padded.frame(f).update(from: xs.frame(min(max(f - start, 0), n - 1)), count: xs.frameSize) }
                let ap: Tensor64 = whole.makeOutput(frames: video)
                whole.apply(padded, into: ap, .local(totalFrames: video))
                for i in edge where (start + i - (w.temporal?.kernel.halo ?? 0)) >= 0 && (start + i + (w.temporal?.kernel.halo ?? 0)) < video {
                    for j in 0..<out.frameSize { #expect(abs(out.frame(i)[j] - ap.frame(start + i)[j]) < 1e-12) }
                }
            }
            if n == video { #expect(edge.isEmpty) }
            let y = Tensor64(shape: out.shape)
            for i in 0..<y.count { y.data[i] = cos(Double(i) * 0.11) }
            let aty: Tensor64 = w.makeInput(frames: n)
            w.adjoint(y, into: aty, d)
            let lhs = Kernels.dot(out.data, y.data, out.count), rhs = Kernels.dot(xs.data, aty.data, xs.count)
            #expect(abs(lhs - rhs) <= 1e-10 * max(abs(lhs), 1))
        }
    }
}

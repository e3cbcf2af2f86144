import SVIOperators
import SVICore
import SVIFormats

/// How a long video is cut into overlapping temporal segments (issue 15), each restored as
/// one exact distributed problem, and how their outputs are cross-faded back together.
///
/// Segments are `segmentFrames` long (the video's length when shorter) and overlap their
/// neighbours by at least `overlap` frames: n = ⌈(T − O)/(L − O)⌉ segments, starts spread
/// evenly over [0, T − L] (rounded down), so every segment has the same length — the
/// operators' scratch and the network's batches are reused — and the last one ends at T.
/// A video no longer than one segment is one segment (weight 1: exactly the unsegmented
/// result).
public struct SegmentPlan: Sendable, Equatable, Codable {
    public let totalFrames: Int
    /// Frames per segment: at most the asked length, shortened so that the segments the
    /// asked length needs overlap by about `overlap` (not more).
    public let segmentFrames: Int
    public let overlap: Int
    /// The length asked for (the plan is rebuilt from it when read back).
    public let requestedFrames: Int
    /// First frame of each segment, increasing.
    public let starts: [Int]

    enum CodingKeys: String, CodingKey {
        case overlap, starts
        case totalFrames = "total_frames", segmentFrames = "segment_frames", requestedFrames = "requested_frames"
    }

    public init(totalFrames: Int, segmentFrames: Int, overlap: Int) {
        precondition(totalFrames >= 1 && segmentFrames >= 1 && overlap >= 0)
        self.totalFrames = totalFrames
        requestedFrames = segmentFrames
        var L = min(segmentFrames, totalFrames)
        let o = min(overlap, max(L - 1, 0))
        self.overlap = o
        if L >= totalFrames {
            starts = [0]
        } else {
            let n = (totalFrames - o + (L - o) - 1) / (L - o)
            // n segments of L' frames overlapping by o cover (n − 1)(L' − o) + L' frames.
            L = min(L, (totalFrames + (n - 1) * o + n - 1) / n)
            let last = totalFrames - L
            starts = (0..<n).map { k in k * last / (n - 1) }
        }
        self.segmentFrames = L
    }

    public var count: Int { starts.count }

    /// "12 segments of 200 frames, overlap 12" (for messages).
    public var summary: String { "\(count) segment(s) of \(segmentFrames) frames, overlap \(overlap), \(totalFrames) frames" }

    /// For plans read from files (checkpoints): sizes in range and starts as `init` makes them.
    public func validate(path: String) throws {
        // The number of segments the fields imply, by arithmetic, before any plan is built (a
        // crafted plan of 10⁸ one-frame segments would otherwise allocate its starts).
        func segmentCount() -> Int? {
            guard (1...FormatLimits.maxFrames).contains(totalFrames), (1...FormatLimits.maxFrames).contains(requestedFrames),
                  (0...100_000).contains(overlap) else { return nil }
            let l = min(requestedFrames, totalFrames), o = min(overlap, max(l - 1, 0))
            return l >= totalFrames ? 1 : (totalFrames - o + (l - o) - 1) / (l - o)
        }
        guard let n = segmentCount(), n == starts.count,
              SegmentPlan(totalFrames: totalFrames, segmentFrames: requestedFrames, overlap: overlap) == self else {
            throw SVIError.file(path, "corrupt checkpoint state: 'segment_plan' is not a plan svi makes (\(totalFrames) frames, segments of \(segmentFrames), overlap \(overlap))")
        }
    }

    public func window(_ k: Int) -> VideoWindow {
        VideoWindow(start: starts[k], frames: segmentFrames, videoFrames: totalFrames)
    }

    public func range(_ k: Int) -> Range<Int> { starts[k]..<(starts[k] + segmentFrames) }

    /// Frames that are final once segment k is done: from its start up to the next segment's
    /// start (no later segment reaches them).
    public func finalized(after k: Int) -> Range<Int> {
        starts[k]..<(k + 1 < count ? starts[k + 1] : totalFrames)
    }

    /// The most frames that wait between two segments for the next one's share (the overlap
    /// actually used, which the even spacing can make larger than asked).
    public var largestOverlap: Int {
        (0..<max(count - 1, 0)).map { starts[$0] + segmentFrames - starts[$0 + 1] }.max() ?? 0
    }

    /// The segments that contain frame t.
    public func segments(containing t: Int) -> [Int] {
        starts.indices.filter { range($0).contains(t) }
    }

    /// The cross-fade ramp of segment k at frame t before normalising: 1 inside, falling
    /// linearly, (i + ½)/O, over the O frames at each edge the segment shares with a
    /// neighbour; no ramp at the video's ends.
    func ramp(_ k: Int, _ t: Int) -> Double {
        let r = range(k)
        guard r.contains(t) else { return 0 }
        let o = Double(max(overlap, 1))
        var w = 1.0
        if r.lowerBound > 0 { w = min(w, (Double(t - r.lowerBound) + 0.5) / o) }
        if r.upperBound < totalFrames { w = min(w, (Double(r.upperBound - 1 - t) + 0.5) / o) }
        return w
    }

    /// Weight of segment k's output at frame t: its ramp divided by the sum of the ramps of
    /// every segment containing t, so the weights of a frame sum to one.
    public func weight(segment k: Int, frame t: Int) -> Float {
        let all = segments(containing: t)
        guard all.contains(k) else { return 0 }
        if all.count == 1 { return 1 }
        let total = all.reduce(0.0) { $0 + ramp($1, t) }
        return Float(ramp(k, t) / total)
    }
}

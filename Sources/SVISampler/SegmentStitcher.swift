import SVICore

/// Rank 0's cross-fade of segment outputs (issue 15): segment k's frames arrive in order,
/// each is weighted by `SegmentPlan.weight` and added to what earlier segments left for that
/// frame; a frame no later segment reaches is complete and handed on at once. Only the frames
/// two segments share wait, so memory is the overlap, not the video.
///
/// Accumulation is float32 in segment order (earlier segment first), so a stitch has the
/// same bits whatever the ranks; a frame of one segment has weight 1 and passes unchanged.
public final class SegmentStitcher {
    public let plan: SegmentPlan
    public let frameSize: Int
    /// Partial sums of frames [pendingStart, pendingStart + pendingCount) from earlier
    /// segments, and the ones being built for the next segment.
    private var pending: Tensor, building: Tensor
    public private(set) var pendingStart = 0, pendingCount = 0
    private var buildStart = 0, buildCount = 0
    private let scratch: Tensor

    /// Whether finished frames are clipped to [0, 1] (always, but for the parity test's hook).
    public let clips: Bool

    public init(plan: SegmentPlan, frameSize: Int, clips: Bool = true) {
        self.plan = plan
        self.clips = clips
        self.frameSize = frameSize
        let cap = max(plan.largestOverlap, 1)
        pending = Tensor(shape: [cap, frameSize], zeroed: false)
        building = Tensor(shape: [cap, frameSize], zeroed: false)
        scratch = Tensor(shape: [1, frameSize], zeroed: false)
    }

    /// The frames waiting for the next segment (for a checkpoint), and their first index.
    public func pendingFrames() -> (start: Int, frames: Tensor) {
        let t = Tensor(shape: [pendingCount, frameSize], zeroed: false)
        if pendingCount > 0 { t.data.update(from: pending.data, count: pendingCount * frameSize) }
        return (pendingStart, t)
    }

    /// Restores the waiting frames from a checkpoint.
    public func restorePending(start: Int, frames: UnsafePointer<Float>, count: Int) {
        precondition(count <= pending.frames)
        pendingStart = start; pendingCount = count
        if count > 0 { pending.data.update(from: frames, count: count * frameSize) }
    }

    /// Adds frames `range` (video-clip indices, in order, inside segment k) of segment k's
    /// output; `emit(t, frame)` receives every frame that is now complete, in order.
    public func add(segment k: Int, range: Range<Int>, _ p: UnsafePointer<Float>,
                    emit: (Int, UnsafePointer<Float>) throws -> Void) throws {
        let seg = plan.range(k)
        precondition(range.lowerBound >= seg.lowerBound && range.upperBound <= seg.upperBound)
        let completeBefore = plan.finalized(after: k).upperBound
        if range.lowerBound == seg.lowerBound { buildStart = completeBefore; buildCount = 0 }
        let n = frameSize
        for t in range {
            let src = p + (t - range.lowerBound) * n
            let w = plan.weight(segment: k, frame: t)
            let out: UnsafeMutablePointer<Float> = t >= completeBefore ? building.frame(t - buildStart) : scratch.data
            if t >= pendingStart && t < pendingStart + pendingCount {
                let acc = pending.frame(t - pendingStart)
                for i in 0..<n { out[i] = acc[i] + w * src[i] }
            } else if w == 1 {
                out.update(from: src, count: n)
            } else {
                for i in 0..<n { out[i] = w * src[i] }
            }
            if t < completeBefore {
                if clips { for i in 0..<n { out[i] = min(max(out[i], 0), 1) } }
                try emit(t, out)
            } else {
                buildCount = t - buildStart + 1
            }
        }
        if range.upperBound == seg.upperBound {
            swap(&pending, &building)
            pendingStart = buildStart; pendingCount = buildCount
        }
    }
}

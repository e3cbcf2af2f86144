/// Contiguous frame blocks, one per rank, whose sizes differ by at most one (DESIGN §6):
/// the first `total % ranks` ranks get one frame more.
public struct FramePartition: Sendable, Equatable {
    public let totalFrames: Int
    public let ranks: Int

    public init(totalFrames: Int, ranks: Int) {
        precondition(ranks >= 1 && totalFrames >= 0)
        self.totalFrames = totalFrames; self.ranks = ranks
    }

    public func range(of rank: Int) -> Range<Int> {
        let base = totalFrames / ranks, extra = totalFrames % ranks
        let start = rank * base + min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }

    public func owner(of frame: Int) -> Int {
        let base = totalFrames / ranks, extra = totalFrames % ranks
        let bigEnd = extra * (base + 1)
        if frame < bigEnd { return frame / (base + 1) }
        return extra + (frame - bigEnd) / max(base, 1)
    }
}

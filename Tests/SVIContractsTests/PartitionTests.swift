import Testing
@testable import SVIContracts
import SVICore

/// Frame blocks are contiguous, cover the video once, and differ in size by at most one.
@Suite struct PartitionTests {
    @Test func blocksCoverTheVideo() {
        for total in [0, 1, 5, 16, 23, 1000] {
            for ranks in 1...7 {
                let p = FramePartition(totalFrames: total, ranks: ranks)
                var next = 0
                var sizes: [Int] = []
                for r in 0..<ranks {
                    let rr = p.range(of: r)
                    #expect(rr.lowerBound == next)
                    next = rr.upperBound
                    sizes.append(rr.count)
                    for f in rr { #expect(p.owner(of: f) == r) }
                }
                #expect(next == total)
                #expect(sizes.max()! - sizes.min()! <= 1)
            }
        }
    }

    @Test func localCommunicatorSumsInFrameOrder() {
        let c = LocalCommunicator()
        #expect(c.sumInFrameOrder([1, 2, 3.5], partition: FramePartition(totalFrames: 3, ranks: 1)) == 6.5)
        #expect(c.broadcast(42) == 42)
        #expect(c.allreduceSum([1, 2]) == [1, 2])
    }
}

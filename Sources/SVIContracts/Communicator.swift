import SVICore

/// What the numerical layers need from a group of cooperating processes. The local
/// implementation serves a single process; the MPI implementation (issue 5) serves a job.
/// Nothing here knows about diffusion.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var size: Int { get }

    /// Element-wise sum over ranks (MPI_Allreduce with MPI_SUM on float64).
    func allreduceSum(_ values: [Double]) -> [Double]

    /// Each rank passes one float64 per frame it owns (in frame order); every rank receives
    /// the sum over all frames of the video, added in global frame order, so the result has
    /// the same bits at any rank count.
    func sumInFrameOrder(_ localPartials: [Double], partition: FramePartition) -> Double

    /// Frames of a distributed tensor at arbitrary global indices (halo frames). `needed(r)`
    /// must give the same answer on every rank: rank r's list of wanted frames. Collective.
    func fetchFrames<S>(of local: DenseTensor<S>, partition: FramePartition, needed: (Int) -> [Int]) -> FrameTable<S>

    /// Rank 0's value on every rank.
    func broadcast(_ value: UInt64) -> UInt64

    /// Rank 0's bytes on every rank.
    func broadcast(bytes: [UInt8]) -> [UInt8]

    /// Element-wise maximum over ranks.
    func allreduceMax(_ values: [Double]) -> [Double]

    /// Rank 0 hands each rank its block of `whole` (given on rank 0 only); each rank gets its
    /// own block, shaped [frames] + frameShape.
    func scatter(_ whole: Tensor?, partition: FramePartition, frameShape: [Int]) -> Tensor

    /// As `scatter`, but rank 0 fills each rank's block in turn (its own first, then ranks 1,
    /// 2, … — frames in increasing order) into one buffer and sends it, so it never holds more
    /// than its block and one other: `fill(frames, buffer)` writes frames `frames` (indices
    /// of the partition). Called on rank 0 only; it must not fail midway (the other ranks wait).
    func scatter(partition: FramePartition, frameShape: [Int], fill: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) -> Tensor

    /// Rank 0 receives every block in frame order and passes each to `sink` (one incoming
    /// block held at a time); other ranks send theirs.
    func gather(_ local: Tensor, partition: FramePartition, sink: (Range<Int>, UnsafePointer<Float>) throws -> Void) throws

    /// Every rank's values concatenated in rank order, on rank 0 ([] elsewhere).
    func gatherToRoot(_ values: [Double]) -> [Double]

    func barrier()
}

/// Global frame index → frame data, for frames a rank reads but may not own. Keeps the
/// buffers of received frames alive.
public final class FrameTable<S: BinaryFloatingPoint> {
    public private(set) var pointers: [Int: UnsafePointer<S>] = [:]
    private var storage: [DenseTensor<S>] = []

    public init() {}

    public func set(_ frame: Int, _ p: UnsafePointer<S>) { pointers[frame] = p }
    public func keep(_ t: DenseTensor<S>) { storage.append(t) }

    public subscript(frame: Int) -> UnsafePointer<S> {
        guard let p = pointers[frame] else { preconditionFailure("frame \(frame) was not fetched") }
        return p
    }
}

/// The single-process communicator: every frame is local.
public final class LocalCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allreduceSum(_ values: [Double]) -> [Double] { values }
    public func sumInFrameOrder(_ localPartials: [Double], partition: FramePartition) -> Double {
        localPartials.reduce(0, +)
    }
    public func fetchFrames<S>(of local: DenseTensor<S>, partition: FramePartition, needed: (Int) -> [Int]) -> FrameTable<S> {
        let table = FrameTable<S>()
        for f in needed(0) { table.set(f, UnsafePointer(local.frame(f))) }
        return table
    }
    public func broadcast(_ value: UInt64) -> UInt64 { value }
    public func broadcast(bytes: [UInt8]) -> [UInt8] { bytes }
    public func allreduceMax(_ values: [Double]) -> [Double] { values }
    public func scatter(_ whole: Tensor?, partition: FramePartition, frameShape: [Int]) -> Tensor { whole! }
    public func scatter(partition: FramePartition, frameShape: [Int], fill: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) -> Tensor {
        let block = Tensor(shape: [partition.totalFrames] + frameShape, zeroed: false)
        fill(0..<partition.totalFrames, block.data)
        return block
    }
    public func gather(_ local: Tensor, partition: FramePartition, sink: (Range<Int>, UnsafePointer<Float>) throws -> Void) throws {
        try sink(0..<local.frames, local.data)
    }
    public func gatherToRoot(_ values: [Double]) -> [Double] { values }
    public func barrier() {}
}

/// A rank's view of a video distributed in frame blocks: the communicator and the partition,
/// with the float64 reductions CG needs.
public struct Distribution {
    public let comm: Communicator
    public let partition: FramePartition

    public init(comm: Communicator, totalFrames: Int) {
        self.comm = comm
        self.partition = FramePartition(totalFrames: totalFrames, ranks: comm.size)
    }

    public static func local(totalFrames: Int) -> Distribution {
        Distribution(comm: LocalCommunicator(), totalFrames: totalFrames)
    }

    public var totalFrames: Int { partition.totalFrames }
    public var localRange: Range<Int> { partition.range(of: comm.rank) }

    /// ⟨x, y⟩ over the whole video, float64, the same bits at any rank count. Inlinable, so CG
    /// gets it specialised for its scalar in every build (debug ones have no cross-module
    /// optimisation: generic, it ran ~40× slower there).
    @inlinable public func dot<S>(_ x: DenseTensor<S>, _ y: DenseTensor<S>) -> Double {
        precondition(x.count == y.count)
        let partials = Kernels.frameDots(x.data, y.data, frames: x.frames, frameSize: x.frameSize)
        return comm.sumInFrameOrder(partials, partition: partition)
    }
}

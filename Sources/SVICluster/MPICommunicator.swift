import Foundation
import CMPI
import SVICore
@_exported import SVIContracts

/// The communicator of an MPI job (OpenMPI): one rank per process, launched by `mpirun` or
/// `srun`. Every collective here is called by all ranks in the same order.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    let comm: MPI_Comm
    /// Seconds in halo exchange and in reductions, and bytes this rank sent, for reports.
    public private(set) var haloSeconds = 0.0, reduceSeconds = 0.0
    public private(set) var bytesSent = 0
    /// Reductions (allreduce / frame-ordered sums) this rank took part in.
    public private(set) var reductions = 0

    /// True when this process was started by an MPI launcher (OpenMPI, PMIx, Slurm's PMI).
    public static var launchedByMPI: Bool { launchedByMPI(ProcessInfo.processInfo.environment) }

    /// Whether an MPI launcher (mpirun, or srun with a PMI plugin) started a process with this environment.
    public static func launchedByMPI(_ env: [String: String]) -> Bool {
        ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"].contains { env[$0] != nil }
    }

    public init() throws {
        var provided: Int32 = 0
        let rc = MPI_Init_thread(nil, nil, svi_mpi_thread_funneled(), &provided)
        guard rc == svi_mpi_success() else { throw SVIError("MPI_Init_thread failed (code \(rc))") }
        comm = svi_mpi_comm_world()
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(comm, &r)
        MPI_Comm_size(comm, &s)
        rank = Int(r); size = Int(s)
    }

    /// Ends MPI cleanly (all ranks).
    public func finalize() { MPI_Finalize() }

    /// Ends the whole job at once from any rank (after an error seen by this rank alone).
    public func abort(code: Int32) -> Never {
        MPI_Abort(comm, code)
        exit(code)
    }

    public func barrier() { MPI_Barrier(comm) }

    public func allreduceSum(_ values: [Double]) -> [Double] {
        let t0 = Date()
        var out = [Double](repeating: 0, count: values.count)
        var input = values
        MPI_Allreduce(&input, &out, Int32(values.count), svi_mpi_double(), svi_mpi_sum(), comm)
        reduceSeconds += Date().timeIntervalSince(t0)
        reductions += 1
        return out
    }

    public func allreduceMax(_ values: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: values.count)
        var input = values
        MPI_Allreduce(&input, &out, Int32(values.count), svi_mpi_double(), svi_mpi_max(), comm)
        return out
    }

    /// Gathers every rank's per-frame partials (MPI_Allgatherv) and adds them in global frame
    /// order: the same bits at any rank count.
    public func sumInFrameOrder(_ localPartials: [Double], partition: FramePartition) -> Double {
        let t0 = Date()
        var counts = (0..<size).map { Int32(partition.range(of: $0).count) }
        var displs = (0..<size).map { Int32(partition.range(of: $0).lowerBound) }
        var all = [Double](repeating: 0, count: partition.totalFrames)
        var input = localPartials
        MPI_Allgatherv(&input, Int32(localPartials.count), svi_mpi_double(), &all, &counts, &displs, svi_mpi_double(), comm)
        reduceSeconds += Date().timeIntervalSince(t0)
        reductions += 1
        return all.reduce(0, +)
    }

    public func broadcast(_ value: UInt64) -> UInt64 {
        var v = value
        MPI_Bcast(&v, 1, svi_mpi_uint64(), 0, comm)
        return v
    }

    /// The largest message svi hands MPI: counts are Int32, so a block of more than 2 GiB (about
    /// 86 frames of 1080p) goes as several messages of at most this many bytes, sent and
    /// received in order (MPI keeps the order of messages with one tag between two ranks).
    /// `SVI_MPI_CHUNK_BYTES` lowers it (tests use a few bytes to exercise the split).
    public static let chunkBytes: Int = {
        if let e = ProcessInfo.processInfo.environment["SVI_MPI_CHUNK_BYTES"], let v = Int(e), v >= 1 { return min(v, 1 << 30) }
        return 1 << 30
    }()

    /// The (offset, count) pieces of a `bytes`-long message.
    static func chunks(_ bytes: Int) -> [(Int, Int32)] {
        stride(from: 0, to: bytes, by: chunkBytes).map { ($0, Int32(min(chunkBytes, bytes - $0))) }
    }

    func send(_ p: UnsafeRawPointer, bytes: Int, to r: Int, tag: Int32) {
        for (o, n) in MPICommunicator.chunks(bytes) { MPI_Send(p + o, n, svi_mpi_byte(), Int32(r), tag, comm) }
    }

    func receive(_ p: UnsafeMutableRawPointer, bytes: Int, from r: Int, tag: Int32) {
        for (o, n) in MPICommunicator.chunks(bytes) { MPI_Recv(p + o, n, svi_mpi_byte(), Int32(r), tag, comm, svi_mpi_status_ignore()) }
    }

    /// Rank 0's bytes on every rank (length first, then the bytes).
    public func broadcast(bytes: [UInt8]) -> [UInt8] {
        var n = UInt64(bytes.count)
        MPI_Bcast(&n, 1, svi_mpi_uint64(), 0, comm)
        var buf = rank == 0 ? bytes : [UInt8](repeating: 0, count: Int(n))
        buf.withUnsafeMutableBytes { b in
            for (o, c) in MPICommunicator.chunks(Int(n)) { MPI_Bcast(b.baseAddress! + o, c, svi_mpi_byte(), 0, comm) }
        }
        return buf
    }

    /// Halo exchange: every rank sends the frames it owns that others need, in one message per
    /// rank pair (non-blocking sends and receives, then wait for all).
    public func fetchFrames<S>(of local: DenseTensor<S>, partition: FramePartition, needed: (Int) -> [Int]) -> FrameTable<S> {
        let t0 = Date()
        let mine = partition.range(of: rank)
        let fs = local.frameSize, bytesPerFrame = fs * MemoryLayout<S>.stride
        let table = FrameTable<S>()
        var requests: [MPI_Request?] = []
        var receives: [(DenseTensor<S>, [Int])] = []
        var sends: [DenseTensor<S>] = []
        // What this rank wants, grouped by owner.
        var byOwner: [Int: [Int]] = [:]
        for f in Set(needed(rank)).sorted() {
            if mine.contains(f) { table.set(f, UnsafePointer(local.frame(f - mine.lowerBound))) }
            else { byOwner[partition.owner(of: f), default: []].append(f) }
        }
        for (owner, frames) in byOwner.sorted(by: { $0.key < $1.key }) {
            let buf = DenseTensor<S>(shape: [frames.count, fs], zeroed: false)
            for (o, n) in MPICommunicator.chunks(frames.count * bytesPerFrame) {
                var req: MPI_Request? = svi_mpi_request_null()
                MPI_Irecv(UnsafeMutableRawPointer(buf.data) + o, n, svi_mpi_byte(), Int32(owner), 7, comm, &req)
                requests.append(req)
            }
            receives.append((buf, frames))
        }
        for r in 0..<size where r != rank {
            let frames = Set(needed(r)).sorted().filter { mine.contains($0) }
            if frames.isEmpty { continue }
            let buf = DenseTensor<S>(shape: [frames.count, fs], zeroed: false)
            for (i, f) in frames.enumerated() { buf.frame(i).update(from: local.frame(f - mine.lowerBound), count: fs) }
            for (o, n) in MPICommunicator.chunks(frames.count * bytesPerFrame) {
                var req: MPI_Request? = svi_mpi_request_null()
                MPI_Isend(UnsafeRawPointer(buf.data) + o, n, svi_mpi_byte(), Int32(r), 7, comm, &req)
                requests.append(req)
            }
            sends.append(buf)
            bytesSent += frames.count * bytesPerFrame
        }
        if !requests.isEmpty { MPI_Waitall(Int32(requests.count), &requests, svi_mpi_statuses_ignore()) }
        for (buf, frames) in receives {
            table.keep(buf)
            for (i, f) in frames.enumerated() { table.set(f, UnsafePointer(buf.frame(i))) }
        }
        _ = sends
        haloSeconds += Date().timeIntervalSince(t0)
        return table
    }

    /// Rank 0 sends each rank its block of `whole` (rank 0's argument; ignored elsewhere);
    /// every rank returns its own block, shaped [frames][frameShape...].
    public func scatter(_ whole: Tensor?, partition: FramePartition, frameShape: [Int]) -> Tensor {
        let fs = frameShape.reduce(1, *)
        let mine = partition.range(of: rank)
        let block = Tensor(shape: [mine.count] + frameShape, zeroed: false)
        if rank == 0 {
            let w = whole!
            for r in 1..<max(size, 1) {
                let rr = partition.range(of: r)
                if rr.isEmpty { continue }
                send(w.frame(rr.lowerBound), bytes: rr.count * fs * 4, to: r, tag: 11)
                bytesSent += rr.count * fs * 4
            }
            if !mine.isEmpty { block.data.update(from: w.frame(mine.lowerBound), count: mine.count * fs) }
        } else if !mine.isEmpty {
            receive(block.data, bytes: mine.count * fs * 4, from: 0, tag: 11)
        }
        return block
    }

    public func scatter(partition: FramePartition, frameShape: [Int], fill: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) -> Tensor {
        let fs = frameShape.reduce(1, *)
        let mine = partition.range(of: rank)
        let block = Tensor(shape: [mine.count] + frameShape, zeroed: false)
        if rank == 0 {
            if !mine.isEmpty { fill(mine, block.data) }
            var largest = 0
            for r in 1..<max(size, 1) { largest = max(largest, partition.range(of: r).count) }
            guard largest > 0 else { return block }
            let buf = Tensor(shape: [largest, fs], zeroed: false)
            for r in 1..<max(size, 1) {
                let rr = partition.range(of: r)
                if rr.isEmpty { continue }
                fill(rr, buf.data)
                send(buf.data, bytes: rr.count * fs * 4, to: r, tag: 11)
                bytesSent += rr.count * fs * 4
            }
        } else if !mine.isEmpty {
            receive(block.data, bytes: mine.count * fs * 4, from: 0, tag: 11)
        }
        return block
    }

    /// Rank 0 receives the blocks of ranks 1, 2, … in order and hands each to `sink` (after
    /// its own), holding one incoming block at a time. Other ranks send theirs.
    public func gather(_ local: Tensor, partition: FramePartition, sink: (Range<Int>, UnsafePointer<Float>) throws -> Void) throws {
        let fs = local.frameSize
        if rank == 0 {
            try sink(partition.range(of: 0), local.data)
            var largest = 0
            for r in 1..<max(size, 1) { largest = max(largest, partition.range(of: r).count) }
            let buf = Tensor(shape: [max(largest, 1), fs], zeroed: false)
            for r in 1..<max(size, 1) {
                let rr = partition.range(of: r)
                if rr.isEmpty { continue }
                receive(buf.data, bytes: rr.count * fs * 4, from: r, tag: 13)
                try sink(rr, buf.data)
            }
        } else if local.frames > 0 {
            send(local.data, bytes: local.count * 4, to: 0, tag: 13)
            bytesSent += local.count * 4
        }
    }

    /// Every rank's values, concatenated in rank order, on rank 0 (others get []).
    public func gatherToRoot(_ values: [Double]) -> [Double] {
        var all = [Double](repeating: 0, count: rank == 0 ? values.count * size : 0)
        var input = values
        MPI_Gather(&input, Int32(values.count), svi_mpi_double(), &all, Int32(values.count), svi_mpi_double(), 0, comm)
        return all
    }
}

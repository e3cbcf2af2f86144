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

    /// The pause after MPI_Init before the first message (init): 1 s; `SVI_MPI_START_PAUSE_MS`
    /// sets it (0 to 60000).
    static let startPauseMicroseconds: UInt32 = {
        if let e = ProcessInfo.processInfo.environment["SVI_MPI_START_PAUSE_MS"], let v = UInt32(e), v <= 60000 { return v * 1000 }
        return 1_000_000
    }()

    /// True when this process was started by an MPI launcher (OpenMPI, PMIx, Slurm's PMI).
    public static var launchedByMPI: Bool { launchedByMPI(ProcessInfo.processInfo.environment) }

    /// Whether an MPI launcher (mpirun, or srun with a PMI plugin) started a process with this environment.
    public static func launchedByMPI(_ env: [String: String]) -> Bool {
        ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"].contains { env[$0] != nil }
    }

    public init() throws {
        var provided: Int32 = 0
        let rc = MPI_Init_thread(nil, nil, svi_mpi_thread_funneled(), &provided)
        guard rc == svi_mpi_success() else { throw SVIError.cluster("MPI_Init_thread failed (code \(rc))") }
        comm = svi_mpi_comm_world()
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(comm, &r)
        MPI_Comm_size(comm, &s)
        rank = Int(r); size = Int(s)
        // A pause before the first MPI message. Open MPI 4.1.4 (Debian 12) under srun
        // --mpi=pmix lets ranks leave MPI_Init while another is still inside it (Slurm's PMIx
        // fences, MPI_Init's own and one of ours, completed without that rank); the first
        // message reaching it goes to a receive handler not yet installed and it dies (SIGSEGV
        // at address 0 in the TCP transport). Seen in CI; reproduced without svi: a C program
        // doing MPI_Init + MPI_Allgather on 3 emulated Slurm nodes crashed in 3–9 % of jobs,
        // always inside MPI_Init; with a 0.3 s pause after MPI_Init, in 0 of 120. No barrier can
        // replace the pause (MPI's needs messages, PMIx's did not hold), so it is a margin, 1 s,
        // once per job (ARCHITECTURE.md, "MPI start-up").
        if size > 1 { usleep(MPICommunicator.startPauseMicroseconds) }
        // Every rank's host name, for messages that name a rank (64 bytes each).
        var mine = [CChar](repeating: 0, count: 64)
        _ = gethostname(&mine, 63)
        var all = [CChar](repeating: 0, count: 64 * size)
        MPI_Allgather(&mine, 64, svi_mpi_byte(), &all, 64, svi_mpi_byte(), comm)
        hosts = (0..<size).map { i in all[(i * 64)..<(i * 64 + 64)].withUnsafeBufferPointer { String(cString: $0.baseAddress!) } }
        watch = StallWatch(rank: rank, size: size)
    }

    /// Ends MPI cleanly (all ranks): the heartbeats still in flight are received first.
    public func finalize() {
        drainHeartbeats()
        MPI_Finalize()
    }

    // MARK: stall detection (issue 28)

    /// The host name of every rank.
    public private(set) var hosts: [String] = []
    /// Seconds one rank may wait in one collective before the job counts as stalled (rank 0
    /// acts after this, rank 1 after 1.5×, the others after 2×, so that one rank speaks); nil
    /// waits forever, as MPI itself does.
    public var stallBound: Double?
    /// Called on the rank that declares the stall, with one line naming the rank that stopped
    /// answering; it must end the job (svi prints the line and aborts with the requeue status).
    public var onStall: ((String) -> Never)?
    private var watch: StallWatch!

    /// How long a wait spins before it yields the core. `SVI_MPI_SPIN_US` sets it: 0 when
    /// ranks outnumber cores (emulated nodes on one machine, `Scripts/network-cost`), where a
    /// spinning rank would keep the rank it waits for off the core until the next tick.
    static let spinSeconds: Double = {
        if let s = ProcessInfo.processInfo.environment["SVI_MPI_SPIN_US"], let v = Double(s), v >= 0, v <= 1e7 { return v / 1e6 }
        return 0.005
    }()

    /// Waits for `req`, polling: a rank blocked here for longer than the bound (a rank of the
    /// job frozen, its node gone) ends the job instead of waiting forever. While it waits it
    /// tells its heartbeat partner which collective it has reached, and takes in the heartbeats
    /// sent to it.
    func wait(_ req: inout MPI_Request?) {
        var done: Int32 = 0
        MPI_Test(&req, &done, svi_mpi_status_ignore())
        if done != 0 { return }
        // Spin on MPI_Test for the first `spinSeconds` (5 ms), as a blocking MPI call would (a
        // wait is usually a CG reduction a few microseconds long); past that, the rank is
        // waiting for another's compute: it says so to its heartbeat partner and yields the core
        // between tests; past a second (rank 0's I/O, a stall) it sleeps 200 µs between tests.
        let start = DispatchTime.now().uptimeNanoseconds
        var spins = 0, told = -1.0
        while true {
            MPI_Test(&req, &done, svi_mpi_status_ignore())
            if done != 0 { return }
            spins += 1
            if spins & 255 != 0 { continue }
            let waited = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if waited < MPICommunicator.spinSeconds { continue }
            // Say "here, at this collective" on arrival and every 0.25 s after: a rank frozen
            // while it waits (after saying it arrived) then goes stale, and can be named too.
            if told < 0 || waited - told >= 0.25 { watch.send(comm); told = waited }
            watch.poll(comm)
            if let b = stallBound, waited > b * watch.patience { stalled(waited: waited, bound: b) }
            if waited < 1 { sched_yield() } else { usleep(200) }
        }
    }

    func waitAll(_ reqs: inout [MPI_Request?]) {
        for i in reqs.indices { wait(&reqs[i]) }
    }

    private func stalled(waited: Double, bound: Double) -> Never {
        let lagging = watch.lagging(staleAfter: max(1, bound / 2))
        let who: String
        if lagging.isEmpty {
            who = "rank \(rank) on \(hosts[rank]) waited in collective \(watch.collective) for ranks it does not hear from"
        } else {
            let names = lagging.map { "rank \($0) on \(hosts[$0])" }.joined(separator: ", ")
            who = "\(names) stopped answering: \(lagging.count == 1 ? "it has" : "they have") not reached collective \(watch.collective), where the \(rank == 0 ? "other ranks wait" : "job waits")"
        }
        let line = String(format: "%@: no progress for %.0f s (stall bound %.0f s)", who, waited, bound)
        if let h = onStall { h(line) }
        FileHandle.standardError.write(("Error: " + line + "\n").data(using: .utf8)!)
        abort(code: 1)
    }

    /// Counts collectives (every rank calls them in the same order).
    private func enter() { watch.collective += 1 }

    /// Receives every heartbeat still in flight (their counts first), so that no message is
    /// left unmatched at MPI_Finalize.
    private func drainHeartbeats() {
        guard size > 1, let w = watch else { return }
        var counts = [Int64](repeating: 0, count: size)
        counts[rank] = Int64(w.sent)
        var total = [Int64](repeating: 0, count: size)
        w.finishSends()
        MPI_Allreduce(&counts, &total, Int32(size), svi_mpi_int64(), svi_mpi_sum(), comm)
        w.drain(comm, expected: total)
    }

    /// Ends the whole job at once from any rank (after an error seen by this rank alone).
    public func abort(code: Int32) -> Never {
        MPI_Abort(comm, code)
        exit(code)
    }

    public func barrier() {
        enter()
        startAndWait { MPI_Ibarrier(comm, &$0) }
    }

    public func allreduceSum(_ values: [Double]) -> [Double] {
        let t0 = Date()
        let out = allreduce(values, svi_mpi_sum())
        reduceSeconds += Date().timeIntervalSince(t0)
        reductions += 1
        return out
    }

    public func allreduceMax(_ values: [Double]) -> [Double] { allreduce(values, svi_mpi_max()) }

    /// A non-blocking MPI call and its polling wait. The buffers the call names must stay
    /// valid until the wait returns (`collective`).
    private func startAndWait(_ start: (inout MPI_Request?) -> Void) {
        var req: MPI_Request? = svi_mpi_request_null()
        start(&req)
        wait(&req)
    }

    private func allreduce(_ values: [Double], _ op: MPI_Op) -> [Double] {
        enter()
        return collective(values, outputCount: values.count) { input, out in
            startAndWait { MPI_Iallreduce(input, out, Int32(values.count), svi_mpi_double(), op, comm, &$0) }
        }
    }

    /// `values` copied into a buffer of their own, and `outputCount` zeros as the result's,
    /// both alive for the whole of `body` (which starts an operation and waits for it). MPI
    /// reads and writes them in the wait, after the starting call returned, while a pointer
    /// Swift makes from `&array` or `&scalar` is valid only during that call (the optimiser may
    /// free the array after its last use, or keep a scalar in a register and reuse its stack
    /// slot: a receive landing there later corrupts the stack).
    private func collective(_ values: [Double], outputCount: Int, _ body: (UnsafePointer<Double>, UnsafeMutablePointer<Double>) -> Void) -> [Double] {
        let input = UnsafeMutablePointer<Double>.allocate(capacity: max(values.count, 1))
        let out = UnsafeMutablePointer<Double>.allocate(capacity: max(outputCount, 1))
        defer { input.deallocate(); out.deallocate() }
        input.update(from: values, count: values.count)
        out.initialize(repeating: 0, count: max(outputCount, 1))
        body(input, out)
        return Array(UnsafeBufferPointer(start: out, count: outputCount))
    }

    /// Gathers every rank's per-frame partials (MPI_Allgatherv) and adds them in global frame
    /// order: the same bits at any rank count.
    public func sumInFrameOrder(_ localPartials: [Double], partition: FramePartition) -> Double {
        let t0 = Date()
        // Counts and displacements that outlive the request (`startAndWait`), like the data.
        let counts = UnsafeMutablePointer<Int32>.allocate(capacity: size)
        let displs = UnsafeMutablePointer<Int32>.allocate(capacity: size)
        defer { counts.deallocate(); displs.deallocate() }
        for r in 0..<size {
            counts[r] = Int32(partition.range(of: r).count)
            displs[r] = Int32(partition.range(of: r).lowerBound)
        }
        let n = Int32(localPartials.count)
        enter()
        let all = collective(localPartials, outputCount: partition.totalFrames) { input, all in
            startAndWait { MPI_Iallgatherv(input, n, svi_mpi_double(), all, counts, displs, svi_mpi_double(), comm, &$0) }
        }
        reduceSeconds += Date().timeIntervalSince(t0)
        reductions += 1
        return all.reduce(0, +)
    }

    public func broadcast(_ value: UInt64) -> UInt64 {
        let v = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        defer { v.deallocate() }
        v.initialize(to: value)
        enter()
        startAndWait { MPI_Ibcast(v, 1, svi_mpi_uint64(), 0, comm, &$0) }
        return v.pointee
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
        for (o, n) in MPICommunicator.chunks(bytes) {
            var req: MPI_Request? = svi_mpi_request_null()
            MPI_Isend(p + o, n, svi_mpi_byte(), Int32(r), tag, comm, &req)
            wait(&req)
        }
    }

    func receive(_ p: UnsafeMutableRawPointer, bytes: Int, from r: Int, tag: Int32) {
        for (o, n) in MPICommunicator.chunks(bytes) {
            var req: MPI_Request? = svi_mpi_request_null()
            MPI_Irecv(p + o, n, svi_mpi_byte(), Int32(r), tag, comm, &req)
            wait(&req)
        }
    }

    /// A blocking broadcast of `count` bytes at `p`, through the polling wait.
    private func bcast(_ p: UnsafeMutableRawPointer, _ count: Int32, _ type: MPI_Datatype) {
        var req: MPI_Request? = svi_mpi_request_null()
        MPI_Ibcast(p, count, type, 0, comm, &req)
        wait(&req)
    }

    /// Rank 0's bytes on every rank (length first, then the bytes).
    public func broadcast(bytes: [UInt8]) -> [UInt8] {
        enter()
        var n = UInt64(bytes.count)
        bcast(&n, 1, svi_mpi_uint64())
        var buf = rank == 0 ? bytes : [UInt8](repeating: 0, count: Int(n))
        buf.withUnsafeMutableBytes { b in
            for (o, c) in MPICommunicator.chunks(Int(n)) { bcast(b.baseAddress! + o, c, svi_mpi_byte()) }
        }
        return buf
    }

    /// Halo exchange: every rank sends the frames it owns that others need, in one message per
    /// rank pair (non-blocking sends and receives, then wait for all).
    public func fetchFrames<S>(of local: DenseTensor<S>, partition: FramePartition, needed: (Int) -> [Int]) -> FrameTable<S> {
        let t0 = Date()
        enter()
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
        // The send buffers must live until their sends complete (`_ = sends` after the wait
        // would not keep them: the optimiser may free an array after its last real use).
        withExtendedLifetime(sends) { waitAll(&requests) }
        for (buf, frames) in receives {
            table.keep(buf)
            for (i, f) in frames.enumerated() { table.set(f, UnsafePointer(buf.frame(i))) }
        }
        haloSeconds += Date().timeIntervalSince(t0)
        return table
    }

    /// Rank 0 sends each rank its block of `whole` (rank 0's argument; ignored elsewhere);
    /// every rank returns its own block, shaped [frames][frameShape...].
    public func scatter(_ whole: Tensor?, partition: FramePartition, frameShape: [Int]) -> Tensor {
        enter()
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
        enter()
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
        enter()
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
        let n = Int32(values.count)
        enter()
        return collective(values, outputCount: rank == 0 ? values.count * size : 0) { input, all in
            startAndWait { MPI_Igather(input, n, svi_mpi_double(), all, n, svi_mpi_double(), 0, comm, &$0) }
        }
    }
}

/// Heartbeats for stall detection: while a rank waits in a collective it tells its partner
/// (rank 0 for everyone, rank 1 for rank 0) the number of the collective it has reached. When
/// a wait outlasts the bound, the partner's latest numbers say who never arrived: a frozen rank
/// (SIGSTOP, a hung node) sends nothing, while every rank waiting for it has said it is there.
final class StallWatch {
    let rank: Int, size: Int
    /// Collectives this rank has entered.
    var collective = 0
    /// Heartbeats this rank sent.
    private(set) var sent = 0
    /// Ranks that send heartbeats to this one, and the last collective number from each and
    /// when it came.
    private let senders: [Int]
    private var last: [Int: Int] = [:]
    private var heard: [Int: UInt64] = [:]
    private var received: [Int: Int64] = [:]
    private var recvRequests: [MPI_Request?]
    private let recvBuffers: UnsafeMutablePointer<Int64>
    /// A ring of send buffers: a heartbeat's buffer must outlive its (eager, quickly done) send.
    private static let ring = 8
    private var sendRequests: [MPI_Request?]
    private let sendBuffers: UnsafeMutablePointer<Int64>
    private let partner: Int?
    static let tag: Int32 = 99

    init(rank: Int, size: Int) {
        self.rank = rank; self.size = size
        senders = size < 2 ? [] : rank == 0 ? Array(1..<size) : rank == 1 ? [0] : []
        partner = size < 2 ? nil : rank == 0 ? 1 : 0
        recvRequests = Array(repeating: svi_mpi_request_null(), count: senders.count)
        recvBuffers = .allocate(capacity: max(senders.count, 1))
        sendRequests = Array(repeating: svi_mpi_request_null(), count: StallWatch.ring)
        sendBuffers = .allocate(capacity: StallWatch.ring)
        for s in senders { last[s] = -1; received[s] = 0 }
    }

    /// Rank 0 waits longest before acting (it can name any rank), then rank 1 (it can name
    /// rank 0), then the rest: the job ends with one line, from the rank that knows most.
    var patience: Double { rank == 0 ? 1 : rank == 1 ? 1.5 : 2 }

    private var posted = false
    private func post(_ comm: MPI_Comm, _ i: Int) {
        MPI_Irecv(recvBuffers + i, 1, svi_mpi_int64(), Int32(senders[i]), StallWatch.tag, comm, &recvRequests[i])
    }

    /// Tells the partner this rank is waiting in collective `collective` (skipped if the ring
    /// is full, which an eager 8-byte send never leaves it).
    func send(_ comm: MPI_Comm) {
        guard let p = partner else { return }
        let slot = sent % StallWatch.ring
        var done: Int32 = 1
        MPI_Test(&sendRequests[slot], &done, svi_mpi_status_ignore())
        guard done != 0 else { return }
        sendBuffers[slot] = Int64(collective)
        MPI_Isend(sendBuffers + slot, 1, svi_mpi_int64(), Int32(p), StallWatch.tag, comm, &sendRequests[slot])
        sent += 1
    }

    /// Takes in the heartbeats that arrived.
    func poll(_ comm: MPI_Comm) {
        if !posted { for i in senders.indices { post(comm, i) }; posted = true }
        for (i, s) in senders.enumerated() {
            var done: Int32 = 0
            while true {
                MPI_Test(&recvRequests[i], &done, svi_mpi_status_ignore())
                guard done != 0 else { break }
                last[s] = Int(recvBuffers[i])
                heard[s] = DispatchTime.now().uptimeNanoseconds
                received[s, default: 0] += 1
                post(comm, i)
            }
        }
    }

    /// The ranks this one hears from that have not reached the current collective, or that
    /// said so but have been silent for `staleAfter` seconds while waiting ranks repeat it
    /// every 0.25 s (frozen inside the wait).
    func lagging(staleAfter: Double) -> [Int] {
        let now = DispatchTime.now().uptimeNanoseconds
        return senders.filter { s in
            guard let c = last[s], c >= collective, let t = heard[s] else { return true }
            return Double(now - t) / 1e9 > staleAfter
        }
    }

    func finishSends() {
        for i in sendRequests.indices { MPI_Wait(&sendRequests[i], svi_mpi_status_ignore()) }
    }

    /// Receives until every sender's count is met, then withdraws the last posted receive.
    func drain(_ comm: MPI_Comm, expected: [Int64]) {
        if !posted { for i in senders.indices { post(comm, i) }; posted = true }
        for (i, s) in senders.enumerated() {
            while received[s, default: 0] < expected[s] {
                MPI_Wait(&recvRequests[i], svi_mpi_status_ignore())
                received[s, default: 0] += 1
                post(comm, i)
            }
            MPI_Cancel(&recvRequests[i])
            MPI_Wait(&recvRequests[i], svi_mpi_status_ignore())
        }
    }
}

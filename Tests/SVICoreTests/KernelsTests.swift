import Testing
@testable import SVICore

/// Float64 reductions are exact enough and give the same bits at any thread count.
@Suite struct KernelsTests {
    @Test func dotIsDeterministicAcrossThreadCounts() {
        let n = 1_000_003
        let x = Tensor(shape: [n]), y = Tensor(shape: [n])
        RandomStream(seed: 3, purpose: .initial).normals(offset: 0, count: n, into: x.data)
        RandomStream(seed: 4, purpose: .initial).normals(offset: 0, count: n, into: y.data)
        let a = Parallel.withThreads(1) { Kernels.dot(x.data, y.data, n) }
        let b = Parallel.withThreads(2) { Kernels.dot(x.data, y.data, n) }
        #expect(a == b)
        var ref = 0.0
        for i in 0..<n { ref += Double(x[i]) * Double(y[i]) }
        #expect(abs(a - ref) < 1e-9 * Double(n))
    }

    /// A test's thread count is its own: the process's (what `--threads` set) is untouched.
    @Test func aTasksThreadCountLeavesTheProcesssAlone() {
        let process = Parallel.threads
        Parallel.withThreads(process + 3) {
            #expect(Parallel.threads == process + 3)
            Parallel.withThreads(1) { #expect(Parallel.threads == 1) }
        }
        #expect(Parallel.threads == process)
    }

    @Test func elementwiseKernels() {
        let x = Tensor(shape: [100_000], values: (0..<100_000).map { Float($0 % 17) })
        let y = Tensor(shape: [100_000], values: (0..<100_000).map { Float($0 % 5) })
        Kernels.axpy(y.data, 2, x.data, y.count)
        #expect(y[16] == 2 * 16 + 1)
        Kernels.affine(y.data, 0.5, -1, y.count)
        #expect(y[16] == 15.5)
        Kernels.clip(y.data, 0, 1, y.count)
        #expect(y[16] == 1 && y[0] == 0)
    }

    /// CG's fused update (issue 31) gives the bits of the three passes it replaces — axpy,
    /// axpy, per-frame dots — for frames of one reduction block and of several, on 1 and 2
    /// threads.
    @Test(arguments: [(5, 300), (3, 20_000)])
    func fusedCGUpdateEqualsItsThreePasses(_ c: (frames: Int, frameSize: Int)) {
        let n = c.frames * c.frameSize
        func vec(_ seed: UInt64) -> Tensor64 {
            let t = Tensor(shape: [n])
            RandomStream(seed: seed, purpose: .initial).normals(offset: 0, count: n, into: t.data)
            return Tensor64(converting: t)
        }
        let p = vec(1), q = vec(2), alpha = 0.37
        for threads in [1, 2] { Parallel.withThreads(threads) {
            #expect(Parallel.threads == threads)
            let u1 = vec(3), r1 = vec(4), u2 = vec(3), r2 = vec(4)
            Kernels.axpy(u1.data, alpha, p.data, n)
            Kernels.axpy(r1.data, -alpha, q.data, n)
            let dots = Kernels.frameDots(r1.data, r1.data, frames: c.frames, frameSize: c.frameSize)
            let fused = Kernels.cgUpdate(u: u2.data, p: p.data, r: r2.data, q: q.data, alpha: alpha, frames: c.frames, frameSize: c.frameSize)
            #expect(fused == dots)
            #expect((0..<n).allSatisfy { u1[$0] == u2[$0] && r1[$0] == r2[$0] })
        } }
    }

    /// CG's fused start (r ← r − q, p ← r, per-frame ‖r‖²) gives the bits of lincomb, copy and
    /// per-frame dots; `serialDot` those of `dot`, in float32 and float64.
    @Test(arguments: [(5, 300), (3, 20_000)])
    func fusedCGStartEqualsItsThreePasses(_ c: (frames: Int, frameSize: Int)) {
        let n = c.frames * c.frameSize
        let q = Tensor(shape: [n]), r0 = Tensor(shape: [n])
        RandomStream(seed: 5, purpose: .initial).normals(offset: 0, count: n, into: q.data)
        RandomStream(seed: 6, purpose: .initial).normals(offset: 0, count: n, into: r0.data)
        for threads in [1, 2] { Parallel.withThreads(threads) {
            let r1 = r0.copy(), p1 = Tensor(shape: [n])
            Kernels.lincomb(r1.data, 1, r1.data, -1, q.data, n)
            p1.copy(from: r1)
            let dots = Kernels.frameDots(r1.data, r1.data, frames: c.frames, frameSize: c.frameSize)
            let r2 = r0.copy(), p2 = Tensor(shape: [n])
            let fused = Kernels.cgStart(r: r2.data, q: q.data, p: p2.data, frames: c.frames, frameSize: c.frameSize)
            #expect(fused == dots)
            #expect(r1.array == r2.array && p1.array == p2.array)
            #expect(Kernels.serialDot(q.data, r0.data, n) == Kernels.dot(q.data, r0.data, n))
            let q64 = Tensor64(converting: q), r64 = Tensor64(converting: r0)
            #expect(Kernels.serialDot(q64.data, r64.data, n) == Kernels.dot(q64.data, r64.data, n))
        } }
    }
}

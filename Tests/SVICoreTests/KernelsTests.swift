import Testing
@testable import SVICore

/// Float64 reductions are exact enough and give the same bits at any thread count.
@Suite struct KernelsTests {
    @Test func dotIsDeterministicAcrossThreadCounts() {
        let n = 1_000_003
        let x = Tensor(shape: [n]), y = Tensor(shape: [n])
        RandomStream(seed: 3, purpose: .initial).normals(offset: 0, count: n, into: x.data)
        RandomStream(seed: 4, purpose: .initial).normals(offset: 0, count: n, into: y.data)
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        Parallel.threads = 1
        let a = Kernels.dot(x.data, y.data, n)
        Parallel.threads = 2
        let b = Kernels.dot(x.data, y.data, n)
        #expect(a == b)
        var ref = 0.0
        for i in 0..<n { ref += Double(x[i]) * Double(y[i]) }
        #expect(abs(a - ref) < 1e-9 * Double(n))
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
}

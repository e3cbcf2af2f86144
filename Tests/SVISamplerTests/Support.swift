import Foundation
import SVICore
import SVICluster
import SVIOperators

enum Fixtures {
    static var root: String {
        if let e = ProcessInfo.processInfo.environment["SVI_FIXTURES"] { return e }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return repo.deletingLastPathComponent().appendingPathComponent("shared/fixtures").path
    }
    static func path(_ p: String) -> String { root + "/" + p }
}

func randomTensor(_ shape: [Int], seed: UInt64) -> Tensor {
    let t = Tensor(shape: shape)
    RandomStream(seed: seed, purpose: .initial).normals(offset: 0, count: t.count, into: t.data)
    return t
}

func maxRelativeError<A, B>(_ a: DenseTensor<A>, _ b: DenseTensor<B>) -> Double {
    func g<S: BinaryFloatingPoint>(_ t: DenseTensor<S>, _ i: Int) -> Double { Double(t[i]) }
    var num = 0.0, den = 0.0
    for i in 0..<a.count { num = max(num, abs(g(a, i) - g(b, i))); den = max(den, abs(g(b, i))) }
    return num / max(den, 1e-30)
}

/// ⟨A x, y⟩ vs ⟨x, Aᵀ y⟩ on random tensors; returns the relative gap.
func adjointGap(_ op: DegradationOperator, frames: Int, seed: UInt64) -> Double {
    let d = Distribution.local(totalFrames: frames)
    let x = Tensor64(converting: randomTensor([frames, op.inputShape.channels, op.inputShape.height, op.inputShape.width], seed: seed))
    let y = Tensor64(converting: randomTensor([frames, op.outputShape.channels, op.outputShape.height, op.outputShape.width], seed: seed + 1))
    let ax: Tensor64 = op.makeOutput(frames: frames), aty: Tensor64 = op.makeInput(frames: frames)
    op.apply(x, into: ax, d)
    op.adjoint(y, into: aty, d)
    let lhs = d.dot(ax, y), rhs = d.dot(x, aty)
    return abs(lhs - rhs) / max(abs(lhs), abs(rhs), 1e-30)
}

import Foundation
import SVICore
import SVIFormats
import SVIContracts
import SVIOperators
@_exported import SVITestSupport

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

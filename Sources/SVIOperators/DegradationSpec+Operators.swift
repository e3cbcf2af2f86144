import SVICore
import SVIFormats

/// The operators a parsed spec describes (the spec itself is plain data, in SVIFormats).
extension DegradationSpec {
    public func temporalKernel() throws -> TemporalKernel? {
        switch temporal {
        case .uniform(let k)?: return try .uniform(k, boundary: boundary)
        case .gaussian(let s)?: return try .gaussian(s, boundary: boundary)
        case nil: return nil
        }
    }

    /// The spatial operators in application order.
    public func spatialOperators(maskSeed: UInt64) -> [FrameOperator] {
        var ops: [FrameOperator] = []
        if let s = blurSigma { ops.append(GaussianBlur(sigma: s)) }
        if let f = srFactor { ops.append(BlockAverage(factor: f)) }
        if let r = inpaintKeep { ops.append(InpaintMask(keepFraction: r, seed: maskSeed)) }
        return ops
    }
}

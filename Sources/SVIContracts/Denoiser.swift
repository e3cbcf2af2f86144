/// Contracts below the sampler (issue 15): the sampler, the network and the tiles meet here,
/// so SVINetwork need not depend on the sampler.
/// ε_θ (DESIGN §5): the image model the sampler runs on every frame. Frames arrive in
/// [-1, 1], `count` consecutive `[C][H][W]` frames, all at integer timestep `timestep`;
/// the predicted noise for the first C channels is written to `eps` (a model that also
/// predicts σ drops those channels itself).
public protocol Denoiser: AnyObject {
    /// A short description for reports ("adm-tiny (828,358 parameters)").
    var name: String { get }
    /// Frames per call the denoiser prefers (the sampler batches local frames by it).
    var preferredBatch: Int { get }
    func predictNoise(_ x: UnsafePointer<Float>, count: Int, channels: Int, height: Int, width: Int,
                      timestep: Int, into eps: UnsafeMutablePointer<Float>) throws
}

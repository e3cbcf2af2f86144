import SVICore
import SVIOperators
import SVISampler
func makeDenoiser(model: String?, preset: String?, config: String?, prior: String?, frame: FrameShape) throws -> Denoiser {
    return GaussianPriorDenoiser()
}

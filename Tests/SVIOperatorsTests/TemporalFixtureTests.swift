import Testing
import SVICore
import SVIFormats
import SVIContracts
@testable import SVIOperators

/// The reference's uniform width-13 circular blur and its 5-step CG (`fixtures/temporal-cg`).
@Suite struct TemporalFixtureTests {
    @Test func measurementMatchesReference() throws {
        let video = try NPY.readFloat32(Fixtures.path("temporal-cg/video.npy"))
        let expected = try NPY.readFloat32(Fixtures.path("temporal-cg/measurement.npy"))
        let op = try DegradationOperator(spec: .parse("temporal=uniform:13"), frame: FrameShape(channels: 3, height: 8, width: 8), totalFrames: 16)
        let d = Distribution.local(totalFrames: 16)
        let y = op.measure(video, d, noiseSeed: 0)
        #expect(maxRelativeError(y, expected) < 1e-5)
    }
}

import Testing
import SVICore
import SVIFormats
@testable import SVIOperators

/// The degradation spec grammar: the documented forms parse, typos are one clear error.
@Suite struct SpecTests {
    @Test func documentedForms() throws {
        let a = try DegradationSpec.parse("temporal=uniform:13")
        #expect(a.temporal == .uniform(13) && !a.hasSpatialPart && a.boundary == .circular)
        let b = try DegradationSpec.parse("temporal=gaussian:1.0,sr=4")
        #expect(b.temporal == .gaussian(1.0) && b.srFactor == 4 && b.hasSpatialPart)
        let c = try DegradationSpec.parse("temporal=uniform:7,blur=2.0")
        #expect(c.blurSigma == 2.0)
        let d = try DegradationSpec.parse("temporal=uniform:7,inpaint=0.5,noise=0.01")
        #expect(d.inpaintKeep == 0.5 && d.noiseSigma == 0.01)
        let e = try DegradationSpec.parse("temporal=uniform:7,boundary=replicate")
        #expect(e.boundary == .replicate)
        #expect(try DegradationSpec.parse(e.canonical) == e)
        #expect(try DegradationSpec.parse(d.canonical) == d)
    }

    @Test(arguments: [
        ("temporal=uniform:8", "odd"), ("temporl=uniform:7", "unknown key 'temporl'"), ("temporal=box:3", "unknown temporal kernel"),
        ("sr=1", "sr factor"), ("inpaint=1.5", "inpaint"), ("noise=-1", "noise"), ("temporal=uniform:7,,sr=2", "key=value"),
        ("", "empty"), ("blur=abc", "not a number"), ("boundary=wrap", "circular or replicate"), ("sr=2,sr=4", "twice"),
    ])
    func typosAreClearErrors(spec: String, says: String) {
        let e = #expect(throws: SVIError.self) { try DegradationSpec.parse(spec) }
        #expect(e?.message.contains(says) == true, "\(e?.message ?? "no error")")
        #expect(e?.message.contains("\n") == false)
    }
}

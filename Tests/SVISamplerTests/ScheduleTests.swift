import Testing
import Foundation
import SVIFormats
@testable import SVISampler

/// The step list equals the reference's (`fixtures/schedule/schedule.json`) to 1e-12.
@Suite struct ScheduleTests {
    struct Entry: Decodable { let nfe: Int; let t: Int; let t_next: Int; let alpha_bar_t: Double; let alpha_bar_next: Double }
    struct File: Decodable { let steps: [Entry] }

    @Test func matchesReference() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("schedule/schedule.json")))
        let ref = try JSONDecoder().decode(File.self, from: data).steps
        let schedule = Schedule()
        for nfe in Set(ref.map(\.nfe)) {
            let expected = ref.filter { $0.nfe == nfe }
            let got = schedule.steps(nfe: nfe)
            #expect(got.count == expected.count)
            for (g, e) in zip(got, expected) {
                #expect(g.t == e.t && g.tNext == e.t_next)
                #expect(abs(g.alphaBar - e.alpha_bar_t) <= 1e-12)
                #expect(abs(g.alphaBarNext - e.alpha_bar_next) <= 1e-12)
            }
        }
    }

    /// --paper with an N that does not divide 1000 runs the paper's loop: all of
    /// range(0, 1000, 1000 // N) from the top (16 steps from t = 990 for N = 15); for N that
    /// divides 1000 it is the fixture's schedule.
    @Test func paperScheduleRunsTheWholeRange() {
        let schedule = Schedule()
        let p15 = schedule.paperSteps(nfe: 15)
        #expect(p15.count == 16)
        #expect(p15.first!.t == 990 && p15.first!.tNext == 924)
        #expect(p15.last!.t == 0 && p15.last!.tNext == -1)
        #expect(zip(p15, p15.dropFirst()).allSatisfy { $0.tNext == $1.t })
        for nfe in [4, 10, 20, 100] { #expect(schedule.paperSteps(nfe: nfe) == schedule.steps(nfe: nfe)) }
        var settings = SamplerSettings.paper(for: DegradationSpec(), seed: 0)
        settings.nfe = 15
        #expect(settings.visitedSteps.count == 16)
        #expect(SamplerSettings.defaults(for: DegradationSpec(), seed: 0).paperSchedule == false)
    }
}

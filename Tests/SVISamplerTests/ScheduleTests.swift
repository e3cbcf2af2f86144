import Testing
import Foundation
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
}

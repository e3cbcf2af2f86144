import Foundation
import Testing
import SVIContracts
import SVICore

/// `agree` hands rank 0's decision to every rank, and rank 0 fails with its own error (type and
/// kind kept); `agreeNoneFailed` passes only when no rank failed. The MPI side (other ranks
/// stopping silently with rank 0's status) is EndToEndTests' MPITests.badInputStopsEveryRank.
@Suite struct AgreementTests {
    struct Plan: Codable, Equatable { var frames: Int; var spec: String }

    @Test func rankZerosDecisionIsTheAnswer() throws {
        let comm = LocalCommunicator()
        #expect(try comm.agree { Plan(frames: 12, spec: "temporal=uniform:3") } == Plan(frames: 12, spec: "temporal=uniform:3"))
    }

    @Test func rankZeroFailsWithItsOwnError() {
        let comm = LocalCommunicator()
        struct NotSVI: Error {}
        #expect(throws: SVIError.file("y.npy", "no such file")) { try comm.agree { () throws -> Plan in throw SVIError.file("y.npy", "no such file") } }
        #expect(throws: NotSVI.self) { try comm.agree { () throws -> Int in throw NotSVI() } }
    }

    @Test func noneFailedPassesOnlyWithoutAnError() throws {
        let comm = LocalCommunicator()
        try comm.agreeNoneFailed(nil)
        #expect(throws: SVIError.numeric("diverged")) { try comm.agreeNoneFailed(SVIError.numeric("diverged")) }
    }
}

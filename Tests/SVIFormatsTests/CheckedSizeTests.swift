import Testing
import Foundation
@testable import SVIFormats
import SVICore

/// The checked arithmetic every loader uses before it allocates or reads.
@Suite struct CheckedSizeTests {
    @Test func elementCountRefusesOverflowNegativesAndAbsurdRanks() {
        #expect(FormatLimits.elementCount([2, 3, 4]) == 24)
        #expect(FormatLimits.elementCount([]) == 1)
        #expect(FormatLimits.elementCount([0, 1 << 40]) == 0)
        #expect(FormatLimits.elementCount([1 << 62, 4]) == nil)            // wraps to 0 unchecked
        #expect(FormatLimits.elementCount([4, 1, 1 << 30, 1 << 30]) == nil) // issue 17's .npy
        #expect(FormatLimits.elementCount([-1, 3]) == nil)
        #expect(FormatLimits.elementCount([1 << 37]) == nil)                // past maxElements
        #expect(FormatLimits.elementCount([Int](repeating: 1, count: 17)) == nil)
    }

    @Test func rangeEndRefusesOverflowAndRangesPastTheLimit() {
        #expect(FormatLimits.end(offset: 8, count: 8, within: 16) == 16)
        #expect(FormatLimits.end(offset: 8, count: 9, within: 16) == nil)
        #expect(FormatLimits.end(offset: Int.max - 2, count: 8, within: Int.max) == nil)
        #expect(FormatLimits.end(offset: -1, count: 1, within: 16) == nil)
        #expect(FormatLimits.end(offset: 0, count: -1, within: 16) == nil)
    }

    @Test func npyHeaderParserReadsWhatNumPyWritesAndNothingElse() throws {
        func parse(_ h: String) throws -> NPY.Header {
            var p = HeaderParser(bytes: Array(h.utf8), path: "x.npy")
            return try p.parse()
        }
        #expect(try parse("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }").shape == [2, 3])
        #expect(try parse("{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }").shape == [5])
        #expect(try parse("{\"descr\": \"<f4\", \"fortran_order\": True, \"shape\": ()}").fortranOrder)
        #expect(try parse("{'descr': '<f4', 'fortran_order': False, 'shape': (3L, 2L), }").shape == [3, 2])
        for bad in ["{'descr': '<f4', 'fortran_order': False}", "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,)}",
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}",
                    "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", "{'descr': '<f4', 'fortran_order': False, 'shape': (1234567890123456789,)}",
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2", "", "{"] {
            #expect(throws: SVIError.self, "\(bad)") { try parse(bad) }
        }
    }
}

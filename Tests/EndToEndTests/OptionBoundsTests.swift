import Testing
import Foundation
import ArgumentParser
@testable import svi

/// Issue 30: every numeric option of every subcommand — found by walking the commands the
/// binary has, not by a list someone keeps — refuses NaN, ±∞, 0, a negative number, 2⁶³−1 and
/// a non-number with one line naming it and exit 64, unless the value is inside the range the
/// option documents (then it is a valid value and is not tried here).
@Suite struct OptionBoundsTests {
    /// Every leaf subcommand with its path (`["model", "run"]`).
    static func leaves(_ c: ParsableCommand.Type = SVI.self, path: [String] = []) -> [([String], ParsableCommand.Type)] {
        let subs = c.configuration.subcommands
        if subs.isEmpty { return [(path, c)] }
        return subs.flatMap { s in
            leaves(s, path: path + [s.configuration.commandName ?? String(describing: s).lowercased()])
        }
    }

    /// Arguments that make each leaf's command line complete (the files need not exist: option
    /// ranges are refused before any file is opened). A new subcommand fails the test until it
    /// has a row here.
    static let base: [String: [String]] = [
        "degrade": ["in.npy", "-o", "out.npy", "--degradation", "temporal=uniform:3"],
        "restore": ["in.npy", "-o", "out.npy"],
        "eval": ["--reference", "a.npy", "--restored", "b.npy"],
        "noise": ["in.npy"],
        "compare": ["a.npy", "-o", "out.png"],
        "model info": [],
        "model run": ["--input", "x.npy", "--timesteps", "t.npy", "-o", "out.npy"],
        "bench unet": [],
        "bench comm": [],
        "synth": ["-o", "out.npy"],
    ]

    static let hostile = ["nan", "inf", "-inf", "0", "-1", "9223372036854775807", "abc"]

    @Test func everyNumericOptionOfEverySubcommandHasADeclaredRange() {
        var total = 0
        for (path, type) in Self.leaves() {
            let name = path.joined(separator: " ")
            #expect(Self.base[name] != nil, "subcommand '\(name)' has no base command line in OptionBoundsTests.base")
            var unknown: [String] = []
            let options = OptionBounds.numericOptions(of: type.init(), readValues: false, unknown: &unknown)
            #expect(unknown.isEmpty, "\(name): numeric options of a type OptionBounds does not read: \(unknown)")
            for o in options {
                #expect(OptionBounds.bound(for: o.flag, command: path.last!) != nil, "\(name) \(o.flag) has no range in OptionBounds.table")
            }
            total += options.count
        }
        // restore alone has more than 20: a walk that finds almost nothing is a broken walk.
        #expect(total > 40, "only \(total) numeric options found")
    }

    @Test func hostileValuesOfEveryNumericOptionGiveOneLineAndExit64() throws {
        let d = CLI.tempDir()
        let before = Hostile.snapshot(d)
        var tried = 0
        for (path, type) in Self.leaves() {
            let name = path.joined(separator: " ")
            guard let base = Self.base[name] else { continue }
            var unknown: [String] = []
            for o in OptionBounds.numericOptions(of: type.init(), readValues: false, unknown: &unknown) {
                let bound = OptionBounds.bound(for: o.flag, command: path.last!)
                for v in Self.hostile {
                    // A value inside the documented range is valid (--eta 0, --seed 0): not a refusal case.
                    if let x = Double(v), let b = bound, b.contains(x) { continue }
                    let args = path + base.map { $0.hasSuffix(".npy") || $0.hasSuffix(".png") ? d + "/" + $0 : $0 } + ["\(o.flag)=\(v)"]
                    let r = try CLI.run(args)
                    tried += 1
                    #expect(r.status == 64, "\(name) \(o.flag)=\(v): exit \(r.status): \(r.stderr)")
                    let lines = r.stderr.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
                    #expect(lines.count == 1, "\(name) \(o.flag)=\(v): \(r.stderr)")
                    #expect(r.stderr.contains(o.flag), "\(name) \(o.flag)=\(v) does not name the option: \(r.stderr)")
                    #expect(!r.stderr.contains("Unknown option"), "\(name): \(o.flag) is not what the option is called: \(r.stderr)")
                }
            }
        }
        #expect(tried > 200, "only \(tried) refusals tried")
        #expect(Hostile.snapshot(d) == before, "files appeared in \(d)")
    }
}

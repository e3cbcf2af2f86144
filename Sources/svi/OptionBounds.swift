import ArgumentParser
import Foundation
import SVIFormats

/// The values every numeric option of every command accepts, in one table (issue 30).
///
/// `SVI.main` checks each parsed command against it before `run()`: the command's numeric
/// options — option groups included — are found by reflection, so NaN, ±∞, an overflowing
/// count or a negative size is one line and exit 64 whatever option it was given to. An
/// option added without a row here is refused at its first use with a message that says so,
/// and `OptionBoundsTests` (which walks the same reflection over every subcommand) fails
/// before that can ship.
enum OptionBounds {
    /// A closed or half-open interval of accepted values, plus optionally 0 as a special value
    /// outside it (`--tile 0` means whole frames).
    struct Bound: Sendable {
        var lower: Double
        var upper: Double
        var lowerOpen = false
        var alsoZero = false

        func contains(_ v: Double) -> Bool {
            guard v.isFinite else { return false }
            if alsoZero && v == 0 { return true }
            return (lowerOpen ? v > lower : v >= lower) && v <= upper
        }

        var text: String {
            func f(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : String(x) }
            if lower == 0 && upper == Double(UInt64.max) { return "an integer ≥ 0" }
            let range = lowerOpen ? "a number > \(f(lower)) and ≤ \(f(upper))" : "between \(f(lower)) and \(f(upper))"
            return alsoZero ? "0 or \(range)" : range
        }

        static func closed(_ r: ClosedRange<Double>) -> Bound { Bound(lower: r.lowerBound, upper: r.upperBound) }
        static func above(_ lower: Double, atMost upper: Double) -> Bound { Bound(lower: lower, upper: upper, lowerOpen: true) }
        /// Seeds: every unsigned 64-bit value (the parser already refuses the rest).
        static let anySeed = Bound(lower: 0, upper: Double(UInt64.max))
    }

    /// Keyed by flag, or by "COMMAND --flag" where one command's range differs.
    static let table: [String: Bound] = [
        // restore: the sampler
        "--nfe": .closed(1...1000),
        "--cg-steps": .closed(0...10_000),
        "--cg-iterations": .closed(0...1_000_000),
        "--tv-inner-cg": .closed(0...10_000),
        "--eta": .closed(0...1),
        "--gamma": .above(0, atMost: 1e12),
        "--pnp-weight": .above(0, atMost: 1e6),
        "--noise-sigma": .closed(0...1),
        "--start": Bound(lower: 0, upper: 0.999, lowerOpen: true),
        "--final-cg-steps": .closed(0...100_000),
        "--seed": .anySeed,
        "--mask-seed": .anySeed,
        "--batch": .closed(1...4096),
        "unet --batch": .closed(1...256),
        // restore: the warm start and ADMM-TV
        "--tv-lambda": .closed(0...1e6),
        "--tv-rho": .above(0, atMost: 1e6),
        "--tv-iterations": .closed(1...100_000),
        // tiles, segments, memory
        "--tile": Bound(lower: 8, upper: 8192, alsoZero: true),
        "--tile-overlap": .closed(0...4096),
        "--tile-batch": .closed(1...256),
        "--segment-frames": .closed(1...Double(FormatLimits.maxFrames)),
        "--overlap": .closed(0...100_000),
        // output
        "--crf": .closed(0...51),
        // checkpoints and schedulers
        "--checkpoint-every": .closed(1...1_000_000),
        "--stall-timeout": Bound(lower: 1, upper: 1e7, alsoZero: true),
        "--deadline": .closed(1...1e11),               // Unix seconds, up to the year 5138
        "--plan-ranks": .closed(1...1_000_000),
        "--calibrated": .above(0, atMost: 1e6),        // seconds per frame of one call
        "--ranks-per-node": .closed(1...4096),
        "--fail-on-rank": .closed(0...1_000_000),      // test hooks
        "--fail-at-step": .closed(1...1_000_000),
        // every computing command
        "--threads": .closed(1...4096),
        // bench
        "--repeats": .closed(1...1000),
        "comm --repeats": .closed(1...100_000),
        "--warmup": .closed(0...100),
        "--timestep": .closed(0...999),
        // synth
        "--speed": .closed(-1000...1000),
    ]

    static func bound(for flag: String, command: String) -> Bound? {
        table["\(command) \(flag)"] ?? table[flag]
    }

    /// One numeric option of a command: its flag, and its value when parsed and given.
    struct Found { var flag: String; var value: Double? }

    /// The flag ArgumentParser derives from a property (`.long`: camelCase → kebab-case).
    static func flag(forProperty label: String) -> String {
        var name = label.hasPrefix("_") ? String(label.dropFirst()) : label
        var out = ""
        for ch in name { if ch.isUppercase { out += "-" + ch.lowercased() } else { out.append(ch) } }
        name = out
        return "--" + name
    }

    /// The numeric options of a parsed command (or of a default instance: values are then not
    /// read), option groups included. `unknown` collects options of a numeric-looking type this
    /// walk does not read, so a test can insist there are none.
    static func numericOptions(of value: Any, readValues: Bool, unknown: inout [String]) -> [Found] {
        var out: [Found] = []
        for child in Mirror(reflecting: value).children {
            guard let label = child.label else { continue }
            if let group = child.value as? NestedArguments {
                out += numericOptions(of: readValues ? group.nestedValue : group.nestedDefault, readValues: readValues, unknown: &unknown)
                continue
            }
            let flag = flag(forProperty: label)
            func found(_ v: Double?) { out.append(Found(flag: flag, value: v)) }
            switch child.value {
            case let o as Option<Int>: found(readValues ? Double(o.wrappedValue) : nil)
            case let o as Option<Int?>: found(readValues ? o.wrappedValue.map(Double.init) : nil)
            case let o as Option<Double>: found(readValues ? o.wrappedValue : nil)
            case let o as Option<Double?>: found(readValues ? o.wrappedValue : nil)
            case let o as Option<UInt64>: found(readValues ? Double(o.wrappedValue) : nil)
            case let o as Option<UInt64?>: found(readValues ? o.wrappedValue.map(Double.init) : nil)
            default:
                let type = String(describing: Swift.type(of: child.value))
                if type.hasPrefix("Option<") && ["Int", "Double", "Float", "UInt"].contains(where: { type.contains($0) }) {
                    unknown.append("\(flag) (\(type))")
                }
            }
        }
        return out
    }

    /// Refuses the first numeric option whose value is outside its range (or has no range).
    static func check(_ command: ParsableCommand) throws {
        let name = type(of: command).configuration.commandName ?? ""
        var unknown: [String] = []
        for o in numericOptions(of: command, readValues: true, unknown: &unknown) {
            guard let v = o.value else { continue }
            guard let b = bound(for: o.flag, command: name) else {
                throw ValidationError("\(o.flag) has no declared range (a bug in svi: add it to OptionBounds.table)")
            }
            guard b.contains(v) else {
                let shown = v.isNaN ? "nan" : v.isInfinite ? (v > 0 ? "inf" : "-inf") : String(describing: v == v.rounded() && abs(v) < 1e18 ? String(Int64(v)) : String(v))
                throw ValidationError("\(o.flag) must be \(b.text), got \(shown)")
            }
        }
        if let u = unknown.first { throw ValidationError("\(u) is a numeric option svi cannot range-check (a bug in svi)") }
    }
}

/// What `OptionBounds` needs of an `@OptionGroup`: the group's parsed value, and a default
/// instance of its type (for listing options without parsing).
protocol NestedArguments {
    var nestedValue: Any { get }
    var nestedDefault: Any { get }
}

extension OptionGroup: NestedArguments {
    var nestedValue: Any { wrappedValue }
    var nestedDefault: Any { Value() }
}

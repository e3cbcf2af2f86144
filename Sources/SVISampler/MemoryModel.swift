import Foundation

/// What a rank holds per frame of its block, in float32 copies of one clean frame (issue 15;
/// the accounting is in ARCHITECTURE.md, "Memory per frame"). The same numbers plan segments
/// (`svi restore --memory-per-rank`) and the dry-run, so they cannot drift apart.
public enum MemoryModel {
    /// `ddsFromTV`: DDS warm-started from ADMM-TV, which runs beside the sampler's state.
    public enum Solver: String, Sendable { case dds, cg, admmTV = "admm-tv", ddsFromTV = "dds-from-admm-tv" }

    /// Float32 copies of a clean frame per frame of a rank's block. `measurementRatio` = values
    /// of a measured frame ÷ values of a clean frame (1/s² for ×s super-resolution);
    /// `spatial`: the spec has a spatial part (the measurement-size scratch between S and Tm:
    /// `DegradationOperator.apply`).
    ///
    /// DDS: x_t/ε 1 + u 2 + CG's r, p, M p 6 + the measurement m + the operator's measurement-
    /// size scratch 2m (also Aᵀy's float64 staging) + 2m with a spatial part = 9 + 3m (+2m).
    /// CG: Aᵀy→u 2 + r, p, M p 6 + the float32 result 1 + 3m (+2m). ADMM-TV adds z, w, Du and a
    /// temporary for each of the three directions (all float64; the right-hand side is formed in
    /// CG's r).
    /// DDS from an ADMM-TV warm start: while the (accelerated, float32 since issue 31) ADMM
    /// runs, the sampler's state is already allocated, and ADMM holds Aᵀy 1, u 1, z, w, Du, the
    /// temporary, the previous z and w 18 and its own CG's r, p, M p 3 (the right-hand side is
    /// formed in r), the float64 estimate it returns 2, and the operator's float32 scratch m (+m)
    /// = 25 + m (+m).
    public static func copiesPerFrame(_ solver: Solver, measurementRatio m: Double, spatial: Bool) -> Double {
        let op = 3 * m + (spatial ? 2 * m : 0)
        switch solver {
        case .dds, .cg: return 9 + op
        case .admmTV: return 9 + op + 2 + 24 + 2
        case .ddsFromTV: return 9 + op + 25 + m + (spatial ? m : 0)
        }
    }

    /// Bytes a rank holds for `frames` frames of its block (plus DDS's per-call ε batch and one
    /// frame of noise).
    public static func blockBytes(_ solver: Solver, frames: Int, frameValues: Int, measurementValues: Int,
                                  spatial: Bool, batch: Int) -> Double {
        let m = Double(measurementValues) / Double(max(frameValues, 1))
        var b = copiesPerFrame(solver, measurementRatio: m, spatial: spatial) * Double(frames) * Double(frameValues) * 4
        if solver == .dds || solver == .ddsFromTV { b += Double(min(batch, max(frames, 1)) + 1) * Double(frameValues) * 4 }
        return b
    }

    /// Rank 0's I/O buffers: the block it fills for another rank while scattering and the one
    /// it receives while gathering (with several ranks), the measured frames two segments
    /// share (kept, and being collected: 2 × overlap), the cross-fade sums (two buffers of the
    /// overlap, plus one frame), and one frame each of decoding and the reference.
    public static func rootIOBytes(ranks: Int, segmentFrames: Int, largestBlock: Int, overlap: Int,
                                   frameValues: Int, measurementValues: Int) -> Double {
        let blocks = ranks > 1 ? Double(largestBlock * (measurementValues + frameValues)) : 0
        let kept = Double(2 * overlap * measurementValues)
        let stitch = Double((2 * max(overlap, 1) + 1) * frameValues)
        return 4 * (blocks + kept + stitch + Double(2 * frameValues + measurementValues))
    }

    /// Memory this process may use: the cgroup's limit or the machine's available memory,
    /// whichever is smaller (bytes; nil when neither can be read).
    public static func availableBytes() -> Double? {
        var best: Double?
        if let s = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
           let line = s.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
           let kb = line.split(separator: " ").compactMap({ Double($0) }).first {
            best = kb * 1024
        }
        for path in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
            if let s = try? String(contentsOfFile: path, encoding: .utf8), let v = Double(s.trimmingCharacters(in: .whitespacesAndNewlines)), v < 1e18 {
                best = min(best ?? v, v)
            }
        }
        return best
    }

    /// Frames per rank that fit in `budget` bytes beside `fixed` bytes (weights, activations,
    /// margins): at least 1.
    public static func framesPerRank(budget: Double, fixed: Double, perFrame: Double) -> Int {
        guard perFrame > 0 else { return Int.max / 4 }
        return max(1, Int(((budget - fixed) / perFrame).rounded(.down)))
    }
}

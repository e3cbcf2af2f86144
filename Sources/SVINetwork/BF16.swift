import Foundation
import SVICore
import CKernels

/// The arithmetic of a network's convolutions.
/// `fp32`: float32 throughout (the default, the reference's). `bf16`: every convolution's GEMM
/// takes weights and activations rounded to bfloat16 and sums the products in float32
/// (`vdpbf16ps`, AVX-512 BF16), which doubles the multiply rate per instruction; GroupNorm,
/// attention, the Winograd transforms and everything outside the GEMMs stay float32.
public enum Precision: String, CaseIterable, Codable, Sendable {
    case fp32, bf16

    /// Whether this CPU can run `bf16` (AVX-512 BF16; `SVI_ISA=avx2` turns it off).
    public static var bf16Available: Bool { svi_bf16_available() == 1 }

    /// Refuses a precision this CPU cannot run, in one line.
    public func checkAvailable(cpu: String) throws {
        if self == .bf16 && !Precision.bf16Available {
            throw SVIError.option("--precision", "--precision bf16 needs a CPU with AVX-512 BF16 (vdpbf16ps) and this one (\(cpu)) has none\(ProcessInfo.processInfo.environment["SVI_ISA"] == "avx2" ? " or SVI_ISA=avx2 turned it off" : ""): use --precision fp32")
        }
    }
}

/// Settings every layer of one network reads at run time: set on the `UNet`, shared by its
/// layers — per network, not per process, so two networks in one process (or two tests run in
/// parallel) never change each other's kernels or block sizes, and so each other's bits.
final class NetworkOptions: @unchecked Sendable {
    var precision = Precision.fp32
    /// `--reference-kernels`: im2col + GEMM for every convolution instead of Winograd.
    var referenceKernels = false
    /// Bound on Winograd's V and M per block, in floats (4 MB each, in the last-level cache
    /// with room to spare; at 32 MB the embedded prior's pass was ~7 % slower). Tests lower it
    /// to cut frames into several blocks.
    var winogradBlockFloats = 1 << 20
    /// The fewest GEMM columns (tiles) a Winograd block may have when the bound above would
    /// allow fewer (wide layers: ADM-256 ran 1.2× slower with 48-column GEMMs).
    var winogradMinimumColumns = 512
    /// Elements of the attention matrix one thread computes at once (rows × L): 512 KB, within
    /// the L2 cache of every CPU svi runs on.
    var attentionBlockElements = 128 << 10
    /// Winograd's 36 products use svi_small_gemm (CKernels) up to this many input channels:
    /// at 32–64 channels OpenBLAS spent as long packing the transformed weights and zeroing the
    /// products as multiplying (BENCHMARKS.md, "small-K GEMM"). 0: always OpenBLAS.
    var smallGEMMChannels = 128
    /// Bound on one thread's V + M when the few-channel layers run fused (transforms and
    /// products on one block of tile rows per thread, `Winograd43.forwardFused`): within a
    /// core's L2 cache. 0: the three stages one after the other over larger blocks.
    var winogradFusedBytes = ProcessInfo.processInfo.environment["SVI_WINOGRAD_FUSED_BYTES"].flatMap { Int($0) } ?? (512 << 10)
}

/// A weight matrix A [m][k] rounded to bf16 and packed for `svi_bf16_gemm` (done once).
final class PackedBF16 {
    let m: Int, k: Int
    let data: UnsafeMutablePointer<UInt16>

    init(_ a: UnsafePointer<Float>, m: Int, k: Int, lda: Int) {
        self.m = m; self.k = k
        let count = svi_bf16_packed_a_count(m, k)
        data = .allocate(capacity: count)
        svi_bf16_pack_a(a, m, k, lda, data)
    }

    deinit { data.deallocate() }

    var bytes: Int { svi_bf16_packed_a_count(m, k) * 2 }
    /// k rounded up to even: a panel of 8 rows starts every 8·evenK values.
    var evenK: Int { (k + 1) / 2 * 2 }
}

/// C (+)= A·B with A packed bf16, on the calling thread.
func bf16gemmSerial(_ a: PackedBF16, n: Int, b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
    let r = svi_bf16_gemm(a.m, n, a.k, a.data, b, ldb, c, ldc, accumulate ? 1 : 0)
    // Callers check availability before choosing bf16 (`Precision.checkAvailable`); running out
    // of a few hundred KB of scratch is not recoverable here either.
    precondition(r == 1, r == 0 ? "bf16 GEMM on a CPU without AVX-512 BF16" : "bf16 GEMM: no memory for its scratch")
}

/// C (+)= A·B with A packed bf16, columns split over svi's threads in whole blocks of 32
/// (the kernel's width). Each element's sum runs over k in the same order whatever the split,
/// so results do not depend on the thread count or the batch.
func bf16gemm(_ a: PackedBF16, n: Int, b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
    let t = GEMMThreading.parts
    if t > 1 && n >= 64 * t && Double(a.m) * Double(n) * Double(a.k) >= 4e6 {
        let per = ((n + t - 1) / t + 31) / 32 * 32
        Parallel.forEach(t) { i in
            let j0 = i * per, nn = min(per, n - j0)
            if nn > 0 { bf16gemmSerial(a, n: nn, b: b + j0, ldb: ldb, c: c + j0, ldc: ldc, accumulate: accumulate) }
        }
    } else if t > 1 && a.m >= 16 * t && Double(a.m) * Double(n) * Double(a.k) >= 4e6 {
        // Few columns, many rows (deep layers at low resolution): whole panels of 8 rows.
        let per = ((a.m + t - 1) / t + 7) / 8 * 8
        Parallel.forEach(t) { i in
            let i0 = i * per, mm = min(per, a.m - i0)
            if mm > 0 {
                let r = svi_bf16_gemm(mm, n, a.k, a.data + i0 * a.evenK, b, ldb, c + i0 * ldc, ldc, accumulate ? 1 : 0)
                precondition(r == 1, "bf16 GEMM failed (\(r))")
            }
        }
    } else {
        bf16gemmSerial(a, n: n, b: b, ldb: ldb, c: c, ldc: ldc, accumulate: accumulate)
    }
}


/* bfloat16 GEMM with float32 accumulation (AVX-512 BF16: vdpbf16ps), for `--precision bf16`.
 *
 * C[m][n] (+)= A[m][k] · B[k][n], row-major, where A (the weights) was packed once by
 * svi_bf16_pack_a and B (activations, float32) is rounded to bf16 (round to nearest even) while
 * it is packed, 32 columns at a time. vdpbf16ps multiplies pairs of bf16 values along k and adds
 * both products to a float32 lane: lane j of a vector holds column j of B as the pair
 * (B[2p][j], B[2p+1][j]) and is multiplied by the pair (A[i][2p], A[i][2p+1]) broadcast.
 *
 * Every C element is one accumulator summed over p = 0, 1, … in order, whatever the column
 * block or row panel it falls in: a result does not depend on n, on how a caller splits the
 * columns, or on the batch — the determinism the fp32 path gets from fixed GEMM shapes. */
#include "svikernels.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#include <cpuid.h>
#define TARGET_BF16 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx512bf16,fma")))

enum { MR = 8, NR = 32 };

/* AVX-512 BF16: CPUID leaf 7 sub-leaf 1, EAX bit 5; the AVX-512 state must be enabled by the
 * OS as well (checked by __builtin_cpu_supports("avx512f")). SVI_ISA=avx2 turns it off. */
static int detect(void) {
    const char *force = getenv("SVI_ISA");
    if (force && strcmp(force, "avx2") == 0) return 0;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vl")) return 0;
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a >> 5) & 1;
}

static int available = -1;

int svi_bf16_available(void) {
    int v = __atomic_load_n(&available, __ATOMIC_RELAXED);
    if (v < 0) { v = detect(); __atomic_store_n(&available, v, __ATOMIC_RELAXED); }
    return v;
}

/* float32 → bf16 bits, round to nearest even (what vcvtneps2bf16 does for finite values). */
static inline uint16_t bf16_bits(float f) {
    uint32_t u; memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return (uint16_t)((u >> 16) | ((u & 0xffff) ? 0x40 : 0));   /* inf, NaN stays NaN */
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

long svi_bf16_packed_a_count(long m, long k) {
    return (m + MR - 1) / MR * MR * ((k + 1) / 2 * 2);
}

/* ap[panel][p][r][2] = (A[panel·8 + r][2p], A[panel·8 + r][2p + 1]), zeros past m and k. */
void svi_bf16_pack_a(const float *a, long m, long k, long lda, unsigned short *ap) {
    long kp2 = (k + 1) / 2, panels = (m + MR - 1) / MR;
    for (long pn = 0; pn < panels; pn++)
        for (long p = 0; p < kp2; p++)
            for (long r = 0; r < MR; r++) {
                long i = pn * MR + r;
                uint16_t *dst = ap + ((pn * kp2 + p) * MR + r) * 2;
                dst[0] = (i < m) ? bf16_bits(a[i * lda + 2 * p]) : 0;
                dst[1] = (i < m && 2 * p + 1 < k) ? bf16_bits(a[i * lda + 2 * p + 1]) : 0;
            }
}

/* 16 columns of two rows of B as 16 bf16 pairs (row k0 in the low half of each lane). */
TARGET_BF16 static inline __m512i pair16(const float *r0, const float *r1, __mmask16 mask) {
    __m512 x0 = _mm512_maskz_loadu_ps(mask, r0);
    __m512 x1 = r1 ? _mm512_maskz_loadu_ps(mask, r1) : _mm512_setzero_ps();
    __m512bh both = _mm512_cvtne2ps_pbh(x1, x0);   /* bf16 lanes 0..15: x0, 16..31: x1 */
    const __m512i order = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                           23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(order, (__m512i)both);
}

/* bp[p][32 lanes]: columns j0 … j0 + cols − 1 of B (zeros past them and past k). */
TARGET_BF16 static void pack_b(const float *b, long k, long ldb, long cols, uint32_t *bp) {
    long kp2 = (k + 1) / 2;
    __mmask16 m0 = cols >= 16 ? 0xffff : (__mmask16)((1u << cols) - 1);
    __mmask16 m1 = cols >= 32 ? 0xffff : cols <= 16 ? 0 : (__mmask16)((1u << (cols - 16)) - 1);
    for (long p = 0; p < kp2; p++) {
        const float *r0 = b + 2 * p * ldb, *r1 = 2 * p + 1 < k ? r0 + ldb : NULL;
        _mm512_storeu_si512(bp + p * NR, pair16(r0, r1, m0));
        _mm512_storeu_si512(bp + p * NR + 16, m1 ? pair16(r0 + 16, r1 ? r1 + 16 : NULL, m1) : _mm512_setzero_si512());
    }
}

/* C rows i0 … i0 + rows − 1, columns j0 … j0 + cols − 1 (rows ≤ 8, cols ≤ 32). */
TARGET_BF16 static void kernel(long kp2, const uint32_t *a, const uint32_t *b, float *c, long ldc,
                               long rows, long cols, int accumulate) {
    __m512 acc[MR][2];
    for (int r = 0; r < MR; r++) { acc[r][0] = _mm512_setzero_ps(); acc[r][1] = _mm512_setzero_ps(); }
    for (long p = 0; p < kp2; p++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + p * NR), b1 = (__m512bh)_mm512_loadu_si512(b + p * NR + 16);
        const uint32_t *ap = a + p * MR;
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) {
            __m512bh ar = (__m512bh)_mm512_set1_epi32((int)ap[r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], ar, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], ar, b1);
        }
    }
    __mmask16 m0 = cols >= 16 ? 0xffff : (__mmask16)((1u << cols) - 1);
    __mmask16 m1 = cols >= 32 ? 0xffff : cols <= 16 ? 0 : (__mmask16)((1u << (cols - 16)) - 1);
    for (long r = 0; r < rows; r++) {
        float *cr = c + r * ldc;
        __m512 v0 = acc[r][0], v1 = acc[r][1];
        if (accumulate) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cr));
            if (m1) v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cr + 16));
        }
        _mm512_mask_storeu_ps(cr, m0, v0);
        if (m1) _mm512_mask_storeu_ps(cr + 16, m1, v1);
    }
}

TARGET_BF16 static void gemm(long m, long n, long k, const unsigned short *ap, const float *b, long ldb,
                             float *c, long ldc, int accumulate, uint32_t *bp) {
    long kp2 = (k + 1) / 2, panels = (m + MR - 1) / MR;
    for (long j0 = 0; j0 < n; j0 += NR) {
        long cols = n - j0 < NR ? n - j0 : NR;
        pack_b(b + j0, k, ldb, cols, bp);
        for (long pn = 0; pn < panels; pn++) {
            long rows = m - pn * MR < MR ? m - pn * MR : MR;
            kernel(kp2, (const uint32_t *)ap + pn * kp2 * MR, bp, c + pn * MR * ldc + j0, ldc, rows, cols, accumulate);
        }
    }
}

int svi_bf16_gemm(long m, long n, long k, const unsigned short *ap, const float *b, long ldb,
                  float *c, long ldc, int accumulate) {
    if (!svi_bf16_available()) return 0;
    if (m <= 0 || n <= 0) return 1;
    long kp2 = (k + 1) / 2;
    uint32_t *bp = aligned_alloc(64, (size_t)((kp2 * NR * 4 + 63) / 64 * 64));
    if (!bp) return -1;
    gemm(m, n, k, ap, b, ldb, c, ldc, accumulate, bp);
    free(bp);
    return 1;
}

#else
int svi_bf16_available(void) { return 0; }
long svi_bf16_packed_a_count(long m, long k) { return (m + 7) / 8 * 8 * ((k + 1) / 2 * 2); }
void svi_bf16_pack_a(const float *a, long m, long k, long lda, unsigned short *ap) { (void)a; (void)m; (void)k; (void)lda; (void)ap; }
int svi_bf16_gemm(long m, long n, long k, const unsigned short *ap, const float *b, long ldb, float *c, long ldc, int accumulate) {
    (void)m; (void)n; (void)k; (void)ap; (void)b; (void)ldb; (void)c; (void)ldc; (void)accumulate; return 0;
}
#endif

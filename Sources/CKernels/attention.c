/* Attention of one head on a block of 32 query positions, without packing K and V (and, at
 * the end, GroupNorm's normalising pass, which shares the exponential).
 *
 * OpenBLAS re-packs its operands on every call; attention's GEMMs are thin (k = head
 * channels, 32–64) and were called once per block of query rows, so K and V (ch × L, 1 MB
 * each at L = 4096) were copied again for every block: at 256×256 the embedded prior's
 * middle attention ran at about 100 GFLOP/s while its convolutions ran near 170.
 *
 * Here every step works on 32 query columns at once, in the transposed layout that makes all
 * three stages vector-wide without a transpose: the scores Sᵀ[s][t] (one row of 32 per key
 * position s) are sums over channels of k[c][s] (broadcast) times q[c][t] (a vector), the
 * softmax runs down the columns (a vector per step), and the output o[c][t] sums over s of
 * v[c][s] (broadcast) times Sᵀ[s][t] (a vector). K and V are read in place, row by row.
 *
 * Every output value is summed in a fixed order (channels, then key positions, one fused
 * multiply-add at a time) and the vector lanes are independent query positions, so the result
 * does not depend on the vector width (AVX-512 and AVX2 give the same bits), on the block
 * a position falls in, nor on the thread that runs it. */
#include "svikernels.h"
#include <string.h>
#include "targets.h"

typedef int i8v __attribute__((vector_size(32), aligned(4)));
typedef int i16v __attribute__((vector_size(64), aligned(4)));

/* Query positions per block: 4 AVX2 vectors, 2 AVX-512 vectors. */
#define TB 32

/* e^x for x ≤ 0 (scores minus their maximum): 2^n · p(r), r = x − n·ln 2 in two parts, p the
 * degree-6 Taylor polynomial; n from rounding by the 1.5·2²³ shifter. Written once per width
 * with the same operations, so both widths give the same bits. */
#define EXP_BODY(V, I)                                                                 \
    const V lo = (V){0} - 87.0f;                                                       \
    x = __builtin_elementwise_max(x, lo);                                              \
    const V shifter = (V){0} + 12582912.0f;                                            \
    V t = __builtin_elementwise_fma(x, (V){0} + 1.4426950408889634f, shifter);         \
    V n = t - shifter;                                                                 \
    V r = __builtin_elementwise_fma(n, (V){0} - 0.693145751953125f, x);                \
    r = __builtin_elementwise_fma(n, (V){0} - 1.4286067653301870e-06f, r);             \
    V p = (V){0} + 1.0f / 720;                                                         \
    p = __builtin_elementwise_fma(p, r, (V){0} + 1.0f / 120);                          \
    p = __builtin_elementwise_fma(p, r, (V){0} + 1.0f / 24);                           \
    p = __builtin_elementwise_fma(p, r, (V){0} + 1.0f / 6);                            \
    p = __builtin_elementwise_fma(p, r, (V){0} + 0.5f);                                \
    p = __builtin_elementwise_fma(p, r, (V){0} + 1.0f);                                \
    p = __builtin_elementwise_fma(p, r, (V){0} + 1.0f);                                \
    I ni = (I)t - 0x4B400000;                                                          \
    I bits = (ni + 127) << 23;                                                         \
    V scale; memcpy(&scale, &bits, sizeof scale);                                      \
    return p * scale;

INLINE TARGET_AVX2 v8 exp8(v8 x) { EXP_BODY(v8, i8v) }
INLINE TARGET_AVX512 v16 exp16(v16 x) { EXP_BODY(v16, i16v) }

/* One block, for a vector type V of W lanes (NV = TB / W vectors per row of 32), SG key
 * positions per register tile of the scores and CG channels per tile of the output. */
#define ATTENTION_BODY(V, W, SG, CG, EXP)                                                             \
    enum { NV = TB / W };                                                                             \
    float *qb = scratch, *st = scratch + ch * TB, *ob = st + l * TB;                                  \
    for (long c = 0; c < ch; c++) {                                                                   \
        memset(qb + c * TB, 0, TB * sizeof(float));                                                   \
        memcpy(qb + c * TB, q + c * l + t0, (size_t)n * sizeof(float));                               \
    }                                                                                                 \
    /* Scores Sᵀ[s][t] = α Σ_c k[c][s] q[c][t], in order of c. */                                     \
    long s = 0;                                                                                       \
    for (; s + SG <= l; s += SG) {                                                                    \
        V acc[SG][NV];                                                                                \
        for (int i = 0; i < SG; i++) for (int j = 0; j < NV; j++) acc[i][j] = (V){0};                 \
        for (long c = 0; c < ch; c++) {                                                               \
            V qv[NV];                                                                                 \
            for (int j = 0; j < NV; j++) memcpy(&qv[j], qb + c * TB + j * W, sizeof(V));              \
            const float *kr = k + c * l + s;                                                          \
            for (int i = 0; i < SG; i++) {                                                            \
                V kb = (V){0} + kr[i];                                                                \
                for (int j = 0; j < NV; j++) acc[i][j] = __builtin_elementwise_fma(kb, qv[j], acc[i][j]); \
            }                                                                                         \
        }                                                                                             \
        for (int i = 0; i < SG; i++) for (int j = 0; j < NV; j++) {                                   \
            V r = acc[i][j] * alpha;                                                                  \
            memcpy(st + (s + i) * TB + j * W, &r, sizeof(V));                                         \
        }                                                                                             \
    }                                                                                                 \
    for (; s < l; s++) {                                                                              \
        V acc[NV];                                                                                    \
        for (int j = 0; j < NV; j++) acc[j] = (V){0};                                                 \
        for (long c = 0; c < ch; c++) {                                                               \
            V kb = (V){0} + k[c * l + s];                                                             \
            for (int j = 0; j < NV; j++) {                                                            \
                V qv; memcpy(&qv, qb + c * TB + j * W, sizeof(V));                                    \
                acc[j] = __builtin_elementwise_fma(kb, qv, acc[j]);                                   \
            }                                                                                         \
        }                                                                                             \
        for (int j = 0; j < NV; j++) { V r = acc[j] * alpha; memcpy(st + s * TB + j * W, &r, sizeof(V)); } \
    }                                                                                                 \
    /* Softmax down each column: e = exp(S − max), and the column's sum (in order of s). */           \
    V inv[NV];                                                                                        \
    for (int j = 0; j < NV; j++) {                                                                    \
        V m = (V){0} - __builtin_inff();                                                              \
        for (long u = 0; u < l; u++) { V x; memcpy(&x, st + u * TB + j * W, sizeof(V)); m = __builtin_elementwise_max(m, x); } \
        V sum = (V){0};                                                                               \
        for (long u = 0; u < l; u++) {                                                                \
            V x; memcpy(&x, st + u * TB + j * W, sizeof(V));                                          \
            V e = EXP(x - m);                                                                         \
            memcpy(st + u * TB + j * W, &e, sizeof(V));                                               \
            sum += e;                                                                                 \
        }                                                                                             \
        inv[j] = ((V){0} + 1.0f) / sum;                                                               \
    }                                                                                                 \
    /* Output o[c][t] = Σ_s v[c][s] e[s][t] / Σ_s e[s][t], in order of s. */                          \
    long c0 = 0;                                                                                      \
    for (; c0 < ch; c0 += CG) {                                                                       \
        int cg = ch - c0 < CG ? (int)(ch - c0) : CG;                                                  \
        V acc[CG][NV];                                                                                \
        for (int i = 0; i < CG; i++) for (int j = 0; j < NV; j++) acc[i][j] = (V){0};                 \
        if (cg == CG) {                                                                               \
            for (long u = 0; u < l; u++) {                                                            \
                V ev[NV];                                                                             \
                for (int j = 0; j < NV; j++) memcpy(&ev[j], st + u * TB + j * W, sizeof(V));          \
                for (int i = 0; i < CG; i++) {                                                        \
                    V vb = (V){0} + v[(c0 + i) * l + u];                                              \
                    for (int j = 0; j < NV; j++) acc[i][j] = __builtin_elementwise_fma(vb, ev[j], acc[i][j]); \
                }                                                                                     \
            }                                                                                         \
        } else {                                                                                      \
            for (int i = 0; i < cg; i++) for (long u = 0; u < l; u++) {                               \
                V vb = (V){0} + v[(c0 + i) * l + u];                                                  \
                for (int j = 0; j < NV; j++) {                                                        \
                    V ev; memcpy(&ev, st + u * TB + j * W, sizeof(V));                                \
                    acc[i][j] = __builtin_elementwise_fma(vb, ev, acc[i][j]);                         \
                }                                                                                     \
            }                                                                                         \
        }                                                                                             \
        for (int i = 0; i < cg; i++) for (int j = 0; j < NV; j++) {                                   \
            V r = acc[i][j] * inv[j];                                                                 \
            memcpy(ob + (c0 + i) * TB + j * W, &r, sizeof(V));                                        \
        }                                                                                             \
    }                                                                                                 \
    for (long c = 0; c < ch; c++) memcpy(out + c * l + t0, ob + c * TB, (size_t)n * sizeof(float));

static TARGET_AVX512 void attention_avx512(const float *q, const float *k, const float *v, long ch, long l,
                                           long t0, long n, float alpha, float *out, float *scratch) {
    ATTENTION_BODY(v16, 16, 8, 8, exp16)
}

static TARGET_AVX2 void attention_avx2(const float *q, const float *k, const float *v, long ch, long l,
                                       long t0, long n, float alpha, float *out, float *scratch) {
    ATTENTION_BODY(v8, 8, 3, 3, exp8)
}

long svi_attention_scratch_floats(long ch, long l) { return 2 * ch * TB + l * TB; }

long svi_attention_block_width(void) { return TB; }

void svi_attention_block(const float *q, const float *k, const float *v, long ch, long l,
                         long t0, long n, float alpha, float *out, float *scratch) {
    if (n <= 0) return;
    if (n > TB) n = TB;
    if (svi_kernels_avx512()) attention_avx512(q, k, v, ch, l, t0, n, alpha, out, scratch);
    else attention_avx2(q, k, v, ch, l, t0, n, alpha, out, scratch);
}

/* ---- GroupNorm's normalising pass ---------------------------------------------------------- */

/* dst[i] = a·src[i] + o, then SiLU (v / (1 + e^−v)) when silu != 0: one channel of GroupNorm
 * after its statistics. e^x as above (clamped to [−87, 88]); the same bits at either width. */
#define NORM_BODY(V, W, EXP)                                                                          \
    long i = 0;                                                                                       \
    const V av = (V){0} + a, ov = (V){0} + o, one = (V){0} + 1.0f, hi = (V){0} + 88.0f;               \
    for (; i + W <= n; i += W) {                                                                      \
        V x; memcpy(&x, src + i, sizeof(V));                                                          \
        V v = __builtin_elementwise_fma(av, x, ov);                                                   \
        if (silu) v = v / (one + EXP(__builtin_elementwise_min(-v, hi)));                             \
        memcpy(dst + i, &v, sizeof(V));                                                               \
    }                                                                                                 \
    if (i < n) {                       /* the tail through a padded vector: the same operations */   \
        float tmp[W] = {0};                                                                           \
        memcpy(tmp, src + i, (size_t)(n - i) * sizeof(float));                                        \
        V x; memcpy(&x, tmp, sizeof(V));                                                              \
        V v = __builtin_elementwise_fma(av, x, ov);                                                   \
        if (silu) v = v / (one + EXP(__builtin_elementwise_min(-v, hi)));                             \
        memcpy(tmp, &v, sizeof(V));                                                                   \
        memcpy(dst + i, tmp, (size_t)(n - i) * sizeof(float));                                        \
    }

static TARGET_AVX512 void norm_avx512(const float *src, float *dst, long n, float a, float o, int silu) { NORM_BODY(v16, 16, exp16) }
static TARGET_AVX2 void norm_avx2(const float *src, float *dst, long n, float a, float o, int silu) { NORM_BODY(v8, 8, exp8) }

void svi_scale_shift_silu(const float *src, float *dst, long n, float a, float o, int silu) {
    if (svi_kernels_avx512()) norm_avx512(src, dst, n, a, o, silu);
    else norm_avx2(src, dst, n, a, o, silu);
}

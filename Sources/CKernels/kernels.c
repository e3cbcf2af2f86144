/* Winograd transforms with run-time choice of vector width. One body per kernel, written
 * for a vector type of W lanes (GCC/Clang vector extensions), is instantiated in functions
 * compiled for AVX-512 (16 lanes) and for AVX2 (8 lanes); one is picked on the first call from
 * the CPU's features. 8 tiles are handled per AVX2 vector and 16 per AVX-512
 * vector (falling back to 8 at the end of a tile row whose width is not a multiple of 16). */
#include "svikernels.h"
#include <stdlib.h>
#include <string.h>
#include "targets.h"

/* Helpers on 8 lanes compile for AVX2 (and inline into both variants), on 16 for AVX-512. */
#define INLINE8 INLINE TARGET_AVX2
#define INLINE16 INLINE TARGET_AVX512

/* ---- lane helpers ------------------------------------------------------------------- */

INLINE8 v8 ld8(const float *p) { v8 r; memcpy(&r, p, sizeof r); return r; }
INLINE8 void st8(float *p, v8 a) { memcpy(p, &a, sizeof a); }
INLINE16 v16 ld16(const float *p) { v16 r; memcpy(&r, p, sizeof r); return r; }
INLINE16 void st16(float *p, v16 a) { memcpy(p, &a, sizeof a); }
INLINE8 v8 splat8(float s) { return (v8){s, s, s, s, s, s, s, s}; }
INLINE16 v16 splat16(float s) { return (v16){s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s}; }

/* Column j of 8 consecutive 4-wide tiles starting at p: p[4k + j], k = 0..7. */
#define COL8(a, b, j) __builtin_shufflevector(a, b, j, j + 4, j + 8, j + 12, j + 16, j + 20, j + 24, j + 28)

/* ---- input transform ---------------------------------------------------------------- */

/* Bᵀ rows applied to six values (rows of the tile or columns of the row-transformed tile). */
#define BT6(T, d0, d1, d2, d3, d4, d5, o0, o1, o2, o3, o4, o5) do { \
    o0 = 4.0f * d0 - 5.0f * d2 + d4;                                  \
    o1 = -4.0f * d1 - 4.0f * d2 + d3 + d4;                            \
    o2 = 4.0f * d1 - 4.0f * d2 - d3 + d4;                             \
    o3 = -2.0f * d1 - d2 + 2.0f * d3 + d4;                            \
    o4 = 2.0f * d1 - d2 - 2.0f * d3 + d4;                             \
    o5 = 4.0f * d1 - 5.0f * d3 + d5; } while (0)

/* 8 tiles' columns from the row-transformed row `base` (= tr + i*lp + 4*tx0). */
INLINE8 void input_cols8(const float *base, float *out, long s) {
    v8 a0 = ld8(base), a1 = ld8(base + 8), a2 = ld8(base + 16), a3 = ld8(base + 24);
    v8 b0 = ld8(base + 4), b1 = ld8(base + 12), b2 = ld8(base + 20), b3 = ld8(base + 28);
    /* column j of tiles 0..3 from x0,x1 and of tiles 4..7 from x2,x3, joined */
#define J8(x0, x1, x2, x3, j) __builtin_shufflevector(__builtin_shufflevector(x0, x1, j, j + 4, j + 8, j + 12), \
                                                      __builtin_shufflevector(x2, x3, j, j + 4, j + 8, j + 12), 0, 1, 2, 3, 4, 5, 6, 7)
    v8 c0 = J8(a0, a1, a2, a3, 0), c1 = J8(a0, a1, a2, a3, 1), c2 = J8(a0, a1, a2, a3, 2), c3 = J8(a0, a1, a2, a3, 3);
    v8 c4 = J8(b0, b1, b2, b3, 0), c5 = J8(b0, b1, b2, b3, 1);
#undef J8
    v8 o0, o1, o2, o3, o4, o5;
    BT6(v8, c0, c1, c2, c3, c4, c5, o0, o1, o2, o3, o4, o5);
    st8(out, o0); st8(out + s, o1); st8(out + 2 * s, o2); st8(out + 3 * s, o3); st8(out + 4 * s, o4); st8(out + 5 * s, o5);
}

/* 16 tiles' columns. */
INLINE16 void input_cols16(const float *base, float *out, long s) {
    v16 a0 = ld16(base), a1 = ld16(base + 16), a2 = ld16(base + 32), a3 = ld16(base + 48);
    v16 b0 = ld16(base + 4), b1 = ld16(base + 20), b2 = ld16(base + 36), b3 = ld16(base + 52);
#define J16(x0, x1, x2, x3, j) __builtin_shufflevector(COL8(x0, x1, j), COL8(x2, x3, j), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
    v16 c0 = J16(a0, a1, a2, a3, 0), c1 = J16(a0, a1, a2, a3, 1), c2 = J16(a0, a1, a2, a3, 2), c3 = J16(a0, a1, a2, a3, 3);
    v16 c4 = J16(b0, b1, b2, b3, 0), c5 = J16(b0, b1, b2, b3, 1);
#undef J16
    v16 o0, o1, o2, o3, o4, o5;
    BT6(v16, c0, c1, c2, c3, c4, c5, o0, o1, o2, o3, o4, o5);
    st16(out, o0); st16(out + s, o1); st16(out + 2 * s, o2); st16(out + 3 * s, o3); st16(out + 4 * s, o4); st16(out + 5 * s, o5);
}

/* Bᵀ along y for the columns [q, q + lanes) of the six staged rows pr into tr (row stride lp). */
#define YCOLS(T, LD, ST, q) do {                                                                        \
    T d0 = LD(pr + (q)), d1 = LD(pr + lp + (q)), d2 = LD(pr + 2 * lp + (q));                            \
    T d3 = LD(pr + 3 * lp + (q)), d4 = LD(pr + 4 * lp + (q)), d5 = LD(pr + 5 * lp + (q));               \
    T o0, o1, o2, o3, o4, o5;                                                                           \
    BT6(T, d0, d1, d2, d3, d4, d5, o0, o1, o2, o3, o4, o5);                                             \
    ST(tr + (q), o0); ST(tr + lp + (q), o1); ST(tr + 2 * lp + (q), o2);                                 \
    ST(tr + 3 * lp + (q), o3); ST(tr + 4 * lp + (q), o4); ST(tr + 5 * lp + (q), o5); } while (0)

#define INPUT_BODY(WIDE)                                                                                  \
    long lp = 4 * tw8 + 32, n = rows * tw8, s = cin * n;                                                  \
    float *pr = scratch, *tr = scratch + 6 * lp;                                                          \
    for (long r = 0; r < rows; r++) {                                                                     \
        long ty = first_row + r;                                                                          \
        const float *xc = x + ci * h * w;                                                                 \
        /* six input rows, shifted right by one (the left zero padding), zero outside the frame */       \
        for (int i = 0; i < 6; i++) {                                                                     \
            float *row = pr + i * lp; long yy = 4 * ty - 1 + i;                                           \
            if (yy >= 0 && yy < h) {   /* the row, and zeros only where the frame is not */               \
                row[0] = 0;                                                                               \
                memcpy(row + 1, xc + yy * w, sizeof(float) * w);                                          \
                memset(row + 1 + w, 0, sizeof(float) * (lp - 1 - w));                                     \
            } else memset(row, 0, sizeof(float) * lp);                                                    \
        }                                                                                                 \
        /* Bᵀ along y, all columns at once (16 at a time with AVX-512: lp is a multiple of 32) */         \
        long q0 = 0;                                                                                      \
        if (WIDE) for (; q0 + 16 <= lp; q0 += 16) YCOLS(v16, ld16, st16, q0);                           \
        for (; q0 < lp; q0 += 8) YCOLS(v8, ld8, st8, q0);                                                 \
        /* B along x for each tile: 16 (AVX-512) or 8 tiles per vector */                                 \
        long tx0 = 0;                                                                                     \
        if (WIDE) for (; tx0 + 16 <= tw8; tx0 += 16)                                                      \
            for (int i = 0; i < 6; i++)                                                                   \
                input_cols16(tr + i * lp + 4 * tx0, v + (i * 6 * cin + ci) * n + r * tw8 + tx0, s);       \
        for (; tx0 < tw8; tx0 += 8)                                                                       \
            for (int i = 0; i < 6; i++)                                                                   \
                input_cols8(tr + i * lp + 4 * tx0, v + (i * 6 * cin + ci) * n + r * tw8 + tx0, s);        \
    }

TARGET_AVX512 static void input_avx512(const float *x, long cin, long ci, long h, long w, long tw8,
                                       long first_row, long rows, float *v, float *scratch) { INPUT_BODY(1) }
TARGET_AVX2 static void input_avx2(const float *x, long cin, long ci, long h, long w, long tw8,
                                   long first_row, long rows, float *v, float *scratch) { INPUT_BODY(0) }

/* ---- output transform --------------------------------------------------------------- */

/* Aᵀ applied to six values. */
#define AT6(T, m0, m1, m2, m3, m4, m5, o0, o1, o2, o3) do { \
    T a_ = m1 + m2, b_ = m1 - m2, c_ = m3 + m4, d_ = m3 - m4; \
    o0 = m0 + a_ + c_; o1 = b_ + 2.0f * d_; o2 = a_ + 4.0f * c_; o3 = b_ + 8.0f * d_ + m5; } while (0)

/* Writes four W-lane rows o0..o3 (lane k = tile k's pixel j) as 4W consecutive pixels, tile
 * by tile: dst[4k + j] = oj[k]; only whole tiles inside the frame (`valid` pixels). */
#define SCATTER_SCALAR(W, dst, o0, o1, o2, o3, valid, acc) do {                  \
    for (int k = 0; k < W; k++) {                                                \
        long x0 = 4 * k; if (x0 >= valid) break;                                 \
        float t4[4] = {o0[k], o1[k], o2[k], o3[k]};                              \
        long nn = valid - x0 < 4 ? valid - x0 : 4;                               \
        for (long j = 0; j < nn; j++) { if (acc) dst[x0 + j] += t4[j]; else dst[x0 + j] = t4[j]; } \
    } } while (0)

INLINE8 void store_interleaved8(float *dst, v8 o0, v8 o1, v8 o2, v8 o3, int acc) {
    v8 p01lo = __builtin_shufflevector(o0, o1, 0, 8, 1, 9, 2, 10, 3, 11);
    v8 p01hi = __builtin_shufflevector(o0, o1, 4, 12, 5, 13, 6, 14, 7, 15);
    v8 p23lo = __builtin_shufflevector(o2, o3, 0, 8, 1, 9, 2, 10, 3, 11);
    v8 p23hi = __builtin_shufflevector(o2, o3, 4, 12, 5, 13, 6, 14, 7, 15);
    v8 r0 = __builtin_shufflevector(p01lo, p23lo, 0, 1, 8, 9, 2, 3, 10, 11);
    v8 r1 = __builtin_shufflevector(p01lo, p23lo, 4, 5, 12, 13, 6, 7, 14, 15);
    v8 r2 = __builtin_shufflevector(p01hi, p23hi, 0, 1, 8, 9, 2, 3, 10, 11);
    v8 r3 = __builtin_shufflevector(p01hi, p23hi, 4, 5, 12, 13, 6, 7, 14, 15);
    if (acc) { r0 += ld8(dst); r1 += ld8(dst + 8); r2 += ld8(dst + 16); r3 += ld8(dst + 24); }
    st8(dst, r0); st8(dst + 8, r1); st8(dst + 16, r2); st8(dst + 24, r3);
}

INLINE16 void store_interleaved16(float *dst, v16 o0, v16 o1, v16 o2, v16 o3, int acc) {
    v16 p01lo = __builtin_shufflevector(o0, o1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    v16 p01hi = __builtin_shufflevector(o0, o1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    v16 p23lo = __builtin_shufflevector(o2, o3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    v16 p23hi = __builtin_shufflevector(o2, o3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    v16 r0 = __builtin_shufflevector(p01lo, p23lo, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    v16 r1 = __builtin_shufflevector(p01lo, p23lo, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
    v16 r2 = __builtin_shufflevector(p01hi, p23hi, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    v16 r3 = __builtin_shufflevector(p01hi, p23hi, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
    if (acc) { r0 += ld16(dst); r1 += ld16(dst + 16); r2 += ld16(dst + 32); r3 += ld16(dst + 48); }
    st16(dst, r0); st16(dst + 16, r1); st16(dst + 32, r2); st16(dst + 48, r3);
}

/* One group of W tiles at tile column tx0 of tile row ty (p = its column in M). */
#define OUTPUT_GROUP(T, W, LD, SPLAT, STORE)                                                             \
    {                                                                                                   \
        T t[24];                                                                                        \
        for (int j = 0; j < 6; j++) {                                                                   \
            T m0 = LD(mc + j * s + p), m1 = LD(mc + (6 + j) * s + p), m2 = LD(mc + (12 + j) * s + p);    \
            T m3 = LD(mc + (18 + j) * s + p), m4 = LD(mc + (24 + j) * s + p), m5 = LD(mc + (30 + j) * s + p); \
            AT6(T, m0, m1, m2, m3, m4, m5, t[j], t[6 + j], t[12 + j], t[18 + j]);                       \
        }                                                                                               \
        T bv = SPLAT(bias);                                                                             \
        for (int i = 0; i < 4; i++) {                                                                   \
            long yy = 4 * ty + i;                                                                       \
            if (yy >= h) break;                                                                         \
            T o0, o1, o2, o3;                                                                           \
            AT6(T, t[i * 6], t[i * 6 + 1], t[i * 6 + 2], t[i * 6 + 3], t[i * 6 + 4], t[i * 6 + 5], o0, o1, o2, o3); \
            o0 += bv; o1 += bv; o2 += bv; o3 += bv;                                                     \
            float *dst = yc + yy * w + 4 * tx0;                                                         \
            long valid = w - 4 * tx0;                                                                   \
            if (valid >= 4 * W) STORE(dst, o0, o1, o2, o3, accumulate);                                 \
            else SCATTER_SCALAR(W, dst, o0, o1, o2, o3, valid, accumulate);                             \
        }                                                                                               \
    }

#define OUTPUT_BODY(WIDE)                                                                                \
    long n = rows * tw8, s = cout * n;                                                                   \
    const float *mc = m + co * n;                                                                        \
    for (long r = 0; r < rows; r++) {                                                                    \
        long ty = first_row + r;                                                                         \
        float *yc = y + co * h * w;                                                                      \
        long tx0 = 0;                                                                                    \
        if (WIDE) for (; tx0 + 16 <= tw8 && 4 * tx0 < w; tx0 += 16) {                                    \
            long p = r * tw8 + tx0;                                                                      \
            OUTPUT_GROUP(v16, 16, ld16, splat16, store_interleaved16)                                    \
        }                                                                                                \
        for (; tx0 < tw8 && 4 * tx0 < w; tx0 += 8) {                                                     \
            long p = r * tw8 + tx0;                                                                      \
            OUTPUT_GROUP(v8, 8, ld8, splat8, store_interleaved8)                                         \
        }                                                                                                \
    }

TARGET_AVX512 static void output_avx512(const float *m, long cout, long co, long h, long w, long tw8,
                                        long first_row, long rows, float bias, float *y, int accumulate) { OUTPUT_BODY(1) }
TARGET_AVX2 static void output_avx2(const float *m, long cout, long co, long h, long w, long tw8,
                                    long first_row, long rows, float bias, float *y, int accumulate) { OUTPUT_BODY(0) }

/* ---- dispatch ----------------------------------------------------------------------- */

static int chosen = -1;   /* 2: AVX-512, 1: AVX2 */

/* The AVX-512 subsets the 16-lane code is compiled for. */
static int has_avx512(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
#else
    return 0;
#endif
}

static int choose(void) {
    const char *force = getenv("SVI_ISA");
    if (force && strcmp(force, "avx2") == 0) return 1;
    return has_avx512() ? 2 : 1;
}

static inline int isa(void) {
    int c = __atomic_load_n(&chosen, __ATOMIC_RELAXED);
    if (c < 0) { c = choose(); __atomic_store_n(&chosen, c, __ATOMIC_RELAXED); }
    return c;
}

int svi_kernels_use(const char *name) {
    int want = strcmp(name, "avx512") == 0 ? 2 : strcmp(name, "avx2") == 0 ? 1 : 0;
    if (want == 0) return 0;
    if (want == 2 && !has_avx512()) return 0;
    __atomic_store_n(&chosen, want, __ATOMIC_RELAXED);
    return 1;
}

const char *svi_kernels_isa(void) { return isa() == 2 ? "avx512" : "avx2"; }

int svi_kernels_avx512(void) { return isa() == 2; }

void svi_winograd_input(const float *x, long cin, long ci, long h, long w, long tw8,
                        long first_row, long rows, float *v, float *scratch) {
    if (isa() == 2) input_avx512(x, cin, ci, h, w, tw8, first_row, rows, v, scratch);
    else input_avx2(x, cin, ci, h, w, tw8, first_row, rows, v, scratch);
}

void svi_winograd_output(const float *m, long cout, long co, long h, long w, long tw8,
                         long first_row, long rows, float bias, float *y, int accumulate) {
    if (isa() == 2) output_avx512(m, cout, co, h, w, tw8, first_row, rows, bias, y, accumulate);
    else output_avx2(m, cout, co, h, w, tw8, first_row, rows, bias, y, accumulate);
}

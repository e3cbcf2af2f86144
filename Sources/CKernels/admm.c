/* ADMM-TV's shrinkage step (the warm start's, issue 31): z ← soft(d + ŵ, thr), w ← d + ŵ − z,
 * and the block's share of the momentum's residual ‖w − ŵ‖² + ‖z − ẑ‖². In Swift the loop
 * ran scalar (five pointers that may alias element for element: the vectoriser gave up on
 * them), and it was the warm start's costliest pass once its vectors were float32. One
 * AVX2 + FMA body (what svi's Swift code targets), so the bits are the same on every machine
 * svi runs on; the residual's sums are explicit vector lanes, added in a fixed order. */
#include "svikernels.h"
#include "targets.h"

typedef double v4d __attribute__((vector_size(32), aligned(8)));

/* soft(v) = v − clamp(v, −thr, thr), written as Swift's max(v, −thr) then min(·, thr) are:
 * max(x, y) = y >= x ? y : x, min(x, y) = y < x ? y : x — the bits svi's Swift version had.
 * zo may be ẑ or d and wo may be ŵ (each element is read before it is written). */
#define SHRINK(T)                                                                              \
    _Pragma("clang loop vectorize(assume_safety)")                                             \
    for (long k = 0; k < n; k++) {                                                             \
        T v = d[k] + wh[k];                                                                    \
        T m = -thr >= v ? -thr : v;                                                            \
        T c = thr < m ? thr : m;                                                               \
        T zk = v - c;                                                                          \
        zo[k] = zk;                                                                            \
        wo[k] = v - zk;                                                                        \
    }

/* Σ (w − ŵ)² + (z − ẑ)² in float64: element k into lane k mod 8 (two v4d), then the lanes in
 * order, then the tail. The differences are taken in T, as the shrinkage wrote w and z. */
#define RESIDUAL(T)                                                                            \
    v4d a = {0, 0, 0, 0}, b = {0, 0, 0, 0};                                                    \
    long k = 0;                                                                                \
    for (; k + 8 <= n; k += 8) {                                                               \
        v4d e0, e1;                                                                            \
        for (int j = 0; j < 4; j++) {                                                          \
            T p = wo[k + j] - wh[k + j], q = zo[k + j] - zh[k + j];                            \
            T r = wo[k + 4 + j] - wh[k + 4 + j], s = zo[k + 4 + j] - zh[k + 4 + j];            \
            e0[j] = (double)p * p + (double)q * q;                                             \
            e1[j] = (double)r * r + (double)s * s;                                             \
        }                                                                                      \
        a += e0; b += e1;                                                                      \
    }                                                                                          \
    double t = ((a[0] + a[1]) + (a[2] + a[3])) + ((b[0] + b[1]) + (b[2] + b[3]));             \
    for (; k < n; k++) { T p = wo[k] - wh[k], q = zo[k] - zh[k]; t += (double)p * p + (double)q * q; } \
    *sum = t;

TARGET_AVX2 void svi_shrink_f32(const float *d, const float *zh, const float *wh, float *zo, float *wo,
                                long n, float thr, int residual, double *sum) {
    SHRINK(float)
    if (residual) { RESIDUAL(float) }
}

TARGET_AVX2 void svi_shrink_f64(const double *d, const double *zh, const double *wh, double *zo, double *wo,
                                long n, double thr, int residual, double *sum) {
    SHRINK(double)
    if (residual) { RESIDUAL(double) }
}

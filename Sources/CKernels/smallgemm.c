#include "svikernels.h"
#include <string.h>
#include "targets.h"

/* C[m][n] (+)= A[m][k] · B[k][n], row-major, for the thin products of few-channel layers
 * (Winograd's 36 GEMMs at 32–64 channels): OpenBLAS packs A (the transformed weights) and
 * zeroes C on every call, which at these sizes cost as much as the multiplications. Here MR
 * rows of C times NV vectors of columns sit in registers; each k step broadcasts MR values of A
 * against NV vectors of B's row. Each value of C is summed over k in order (after C's own
 * value when accumulating), so the bits do not depend on the vector width, the tiling or the
 * thread that computes a block of columns. */
#define GEMM_TILE(V, W, NV, MR, ROWS, LDB, BP, CP, LDC)                                               \
    do {                                                                                              \
        V acc[MR][NV];                                                                                \
        for (int i = 0; i < ROWS; i++) for (int j = 0; j < NV; j++) {                                 \
            if (accumulate) memcpy(&acc[i][j], CP + i * (LDC) + j * W, sizeof(V));                    \
            else acc[i][j] = (V){0};                                                                  \
        }                                                                                             \
        for (long p = 0; p < k; p++) {                                                                \
            V bv[NV];                                                                                 \
            for (int j = 0; j < NV; j++) memcpy(&bv[j], BP + p * (LDB) + j * W, sizeof(V));           \
            for (int i = 0; i < ROWS; i++) {                                                          \
                V av = (V){0} + arow[i * lda + p];                                                    \
                for (int j = 0; j < NV; j++) acc[i][j] = __builtin_elementwise_fma(av, bv[j], acc[i][j]); \
            }                                                                                         \
        }                                                                                             \
        for (int i = 0; i < ROWS; i++) for (int j = 0; j < NV; j++) memcpy(CP + i * (LDC) + j * W, &acc[i][j], sizeof(V)); \
    } while (0)

#define GEMM_BODY(V, W, NV, MR)                                                                       \
    enum { COLS = NV * W };                                                                           \
    float *bt = scratch, *ct = scratch + k * COLS;                                                    \
    for (long j0 = 0; j0 < n; j0 += COLS) {                                                           \
        long nc = n - j0 < COLS ? n - j0 : COLS;                                                      \
        const float *bp = b + j0; long ldbb = ldb;                                                    \
        if (nc < COLS) {               /* the last, narrower block: through zero-padded copies */     \
            for (long p = 0; p < k; p++) {                                                            \
                memset(bt + p * COLS, 0, COLS * sizeof(float));                                       \
                memcpy(bt + p * COLS, b + p * ldb + j0, (size_t)nc * sizeof(float));                  \
            }                                                                                         \
            bp = bt; ldbb = COLS;                                                                     \
        }                                                                                             \
        long i0 = 0;                                                                                  \
        for (; i0 < m; i0 += MR) {                                                                    \
            int rows = m - i0 < MR ? (int)(m - i0) : MR;                                              \
            const float *arow = a + i0 * lda;                                                         \
            float *cp = c + i0 * ldc + j0; long ldcc = ldc;                                           \
            if (nc < COLS) {                                                                          \
                for (int i = 0; i < rows; i++) {                                                      \
                    memset(ct + i * COLS, 0, COLS * sizeof(float));                                   \
                    if (accumulate) memcpy(ct + i * COLS, cp + i * ldc, (size_t)nc * sizeof(float));  \
                }                                                                                     \
                cp = ct; ldcc = COLS;                                                                 \
            }                                                                                         \
            if (rows == MR) GEMM_TILE(V, W, NV, MR, MR, ldbb, bp, cp, ldcc);                          \
            else for (int r = 0; r < rows; r++) {                                                     \
                const float *arow1 = arow + r * lda; (void)arow1;                                     \
                { const float *arow = arow1; float *cq = cp + r * ldcc; GEMM_TILE(V, W, NV, 1, 1, ldbb, bp, cq, ldcc); } \
            }                                                                                         \
            if (nc < COLS)                                                                            \
                for (int i = 0; i < rows; i++) memcpy(c + (i0 + i) * ldc + j0, ct + i * COLS, (size_t)nc * sizeof(float)); \
        }                                                                                             \
    }

static TARGET_AVX512 void gemm_avx512(long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                                      float *c, long ldc, int accumulate, float *scratch) {
    GEMM_BODY(v16, 16, 2, 8)
}

static TARGET_AVX2 void gemm_avx2(long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                                  float *c, long ldc, int accumulate, float *scratch) {
    GEMM_BODY(v8, 8, 2, 4)
}

long svi_small_gemm_scratch_floats(long k) { return (k + 8) * 32; }

void svi_small_gemm(long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                    float *c, long ldc, int accumulate, float *scratch) {
    if (m <= 0 || n <= 0) return;
    if (svi_kernels_avx512()) gemm_avx512(m, n, k, a, lda, b, ldb, c, ldc, accumulate, scratch);
    else gemm_avx2(m, n, k, a, lda, b, ldb, c, ldc, accumulate, scratch);
}

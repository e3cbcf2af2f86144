#ifndef SVI_KERNELS_H
#define SVI_KERNELS_H
#include <stddef.h>

/* svi's hand-written vector kernels, each compiled for AVX-512 and for AVX2 (+FMA); the
 * variant runs that the CPU supports, chosen once at first use (SVI_ISA=avx2 forces AVX2). */

/* The instruction set the kernels run with: "avx512" or "avx2". */
const char *svi_kernels_isa(void);

/* Switches the kernels to "avx512" or "avx2" (tests compare the two); returns 0 when this CPU
 * lacks that instruction set (nothing changes then), 1 otherwise. */
int svi_kernels_use(const char *isa);

/* Winograd F(4x4,3x3) input transform of one input channel `ci` for tile rows
 * [first_row, first_row + rows) of one frame x = [cin][h][w]:
 * v[xi][ci][p] = (B^T d B)[xi] for p = (r - first_row) * tw8 + tile column, xi = 0..35.
 * scratch holds 12 * (4 * tw8 + 32) floats. */
void svi_winograd_input(const float *x, long cin, long ci, long h, long w, long tw8,
                        long first_row, long rows, float *v, float *scratch);

/* Winograd output transform of one output channel `co` for the same block of frame
 * y = [cout][h][w]: y tile = A^T M A + bias, cropped at the frame edge, stored or added
 * (accumulate != 0). */
void svi_winograd_output(const float *m, long cout, long co, long h, long w, long tw8,
                         long first_row, long rows, float bias, float *y, int accumulate);

/* 1 when the kernels run their AVX-512 variants (svi_kernels_isa() is "avx512"). */
int svi_kernels_avx512(void);

/* ---- attention (attention.c) ------------------------------------------------------------ */

/* Query positions one svi_attention_block call handles (32). */
long svi_attention_block_width(void);

/* Floats of scratch one call needs for ch head channels and l positions. */
long svi_attention_scratch_floats(long ch, long l);

/* One head's attention for query positions [t0, t0 + n), n ≤ the block width:
 * out[c][t] = Σ_s v[c][s] e[s][t] / Σ_s e[s][t], e[s][t] = exp(α Σ_c q[c][t] k[c][s] − max_s),
 * with q, k, v and out [ch][l] (row stride l); only out's columns [t0, t0 + n) are written.
 * Sums in a fixed order: the same bits on AVX-512 and AVX2, in any block, on any thread. */
void svi_attention_block(const float *q, const float *k, const float *v, long ch, long l,
                         long t0, long n, float alpha, float *out, float *scratch);

/* dst[i] = a·src[i] + o for i < n, followed by SiLU (v / (1 + e^−v)) when silu != 0: GroupNorm's
 * normalising pass over one channel (attention.c). Elementwise: the same bits at either width.
 * src and dst may be the same. */
void svi_scale_shift_silu(const float *src, float *dst, long n, float a, float o, int silu);

/* ---- ADMM-TV (admm.c) ------------------------------------------------------------------- */

/* z ← soft(d + ŵ, thr), w ← d + ŵ − z over n values (zo may be zh or d, wo may be wh); with
 * residual != 0, *sum = Σ (w − ŵ)² + (z − ẑ)² in float64, in a fixed order (then zo, wo must
 * not be zh, wh). One AVX2 + FMA body: the same bits on every CPU svi runs on. */
void svi_shrink_f32(const float *d, const float *zh, const float *wh, float *zo, float *wo,
                    long n, float thr, int residual, double *sum);
void svi_shrink_f64(const double *d, const double *zh, const double *wh, double *zo, double *wo,
                    long n, double thr, int residual, double *sum);

/* ---- small-K GEMM (smallgemm.c) --------------------------------------------------------- */

/* Floats of scratch svi_small_gemm needs for inner dimension k. */
long svi_small_gemm_scratch_floats(long k);

/* C[m][n] = A[m][k]·B[k][n], or C += A·B when accumulate != 0; row-major with leading
 * dimensions lda, ldb, ldc. Serial; for small k (few channels), where it beats OpenBLAS's
 * packing. Each value is summed over k in order: the same bits on AVX-512 and AVX2 and for any
 * split of the columns. */
void svi_small_gemm(long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                    float *c, long ldc, int accumulate, float *scratch);

/* ---- bfloat16 GEMM (bf16gemm.c), for --precision bf16 ---------------------------------- */

/* 1 when this CPU has AVX-512 BF16 (vdpbf16ps) and SVI_ISA does not force avx2. */
int svi_bf16_available(void);

/* bf16 values svi_bf16_pack_a writes for an m×k matrix (rows padded to 8, k to even). */
long svi_bf16_packed_a_count(long m, long k);

/* A [m][k] (row stride lda, float32) rounded to bf16 (nearest even) into the kernel's panel
 * layout; done once per weight matrix. */
void svi_bf16_pack_a(const float *a, long m, long k, long lda, unsigned short *ap);

/* C[m][n] = A·B, or C += A·B when accumulate != 0: A packed by svi_bf16_pack_a, B [k][n] float32
 * (row stride ldb) rounded to bf16, products summed in float32 in order of k. Serial (the
 * caller splits columns over threads). Returns 1, or 0 when bf16 is not available (nothing
 * done), -1 when scratch memory could not be allocated. */
int svi_bf16_gemm(long m, long n, long k, const unsigned short *ap, const float *b, long ldb,
                  float *c, long ldc, int accumulate);

#endif

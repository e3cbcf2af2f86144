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

#endif

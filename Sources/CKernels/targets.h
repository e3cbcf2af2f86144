/* What svi's C kernels share: the unaligned vector types and the per-function targets each
 * kernel is compiled twice for (AVX-512 and AVX2 + FMA), chosen at run time. */
#ifndef SVI_TARGETS_H
#define SVI_TARGETS_H

typedef float v8 __attribute__((vector_size(32), aligned(4)));
typedef float v16 __attribute__((vector_size(64), aligned(4)));

#define INLINE static inline __attribute__((always_inline))

#if defined(__x86_64__)
#define TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
#define TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define TARGET_AVX512
#define TARGET_AVX2
#endif

#endif

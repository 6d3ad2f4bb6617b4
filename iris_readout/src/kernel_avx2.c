/*
 * Block kernel for x86-64 CPUs with AVX2 and FMA: 8-lane vectors.  Built
 * with a target attribute, so the rest of the library stays baseline
 * x86-64; fit.c calls it only after checking the CPU at run time.
 */
#include "internal.h"

#ifdef IRIS_HAVE_AVX2_KERNEL
#define CW 8
#define KATTR __attribute__((target("avx2,fma")))
#define KNAME(x) x##_avx2
#include "kernel.inc"
#else
/* ISO C needs at least one declaration in a translation unit. */
typedef int iris_no_avx2_kernel;
#endif

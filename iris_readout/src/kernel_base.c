/* Block kernel for any target: 4-lane vectors (SSE2 / NEON width). */
#define CW 4
#define KATTR
#define KNAME(x) x##_base
#include "kernel.inc"

/* OpenBLAS's choice of kernels.
 *
 * A DYNAMIC_ARCH OpenBLAS (Debian's) picks its kernels by CPU model when it
 * loads. Versions before 0.3.25 fall back to the SSE3 kernels ("Prescott")
 * on Intel models they do not know (OpenBLAS issue #4267, fixed by pull
 * request #4268), so on this project's machine (model 207, Debian's 0.3.21)
 * sgemm ran at a third of its speed. The fix is the library's own variable
 * OPENBLAS_CORETYPE, read when it loads.
 */
#include <cblas.h>
#include <string.h>

#include "pathfinder/core.h"

const char *pf_blas_better_core(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    const char *core = openblas_get_corename();
    if (!core || strcmp(core, "Prescott") != 0) return NULL;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
    return NULL;
}

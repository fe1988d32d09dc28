/* pf_ckpt_read on arbitrary bytes. The first byte picks whether the call
 * also passes an expected architecture (the tiny seed model's) and a
 * fallback, to reach the comparison paths. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int mode = data[0];
    const char *path = fuzz_file(0, data + 1, size - 1);
    pf_arch expect, fallback, arch;
    const int sizes[3] = {3, 2, 2};
    pf_act acts[2] = {PF_ACT_TANH, PF_ACT_LINEAR};
    pf_error err;
    if (pf_arch_init(&expect, 2, sizes, acts, 1, PF_LOSS_CE, &err)) abort();
    fallback = expect;
    float *theta = (float *)&arch;  /* must come back NULL on failure */
    pf_ckpt_meta meta;
    pf_error_clear(&err);
    int rc = pf_ckpt_read(path, mode & 1 ? &fallback : NULL, mode & 2 ? &expect : NULL, &arch,
                          &theta, &meta, &err);
    fuzz_check_error(rc, &err, path, NULL);
    if (rc == PF_OK) {
        /* what was read must be usable as read */
        if (!theta || arch.n_layers < 1 || !(meta.beta >= 0)) abort();
        double sum = 0;
        for (size_t i = 0; i < arch.n_params; i++) sum += theta[i];
        if (!(sum == sum)) abort();
        free(theta);
    } else if (theta) {
        abort();
    }
    return 0;
}

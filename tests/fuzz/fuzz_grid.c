/* pf_grid_parse (--beta grids) on arbitrary text. A grid that parses must
 * be finite, non-negative, ascending and free of duplicates. The error
 * message quotes the spec as given, so it is one line only if the spec is. */
#include "fuzz.h"

#include <math.h>

#include "pathfinder/exp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *spec = malloc(size + 1);
    if (!spec) abort();
    memcpy(spec, data, size);
    spec[size] = '\0';
    double *betas = (double *)&size;  /* must be reset */
    long n = -1;
    pf_error err;
    pf_error_clear(&err);
    int rc = pf_grid_parse(spec, &betas, &n, &err);
    int one_line = !strchr(spec, '\n');
    free(spec);
    if (rc == PF_OK) {
        if (n < 1 || !betas) abort();
        for (long i = 0; i < n; i++)
            if (!isfinite(betas[i]) || betas[i] < 0 || (i && !(betas[i] > betas[i - 1]))) abort();
    } else {
        if (rc != PF_EINPUT && rc != PF_ERUNTIME) abort();
        if (betas || n != 0 || (one_line && strchr(err.msg, '\n'))) abort();
    }
    free(betas);
    return 0;
}

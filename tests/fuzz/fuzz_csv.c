/* pf_csv_read on arbitrary text. The first byte picks the number of target
 * columns (1..3) and the target kind (auto, class, regression). */
#include "fuzz.h"

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int n_targets = 1 + data[0] % 3;
    pf_target_kind kind = (pf_target_kind)(data[0] / 3 % 3);
    const char *path = fuzz_file(0, data + 1, size - 1);
    pf_dataset d;
    pf_error err;
    pf_error_clear(&err);
    int rc = pf_csv_read(path, n_targets, kind, &d, &err);
    fuzz_check_error(rc, &err, path, NULL);
    if (rc == PF_OK) {
        if (!d.x || d.n == 0 || d.dim < 1 || !d.labels == !d.targets) abort();
        for (size_t i = 0; i < d.n * (size_t)d.dim; i++)
            if (!isfinite(d.x[i])) abort();
        for (size_t i = 0; d.labels && i < d.n; i++)
            if (d.labels[i] < 0 || d.labels[i] >= d.n_classes) abort();
    } else if (d.x || d.labels || d.targets) {
        abort();
    }
    pf_dataset_free(&d);
    return 0;
}

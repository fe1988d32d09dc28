/* pf_npy_read_dataset on two arbitrary files. Bytes 0-1 (little-endian)
 * say how many of the remaining bytes are the features file; the rest is
 * the targets file. Byte 2 picks the target kind. */
#include "fuzz.h"

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    size_t x_len = (size_t)data[0] | (size_t)data[1] << 8;
    pf_target_kind kind = (pf_target_kind)(data[2] % 3);
    data += 3, size -= 3;
    if (x_len > size) x_len = size;
    const char *x_path = fuzz_file(0, data, x_len);
    const char *y_path = fuzz_file(1, data + x_len, size - x_len);
    pf_dataset d;
    pf_error err;
    pf_error_clear(&err);
    int rc = pf_npy_read_dataset(x_path, y_path, kind, &d, &err);
    fuzz_check_error(rc, &err, x_path, y_path);
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

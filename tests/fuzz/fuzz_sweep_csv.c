/* pf_sweep_csv_read (a run folder's sweep.csv) on arbitrary text. */
#include "fuzz.h"
#include "run/tables.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(0, data, size);
    pf_point_result *rows = (pf_point_result *)&size;  /* must be reset */
    long n = -1;
    pf_error err;
    pf_error_clear(&err);
    int rc = pf_sweep_csv_read(path, &rows, &n, &err);
    fuzz_check_error(rc, &err, path, NULL);
    if (rc == PF_OK) {
        if (n < 0 || (n > 0 && !rows)) abort();
        for (long i = 0; i < n; i++)
            if (rows[i].point.direction != 1 && rows[i].point.direction != -1) abort();
    } else if (rows || n != 0) {
        abort();
    }
    free(rows);
    return 0;
}

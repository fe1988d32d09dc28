/* pf_sweep_state_read on arbitrary bytes. The model's parameter count is
 * taken from the file's own header field (capped), so the fuzzer can get
 * past the size check; the first byte's bit 0 says whether to fix up the
 * CRC-32 trailer, so it can get past the checksum too, and bit 1 makes the
 * count one off, for the mismatch path. */
#include "fuzz.h"

#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int mode = data[0];
    data++, size--;
    uint8_t *file = malloc(size + 1);
    if (!file) abort();
    memcpy(file, data, size);
    uint64_t n_params = 0;
    if (size >= 16) memcpy(&n_params, file + 8, 8);
    if (n_params > (1u << 20)) n_params = 1u << 20;
    if (mode & 2) n_params++;
    if ((mode & 1) && size >= 4) {
        uint32_t crc = (uint32_t)crc32(0L, file, (uInt)(size - 4));
        memcpy(file + size - 4, &crc, 4);
    }
    const char *path = fuzz_file(0, file, size);
    free(file);
    pf_sweep_state s;
    pf_error err;
    pf_error_clear(&err);
    int rc = pf_sweep_state_read(path, (size_t)n_params, &s, &err);
    fuzz_check_error(rc, &err, path, NULL);
    if (rc == PF_OK) {
        if (s.n_params != n_params || (n_params && !s.theta) || !s.m != !s.v) abort();
        pf_sweep_state_free(&s);
    } else if (s.theta || s.m || s.v) {
        abort();
    }
    return 0;
}

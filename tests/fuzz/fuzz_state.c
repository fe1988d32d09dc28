/* pf_state_read on arbitrary bytes, then every getter a resume uses. The
 * first byte's bit 0 says whether to fix up the CRC-32 trailer, so the
 * fuzzer can get past the checksum to the field table; the parameter count
 * asked of theta and the trainer fields is the file's own theta count
 * (capped), or one off it when bit 1 is set, for the mismatch paths. */
#include "fuzz.h"

#include <zlib.h>

#include "pathfinder/run.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int mode = data[0];
    data++, size--;
    uint8_t *file = malloc(size + 1);
    if (!file) abort();
    memcpy(file, data, size);
    if ((mode & 1) && size >= 4) {
        uint32_t crc = (uint32_t)crc32(0L, file, (uInt)(size - 4));
        for (int b = 0; b < 4; b++) file[size - 4 + b] = (uint8_t)(crc >> (8 * b));
    }
    const char *path = fuzz_file(0, file, size);
    free(file);
    pf_state *s = NULL;
    pf_error err;
    pf_error_clear(&err);
    int rc = pf_state_read(path, (mode & 4) ? "sweep" : NULL, &s, &err);
    fuzz_check_error(rc, &err, path, NULL);
    if (rc != PF_OK) {
        if (s) abort();
        return 0;
    }
    long n = pf_state_count(s, "theta", PF_STATE_F32);
    size_t np = n < 0 ? 0 : (size_t)n;
    if (np > (1u << 20)) np = 1u << 20;
    if (mode & 2) np++;
    float *theta = malloc((np ? np : 1) * sizeof *theta);
    if (!theta) abort();
    rc = pf_state_get(s, "theta", PF_STATE_F32, theta, np, &err);
    if (rc != PF_OK && rc != PF_EINPUT) abort();
    int64_t v;
    double d;
    char text[64];
    if (pf_state_get_i64(s, "next_index", &v, &err) > PF_EINPUT) abort();
    if (pf_state_get_f64(s, "length", &d, &err) > PF_EINPUT) abort();
    if (pf_state_get_str(s, "trainer.optimizer", text, sizeof text, &err) > PF_EINPUT) abort();
    pf_trainer_state ts;
    rc = pf_state_get_trainer(s, "trainer", np, &ts, &err);
    if (rc == PF_OK) pf_trainer_state_free(&ts);
    else if (ts.m || ts.v) abort();
    free(theta);
    pf_state_free(s);
    return 0;
}

/* pf_idx_read on arbitrary bytes, raw or gzip (told apart by content).
 *
 * Byte 0 is a mode. Bit 0 clear: the rest is the file as it is (which may
 * itself be gzip bytes). Bit 0 set: the harness gzips the rest itself, so
 * the fuzzer works on the decompressed IDX header and data rather than on
 * deflate bits it could not get past the CRC: bits 1-2 split it into 1 to
 * 3 gzip members (at the points bytes 1 and 2 give), and bit 3 cuts off
 * the last 1 to 8 bytes of the result (bits 4-6 say how many). */
#include "fuzz.h"

#include <math.h>
#include <zlib.h>

/* Append n bytes at src as one gzip member to out (capacity cap). */
static size_t gzip_member(const uint8_t *src, size_t n, uint8_t *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
    size_t len = cap - z.avail_out;
    deflateEnd(&z);
    return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int mode = data[0];
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    uint8_t *packed = NULL;
    if (mode & 1) {
        size_t cap = 3 * (n + 64) + 64, len = 0;
        if (!(packed = malloc(cap))) abort();
        int members = 1 + (mode >> 1 & 3) % 3;
        size_t cut[4] = {0, n, n, n};
        for (int m = 1; m < members; m++) cut[m] = n ? (size_t)body[(m - 1) % n] * n / 255 : 0;
        if (cut[2] < cut[1]) cut[2] = cut[1];
        cut[members] = n;
        for (int m = 0; m < members; m++)
            len += gzip_member(body + cut[m], cut[m + 1] - cut[m], packed + len, cap - len);
        if (mode & 8) {
            size_t drop = 1 + (size_t)(mode >> 4 & 7);
            len = len > drop ? len - drop : 0;
        }
        body = packed;
        n = len;
    }
    const char *path = fuzz_file(0, body, n);
    free(packed);
    pf_idx idx;
    pf_error err;
    pf_error_clear(&err);
    int rc = pf_idx_read(path, &idx, &err);
    fuzz_check_error(rc, &err, path, NULL);
    if (rc == PF_OK) {
        size_t count = 1;
        for (int i = 0; i < idx.rank; i++) count *= idx.dims[i];
        if (!idx.data || count != idx.count) abort();
        for (size_t i = 0; i < idx.count; i++)
            if (!isfinite(idx.data[i])) abort();
    } else if (idx.data) {
        abort();
    }
    pf_idx_free(&idx);
    return 0;
}

/* IDX arrays (the MNIST format), raw or gzip-compressed.
 *
 * Layout: 0x00 0x00 TYPE RANK, RANK big-endian uint32 dims, then the data,
 * big-endian. The header is checked against the file's (uncompressed) size
 * before anything is allocated: stat for raw files, the gzip ISIZE trailer
 * (size mod 2^32) for compressed ones, and the bytes really read afterwards.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "pathfinder/io.h"

static size_t elem_size(int type)
{
    switch (type) {
    case 0x08: case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C: case 0x0D: return 4;
    case 0x0E: return 8;
    default: return 0;
    }
}

static uint64_t be_uint(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

/* One big-endian element of the given type as a float. */
static float decode(const unsigned char *p, int type)
{
    switch (type) {
    case 0x08: return (float)p[0];
    case 0x09: return (float)(int8_t)p[0];
    case 0x0B: return (float)(int16_t)(uint16_t)be_uint(p, 2);
    case 0x0C: return (float)(int32_t)(uint32_t)be_uint(p, 4);
    case 0x0D: {
        uint32_t u = (uint32_t)be_uint(p, 4);
        float f;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    default: {
        uint64_t u = be_uint(p, 8);
        double d;
        memcpy(&d, &u, sizeof d);
        return (float)d;
    }
    }
}

/* zlib's message without the "path: " it puts in front. */
static const char *zlib_msg(gzFile gz, const char *path)
{
    int zerr;
    const char *m = gzerror(gz, &zerr);
    size_t n = strlen(path);
    return strncmp(m, path, n) == 0 && strncmp(m + n, ": ", 2) == 0 ? m + n + 2 : m;
}

/* Read exactly n bytes; a short read is reported as `what`, a zlib error
 * (a corrupt gzip stream fails the whole buffered block) as corrupt data. */
static int read_exact(gzFile gz, unsigned char *buf, size_t n, const char *path,
                      const char *what, pf_error *err)
{
    int got = gzread(gz, buf, (unsigned)n);
    if (got < 0)
        return pf_fail(err, PF_EINPUT, "%s: corrupt gzip data (%s)", path, zlib_msg(gz, path));
    if ((size_t)got != n) return pf_fail(err, PF_EINPUT, "%s: %s", path, what);
    return PF_OK;
}

/* Size of the file, and for gzip the uncompressed size mod 2^32 (ISIZE). */
static int probe_file(const char *path, int *is_gzip, uint64_t *size, pf_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return pf_fail(err, PF_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    unsigned char head[2] = {0, 0}, trailer[4];
    int rc = PF_OK;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = pf_fail(err, PF_EINPUT, "%s: not a regular file", path);
    } else if (st.st_size == 0) {
        rc = pf_fail(err, PF_EINPUT, "%s: empty file", path);
    } else {
        *is_gzip = fread(head, 1, 2, f) == 2 && head[0] == 0x1f && head[1] == 0x8b;
        *size = (uint64_t)st.st_size;
        if (*is_gzip) {
            if (st.st_size < 18 || fseek(f, -4, SEEK_END) != 0 || fread(trailer, 1, 4, f) != 4)
                rc = pf_fail(err, PF_EINPUT, "%s: truncated gzip file", path);
            else
                *size = (uint64_t)trailer[0] | (uint64_t)trailer[1] << 8 |
                        (uint64_t)trailer[2] << 16 | (uint64_t)trailer[3] << 24;
        }
    }
    fclose(f);
    return rc;
}

int pf_idx_read(const char *path, pf_idx *out, pf_error *err)
{
    memset(out, 0, sizeof *out);
    int is_gzip = 0;
    uint64_t file_size = 0;
    int rc = probe_file(path, &is_gzip, &file_size, err);
    if (rc) return rc;

    gzFile gz = gzopen(path, "rb");
    if (!gz) return pf_fail(err, PF_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    gzbuffer(gz, 1 << 17);  /* fewer, larger reads for the 47 MB MNIST images */

    unsigned char head[4 + 4 * 8];
    if ((rc = read_exact(gz, head, 4, path, "too short for an IDX header", err))) goto done;
    int type = head[2], rank = head[3];
    size_t esize = elem_size(type);
    if (head[0] != 0 || head[1] != 0) {
        rc = pf_fail(err, PF_EINPUT, "%s: not an IDX file (bad magic %02x %02x)", path,
                     head[0], head[1]);
        goto done;
    }
    if (esize == 0) {
        rc = pf_fail(err, PF_EINPUT, "%s: unknown IDX data type 0x%02x", path, type);
        goto done;
    }
    if (rank < 1 || rank > 8) {
        rc = pf_fail(err, PF_EINPUT, "%s: IDX rank %d outside 1..8", path, rank);
        goto done;
    }
    if ((rc = read_exact(gz, head + 4, 4 * (size_t)rank, path, "truncated IDX header", err)))
        goto done;

    /* count * esize must not overflow, nor count floats in memory. */
    size_t count = 1;
    size_t limit = SIZE_MAX / (esize > sizeof(float) ? esize : sizeof(float));
    for (int i = 0; i < rank; i++) {
        out->dims[i] = (uint32_t)be_uint(head + 4 + 4 * i, 4);
        if (out->dims[i] != 0 && count > limit / out->dims[i]) {
            rc = pf_fail(err, PF_EINPUT, "%s: IDX dimensions overflow the address space", path);
            goto done;
        }
        count *= out->dims[i];
    }
    uint64_t header = 4 + 4 * (uint64_t)rank, data_bytes = (uint64_t)count * esize;
    uint64_t expect = header + data_bytes;
    if (is_gzip ? (expect & 0xffffffffu) != file_size : expect != file_size) {
        uint64_t held = file_size > header ? file_size - header : 0;
        rc = pf_fail(err, PF_EINPUT,
                     "%s: header declares %llu bytes of data but file holds %llu%s", path,
                     (unsigned long long)data_bytes, (unsigned long long)held,
                     is_gzip ? " (by its gzip trailer, mod 2^32)" : "");
        goto done;
    }

    out->type = type;
    out->rank = rank;
    out->count = count;
    out->data = malloc(count * sizeof(float) + 1);
    if (!out->data) {
        rc = pf_fail(err, PF_ERUNTIME, "%s: out of memory for %zu values", path, count);
        goto done;
    }
    /* Decode in chunks so the raw bytes never need a second full-size buffer. */
    enum { CHUNK = 1 << 16 };
    unsigned char buf[CHUNK];
    size_t per_chunk = CHUNK / esize, done_count = 0;
    while (done_count < count) {
        size_t m = count - done_count < per_chunk ? count - done_count : per_chunk;
        if ((rc = read_exact(gz, buf, m * esize, path, "data ends before the declared size", err)))
            goto done;
        for (size_t i = 0; i < m; i++) out->data[done_count + i] = decode(buf + i * esize, type);
        done_count += m;
    }
    /* Reading past the end also makes zlib check the gzip CRC and length. */
    int extra = gzread(gz, buf, 1), zerr = Z_OK;
    gzerror(gz, &zerr);
    if (extra < 0 || zerr != Z_OK)
        rc = pf_fail(err, PF_EINPUT, "%s: corrupt gzip data (%s)", path, zlib_msg(gz, path));
    else if (extra > 0)
        rc = pf_fail(err, PF_EINPUT, "%s: trailing data after the declared array", path);

done:
    gzclose(gz);
    if (rc) pf_idx_free(out);
    return rc;
}

void pf_idx_free(pf_idx *idx)
{
    if (!idx) return;
    free(idx->data);
    memset(idx, 0, sizeof *idx);
}

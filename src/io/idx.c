/* IDX arrays (the MNIST format), raw or gzip-compressed.
 *
 * Layout: 0x00 0x00 TYPE RANK, RANK big-endian uint32 dims, then the data,
 * big-endian. The header is read first, from the decompressed stream. A raw
 * file's size must match it exactly before anything is allocated; a gzip
 * file's stream (one member or several, as `cat a.gz b.gz` makes) is inflated
 * in chunks into an array that grows as data arrives, up to the declared
 * size, and must end exactly there. The gzip ISIZE trailer (size mod 2^32,
 * of the last member only) is never trusted.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "pathfinder/io.h"

/* More declared data than this is refused; infiMNIST (6.4 GB of pixels) fits. */
#define MAX_DATA_BYTES (1ull << 36)
/* Deflate expands at most 1032:1 (zlib's FAQ), so a gzip file of n bytes
 * cannot hold more than 1032 n bytes, whatever its members. */
#define DEFLATE_MAX_RATIO 1032ull

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

/* One big-endian element of the given type. */
static double decode(const unsigned char *p, int type)
{
    switch (type) {
    case 0x08: return (double)p[0];
    case 0x09: return (double)(int8_t)p[0];
    case 0x0B: return (double)(int16_t)(uint16_t)be_uint(p, 2);
    case 0x0C: return (double)(int32_t)(uint32_t)be_uint(p, 4);
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
        return d;
    }
    }
}

/* zlib's message without the "<fd:N>: " it puts in front. */
static const char *zlib_msg(gzFile gz)
{
    int zerr;
    const char *m = gzerror(gz, &zerr), *sep = strstr(m, ">: ");
    return m[0] == '<' && sep ? sep + 3 : m;
}

static int zlib_failed(gzFile gz)
{
    int zerr = Z_OK;
    gzerror(gz, &zerr);
    return zerr != Z_OK;
}

/* Why a read came up short: zlib's error (a cut or corrupt stream), or a
 * clean end after `have` of the `want` data bytes. A corrupt stream fails a
 * whole buffered block, so `have` is only exact in the clean case. */
static int short_read(gzFile gz, const char *path, int is_gzip, uint64_t have, uint64_t want,
                      pf_error *err)
{
    int zerr = Z_OK;
    gzerror(gz, &zerr);
    if (zerr == Z_BUF_ERROR)
        return pf_fail(err, PF_EINPUT, "%s: truncated gzip data (%s)", path, zlib_msg(gz));
    if (zerr != Z_OK)
        return pf_fail(err, PF_EINPUT, "%s: corrupt gzip data (%s)", path, zlib_msg(gz));
    return pf_fail(err, PF_EINPUT, "%s: header declares %llu bytes of data but the %s holds %llu",
                   path, (unsigned long long)want, is_gzip ? "gzip stream" : "file",
                   (unsigned long long)have);
}

/* Decode m elements into out; IDX floats must be finite and fit a float. */
static int decode_chunk(const unsigned char *buf, size_t m, int type, float *out, size_t first,
                        const char *path, pf_error *err)
{
    size_t esize = elem_size(type);
    for (size_t i = 0; i < m; i++) {
        double v = decode(buf + i * esize, type);
        if (!isfinite(v) || fabs(v) > FLT_MAX)
            return pf_fail(err, PF_EINPUT, "%s: element %zu is %s; IDX values must be finite "
                           "floats", path, first + i, isnan(v) ? "NaN" : isinf(v) ? "Inf" :
                           "beyond float range");
        out[i] = (float)v;
    }
    return PF_OK;
}

int pf_idx_read(const char *path, pf_idx *out, pf_error *err)
{
    memset(out, 0, sizeof *out);
    int fd;
    uint64_t file_size = 0;
    int rc = pf_open_input_fd(path, &fd, &file_size, err);
    if (rc) return rc;
    if (file_size == 0) {
        close(fd);
        return pf_fail(err, PF_EINPUT, "%s: empty file", path);
    }
    unsigned char magic[2] = {0, 0};
    int is_gzip = pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    gzFile gz = gzdopen(fd, "rb");  /* a raw file passes through unchanged */
    if (!gz) {
        close(fd);
        return pf_fail(err, PF_ERUNTIME, "%s: out of memory opening it", path);
    }
    gzbuffer(gz, 1 << 17);  /* fewer, larger reads for the 47 MB MNIST images */

    /* The header comes first, from the (decompressed) stream itself. */
    unsigned char head[4 + 4 * 8];
    int got = gzread(gz, head, 4);
    if (got != 4) {
        rc = zlib_failed(gz) ? short_read(gz, path, is_gzip, 0, 4, err)
                             : pf_fail(err, PF_EINPUT, "%s: too short for an IDX header", path);
        goto done;
    }
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
    size_t dims_len = 4 * (size_t)rank;
    if (gzread(gz, head + 4, (unsigned)dims_len) != (int)dims_len) {
        rc = zlib_failed(gz) ? short_read(gz, path, is_gzip, 0, dims_len, err)
                             : pf_fail(err, PF_EINPUT, "%s: truncated IDX header", path);
        goto done;
    }

    /* The declared size, in 64 bits, must stay under MAX_DATA_BYTES. */
    uint64_t count = 1;
    for (int i = 0; i < rank; i++) {
        out->dims[i] = (uint32_t)be_uint(head + 4 + 4 * i, 4);
        if (out->dims[i] != 0 && count > MAX_DATA_BYTES / esize / out->dims[i]) {
            rc = pf_fail(err, PF_EINPUT, "%s: IDX dimensions overflow the limit of %llu bytes "
                         "of data", path, (unsigned long long)MAX_DATA_BYTES);
            goto done;
        }
        count *= out->dims[i];
    }
    uint64_t header = 4 + dims_len, data_bytes = count * esize;
    if (count > SIZE_MAX / sizeof(float)) {
        rc = pf_fail(err, PF_EINPUT, "%s: %llu values do not fit in memory", path,
                     (unsigned long long)count);
        goto done;
    }
    if (!is_gzip && header + data_bytes != file_size) {
        rc = pf_fail(err, PF_EINPUT, "%s: header declares %llu bytes of data but file holds %llu",
                     path, (unsigned long long)data_bytes,
                     (unsigned long long)(file_size > header ? file_size - header : 0));
        goto done;
    }
    /* The gzip trailer's size is mod 2^32 (and per member): useless here.
     * What deflate can expand to bounds a lying header instead. */
    if (is_gzip && header + data_bytes > file_size * DEFLATE_MAX_RATIO) {
        rc = pf_fail(err, PF_EINPUT, "%s: header declares %llu bytes of data but a gzip file of "
                     "%llu bytes holds at most %llu", path, (unsigned long long)data_bytes,
                     (unsigned long long)file_size,
                     (unsigned long long)(file_size * DEFLATE_MAX_RATIO - header));
        goto done;
    }

    out->type = type;
    out->rank = rank;
    out->count = (size_t)count;
    /* Decode in chunks, growing the array as data really arrives, so a
     * header that lies costs no more memory than the data behind it. */
    enum { CHUNK = 1 << 16 };
    unsigned char buf[CHUNK];
    size_t per_chunk = CHUNK / esize, done_count = 0, cap = 0;
    while (done_count < count) {
        size_t m = count - done_count < per_chunk ? count - done_count : per_chunk;
        got = gzread(gz, buf, (unsigned)(m * esize));
        if (got < 0 || (size_t)got != m * esize) {
            rc = short_read(gz, path, is_gzip, done_count * esize + (got > 0 ? (size_t)got : 0),
                            data_bytes, err);
            goto done;
        }
        if (done_count + m > cap) {
            size_t want = cap ? 2 * cap : (size_t)1 << 16;
            cap = want < count ? want : (size_t)count;
            float *grown = realloc(out->data, cap * sizeof(float) + 1);
            if (!grown) {
                rc = pf_fail(err, PF_ERUNTIME, "%s: out of memory for %zu values", path, cap);
                goto done;
            }
            out->data = grown;
        }
        if ((rc = decode_chunk(buf, m, type, out->data + done_count, done_count, path, err)))
            goto done;
        done_count += m;
    }
    if (!out->data && !(out->data = malloc(1))) {  /* a zero-size array */
        rc = pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
        goto done;
    }
    /* Reading past the end makes zlib check the last member's CRC and
     * length; more data after the array (say, in one more member) is an error. */
    got = gzread(gz, buf, 1);
    if (got < 0 || zlib_failed(gz))
        rc = short_read(gz, path, is_gzip, data_bytes, data_bytes, err);
    else if (got > 0)
        rc = pf_fail(err, PF_EINPUT, "%s: header declares %llu bytes of data but the %s holds "
                     "more", path, (unsigned long long)data_bytes,
                     is_gzip ? "gzip stream" : "file");

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

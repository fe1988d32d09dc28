/* State files: what a run needs to continue exactly where it stopped.
 *
 * One format serves every resumable run (sweep, connect, probe). It is
 * little-endian and versioned, and holds named fields, each written with
 * its type and element count, never as a raw struct:
 *
 *   magic    8 bytes   "PFSTATE\0"
 *   version  u32       PF_STATE_VERSION
 *   kind     u32 n, n bytes          what wrote it ("sweep", "path")
 *   fields   u32 count, then per field:
 *              u16 n, n bytes        name
 *              u8                    type (pf_state_type)
 *              u64                   element count
 *              count * size bytes    elements, little-endian
 *   crc      u32       CRC-32 (zlib's) of every byte before it
 *
 * A reader checks the size, the magic, the CRC and the version before it
 * believes anything, and then asks for fields by name, type and count, so
 * a missing or mis-sized field is an error naming the file and the field.
 * The state files of pathfinder 0.1 (magics PFSTATE1 and PFPATH1) are
 * recognized and refused with a message.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/io.h"
#include "pathfinder/run.h"

static const char state_magic[8] = {'P', 'F', 'S', 'T', 'A', 'T', 'E', '\0'};

typedef struct {
    char *name;
    pf_state_type type;
    uint64_t count;
    size_t offset;   /* of the elements in data */
} field;

struct pf_state {
    char kind[64];
    char path[512];        /* the file it was read from, for messages */
    field *fields;
    size_t n_fields, cap_fields;
    unsigned char *data;   /* elements of every field, in host order */
    size_t len, cap;
    int oom;
};

static size_t type_size(pf_state_type t)
{
    switch (t) {
    case PF_STATE_BYTES: return 1;
    case PF_STATE_I64:
    case PF_STATE_U64:
    case PF_STATE_F64: return 8;
    case PF_STATE_F32: return 4;
    }
    return 0;
}

static const char *type_name(pf_state_type t)
{
    switch (t) {
    case PF_STATE_BYTES: return "bytes";
    case PF_STATE_I64: return "int64";
    case PF_STATE_U64: return "uint64";
    case PF_STATE_F64: return "float64";
    case PF_STATE_F32: return "float32";
    }
    return "?";
}

pf_state *pf_state_new(const char *kind)
{
    pf_state *s = calloc(1, sizeof *s);
    if (s) snprintf(s->kind, sizeof s->kind, "%s", kind);
    return s;
}

void pf_state_free(pf_state *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n_fields; i++) free(s->fields[i].name);
    free(s->fields);
    free(s->data);
    free(s);
}

const char *pf_state_kind(const pf_state *s) { return s->kind; }

static const field *find(const pf_state *s, const char *name)
{
    for (size_t i = 0; i < s->n_fields; i++)
        if (strcmp(s->fields[i].name, name) == 0) return &s->fields[i];
    return NULL;
}

static void add(pf_state *s, const char *name, pf_state_type type, const void *v, size_t count)
{
    if (s->oom) return;
    size_t bytes = count * type_size(type), name_len = strlen(name);
    if (name_len == 0 || name_len > 0xffff || find(s, name)) {
        s->oom = 1;   /* a programming error: surfaces when the state is written */
        return;
    }
    if (s->n_fields == s->cap_fields) {
        size_t cap = s->cap_fields ? 2 * s->cap_fields : 16;
        field *f = realloc(s->fields, cap * sizeof *f);
        if (!f) {
            s->oom = 1;
            return;
        }
        s->fields = f;
        s->cap_fields = cap;
    }
    if (s->len + bytes > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + bytes) cap *= 2;
        unsigned char *d = realloc(s->data, cap);
        if (!d) {
            s->oom = 1;
            return;
        }
        s->data = d;
        s->cap = cap;
    }
    char *copy = malloc(name_len + 1);
    if (!copy) {
        s->oom = 1;
        return;
    }
    memcpy(copy, name, name_len + 1);
    if (bytes) memcpy(s->data + s->len, v, bytes);
    s->fields[s->n_fields++] = (field){copy, type, count, s->len};
    s->len += bytes;
}

void pf_state_put(pf_state *s, const char *name, pf_state_type type, const void *v, size_t count)
{
    add(s, name, type, v, count);
}

void pf_state_put_i64(pf_state *s, const char *name, int64_t v) { add(s, name, PF_STATE_I64, &v, 1); }
void pf_state_put_f64(pf_state *s, const char *name, double v) { add(s, name, PF_STATE_F64, &v, 1); }
void pf_state_put_str(pf_state *s, const char *name, const char *v)
{
    add(s, name, PF_STATE_BYTES, v, strlen(v));
}

/* ---- encoding ------------------------------------------------------------------ */

static int host_is_little(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Copy count elements of size bytes, swapping byte order unless the host is
 * little-endian (the file always is). */
static void copy_le(unsigned char *dst, const unsigned char *src, size_t count, size_t size)
{
    if (host_is_little() || size == 1) {
        memcpy(dst, src, count * size);
        return;
    }
    for (size_t i = 0; i < count; i++)
        for (size_t b = 0; b < size; b++) dst[i * size + b] = src[i * size + size - 1 - b];
}

static void put_uint(unsigned char **q, uint64_t v, int bytes)
{
    for (int b = 0; b < bytes; b++) *(*q)++ = (unsigned char)(v >> (8 * b));
}

int pf_state_write(const pf_state *s, const char *path, pf_error *err)
{
    if (s->oom) return pf_fail(err, PF_ERUNTIME, "%s: out of memory building the state", path);
    size_t kind_len = strlen(s->kind), total = 8 + 4 + 4 + kind_len + 4 + 4;
    for (size_t i = 0; i < s->n_fields; i++)
        total += 2 + strlen(s->fields[i].name) + 1 + 8 +
                 (size_t)s->fields[i].count * type_size(s->fields[i].type);
    unsigned char *buf = malloc(total), *q = buf;
    if (!buf) return pf_fail(err, PF_ERUNTIME, "%s: out of memory for %zu bytes", path, total);
    memcpy(q, state_magic, 8), q += 8;
    put_uint(&q, PF_STATE_VERSION, 4);
    put_uint(&q, kind_len, 4);
    memcpy(q, s->kind, kind_len), q += kind_len;
    put_uint(&q, s->n_fields, 4);
    for (size_t i = 0; i < s->n_fields; i++) {
        const field *f = &s->fields[i];
        size_t name_len = strlen(f->name), size = type_size(f->type);
        put_uint(&q, name_len, 2);
        memcpy(q, f->name, name_len), q += name_len;
        *q++ = (unsigned char)f->type;
        put_uint(&q, f->count, 8);
        copy_le(q, s->data + f->offset, (size_t)f->count, size);
        q += (size_t)f->count * size;
    }
    put_uint(&q, pf_crc32(0, buf, (size_t)(q - buf)), 4);
    int rc = pf_write_file_atomic(path, buf, (size_t)(q - buf), err);
    free(buf);
    return rc;
}

/* ---- decoding ------------------------------------------------------------------ */

static uint64_t get_uint(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int b = 0; b < bytes; b++) v |= (uint64_t)p[b] << (8 * b);
    return v;
}

/* Names (the kind, the fields) are printable ASCII without spaces, so an
 * error message that quotes one stays one line. */
static int is_name(const char *s, size_t n)
{
    if (n == 0 || strlen(s) != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~') return 0;
    return 1;
}

int pf_state_read(const char *path, const char *kind, pf_state **out, pf_error *err)
{
    *out = NULL;
    char *text;
    size_t n;
    int rc = pf_read_file(path, &text, &n, (size_t)1 << 40, err);
    if (rc) return rc;
    const unsigned char *buf = (const unsigned char *)text, *p = buf, *end;
    pf_state *s = NULL;
    if (n >= 8 && (memcmp(buf, "PFSTATE1", 8) == 0 || memcmp(buf, "PFPATH1", 8) == 0)) {
        rc = pf_fail(err, PF_EINPUT, "%s: a state file of pathfinder 0.1, which this version does not "
                     "read; delete it to start the run afresh", path);
        goto done;
    }
    if (n < 8 + 4 + 4 + 4 + 4 || memcmp(buf, state_magic, 8) != 0) {
        rc = pf_fail(err, PF_EINPUT, "%s: not a pathfinder state file", path);
        goto done;
    }
    if ((uint32_t)get_uint(buf + n - 4, 4) != pf_crc32(0, buf, n - 4)) {
        rc = pf_fail(err, PF_EINPUT, "%s: truncated or corrupted state (checksum mismatch)", path);
        goto done;
    }
    end = buf + n - 4;
    p = buf + 8;
    uint32_t version = (uint32_t)get_uint(p, 4);
    p += 4;
    if (version != PF_STATE_VERSION) {
        rc = pf_fail(err, PF_EINPUT, "%s: state format version %u; this pathfinder reads version %d",
                     path, version, PF_STATE_VERSION);
        goto done;
    }
#define NEED(k)                                                                 \
    do {                                                                        \
        if ((size_t)(end - p) < (size_t)(k)) {                                  \
            rc = pf_fail(err, PF_EINPUT, "%s: malformed state (short field table)", path); \
            goto done;                                                          \
        }                                                                       \
    } while (0)
    NEED(4);
    uint64_t kind_len = get_uint(p, 4);
    p += 4;
    NEED(kind_len);
    char got_kind[64];
    snprintf(got_kind, sizeof got_kind, "%.*s", (int)(kind_len < 63 ? kind_len : 63), (const char *)p);
    p += kind_len;
    if (!is_name(got_kind, kind_len)) {
        rc = pf_fail(err, PF_EINPUT, "%s: malformed state (its kind is not a name)", path);
        goto done;
    }
    if (kind && strcmp(got_kind, kind) != 0) {
        rc = pf_fail(err, PF_EINPUT, "%s: the state of a %s, not of a %s", path, got_kind, kind);
        goto done;
    }
    s = pf_state_new(got_kind);
    if (!s) {
        rc = pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
        goto done;
    }
    NEED(4);
    uint64_t count = get_uint(p, 4);
    p += 4;
    for (uint64_t i = 0; i < count; i++) {
        NEED(2);
        size_t name_len = (size_t)get_uint(p, 2);
        p += 2;
        NEED(name_len + 1 + 8);
        char name[0x10000];
        memcpy(name, p, name_len);
        name[name_len] = '\0';
        p += name_len;
        pf_state_type type = (pf_state_type)*p++;
        uint64_t elems = get_uint(p, 8);
        p += 8;
        size_t size = type_size(type);
        if (size == 0 || !is_name(name, name_len) || find(s, name)) {
            rc = pf_fail(err, PF_EINPUT, "%s: malformed state (field %llu)", path, (unsigned long long)i);
            goto done;
        }
        if (elems > (uint64_t)(end - p) / size) {
            rc = pf_fail(err, PF_EINPUT, "%s: malformed state (field '%s' runs past the end)", path, name);
            goto done;
        }
        size_t bytes = (size_t)elems * size;
        unsigned char *tmp = malloc(bytes ? bytes : 1);
        if (!tmp) {
            rc = pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
            goto done;
        }
        copy_le(tmp, p, (size_t)elems, size);
        add(s, name, type, tmp, (size_t)elems);
        free(tmp);
        p += bytes;
        if (s->oom) {
            rc = pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
            goto done;
        }
    }
    if (p != end) {
        rc = pf_fail(err, PF_EINPUT, "%s: malformed state (%zu bytes after the last field)", path,
                     (size_t)(end - p));
        goto done;
    }
#undef NEED
    snprintf(s->path, sizeof s->path, "%s", path);
    *out = s;
    s = NULL;
done:
    pf_state_free(s);
    free(text);
    return rc;
}

long pf_state_count(const pf_state *s, const char *name, pf_state_type type)
{
    const field *f = find(s, name);
    return f && f->type == type ? (long)f->count : -1;
}

int pf_state_get(const pf_state *s, const char *name, pf_state_type type, void *v, size_t count,
                 pf_error *err)
{
    const field *f = find(s, name);
    const char *where = s->path[0] ? s->path : "state";
    if (!f) return pf_fail(err, PF_EINPUT, "%s: field '%s' is missing", where, name);
    if (f->type != type || f->count != count)
        return pf_fail(err, PF_EINPUT, "%s: field '%s' holds %llu %s values, expected %zu %s", where,
                       name, (unsigned long long)f->count, type_name(f->type), count, type_name(type));
    if (count) memcpy(v, s->data + f->offset, count * type_size(type));
    return PF_OK;
}

const void *pf_state_data(const pf_state *s, const char *name, pf_state_type type, size_t *count)
{
    const field *f = find(s, name);
    if (!f || f->type != type) return NULL;
    if (count) *count = (size_t)f->count;
    return s->data + f->offset;
}

int pf_state_get_i64(const pf_state *s, const char *name, int64_t *v, pf_error *err)
{
    return pf_state_get(s, name, PF_STATE_I64, v, 1, err);
}

int pf_state_get_f64(const pf_state *s, const char *name, double *v, pf_error *err)
{
    return pf_state_get(s, name, PF_STATE_F64, v, 1, err);
}

int pf_state_get_str(const pf_state *s, const char *name, char *v, size_t n, pf_error *err)
{
    size_t count;
    const char *d = pf_state_data(s, name, PF_STATE_BYTES, &count);
    const char *where = s->path[0] ? s->path : "state";
    if (!d) return pf_fail(err, PF_EINPUT, "%s: text field '%s' is missing", where, name);
    if (count >= n) return pf_fail(err, PF_EINPUT, "%s: field '%s' is too long", where, name);
    memcpy(v, d, count);
    v[count] = '\0';
    return PF_OK;
}

/* ---- trainers ------------------------------------------------------------------ */

static void field_name(char *buf, size_t n, const char *prefix, const char *name)
{
    snprintf(buf, n, "%s.%s", prefix, name);
}

void pf_state_put_trainer(pf_state *s, const char *prefix, const pf_trainer_state *ts)
{
    char name[128];
    field_name(name, sizeof name, prefix, "optimizer");
    pf_state_put_str(s, name, pf_opt_name(ts->kind));
    field_name(name, sizeof name, prefix, "step");
    pf_state_put_i64(s, name, ts->step);
    field_name(name, sizeof name, prefix, "rng");
    pf_state_put(s, name, PF_STATE_U64, ts->rng.s, 4);
    if (ts->m) {
        field_name(name, sizeof name, prefix, "m");
        pf_state_put(s, name, PF_STATE_F32, ts->m, ts->n);
    }
    if (ts->v) {
        field_name(name, sizeof name, prefix, "v");
        pf_state_put(s, name, PF_STATE_F32, ts->v, ts->n);
    }
    if (ts->modes) {
        field_name(name, sizeof name, prefix, "modes");
        pf_state_put(s, name, PF_STATE_F64, ts->modes, 2 * ts->n);
    }
}

int pf_state_get_trainer(const pf_state *s, const char *prefix, size_t n_params,
                         pf_trainer_state *ts, pf_error *err)
{
    memset(ts, 0, sizeof *ts);
    char name[128], kind[32];
    int64_t step;
    field_name(name, sizeof name, prefix, "optimizer");
    int rc = pf_state_get_str(s, name, kind, sizeof kind, err);
    if (rc) return rc;
    if (pf_opt_from_name(kind, &ts->kind))
        return pf_fail(err, PF_EINPUT, "%s: unknown optimizer '%s'", s->path, kind);
    field_name(name, sizeof name, prefix, "step");
    if ((rc = pf_state_get_i64(s, name, &step, err))) return rc;
    ts->step = (long)step;
    field_name(name, sizeof name, prefix, "rng");
    if ((rc = pf_state_get(s, name, PF_STATE_U64, ts->rng.s, 4, err))) return rc;
    ts->n = n_params;
    const char *bufs[2] = {"m", "v"};
    for (int b = 0; b < 2; b++) {
        field_name(name, sizeof name, prefix, bufs[b]);
        if (pf_state_count(s, name, PF_STATE_F32) < 0) continue;
        float **dst = b == 0 ? &ts->m : &ts->v;
        *dst = malloc((n_params ? n_params : 1) * sizeof **dst);
        if (!*dst) rc = pf_fail(err, PF_ERUNTIME, "%s: out of memory", s->path);
        if (!rc) rc = pf_state_get(s, name, PF_STATE_F32, *dst, n_params, err);
        if (rc) {
            pf_trainer_state_free(ts);
            return rc;
        }
    }
    field_name(name, sizeof name, prefix, "modes");
    if (pf_state_count(s, name, PF_STATE_F64) >= 0) {
        ts->modes = malloc((n_params ? 2 * n_params : 1) * sizeof *ts->modes);
        if (!ts->modes) rc = pf_fail(err, PF_ERUNTIME, "%s: out of memory", s->path);
        if (!rc) rc = pf_state_get(s, name, PF_STATE_F64, ts->modes, 2 * n_params, err);
        if (rc) {
            pf_trainer_state_free(ts);
            return rc;
        }
    }
    return PF_OK;
}

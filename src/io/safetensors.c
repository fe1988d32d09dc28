/* Checkpoints as safetensors, the format PyTorch users load with
 * safetensors.torch.load_file:
 *
 *   u64 N (little-endian) | N bytes of JSON header | data buffer
 *
 * The header maps each tensor name to {"dtype", "shape", "data_offsets"}
 * (offsets relative to the data buffer) and may hold "__metadata__", a map of
 * strings. We lay files out exactly as the reference library does: metadata
 * first, tensors sorted by name (all F32, so alignment does not reorder
 * them), compact JSON padded with spaces to a multiple of 8 bytes, and a data
 * buffer that tensors cover without holes.
 *
 * The reader trusts nothing in the file: every size and offset is checked in
 * 64-bit arithmetic against the real file size before anything is copied.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "pathfinder/io.h"

#define MAX_TENSORS (2 * (PF_MAX_LAYERS + PF_MAX_STAGES))
/* conv<k> tensors are layer PF_MAX_LAYERS + k in the tables below */
#define CONV_LAYER(k) (PF_MAX_LAYERS + (k))
/* The reference library refuses larger headers; so do we. */
#define MAX_HEADER_BYTES 100000000ull
/* Whole checkpoints are read into memory; beyond this something is wrong. */
#define MAX_FILE_BYTES (4ull << 30)
/* Largest integer a JSON number (a double) holds exactly. */
#define MAX_EXACT_INT 9007199254740992.0

/* ------------------------------------------------------------- helpers */

/* "PATH: problem" as a PF_EINPUT error. */
static int bad(pf_error *err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(pf_error *err, const char *path, const char *fmt, ...)
{
    char what[448];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    /* Names and values quoted from the header may hold control characters
     * (JSON's \n); the message stays one line. */
    for (char *c = what; *c; c++)
        if ((unsigned char)*c < 0x20) *c = '?';
    return pf_fail(err, PF_EINPUT, "%s: %s", path, what);
}

static void store_le32(unsigned char *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    p[0] = (unsigned char)u;
    p[1] = (unsigned char)(u >> 8);
    p[2] = (unsigned char)(u >> 16);
    p[3] = (unsigned char)(u >> 24);
}

static float load_le32(const unsigned char *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Strict UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF) and
 * no NUL bytes: what the reference library and Python's json accept. */
static int valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c == 0) return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c == 0xE0) len = 3, lo = 0xA0;
        else if (c == 0xED) len = 3, hi = 0x9F;
        else if (c >= 0xE1 && c <= 0xEF) len = 3;
        else if (c == 0xF0) len = 4, lo = 0x90;
        else if (c == 0xF4) len = 4, hi = 0x8F;
        else if (c >= 0xF1 && c <= 0xF3) len = 4;
        else return 0;
        if (n - i < len) return 0;
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t k = 2; k < len; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
        i += len;
    }
    return 1;
}

/* A JSON number that is a non-negative integer a double holds exactly. */
static int json_uint(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item)) return 0;
    double d = item->valuedouble;
    if (!(d >= 0.0 && d <= MAX_EXACT_INT) || d != floor(d)) return 0;
    *out = (uint64_t)d;
    return 1;
}

/* "fc<k>.weight" / "fc<k>.bias" with k = 1..PF_MAX_LAYERS written without
 * leading zeros. Returns k, or 0 if the name is something else, or -1 if k
 * is a valid number beyond PF_MAX_LAYERS. */
static int parse_tensor_name(const char *name, int *is_bias)
{
    int conv = strncmp(name, "conv", 4) == 0;
    if (strncmp(name, "fc", 2) != 0 && !conv) return 0;
    const char *p = name + (conv ? 4 : 2);
    if (*p < '1' || *p > '9') return 0;
    long k = 0;
    while (*p >= '0' && *p <= '9') {
        if (k < 1000000) k = k * 10 + (*p - '0');
        p++;
    }
    if (strcmp(p, ".weight") == 0) *is_bias = 0;
    else if (strcmp(p, ".bias") == 0) *is_bias = 1;
    else return 0;
    if (conv) return k > PF_MAX_STAGES ? -1 : CONV_LAYER((int)k);
    return k > PF_MAX_LAYERS ? -1 : (int)k;
}

/* ------------------------------------------------------------- writing */

typedef struct {
    char name[32];      /* "fc12.weight" */
    int rank;
    int shape[4];
    size_t theta_off;   /* where its values start in theta */
    size_t count;       /* number of floats */
} out_tensor;

static int cmp_out_tensor(const void *a, const void *b)
{
    return strcmp(((const out_tensor *)a)->name, ((const out_tensor *)b)->name);
}

static int add_string(cJSON *obj, const char *key, const char *value)
{
    return cJSON_AddStringToObject(obj, key, value) != NULL;
}

/* Members of meta->extra become more string metadata: strings as they are,
 * numbers as the shortest text that reads back to the same double, anything
 * else as compact JSON. Keys we already set keep our value. */
static int add_extra(cJSON *md, const char *extra, const char *path, pf_error *err)
{
    cJSON *obj = cJSON_Parse(extra);
    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        return pf_fail(err, PF_EINPUT, "%s: extra metadata is not a JSON object: %.200s",
                       path, extra);
    }
    int ok = 1;
    for (cJSON *m = obj->child; m && ok; m = m->next) {
        if (!m->string || cJSON_GetObjectItemCaseSensitive(md, m->string)) continue;
        if (cJSON_IsString(m)) {
            ok = add_string(md, m->string, m->valuestring);
        } else if (cJSON_IsNumber(m)) {
            char num[32];
            snprintf(num, sizeof num, "%.15g", m->valuedouble);
            if (strtod(num, NULL) != m->valuedouble)
                snprintf(num, sizeof num, "%.17g", m->valuedouble);
            ok = add_string(md, m->string, num);
        } else {
            char *text = cJSON_PrintUnformatted(m);
            ok = text && add_string(md, m->string, text);
            cJSON_free(text);
        }
    }
    cJSON_Delete(obj);
    if (!ok) return pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
    return PF_OK;
}

/* The JSON header (without padding) for the tensors in t[0..n), which must
 * already be sorted, with data offsets assigned in that order. */
static char *build_header(const pf_arch *arch, const pf_ckpt_meta *meta,
                          const out_tensor *t, int n, const char *path, pf_error *err)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *md = cJSON_AddObjectToObject(root, "__metadata__");
    char sizes[256], acts[256], num[64];
    pf_arch_sizes_str(arch, sizes, sizeof sizes);
    pf_arch_acts_str(arch, acts, sizeof acts);
    int ok = md != NULL;
    ok = ok && add_string(md, "format", "pt");
    ok = ok && add_string(md, "pathfinder_version", PF_VERSION);
    ok = ok && add_string(md, "architecture", sizes);
    ok = ok && add_string(md, "activations", acts);
    ok = ok && add_string(md, "bias", arch->bias ? "true" : "false");
    ok = ok && add_string(md, "loss", pf_loss_name(arch->loss));
    snprintf(num, sizeof num, "%.17g", meta ? meta->beta : 0.0);
    ok = ok && add_string(md, "beta", num);
    ok = ok && add_string(md, "anchor", meta ? meta->anchor : "origin");
    snprintf(num, sizeof num, "%" PRIu64, meta ? meta->seed : 0);
    ok = ok && add_string(md, "seed", num);
    ok = ok && add_string(md, "dataset", meta ? meta->dataset : "");
    if (!ok) {
        cJSON_Delete(root);
        pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
        return NULL;
    }
    if (meta && meta->extra && meta->extra[0] && add_extra(md, meta->extra, path, err) != PF_OK) {
        cJSON_Delete(root);
        return NULL;
    }

    uint64_t offset = 0;
    for (int i = 0; i < n && ok; i++) {
        cJSON *entry = cJSON_AddObjectToObject(root, t[i].name);
        int shape[4] = {t[i].shape[0], t[i].shape[1], t[i].shape[2], t[i].shape[3]};
        uint64_t end = offset + 4 * (uint64_t)t[i].count;
        ok = entry && cJSON_AddStringToObject(entry, "dtype", "F32") &&
             cJSON_AddItemToObject(entry, "shape", cJSON_CreateIntArray(shape, t[i].rank)) &&
             cJSON_AddItemToObject(entry, "data_offsets", cJSON_CreateArray());
        if (ok) {
            cJSON *offs = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
            ok = cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)offset)) &&
                 cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)end));
        }
        offset = end;
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text) {
        pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
        return NULL;
    }
    /* Metadata strings come from the caller (paths, extra): keep the header
     * valid UTF-8, or no other reader would open the file. */
    if (!valid_utf8((const unsigned char *)text, strlen(text))) {
        cJSON_free(text);
        pf_fail(err, PF_EINPUT, "%s: metadata is not valid UTF-8", path);
        return NULL;
    }
    return text;
}

int pf_ckpt_write(const char *path, const pf_arch *arch, const float *theta,
                  const pf_ckpt_meta *meta, pf_error *err)
{
    if (arch->n_layers < 1 || arch->n_layers > PF_MAX_LAYERS)
        return pf_fail(err, PF_EINPUT, "%s: architecture has %d layers", path,
                       arch->n_layers);
    if ((uint64_t)arch->n_params > (MAX_FILE_BYTES - MAX_HEADER_BYTES) / 4)
        return pf_fail(err, PF_EINPUT, "%s: %zu parameters do not fit a checkpoint", path,
                       arch->n_params);

    out_tensor t[MAX_TENSORS];
    int n = 0;
    for (int i = 0, k = 1; i < arch->n_stages; i++) {
        const pf_stage *st = &arch->stage[i];
        if (st->kind != PF_STAGE_CONV) continue;
        out_tensor *w = &t[n++];
        memset(w, 0, sizeof *w);
        snprintf(w->name, sizeof w->name, "conv%d.weight", k);
        w->rank = 4;
        w->shape[0] = st->conv.out_c, w->shape[1] = st->conv.in_c;
        w->shape[2] = w->shape[3] = st->conv.k;
        w->theta_off = st->w_off;
        w->count = (size_t)st->conv.out_c * st->conv.in_c * st->conv.k * st->conv.k;
        if (arch->bias) {
            out_tensor *b = &t[n++];
            memset(b, 0, sizeof *b);
            snprintf(b->name, sizeof b->name, "conv%d.bias", k);
            b->rank = 1;
            b->shape[0] = st->conv.out_c;
            b->theta_off = st->b_off;
            b->count = (size_t)st->conv.out_c;
        }
        k++;
    }
    for (int l = 0; l < arch->n_layers; l++) {
        out_tensor *w = &t[n++];
        memset(w, 0, sizeof *w);
        snprintf(w->name, sizeof w->name, "fc%d.weight", l + 1);
        w->rank = 2;
        w->shape[0] = arch->sizes[l + 1];
        w->shape[1] = arch->sizes[l];
        w->theta_off = arch->w_off[l];
        w->count = (size_t)arch->sizes[l + 1] * (size_t)arch->sizes[l];
        if (arch->bias) {
            out_tensor *b = &t[n++];
            memset(b, 0, sizeof *b);
            snprintf(b->name, sizeof b->name, "fc%d.bias", l + 1);
            b->rank = 1;
            b->shape[0] = arch->sizes[l + 1];
            b->shape[1] = 0;
            b->theta_off = arch->b_off[l];
            b->count = (size_t)arch->sizes[l + 1];
        }
    }
    /* A NaN or Inf written now would make a file our own reader refuses. */
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < t[i].count; j++) {
            float v = theta[t[i].theta_off + j];
            if (!isfinite(v))
                return pf_fail(err, PF_ERUNTIME,
                               "%s: tensor %s holds %s at index %zu; not writing it", path,
                               t[i].name, isnan(v) ? "NaN" : "Inf", j);
        }
    qsort(t, (size_t)n, sizeof t[0], cmp_out_tensor);

    char *header = build_header(arch, meta, t, n, path, err);
    if (!header) return err ? err->code : PF_ERUNTIME;
    size_t hlen = strlen(header);
    size_t hpad = (hlen + 7) / 8 * 8;
    size_t total = 8 + hpad + 4 * arch->n_params;
    unsigned char *buf = malloc(total);
    if (!buf) {
        cJSON_free(header);
        return pf_fail(err, PF_ERUNTIME, "%s: out of memory (%zu bytes)", path, total);
    }
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hpad >> (8 * i));
    memcpy(buf + 8, header, hlen);
    memset(buf + 8 + hlen, ' ', hpad - hlen);
    cJSON_free(header);

    unsigned char *p = buf + 8 + hpad;
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < t[i].count; j++, p += 4)
            store_le32(p, theta[t[i].theta_off + j]);

    int rc = pf_write_file_atomic(path, buf, total, err);
    free(buf);
    return rc;
}

/* ------------------------------------------------------------- reading */

typedef struct {
    const char *name;       /* points into the parsed header */
    int layer;              /* 1-based */
    int is_bias;
    int rank;
    uint64_t shape[4];
    uint64_t begin, end;    /* byte offsets into the data buffer */
} in_tensor;

static int cmp_in_tensor(const void *a, const void *b)
{
    const in_tensor *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* One header entry: {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}
 * whose bytes lie inside a data buffer of data_len bytes and match its shape. */
static int parse_tensor_entry(const cJSON *entry, in_tensor *t, uint64_t data_len,
                              const char *path, pf_error *err)
{
    if (!cJSON_IsObject(entry))
        return bad(err, path, "tensor %s is not described by a JSON object", t->name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    if (!cJSON_IsString(dtype))
        return bad(err, path, "tensor %s has no dtype", t->name);
    if (strcmp(dtype->valuestring, "F32") != 0)
        return bad(err, path, "tensor %s has dtype %.32s; only F32 is supported", t->name,
                   dtype->valuestring);
    if (!cJSON_IsArray(shape))
        return bad(err, path, "tensor %s has no shape", t->name);
    int want_rank = t->is_bias ? 1 : t->layer > PF_MAX_LAYERS ? 4 : 2;
    int rank = cJSON_GetArraySize(shape);
    if (rank != want_rank)
        return bad(err, path, "tensor %s has rank %d; expected %d", t->name, rank, want_rank);
    t->rank = rank;
    uint64_t count = 1;
    int overflow = 0;
    for (int i = 0; i < rank; i++) {
        if (!json_uint(cJSON_GetArrayItem(shape, i), &t->shape[i]))
            return bad(err, path, "tensor %s: shape entries must be non-negative integers",
                       t->name);
        if (t->shape[i] != 0 && count > UINT64_MAX / 4 / t->shape[i]) overflow = 1;
        else count *= t->shape[i];
    }
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        !json_uint(cJSON_GetArrayItem(offs, 0), &t->begin) ||
        !json_uint(cJSON_GetArrayItem(offs, 1), &t->end))
        return bad(err, path, "tensor %s: data_offsets must be two non-negative integers",
                   t->name);
    if (t->begin > t->end || t->end > data_len)
        return bad(err, path,
                   "tensor %s: offsets out of range: data_offsets [%" PRIu64 ", %" PRIu64
                   "] but the data buffer holds %" PRIu64 " bytes",
                   t->name, t->begin, t->end, data_len);
    if (overflow || count * 4 != t->end - t->begin)
        return bad(err, path,
                   "tensor %s: its shape needs %s bytes but its data offsets span %" PRIu64,
                   t->name, overflow ? "more than 2^64" : "a different number of",
                   t->end - t->begin);
    return PF_OK;
}

/* Tensors, sorted by offset, must tile [0, data_len) exactly. */
static int check_coverage(in_tensor *t, int n, uint64_t data_len, const char *path,
                          pf_error *err)
{
    qsort(t, (size_t)n, sizeof t[0], cmp_in_tensor);
    uint64_t pos = 0;
    for (int i = 0; i < n; i++) {
        if (t[i].begin < pos)
            return bad(err, path, "tensors %s and %s overlap in the data buffer",
                       t[i - 1].name, t[i].name);
        if (t[i].begin > pos)
            return bad(err, path,
                       "bytes [%" PRIu64 ", %" PRIu64 ") of the data buffer belong to no "
                       "tensor",
                       pos, t[i].begin);
        pos = t[i].end;
    }
    if (pos != data_len)
        return bad(err, path,
                   "bytes [%" PRIu64 ", %" PRIu64 ") of the data buffer belong to no tensor",
                   pos, data_len);
    return PF_OK;
}

/* From the tensors alone: layer count, sizes and bias. by_layer[k-1][0/1] is
 * the weight/bias of fc<k> (or NULL). */
static int infer_shapes(in_tensor *by_layer[][2], int *n_layers, int *sizes, int *bias,
                        const char *path, pf_error *err)
{
    int n = 0, n_bias = 0;
    for (int k = 1; k <= PF_MAX_LAYERS; k++)
        if (by_layer[k - 1][0] || by_layer[k - 1][1]) n = k;
    if (n == 0) return bad(err, path, "no tensors fc1.weight, fc1.bias, ... found");
    for (int k = 1; k <= n; k++) {
        if (!by_layer[k - 1][0])
            return bad(err, path, "missing tensor fc%d.weight (the layers are fc1..fc%d)", k,
                       n);
        if (by_layer[k - 1][1]) n_bias++;
    }
    if (n_bias != 0 && n_bias != n) {
        int with = 0, without = 0;
        for (int k = n; k >= 1; k--) {
            if (by_layer[k - 1][1]) with = k;
            else without = k;
        }
        return bad(err, path,
                   "fc%d.bias is present but fc%d.bias is missing; biases must be on "
                   "every layer or none",
                   with, without);
    }
    for (int k = 1; k <= n; k++) {
        const in_tensor *w = by_layer[k - 1][0], *b = by_layer[k - 1][1];
        for (int i = 0; i < 2; i++)
            if (w->shape[i] < 1 || w->shape[i] > (1u << 24))
                return bad(err, path, "tensor %s has shape [%" PRIu64 ", %" PRIu64
                           "]; sizes must be in [1, %d]",
                           w->name, w->shape[0], w->shape[1], 1 << 24);
        if (k == 1) sizes[0] = (int)w->shape[1];
        else if (w->shape[1] != (uint64_t)sizes[k - 1])
            return bad(err, path,
                       "tensor %s has shape [%" PRIu64 ", %" PRIu64 "] but fc%d.weight "
                       "outputs %d: shapes do not chain",
                       w->name, w->shape[0], w->shape[1], k - 1, sizes[k - 1]);
        sizes[k] = (int)w->shape[0];
        if (b && b->shape[0] != w->shape[0])
            return bad(err, path, "tensor %s has length %" PRIu64 "; fc%d.weight has %d rows",
                       b->name, b->shape[0], k, sizes[k]);
    }
    *n_layers = n;
    *bias = n_bias > 0;
    return PF_OK;
}

static const char *md_get(const cJSON *md, const char *key)
{
    const cJSON *item = md ? cJSON_GetObjectItemCaseSensitive(md, key) : NULL;
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static const char *md_get(const cJSON *md, const char *key);

/* The loss: metadata, else fallback's, else expect's, else cross-entropy. */
static int metadata_loss(const cJSON *md, const pf_arch *fallback, const pf_arch *expect,
                         pf_loss *loss, const char *path, pf_error *err)
{
    const char *s = md_get(md, "loss");
    *loss = fallback ? fallback->loss : expect ? expect->loss : PF_LOSS_CE;
    if (s && pf_loss_from_name(s, loss) != 0)
        return bad(err, path, "unknown loss '%.40s' in metadata", s);
    return PF_OK;
}

/* Bias metadata, if any, must say what the tensors do. */
static int check_bias_metadata(const cJSON *md, int bias, const char *path, pf_error *err)
{
    const char *s = md_get(md, "bias");
    if (s && strcmp(s, bias ? "true" : "false") != 0)
        return bad(err, path, "bias metadata '%.20s' contradicts the tensors, which %s biases",
                   s, bias ? "have" : "lack");
    return PF_OK;
}

/* A convolutional model (or a shaped spec) from its spec s: activations and
 * loss as arch_from_metadata takes them, the linear layers checked against
 * the tensors'. */
static int shaped_arch(const cJSON *md, const char *s, int n_layers, const int *sizes, int bias,
                       const pf_arch *fallback, const pf_arch *expect, pf_arch *arch,
                       const char *path, pf_error *err)
{
    pf_error sub;
    pf_loss loss;
    int rc = metadata_loss(md, fallback, expect, &loss, path, err);
    if (rc) return rc;
    if (pf_arch_parse(arch, s, "sigmoid", bias, loss, &sub) != PF_OK)
        return bad(err, path, "architecture metadata: %s", sub.msg);
    int same = arch->n_layers == n_layers;
    for (int k = 0; same && k <= n_layers; k++) same = arch->sizes[k] == sizes[k];
    if (!same)
        return bad(err, path, "architecture metadata '%.200s' contradicts the fc tensors' shapes "
                   "(fc1 reads %d features)", s, sizes[0]);
    if ((rc = check_bias_metadata(md, bias, path, err))) return rc;
    const char *acts = md_get(md, "activations");
    const pf_arch *like = fallback && fallback->n_conv == arch->n_conv &&
                                  fallback->n_layers == arch->n_layers ? fallback
                          : expect && expect->n_conv == arch->n_conv &&
                                  expect->n_layers == arch->n_layers ? expect : NULL;
    if (acts) {
        if (pf_arch_set_acts(arch, acts, &sub) != PF_OK)
            return bad(err, path, "activations metadata: %s", sub.msg);
    } else if (like) {
        char list[512];
        pf_arch_acts_str(like, list, sizeof list);
        if (pf_arch_set_acts(arch, list, &sub) != PF_OK) return bad(err, path, "%s", sub.msg);
    }
    return PF_OK;
}

/* The conv<k> tensors (by_conv[k-1][0/1]) against the model's convolutions. */
static int check_convs(in_tensor *by_conv[][2], const pf_arch *arch, const char *path, pf_error *err)
{
    int k = 0;
    for (int i = 0; i < arch->n_stages; i++) {
        const pf_stage *st = &arch->stage[i];
        if (st->kind != PF_STAGE_CONV) continue;
        const in_tensor *w = by_conv[k][0], *b = by_conv[k][1];
        k++;
        if (!w) return bad(err, path, "missing tensor conv%d.weight", k);
        uint64_t want[4] = {(uint64_t)st->conv.out_c, (uint64_t)st->conv.in_c, (uint64_t)st->conv.k,
                            (uint64_t)st->conv.k};
        if (memcmp(w->shape, want, sizeof want) != 0)
            return bad(err, path, "tensor %s has shape [%" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64
                       "]; the architecture needs [%d, %d, %d, %d]", w->name, w->shape[0], w->shape[1],
                       w->shape[2], w->shape[3], st->conv.out_c, st->conv.in_c, st->conv.k, st->conv.k);
        if (arch->bias && !b) return bad(err, path, "missing tensor conv%d.bias (fc1.bias is there)", k);
        if (!arch->bias && b)
            return bad(err, path, "tensor %s is present but the fc layers have no bias", b->name);
        if (b && b->shape[0] != (uint64_t)st->conv.out_c)
            return bad(err, path, "tensor %s has length %" PRIu64 "; conv%d.weight has %d outputs",
                       b->name, b->shape[0], k, st->conv.out_c);
    }
    for (int j = k; j < PF_MAX_STAGES; j++)
        if (by_conv[j][0] || by_conv[j][1])
            return bad(err, path, "tensor %s is not in the architecture, which has %d convolutions",
                       (by_conv[j][0] ? by_conv[j][0] : by_conv[j][1])->name, k);
    return PF_OK;
}

/* Activations and loss: metadata, else fallback, else expect, else the
 * paper's default (sigmoid hidden layers, linear output, cross-entropy). */
static int arch_from_metadata(const cJSON *md, int n_layers, const int *sizes, int bias,
                              int has_convs, const pf_arch *fallback, const pf_arch *expect,
                              pf_arch *arch, const char *path, pf_error *err)
{
    pf_error sub;
    const char *s = md_get(md, "architecture");
    char spec[1024];
    /* A convolutional model's shape is in its spec: from the metadata, else
     * from the model the caller has in mind */
    const pf_arch *known = fallback && fallback->in_c ? fallback : expect && expect->in_c ? expect : NULL;
    if (!(s && strchr(s, 'x')) && known && (!s || has_convs)) {
        pf_arch_sizes_str(known, spec, sizeof spec);
        s = spec;
    }
    if (s && strchr(s, 'x'))
        return shaped_arch(md, s, n_layers, sizes, bias, fallback, expect, arch, path, err);
    if (has_convs)
        return bad(err, path, "it holds convolutions but no architecture metadata (such as "
                   "1x28x28,conv8:3,maxpool2,fc10) gives the input's shape");
    if (s) {
        int n2, sizes2[PF_MAX_LAYERS + 2];
        int same = pf_arch_parse_sizes(s, &n2, sizes2, &sub) == PF_OK && n2 == n_layers;
        for (int l = 0; same && l <= n_layers; l++) same = sizes2[l] == sizes[l];
        if (!same) {
            char shapes[256];
            size_t k = 0;
            shapes[0] = '\0';
            for (int l = 0; l <= n_layers && k < sizeof shapes; l++)
                k += (size_t)snprintf(shapes + k, sizeof shapes - k, "%s%d", l ? "," : "",
                                      sizes[l]);
            return bad(err, path, "architecture metadata '%.100s' contradicts the tensor "
                       "shapes %s", s, shapes);
        }
    }
    int rc = check_bias_metadata(md, bias, path, err);
    if (rc) return rc;

    pf_act acts[PF_MAX_LAYERS];
    s = md_get(md, "activations");
    if (s) {
        if (pf_arch_parse_acts(s, n_layers, acts, &sub) != PF_OK)
            return bad(err, path, "activations metadata: %s", sub.msg);
    } else if (fallback && fallback->n_layers == n_layers) {
        memcpy(acts, fallback->act, sizeof(pf_act) * (size_t)n_layers);
    } else if (expect && expect->n_layers == n_layers) {
        memcpy(acts, expect->act, sizeof(pf_act) * (size_t)n_layers);
    } else {
        for (int l = 0; l < n_layers; l++)
            acts[l] = l + 1 < n_layers ? PF_ACT_SIGMOID : PF_ACT_LINEAR;
    }

    pf_loss loss;
    rc = metadata_loss(md, fallback, expect, &loss, path, err);
    if (rc) return rc;

    if (pf_arch_init(arch, n_layers, sizes, acts, bias, loss, &sub) != PF_OK)
        return bad(err, path, "%s", sub.msg);
    return PF_OK;
}

/* "784,128,10" and, when the sizes agree, what else differs. */
static void describe_arch(const pf_arch *a, const pf_arch *other, char *buf, size_t n)
{
    pf_arch_sizes_str(a, buf, n);
    int same_sizes = a->n_layers == other->n_layers;
    for (int l = 0; same_sizes && l <= a->n_layers; l++)
        same_sizes = a->sizes[l] == other->sizes[l];
    if (!same_sizes) return;
    char acts[256];
    pf_arch_acts_str(a, acts, sizeof acts);
    size_t k = strlen(buf);
    snprintf(buf + k, n - k, " (%s, %s, loss %s)", acts, a->bias ? "bias" : "no bias",
             pf_loss_name(a->loss));
}

static int fill_meta(const cJSON *md, pf_ckpt_meta *meta, const char *path, pf_error *err)
{
    memset(meta, 0, sizeof *meta);
    strcpy(meta->anchor, "origin");
    const char *s = md_get(md, "beta");
    if (s) {
        char *end;
        errno = 0;
        meta->beta = strtod(s, &end);
        if (end == s || *end || errno == ERANGE || !isfinite(meta->beta))
            return bad(err, path, "beta metadata '%.40s' is not a finite number", s);
        /* An L2 strength below zero makes a negative regularized loss. */
        if (meta->beta < 0)
            return bad(err, path, "beta metadata '%.40s' is negative; the L2 strength is >= 0", s);
    }
    s = md_get(md, "seed");
    if (s) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (*s < '0' || *s > '9' || *end || errno == ERANGE)
            return bad(err, path, "seed metadata '%.40s' is not an unsigned integer", s);
        meta->seed = (uint64_t)v;
    }
    s = md_get(md, "anchor");
    if (s) {
        if (strlen(s) >= sizeof meta->anchor)
            return bad(err, path, "anchor metadata is longer than %zu bytes",
                       sizeof meta->anchor - 1);
        strcpy(meta->anchor, s);
    }
    s = md_get(md, "dataset");
    if (s) {
        if (strlen(s) >= sizeof meta->dataset)
            return bad(err, path, "dataset metadata is longer than %zu bytes",
                       sizeof meta->dataset - 1);
        strcpy(meta->dataset, s);
    }
    return PF_OK;
}

/* A header that passed every check: its tensors (sorted by offset, tiling
 * the data buffer), the architecture and the metadata. Tensor names point
 * into root. */
typedef struct {
    cJSON *root;
    in_tensor tensors[MAX_TENSORS];
    int n;
    pf_arch arch;
    pf_ckpt_meta meta;
} parsed_header;

/* Everything that can be checked before the data is read: the header text
 * (hlen bytes), its tensors against a data buffer of data_len bytes,
 * metadata and architecture. */
static int parse_header(const char *htext, uint64_t hlen, uint64_t data_len, const char *path,
                        const pf_arch *fallback, const pf_arch *expect, parsed_header *ph,
                        pf_error *err)
{
    if (!valid_utf8((const unsigned char *)htext, (size_t)hlen))
        return bad(err, path, "header is not valid UTF-8 text");
    const char *parse_end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(htext, (size_t)hlen, &parse_end, 0);
    ph->root = root;
    if (!root) return bad(err, path, "header is not valid JSON");
    for (const char *p = parse_end; p < htext + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return bad(err, path, "header has text after its JSON object");
    if (!cJSON_IsObject(root)) return bad(err, path, "header is not a JSON object");

    in_tensor *tensors = ph->tensors;
    in_tensor *by_layer[PF_MAX_LAYERS + PF_MAX_STAGES][2] = {{NULL}};
    const cJSON *md = NULL;
    int n = 0;
    for (const cJSON *item = root->child; item; item = item->next) {
        const char *name = item->string;
        if (strcmp(name, "__metadata__") == 0) {
            if (md) return bad(err, path, "header has two __metadata__ entries");
            if (!cJSON_IsObject(item))
                return bad(err, path, "__metadata__ is not a JSON object");
            for (const cJSON *m = item->child; m; m = m->next)
                if (!cJSON_IsString(m))
                    return bad(err, path, "metadata value of '%.60s' is not a string",
                               m->string);
            md = item;
            continue;
        }
        int is_bias = 0, k = parse_tensor_name(name, &is_bias);
        if (k < 0)
            return bad(err, path, "tensor %.60s: at most %d layers are supported", name,
                       PF_MAX_LAYERS);
        if (k == 0)
            return bad(err, path, "unexpected tensor '%.60s'; a checkpoint holds only "
                       "conv<k>.weight, conv<k>.bias, fc<k>.weight and fc<k>.bias", name);
        if (by_layer[k - 1][is_bias])
            return bad(err, path, "tensor %s appears twice in the header", name);
        in_tensor *t = &tensors[n++];
        memset(t, 0, sizeof *t);
        t->name = name;
        t->layer = k;
        t->is_bias = is_bias;
        int rc = parse_tensor_entry(item, t, data_len, path, err);
        if (rc != PF_OK) return rc;
        by_layer[k - 1][is_bias] = t;
    }
    /* So the data buffer is exactly file size - 8 - header length. */
    int rc = check_coverage(tensors, n, data_len, path, err);
    if (rc != PF_OK) return rc;
    ph->n = n;
    /* Sorting moved the tensors; point the table at their new places. */
    for (int i = 0; i < n; i++) by_layer[tensors[i].layer - 1][tensors[i].is_bias] = &tensors[i];

    int n_layers = 0, bias = 0, sizes[PF_MAX_LAYERS + 1];
    rc = infer_shapes(by_layer, &n_layers, sizes, &bias, path, err);
    if (rc != PF_OK) return rc;
    int has_convs = 0;
    for (int k = 0; k < PF_MAX_STAGES; k++)
        has_convs |= by_layer[PF_MAX_LAYERS + k][0] || by_layer[PF_MAX_LAYERS + k][1];
    rc = arch_from_metadata(md, n_layers, sizes, bias, has_convs, fallback, expect, &ph->arch, path,
                            err);
    if (rc != PF_OK) return rc;
    rc = check_convs(by_layer + PF_MAX_LAYERS, &ph->arch, path, err);
    if (rc != PF_OK) return rc;
    if (expect && !pf_arch_equal(&ph->arch, expect)) {
        char got[256], want[256];
        describe_arch(&ph->arch, expect, got, sizeof got);
        describe_arch(expect, &ph->arch, want, sizeof want);
        return bad(err, path, "architecture %s does not match the expected %s", got, want);
    }
    return fill_meta(md, &ph->meta, path, err);
}

/* The tensors' values, read in file order straight into their places in
 * theta (the tensors tile the data buffer, so reading is sequential). */
static int read_values(FILE *f, const parsed_header *ph, const char *path, float **theta,
                       pf_error *err)
{
    const pf_arch *arch = &ph->arch;
    float *values = malloc(arch->n_params * sizeof *values + 1);
    if (!values)
        return pf_fail(err, PF_ERUNTIME, "%s: out of memory for %zu parameters", path,
                       arch->n_params);
    for (int i = 0; i < ph->n; i++) {
        const in_tensor *t = &ph->tensors[i];
        int l = t->layer - 1;
        size_t at;
        if (t->layer > PF_MAX_LAYERS) { /* conv<k>: the k-th convolution stage */
            int k = t->layer - PF_MAX_LAYERS, i = 0;
            for (int seen = 0; i < arch->n_stages; i++)
                if (arch->stage[i].kind == PF_STAGE_CONV && ++seen == k) break;
            at = t->is_bias ? arch->stage[i].b_off : arch->stage[i].w_off;
        } else {
            at = t->is_bias ? arch->b_off[l] : arch->w_off[l];
        }
        float *dst = values + at;
        size_t count = (size_t)((t->end - t->begin) / 4);
        if (fread(dst, 4, count, f) != count) {
            int e = ferror(f) ? errno : 0;
            free(values);
            if (e) return pf_fail(err, PF_ERUNTIME, "%s: %s", path, strerror(e));
            return bad(err, path, "file shrank while being read");
        }
        for (size_t j = 0; j < count; j++) {
            float v = load_le32((const unsigned char *)(dst + j));
            if (!isfinite(v)) {
                free(values);
                return bad(err, path, "tensor %s holds %s at index %zu", t->name,
                           isnan(v) ? "NaN" : "Inf", j);
            }
            dst[j] = v;
        }
    }
    *theta = values;
    return PF_OK;
}

/* The length and header are read and checked first, and the data only after
 * the header has proven sane: a large file of garbage costs a few bytes of
 * reading, not its size in memory. */
int pf_ckpt_read(const char *path, const pf_arch *fallback, const pf_arch *expect,
                 pf_arch *arch, float **theta, pf_ckpt_meta *meta, pf_error *err)
{
    *theta = NULL;
    FILE *f;
    uint64_t size;
    int rc = pf_open_input(path, &f, &size, err);
    if (rc != PF_OK) return rc;
    parsed_header *ph = calloc(1, sizeof *ph);
    char *htext = NULL;
    unsigned char len8[8];
    uint64_t hlen = 0;
    if (!ph) {
        rc = pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
    } else if (size > MAX_FILE_BYTES) {
        rc = bad(err, path, "file is %" PRIu64 " bytes; checkpoints over 4 GiB are refused", size);
    } else if (size < 8) {
        rc = bad(err, path, "file is %" PRIu64 " bytes, too short for a safetensors header", size);
    } else if (fread(len8, 1, 8, f) != 8) {
        rc = bad(err, path, "file shrank while being read");
    } else if ((hlen = load_le64(len8)) > MAX_HEADER_BYTES) {
        rc = bad(err, path, "header length %" PRIu64 " is absurd (file is %" PRIu64 " bytes)",
                 hlen, size);
    } else if (hlen > size - 8) {
        rc = bad(err, path, "header length %" PRIu64 " runs past the end of the file (%" PRIu64
                 " bytes): truncated?", hlen, size);
    } else if (!(htext = malloc((size_t)hlen + 1))) {
        rc = pf_fail(err, PF_ERUNTIME, "%s: out of memory for a %" PRIu64 "-byte header", path,
                     hlen);
    } else if (fread(htext, 1, (size_t)hlen, f) != (size_t)hlen) {
        rc = bad(err, path, "file shrank while being read");
    } else {
        rc = parse_header(htext, hlen, size - 8 - hlen, path, fallback, expect, ph, err);
        if (rc == PF_OK) rc = read_values(f, ph, path, theta, err);
        if (rc == PF_OK) {
            *arch = ph->arch;
            if (meta) *meta = ph->meta;
        }
    }
    fclose(f);
    if (ph) cJSON_Delete(ph->root);
    free(ph);
    free(htext);
    return rc;
}

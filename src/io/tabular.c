/* Tabular datasets: CSV text and NumPy .npy arrays.
 *
 * Both end in the same step: a table of floats plus a column of target values
 * that become class labels (integral, >= 0) or regression targets.
 */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/io.h"

/* Labels beyond this are almost surely regression values or garbage, and
 * would ask for an absurdly wide output layer. */
#define MAX_LABEL 65535

/* ------------------------------------------------------------- targets */

static int is_label_value(float v) { return v >= 0 && v <= MAX_LABEL && v == floorf(v); }

/* Turn n target values into labels; n_classes = max + 1. A bad value is
 * named by its line (lines[i], CSV) or else by its sample number. */
static int make_labels(const char *path, const float *v, size_t n, const long *lines,
                       pf_dataset *d, pf_error *err)
{
    d->labels = malloc(n * sizeof(int) + 1);
    if (!d->labels) return pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
    int max = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_label_value(v[i]) && lines)
            return pf_fail(err, PF_EINPUT, "%s:%ld: target %g is not a class label "
                           "(an integer in 0..%d)", path, lines[i], v[i], MAX_LABEL);
        if (!is_label_value(v[i]))
            return pf_fail(err, PF_EINPUT, "%s: target %g of sample %zu is not a class label "
                           "(an integer in 0..%d)", path, v[i], i + 1, MAX_LABEL);
        d->labels[i] = (int)v[i];
        if (d->labels[i] > max) max = d->labels[i];
    }
    d->n_classes = max + 1;
    return PF_OK;
}

/* Labels or regression targets from n rows of k values, as kind asks. */
static int set_targets(const char *path, const float *v, size_t n, int k, int integer_dtype,
                       const long *lines, pf_target_kind kind, pf_dataset *d, pf_error *err)
{
    int labels = kind == PF_TARGET_CLASS;
    if (kind == PF_TARGET_AUTO && k == 1) {
        labels = integer_dtype;
        if (integer_dtype < 0) {  /* unknown type (CSV): decide from the values */
            labels = 1;
            for (size_t i = 0; i < n && labels; i++) labels = is_label_value(v[i]);
        }
    }
    if (labels && k != 1)
        return pf_fail(err, PF_EINPUT, "%s: class labels need one target column, not %d", path, k);
    if (labels) return make_labels(path, v, n, lines, d, err);
    d->targets = malloc(n * (size_t)k * sizeof(float) + 1);
    if (!d->targets) return pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
    memcpy(d->targets, v, n * (size_t)k * sizeof(float));
    d->n_targets = k;
    return PF_OK;
}

/* ----------------------------------------------------------------- csv */

/* Parse one trimmed field; 0 if it is not a plain number. */
static int parse_number(char *s, char *end, double *v)
{
    while (s < end && isspace((unsigned char)*s)) s++;
    while (end > s && isspace((unsigned char)end[-1])) end--;
    if (s == end) return 0;
    char save = *end, *stop;
    *end = '\0';
    *v = strtod(s, &stop);  /* overflow gives HUGE_VAL, which the caller rejects */
    *end = save;
    return stop == end;
}

typedef struct {
    float *v;
    size_t n, cap;
} floatbuf;

static int push(floatbuf *b, float x)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 4096;
        float *p = realloc(b->v, cap * sizeof(float));
        if (!p) return 0;
        b->v = p;
        b->cap = cap;
    }
    b->v[b->n++] = x;
    return 1;
}

enum { ROW_NOT_NUMBER = -1, ROW_NOT_FINITE = -2, ROW_OOM = -3 };

/* Split a line at commas and append its numbers. Returns the field count, or
 * a ROW_ code at the first bad field (*bad points to it). */
static long parse_row(char *line, floatbuf *b, char **bad)
{
    long fields = 0;
    for (char *s = line;; fields++) {
        char *end = strchr(s, ',');
        if (!end) end = s + strlen(s);
        double v;
        *bad = s;
        if (!parse_number(s, end, &v)) return ROW_NOT_NUMBER;
        if (!isfinite(v) || fabs(v) > FLT_MAX) return ROW_NOT_FINITE;
        if (!push(b, (float)v)) return ROW_OOM;
        if (!*end) return fields + 1;
        s = end + 1;
    }
}

static int is_blank(const char *s)
{
    while (isspace((unsigned char)*s)) s++;
    return !*s;
}

/* Whether no cell of the line reads as a number (nan and inf count as
 * numbers): only such a line is a header of names. */
static int all_names(char *line)
{
    for (char *s = line;;) {
        char *end = strchr(s, ',');
        if (!end) end = s + strlen(s);
        double v;
        if (parse_number(s, end, &v)) return 0;
        if (!*end) return 1;
        s = end + 1;
    }
}

int pf_csv_read(const char *path, int n_targets, pf_target_kind kind, pf_dataset *out,
                pf_error *err)
{
    memset(out, 0, sizeof *out);
    if (n_targets < 1) return pf_fail(err, PF_EINPUT, "%s: need at least one target column", path);
    FILE *f;
    int rc = pf_open_input(path, &f, NULL, err);
    if (rc) return rc;

    floatbuf b = {0};
    char *line = NULL;
    size_t line_cap = 0;
    long cols = 0, lineno = 0, blank_at = 0, first_line = 0;
    long *row_line = NULL;  /* (rows) the line each row came from, for messages */
    size_t rows = 0, row_cap = 0;
    ssize_t len;
    while ((len = getline(&line, &line_cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (is_blank(line)) {
            if (rows > 0 && !blank_at) blank_at = lineno;
            continue;
        }
        if (blank_at) {
            rc = pf_fail(err, PF_EINPUT, "%s:%ld: blank line inside the data", path, blank_at);
            goto done;
        }
        if (!first_line) {
            first_line = lineno;
            if (all_names(line)) continue;  /* a header line of names */
        }
        char *bad = NULL;
        long k = parse_row(line, &b, &bad);
        if (k == ROW_OOM) {
            rc = pf_fail(err, PF_ERUNTIME, "%s:%ld: out of memory", path, lineno);
            goto done;
        }
        if (k < 0) {
            /* A first line mixing numbers and names is a broken row, not a header. */
            int mixed = k == ROW_NOT_NUMBER && lineno == first_line;
            char *comma = strchr(bad, ',');
            if (comma) *comma = '\0';
            rc = pf_fail(err, PF_EINPUT, "%s:%ld: '%.40s' is not a finite number%s", path, lineno,
                         bad, mixed ? " (a header line holds only names)" : "");
            goto done;
        }
        if (rows == 0) {
            if (k <= n_targets) {
                rc = pf_fail(err, PF_EINPUT, "%s:%ld: %ld columns leave no features beside "
                             "%d target column(s)", path, lineno, k, n_targets);
                goto done;
            }
            cols = k;
        } else if (k != cols) {
            rc = pf_fail(err, PF_EINPUT, "%s:%ld: %ld columns, expected %ld", path, lineno, k, cols);
            goto done;
        }
        if (rows == row_cap) {
            size_t cap = row_cap ? 2 * row_cap : 1024;
            long *grown = realloc(row_line, cap * sizeof *row_line);
            if (!grown) {
                rc = pf_fail(err, PF_ERUNTIME, "%s:%ld: out of memory", path, lineno);
                goto done;
            }
            row_line = grown;
            row_cap = cap;
        }
        row_line[rows++] = lineno;
    }
    if (ferror(f)) {
        rc = pf_fail(err, PF_EINPUT, "%s: read error", path);
        goto done;
    }
    if (rows == 0) {
        rc = pf_fail(err, PF_EINPUT, "%s: no data rows", path);
        goto done;
    }

    /* Split the table into features and the trailing target columns. */
    int dim = (int)cols - n_targets;
    size_t width = (size_t)cols;
    float *y = malloc(rows * (size_t)n_targets * sizeof(float) + 1);
    out->x = malloc(rows * (size_t)dim * sizeof(float) + 1);
    if (!y || !out->x) {
        free(y);
        rc = pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
        goto done;
    }
    for (size_t i = 0; i < rows; i++) {
        memcpy(out->x + i * (size_t)dim, b.v + i * width, (size_t)dim * sizeof(float));
        memcpy(y + i * (size_t)n_targets, b.v + i * width + (size_t)dim,
               (size_t)n_targets * sizeof(float));
    }
    out->n = rows;
    out->dim = dim;
    snprintf(out->name, sizeof out->name, "%s", path);
    rc = set_targets(path, y, rows, n_targets, -1, row_line, kind, out, err);
    free(y);

done:
    free(line);
    free(row_line);
    free(b.v);
    fclose(f);
    if (rc) pf_dataset_free(out);
    return rc;
}

/* ----------------------------------------------------------------- npy */

typedef struct {
    char kind;          /* 'f', 'u', 'i', 'b' */
    int size;           /* bytes per element */
    int rank;
    uint64_t shape[8];
    size_t count;
    long data_offset;
} npy_header;

/* Find 'key': in the header dict and return what follows the colon. */
static const char *dict_value(const char *h, const char *key)
{
    char q[40];
    const char *quotes = "'\"";
    for (int i = 0; i < 2; i++) {
        snprintf(q, sizeof q, "%c%s%c", quotes[i], key, quotes[i]);
        const char *p = strstr(h, q);
        if (!p) continue;
        p += strlen(q);
        while (isspace((unsigned char)*p)) p++;
        if (*p != ':') return NULL;
        p++;
        while (isspace((unsigned char)*p)) p++;
        return p;
    }
    return NULL;
}

/* 'ok#' with o the byte order, k the kind and # the size in bytes. The
 * header may end anywhere (even right after the opening quote), so each
 * character is looked at only once the one before it proved not the end. */
static int parse_descr(const char *p, npy_header *h)
{
    if (!p || (*p != '\'' && *p != '"')) return 0;
    char order = p[1];
    if (order != '<' && order != '|') return 0;
    char kind = p[2];
    if (!kind || !isdigit((unsigned char)p[3])) return 0;
    char *end;
    errno = 0;
    long size = strtol(p + 3, &end, 10);
    if (errno || *end != p[0]) return 0;
    h->kind = kind;
    h->size = (int)size;
    switch (kind) {
    case 'f': return size == 4 || size == 8;
    case 'u': return size == 1;
    case 'i': return size == 1 || size == 2 || size == 4 || size == 8;
    case 'b': return size == 1;
    default: return 0;
    }
}

static int parse_shape(const char *p, npy_header *h)
{
    if (!p || *p != '(') return 0;
    p++;
    h->rank = 0;
    for (;;) {
        while (isspace((unsigned char)*p) || *p == ',') p++;
        if (*p == ')') return 1;
        if (!isdigit((unsigned char)*p) || h->rank == 8) return 0;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno) return 0;
        h->shape[h->rank++] = v;
        p = end;
        while (isspace((unsigned char)*p)) p++;
        if (*p != ',' && *p != ')') return 0;
    }
}

/* Read and check the header; the data size must match the file size. */
static int npy_open(const char *path, FILE **fp, npy_header *h, pf_error *err)
{
    memset(h, 0, sizeof *h);
    FILE *f;
    uint64_t file_size;
    int rc = pf_open_input(path, &f, &file_size, err);
    if (rc) return rc;
    unsigned char pre[12];
    char *dict = NULL;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        rc = pf_fail(err, PF_EINPUT, "%s: not an NPY file (bad magic)", path);
        goto done;
    }
    int major = pre[6];
    uint32_t hlen = pre[8] | (uint32_t)pre[9] << 8;
    long pre_len = 10;
    if (major == 2 || major == 3) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            rc = pf_fail(err, PF_EINPUT, "%s: truncated NPY header", path);
            goto done;
        }
        hlen |= (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
        pre_len = 12;
    } else if (major != 1) {
        rc = pf_fail(err, PF_EINPUT, "%s: unsupported NPY format version %d", path, major);
        goto done;
    }
    if ((uint64_t)pre_len + hlen > file_size) {
        rc = pf_fail(err, PF_EINPUT, "%s: truncated NPY header", path);
        goto done;
    }
    dict = malloc((size_t)hlen + 1);
    if (!dict || fread(dict, 1, hlen, f) != hlen) {
        rc = pf_fail(err, PF_EINPUT, "%s: cannot read the NPY header", path);
        goto done;
    }
    dict[hlen] = '\0';
    const char *fo = dict_value(dict, "fortran_order");
    if (!parse_descr(dict_value(dict, "descr"), h)) {
        rc = pf_fail(err, PF_EINPUT, "%s: unsupported dtype (need <f4 <f8 |u1 |i1 <i2 <i4 <i8 "
                     "or |b1, little-endian)", path);
        goto done;
    }
    if (!fo || (strncmp(fo, "False", 5) != 0 && strncmp(fo, "True", 4) != 0)) {
        rc = pf_fail(err, PF_EINPUT, "%s: NPY header lacks fortran_order", path);
        goto done;
    }
    if (*fo == 'T') {
        rc = pf_fail(err, PF_EINPUT, "%s: Fortran-order arrays are not supported "
                     "(save with numpy.ascontiguousarray)", path);
        goto done;
    }
    if (!parse_shape(dict_value(dict, "shape"), h)) {
        rc = pf_fail(err, PF_EINPUT, "%s: bad or missing shape in the NPY header", path);
        goto done;
    }
    size_t count = 1, limit = SIZE_MAX / 8;
    for (int i = 0; i < h->rank; i++) {
        if (h->shape[i] != 0 && count > limit / h->shape[i]) {
            rc = pf_fail(err, PF_EINPUT, "%s: NPY shape overflows the address space", path);
            goto done;
        }
        count *= (size_t)h->shape[i];
    }
    h->count = count;
    h->data_offset = pre_len + (long)hlen;
    uint64_t held = file_size - (uint64_t)h->data_offset;
    if ((uint64_t)count * (uint64_t)h->size != held) {
        rc = pf_fail(err, PF_EINPUT, "%s: shape declares %llu bytes of data but file holds %llu",
                     path, (unsigned long long)count * (unsigned long long)h->size,
                     (unsigned long long)held);
        goto done;
    }
done:
    free(dict);
    if (rc) fclose(f);
    else *fp = f;
    return rc;
}

/* One element, in double so a too-large f8 can be told from a finite one. */
static double npy_decode(const unsigned char *p, const npy_header *h)
{
    /* Little-endian host assumed, like NumPy's '<' on every platform we build for. */
    union { uint8_t u1; int8_t i1; int16_t i2; int32_t i4; int64_t i8; float f4; double f8; } v;
    memcpy(&v, p, (size_t)h->size);
    switch (h->kind) {
    case 'f': return h->size == 4 ? (double)v.f4 : v.f8;
    case 'u': case 'b': return (double)v.u1;
    default:
        switch (h->size) {
        case 1: return (double)v.i1;
        case 2: return (double)v.i2;
        case 4: return (double)v.i4;
        default: return (double)(float)v.i8;  /* rounded once, as before */
        }
    }
}

/* Read a whole NPY array as floats. */
static int npy_read(const char *path, npy_header *h, float **data, pf_error *err)
{
    FILE *f = NULL;
    int rc = npy_open(path, &f, h, err);
    if (rc) return rc;
    *data = malloc(h->count * sizeof(float) + 1);
    if (!*data) {
        fclose(f);
        return pf_fail(err, PF_ERUNTIME, "%s: out of memory for %zu values", path, h->count);
    }
    enum { CHUNK = 1 << 16 };
    unsigned char buf[CHUNK];
    size_t per_chunk = CHUNK / (size_t)h->size;
    for (size_t done = 0; done < h->count;) {
        size_t m = h->count - done < per_chunk ? h->count - done : per_chunk;
        if (fread(buf, (size_t)h->size, m, f) != m) {
            free(*data);
            *data = NULL;
            fclose(f);
            return pf_fail(err, PF_EINPUT, "%s: data truncated", path);
        }
        for (size_t i = 0; i < m; i++) {
            double v = npy_decode(buf + i * h->size, h);
            /* NaN or Inf would poison training and normalization alike. */
            if (!isfinite(v) || fabs(v) > FLT_MAX) {
                free(*data);
                *data = NULL;
                fclose(f);
                return pf_fail(err, PF_EINPUT, "%s: element %zu is %s; values must be finite "
                               "floats", path, done + i, isnan(v) ? "NaN" : isinf(v) ? "Inf" :
                               "beyond float range");
            }
            (*data)[done + i] = (float)v;
        }
        done += m;
    }
    fclose(f);
    return PF_OK;
}

int pf_npy_read_dataset(const char *x_path, const char *y_path, pf_target_kind kind,
                        pf_dataset *out, pf_error *err)
{
    memset(out, 0, sizeof *out);
    npy_header hx, hy;
    float *y = NULL;
    int rc = npy_read(x_path, &hx, &out->x, err);
    if (rc) return rc;
    if (hx.rank < 1) {
        rc = pf_fail(err, PF_EINPUT, "%s: features need shape (n, ...), not a scalar", x_path);
        goto done;
    }
    /* The overflow check covered the shape's product, so count / n is exact. */
    size_t n = (size_t)hx.shape[0], dim = n ? hx.count / n : 0;
    if (n == 0 || dim == 0 || dim > INT_MAX) {
        rc = pf_fail(err, PF_EINPUT, "%s: feature shape gives %zu samples of %zu values",
                     x_path, n, dim);
        goto done;
    }
    out->n = n;
    out->dim = (int)dim;
    snprintf(out->name, sizeof out->name, "%s", x_path);

    rc = npy_read(y_path, &hy, &y, err);
    if (rc) goto done;
    if (hy.rank < 1 || hy.rank > 2 || hy.shape[0] != n) {
        rc = pf_fail(err, PF_EINPUT, "%s: targets need shape (%zu) or (%zu, k) to match %s",
                     y_path, n, n, x_path);
        goto done;
    }
    int k = hy.rank == 2 ? (int)(hy.shape[1] > INT_MAX ? 0 : hy.shape[1]) : 1;
    if (k < 1) {
        rc = pf_fail(err, PF_EINPUT, "%s: targets have no columns", y_path);
        goto done;
    }
    rc = set_targets(y_path, y, n, k, hy.kind != 'f', NULL, kind, out, err);
done:
    free(y);
    if (rc) pf_dataset_free(out);
    return rc;
}

/* Run folders: the sweep table (CSV in the paper's column names) and the
 * resumable state, both written atomically. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "pathfinder/io.h"

/* ---- sweep.csv ---------------------------------------------------------- */

static const char *const trailing_cols[] = {"r", "Train_Accuracy", "epochs", "seconds", "direction",
                                            "index"};
/* present when any row has them (sweep --hessian); nan in rows without */
static const char *const hessian_cols[] = {"lambda_min_E", "lambda_max_E", "lambda_min_L",
                                           "lambda_max_L", "hessian_converged"};
enum { N_HESSIAN_COLS = sizeof hessian_cols / sizeof *hessian_cols };

int pf_sweep_csv_write(const char *path, const pf_point_result *rows, long n, pf_error *err)
{
    int K = n > 0 ? rows[0].m.test.n_classes : 0;
    int hess = 0;
    for (long i = 0; i < n; i++) hess |= rows[i].has_hessian;
    size_t cap = 4096 + (size_t)(n > 0 ? n : 1) * (size_t)(520 + 26 * K), len = 0;
    char *buf = malloc(cap);
    if (!buf) return pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
#define PUT(...) len += (size_t)snprintf(buf + len, cap - len, __VA_ARGS__)
    PUT("L2_strength,Train_Loss,Train_Reg_Loss,Test_Loss,Test_Accuracy");
    for (int k = 0; k < K; k++) PUT(",Class_%d_Accuracy", k);
    for (size_t c = 0; c < sizeof trailing_cols / sizeof *trailing_cols; c++) PUT(",%s", trailing_cols[c]);
    for (int c = 0; hess && c < N_HESSIAN_COLS; c++) PUT(",%s", hessian_cols[c]);
    PUT("\n");
    for (long i = 0; i < n; i++) {
        const pf_point_result *r = &rows[i];
        if (cap - len < (size_t)(520 + 26 * K)) break; /* cannot happen: sized above */
        PUT("%.17g,%.17g,%.17g,%.17g,%.17g", r->point.beta, r->m.train.loss, r->m.reg_loss,
            r->m.test.loss, r->m.test.accuracy);
        for (int k = 0; k < K; k++) PUT(",%.17g", r->m.test.class_accuracy[k]);
        PUT(",%.17g,%.17g,%d,%.6f,%s,%ld", r->m.r, r->m.train.accuracy, r->epochs, r->seconds,
            r->point.direction > 0 ? "up" : "down", r->index);
        if (hess && r->has_hessian)
            PUT(",%.17g,%.17g,%.17g,%.17g,%d", r->lambda_min_E, r->lambda_max_E,
                r->lambda_min_E + r->point.beta, r->lambda_max_E + r->point.beta, r->hessian_converged);
        else if (hess)
            PUT(",nan,nan,nan,nan,0");
        PUT("\n");
    }
#undef PUT
    int rc = pf_write_file_atomic(path, buf, len, err);
    free(buf);
    return rc;
}

/* Split line in place on commas; returns the number of fields. */
static int split_csv(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        fields[n++] = p;
        char *c = strchr(p, ',');
        if (!c) break;
        *c = '\0';
        p = c + 1;
    }
    return n;
}

static int field_double(const char *s, double *v)
{
    char *e;
    errno = 0;
    *v = strtod(s, &e);
    return (e == s || *e || errno) ? -1 : 0;
}

int pf_sweep_csv_read(const char *path, pf_point_result **rows, long *n, pf_error *err)
{
    *rows = NULL;
    *n = 0;
    char *buf;
    int rc = pf_read_file(path, &buf, NULL, (size_t)1 << 30, err);
    if (rc) return rc;
    enum { MAXF = PF_MAX_CLASSES + 24 };
    char **f = malloc(MAXF * sizeof *f);
    long cap = 64, count = 0;
    pf_point_result *out = malloc((size_t)cap * sizeof *out);
    if (!f || !out) {
        rc = pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
        goto done;
    }
    char *save = NULL, *line = strtok_r(buf, "\n", &save);
    if (!line) {
        rc = pf_fail(err, PF_EINPUT, "%s: empty file", path);
        goto done;
    }
    int nf = split_csv(line, f, MAXF);
    const int fixed = 5;
    int hess = nf > 0 && strcmp(f[nf - 1], hessian_cols[N_HESSIAN_COLS - 1]) == 0;
    int tail = (int)(sizeof trailing_cols / sizeof *trailing_cols) + (hess ? N_HESSIAN_COLS : 0);
    int K = nf - fixed - tail;
    if (nf < fixed + tail || strcmp(f[0], "L2_strength") != 0 || strcmp(f[4], "Test_Accuracy") != 0 ||
        K < 0 || K > PF_MAX_CLASSES || strcmp(f[fixed + K], "r") != 0) {
        rc = pf_fail(err, PF_EINPUT, "%s: not a pathfinder sweep table (header)", path);
        goto done;
    }
    long lineno = 1;
    while ((line = strtok_r(NULL, "\n", &save))) {
        lineno++;
        if (strlen(line) > 0 && line[strlen(line) - 1] == '\r') line[strlen(line) - 1] = '\0';
        if (!*line) continue;
        if (count == cap) {
            cap *= 2;
            pf_point_result *g = realloc(out, (size_t)cap * sizeof *out);
            if (!g) {
                rc = pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
                goto done;
            }
            out = g;
        }
        pf_point_result *r = &out[count];
        memset(r, 0, sizeof *r);
        if (split_csv(line, f, MAXF) != nf) {
            rc = pf_fail(err, PF_EINPUT, "%s:%ld: expected %d fields", path, lineno, nf);
            goto done;
        }
        double v[5], epochs, idx;
        int bad = 0;
        for (int k = 0; k < 5; k++) bad |= field_double(f[k], &v[k]);
        r->point.beta = v[0];
        r->m.beta = v[0];
        r->m.train.loss = v[1];
        r->m.reg_loss = v[2];
        r->m.test.loss = v[3];
        r->m.test.accuracy = v[4];
        r->m.test.n_classes = K;
        for (int k = 0; k < K; k++) bad |= field_double(f[fixed + k], &r->m.test.class_accuracy[k]);
        bad |= field_double(f[fixed + K], &r->m.r);
        bad |= field_double(f[fixed + K + 1], &r->m.train.accuracy);
        bad |= field_double(f[fixed + K + 2], &epochs);
        bad |= field_double(f[fixed + K + 3], &r->seconds);
        bad |= field_double(f[fixed + K + 5], &idx);
        const char *dir = f[fixed + K + 4];
        if (bad || (strcmp(dir, "up") && strcmp(dir, "down")) || !(v[0] >= 0)) {
            rc = pf_fail(err, PF_EINPUT, "%s:%ld: malformed row", path, lineno);
            goto done;
        }
        if (hess) {
            double h[N_HESSIAN_COLS];
            for (int c = 0; c < N_HESSIAN_COLS; c++)
                if (field_double(f[fixed + K + 6 + c], &h[c])) bad = 1;
            if (bad) {
                rc = pf_fail(err, PF_EINPUT, "%s:%ld: malformed Hessian columns", path, lineno);
                goto done;
            }
            r->has_hessian = !isnan(h[0]);
            r->lambda_min_E = h[0];
            r->lambda_max_E = h[1];
            r->hessian_converged = h[4] != 0;
        }
        r->point.direction = strcmp(dir, "up") == 0 ? 1 : -1;
        r->epochs = (int)epochs;
        r->index = (long)idx;
        count++;
    }
    *rows = out;
    *n = count;
    out = NULL;
done:
    free(out);
    free(f);
    free(buf);
    return rc;
}

/* ---- state -------------------------------------------------------------- */

static const char state_magic[8] = {'P', 'F', 'S', 'T', 'A', 'T', 'E', '1'};

typedef struct {
    char magic[8];
    uint64_t n_params;
    int64_t next_index;
    uint64_t rng[4];
    int64_t optim_step;
    uint64_t has_moments;
} state_header;

int pf_sweep_state_write(const char *path, const pf_sweep_state *s, pf_error *err)
{
    state_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, state_magic, 8);
    h.n_params = s->n_params;
    h.next_index = s->next_index;
    memcpy(h.rng, s->rng.s, sizeof h.rng);
    h.optim_step = s->optim_step;
    h.has_moments = s->m && s->v;
    size_t vec = s->n_params * sizeof(float);
    size_t total = sizeof h + vec * (h.has_moments ? 3 : 1) + 4;
    unsigned char *buf = malloc(total);
    if (!buf) return pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
    size_t off = 0;
    memcpy(buf, &h, sizeof h), off += sizeof h;
    memcpy(buf + off, s->theta, vec), off += vec;
    if (h.has_moments) {
        memcpy(buf + off, s->m, vec), off += vec;
        memcpy(buf + off, s->v, vec), off += vec;
    }
    uint32_t crc = (uint32_t)crc32(0L, buf, (uInt)off);
    memcpy(buf + off, &crc, 4), off += 4;
    int rc = pf_write_file_atomic(path, buf, off, err);
    free(buf);
    return rc;
}

int pf_sweep_state_read(const char *path, size_t n_params, pf_sweep_state *s, pf_error *err)
{
    memset(s, 0, sizeof *s);
    char *buf;
    size_t n;
    int rc = pf_read_file(path, &buf, &n, (size_t)1 << 34, err);
    if (rc) return rc;
    state_header h;
    size_t vec = n_params * sizeof(float);
    if (n < sizeof h + 4) {
        rc = pf_fail(err, PF_EINPUT, "%s: truncated state file", path);
        goto done;
    }
    memcpy(&h, buf, sizeof h);
    uint32_t crc;
    memcpy(&crc, buf + n - 4, 4);
    if (memcmp(h.magic, state_magic, 8) != 0) {
        rc = pf_fail(err, PF_EINPUT, "%s: not a pathfinder sweep state", path);
        goto done;
    }
    if (h.n_params != n_params || n != sizeof h + vec * (h.has_moments ? 3 : 1) + 4) {
        rc = pf_fail(err, PF_EINPUT, "%s: state is for %llu parameters, the model has %zu", path,
                     (unsigned long long)h.n_params, n_params);
        goto done;
    }
    if ((uint32_t)crc32(0L, (const unsigned char *)buf, (uInt)(n - 4)) != crc) {
        rc = pf_fail(err, PF_EINPUT, "%s: checksum mismatch (corrupted state)", path);
        goto done;
    }
    s->n_params = n_params;
    s->next_index = (long)h.next_index;
    memcpy(s->rng.s, h.rng, sizeof h.rng);
    s->optim_step = (long)h.optim_step;
    s->theta = malloc(vec);
    if (h.has_moments) {
        s->m = malloc(vec);
        s->v = malloc(vec);
    }
    if (!s->theta || (h.has_moments && (!s->m || !s->v))) {
        pf_sweep_state_free(s);
        rc = pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
        goto done;
    }
    memcpy(s->theta, buf + sizeof h, vec);
    if (h.has_moments) {
        memcpy(s->m, buf + sizeof h + vec, vec);
        memcpy(s->v, buf + sizeof h + 2 * vec, vec);
    }
done:
    free(buf);
    return rc;
}

void pf_sweep_state_free(pf_sweep_state *s)
{
    free(s->theta);
    free(s->m);
    free(s->v);
    s->theta = s->m = s->v = NULL;
}

uint32_t pf_crc32(uint32_t crc, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    uLong c = crc;
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)c;
}

uint32_t pf_dataset_checksum(const pf_dataset *d)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    size_t bytes = d->n * (size_t)d->dim * sizeof(float);
    for (size_t off = 0; off < bytes; off += 1u << 30) {
        size_t chunk = bytes - off < (1u << 30) ? bytes - off : (1u << 30);
        crc = crc32(crc, (const unsigned char *)d->x + off, (uInt)chunk);
    }
    if (d->labels) crc = crc32(crc, (const unsigned char *)d->labels, (uInt)(d->n * sizeof(int)));
    if (d->targets)
        crc = crc32(crc, (const unsigned char *)d->targets,
                    (uInt)(d->n * (size_t)d->n_targets * sizeof(float)));
    return (uint32_t)crc;
}

/* Run-folder tables: sweep.csv in the paper's column names, written
 * atomically and read back by column name. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "run/tables.h"

/* ---- sweep.csv ---------------------------------------------------------- */

static const char *const trailing_cols[] = {"r", "Train_Accuracy", "epochs", "seconds", "direction",
                                            "index", "diverged"};
/* present when any row has them (sweep --hessian); nan in rows without */
static const char *const hessian_cols[] = {"lambda_min_E", "lambda_max_E", "lambda_min_L",
                                           "lambda_max_L", "hessian_converged"};
enum { N_HESSIAN_COLS = sizeof hessian_cols / sizeof *hessian_cols };
/* present when any row was certified (sweep --certify; the Hessian columns
 * then hold the certificate's extremes on all training samples) */
static const char *const certificate_cols[] = {"grad_norm", "certified", "escapes", "certify_eps",
                                                "certify_seconds", "certify_hvps"};
enum { N_CERTIFICATE_COLS = sizeof certificate_cols / sizeof *certificate_cols };

int pf_sweep_csv_write(const char *path, const pf_point_result *rows, long n, pf_error *err)
{
    int K = n > 0 ? rows[0].m.test.n_classes : 0;
    int hess = 0, cert = 0;
    for (long i = 0; i < n; i++) hess |= rows[i].has_hessian, cert |= rows[i].has_certificate;
    size_t cap = 4096 + (size_t)(n > 0 ? n : 1) * (size_t)(640 + 26 * K), len = 0;
    char *buf = malloc(cap);
    if (!buf) return pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
#define PUT(...) len += (size_t)snprintf(buf + len, cap - len, __VA_ARGS__)
    PUT("L2_strength,Train_Loss,Train_Reg_Loss,Test_Loss,Test_Accuracy");
    for (int k = 0; k < K; k++) PUT(",Class_%d_Accuracy", k);
    for (size_t c = 0; c < sizeof trailing_cols / sizeof *trailing_cols; c++) PUT(",%s", trailing_cols[c]);
    for (int c = 0; hess && c < N_HESSIAN_COLS; c++) PUT(",%s", hessian_cols[c]);
    for (int c = 0; cert && c < N_CERTIFICATE_COLS; c++) PUT(",%s", certificate_cols[c]);
    PUT("\n");
    for (long i = 0; i < n; i++) {
        const pf_point_result *r = &rows[i];
        if (cap - len < (size_t)(640 + 26 * K)) break; /* cannot happen: sized above */
        PUT("%.17g,%.17g,%.17g,%.17g,%.17g", r->point.beta, r->m.train.loss, r->m.reg_loss,
            r->m.test.loss, r->m.test.accuracy);
        for (int k = 0; k < K; k++) PUT(",%.17g", r->m.test.class_accuracy[k]);
        PUT(",%.17g,%.17g,%d,%.6f,%s,%ld,%d", r->m.r, r->m.train.accuracy, r->epochs, r->seconds,
            r->point.direction > 0 ? "up" : "down", r->index, r->diverged);
        if (hess && r->has_hessian)
            PUT(",%.17g,%.17g,%.17g,%.17g,%d", r->lambda_min_E, r->lambda_max_E,
                r->lambda_min_E + r->point.beta, r->lambda_max_E + r->point.beta, r->hessian_converged);
        else if (hess)
            PUT(",nan,nan,nan,nan,0");
        if (cert && r->has_certificate)
            PUT(",%.17g,%d,%d,%.17g,%.6f,%ld", r->grad_norm, r->certified, r->escapes, r->certify_eps,
                r->certify_seconds, r->certify_hvps);
        else if (cert)
            PUT(",nan,0,0,nan,nan,0");
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

static int column(char **names, int nf, const char *name)
{
    for (int i = 0; i < nf; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

/* The columns, found by name, so tables with more columns (or written by
 * an older version, without the optional ones) read back. */
typedef struct {
    int beta, train_loss, reg_loss, test_loss, test_acc, cls0, r, train_acc, epochs, seconds, dir,
        index, diverged, lmin, lmax, hconv, grad_norm, certified, escapes, certify_eps;
    int K;
} sweep_columns;

static int find_columns(char **f, int nf, sweep_columns *c)
{
    c->beta = column(f, nf, "L2_strength");
    c->train_loss = column(f, nf, "Train_Loss");
    c->reg_loss = column(f, nf, "Train_Reg_Loss");
    c->test_loss = column(f, nf, "Test_Loss");
    c->test_acc = column(f, nf, "Test_Accuracy");
    c->r = column(f, nf, "r");
    c->train_acc = column(f, nf, "Train_Accuracy");
    c->epochs = column(f, nf, "epochs");
    c->seconds = column(f, nf, "seconds");
    c->dir = column(f, nf, "direction");
    c->index = column(f, nf, "index");
    c->diverged = column(f, nf, "diverged");
    c->lmin = column(f, nf, "lambda_min_E");
    c->lmax = column(f, nf, "lambda_max_E");
    c->hconv = column(f, nf, "hessian_converged");
    c->grad_norm = column(f, nf, "grad_norm");
    c->certified = column(f, nf, "certified");
    c->escapes = column(f, nf, "escapes");
    c->certify_eps = column(f, nf, "certify_eps");
    c->cls0 = column(f, nf, "Class_0_Accuracy");
    c->K = 0;
    if (c->cls0 >= 0) {
        char name[64];
        do {
            snprintf(name, sizeof name, "Class_%d_Accuracy", c->K);
        } while (c->cls0 + c->K < nf && strcmp(f[c->cls0 + c->K], name) == 0 && ++c->K < PF_MAX_CLASSES);
    }
    const int need[] = {c->beta, c->train_loss, c->reg_loss, c->test_loss, c->test_acc, c->r,
                        c->train_acc, c->epochs, c->seconds, c->dir, c->index};
    for (size_t i = 0; i < sizeof need / sizeof *need; i++)
        if (need[i] < 0) return -1;
    return 0;
}

int pf_sweep_csv_read(const char *path, pf_point_result **rows, long *n, pf_error *err)
{
    *rows = NULL;
    *n = 0;
    char *buf;
    int rc = pf_read_file(path, &buf, NULL, (size_t)1 << 30, err);
    if (rc) return rc;
    enum { MAXF = PF_MAX_CLASSES + 64 };
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
    line[strcspn(line, "\r")] = '\0';
    int nf = split_csv(line, f, MAXF);
    sweep_columns c;
    if (find_columns(f, nf, &c) != 0) {
        rc = pf_fail(err, PF_EINPUT, "%s: not a pathfinder sweep table (header)", path);
        goto done;
    }
    long lineno = 1;
    while ((line = strtok_r(NULL, "\n", &save))) {
        lineno++;
        line[strcspn(line, "\r")] = '\0';
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
        double epochs, idx, diverged = 0;
        int bad = field_double(f[c.beta], &r->point.beta) | field_double(f[c.train_loss], &r->m.train.loss) |
                  field_double(f[c.reg_loss], &r->m.reg_loss) | field_double(f[c.test_loss], &r->m.test.loss) |
                  field_double(f[c.test_acc], &r->m.test.accuracy) | field_double(f[c.r], &r->m.r) |
                  field_double(f[c.train_acc], &r->m.train.accuracy) | field_double(f[c.epochs], &epochs) |
                  field_double(f[c.seconds], &r->seconds) | field_double(f[c.index], &idx);
        if (c.diverged >= 0) bad |= field_double(f[c.diverged], &diverged);
        for (int k = 0; k < c.K; k++) bad |= field_double(f[c.cls0 + k], &r->m.test.class_accuracy[k]);
        const char *dir = f[c.dir];
        if (bad || (strcmp(dir, "up") && strcmp(dir, "down")) || !(r->point.beta >= 0) ||
            !isfinite(r->point.beta) || !(idx >= 0) || idx > 1e15 || !(epochs >= 0) || epochs > 1e9) {
            rc = pf_fail(err, PF_EINPUT, "%s:%ld: malformed row", path, lineno);
            goto done;
        }
        r->m.beta = r->point.beta;
        r->m.test.n_classes = c.K;
        if (c.lmin >= 0 && c.lmax >= 0 && c.hconv >= 0) {
            double h[3];
            if (field_double(f[c.lmin], &h[0]) || field_double(f[c.lmax], &h[1]) ||
                field_double(f[c.hconv], &h[2])) {
                rc = pf_fail(err, PF_EINPUT, "%s:%ld: malformed Hessian columns", path, lineno);
                goto done;
            }
            r->has_hessian = !isnan(h[0]);
            r->lambda_min_E = h[0];
            r->lambda_max_E = h[1];
            r->hessian_converged = h[2] != 0;
        }
        if (c.grad_norm >= 0 && c.certified >= 0 && c.escapes >= 0 && c.certify_eps >= 0) {
            double g[4];
            if (field_double(f[c.grad_norm], &g[0]) || field_double(f[c.certified], &g[1]) ||
                field_double(f[c.escapes], &g[2]) || field_double(f[c.certify_eps], &g[3]) ||
                !(g[2] >= 0 && g[2] <= 1e6)) {
                rc = pf_fail(err, PF_EINPUT, "%s:%ld: malformed certificate columns", path, lineno);
                goto done;
            }
            r->has_certificate = !isnan(g[0]);
            r->grad_norm = g[0];
            r->certified = g[1] != 0;
            r->escapes = (int)g[2];
            r->certify_eps = g[3];
        }
        r->point.direction = strcmp(dir, "up") == 0 ? 1 : -1;
        r->epochs = (int)epochs;
        r->index = (long)idx;
        r->diverged = diverged != 0;
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


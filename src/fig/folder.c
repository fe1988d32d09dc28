/* The figures of a run folder, drawn from its files: a sweep folder's
 * phase diagrams, per-class heat maps, hysteresis loop and hierarchy (from
 * sweep.csv, transitions.json and phases.json), or a merged hierarchy's
 * figure (from phases.json alone). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "pathfinder/fig.h"
#include "fig/figures.h"
#include "run/tables.h"

static int exists(const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static cJSON *read_json(const char *dir, const char *name, pf_error *err)
{
    char path[4200], *text;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (pf_read_file(path, &text, NULL, (size_t)1 << 28, err)) return NULL;
    cJSON *o = cJSON_Parse(text);
    free(text);
    if (!o) pf_fail(err, PF_EINPUT, "%s: not valid JSON", path);
    return o;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static void set_from_json(uint64_t *set, const cJSON *arr)
{
    memset(set, 0, PF_MAX_CLASSES / 8);
    const cJSON *k;
    cJSON_ArrayForEach(k, arr)
    {
        int c = cJSON_IsNumber(k) ? (int)k->valuedouble : -1;
        if (c >= 0 && c < PF_MAX_CLASSES) set[c / 64] |= (uint64_t)1 << (c % 64);
    }
}

/* phases.json's hierarchy back into a pf_hierarchy (nodes allocated). */
static int hierarchy_from_json(const cJSON *pj, pf_hierarchy *h, pf_error *err)
{
    memset(h, 0, sizeof *h);
    const cJSON *hj = cJSON_GetObjectItemCaseSensitive(pj, "hierarchy");
    const cJSON *basins = cJSON_GetObjectItemCaseSensitive(hj, "basins");
    if (!cJSON_IsArray(basins)) return pf_fail(err, PF_EINPUT, "phases.json: no hierarchy");
    int n = cJSON_GetArraySize(basins);
    h->n_classes = (int)num(hj, "n_classes");
    if (!(h->n_classes >= 0 && h->n_classes <= PF_MAX_CLASSES))
        return pf_fail(err, PF_EINPUT, "phases.json: bad class count");
    h->consistent = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(hj, "nested"));
    h->nodes = calloc((size_t)(n > 0 ? n : 1), sizeof *h->nodes);
    if (!h->nodes) return pf_fail(err, PF_ERUNTIME, "out of memory");
    const cJSON *b;
    cJSON_ArrayForEach(b, basins)
    {
        pf_basin *x = &h->nodes[h->n++];
        set_from_json(x->set, cJSON_GetObjectItemCaseSensitive(b, "classes"));
        set_from_json(x->partial, cJSON_GetObjectItemCaseSensitive(b, "partial"));
        x->size = (int)num(b, "size");
        x->trivial = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "trivial"));
        x->unresolved = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "unresolved"));
        x->parent = (int)num(b, "parent");
        if (x->parent < -1 || x->parent >= n) x->parent = -1;
        x->seen = (int)num(b, "phases_seen");
        x->beta_min = num(b, "beta_min");
        x->beta_max = num(b, "beta_max");
    }
    return PF_OK;
}

static int cmp_beta(const void *a, const void *b)
{
    double x = ((const pf_point_result *)a)->point.beta, y = ((const pf_point_result *)b)->point.beta;
    return (x > y) - (x < y);
}

/* The rows of one leg in ascending beta (diverged points left out, as the
 * analysis leaves them out) and its transitions from transitions.json. */
static int leg_of(const pf_point_result *rows, long n, const cJSON *tj, int direction,
                  pf_point_result **leg, long *n_leg, pf_transition **t, long *nt, pf_error *err)
{
    *leg = malloc((size_t)(n > 0 ? n : 1) * sizeof **leg);
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(tj, "transitions");
    *t = malloc((size_t)(cJSON_GetArraySize(ts) + 1) * sizeof **t);
    if (!*leg || !*t) return pf_fail(err, PF_ERUNTIME, "out of memory");
    *n_leg = 0;
    for (long i = 0; i < n; i++)
        if (rows[i].point.direction == direction && !rows[i].diverged) (*leg)[(*n_leg)++] = rows[i];
    qsort(*leg, (size_t)*n_leg, sizeof **leg, cmp_beta);
    *nt = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, ts)
    {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "direction");
        if (!cJSON_IsString(d) || strcmp(d->valuestring, direction > 0 ? "up" : "down")) continue;
        pf_transition *x = &(*t)[(*nt)++];
        memset(x, 0, sizeof *x);
        x->beta_below = num(o, "beta_below");
        x->beta_above = num(o, "beta_above");
        x->major = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "major"));
    }
    return PF_OK;
}

/* figures/fold_<label> for every transition with a fitted "fold". */
static int fold_figures(const char *dir, const cJSON *tj, pf_error *err)
{
    const cJSON *o;
    int rc = PF_OK;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(tj, "transitions"))
    {
        const cJSON *fj = cJSON_GetObjectItemCaseSensitive(o, "fold");
        const cJSON *label = cJSON_GetObjectItemCaseSensitive(o, "label");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "direction");
        if (!fj || !cJSON_IsString(label) || !cJSON_IsString(d) || !isfinite(num(fj, "beta_c"))) continue;
        const cJSON *pts = cJSON_GetObjectItemCaseSensitive(fj, "points"), *half = cJSON_GetObjectItemCaseSensitive(fj, "half");
        long n = cJSON_GetArraySize(pts), m = 0;
        double *beta = malloc((size_t)(n + 1) * sizeof *beta), *lam = malloc((size_t)(n + 1) * sizeof *lam);
        unsigned char *bis = malloc((size_t)(n + 1));
        if (!beta || !lam || !bis) {
            free(beta), free(lam), free(bis);
            return pf_fail(err, PF_ERUNTIME, "out of memory");
        }
        const cJSON *p;
        cJSON_ArrayForEach(p, pts)
        {
            const cJSON *from = cJSON_GetObjectItemCaseSensitive(p, "from");
            beta[m] = num(p, "beta"), lam[m] = num(p, "lambda_min_L");
            bis[m] = cJSON_IsString(from) && strcmp(from->valuestring, "bisection") == 0;
            m++;
        }
        pf_fig_fold_data f = {m, beta, lam, bis, strcmp(d->valuestring, "down") ? 1 : -1, num(fj, "beta_c"),
                              num(fj, "exponent"), num(fj, "amplitude"), num(half, "beta_c"), num(half, "amplitude")};
        char base[4200], title[128];
        snprintf(base, sizeof base, "%s/figures/fold_%s", dir, label->valuestring);
        snprintf(title, sizeof title, "Fold at %s: lowest eigenvalue of H_L on the metastable branch",
                 label->valuestring);
        rc = pf_fig_fold(base, &f, title, err);
        free(beta), free(lam), free(bis);
        if (rc) break;
    }
    return rc;
}

static int sweep_figures(const char *dir, pf_error *err)
{
    char path[4200], base[4200], title[128];
    snprintf(path, sizeof path, "%s/sweep.csv", dir);
    pf_point_result *rows = NULL, *leg[2] = {NULL, NULL};
    pf_transition *t[2] = {NULL, NULL};
    long n = 0, n_leg[2] = {0, 0}, nt[2] = {0, 0};
    pf_hierarchy h = {0};
    cJSON *tj = NULL, *pj = NULL;
    int rc = pf_sweep_csv_read(path, &rows, &n, err);
    if (!rc && !(tj = read_json(dir, "transitions.json", err))) rc = err->code ? err->code : PF_EINPUT;
    for (int l = 0; l < 2 && !rc; l++) rc = leg_of(rows, n, tj, l ? -1 : 1, &leg[l], &n_leg[l], &t[l], &nt[l], err);
    snprintf(path, sizeof path, "%s/figures", dir);
    if (!rc) rc = pf_make_dirs(path, err);
    for (int l = 0; l < 2 && !rc; l++) {
        if (n_leg[l] == 0) continue;
        const char *name = l ? "down" : "up";
        snprintf(base, sizeof base, "%s/figures/phase_diagram_%s", dir, name);
        snprintf(title, sizeof title, "Phase diagram (%s sweep)", name);
        rc = pf_fig_phase_diagram(base, leg[l], n_leg[l], t[l], nt[l], title, err);
        if (rc || leg[l][0].m.test.n_classes == 0) continue;
        snprintf(base, sizeof base, "%s/figures/class_accuracy_%s", dir, name);
        snprintf(title, sizeof title, "Per-class test accuracy (%s sweep)", name);
        rc = pf_fig_class_heatmap(base, leg[l], n_leg[l], t[l], nt[l], title, err);
    }
    if (!rc) rc = fold_figures(dir, tj, err);
    if (!rc && n_leg[0] > 0 && n_leg[1] > 0) {
        snprintf(base, sizeof base, "%s/figures/hysteresis", dir);
        rc = pf_fig_hysteresis(base, leg[0], n_leg[0], leg[1], n_leg[1], "Hysteresis: up and down sweeps", err);
    }
    if (!rc && exists(dir, "phases.json")) {
        if (!(pj = read_json(dir, "phases.json", err))) rc = err->code ? err->code : PF_EINPUT;
        if (!rc) rc = hierarchy_from_json(pj, &h, err);
        snprintf(base, sizeof base, "%s/figures/hierarchy", dir);
        if (!rc && h.n > 0) rc = pf_fig_hierarchy(base, &h, "Hierarchy of accuracy basins", err);
    }
    pf_hierarchy_free(&h);
    cJSON_Delete(tj);
    cJSON_Delete(pj);
    for (int l = 0; l < 2; l++) free(leg[l]), free(t[l]);
    free(rows);
    return rc;
}

static int hierarchy_figure(const char *dir, pf_error *err)
{
    pf_hierarchy h = {0};
    cJSON *pj = read_json(dir, "phases.json", err);
    if (!pj) return err->code ? err->code : PF_EINPUT;
    char path[4200], base[4200];
    snprintf(path, sizeof path, "%s/figures", dir);
    int rc = pf_make_dirs(path, err);
    if (!rc) rc = hierarchy_from_json(pj, &h, err);
    snprintf(base, sizeof base, "%s/figures/hierarchy", dir);
    if (!rc) rc = pf_fig_hierarchy(base, &h, "Hierarchy of accuracy basins", err);
    pf_hierarchy_free(&h);
    cJSON_Delete(pj);
    return rc;
}

int pf_fig_folder(const char *dir, pf_error *err)
{
    if (exists(dir, "sweep.csv")) return sweep_figures(dir, err);
    if (exists(dir, "path.csv")) return pf_fig_pair_folder(dir, err);
    if (exists(dir, "phases.json")) return hierarchy_figure(dir, err);
    return pf_fail(err, PF_EINPUT, "%s: no sweep.csv, path.csv or phases.json to draw", dir);
}

/* ---- pair folders ---------------------------------------------------------------- */

/* A CSV table of numbers with a header, columns found by name; cells that
 * are not numbers (the kind column) are kept as text in a parallel array. */
typedef struct {
    int n_cols;
    long n_rows;
    char **names;
    double *v;        /* (n_rows, n_cols) */
    char **text;      /* (n_rows, n_cols): the cell, for non-numeric cells, else NULL */
    char *buf;
} table;

static void table_free(table *t)
{
    free(t->names);
    free(t->v);
    free(t->text);
    free(t->buf);
    memset(t, 0, sizeof *t);
}

static int table_col(const table *t, const char *name)
{
    for (int i = 0; i < t->n_cols; i++)
        if (strcmp(t->names[i], name) == 0) return i;
    return -1;
}

static int table_read(const char *dir, const char *name, table *t, pf_error *err)
{
    memset(t, 0, sizeof *t);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = pf_read_file(path, &t->buf, NULL, (size_t)1 << 30, err);
    if (rc) return rc;
    long lines = 0;
    for (char *p = t->buf; *p; p++) lines += *p == '\n';
    char *save = NULL, *line = strtok_r(t->buf, "\n", &save);
    if (!line) return pf_fail(err, PF_EINPUT, "%s: empty table", path);
    int cols = 1;
    for (char *p = line; *p; p++) cols += *p == ',';
    t->names = malloc((size_t)cols * sizeof *t->names);
    t->v = malloc((size_t)(lines + 1) * (size_t)cols * sizeof *t->v);
    t->text = calloc((size_t)(lines + 1) * (size_t)cols, sizeof *t->text);
    if (!t->names || !t->v || !t->text) return pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
    for (char *p = line, *c;; p = c + 1) {
        c = strchr(p, ',');
        if (c) *c = '\0';
        t->names[t->n_cols++] = p;
        if (!c) break;
    }
    while ((line = strtok_r(NULL, "\n", &save))) {
        int k = 0;
        for (char *p = line, *c; k < t->n_cols; p = c + 1) {
            c = strchr(p, ',');
            if (c) *c = '\0';
            char *end;
            double x = strtod(p, &end);
            size_t at = (size_t)t->n_rows * (size_t)t->n_cols + (size_t)k++;
            t->v[at] = end != p && !*end ? x : NAN;
            if (end == p || *end) t->text[at] = p;
            if (!c) break;
        }
        if (k != t->n_cols) return pf_fail(err, PF_EINPUT, "%s: row %ld has %d fields, not %d", path,
                                           t->n_rows + 2, k, t->n_cols);
        t->n_rows++;
    }
    return PF_OK;
}

static double cell(const table *t, long row, int col)
{
    return col < 0 ? NAN : t->v[(size_t)row * (size_t)t->n_cols + (size_t)col];
}

/* profile.csv's curve ("path" or "line") as a profile (arrays allocated). */
static int profile_of(const table *t, const char *curve, pf_profile *p, pf_error *err)
{
    memset(p, 0, sizeof *p);
    int c_curve = table_col(t, "curve"), c_s = table_col(t, "s"), c_tr = table_col(t, "train_error");
    int c_te = table_col(t, "test_error"), c_va = table_col(t, "val_error"), c_node = table_col(t, "node");
    if (c_curve < 0 || c_s < 0 || c_tr < 0 || c_te < 0 || c_node < 0)
        return pf_fail(err, PF_EINPUT, "profile.csv: not a pathfinder profile table");
    size_t cap = (size_t)(t->n_rows > 0 ? t->n_rows : 1);
    p->s = malloc(cap * sizeof *p->s);
    p->train_error = malloc(cap * sizeof *p->train_error);
    p->test_error = malloc(cap * sizeof *p->test_error);
    p->val_error = malloc(cap * sizeof *p->val_error);
    p->node = malloc(cap);
    if (!p->s || !p->train_error || !p->test_error || !p->val_error || !p->node)
        return pf_fail(err, PF_ERUNTIME, "out of memory");
    p->cap = (long)cap;
    for (long i = 0; i < t->n_rows; i++) {
        const char *name = t->text[(size_t)i * (size_t)t->n_cols + (size_t)c_curve];
        if (!name || strcmp(name, curve)) continue;
        p->s[p->n] = cell(t, i, c_s);
        p->train_error[p->n] = cell(t, i, c_tr);
        p->test_error[p->n] = cell(t, i, c_te);
        p->val_error[p->n] = cell(t, i, c_va);
        p->node[p->n] = cell(t, i, c_node) != 0;
        p->n++;
    }
    return PF_OK;
}

/* The main path's points (kind "point") of path.csv, with what the figure
 * of the path against beta draws: beta, the errors, the distances. */
static int points_of(const table *t, pf_path_point **pts, long *n, pf_error *err)
{
    int c_kind = table_col(t, "kind"), c_beta = table_col(t, "L2_strength");
    int c_trl = table_col(t, "Train_Loss"), c_tel = table_col(t, "Test_Loss");
    int c_tra = table_col(t, "Train_Accuracy"), c_tea = table_col(t, "Test_Accuracy");
    int c_a = table_col(t, "dist_A"), c_b = table_col(t, "dist_B");
    if (c_kind < 0 || c_beta < 0 || c_tra < 0 || c_tea < 0 || c_a < 0 || c_b < 0)
        return pf_fail(err, PF_EINPUT, "path.csv: not a pathfinder path table");
    int K = 0;
    while (K < PF_MAX_CLASSES) {
        char name[64];
        snprintf(name, sizeof name, "Class_%d_Accuracy", K);
        if (table_col(t, name) < 0) break;
        K++;
    }
    *pts = calloc((size_t)(t->n_rows > 0 ? t->n_rows : 1), sizeof **pts);
    if (!*pts) return pf_fail(err, PF_ERUNTIME, "out of memory");
    *n = 0;
    for (long i = 0; i < t->n_rows; i++) {
        const char *kind = t->text[(size_t)i * (size_t)t->n_cols + (size_t)c_kind];
        if (!kind || strcmp(kind, "point")) continue;
        pf_path_point *p = &(*pts)[(*n)++];
        p->res.point.beta = cell(t, i, c_beta);
        p->res.m.train.loss = cell(t, i, c_trl);
        p->res.m.test.loss = cell(t, i, c_tel);
        p->res.m.train.accuracy = cell(t, i, c_tra);
        p->res.m.test.accuracy = cell(t, i, c_tea);
        p->res.m.train.n = p->res.m.test.n = 1;
        p->res.m.train.n_classes = p->res.m.test.n_classes = K;
        p->dist_start = cell(t, i, c_a);
        p->dist_anchor = p->res.m.r = cell(t, i, c_b);
    }
    return PF_OK;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int pf_fig_pair_folder(const char *dir, pf_error *err)
{
    table path = {0}, prof = {0};
    pf_profile on_path = {0}, on_line = {0};
    pf_path_point *pts = NULL;
    pf_transition *t = NULL;
    long n_pts = 0, nt = 0;
    cJSON *tj = NULL;
    int rc = table_read(dir, "path.csv", &path, err);
    if (!rc) rc = table_read(dir, "profile.csv", &prof, err);
    if (!rc && !(tj = read_json(dir, "transitions.json", err))) rc = err->code ? err->code : PF_EINPUT;
    if (!rc) rc = profile_of(&prof, "path", &on_path, err);
    if (!rc) rc = profile_of(&prof, "line", &on_line, err);
    if (!rc) rc = points_of(&path, &pts, &n_pts, err);
    if (!rc) {
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(tj, "transitions"), *o;
        t = calloc((size_t)(cJSON_GetArraySize(ts) + 1), sizeof *t);
        if (!t) rc = pf_fail(err, PF_ERUNTIME, "out of memory");
        cJSON_ArrayForEach(o, ts) if (t)
        {
            t[nt].beta_below = num(o, "beta_below");
            t[nt].beta_above = num(o, "beta_above");
            nt++;
        }
    }
    if (!rc) {
        const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(tj, "command");
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(tj, "a"), *b = cJSON_GetObjectItemCaseSensitive(tj, "b");
        const cJSON *unit = cJSON_GetObjectItemCaseSensitive(tj, "error_unit");
        int probe = cJSON_IsString(cmd) && strcmp(cmd->valuestring, "probe") == 0;
        char title[1024], base[4200];
        snprintf(title, sizeof title, "%s: %s → %s", probe ? "Probe" : "Pathfinder path",
                 cJSON_IsString(a) ? base_name(a->valuestring) : "A",
                 cJSON_IsString(b) ? base_name(b->valuestring) : "B");
        const char *ylabel = cJSON_IsString(unit) && strcmp(unit->valuestring, "loss") == 0 ? "loss" : "error (%)";
        snprintf(base, sizeof base, "%s/path_profile", dir);
        rc = pf_fig_path_profile(base, &on_path, &on_line, title, ylabel, err);
        snprintf(base, sizeof base, "%s/path_beta", dir);
        if (!rc)
            rc = pf_fig_path_beta(base, pts, n_pts, t, nt, probe ? "from" : "A", probe ? "anchor" : "B",
                                  title, err);
    }
    cJSON_Delete(tj);
    free(t);
    free(pts);
    pf_profile_free(&on_path);
    pf_profile_free(&on_line);
    table_free(&path);
    table_free(&prof);
    return rc;
}

/* Post-processing of a sweep folder: detection, refinement, phases, the
 * hierarchy, figures and the summary table. Every output can be rebuilt
 * from sweep.csv (and the checkpoints, for refinement), so rerunning is
 * always safe; refinements already in transitions.json are reused. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "post.h"

void post_options_default(post_options *o)
{
    memset(o, 0, sizeof *o);
    pf_detect_config_default(&o->detect);
    o->refine = 1;
    o->refine_tol = 1e-6;
    pf_encoding_default(&o->encoding);
}

const cli_option post_detect_rows[] = {
    {CLI_SECTION, .help = "Transitions:"},
    {CLI_INT, "window", "N", CLI_OFF(post_options, detect.window), 2, 1000, 0,
     "points on each side for the local trends", .given = 0},
    {CLI_DOUBLE, "threshold", "X", CLI_OFF(post_options, detect.threshold), 0, INFINITY, CLI_LO_OPEN,
     "jump of log r over the local noise needed for a transition", .given = 0},
    {CLI_DOUBLE, "min-jump", "X", CLI_OFF(post_options, detect.min_rel_jump), 0, INFINITY, 0,
     "smallest relative drop of r that counts", .given = 0},
    {CLI_DOUBLE, "gap-factor", "X", CLI_OFF(post_options, detect.gap_factor), 0, INFINITY, 0,
     "a grid step this many times wider than its neighbours' (in beta and in log beta) is a phase "
     "boundary, not a transition (0: never)", .given = 0},
    {CLI_DOUBLE, "encoded-threshold", "P", CLI_OFF(post_options, encoding.threshold), 0, 100, 0,
     "a class is encoded on a plateau when its mean test accuracy there is above P percent...", .given = 0},
    {CLI_DOUBLE, "encoded-fraction", "F", CLI_OFF(post_options, encoding.fraction), 0, 1, 0,
     "...and it is above P on at least F of the plateau's points (0: the mean alone); classes above "
     "P on a quarter of the points or more but not encoded are partial", .given = 0},
    {CLI_END},
};

const cli_option post_refine_rows[] = {
    {CLI_DOUBLE, "refine-tol", "X", CLI_OFF(post_options, refine_tol), 0, INFINITY, CLI_LO_OPEN,
     "bisect each transition in beta down to an interval of X", .given = 0},
    {CLI_FLAG, "no-refine", NULL, CLI_OFF(post_options, no_refine), .help =
     "detect transitions but do not bisect them"},
    {CLI_END},
};

void post_options_finish(post_options *o)
{
    if (o->no_refine) o->refine = 0;
}

int post_make_dir(const char *path, pf_error *err) { return pf_make_dirs(path, err); }

int post_make_dirs(const char *dir, pf_error *err)
{
    char path[4096];
    int rc = pf_make_dirs(dir, err);
    const char *subs[] = {"checkpoints", "figures", "transitions"};
    for (int i = 0; !rc && i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, subs[i]);
        rc = pf_make_dirs(path, err);
    }
    return rc;
}

static void checkpoint_path(char *buf, size_t n, const char *dir, long index)
{
    snprintf(buf, n, "%s/checkpoints/p%05ld.safetensors", dir, index);
}

int post_write_point_checkpoint(const char *dir, const pf_point_result *res, const pf_arch *arch,
                                const float *theta, const char *anchor, uint64_t seed,
                                const char *dataset, pf_error *err)
{
    char path[4096];
    checkpoint_path(path, sizeof path, dir, res->index);
    pf_ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.beta = res->point.beta;
    snprintf(meta.anchor, sizeof meta.anchor, "%s", anchor ? anchor : "origin");
    meta.seed = seed;
    snprintf(meta.dataset, sizeof meta.dataset, "%s", dataset);
    snprintf(meta.extra, sizeof meta.extra, "{\"sweep_index\":%ld,\"direction\":\"%s\",\"epochs\":%d}",
             res->index, res->point.direction > 0 ? "up" : "down", res->epochs);
    return pf_ckpt_write(path, arch, theta, &meta, err);
}

static void boundary_sets(const post_leg *g, long p, uint64_t *lost, uint64_t *gained);
static long phase_below_transition(const post_leg *g, long k);

/* ---- one leg (direction) of a sweep, in ascending beta ------------------- */

int post_leg_build(post_leg *g, const pf_point_result *rows, long n_rows, int direction,
                   const pf_detect_config *dc, const pf_encoding *enc, pf_error *err)
{
    memset(g, 0, sizeof *g);
    g->direction = direction;
    for (long i = 0; i < n_rows; i++) g->n += rows[i].point.direction == direction;
    if (g->n == 0) return PF_OK;
    int K = rows[0].m.test.n_classes;
    g->n_classes = K;
    g->rows = malloc((size_t)g->n * sizeof *g->rows);
    g->sorted = malloc((size_t)g->n * sizeof *g->sorted);
    double *buf = malloc((size_t)g->n * (5 + (size_t)(K ? K : 1)) * sizeof *buf);
    if (!g->rows || !g->sorted || !buf) {
        free(buf);
        post_leg_free(g);
        return pf_fail(err, PF_ERUNTIME, "out of memory");
    }
    long k = 0;
    for (long i = 0; i < n_rows; i++)
        if (rows[i].point.direction == direction) g->rows[k++] = &rows[i];
    if (direction < 0) /* the down leg was visited in descending beta */
        for (long i = 0; i < g->n / 2; i++) {
            const pf_point_result *t = g->rows[i];
            g->rows[i] = g->rows[g->n - 1 - i];
            g->rows[g->n - 1 - i] = t;
        }
    for (long i = 1; i < g->n; i++)
        if (!(g->rows[i]->point.beta > g->rows[i - 1]->point.beta)) {
            free(buf);
            post_leg_free(g);
            return pf_fail(err, PF_EINPUT, "sweep table: betas of the %s leg are not monotonic",
                           direction > 0 ? "up" : "down");
        }
    g->buf = buf;
    g->beta = buf, g->r = buf + g->n, g->loss = buf + 2 * g->n, g->reg = buf + 3 * g->n;
    g->acc = buf + 4 * g->n, g->class_acc = buf + 5 * g->n;
    for (long i = 0; i < g->n; i++) {
        const pf_point_result *r = g->rows[i];
        g->sorted[i] = *r;
        g->beta[i] = r->point.beta;
        g->r[i] = r->m.r;
        g->loss[i] = r->m.train.loss;
        g->reg[i] = r->m.reg_loss;
        g->acc[i] = r->m.test.accuracy;
        for (int c = 0; c < K; c++) g->class_acc[i * K + c] = r->m.test.class_accuracy[c];
    }
    pf_curve curve = {g->n, g->beta, g->r, g->loss, g->reg, g->acc};
    /* Gaps split phases (beta = 0 before 0.02, 0.0205, ... is its own) but
     * are not transitions: the detector fits no trend across them. */
    int rc = pf_detect_gaps(g->beta, g->n, dc, &g->gaps, &g->ng, err);
    if (!rc) rc = pf_detect_transitions(&curve, dc, &g->t, &g->nt, err);
    if (!rc && K > 0)
        rc = pf_phases(g->beta, g->acc, g->loss, g->r, g->class_acc, g->n, K, g->t, g->nt,
                       g->gaps, g->ng, enc, PF_LOSS_CE, &g->ph, &g->nph, err);
    /* A transition that changes which classes are encoded is major too, even
     * when the test accuracy moves by less than the detector's threshold. */
    for (long k = 0; !rc && g->ph && k < g->nt; k++) {
        uint64_t lost[PF_MAX_CLASSES / 64], gained[PF_MAX_CLASSES / 64];
        boundary_sets(g, phase_below_transition(g, k), lost, gained);
        if (pf_set_count(lost, K) || pf_set_count(gained, K)) g->t[k].major = 1;
    }
    if (rc) post_leg_free(g);
    return rc;
}

void post_leg_free(post_leg *g)
{
    free(g->rows);
    free(g->sorted);
    free(g->buf);
    free(g->t);
    free(g->gaps);
    free(g->ph);
    free(g->refined);
    free(g->has_refined);
    memset(g, 0, sizeof *g);
}

/* ---- JSON ----------------------------------------------------------------- */

static cJSON *set_json(const uint64_t *set, int K)
{
    cJSON *a = cJSON_CreateArray();
    for (int k = 0; k < K; k++)
        if (pf_set_has(set, k)) cJSON_AddItemToArray(a, cJSON_CreateNumber(k));
    return a;
}

/* The phase just below transition k (pf_phases records which it is). */
static long phase_below_transition(const post_leg *g, long k)
{
    for (long p = 0; p + 1 < g->nph; p++)
        if (g->ph[p].bound_to == PF_BOUND_TRANSITION && g->ph[p].transition_to == k) return p;
    return -1;
}

/* The phase just below gap k. */
static long phase_below_gap(const post_leg *g, long k)
{
    for (long p = 0; p + 1 < g->nph; p++)
        if (g->ph[p].bound_to == PF_BOUND_GAP && g->ph[p].last == g->gaps[k]) return p;
    return -1;
}

/* Across the boundary between phases p and p + 1: lost = before \ after,
 * gained = after \ before, in the leg's direction of travel (both empty
 * when p is not a boundary). */
static void boundary_sets(const post_leg *g, long p, uint64_t *lost, uint64_t *gained)
{
    memset(lost, 0, PF_MAX_CLASSES / 8);
    memset(gained, 0, PF_MAX_CLASSES / 8);
    if (p < 0 || p + 1 >= g->nph) return;
    const pf_phase *lo = &g->ph[p], *hi = &g->ph[p + 1];
    const pf_phase *before = g->direction > 0 ? lo : hi, *after = g->direction > 0 ? hi : lo;
    for (int w = 0; w < PF_MAX_CLASSES / 64; w++) {
        lost[w] = before->encoded[w] & ~after->encoded[w];
        gained[w] = after->encoded[w] & ~before->encoded[w];
    }
}

static const char *leg_name(const post_leg *g) { return g->direction > 0 ? "up" : "down"; }

static void transition_label(char *buf, size_t n, const post_leg *g, long k)
{
    snprintf(buf, n, "%s%ld", g->direction > 0 ? "T" : "D", k + 1);
}

cJSON *post_transitions_json(const post_leg *g)
{
    cJSON *arr = cJSON_CreateArray();
    for (long k = 0; k < g->nt; k++) {
        const pf_transition *t = &g->t[k];
        char label[32];
        transition_label(label, sizeof label, g, k);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "label", label);
        cJSON_AddStringToObject(o, "direction", leg_name(g));
        cJSON_AddNumberToObject(o, "beta_below", t->beta_below);
        cJSON_AddNumberToObject(o, "beta_above", t->beta_above);
        cJSON_AddNumberToObject(o, "index_below", (double)g->sorted[t->below].index);
        cJSON_AddNumberToObject(o, "index_above", (double)g->sorted[t->above].index);
        cJSON_AddNumberToObject(o, "r_below", t->r_below);
        cJSON_AddNumberToObject(o, "r_above", t->r_above);
        cJSON_AddNumberToObject(o, "jump_log_r", t->jump_r);
        cJSON_AddNumberToObject(o, "train_loss_below", t->loss_below);
        cJSON_AddNumberToObject(o, "train_loss_above", t->loss_above);
        cJSON_AddNumberToObject(o, "jump_log_train_loss", t->jump_loss);
        cJSON_AddNumberToObject(o, "reg_loss_below", t->reg_below);
        cJSON_AddNumberToObject(o, "reg_loss_above", t->reg_above);
        cJSON_AddNumberToObject(o, "test_accuracy_below", t->acc_below);
        cJSON_AddNumberToObject(o, "test_accuracy_above", t->acc_above);
        cJSON_AddNumberToObject(o, "jump_test_accuracy", t->jump_accuracy);
        cJSON_AddNumberToObject(o, "score", t->score);
        cJSON_AddBoolToObject(o, "major", t->major);
        if (g->ph) {
            uint64_t lost[PF_MAX_CLASSES / 64], gained[PF_MAX_CLASSES / 64];
            boundary_sets(g, phase_below_transition(g, k), lost, gained);
            cJSON_AddItemToObject(o, "classes_lost", set_json(lost, g->n_classes));
            cJSON_AddItemToObject(o, "classes_gained", set_json(gained, g->n_classes));
        }
        if (g->has_refined && g->has_refined[k]) {
            const pf_refined *f = &g->refined[k];
            cJSON *r = cJSON_AddObjectToObject(o, "refined");
            cJSON_AddNumberToObject(r, "beta_from", f->beta_from);
            cJSON_AddNumberToObject(r, "beta_to", f->beta_to);
            cJSON_AddNumberToObject(r, "r_from", f->from.r);
            cJSON_AddNumberToObject(r, "r_to", f->to.r);
            cJSON_AddNumberToObject(r, "test_accuracy_from", f->from.test.accuracy);
            cJSON_AddNumberToObject(r, "test_accuracy_to", f->to.test.accuracy);
            cJSON_AddNumberToObject(r, "train_loss_from", f->from.train.loss);
            cJSON_AddNumberToObject(r, "train_loss_to", f->to.train.loss);
            cJSON_AddNumberToObject(r, "steps", f->steps);
            cJSON_AddNumberToObject(r, "seconds", f->seconds);
            char path[64];
            snprintf(path, sizeof path, "transitions/%s_%s.safetensors", label,
                     g->direction > 0 ? "below" : "above");
            cJSON_AddStringToObject(r, "model_from", path);
            snprintf(path, sizeof path, "transitions/%s_%s.safetensors", label,
                     g->direction > 0 ? "above" : "below");
            cJSON_AddStringToObject(r, "model_to", path);
        }
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

cJSON *post_gaps_json(const post_leg *g)
{
    cJSON *arr = cJSON_CreateArray();
    for (long k = 0; k < g->ng; k++) {
        long i = g->gaps[k];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "direction", leg_name(g));
        cJSON_AddNumberToObject(o, "beta_below", g->beta[i]);
        cJSON_AddNumberToObject(o, "beta_above", g->beta[i + 1]);
        cJSON_AddNumberToObject(o, "index_below", (double)g->sorted[i].index);
        cJSON_AddNumberToObject(o, "index_above", (double)g->sorted[i + 1].index);
        if (g->ph) {
            uint64_t lost[PF_MAX_CLASSES / 64], gained[PF_MAX_CLASSES / 64];
            boundary_sets(g, phase_below_gap(g, k), lost, gained);
            cJSON_AddItemToObject(o, "classes_lost", set_json(lost, g->n_classes));
            cJSON_AddItemToObject(o, "classes_gained", set_json(gained, g->n_classes));
        }
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

/* A phase named as its node in the hierarchy would be. */
static void phase_label(char *buf, size_t n, const pf_phase *q)
{
    pf_basin b;
    memset(&b, 0, sizeof b);
    b.trivial = q->trivial;
    b.unresolved = q->unresolved;
    memcpy(b.set, q->encoded, sizeof b.set);
    memcpy(b.partial, q->partial, sizeof b.partial);
    pf_basin_label(&b, q->n_classes, buf, n);
}

/* "end", "gap" or "transition", and the transition's label. */
static void add_bound(cJSON *o, const post_leg *g, const char *side, pf_bound kind, long transition)
{
    char key[32], label[32];
    snprintf(key, sizeof key, "bound_%s", side);
    cJSON_AddStringToObject(o, key, pf_bound_name(kind));
    if (kind != PF_BOUND_TRANSITION || transition < 0) return;
    snprintf(key, sizeof key, "transition_%s", side);
    transition_label(label, sizeof label, g, transition);
    cJSON_AddStringToObject(o, key, label);
}

cJSON *post_phases_json(const post_leg *g)
{
    cJSON *arr = cJSON_CreateArray();
    for (long p = 0; g->ph && p < g->nph; p++) {
        const pf_phase *q = &g->ph[p];
        char label[4 * PF_MAX_CLASSES + 32];
        phase_label(label, sizeof label, q);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "direction", leg_name(g));
        cJSON_AddStringToObject(o, "label", label);
        cJSON_AddNumberToObject(o, "beta_from", q->beta_from);
        cJSON_AddNumberToObject(o, "beta_to", q->beta_to);
        add_bound(o, g, "from", q->bound_from, q->transition_from);
        add_bound(o, g, "to", q->bound_to, q->transition_to);
        cJSON_AddNumberToObject(o, "points", (double)(q->last - q->first + 1));
        cJSON_AddNumberToObject(o, "mean_test_accuracy", q->mean_accuracy);
        cJSON_AddNumberToObject(o, "mean_train_loss", q->mean_loss);
        cJSON_AddNumberToObject(o, "mean_r", q->mean_r);
        cJSON_AddBoolToObject(o, "trivial", q->trivial);
        cJSON_AddBoolToObject(o, "unresolved", q->unresolved);
        cJSON_AddItemToObject(o, "encoded", set_json(q->encoded, q->n_classes));
        cJSON_AddItemToObject(o, "partial", set_json(q->partial, q->n_classes));
        cJSON *cm = cJSON_AddArrayToObject(o, "class_mean_accuracy");
        for (int k = 0; k < q->n_classes; k++) cJSON_AddItemToArray(cm, cJSON_CreateNumber(q->class_mean[k]));
        cJSON *ca = cJSON_AddArrayToObject(o, "class_fraction_above");
        for (int k = 0; k < q->n_classes; k++) cJSON_AddItemToArray(ca, cJSON_CreateNumber(q->class_above[k]));
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

cJSON *post_hierarchy_json(const pf_hierarchy *h)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "nested", h->consistent);
    cJSON *arr = cJSON_AddArrayToObject(o, "basins");
    for (int i = 0; i < h->n; i++) {
        char label[4 * PF_MAX_CLASSES + 32];
        pf_basin_label(&h->nodes[i], h->n_classes, label, sizeof label);
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "label", label);
        cJSON_AddItemToObject(b, "classes", set_json(h->nodes[i].set, h->n_classes));
        cJSON_AddNumberToObject(b, "size", h->nodes[i].size);
        cJSON_AddBoolToObject(b, "trivial", h->nodes[i].trivial);
        cJSON_AddBoolToObject(b, "unresolved", h->nodes[i].unresolved);
        cJSON_AddItemToObject(b, "partial", set_json(h->nodes[i].partial, h->n_classes));
        cJSON_AddNumberToObject(b, "parent", h->nodes[i].parent);
        cJSON_AddNumberToObject(b, "phases_seen", h->nodes[i].seen);
        cJSON_AddNumberToObject(b, "beta_min", h->nodes[i].beta_min);
        cJSON_AddNumberToObject(b, "beta_max", h->nodes[i].beta_max);
        cJSON_AddItemToArray(arr, b);
    }
    return o;
}

int post_write_json(const char *path, cJSON *obj, pf_error *err)
{
    char *text = cJSON_Print(obj);
    if (!text) return pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
    int rc = pf_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

void post_print_tree(FILE *f, const pf_hierarchy *h)
{
    /* depth-first from each root; children in node order */
    int stack[2 * PF_MAX_CLASSES + 8], depth[2 * PF_MAX_CLASSES + 8];
    for (int root = 0; root < h->n; root++) {
        if (h->nodes[root].parent >= 0) continue;
        int sp = 0;
        stack[sp] = root, depth[sp++] = 0;
        while (sp > 0) {
            int i = stack[--sp], d = depth[sp];
            char label[4 * PF_MAX_CLASSES + 32];
            pf_basin_label(&h->nodes[i], h->n_classes, label, sizeof label);
            fprintf(f, "  %*s%s%s  (%d class%s; seen in %d phase%s; beta %.4g-%.4g)\n", 2 * d, "",
                    d ? "└─ " : "", label, h->nodes[i].size,
                    h->nodes[i].size == 1 ? "" : "es", h->nodes[i].seen, h->nodes[i].seen == 1 ? "" : "s", h->nodes[i].beta_min,
                    h->nodes[i].beta_max);
            for (int c = h->n - 1; c >= 0; c--)
                if (h->nodes[c].parent == i && sp < (int)(sizeof stack / sizeof *stack)) {
                    stack[sp] = c;
                    depth[sp++] = d + 1;
                }
        }
    }
}

/* ---- refinement ------------------------------------------------------------ */

/* Reuse refinements already recorded in DIR/transitions.json for the same
 * pair of sweep points. */
static void reuse_refinements(const char *dir, post_leg *g)
{
    char path[4096], *text;
    pf_error err;
    snprintf(path, sizeof path, "%s/transitions.json", dir);
    if (access(path, F_OK) != 0 || pf_read_file(path, &text, NULL, 1 << 26, &err)) return;
    cJSON *root = cJSON_Parse(text);
    free(text);
    cJSON *arr = root ? cJSON_GetObjectItemCaseSensitive(root, "transitions") : NULL, *o;
    cJSON_ArrayForEach(o, arr)
    {
        cJSON *ref = cJSON_GetObjectItemCaseSensitive(o, "refined");
        cJSON *dirn = cJSON_GetObjectItemCaseSensitive(o, "direction");
        if (!ref || !cJSON_IsString(dirn) || strcmp(dirn->valuestring, leg_name(g))) continue;
        double ib = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "index_below"));
        double ia = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "index_above"));
        for (long k = 0; k < g->nt; k++) {
            if ((double)g->sorted[g->t[k].below].index != ib ||
                (double)g->sorted[g->t[k].above].index != ia)
                continue;
            pf_refined *f = &g->refined[k];
            memset(f, 0, sizeof *f);
#define NUM(key) cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(ref, key))
            f->beta_from = NUM("beta_from");
            f->beta_to = NUM("beta_to");
            f->from.r = NUM("r_from");
            f->to.r = NUM("r_to");
            f->from.test.accuracy = NUM("test_accuracy_from");
            f->to.test.accuracy = NUM("test_accuracy_to");
            f->from.train.loss = NUM("train_loss_from");
            f->to.train.loss = NUM("train_loss_to");
            f->steps = (int)NUM("steps");
            f->seconds = NUM("seconds");
#undef NUM
            g->has_refined[k] = isfinite(f->beta_from) && isfinite(f->beta_to);
        }
    }
    cJSON_Delete(root);
}

static int refine_leg(const post_context *pc, post_leg *g, pf_error *err)
{
    if (g->nt == 0) return PF_OK;
    g->refined = calloc((size_t)g->nt, sizeof *g->refined);
    g->has_refined = calloc((size_t)g->nt, sizeof *g->has_refined);
    if (!g->refined || !g->has_refined) return pf_fail(err, PF_ERUNTIME, "out of memory");
    reuse_refinements(pc->dir, g);
    if (!pc->opt->refine || !pc->trainer) return PF_OK;
    size_t np = pc->arch->n_params;
    int rc = PF_OK;
    for (long k = 0; k < g->nt && !rc; k++) {
        char label[32], p_from[4096], p_to[4096];
        transition_label(label, sizeof label, g, k);
        const char *side_from = g->direction > 0 ? "below" : "above";
        const char *side_to = g->direction > 0 ? "above" : "below";
        char out_from[4096], out_to[4096];
        snprintf(out_from, sizeof out_from, "%s/transitions/%s_%s.safetensors", pc->dir, label, side_from);
        snprintf(out_to, sizeof out_to, "%s/transitions/%s_%s.safetensors", pc->dir, label, side_to);
        if (g->has_refined[k] && access(out_from, F_OK) == 0 && access(out_to, F_OK) == 0) continue;
        const pf_point_result *a = &g->sorted[g->direction > 0 ? g->t[k].below : g->t[k].above];
        const pf_point_result *b = &g->sorted[g->direction > 0 ? g->t[k].above : g->t[k].below];
        checkpoint_path(p_from, sizeof p_from, pc->dir, a->index);
        checkpoint_path(p_to, sizeof p_to, pc->dir, b->index);
        float *th_from = NULL, *th_to = NULL;
        pf_arch tmp;
        if ((rc = pf_ckpt_read(p_from, pc->arch, pc->arch, &tmp, &th_from, NULL, err)) ||
            (rc = pf_ckpt_read(p_to, pc->arch, pc->arch, &tmp, &th_to, NULL, err))) {
            free(th_from);
            break;
        }
        /* a refinement is reproducible on its own: its shuffling stream
         * depends only on the seed and the points it starts from */
        pf_rng_seed(&pc->trainer->rng, pc->seed * 1000003u + (uint64_t)a->index * 7919u + 17u);
        if (!pc->quiet)
            fprintf(stderr, "pathfinder: refining %s (%s) between beta %.6g and %.6g\n", label,
                    leg_name(g), a->point.beta, b->point.beta);
        rc = pf_refine_transition(pc->trainer, pc->train, pc->test, pc->cfg, th_from, a->point.beta,
                                  th_to, b->point.beta, pc->opt->refine_tol, &g->refined[k], err);
        pf_ckpt_meta meta;
        memset(&meta, 0, sizeof meta);
        snprintf(meta.anchor, sizeof meta.anchor, "%s", pc->anchor_path ? pc->anchor_path : "origin");
        meta.seed = pc->seed;
        snprintf(meta.dataset, sizeof meta.dataset, "%s", pc->train->name);
        if (!rc) {
            meta.beta = g->refined[k].beta_from;
            snprintf(meta.extra, sizeof meta.extra, "{\"transition\":\"%s\",\"side\":\"%s\"}", label, side_from);
            rc = pf_ckpt_write(out_from, pc->arch, th_from, &meta, err);
        }
        if (!rc) {
            meta.beta = g->refined[k].beta_to;
            snprintf(meta.extra, sizeof meta.extra, "{\"transition\":\"%s\",\"side\":\"%s\"}", label, side_to);
            rc = pf_ckpt_write(out_to, pc->arch, th_to, &meta, err);
        }
        if (!rc) g->has_refined[k] = 1;
        free(th_from);
        free(th_to);
        (void)np;
    }
    return rc;
}

/* Keep every save_every-th checkpoint and those beside transitions. */
static void prune_checkpoints(const post_context *pc, const post_leg *legs, int n_legs)
{
    if (pc->opt->keep_checkpoints || !pc->opt->refine || !pc->trainer) return;
    for (long i = 0; i < pc->n_rows; i++) {
        long idx = pc->rows[i].index;
        int keep = (pc->opt->save_every > 0 && idx % pc->opt->save_every == 0) || i == pc->n_rows - 1;
        for (int l = 0; l < n_legs && !keep; l++)
            for (long k = 0; k < legs[l].nt; k++)
                keep |= legs[l].sorted[legs[l].t[k].below].index == idx ||
                        legs[l].sorted[legs[l].t[k].above].index == idx;
        if (keep) continue;
        char path[4096];
        checkpoint_path(path, sizeof path, pc->dir, idx);
        unlink(path);
    }
}

/* ---- the whole post-processing ---------------------------------------------- */

void post_print_table(FILE *f, const post_leg *g)
{
    if (g->n == 0) return;
    fprintf(f, "%s leg: %ld points, %ld transition%s", leg_name(g), g->n, g->nt, g->nt == 1 ? "" : "s");
    if (g->ng > 0) fprintf(f, ", %ld grid gap%s", g->ng, g->ng == 1 ? "" : "s");
    fprintf(f, "\n");
    /* gaps split phases without being transitions: no score, no refinement */
    for (long k = 0; k < g->ng; k++) {
        char lost_s[256] = "-", gained_s[256] = "-";
        if (g->ph) {
            uint64_t lost[PF_MAX_CLASSES / 64], gained[PF_MAX_CLASSES / 64];
            boundary_sets(g, phase_below_gap(g, k), lost, gained);
            if (pf_set_count(lost, g->n_classes)) pf_set_str(lost, g->n_classes, lost_s, sizeof lost_s);
            if (pf_set_count(gained, g->n_classes)) pf_set_str(gained, g->n_classes, gained_s, sizeof gained_s);
        }
        fprintf(f, "  gap  beta %.4g-%.4g: a wide grid step, a phase boundary but not a transition"
                   " (lost %s, gained %s)\n",
                g->beta[g->gaps[k]], g->beta[g->gaps[k] + 1], lost_s, gained_s);
    }
    if (g->nt == 0) return;
    fprintf(f, "  %-4s %-21s %-25s %-16s %-16s %-10s %-14s %s\n", "", "beta interval", "refined interval",
            "r", "test acc %", "score", "lost", "gained");
    for (long k = 0; k < g->nt; k++) {
        const pf_transition *t = &g->t[k];
        char label[32], refined[64] = "-", lost_s[256] = "-", gained_s[256] = "-", iv[64], rs[40], as[40];
        transition_label(label, sizeof label, g, k);
        if (g->has_refined && g->has_refined[k]) {
            double lo = fmin(g->refined[k].beta_from, g->refined[k].beta_to);
            double hi = fmax(g->refined[k].beta_from, g->refined[k].beta_to);
            snprintf(refined, sizeof refined, "%.7f-%.7f", lo, hi);
        }
        if (g->ph) {
            uint64_t lost[PF_MAX_CLASSES / 64], gained[PF_MAX_CLASSES / 64];
            boundary_sets(g, phase_below_transition(g, k), lost, gained);
            if (pf_set_count(lost, g->n_classes)) pf_set_str(lost, g->n_classes, lost_s, sizeof lost_s);
            if (pf_set_count(gained, g->n_classes)) pf_set_str(gained, g->n_classes, gained_s, sizeof gained_s);
        }
        snprintf(iv, sizeof iv, "%.4f-%.4f", t->beta_below, t->beta_above);
        snprintf(rs, sizeof rs, "%.3f->%.3f", g->direction > 0 ? t->r_below : t->r_above,
                 g->direction > 0 ? t->r_above : t->r_below);
        snprintf(as, sizeof as, "%.1f->%.1f", g->direction > 0 ? t->acc_below : t->acc_above,
                 g->direction > 0 ? t->acc_above : t->acc_below);
        fprintf(f, "  %-4s %-21s %-25s %-16s %-16s %-10.1f %-14s %s%s\n", label, iv, refined, rs, as,
                t->score, lost_s, gained_s, t->major ? "" : "  (minor)");
    }
}

/* Tell of a figure just written: a line on report, its files in names. */
static void figure_written(const char *base, FILE *report, cJSON *names)
{
    if (report) fprintf(report, "  %s.png (.pdf, .svg)\n", base);
    if (names) {
        const char *ext[3] = {"png", "pdf", "svg"};
        for (int e = 0; e < 3; e++) {
            char path[4200];
            snprintf(path, sizeof path, "%s.%s", base, ext[e]);
            cJSON_AddItemToArray(names, cJSON_CreateString(path));
        }
    }
}

int post_figures(const char *dir, const post_leg *legs, int n_legs, const pf_hierarchy *h,
                 FILE *report, cJSON *names, pf_error *err)
{
    char base[4096], title[256];
    int rc = PF_OK;
    for (int l = 0; l < n_legs && !rc; l++) {
        const post_leg *g = &legs[l];
        if (g->n == 0) continue;
        snprintf(base, sizeof base, "%s/figures/phase_diagram_%s", dir, leg_name(g));
        snprintf(title, sizeof title, "Phase diagram (%s sweep)", leg_name(g));
        rc = pf_fig_phase_diagram(base, g->sorted, g->n, g->t, g->nt, title, err);
        if (!rc) figure_written(base, report, names);
        if (rc || g->n_classes == 0) continue;
        snprintf(base, sizeof base, "%s/figures/class_accuracy_%s", dir, leg_name(g));
        snprintf(title, sizeof title, "Per-class test accuracy (%s sweep)", leg_name(g));
        rc = pf_fig_class_heatmap(base, g->sorted, g->n, g->t, g->nt, title, err);
        if (!rc) figure_written(base, report, names);
    }
    if (!rc && n_legs == 2 && legs[0].n > 0 && legs[1].n > 0) {
        snprintf(base, sizeof base, "%s/figures/hysteresis", dir);
        rc = pf_fig_hysteresis(base, legs[0].sorted, legs[0].n, legs[1].sorted, legs[1].n,
                               "Hysteresis: up and down sweeps", err);
        if (!rc) figure_written(base, report, names);
    }
    if (!rc && h && h->n > 0) {
        snprintf(base, sizeof base, "%s/figures/hierarchy", dir);
        rc = pf_fig_hierarchy(base, h, "Hierarchy of accuracy basins", err);
        if (!rc) figure_written(base, report, names);
    }
    return rc;
}

int post_process(const post_context *pc, pf_error *err)
{
    post_leg legs[2];
    memset(legs, 0, sizeof legs);
    int rc = PF_OK;
    pf_hierarchy h = {0};
    cJSON *tj = NULL, *pj = NULL;
    for (int l = 0; l < 2 && !rc; l++)
        rc = post_leg_build(&legs[l], pc->rows, pc->n_rows, l == 0 ? 1 : -1, &pc->opt->detect,
                            &pc->opt->encoding, err);
    for (int l = 0; l < 2 && !rc; l++) rc = refine_leg(pc, &legs[l], err);
    if (rc) goto done;

    const pf_phase *runs[2];
    long counts[2];
    int n_runs = 0;
    for (int l = 0; l < 2; l++)
        if (legs[l].ph) runs[n_runs] = legs[l].ph, counts[n_runs++] = legs[l].nph;
    int K = legs[0].n ? legs[0].n_classes : legs[1].n_classes;
    if (n_runs > 0 && (rc = pf_hierarchy_build(runs, counts, n_runs, K, &h, err))) goto done;

    char path[4096];
    tj = cJSON_CreateObject();
    cJSON_AddStringToObject(tj, "pathfinder_version", PF_VERSION);
    cJSON *det = cJSON_AddObjectToObject(tj, "detection");
    cJSON_AddNumberToObject(det, "window", pc->opt->detect.window);
    cJSON_AddNumberToObject(det, "threshold", pc->opt->detect.threshold);
    cJSON_AddNumberToObject(det, "min_rel_jump", pc->opt->detect.min_rel_jump);
    cJSON_AddNumberToObject(det, "gap_factor", pc->opt->detect.gap_factor);
    cJSON_AddStringToObject(det, "gap_rule",
                            "a beta step more than gap_factor times the median of the up to `window` "
                            "steps on each side, both in beta and in log beta (a step from beta = 0 is "
                            "infinite in log beta), is a gap: the points across it are separate phases; "
                            "it is not a transition (no score, no refinement, no fit across it)");
    cJSON_AddNumberToObject(det, "refine_tol", pc->opt->refine_tol);
    cJSON *all = cJSON_AddArrayToObject(tj, "transitions");
    for (int l = 0; l < 2; l++) {
        cJSON *arr = post_transitions_json(&legs[l]), *o;
        while ((o = cJSON_DetachItemFromArray(arr, 0))) cJSON_AddItemToArray(all, o);
        cJSON_Delete(arr);
    }
    cJSON *all_gaps = cJSON_AddArrayToObject(tj, "gaps");
    for (int l = 0; l < 2; l++) {
        cJSON *arr = post_gaps_json(&legs[l]), *o;
        while ((o = cJSON_DetachItemFromArray(arr, 0))) cJSON_AddItemToArray(all_gaps, o);
        cJSON_Delete(arr);
    }
    snprintf(path, sizeof path, "%s/transitions.json", pc->dir);
    if ((rc = post_write_json(path, tj, err))) goto done;

    pj = cJSON_CreateObject();
    cJSON_AddNumberToObject(pj, "encoded_threshold", pc->opt->encoding.threshold);
    cJSON_AddNumberToObject(pj, "encoded_fraction", pc->opt->encoding.fraction);
    cJSON *phs = cJSON_AddArrayToObject(pj, "phases");
    for (int l = 0; l < 2; l++) {
        cJSON *arr = post_phases_json(&legs[l]), *o;
        while ((o = cJSON_DetachItemFromArray(arr, 0))) cJSON_AddItemToArray(phs, o);
        cJSON_Delete(arr);
    }
    cJSON_AddItemToObject(pj, "hierarchy", post_hierarchy_json(&h));
    snprintf(path, sizeof path, "%s/phases.json", pc->dir);
    if ((rc = post_write_json(path, pj, err))) goto done;

    if (pc->json) {
        /* one document: what transitions.json and phases.json hold, and the files */
        cJSON *doc = cJSON_CreateObject(), *figs = cJSON_CreateArray();
        if ((rc = post_figures(pc->dir, legs, 2, &h, NULL, figs, err))) {
            cJSON_Delete(doc);
            cJSON_Delete(figs);
            goto done;
        }
        cJSON_AddStringToObject(doc, "command", pc->command ? pc->command : "transitions");
        cJSON_AddStringToObject(doc, "folder", pc->dir);
        cJSON_AddItemToObject(doc, "transitions", cJSON_DetachItemFromObject(tj, "transitions"));
        cJSON_AddItemToObject(doc, "gaps", cJSON_DetachItemFromObject(tj, "gaps"));
        cJSON_AddItemToObject(doc, "phases", cJSON_DetachItemFromObject(pj, "phases"));
        cJSON_AddItemToObject(doc, "hierarchy", cJSON_DetachItemFromObject(pj, "hierarchy"));
        cJSON_AddItemToObject(doc, "figures", figs);
        cJSON *tables = cJSON_AddArrayToObject(doc, "tables");
        const char *names[3] = {"sweep.csv", "transitions.json", "phases.json"};
        for (int i = 0; i < 3; i++) {
            snprintf(path, sizeof path, "%s/%s", pc->dir, names[i]);
            cJSON_AddItemToArray(tables, cJSON_CreateString(path));
        }
        cli_print_json(doc);
    } else {
        FILE *out = stdout;
        fprintf(out, "Transitions (%s)\n", pc->dir);
        for (int l = 0; l < 2; l++) post_print_table(out, &legs[l]);
        if (h.n > 0) {
            fprintf(out, "Hierarchy of accuracy basins%s:\n", h.consistent ? "" : " (not strictly nested)");
            post_print_tree(out, &h);
        }
        fprintf(out, "Figures:\n");
        if ((rc = post_figures(pc->dir, legs, 2, &h, out, NULL, err))) goto done;
        fprintf(out, "Tables: %s/sweep.csv, %s/transitions.json, %s/phases.json\n", pc->dir, pc->dir,
                pc->dir);
        fflush(out);
    }
    prune_checkpoints(pc, legs, 2);
done:
    cJSON_Delete(tj);
    cJSON_Delete(pj);
    pf_hierarchy_free(&h);
    for (int l = 0; l < 2; l++) post_leg_free(&legs[l]);
    return rc;
}

/* Reports: what the run calls write as JSON and show as text tables. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run/report.h"

void pf_report_free(pf_report *r)
{
    if (!r) return;
    free(r->json);
    free(r->text);
    r->json = r->text = NULL;
}

cJSON *pf_json_set(const uint64_t *set, int K)
{
    cJSON *a = cJSON_CreateArray();
    for (int k = 0; k < K; k++)
        if (pf_set_has(set, k)) cJSON_AddItemToArray(a, cJSON_CreateNumber(k));
    return a;
}
cJSON *pf_json_refined(const pf_refined *f)
{
    cJSON *r = cJSON_CreateObject();
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
    if (isfinite(f->tol)) cJSON_AddNumberToObject(r, "tol", f->tol);
    if (f->n_branch > 0) {
        /* the old phase's side, certified: [beta, lambda_min(H_L), certified] */
        cJSON *b = cJSON_AddArrayToObject(r, "branch");
        for (int i = 0; i < f->n_branch; i++) {
            cJSON *p = cJSON_CreateArray();
            cJSON_AddItemToArray(p, cJSON_CreateNumber(f->branch_beta[i]));
            cJSON_AddItemToArray(p, cJSON_CreateNumber(f->branch_lambda_min[i]));
            cJSON_AddItemToArray(p, cJSON_CreateNumber(f->branch_certified[i]));
            cJSON_AddItemToArray(b, p);
        }
    }
    if (isfinite(f->overlap)) cJSON_AddNumberToObject(r, "overlap", f->overlap);
    return r;
}

/* A number, or null when not finite (JSON has no NaN). */
static cJSON *number_or_null(double x)
{
    return isfinite(x) ? cJSON_CreateNumber(x) : cJSON_CreateNull();
}

static cJSON *interval(double lo, double hi)
{
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, number_or_null(lo));
    cJSON_AddItemToArray(a, number_or_null(hi));
    return a;
}

cJSON *pf_json_power_fit(const pf_power_fit *f)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", f->ok);
    cJSON_AddItemToObject(o, "beta_c", number_or_null(f->ok ? f->beta_c : NAN));
    cJSON_AddItemToObject(o, "beta_c_interval", interval(f->beta_c_lo, f->beta_c_hi));
    cJSON_AddItemToObject(o, "exponent", number_or_null(f->ok ? f->exponent : NAN));
    cJSON_AddItemToObject(o, "exponent_interval", interval(f->exponent_lo, f->exponent_hi));
    cJSON_AddItemToObject(o, "amplitude", number_or_null(f->ok ? f->amplitude : NAN));
    cJSON_AddItemToObject(o, "rms_log", number_or_null(f->ok ? f->rms : NAN));
    cJSON_AddNumberToObject(o, "n_points", (double)f->n);
    return o;
}

cJSON *pf_json_fold(const pf_fold *f)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "beta_c", number_or_null(f->fit.beta_c));
    cJSON_AddItemToObject(o, "beta_c_interval", interval(f->fit.beta_c_lo, f->fit.beta_c_hi));
    cJSON_AddItemToObject(o, "exponent", number_or_null(f->fit.exponent));
    cJSON_AddItemToObject(o, "exponent_interval", interval(f->fit.exponent_lo, f->fit.exponent_hi));
    cJSON_AddItemToObject(o, "amplitude", number_or_null(f->fit.amplitude));
    cJSON_AddItemToObject(o, "rms_log", number_or_null(f->fit.rms));
    cJSON_AddItemToObject(o, "gap", number_or_null(f->gap));
    cJSON_AddItemToObject(o, "overlap", number_or_null(f->overlap));
    cJSON *h = cJSON_AddObjectToObject(o, "half");   /* the fit with gamma = 1/2 */
    cJSON_AddItemToObject(h, "beta_c", number_or_null(f->half.beta_c));
    cJSON_AddItemToObject(h, "beta_c_interval", interval(f->half.beta_c_lo, f->half.beta_c_hi));
    cJSON_AddItemToObject(h, "amplitude", number_or_null(f->half.amplitude));
    cJSON_AddItemToObject(h, "rms_log", number_or_null(f->half.rms));
    cJSON_AddNumberToObject(o, "n_points", (double)f->fit.n);
    cJSON *pts = cJSON_AddArrayToObject(o, "points");
    for (long i = 0; i < f->n_points; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddNumberToObject(p, "beta", f->points[i].beta);
        cJSON_AddNumberToObject(p, "lambda_min_L", f->points[i].lambda_min);
        cJSON_AddStringToObject(p, "from", f->points[i].from_bisection ? "bisection" : "sweep");
        cJSON_AddItemToArray(pts, p);
    }
    return o;
}

cJSON *pf_json_transitions(const pf_leg *g)
{
    cJSON *arr = cJSON_CreateArray();
    for (long k = 0; k < g->nt; k++) {
        const pf_transition *t = &g->t[k];
        char label[32];
        pf_leg_label(label, sizeof label, g, k);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "label", label);
        cJSON_AddStringToObject(o, "direction", pf_leg_name(g));
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
            pf_leg_boundary_sets(g, pf_leg_phase_below_transition(g, k), lost, gained);
            cJSON_AddItemToObject(o, "classes_lost", pf_json_set(lost, g->n_classes));
            cJSON_AddItemToObject(o, "classes_gained", pf_json_set(gained, g->n_classes));
        }
        if (g->has_refined && g->has_refined[k]) {
            cJSON *r = pf_json_refined(&g->refined[k]);
            cJSON_AddItemToObject(o, "refined", r);
            char path[64];
            snprintf(path, sizeof path, "transitions/%s_%s.safetensors", label,
                     g->direction > 0 ? "below" : "above");
            cJSON_AddStringToObject(r, "model_from", path);
            snprintf(path, sizeof path, "transitions/%s_%s.safetensors", label,
                     g->direction > 0 ? "above" : "below");
            cJSON_AddStringToObject(r, "model_to", path);
        }
        /* certified sweeps: the fold picture, on the old phase's branch */
        int certified = 0;
        for (long j = 0; j < g->n && !certified; j++) certified = g->sorted[j].has_certificate;
        pf_fold fold;
        pf_power_fit_config fc;
        pf_power_fit_config_default(&fc);
        pf_error ferr;
        if (certified && pf_leg_fold(g, k, &fc, PF_FOLD_SWEEP_POINTS, &fold, &ferr) == PF_OK) {
            cJSON_AddItemToObject(o, "fold", pf_json_fold(&fold));
            pf_fold_free(&fold);
        }
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}
cJSON *pf_json_gaps(const pf_leg *g)
{
    cJSON *arr = cJSON_CreateArray();
    for (long k = 0; k < g->ng; k++) {
        long i = g->gaps[k];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "direction", pf_leg_name(g));
        cJSON_AddNumberToObject(o, "beta_below", g->beta[i]);
        cJSON_AddNumberToObject(o, "beta_above", g->beta[i + 1]);
        cJSON_AddNumberToObject(o, "index_below", (double)g->sorted[i].index);
        cJSON_AddNumberToObject(o, "index_above", (double)g->sorted[i + 1].index);
        if (g->ph) {
            uint64_t lost[PF_MAX_CLASSES / 64], gained[PF_MAX_CLASSES / 64];
            pf_leg_boundary_sets(g, pf_leg_phase_below_gap(g, k), lost, gained);
            cJSON_AddItemToObject(o, "classes_lost", pf_json_set(lost, g->n_classes));
            cJSON_AddItemToObject(o, "classes_gained", pf_json_set(gained, g->n_classes));
        }
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}
/* "end", "gap" or "transition", and the transition's label. */
static void add_bound(cJSON *o, const pf_leg *g, const char *side, pf_bound kind, long transition)
{
    char key[32], label[32];
    snprintf(key, sizeof key, "bound_%s", side);
    cJSON_AddStringToObject(o, key, pf_bound_name(kind));
    if (kind != PF_BOUND_TRANSITION || transition < 0) return;
    snprintf(key, sizeof key, "transition_%s", side);
    pf_leg_label(label, sizeof label, g, transition);
    cJSON_AddStringToObject(o, key, label);
}
cJSON *pf_json_phases(const pf_leg *g)
{
    cJSON *arr = cJSON_CreateArray();
    for (long p = 0; g->ph && p < g->nph; p++) {
        const pf_phase *q = &g->ph[p];
        char label[4 * PF_MAX_CLASSES + 32];
        pf_phase_label(label, sizeof label, q);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "direction", pf_leg_name(g));
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
        cJSON_AddItemToObject(o, "encoded", pf_json_set(q->encoded, q->n_classes));
        cJSON_AddItemToObject(o, "partial", pf_json_set(q->partial, q->n_classes));
        cJSON *cm = cJSON_AddArrayToObject(o, "class_mean_accuracy");
        for (int k = 0; k < q->n_classes; k++) cJSON_AddItemToArray(cm, cJSON_CreateNumber(q->class_mean[k]));
        cJSON *ca = cJSON_AddArrayToObject(o, "class_fraction_above");
        for (int k = 0; k < q->n_classes; k++) cJSON_AddItemToArray(ca, cJSON_CreateNumber(q->class_above[k]));
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}
cJSON *pf_json_hierarchy(const pf_hierarchy *h)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n_classes", h->n_classes);
    cJSON_AddBoolToObject(o, "nested", h->consistent);
    cJSON *arr = cJSON_AddArrayToObject(o, "basins");
    for (int i = 0; i < h->n; i++) {
        char label[4 * PF_MAX_CLASSES + 32];
        pf_basin_label(&h->nodes[i], h->n_classes, label, sizeof label);
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "label", label);
        cJSON_AddItemToObject(b, "classes", pf_json_set(h->nodes[i].set, h->n_classes));
        cJSON_AddNumberToObject(b, "size", h->nodes[i].size);
        cJSON_AddBoolToObject(b, "trivial", h->nodes[i].trivial);
        cJSON_AddBoolToObject(b, "unresolved", h->nodes[i].unresolved);
        cJSON_AddItemToObject(b, "partial", pf_json_set(h->nodes[i].partial, h->n_classes));
        cJSON_AddNumberToObject(b, "parent", h->nodes[i].parent);
        cJSON_AddNumberToObject(b, "phases_seen", h->nodes[i].seen);
        cJSON_AddNumberToObject(b, "beta_min", h->nodes[i].beta_min);
        cJSON_AddNumberToObject(b, "beta_max", h->nodes[i].beta_max);
        cJSON_AddItemToArray(arr, b);
    }
    return o;
}
int pf_write_json(const char *path, cJSON *obj, pf_error *err)
{
    char *text = cJSON_Print(obj);
    if (!text) return pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
    int rc = pf_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}
void pf_report_tree(FILE *f, const pf_hierarchy *h)
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
void pf_report_leg(FILE *f, const pf_leg *g)
{
    if (g->n == 0) return;
    fprintf(f, "%s leg: %ld points, %ld transition%s", pf_leg_name(g), g->n, g->nt, g->nt == 1 ? "" : "s");
    if (g->ng > 0) fprintf(f, ", %ld grid gap%s", g->ng, g->ng == 1 ? "" : "s");
    fprintf(f, "\n");
    /* gaps split phases without being transitions: no score, no refinement */
    for (long k = 0; k < g->ng; k++) {
        char lost_s[256] = "-", gained_s[256] = "-";
        if (g->ph) {
            uint64_t lost[PF_MAX_CLASSES / 64], gained[PF_MAX_CLASSES / 64];
            pf_leg_boundary_sets(g, pf_leg_phase_below_gap(g, k), lost, gained);
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
        pf_leg_label(label, sizeof label, g, k);
        if (g->has_refined && g->has_refined[k]) {
            double lo = fmin(g->refined[k].beta_from, g->refined[k].beta_to);
            double hi = fmax(g->refined[k].beta_from, g->refined[k].beta_to);
            /* enough decimals to tell the ends apart at the tolerance it was bisected to */
            double tol = g->refined[k].tol;
            int digits = isfinite(tol) && tol > 0 ? (int)ceil(-log10(tol)) + 1 : 7;
            digits = digits < 7 ? 7 : digits > 15 ? 15 : digits;
            snprintf(refined, sizeof refined, "%.*f-%.*f", digits, lo, digits, hi);
        }
        if (g->ph) {
            uint64_t lost[PF_MAX_CLASSES / 64], gained[PF_MAX_CLASSES / 64];
            pf_leg_boundary_sets(g, pf_leg_phase_below_transition(g, k), lost, gained);
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

cJSON *pf_json_eval(const pf_eval *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n", (double)e->n);
    cJSON_AddNumberToObject(o, "loss", e->loss);
    if (e->n_classes > 0) {
        cJSON_AddNumberToObject(o, "accuracy", e->accuracy);
        cJSON *pc = cJSON_AddArrayToObject(o, "class_accuracy");
        for (int k = 0; k < e->n_classes; k++)
            cJSON_AddItemToArray(pc, e->class_accuracy[k] < 0 ? cJSON_CreateNull()
                                                             : cJSON_CreateNumber(e->class_accuracy[k]));
    }
    return o;
}

cJSON *pf_json_protocol(const pf_train_config *cfg, int threads)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "optimizer", pf_opt_name(cfg->opt.kind));
    cJSON_AddNumberToObject(p, "lr", cfg->opt.lr);
    cJSON_AddNumberToObject(p, "momentum", cfg->opt.momentum);
    cJSON_AddNumberToObject(p, "batch", cfg->batch);
    cJSON_AddNumberToObject(p, "max_epochs", cfg->max_epochs);
    cJSON_AddNumberToObject(p, "patience", cfg->patience);
    cJSON_AddNumberToObject(p, "min_delta", cfg->min_delta);
    cJSON_AddBoolToObject(p, "reset_optimizer", cfg->reset_optimizer);
    cJSON_AddNumberToObject(p, "grad_tol", cfg->grad_tol);
    cJSON_AddStringToObject(p, "input_layer", pf_input_layer_name(cfg->input_layer));
    cJSON_AddNumberToObject(p, "threads", threads);
    if (cfg->certify) {
        /* only when on, so that older folders' settings still compare equal */
        cJSON *c = cJSON_AddObjectToObject(p, "certify");
        cJSON_AddNumberToObject(c, "lanczos_tol", cfg->certificate.lanczos.tol);
        cJSON_AddNumberToObject(c, "lanczos_max_dim", cfg->certificate.lanczos.max_dim);
        cJSON_AddNumberToObject(c, "eps_factor", cfg->certificate.eps_factor);
        cJSON_AddNumberToObject(c, "max_escapes", cfg->certificate.max_escapes);
    }
    return p;
}

cJSON *pf_json_metrics(const pf_metrics *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "beta", m->beta);
    cJSON_AddItemToObject(o, "train", pf_json_eval(&m->train));
    if (m->test.n) cJSON_AddItemToObject(o, "test", pf_json_eval(&m->test));
    cJSON_AddNumberToObject(o, "r", m->r);
    cJSON_AddNumberToObject(o, "reg_loss", m->reg_loss);
    return o;
}

int pf_text_begin(pf_text *t)
{
    t->buf = NULL;
    t->len = 0;
    t->f = open_memstream(&t->buf, &t->len);
    return t->f ? PF_OK : PF_ERUNTIME;
}

char *pf_text_end(pf_text *t)
{
    if (!t->f) return NULL;
    int bad = ferror(t->f);
    fclose(t->f);
    t->f = NULL;
    if (bad) {
        free(t->buf);
        t->buf = NULL;
    }
    return t->buf;
}

char *pf_json_line(const cJSON *doc) { return cJSON_PrintUnformatted(doc); }

int pf_has_ext(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n > e && strcmp(path + n - e, ext) == 0;
}

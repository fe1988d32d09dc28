/* The index-1 saddle of L_beta next to a metastable minimum (pf_run_saddle
 * in run.h): the model is converged to the minimum of L_beta at beta by
 * Newton-CG, then pf_saddle_search climbs to the saddle by minimum-mode
 * following (core/saddle.c has the method and why: it needs only the
 * minimum, not the model on the other side of the transition, and each of
 * its steps is a Newton step on the reflected landscape, so it converges
 * to the gradient tolerance as the minimum does; the index is counted on
 * the lowest eigenvalues at the end by Lanczos). The saddle is written as
 * a checkpoint; the report is one JSON line. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "pathfinder/hessian.h"
#include "exp/results.h"
#include "run/report.h"
#include "pathfinder/io.h"

void pf_saddle_run_config_default(pf_saddle_run_config *c)
{
    memset(c, 0, sizeof *c);
    pf_data_options_default(&c->data);
    c->beta = NAN;
    c->grad_tol = PF_NEWTON_GRAD_TOL;
    c->max_iter = 200;
    pf_encoding_default(&c->encoding);
}

static void add_classes(cJSON *o, const char *key, const pf_eval *e, double threshold)
{
    cJSON *a = cJSON_AddArrayToObject(o, key);
    for (int k = 0; k < e->n_classes; k++)
        if (e->class_accuracy[k] > threshold) cJSON_AddItemToArray(a, cJSON_CreateNumber(k));
}

/* One beta's minimum and saddle. */
typedef struct {
    double beta;
    pf_newton_result nr;
    pf_saddle_result sr;
    pf_metrics m_min, m_sad;
} saddle_point;

/* The minimum of L_beta from xmin (left there), then the saddle next to
 * it (in x, its lowest mode in mode), written to path. With have_mode,
 * mode holds the last point's lowest mode: the start of this one's. */
static int saddle_at(pf_mlp_objective *mo, pf_work *gw, pf_ctx *ctx, const pf_dataset *train,
                     const pf_dataset *test, const pf_arch *arch, const float *anchor, const char *anchor_name,
                     double beta, const pf_saddle_run_config *c, double *xmin, double *x, double *mode,
                     int have_mode, float *theta, const char *path, saddle_point *p, pf_error *err)
{
    memset(p, 0, sizeof *p);
    p->beta = beta;
    pf_mlp_objective_set(mo, beta, anchor);
    pf_objective obj = pf_mlp_objective_get(mo);
    size_t n = arch->n_params;
    pf_newton_config nc;
    pf_newton_config_default(&nc);
    nc.grad_tol = c->grad_tol;
    int rc = pf_newton(&obj, xmin, &nc, &p->nr, err);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) theta[i] = (float)xmin[i];
    if ((rc = pf_measure(gw, theta, train, test, anchor, beta, &p->m_min, err))) return rc;
    pf_saddle_config sc;
    pf_saddle_config_default(&sc);
    sc.grad_tol = c->grad_tol;
    sc.max_iter = c->max_iter;
    sc.direction = c->direction;
    sc.lanczos.ctx = ctx;
    sc.mode_start = have_mode ? mode : NULL;
    memcpy(x, xmin, n * sizeof *x);
    if ((rc = pf_saddle_search(&obj, x, mode, &sc, &p->sr, err))) return rc;
    for (size_t i = 0; i < n; i++) theta[i] = (float)x[i];
    if ((rc = pf_measure(gw, theta, train, test, anchor, beta, &p->m_sad, err))) return rc;
    pf_ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.beta = beta;
    snprintf(meta.anchor, sizeof meta.anchor, "%s", anchor_name ? anchor_name : "origin");
    snprintf(meta.dataset, sizeof meta.dataset, "%s", train->name);
    char extra[256];
    snprintf(extra, sizeof extra, "{\"saddle_of\":\"minimum near the model\",\"index\":%d,\"converged\":%s}",
             p->sr.index, p->sr.converged ? "true" : "false");
    meta.extra = extra;
    return pf_ckpt_write(path, arch, theta, &meta, err);
}

static cJSON *point_json(const saddle_point *p, const char *model, const char *path, const pf_encoding *enc)
{
    const pf_saddle_result *sr = &p->sr;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "command", "saddle");
    cJSON_AddStringToObject(o, "model", model);
    cJSON_AddStringToObject(o, "saddle", path);
    cJSON_AddNumberToObject(o, "beta", p->beta);
    cJSON_AddNumberToObject(o, "L_min", sr->f_start);
    cJSON_AddNumberToObject(o, "L_saddle", sr->f);
    cJSON_AddNumberToObject(o, "barrier", sr->barrier_path);
    cJSON_AddNumberToObject(o, "barrier_difference", sr->f - sr->f_start);
    cJSON_AddNumberToObject(o, "barrier_normal_form", sr->barrier_normal_form);
    cJSON_AddNumberToObject(o, "index", sr->index);
    cJSON *eig = cJSON_AddArrayToObject(o, "lowest_eigenvalues_L");
    for (int i = 0; i < sr->n_eig; i++) cJSON_AddItemToArray(eig, cJSON_CreateNumber(sr->eig[i]));
    cJSON_AddNumberToObject(o, "lambda_min_L_at_minimum", sr->lambda_start);
    cJSON_AddNumberToObject(o, "grad_norm", sr->grad_inf);
    cJSON_AddNumberToObject(o, "grad_norm_minimum", p->nr.grad_inf);
    cJSON_AddBoolToObject(o, "converged", sr->converged && p->nr.converged);
    cJSON_AddNumberToObject(o, "distance", sr->distance);
    cJSON_AddNumberToObject(o, "overlap", sr->overlap);
    cJSON_AddNumberToObject(o, "test_accuracy_min", p->m_min.test.accuracy);
    cJSON_AddNumberToObject(o, "test_accuracy", p->m_sad.test.accuracy);
    add_classes(o, "encoded_classes_min", &p->m_min.test, enc->threshold);
    add_classes(o, "encoded_classes", &p->m_sad.test, enc->threshold);
    cJSON_AddNumberToObject(o, "r_min", p->m_min.r);
    cJSON_AddNumberToObject(o, "r", p->m_sad.r);
    cJSON_AddNumberToObject(o, "iterations", sr->iterations);
    cJSON_AddNumberToObject(o, "hvps", (double)(sr->hvps + p->nr.hvps));
    cJSON_AddNumberToObject(o, "seconds", sr->seconds + p->nr.seconds);
    return o;
}

static void point_text(FILE *f, const saddle_point *p, const char *model, const char *path)
{
    const pf_saddle_result *sr = &p->sr;
    fprintf(f, "Saddle of L_beta at beta %.10g next to the minimum near %s:\n", p->beta, model);
    fprintf(f, "  L_beta: minimum %.10g, saddle %.10g; barrier %.6g along the path (difference of the "
            "values %.6g, normal form %.6g)\n", sr->f_start, sr->f, sr->barrier_path, sr->f - sr->f_start,
            sr->barrier_normal_form);
    fprintf(f, "  index %d; lowest eigenvalues of H_L:", sr->index);
    for (int i = 0; i < sr->n_eig; i++) fprintf(f, " %.4g", sr->eig[i]);
    fprintf(f, "\n  max |gradient| %.3g at the saddle (%s), %.3g at the minimum\n", sr->grad_inf,
            sr->converged ? "converged" : "NOT converged", p->nr.grad_inf);
    fprintf(f, "  test accuracy %.2f%% at the minimum, %.2f%% at the saddle; distance %.4g, overlap with "
            "the soft mode %.3f\n", p->m_min.test.accuracy, p->m_sad.test.accuracy, sr->distance, sr->overlap);
    fprintf(f, "  %d iterations, %ld products, %.1f s; written to %s\n", sr->iterations, sr->hvps + p->nr.hvps,
            sr->seconds + p->nr.seconds, path);
}

static void fit_text(FILE *f, const char *what, const char *law, const pf_power_fit *fit)
{
    if (!fit->ok) {
        fprintf(f, "  %s: no fit (%ld usable points; 3 are needed)\n", what, fit->n);
        return;
    }
    fprintf(f, "  %s ~ a (beta_c - beta)^gamma over %ld points: gamma %.3f", what, fit->n, fit->exponent);
    if (isfinite(fit->exponent_lo)) fprintf(f, " [%.3f, %.3f]", fit->exponent_lo, fit->exponent_hi);
    fprintf(f, " (the fold: %s), beta_c %.6g", law, fit->beta_c);
    if (isfinite(fit->beta_c_lo)) fprintf(f, " [%.6g, %.6g]\n", fit->beta_c_lo, fit->beta_c_hi);
    else fprintf(f, "; no interval (too few points to spare)\n");
}

/* The series' order: nearest the model's beta first. */
typedef struct {
    double beta, from;
} by_distance;

static int cmp_distance(const void *a, const void *b)
{
    const by_distance *x = a, *y = b;
    double dx = fabs(x->beta - x->from), dy = fabs(y->beta - y->from);
    return dx < dy ? -1 : dx > dy ? 1 : (x->beta < y->beta ? 1 : x->beta > y->beta ? -1 : 0);
}

int pf_run_saddle(pf_ctx *ctx, const char *model, const char *out_path, const pf_saddle_run_config *c,
                  pf_report *out, pf_error *err)
{
    memset(out, 0, sizeof *out);
    pf_dataset train = {0}, test = {0};
    pf_arch arch;
    float *theta = NULL, *anchor = NULL;
    double *x = NULL, *xmin = NULL, *mode = NULL, *betas = NULL, *fit_y = NULL, *fit_b = NULL;
    saddle_point *pts = NULL;
    pf_work gw = {0}, hw = {0};
    int have_gw = 0, have_hw = 0;
    pf_mlp_objective *mo = NULL;
    pf_ckpt_meta meta;
    int rc;
    long n_series = c->n_series > 0 ? c->n_series : 0, n_pts = n_series ? n_series : 1;
    if (!out_path) return pf_fail(err, PF_EINPUT, "the saddle needs --out %s", n_series ? "DIR" : "FILE.safetensors");
    if (n_series && !c->series) return pf_fail(err, PF_EINPUT, "a series of betas without its betas");
    if ((rc = n_series ? pf_make_dirs(out_path, err) : pf_check_output_file(out_path, err))) return rc;
    if ((rc = pf_ckpt_read(model, NULL, NULL, &arch, &theta, &meta, err))) goto done;
    if (c->anchor) {
        pf_arch aa;
        if ((rc = pf_ckpt_read(c->anchor, &arch, &arch, &aa, &anchor, NULL, err))) goto done;
    }
    double beta = isnan(c->beta) ? meta.beta : c->beta;
    if (!n_series && (!(beta >= 0) || !isfinite(beta))) {
        rc = pf_fail(err, PF_EINPUT, "%s: no beta in the checkpoint; give --beta", model);
        goto done;
    }
    betas = malloc((size_t)n_pts * sizeof *betas);
    pts = calloc((size_t)n_pts, sizeof *pts);
    if (!betas || !pts) {
        rc = pf_fail(err, PF_ERUNTIME, "out of memory");
        goto done;
    }
    if (n_series) {
        by_distance *o = malloc((size_t)n_series * sizeof *o);
        if (!o) {
            rc = pf_fail(err, PF_ERUNTIME, "out of memory");
            goto done;
        }
        double from = isfinite(beta) && beta >= 0 ? beta : c->series[n_series - 1];
        for (long i = 0; i < n_series; i++) o[i] = (by_distance){c->series[i], from};
        qsort(o, (size_t)n_series, sizeof *o, cmp_distance);
        for (long i = 0; i < n_series; i++) betas[i] = o[i].beta;
        free(o);
        for (long i = 0; i < n_series; i++)
            if (!(betas[i] >= 0) || !isfinite(betas[i])) {
                rc = pf_fail(err, PF_EINPUT, "the series' beta %g is not a finite beta >= 0", betas[i]);
                goto done;
            }
    } else {
        betas[0] = beta;
    }
    if ((rc = pf_data_load(&c->data, &train, &test, err))) goto done;
    if ((rc = pf_work_init(&gw, ctx, &arch, 1000, err))) goto done;
    have_gw = 1;
    if ((rc = pf_work_init(&hw, ctx, &arch, 1000, err))) goto done;
    have_hw = 1;
    if ((rc = pf_mlp_objective_create(&mo, &gw, &hw, &train, err))) goto done;
    size_t n = arch.n_params;
    x = malloc(n * sizeof *x), xmin = malloc(n * sizeof *xmin), mode = malloc(n * sizeof *mode);
    if (!x || !xmin || !mode) {
        rc = pf_fail(err, PF_ERUNTIME, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) xmin[i] = theta[i];
    pf_text t;
    if (pf_text_begin(&t)) {
        rc = pf_fail(err, PF_ERUNTIME, "out of memory");
        goto done;
    }
    cJSON *doc = n_series ? cJSON_CreateObject() : NULL, *arr = NULL, *one = NULL;
    if (doc) {
        cJSON_AddStringToObject(doc, "command", "saddle");
        cJSON_AddStringToObject(doc, "model", model);
        arr = cJSON_AddArrayToObject(doc, "points");
    }
    for (long k = 0; k < n_pts && !rc; k++) {
        char path[4096];
        if (n_series) snprintf(path, sizeof path, "%s/saddle_%03ld.safetensors", out_path, k + 1);
        else snprintf(path, sizeof path, "%s", out_path);
        rc = saddle_at(mo, &gw, ctx, &train, &test, &arch, anchor, c->anchor, betas[k], c, xmin, x, mode, k > 0,
                       theta, path, &pts[k], err);
        if (rc) break;
        point_text(t.f, &pts[k], model, path);
        cJSON *o = point_json(&pts[k], model, path, &c->encoding);
        if (arr) cJSON_AddItemToArray(arr, o);
        else one = o;
        if (c->progress) {
            pf_event e = {0};
            e.kind = PF_EVENT_NOTE;
            char msg[160];
            snprintf(msg, sizeof msg, "saddle %ld of %ld: beta %.6g, barrier %.4g, index %d", k + 1, n_pts,
                     betas[k], pts[k].sr.barrier_path, pts[k].sr.index);
            e.text = msg;
            e.index = k + 1, e.total = n_pts, e.beta = betas[k];
            c->progress(c->progress_ctx, &e);
        }
    }
    if (!rc && doc) {
        /* the fold's laws over the series: barrier ~ (beta_c - beta)^(3/2) and
         * lambda_min at the minimum ~ (beta_c - beta)^(1/2), on the points whose
         * saddle is an index-1 saddle, converged */
        fit_y = malloc((size_t)n_pts * 2 * sizeof *fit_y);
        fit_b = malloc((size_t)n_pts * sizeof *fit_b);
        if (!fit_y || !fit_b) rc = pf_fail(err, PF_ERUNTIME, "out of memory");
        long m = 0;
        for (long k = 0; !rc && k < n_pts; k++) {
            const saddle_point *p = &pts[k];
            if (p->sr.index != 1 || !p->sr.converged || !p->nr.converged) continue;
            fit_b[m] = p->beta;
            fit_y[m] = p->sr.barrier_path;
            fit_y[n_pts + m] = p->sr.lambda_start;
            m++;
        }
        pf_power_fit_config fc;
        pf_power_fit_config_default(&fc);
        pf_power_fit fb, fl;
        if (!rc) rc = pf_power_fit_run(fit_b, fit_y, m, PF_POWER_FREE, NAN, &fc, &fb, err);
        if (!rc) rc = pf_power_fit_run(fit_b, fit_y + n_pts, m, PF_POWER_FREE, NAN, &fc, &fl, err);
        if (!rc) {
            cJSON_AddNumberToObject(doc, "index_1_points", (double)m);
            cJSON_AddItemToObject(doc, "barrier_fit", pf_json_power_fit(&fb));
            cJSON_AddItemToObject(doc, "lambda_min_fit", pf_json_power_fit(&fl));
            fprintf(t.f, "Series of %ld betas, %ld with a converged index-1 saddle:\n", n_pts, m);
            fit_text(t.f, "barrier", "3/2", &fb);
            fit_text(t.f, "lambda_min(H_L) at the minimum", "1/2", &fl);
            char *line = pf_json_line(doc), path[4096];
            snprintf(path, sizeof path, "%s/saddles.json", out_path);
            if (!line) rc = pf_fail(err, PF_ERUNTIME, "out of memory");
            else rc = pf_write_file_atomic(path, line, strlen(line), err);
            free(line);
        }
    }
    out->text = pf_text_end(&t);
    if (!rc) {
        out->json = pf_json_line(doc ? doc : one);
        if (!out->text || !out->json) rc = pf_fail(err, PF_ERUNTIME, "out of memory");
    }
    cJSON_Delete(doc ? doc : one);
done:
    if (rc) pf_report_free(out);
    pf_mlp_objective_free(mo);
    if (have_gw) pf_work_free(&gw);
    if (have_hw) pf_work_free(&hw);
    free(theta), free(anchor), free(x), free(xmin), free(mode), free(betas), free(pts), free(fit_y), free(fit_b);
    pf_dataset_free(&train);
    pf_dataset_free(&test);
    return rc;
}

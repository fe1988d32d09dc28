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

int pf_run_saddle(pf_ctx *ctx, const char *model, const char *out_path, const pf_saddle_run_config *c,
                  pf_report *out, pf_error *err)
{
    memset(out, 0, sizeof *out);
    pf_dataset train = {0}, test = {0};
    pf_arch arch;
    float *theta = NULL, *anchor = NULL, *th_min = NULL;
    double *x = NULL, *mode = NULL;
    pf_work gw = {0}, hw = {0};
    int have_gw = 0, have_hw = 0;
    pf_mlp_objective *mo = NULL;
    pf_ckpt_meta meta;
    int rc;
    if (!out_path) return pf_fail(err, PF_EINPUT, "the saddle needs --out FILE.safetensors");
    if ((rc = pf_check_output_file(out_path, err))) return rc;
    if ((rc = pf_ckpt_read(model, NULL, NULL, &arch, &theta, &meta, err))) goto done;
    if (c->anchor) {
        pf_arch aa;
        if ((rc = pf_ckpt_read(c->anchor, &arch, &arch, &aa, &anchor, NULL, err))) goto done;
    }
    double beta = isnan(c->beta) ? meta.beta : c->beta;
    if (!(beta >= 0) || !isfinite(beta)) {
        rc = pf_fail(err, PF_EINPUT, "%s: no beta in the checkpoint; give --beta", model);
        goto done;
    }
    if ((rc = pf_data_load(&c->data, &train, &test, err))) goto done;
    if ((rc = pf_work_init(&gw, ctx, &arch, 1000, err))) goto done;
    have_gw = 1;
    if ((rc = pf_work_init(&hw, ctx, &arch, 1000, err))) goto done;
    have_hw = 1;
    if ((rc = pf_mlp_objective_create(&mo, &gw, &hw, &train, err))) goto done;
    pf_mlp_objective_set(mo, beta, anchor);
    pf_objective obj = pf_mlp_objective_get(mo);
    size_t n = arch.n_params;
    x = malloc(n * sizeof *x), mode = malloc(n * sizeof *mode), th_min = malloc(n * sizeof *th_min);
    if (!x || !mode || !th_min) {
        rc = pf_fail(err, PF_ERUNTIME, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) x[i] = theta[i];
    /* the minimum first: the model converged at this beta */
    pf_newton_config nc;
    pf_newton_config_default(&nc);
    nc.grad_tol = c->grad_tol;
    pf_newton_result nr;
    if ((rc = pf_newton(&obj, x, &nc, &nr, err))) goto done;
    for (size_t i = 0; i < n; i++) th_min[i] = (float)x[i];
    pf_metrics m_min, m_sad;
    if ((rc = pf_measure(&gw, th_min, &train, &test, anchor, beta, &m_min, err))) goto done;
    /* then the saddle */
    pf_saddle_config sc;
    pf_saddle_config_default(&sc);
    sc.grad_tol = c->grad_tol;
    sc.max_iter = c->max_iter;
    sc.direction = c->direction;
    sc.lanczos.ctx = ctx;
    pf_saddle_result sr;
    if ((rc = pf_saddle_search(&obj, x, mode, &sc, &sr, err))) goto done;
    for (size_t i = 0; i < n; i++) theta[i] = (float)x[i];
    if ((rc = pf_measure(&gw, theta, &train, &test, anchor, beta, &m_sad, err))) goto done;
    memset(&meta, 0, sizeof meta);
    meta.beta = beta;
    snprintf(meta.anchor, sizeof meta.anchor, "%s", c->anchor ? c->anchor : "origin");
    snprintf(meta.dataset, sizeof meta.dataset, "%s", train.name);
    char extra[256];
    snprintf(extra, sizeof extra, "{\"saddle_of\":\"minimum near the model\",\"index\":%d,\"converged\":%s}",
             sr.index, sr.converged ? "true" : "false");
    meta.extra = extra;
    if ((rc = pf_ckpt_write(out_path, &arch, theta, &meta, err))) goto done;

    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "command", "saddle");
    cJSON_AddStringToObject(o, "model", model);
    cJSON_AddStringToObject(o, "saddle", out_path);
    cJSON_AddNumberToObject(o, "beta", beta);
    cJSON_AddNumberToObject(o, "L_min", sr.f_start);
    cJSON_AddNumberToObject(o, "L_saddle", sr.f);
    cJSON_AddNumberToObject(o, "barrier", sr.f - sr.f_start);
    cJSON_AddNumberToObject(o, "barrier_normal_form", sr.barrier_normal_form);
    cJSON_AddNumberToObject(o, "index", sr.index);
    cJSON *eig = cJSON_AddArrayToObject(o, "lowest_eigenvalues_L");
    for (int i = 0; i < sr.n_eig; i++) cJSON_AddItemToArray(eig, cJSON_CreateNumber(sr.eig[i]));
    cJSON_AddNumberToObject(o, "lambda_min_L_at_minimum", sr.lambda_start);
    cJSON_AddNumberToObject(o, "grad_norm", sr.grad_inf);
    cJSON_AddNumberToObject(o, "grad_norm_minimum", nr.grad_inf);
    cJSON_AddBoolToObject(o, "converged", sr.converged && nr.converged);
    cJSON_AddNumberToObject(o, "distance", sr.distance);
    cJSON_AddNumberToObject(o, "overlap", sr.overlap);
    cJSON_AddNumberToObject(o, "test_accuracy_min", m_min.test.accuracy);
    cJSON_AddNumberToObject(o, "test_accuracy", m_sad.test.accuracy);
    add_classes(o, "encoded_classes_min", &m_min.test, c->encoding.threshold);
    add_classes(o, "encoded_classes", &m_sad.test, c->encoding.threshold);
    cJSON_AddNumberToObject(o, "r_min", m_min.r);
    cJSON_AddNumberToObject(o, "r", m_sad.r);
    cJSON_AddNumberToObject(o, "iterations", sr.iterations);
    cJSON_AddNumberToObject(o, "hvps", (double)(sr.hvps + nr.hvps));
    cJSON_AddNumberToObject(o, "seconds", sr.seconds + nr.seconds);
    pf_text t;
    if (pf_text_begin(&t)) {
        rc = pf_fail(err, PF_ERUNTIME, "out of memory");
    } else {
        fprintf(t.f, "Saddle of L_beta at beta %.10g next to the minimum near %s:\n", beta, model);
        fprintf(t.f, "  L_beta: minimum %.10g, saddle %.10g, barrier %.6g (normal form %.6g)\n", sr.f_start, sr.f,
                sr.f - sr.f_start, sr.barrier_normal_form);
        fprintf(t.f, "  index %d; lowest eigenvalues of H_L:", sr.index);
        for (int i = 0; i < sr.n_eig; i++) fprintf(t.f, " %.4g", sr.eig[i]);
        fprintf(t.f, "\n  max |gradient| %.3g at the saddle (%s), %.3g at the minimum\n", sr.grad_inf,
                sr.converged ? "converged" : "NOT converged", nr.grad_inf);
        fprintf(t.f, "  test accuracy %.2f%% at the minimum, %.2f%% at the saddle; distance %.4g, overlap with "
                "the soft mode %.3f\n", m_min.test.accuracy, m_sad.test.accuracy, sr.distance, sr.overlap);
        fprintf(t.f, "  %d iterations, %ld products, %.1f s; written to %s\n", sr.iterations, sr.hvps + nr.hvps,
                sr.seconds + nr.seconds, out_path);
        out->text = pf_text_end(&t);
        out->json = pf_json_line(o);
        if (!out->text || !out->json) rc = pf_fail(err, PF_ERUNTIME, "out of memory");
    }
    cJSON_Delete(o);
done:
    if (rc) pf_report_free(out);
    pf_mlp_objective_free(mo);
    if (have_gw) pf_work_free(&gw);
    if (have_hw) pf_work_free(&hw);
    free(theta), free(anchor), free(th_min), free(x), free(mode);
    pf_dataset_free(&train);
    pf_dataset_free(&test);
    return rc;
}

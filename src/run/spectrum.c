/* Hessian spectra of a checkpoint: the extreme eigenvalues of H_E (and of
 * H_L = H_E + beta I) by Lanczos on exact Hessian-vector products, the
 * saddle index, the eigenvectors, a spectral density by stochastic Lanczos
 * quadrature, or a timing of single products. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "pathfinder/hessian.h"
#include "run/plan.h"
#include "run/report.h"

/* Which end of the spectrum the i-th reported (ascending) value belongs to;
 * with both ends the first k are the smallest. */
static const char *end_name(const pf_lanczos_config *c, int i)
{
    if (c->which == PF_EIG_LARGEST) return "largest";
    if (c->which == PF_EIG_SMALLEST) return "smallest";
    return i < c->k ? "smallest" : "largest";
}

/* NPY 1.0: magic, little-endian header length, a Python dict padded with
 * spaces to a multiple of 64 bytes, then the raw float32 rows. */
static int write_npy(const char *path, const double *rows, int n_rows, size_t n_cols, pf_error *err)
{
    char header[128];
    int hl = snprintf(header, sizeof header,
                      "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %zu), }", n_rows,
                      n_cols);
    size_t total = 10 + (size_t)hl + 1, pad = (64 - total % 64) % 64;
    size_t head = total + pad, bytes = head + (size_t)n_rows * n_cols * sizeof(float);
    unsigned char *buf = malloc(bytes);
    if (!buf) return pf_fail(err, PF_ERUNTIME, "%s: out of memory for %zu bytes", path, bytes);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    size_t hlen = head - 10;
    buf[8] = (unsigned char)(hlen & 0xff);
    buf[9] = (unsigned char)(hlen >> 8);
    memcpy(buf + 10, header, (size_t)hl);
    memset(buf + 10 + hl, ' ', pad);
    buf[head - 1] = '\n';
    /* float32 little-endian, byte by byte so the file does not depend on the host */
    unsigned char *p = buf + head;
    for (size_t i = 0; i < (size_t)n_rows * n_cols; i++) {
        union { float f; uint32_t u; } c = {.f = (float)rows[i]};
        for (int b = 0; b < 4; b++) *p++ = (unsigned char)(c.u >> (8 * b));
    }
    int rc = pf_write_file_atomic(path, buf, bytes, err);
    free(buf);
    return rc;
}

typedef struct {
    double beta, loss, r, neg_thresh, cpu_seconds;
    int index_E, index_L, index_lower_bound;
    size_t samples;
} hessian_summary;

static cJSON *results_json(const pf_spectrum_config *a, const char *model, int threads,
                           const pf_arch *arch, const pf_lanczos_result *r, const hessian_summary *s)
{
    cJSON *o = cJSON_CreateObject();
    char buf[512];
    cJSON_AddStringToObject(o, "command", "hessian");
    cJSON_AddStringToObject(o, "model", model);
    pf_arch_sizes_str(arch, buf, sizeof buf);
    cJSON_AddStringToObject(o, "architecture", buf);
    pf_arch_acts_str(arch, buf, sizeof buf);
    cJSON_AddStringToObject(o, "activations", buf);
    cJSON_AddStringToObject(o, "loss_kind", pf_loss_name(arch->loss));
    cJSON_AddNumberToObject(o, "n_params", (double)arch->n_params);
    cJSON_AddNumberToObject(o, "samples", (double)s->samples);
    cJSON_AddNumberToObject(o, "beta", s->beta);
    cJSON_AddStringToObject(o, "anchor", a->anchor ? a->anchor : "origin");
    cJSON_AddNumberToObject(o, "loss", s->loss);
    cJSON_AddNumberToObject(o, "r", s->r);
    cJSON_AddNumberToObject(o, "reg_loss", s->loss + 0.5 * s->beta * s->r * s->r);
    cJSON_AddNumberToObject(o, "k", a->lanczos.k);
    cJSON_AddStringToObject(o, "which", pf_eig_which_name(a->lanczos.which));
    cJSON_AddNumberToObject(o, "tol", a->lanczos.tol);
    cJSON_AddNumberToObject(o, "seed", (double)a->lanczos.seed);
    cJSON *ev = cJSON_AddArrayToObject(o, "eigenvalues_E");
    cJSON *el = cJSON_AddArrayToObject(o, "eigenvalues_L");
    cJSON *res = cJSON_AddArrayToObject(o, "residuals");
    cJSON *conv = cJSON_AddArrayToObject(o, "converged");
    cJSON *ends = cJSON_AddArrayToObject(o, "ends");
    for (int i = 0; i < r->n_values; i++) {
        cJSON_AddItemToArray(ev, cJSON_CreateNumber(r->values[i]));
        cJSON_AddItemToArray(el, cJSON_CreateNumber(r->values[i] + s->beta));
        cJSON_AddItemToArray(res, cJSON_CreateNumber(r->residuals[i]));
        cJSON_AddItemToArray(conv, cJSON_CreateBool(r->converged[i]));
        cJSON_AddItemToArray(ends, cJSON_CreateString(end_name(&a->lanczos, i)));
    }
    cJSON_AddBoolToObject(o, "residuals_measured", r->vectors != NULL);
    cJSON_AddNumberToObject(o, "lambda_min_E", r->values[0]);
    cJSON_AddNumberToObject(o, "lambda_max_E", r->values[r->n_values - 1]);
    cJSON_AddNumberToObject(o, "lambda_min_L", r->values[0] + s->beta);
    cJSON_AddNumberToObject(o, "lambda_max_L", r->values[r->n_values - 1] + s->beta);
    cJSON_AddNumberToObject(o, "neg_tol", a->neg_tol);
    cJSON_AddNumberToObject(o, "neg_threshold", s->neg_thresh);
    cJSON_AddNumberToObject(o, "saddle_index_E", s->index_E);
    cJSON_AddNumberToObject(o, "saddle_index_L", s->index_L);
    cJSON_AddBoolToObject(o, "saddle_index_lower_bound", s->index_lower_bound);
    cJSON_AddBoolToObject(o, "all_converged", r->all_converged);
    cJSON_AddNumberToObject(o, "krylov_dim", r->iterations);
    cJSON_AddNumberToObject(o, "hvps", (double)r->n_matvecs);
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    cJSON_AddNumberToObject(o, "cpu_seconds", s->cpu_seconds);
    cJSON_AddNumberToObject(o, "threads", threads);
    return o;
}

static int write_csv(const char *path, const pf_spectrum_config *a, const pf_lanczos_result *r,
                     double beta, pf_error *err)
{
    size_t cap = 128 + (size_t)r->n_values * 160;
    char *buf = malloc(cap);
    if (!buf) return pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
    size_t len = (size_t)snprintf(buf, cap, "index,end,lambda_E,lambda_L,residual,converged\n");
    for (int i = 0; i < r->n_values; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%d,%s,%.17g,%.17g,%.6g,%d\n", i,
                                end_name(&a->lanczos, i), r->values[i], r->values[i] + beta,
                                r->residuals[i], r->converged[i]);
    int rc = pf_write_file_atomic(path, buf, len, err);
    free(buf);
    return rc;
}

static void print_table(FILE *f, const pf_spectrum_config *a, const char *model, int threads,
                        const pf_lanczos_result *r, const hessian_summary *s)
{
    fprintf(f, "Hessian of E at %s: %zu parameters, %zu samples, beta %g\n", model, r->n, s->samples,
           s->beta);
    fprintf(f, "E %.6g   L_beta %.6g   r %.6g\n", s->loss, s->loss + 0.5 * s->beta * s->r * s->r, s->r);
    fprintf(f, "%4s  %-8s  %15s  %15s  %10s  %s\n", "i", "end", "lambda(H_E)", "lambda(H_L)",
           r->vectors ? "residual" : "res.bound", "converged");
    for (int i = 0; i < r->n_values; i++)
        fprintf(f, "%4d  %-8s  %15.8g  %15.8g  %10.3g  %s\n", i, end_name(&a->lanczos, i),
               r->values[i], r->values[i] + s->beta, r->residuals[i], r->converged[i] ? "yes" : "no");
    fprintf(f, "lambda_min(H_E) %.8g   lambda_max(H_E) %.8g   (H_L = H_E + %g I)\n", r->values[0],
           r->values[r->n_values - 1], s->beta);
    fprintf(f, "saddle index: E %d%s, L_beta %d%s (eigenvalues below -%.3g)\n", s->index_E,
           s->index_lower_bound ? " or more" : "", s->index_L, s->index_lower_bound ? " or more" : "",
           s->neg_thresh);
    fprintf(f, "Krylov dimension %d, %ld H.v products, %.2f s, %d thread%s%s\n", r->iterations,
           r->n_matvecs, r->seconds, threads, threads > 1 ? "s" : "",
           r->all_converged ? "" : "  (NOT all converged: raise --max-dim or --tol)");
    }

/* ---- modes ------------------------------------------------------------------ */

/* CPU seconds of the whole process (all threads): on a shared machine a
 * steadier yardstick than the wall clock. */
static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Timing of single products at v = theta/||theta||: one-shot pf_hvp calls
 * (everything from scratch, as one H.v costs on its own), and the reused
 * operator that Lanczos runs (its setup, its first product, which fills
 * the cache, and the later ones). */
static int time_products(const pf_spectrum_config *a, const char *model, int threads, pf_work *w,
                         const float *theta, const pf_dataset *train, pf_report *out, pf_error *err)
{
    size_t n = w->arch->n_params, rows = 0;
    float *v = malloc(n * sizeof *v), *hv = malloc(n * sizeof *hv);
    if (!v || !hv) {
        free(v), free(hv);
        return pf_fail(err, PF_ERUNTIME, "out of memory");
    }
    double norm = pf_distance(theta, NULL, n);
    for (size_t i = 0; i < n; i++) v[i] = (float)(theta[i] / (norm > 0 ? norm : 1.0));
    double one_shot = INFINITY, setup = 0.0, first = 0.0, best = INFINITY, sum = 0.0, loss = NAN;
    double first_one_shot = NAN; /* with the sparse form of the data still to make */
    double one_shot_cpu = INFINITY, best_cpu = INFINITY;
    int rc = PF_OK, sparse = 0;
    for (long t = 0; t < a->time_hvp && !rc; t++) {
        double t0 = pf_now(), c0 = cpu_now();
        rc = pf_hvp(w, theta, train, (size_t)a->subset, 0.0, v, hv, err);
        if (t == 0) first_one_shot = pf_now() - t0;
        one_shot = fmin(one_shot, pf_now() - t0);
        one_shot_cpu = fmin(one_shot_cpu, cpu_now() - c0);
    }
    pf_hessian *h = NULL;
    if (!rc) {
        double t0 = pf_now();
        rc = pf_hessian_create(&h, w, theta, train, (size_t)a->subset, err);
        setup = pf_now() - t0;
    }
    for (long t = 0; t <= a->time_hvp && !rc; t++) {
        double t0 = pf_now(), c0 = cpu_now();
        rc = pf_hessian_apply(h, 0.0, v, hv, err);
        double dt = pf_now() - t0;
        if (t == 0) {
            first = dt;
        } else {
            best = fmin(best, dt);
            best_cpu = fmin(best_cpu, cpu_now() - c0);
            sum += dt;
        }
    }
    if (!rc) {
        loss = pf_hessian_loss(h);
        rows = pf_hessian_samples(h);
        sparse = pf_hessian_sparse_input(h);
        double vhv = 0.0, hn = 0.0;
        for (size_t i = 0; i < n; i++) {
            vhv += (double)v[i] * hv[i];
            hn += (double)hv[i] * hv[i];
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "command", "hessian");
        cJSON_AddStringToObject(o, "mode", "time-hvp");
        cJSON_AddStringToObject(o, "model", model);
        cJSON_AddNumberToObject(o, "n_params", (double)n);
        cJSON_AddNumberToObject(o, "samples", (double)rows);
        cJSON_AddNumberToObject(o, "threads", threads);
        cJSON_AddNumberToObject(o, "block", (double)a->block);
        cJSON_AddBoolToObject(o, "sparse_input", sparse);
        cJSON_AddNumberToObject(o, "products", (double)a->time_hvp);
        cJSON_AddNumberToObject(o, "one_shot_seconds", one_shot);
        cJSON_AddNumberToObject(o, "first_one_shot_seconds", first_one_shot);
        cJSON_AddNumberToObject(o, "setup_seconds", setup);
        cJSON_AddNumberToObject(o, "first_seconds", first);
        cJSON_AddNumberToObject(o, "seconds", best);
        cJSON_AddNumberToObject(o, "seconds_mean", sum / (double)a->time_hvp);
        cJSON_AddNumberToObject(o, "one_shot_cpu_seconds", one_shot_cpu);
        cJSON_AddNumberToObject(o, "cpu_seconds", best_cpu);
        cJSON_AddNumberToObject(o, "loss", loss);
        cJSON_AddNumberToObject(o, "vHv", vhv);
        cJSON_AddNumberToObject(o, "hv_norm", sqrt(hn));
        out->json = pf_json_line(o);
        /* the text is the same line, ended as a line of text is */
        pf_text t;
        if (out->json && !pf_text_begin(&t)) {
            fprintf(t.f, "%s\n", out->json);
            out->text = pf_text_end(&t);
        }
        cJSON_Delete(o);
        if (!out->json || !out->text) rc = pf_fail(err, PF_ERUNTIME, "out of memory");
    }
    pf_hessian_free(h);
    free(v);
    free(hv);
    return rc;
}

/* (the file is written only if `writes`: one process of several writes it) */
static int write_density(const pf_spectrum_config *a, pf_hessian *h, int writes, pf_error *err)
{
    pf_slq_result q;
    int rc = pf_slq(pf_hessian_matvec, h, pf_hessian_dim(h), &a->slq, &q, err);
    if (rc) return rc;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < (size_t)q.n_probes * q.steps; i++) {
        if (q.weights[i] <= 0) continue;
        lo = fmin(lo, q.nodes[i]);
        hi = fmax(hi, q.nodes[i]);
    }
    double sigma = a->sigma > 0 ? a->sigma : 0.01 * (hi - lo > 0 ? hi - lo : fabs(hi) + 1e-12);
    lo -= 5 * sigma, hi += 5 * sigma;
    int ng = (int)a->grid;
    double *grid = malloc((size_t)ng * sizeof *grid), *dens = malloc((size_t)ng * sizeof *dens);
    char *buf = malloc((size_t)ng * 64 + 64);
    if (!grid || !dens || !buf) {
        rc = pf_fail(err, PF_ERUNTIME, "out of memory for the density grid");
    } else if (writes) {
        for (int g = 0; g < ng; g++) grid[g] = lo + (hi - lo) * g / (ng - 1);
        pf_slq_density(&q, sigma, grid, ng, dens);
        size_t len = (size_t)sprintf(buf, "lambda,density\n");
        for (int g = 0; g < ng; g++) len += (size_t)sprintf(buf + len, "%.10g,%.10g\n", grid[g], dens[g]);
        rc = pf_write_file_atomic(a->density, buf, len, err);
    }
    if (!rc && a->progress) {
        char text[4400];
        snprintf(text, sizeof text, "density from %d probes x %d steps (%ld products, %.1f s, sigma %.3g) -> %s",
                 q.n_probes, q.steps, q.n_matvecs, q.seconds, sigma, a->density);
        pf_event e = {.kind = PF_EVENT_NOTE, .run = a->density, .text = text, .beta = NAN};
        a->progress(a->progress_ctx, &e);
    }
    free(grid), free(dens), free(buf);
    pf_slq_result_free(&q);
    return rc;
}


void pf_spectrum_config_default(pf_spectrum_config *c)
{
    memset(c, 0, sizeof *c);
    pf_data_options_default(&c->data);
    pf_lanczos_config_default(&c->lanczos);
    c->lanczos.k = 10;
    c->beta = NAN;
    c->neg_tol = 1e-6;
    c->block = 512;
    c->slq.n_probes = 4;
    c->slq.steps = 80;
    c->grid = 400;
}

static void lanczos_event(void *ctx, int dim, int n_conv, int n_wanted, double seconds)
{
    const pf_spectrum_config *c = ctx;
    pf_event e = {.kind = PF_EVENT_LANCZOS, .index = dim, .epoch = n_conv, .total = n_wanted,
                  .beta = NAN, .seconds = seconds};
    c->progress(c->progress_ctx, &e);
}

int pf_run_spectrum(pf_ctx *ctx, const char *model, const pf_spectrum_config *cfg, pf_report *out,
                    pf_error *err)
{
    memset(out, 0, sizeof *out);
    pf_spectrum_config c = *cfg;
    int threads = pf_ctx_threads(ctx), rc = PF_OK;
    pf_dataset train = {0}, test = {0};
    pf_arch arch, fallback;
    float *theta = NULL, *anchor = NULL;
    pf_work w = {0};
    pf_hessian *h = NULL;
    pf_lanczos_result res = {0};
    pf_ckpt_meta meta;
    if (c.out && !pf_has_ext(c.out, ".json") && !pf_has_ext(c.out, ".csv"))
        return pf_fail(err, PF_EINPUT, "%s: the results go to a .json or .csv file", c.out);
    if (c.vectors && !pf_has_ext(c.vectors, ".npy"))
        return pf_fail(err, PF_EINPUT, "%s: the eigenvectors go to a .npy file", c.vectors);
    if (c.density && !pf_has_ext(c.density, ".csv"))
        return pf_fail(err, PF_EINPUT, "%s: the density goes to a .csv file", c.density);
    if (c.vectors) c.lanczos.want_vectors = 1;
    c.slq.seed = c.lanczos.seed;
    /* The outputs can be written, and the model is read before the data,
     * so a bad path or file fails fast. */
    const char *outputs[3] = {c.out, c.vectors, c.density};
    for (int i = 0; i < 3; i++)
        if (outputs[i] && (rc = pf_check_output_file(outputs[i], err))) goto done;
    if ((rc = pf_ckpt_read(model, NULL, NULL, &arch, &theta, &meta, err))) goto done;
    if (c.act) {
        fallback = arch;
        if ((rc = pf_arch_set_acts(&fallback, c.act, err))) goto done;
        free(theta);
        theta = NULL;
        if ((rc = pf_ckpt_read(model, &fallback, NULL, &arch, &theta, &meta, err))) goto done;
    }
    if ((size_t)c.lanczos.k > arch.n_params) {
        rc = pf_fail(err, PF_EINPUT, "k %d exceeds the model's %zu parameters", c.lanczos.k, arch.n_params);
        goto done;
    }
    if (c.anchor) {
        pf_arch anchor_arch;
        if ((rc = pf_ckpt_read(c.anchor, &arch, &arch, &anchor_arch, &anchor, NULL, err))) goto done;
    }
    double beta = isnan(c.beta) ? meta.beta : c.beta;
    if ((rc = pf_data_load(&c.data, &train, &test, err))) goto done;
    if (c.subset > 0 && (size_t)c.subset > train.n) {
        rc = pf_fail(err, PF_EINPUT, "subset %ld exceeds the %zu training samples of %s", c.subset, train.n,
                     train.name);
        goto done;
    }
    /* data-parallel: this process's share of the rows used; the test set is not needed */
    int writes = pf_ctx_rank(ctx) == 0;
    if (pf_ctx_ranks(ctx) > 1) {
        if ((rc = pf_data_shard(ctx, &train, (size_t)c.subset, NULL, err))) goto done;
        pf_dataset_free(&test);
        c.subset = 0;
    }
    if ((rc = pf_work_init(&w, ctx, &arch, (int)c.block, err))) goto done;
    c.lanczos.ctx = ctx;
    c.slq.ctx = ctx;
    if (c.time_hvp > 0) {
        rc = time_products(&c, model, threads, &w, theta, &train, out, err);
        goto done;
    }
    if ((rc = pf_hessian_create(&h, &w, theta, &train, (size_t)c.subset, err))) goto done;
    if (c.progress) {
        c.lanczos.progress = lanczos_event;
        c.lanczos.progress_ctx = &c;
    }
    double cpu0 = cpu_now();
    rc = pf_lanczos(pf_hessian_matvec, h, arch.n_params, &c.lanczos, &res, err);
    double cpu_seconds = cpu_now() - cpu0;
    if (rc) goto done;

    hessian_summary s = {.beta = beta, .loss = pf_hessian_loss(h), .cpu_seconds = cpu_seconds,
                         .r = pf_distance(theta, anchor, arch.n_params), .samples = pf_hessian_samples(h)};
    /* The index counts the negative eigenvalues found; it is only a lower
     * bound when the smallest end was not searched or all of it was negative. */
    s.neg_thresh = c.neg_tol * res.scale;
    int n_small = c.lanczos.which == PF_EIG_LARGEST ? 0 : c.lanczos.k;
    for (int i = 0; i < res.n_values; i++) {
        s.index_E += res.values[i] < -s.neg_thresh;
        s.index_L += res.values[i] + beta < -s.neg_thresh;
    }
    s.index_lower_bound = n_small == 0 || (s.index_E >= n_small && res.n_values < (int)arch.n_params);

    cJSON *doc = results_json(&c, model, threads, &arch, &res, &s);
    if (c.out && writes) {
        if (pf_has_ext(c.out, ".csv")) {
            rc = write_csv(c.out, &c, &res, beta, err);
        } else {
            rc = pf_write_json(c.out, doc, err);
        }
    }
    if (!rc && c.vectors && writes) rc = write_npy(c.vectors, res.vectors, res.n_values, arch.n_params, err);
    if (!rc && !res.all_converged && c.progress) {
        pf_event e = {.kind = PF_EVENT_WARNING, .run = model, .beta = NAN,
                      .text = "not every requested eigenvalue converged within the Krylov dimension cap"};
        c.progress(c.progress_ctx, &e);
    }
    if (!rc && c.density) rc = write_density(&c, h, writes, err);
    if (!rc) {
        pf_text t;
        if (pf_text_begin(&t)) {
            rc = pf_fail(err, PF_ERUNTIME, "out of memory");
        } else {
            print_table(t.f, &c, model, threads, &res, &s);
            out->text = pf_text_end(&t);
            out->json = pf_json_line(doc);
            if (!out->text || !out->json) rc = pf_fail(err, PF_ERUNTIME, "out of memory");
        }
    }
    cJSON_Delete(doc);
done:
    if (rc) pf_report_free(out);
    pf_lanczos_result_free(&res);
    pf_hessian_free(h);
    pf_work_free(&w);
    free(theta);
    free(anchor);
    pf_dataset_free(&train);
    pf_dataset_free(&test);
    return rc;
}

/* ---- several checkpoints: a plan of one task each ------------------------------ */

/* hessian A B C --out DIR: each checkpoint's spectrum into DIR/model_<k>.json
 * (k its place in the list), made by one task, skipped when it is there
 * from the same model and settings; the finish writes DIR/spectra.csv (one
 * row per model, in the list's order) and reports the table. */
typedef struct {
    char *dir;
    const char *const *models;
    int n;
    pf_spectrum_config c;
} spectra_plan;

static void spectra_free(void *data)
{
    spectra_plan *s = data;
    if (s) free(s->dir);
    free(s);
}

/* What a model's results depend on, beside the model: a rerun with other
 * settings into the same folder is refused rather than mixed. */
static void spectra_settings(const pf_spectrum_config *c, char *buf, size_t n)
{
    snprintf(buf, n, "k=%d which=%s tol=%.17g max_dim=%d seed=%llu beta=%.17g anchor=%s act=%s "
             "subset=%ld neg_tol=%.17g data=%s norm=%d train_subset=%ld subset_seed=%llu",
             c->lanczos.k, pf_eig_which_name(c->lanczos.which), c->lanczos.tol, c->lanczos.max_dim,
             (unsigned long long)c->lanczos.seed, c->beta, c->anchor ? c->anchor : "origin",
             c->act ? c->act : "-", c->subset, c->neg_tol, c->data.spec ? c->data.spec : "arrays",
             (int)c->data.norm, c->data.train_subset, (unsigned long long)c->data.subset_seed);
}

static void spectra_path(const spectra_plan *s, int k, char *buf, size_t n)
{
    snprintf(buf, n, "%s/model_%d.json", s->dir, k);
}

/* DIR/model_<k>.json read back: NULL (and *rc PF_OK) when it is not there */
static cJSON *spectra_load(const spectra_plan *s, int k, int *rc, pf_error *err)
{
    char path[4096], want[2048];
    spectra_path(s, k, path, sizeof path);
    *rc = PF_OK;
    if (access(path, F_OK) != 0) return NULL;
    char *text;
    if ((*rc = pf_read_file(path, &text, NULL, 1 << 24, err))) return NULL;
    cJSON *o = cJSON_Parse(text);
    free(text);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "model");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "settings");
    spectra_settings(&s->c, want, sizeof want);
    if (!cJSON_IsString(m) || !cJSON_IsString(st)) {
        *rc = pf_fail(err, PF_EINPUT, "%s: not a pathfinder spectrum", path);
    } else if (strcmp(m->valuestring, s->models[k])) {
        *rc = pf_fail(err, PF_EINPUT, "%s: holds the spectrum of %s, not of %s; use another --out", path,
                      m->valuestring, s->models[k]);
    } else if (strcmp(st->valuestring, want)) {
        *rc = pf_fail(err, PF_EINPUT, "%s: made with other settings (%s); use another --out", path,
                      st->valuestring);
    }
    if (*rc) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static int spectra_prepare(pf_plan *p, int stage, pf_error *err)
{
    spectra_plan *s = p->data;
    (void)stage;
    for (int k = 0; k < s->n; k++) {
        int rc = pf_plan_add(p, err, "%s", s->models[k]);
        if (rc) return rc;
    }
    return PF_OK;
}

static int spectra_run(pf_plan *p, pf_ctx *ctx, long i, pf_error *err)
{
    spectra_plan *s = p->data;
    int rc;
    cJSON *done = spectra_load(s, (int)i, &rc, err);
    cJSON_Delete(done);
    if (rc || done) return rc;
    char path[4096], settings[2048];
    spectra_path(s, (int)i, path, sizeof path);
    spectra_settings(&s->c, settings, sizeof settings);
    pf_spectrum_config c = s->c;
    c.out = NULL;
    pf_report r = {0};
    rc = pf_run_spectrum(ctx, s->models[i], &c, &r, err);
    cJSON *o = rc ? NULL : cJSON_Parse(r.json);
    pf_report_free(&r);
    if (!rc && !o) rc = pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);
    if (!rc) {
        cJSON_AddStringToObject(o, "settings", settings);
        rc = pf_write_json(path, o, err);
    }
    cJSON_Delete(o);
    return rc;
}

static double spectra_num(const cJSON *o, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static int spectra_finish(pf_plan *p, pf_report *out, pf_error *err)
{
    spectra_plan *s = p->data;
    static const char *const cols[] = {"beta", "loss", "reg_loss", "r", "lambda_min_E", "lambda_max_E",
                                       "lambda_min_L", "lambda_max_L", "saddle_index_E", "saddle_index_L",
                                       "krylov_dim", "hvps", "seconds"};
    enum { NC = sizeof cols / sizeof *cols };
    pf_text csv, txt, js;
    int rc = PF_OK;
    if (pf_text_begin(&csv) || pf_text_begin(&txt) || pf_text_begin(&js))
        return pf_fail(err, PF_ERUNTIME, "out of memory");
    fprintf(csv.f, "index,model");
    for (int j = 0; j < NC; j++) fprintf(csv.f, ",%s", cols[j]);
    fprintf(csv.f, ",all_converged\n");
    fprintf(txt.f, "Hessian spectra of %d models (beta of each model's L_beta; H_L = H_E + beta I):\n", s->n);
    fprintf(txt.f, "%4s  %-10s  %14s  %14s  %14s  %7s  %7s  %s\n", "i", "beta", "E", "lambda_min(H_E)",
            "lambda_max(H_E)", "index_E", "index_L", "model");
    for (int k = 0; k < s->n && !rc; k++) {
        cJSON *o = spectra_load(s, k, &rc, err);
        if (!rc && !o) {
            char path[4096];
            spectra_path(s, k, path, sizeof path);
            rc = pf_fail(err, PF_ERUNTIME, "%s: missing (its task did not finish)", path);
        }
        if (rc) break;
        double v[NC];
        for (int j = 0; j < NC; j++) v[j] = spectra_num(o, cols[j]);
        const cJSON *conv = cJSON_GetObjectItemCaseSensitive(o, "all_converged");
        fprintf(csv.f, "%d,%s", k, s->models[k]);
        for (int j = 0; j < NC; j++) fprintf(csv.f, ",%.17g", v[j]);
        fprintf(csv.f, ",%d\n", cJSON_IsTrue(conv));
        fprintf(txt.f, "%4d  %-10.6g  %14.8g  %14.8g  %14.8g  %7.0f  %7.0f  %s%s\n", k, v[0], v[1], v[4], v[5],
                v[8], v[9], s->models[k], cJSON_IsTrue(conv) ? "" : "  (not all converged)");
        cJSON *line = cJSON_Duplicate(o, 1);
        cJSON_DeleteItemFromObjectCaseSensitive(line, "settings");
        char *l = cJSON_PrintUnformatted(line);
        if (l) fprintf(js.f, "%s%s", k ? "\n" : "", l);
        free(l);
        cJSON_Delete(line);
        cJSON_Delete(o);
    }
    fprintf(txt.f, "Results: %s/spectra.csv, %s/model_<i>.json\n", s->dir, s->dir);
    char *c = pf_text_end(&csv);
    out->text = pf_text_end(&txt);
    out->json = pf_text_end(&js);
    if (!rc && (!c || !out->text || !out->json)) rc = pf_fail(err, PF_ERUNTIME, "out of memory");
    if (!rc) {
        char path[4096];
        snprintf(path, sizeof path, "%s/spectra.csv", s->dir);
        rc = pf_write_file_atomic(path, c, strlen(c), err);
    }
    free(c);
    if (rc) pf_report_free(out);
    return rc;
}

int pf_spectra_plan(const char *dir, const char *const *models, int n_models, const pf_spectrum_config *c,
                    int threads, pf_plan **plan, pf_error *err)
{
    *plan = NULL;
    if (c->vectors || c->density || c->time_hvp > 0)
        return pf_fail(err, PF_EINPUT, "--vectors, --density and --time-hvp take one checkpoint, not %d",
                       n_models);
    if (!dir) return pf_fail(err, PF_EINPUT, "several checkpoints need --out DIR, the folder of their results");
    int rc = pf_make_dirs(dir, err);
    if (rc) return rc;
    pf_plan *p = pf_plan_alloc(1, threads);
    spectra_plan *s = calloc(1, sizeof *s);
    if (s) s->dir = strdup(dir);
    if (!p || !s || !s->dir) {
        pf_plan_free(p);
        spectra_free(s);
        return pf_fail(err, PF_ERUNTIME, "out of memory");
    }
    s->models = models;
    s->n = n_models;
    s->c = *c;
    p->data = s;
    p->free_data = spectra_free;
    p->prepare = spectra_prepare;
    p->run = spectra_run;
    p->finish = spectra_finish;
    *plan = p;
    return PF_OK;
}

/* pathfinder hessian: extreme eigenvalues of the Hessian of E (and of L_beta
 * = E + beta/2 ||theta - anchor||^2, whose Hessian is H_E + beta I) at a
 * checkpoint, by Lanczos on exact Hessian-vector products; optionally the
 * eigenvectors, a spectral density, or a timing of single products. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char *const hessian_usage =
    "Usage: pathfinder hessian [OPTIONS] FILE.safetensors\n"
    "Extreme eigenvalues of the Hessian of the training error E at a checkpoint, and of\n"
    "L_beta = E + (beta/2)||theta - anchor||^2 (the same shifted by beta), by Lanczos with\n"
    "full reorthogonalization on exact Hessian-vector products (Pearlmutter's R-operator).\n"
    "Prints a table (or one JSON line with --json).\n\n";

typedef struct {
    cli_common common;
    const char *model, *anchor, *act, *out, *vectors, *density;
    pf_lanczos_config lanczos;
    int which;            /* index into which_names */
    double beta;          /* < 0: the checkpoint's */
    double neg_tol;
    long subset, block, time_hvp;
    pf_slq_config slq;
    double sigma;         /* 0: automatic */
    long grid;
} hessian_args;

static const char *const which_names[] = {"largest", "smallest", "both", NULL};

static int has_ext(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n > e && strcmp(path + n - e, ext) == 0;
}

static const char *parse_out(void *opts, const char *arg)
{
    hessian_args *a = opts;
    if (!has_ext(arg, ".json") && !has_ext(arg, ".csv")) return "a .json or .csv file";
    a->out = arg;
    return NULL;
}

static const char *parse_vectors(void *opts, const char *arg)
{
    hessian_args *a = opts;
    if (!has_ext(arg, ".npy")) return "a .npy file";
    a->vectors = arg;
    a->lanczos.want_vectors = 1;
    return NULL;
}

static const char *parse_density(void *opts, const char *arg)
{
    hessian_args *a = opts;
    if (!has_ext(arg, ".csv")) return "a .csv file";
    a->density = arg;
    return NULL;
}

static void show_checkpoint(const void *opts, char *buf, size_t n)
{
    (void)opts;
    snprintf(buf, n, "the checkpoint's");
}

static void show_auto(const void *opts, char *buf, size_t n)
{
    (void)opts;
    snprintf(buf, n, "1%% of the spectral range");
}

static void show_max_dim(const void *opts, char *buf, size_t n)
{
    (void)opts;
    snprintf(buf, n, "%d, at most the parameter count", PF_LANCZOS_MAX_DIM);
}

static const cli_option hessian_rows[] = {
    {CLI_SECTION, .help = "Spectrum:"},
    {CLI_INT, "k", "K", CLI_OFF(hessian_args, lanczos.k), 1, 1 << 30, 0, "eigenvalues wanted at each end", .given = 0},
    {CLI_CHOICE, "which", "END", CLI_OFF(hessian_args, which), .help =
     "both, largest or smallest (algebraic: negative eigenvalues are the smallest)", .choices = which_names},
    {CLI_DOUBLE, "tol", "X", CLI_OFF(hessian_args, lanczos.tol), 0, 1, CLI_LO_OPEN | CLI_HI_OPEN,
     "converged when the Ritz residual ||H y - lambda y|| <= X times the largest |eigenvalue|", .given = 0},
    {CLI_INT, "max-dim", "M", CLI_OFF(hessian_args, lanczos.max_dim), 1, 100000, 0,
     "largest Krylov dimension; memory is M x parameters doubles", .show = show_max_dim},
    {CLI_U64, "seed", "S", CLI_OFF(hessian_args, lanczos.seed), 0, 1.8e19, 0,
     "seed of the Lanczos start vector and the density's probes", .given = 0},
    {CLI_DOUBLE, "neg-tol", "X", CLI_OFF(hessian_args, neg_tol), 0, 1, CLI_HI_OPEN,
     "saddle index = number of eigenvalues below -X times the largest |eigenvalue|", .given = 0},
    {CLI_DOUBLE, "beta", "B", CLI_OFF(hessian_args, beta), 0, INFINITY, 0, "L2 strength of L_beta",
     .show = show_checkpoint},
    {CLI_STR, "anchor", "FILE", CLI_OFF(hessian_args, anchor), 0, 0, CLI_NO_DEFAULT,
     "anchor of L_beta, for its value and r (default: the origin; it does not change the Hessian)", .given = 0},
    {CLI_LONG, "subset", "N", CLI_OFF(hessian_args, subset), 1, 1e15, CLI_NO_DEFAULT,
     "use the first N training samples (default: all)", .given = 0},
    {CLI_STR, "act", "NAMES", CLI_OFF(hessian_args, act), 0, 0, CLI_NO_DEFAULT,
     "activations, for checkpoints without pathfinder metadata", .given = 0},
    {CLI_LONG, "block", "N", CLI_OFF(hessian_args, block), 1, 1 << 20, 0, "samples per sgemm block", .given = 0},
    {CLI_SECTION, .help = "Output:"},
    {CLI_CUSTOM, "out", "FILE", 0, 0, 0, CLI_NO_DEFAULT,
     "also write the results as FILE.json or FILE.csv (by extension)", .parse = parse_out},
    {CLI_CUSTOM, "vectors", "FILE.npy", 0, 0, 0, CLI_NO_DEFAULT,
     "also compute the eigenvectors (checked with one product each) and write them as float32 rows, "
     "in the order of the table", .parse = parse_vectors},
    {CLI_CUSTOM, "density", "FILE.csv", 0, 0, 0, CLI_NO_DEFAULT,
     "spectral density by stochastic Lanczos quadrature: columns lambda,density (Gaussian-broadened; "
     "integrates to ~1)", .parse = parse_density},
    {CLI_INT, "probes", "P", CLI_OFF(hessian_args, slq.n_probes), 1, 10000, 0, "density: random probe vectors", .given = 0},
    {CLI_INT, "density-steps", "M", CLI_OFF(hessian_args, slq.steps), 1, 100000, 0,
     "density: Lanczos steps per probe", .given = 0},
    {CLI_DOUBLE, "sigma", "X", CLI_OFF(hessian_args, sigma), 0, INFINITY, CLI_LO_OPEN,
     "density: Gaussian width", .show = show_auto},
    {CLI_LONG, "grid", "G", CLI_OFF(hessian_args, grid), 2, 1000000, 0, "density: grid points", .given = 0},
    {CLI_LONG, "time-hvp", "N", CLI_OFF(hessian_args, time_hvp), 1, 100000, CLI_NO_DEFAULT,
     "only time H.v at v = theta/||theta||: N one-shot products (from scratch) and N products of a "
     "reused operator (as Lanczos runs them, after its first); prints one JSON line with the best "
     "times, v.Hv and ||Hv||", .given = 0},
    {CLI_END},
};

static const cli_table hessian_tables[] = {
    {hessian_rows, 0},
    {cli_data_rows, CLI_OFF(hessian_args, common)},
    {cli_other_rows, CLI_OFF(hessian_args, common)},
    {NULL, 0},
};

static int parse_args(int argc, char **argv, hessian_args *a, int *help)
{
    const char *cmd = "hessian";
    memset(a, 0, sizeof *a);
    cli_common_default(&a->common);
    pf_lanczos_config_default(&a->lanczos);
    a->lanczos.k = 10;
    a->which = (int)a->lanczos.which;
    a->beta = -1;
    a->neg_tol = 1e-6;
    a->block = 512;
    a->slq.n_probes = 4;
    a->slq.steps = 80;
    a->grid = 400;
    int first;
    if (cli_parse(cmd, hessian_tables, argc, argv, a, help, &first)) return PF_EINPUT;
    if (*help) return PF_OK;
    cli_common_finish(&a->common);
    a->lanczos.which = (pf_eig_which)a->which;
    a->slq.seed = a->lanczos.seed;
    if (first != argc - 1) return cli_usage_error(cmd, "expected exactly one checkpoint file");
    a->model = argv[first];
    return PF_OK;
}

/* ---- output --------------------------------------------------------------- */

typedef struct {
    int enabled, printed;
} lanczos_progress;

static void progress_fn(void *ctx, int dim, int n_conv, int n_wanted, double seconds)
{
    lanczos_progress *p = ctx;
    if (!p->enabled) return;
    fprintf(stderr, "\r\033[Klanczos: Krylov dimension %d, %d/%d converged, %.1f s", dim, n_conv,
            n_wanted, seconds);
    fflush(stderr);
    p->printed = 1;
}

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

static cJSON *results_json(const hessian_args *a, const pf_arch *arch, const pf_lanczos_result *r,
                           const hessian_summary *s)
{
    cJSON *o = cJSON_CreateObject();
    char buf[512];
    cJSON_AddStringToObject(o, "command", "hessian");
    cJSON_AddStringToObject(o, "model", a->model);
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
    cJSON_AddNumberToObject(o, "threads", a->common.threads);
    return o;
}

static int write_csv(const char *path, const hessian_args *a, const pf_lanczos_result *r,
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

static void print_table(const hessian_args *a, const pf_lanczos_result *r, const hessian_summary *s)
{
    printf("Hessian of E at %s: %zu parameters, %zu samples, beta %g\n", a->model, r->n, s->samples,
           s->beta);
    printf("E %.6g   L_beta %.6g   r %.6g\n", s->loss, s->loss + 0.5 * s->beta * s->r * s->r, s->r);
    printf("%4s  %-8s  %15s  %15s  %10s  %s\n", "i", "end", "lambda(H_E)", "lambda(H_L)",
           r->vectors ? "residual" : "res.bound", "converged");
    for (int i = 0; i < r->n_values; i++)
        printf("%4d  %-8s  %15.8g  %15.8g  %10.3g  %s\n", i, end_name(&a->lanczos, i),
               r->values[i], r->values[i] + s->beta, r->residuals[i], r->converged[i] ? "yes" : "no");
    printf("lambda_min(H_E) %.8g   lambda_max(H_E) %.8g   (H_L = H_E + %g I)\n", r->values[0],
           r->values[r->n_values - 1], s->beta);
    printf("saddle index: E %d%s, L_beta %d%s (eigenvalues below -%.3g)\n", s->index_E,
           s->index_lower_bound ? " or more" : "", s->index_L, s->index_lower_bound ? " or more" : "",
           s->neg_thresh);
    printf("Krylov dimension %d, %ld H.v products, %.2f s, %d thread%s%s\n", r->iterations,
           r->n_matvecs, r->seconds, a->common.threads, a->common.threads > 1 ? "s" : "",
           r->all_converged ? "" : "  (NOT all converged: raise --max-dim or --tol)");
    fflush(stdout);
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
static int time_products(const hessian_args *a, pf_work *w, const float *theta,
                         const pf_dataset *train, pf_error *err)
{
    size_t n = w->arch->n_params, rows = a->subset > 0 ? (size_t)a->subset : train->n;
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
        sparse = pf_hessian_sparse_input(h);
        double vhv = 0.0, hn = 0.0;
        for (size_t i = 0; i < n; i++) {
            vhv += (double)v[i] * hv[i];
            hn += (double)hv[i] * hv[i];
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "command", "hessian");
        cJSON_AddStringToObject(o, "mode", "time-hvp");
        cJSON_AddStringToObject(o, "model", a->model);
        cJSON_AddNumberToObject(o, "n_params", (double)n);
        cJSON_AddNumberToObject(o, "samples", (double)rows);
        cJSON_AddNumberToObject(o, "threads", a->common.threads);
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
        cli_print_json(o);
    }
    pf_hessian_free(h);
    free(v);
    free(hv);
    return rc;
}

static int write_density(const hessian_args *a, pf_hessian *h, pf_error *err)
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
    } else {
        for (int g = 0; g < ng; g++) grid[g] = lo + (hi - lo) * g / (ng - 1);
        pf_slq_density(&q, sigma, grid, ng, dens);
        size_t len = (size_t)sprintf(buf, "lambda,density\n");
        for (int g = 0; g < ng; g++) len += (size_t)sprintf(buf + len, "%.10g,%.10g\n", grid[g], dens[g]);
        rc = pf_write_file_atomic(a->density, buf, len, err);
    }
    if (!rc && !a->common.quiet)
        fprintf(stderr, "pathfinder hessian: density from %d probes x %d steps (%ld products, "
                "%.1f s, sigma %.3g) -> %s\n", q.n_probes, q.steps, q.n_matvecs, q.seconds, sigma,
                a->density);
    free(grid), free(dens), free(buf);
    pf_slq_result_free(&q);
    return rc;
}

int cmd_hessian(int argc, char **argv)
{
    const char *cmd = "hessian";
    hessian_args a;
    int help;
    int rc = parse_args(argc, argv, &a, &help);
    if (rc) return rc;
    if (help) {
        cli_print_help(stdout, hessian_usage, hessian_tables, &a, CLI_EXIT_HELP);
        return PF_OK;
    }
    pf_error err;
    pf_error_clear(&err);
    pf_dataset train = {0}, test = {0};
    pf_arch arch, fallback;
    float *theta = NULL, *anchor = NULL;
    pf_work w = {0};
    pf_ctx *ctx = NULL;
    pf_hessian *h = NULL;
    pf_lanczos_result res = {0};
    pf_ckpt_meta meta;
    lanczos_progress prog = {0};
    /* The outputs can be written, and the model is read before the data,
     * so a bad path or file fails fast. */
    const char *outputs[3] = {a.out, a.vectors, a.density};
    for (int i = 0; i < 3; i++)
        if (outputs[i] && (rc = pf_check_output_file(outputs[i], &err))) goto done;
    if ((rc = pf_ckpt_read(a.model, NULL, NULL, &arch, &theta, &meta, &err))) goto done;
    if (a.act) {
        fallback = arch;
        if ((rc = pf_arch_parse_acts(a.act, arch.n_layers, fallback.act, &err))) goto done;
        free(theta);
        theta = NULL;
        if ((rc = pf_ckpt_read(a.model, &fallback, NULL, &arch, &theta, &meta, &err))) goto done;
    }
    if ((size_t)a.lanczos.k > arch.n_params) {
        rc = pf_fail(&err, PF_EINPUT, "--k %d exceeds the model's %zu parameters", a.lanczos.k,
                     arch.n_params);
        goto done;
    }
    if (a.anchor) {
        pf_arch anchor_arch;
        if ((rc = pf_ckpt_read(a.anchor, &arch, &arch, &anchor_arch, &anchor, NULL, &err))) goto done;
    }
    double beta = a.beta >= 0 ? a.beta : meta.beta;
    if ((rc = pf_data_load(&a.common.data, &train, &test, &err))) goto done;
    if (a.subset > 0 && (size_t)a.subset > train.n) {
        rc = pf_fail(&err, PF_EINPUT, "--subset %ld exceeds the %zu training samples of %s", a.subset,
                     train.n, train.name);
        goto done;
    }
    if ((rc = pf_ctx_create(&ctx, a.common.threads, &err)) ||
        (rc = pf_work_init(&w, ctx, &arch, (int)a.block, &err)))
        goto done;
    a.lanczos.ctx = ctx;
    a.slq.ctx = ctx;
    if (a.time_hvp > 0) {
        rc = time_products(&a, &w, theta, &train, &err);
        goto done;
    }
    if ((rc = pf_hessian_create(&h, &w, theta, &train, (size_t)a.subset, &err))) goto done;
    prog.enabled = !a.common.quiet && isatty(STDERR_FILENO);
    a.lanczos.progress = progress_fn;
    a.lanczos.progress_ctx = &prog;
    double cpu0 = cpu_now();
    rc = pf_lanczos(pf_hessian_matvec, h, arch.n_params, &a.lanczos, &res, &err);
    double cpu_seconds = cpu_now() - cpu0;
    if (prog.printed) fprintf(stderr, "\r\033[K");
    if (rc) goto done;

    hessian_summary s = {.beta = beta, .loss = pf_hessian_loss(h), .cpu_seconds = cpu_seconds,
                         .r = pf_distance(theta, anchor, arch.n_params),
                         .samples = pf_hessian_samples(h)};
    /* The index counts the negative eigenvalues found; it is only a lower
     * bound when the smallest end was not searched or all of it was negative. */
    s.neg_thresh = a.neg_tol * res.scale;
    int n_small = a.lanczos.which == PF_EIG_LARGEST ? 0 : a.lanczos.k;
    for (int i = 0; i < res.n_values; i++) {
        s.index_E += res.values[i] < -s.neg_thresh;
        s.index_L += res.values[i] + beta < -s.neg_thresh;
    }
    s.index_lower_bound = n_small == 0 || (s.index_E >= n_small && res.n_values < (int)arch.n_params);

    if (a.out) {
        if (has_ext(a.out, ".csv")) {
            rc = write_csv(a.out, &a, &res, beta, &err);
        } else {
            cJSON *o = results_json(&a, &arch, &res, &s);
            char *text = cJSON_Print(o);
            cJSON_Delete(o);
            rc = text ? pf_write_file_atomic(a.out, text, strlen(text), &err)
                      : pf_fail(&err, PF_ERUNTIME, "out of memory for JSON");
            free(text);
        }
        if (rc) goto done;
    }
    if (a.vectors && (rc = write_npy(a.vectors, res.vectors, res.n_values, arch.n_params, &err)))
        goto done;
    if (a.common.json)
        cli_print_json(results_json(&a, &arch, &res, &s));
    else
        print_table(&a, &res, &s);
    if (!res.all_converged && !a.common.quiet)
        fprintf(stderr, "pathfinder hessian: warning: %s\n",
                "not every requested eigenvalue converged within --max-dim");
    if (a.density) rc = write_density(&a, h, &err);
done:
    if (rc) cli_error(cmd, rc, "%s", err.msg);
    pf_lanczos_result_free(&res);
    pf_hessian_free(h);
    pf_work_free(&w);
    pf_ctx_free(ctx);
    free(theta);
    free(anchor);
    pf_dataset_free(&train);
    pf_dataset_free(&test);
    return rc;
}

/* pathfinder hessian: extreme eigenvalues of the Hessian of E (and of L_beta
 * = E + beta/2 ||theta - anchor||^2, whose Hessian is H_E + beta I) at a
 * checkpoint, by Lanczos on exact Hessian-vector products; optionally the
 * eigenvectors, a spectral density, or a timing of single products
 * (pf_run_spectrum does the work). */
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
    pf_spectrum_config s;
    int which;            /* index into which_names */
    double beta;          /* < 0: the checkpoint's */
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
    a->s.out = arg;
    return NULL;
}

static const char *parse_vectors(void *opts, const char *arg)
{
    hessian_args *a = opts;
    if (!has_ext(arg, ".npy")) return "a .npy file";
    a->s.vectors = arg;
    return NULL;
}

static const char *parse_density(void *opts, const char *arg)
{
    hessian_args *a = opts;
    if (!has_ext(arg, ".csv")) return "a .csv file";
    a->s.density = arg;
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
    {CLI_INT, "k", "K", CLI_OFF(hessian_args, s.lanczos.k), 1, 1 << 30, 0, "eigenvalues wanted at each end", .given = 0},
    {CLI_CHOICE, "which", "END", CLI_OFF(hessian_args, which), .help =
     "both, largest or smallest (algebraic: negative eigenvalues are the smallest)", .choices = which_names},
    {CLI_DOUBLE, "tol", "X", CLI_OFF(hessian_args, s.lanczos.tol), 0, 1, CLI_LO_OPEN | CLI_HI_OPEN,
     "converged when the Ritz residual ||H y - lambda y|| <= X times the largest |eigenvalue|", .given = 0},
    {CLI_INT, "max-dim", "M", CLI_OFF(hessian_args, s.lanczos.max_dim), 1, 100000, 0,
     "largest Krylov dimension; memory is M x parameters doubles", .show = show_max_dim},
    {CLI_U64, "seed", "S", CLI_OFF(hessian_args, s.lanczos.seed), 0, 1.8e19, 0,
     "seed of the Lanczos start vector and the density's probes", .given = 0},
    {CLI_DOUBLE, "neg-tol", "X", CLI_OFF(hessian_args, s.neg_tol), 0, 1, CLI_HI_OPEN,
     "saddle index = number of eigenvalues below -X times the largest |eigenvalue|", .given = 0},
    {CLI_DOUBLE, "beta", "B", CLI_OFF(hessian_args, beta), 0, INFINITY, 0, "L2 strength of L_beta",
     .show = show_checkpoint},
    {CLI_STR, "anchor", "FILE", CLI_OFF(hessian_args, s.anchor), 0, 0, CLI_NO_DEFAULT,
     "anchor of L_beta, for its value and r (default: the origin; it does not change the Hessian)", .given = 0},
    {CLI_LONG, "subset", "N", CLI_OFF(hessian_args, s.subset), 1, 1e15, CLI_NO_DEFAULT,
     "use the first N training samples (default: all)", .given = 0},
    {CLI_STR, "act", "NAMES", CLI_OFF(hessian_args, s.act), 0, 0, CLI_NO_DEFAULT,
     "activations, for checkpoints without pathfinder metadata", .given = 0},
    {CLI_LONG, "block", "N", CLI_OFF(hessian_args, s.block), 1, 1 << 20, 0, "samples per sgemm block", .given = 0},
    {CLI_SECTION, .help = "Output:"},
    {CLI_CUSTOM, "out", "FILE", 0, 0, 0, CLI_NO_DEFAULT,
     "also write the results as FILE.json or FILE.csv (by extension)", .parse = parse_out},
    {CLI_CUSTOM, "vectors", "FILE.npy", 0, 0, 0, CLI_NO_DEFAULT,
     "also compute the eigenvectors (checked with one product each) and write them as float32 rows, "
     "in the order of the table", .parse = parse_vectors},
    {CLI_CUSTOM, "density", "FILE.csv", 0, 0, 0, CLI_NO_DEFAULT,
     "spectral density by stochastic Lanczos quadrature: columns lambda,density (Gaussian-broadened; "
     "integrates to ~1)", .parse = parse_density},
    {CLI_INT, "probes", "P", CLI_OFF(hessian_args, s.slq.n_probes), 1, 10000, 0, "density: random probe vectors", .given = 0},
    {CLI_INT, "density-steps", "M", CLI_OFF(hessian_args, s.slq.steps), 1, 100000, 0,
     "density: Lanczos steps per probe", .given = 0},
    {CLI_DOUBLE, "sigma", "X", CLI_OFF(hessian_args, s.sigma), 0, INFINITY, CLI_LO_OPEN,
     "density: Gaussian width", .show = show_auto},
    {CLI_LONG, "grid", "G", CLI_OFF(hessian_args, s.grid), 2, 1000000, 0, "density: grid points", .given = 0},
    {CLI_LONG, "time-hvp", "N", CLI_OFF(hessian_args, s.time_hvp), 1, 100000, CLI_NO_DEFAULT,
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

static int parse_args(int argc, char **argv, hessian_args *a, int *help, const char **model)
{
    const char *cmd = "hessian";
    memset(a, 0, sizeof *a);
    cli_common_default(&a->common);
    pf_spectrum_config_default(&a->s);
    a->which = (int)a->s.lanczos.which;
    a->beta = -1;
    int first;
    if (cli_parse(cmd, hessian_tables, argc, argv, a, help, &first)) return PF_EINPUT;
    if (*help) return PF_OK;
    cli_common_finish(&a->common);
    a->s.data = a->common.data;
    a->s.lanczos.which = (pf_eig_which)a->which;
    a->s.beta = a->beta < 0 ? NAN : a->beta;
    if (first != argc - 1) return cli_usage_error(cmd, "expected exactly one checkpoint file");
    *model = argv[first];
    return PF_OK;
}

int cmd_hessian(int argc, char **argv)
{
    hessian_args a;
    int help;
    const char *model = NULL;
    int rc = parse_args(argc, argv, &a, &help, &model);
    if (rc) return rc;
    if (help) {
        cli_print_help(stdout, hessian_usage, hessian_tables, &a, CLI_EXIT_HELP);
        return PF_OK;
    }
    cli_progress prog;
    cli_progress_init(&prog, "hessian", a.common.quiet);
    a.s.progress = cli_event;
    a.s.progress_ctx = &prog;
    pf_error err;
    pf_error_clear(&err);
    pf_ctx *ctx = NULL;
    pf_report report = {0};
    if (!(rc = pf_ctx_create(&ctx, a.common.threads, &err))) rc = pf_run_spectrum(ctx, model, &a.s, &report, &err);
    cli_progress_done(&prog);
    if (rc) cli_error("hessian", rc, "%s", err.msg);
    else cli_print_report(&report, a.common.json || a.s.time_hvp > 0);
    pf_report_free(&report);
    pf_ctx_free(ctx);
    return rc;
}

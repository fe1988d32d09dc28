/* Commands by name: each run call with its options given as the command
 * line spells them, from one table per command. The command line and the
 * Python package both go through here, so their options, checks, defaults
 * and help are the library's own.
 *
 * A command's options live in a struct of its own; its rows (options.h)
 * say how each is spelled, range-checked and stored, and what --help says
 * of it, with the default read from the struct after the library's
 * defaults are set. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "run/options.h"
#include "run/plan.h"
#include "run/report.h"
#include "pathfinder/run.h"

/* ---- options every command takes ---------------------------------------- */

typedef struct {
    pf_data_options data;
    int target;      /* OPT_CHOICE index into auto, class, regression */
    int threads;
    int quiet;
    int json;        /* one JSON document on stdout instead of the tables */
    int data_parallel;
} common_opts;

static void common_default(common_opts *c)
{
    memset(c, 0, sizeof *c);
    pf_data_options_default(&c->data);
    c->threads = 1;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (*s == '-') return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end) return -1;
    *out = (uint64_t)v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* --normalize auto | none | MEAN,STD */
static const char *parse_normalize(void *opts, const char *arg)
{
    common_opts *c = opts;
    if (strcmp(arg, "auto") == 0) {
        c->data.norm = PF_NORM_AUTO;
        return NULL;
    }
    if (strcmp(arg, "none") == 0) {
        c->data.norm = PF_NORM_NONE;
        return NULL;
    }
    char buf[128];
    snprintf(buf, sizeof buf, "%s", arg);
    char *comma = strchr(buf, ',');
    const char *need = "auto, none or MEAN,STD with STD > 0";
    if (!comma) return need;
    *comma = '\0';
    if (parse_double(buf, &c->data.mean) || parse_double(comma + 1, &c->data.std) ||
        !(c->data.std > 0))
        return need;
    c->data.norm = PF_NORM_FIXED;
    return NULL;
}

static void show_normalize(const void *opts, char *buf, size_t n)
{
    (void)opts;
    snprintf(buf, n, "auto: MNIST by the paper's mean %g and std %g, other images by their training "
             "set's, tables feature by feature", PF_MNIST_MEAN, PF_MNIST_STD);
}

static const char *const target_names[] = {"auto", "class", "regression", NULL};

static const pf_option data_rows[] = {
    {.kind = OPT_SECTION, .help = "Data:"},
    {OPT_STR, "data", "SPEC", OPT_OFF(common_opts, data.spec), .help =
     "mnist, fashion-mnist, or a folder with IDX files (train-images-idx3-ubyte[.gz] ...), "
     "train.csv/test.csv, or train_x.npy/train_y.npy/test_x.npy/test_y.npy"},
    {OPT_LONG, "train-subset", "N", OPT_OFF(common_opts, data.train_subset), 1, 1e15,
     OPT_NO_DEFAULT, "train on a fixed subset of N samples, drawn with --subset-seed (default: all)", .given = 0},
    {OPT_U64, "subset-seed", "S", OPT_OFF(common_opts, data.subset_seed), 0, 1.8e19, 0,
     "seed that draws the subset", .given = 0},
    {OPT_CUSTOM, "normalize", "MODE", 0, .help = "auto, none, or MEAN,STD", .parse = parse_normalize,
     .show = show_normalize},
    {OPT_CHOICE, "target", "KIND", OPT_OFF(common_opts, target), .help =
     "auto (integral single targets are class labels), class or regression", .choices = target_names},
    {OPT_INT, "targets", "K", OPT_OFF(common_opts, data.n_targets), 1, 1 << 20, OPT_NO_DEFAULT,
     "CSV: number of trailing target columns (default 1)", .given = 0},
    {.kind = OPT_END},
};

static const pf_option other_rows[] = {
    {.kind = OPT_SECTION, .help = "Other:"},
    {OPT_INT, "threads", "N", OPT_OFF(common_opts, threads), 1, PF_MAX_THREADS, 0,
     "size of pathfinder's thread team, which splits every minibatch and data pass; the same "
     "seed and thread count give the same output", .given = 0},
    {OPT_FLAG, "quiet", NULL, OPT_OFF(common_opts, quiet), .help = "no progress on stderr"},
    {OPT_FLAG, "json", NULL, OPT_OFF(common_opts, json), .help =
     "print the result as one JSON document on stdout instead of the tables"},
    {.kind = OPT_END},
};

/* Commands whose full-batch work splits by samples across the processes of
 * mpirun (core.h, pf_ctx_set_reducer). */
static const pf_option data_parallel_rows[] = {
    {OPT_FLAG, "data-parallel", NULL, OPT_OFF(common_opts, data_parallel), .help =
     "under mpirun, every process runs this one command on its own contiguous share of the samples "
     "and the full-batch sums are added up across them (an allreduce in double); the results agree "
     "with one process to ~1e-6 and are the same for the same number of processes; rank 0 writes "
     "and prints. Without mpirun it changes nothing"},
    {.kind = OPT_END},
};

static void common_finish(common_opts *c)
{
    static const pf_target_kind kinds[] = {PF_TARGET_AUTO, PF_TARGET_CLASS, PF_TARGET_REGRESSION};
    c->data.target = kinds[c->target];
}

/* ---- the model and the protocol --------------------------------------------- */

typedef struct {
    const char *arch, *act, *loss, *init, *anchor;
    int no_bias, keep_optimizer;
    uint64_t seed;
    int optimizer;                  /* pf_opt_kind */
    int input_layer;                /* pf_input_layer */
    double lr, momentum, min_delta, grad_tol;
    long batch, max_epochs, patience;
    int lr_given, max_epochs_given, grad_tol_given, seed_given, batch_given;
    int certify;                    /* check every point is a minimum */
    double certify_tol;             /* Lanczos' relative residual tolerance there */
    long max_escapes;
} model_opts;

static void model_default(model_opts *m)
{
    memset(m, 0, sizeof *m);
    pf_train_config c;
    pf_train_config_default(&c, PF_OPT_ADAM);
    m->act = "sigmoid";
    m->optimizer = c.opt.kind;
    m->lr = c.opt.lr;
    m->momentum = c.opt.momentum;
    m->batch = c.batch;
    m->max_epochs = c.max_epochs;
    m->patience = c.patience;
    m->min_delta = c.min_delta;
    m->grad_tol = c.grad_tol;
    m->certify_tol = c.certificate.lanczos.tol;
    m->max_escapes = c.certificate.max_escapes;
    m->input_layer = (int)c.input_layer;
}

static const char *const optimizer_names[] = {"adam", "sgd", "lbfgs", "newton", NULL};
/* --input-layer's names, in pf_input_layer order. */
static const char *const input_layer_names[] = {"auto", "sparse", "dense", NULL};

/* Defaults that depend on the optimizer, as the library sets them. */
static void show_lr(const void *opts, char *buf, size_t n)
{
    (void)opts;
    size_t len = 0;
    for (int k = 0; optimizer_names[k] && len < n; k++) {
        pf_train_config c;
        pf_train_config_default(&c, (pf_opt_kind)k);
        char v[32];
        pf_option_number(c.opt.lr, v, sizeof v);
        len += (size_t)snprintf(buf + len, n - len, "%s%s %s", k ? ", " : "", optimizer_names[k], v);
    }
}

static void show_max_epochs(const void *opts, char *buf, size_t n)
{
    (void)opts;
    pf_train_config c, l;
    pf_train_config_default(&c, PF_OPT_ADAM);
    pf_train_config_default(&l, PF_OPT_LBFGS);
    snprintf(buf, n, "%d; lbfgs, newton: iterations, %d", c.max_epochs, l.max_epochs);
}

static void show_grad_tol(const void *opts, char *buf, size_t n)
{
    (void)opts;
    pf_train_config l, w;
    pf_train_config_default(&l, PF_OPT_LBFGS);
    pf_train_config_default(&w, PF_OPT_NEWTON);
    snprintf(buf, n, "lbfgs %g, newton %g", l.grad_tol, w.grad_tol);
}

static void show_batch(const void *opts, char *buf, size_t n)
{
    (void)opts;
    pf_train_config c;
    pf_train_config_default(&c, PF_OPT_ADAM);
    snprintf(buf, n, "%d; newton: 0", c.batch);
}

static const pf_option model_rows[] = {
    {.kind = OPT_SECTION, .help = "Model:"},
    {OPT_STR, "arch", "SPEC", OPT_OFF(model_opts, arch), 0, 0, OPT_NO_DEFAULT,
     "layer sizes, e.g. 784,128,128,10 (default: INPUT,128,128,OUTPUT), or a convolutional "
     "model: CxHxW then convN:K[:S[:P]], maxpoolK, avgpoolK and fcN layers, e.g. "
     "1x28x28,conv8:3:1:1,maxpool2,conv16:3:1:1,maxpool2,fc32,fc10", .given = 0},
    {OPT_STR, "act", "NAMES", OPT_OFF(model_opts, act), .help =
     "sigmoid, tanh, relu or linear: one name for every hidden layer (the output stays linear), "
     "or one per layer"},
    {OPT_FLAG, "no-bias", NULL, OPT_OFF(model_opts, no_bias), .help = "layers without biases"},
    {OPT_STR, "loss", "ce|mse", OPT_OFF(model_opts, loss), 0, 0, OPT_NO_DEFAULT,
     "cross-entropy or mean squared error (default: ce for class labels, mse for real targets)", .given = 0},
    {OPT_STR, "init", "FILE", OPT_OFF(model_opts, init), 0, 0, OPT_NO_DEFAULT,
     "start from a checkpoint instead of a fresh PyTorch-style initialization", .given = 0},
    {OPT_U64, "seed", "S", OPT_OFF(model_opts, seed), 0, 1.8e19, 0,
     "seed of the initialization and the minibatch shuffling", .given = OPT_GIVEN(model_opts, seed_given)},
    {OPT_STR, "anchor", "FILE", OPT_OFF(model_opts, anchor), 0, 0, OPT_NO_DEFAULT,
     "anchor of the L2 term (default: the origin)", .given = 0},
    {.kind = OPT_END},
};

static const pf_option protocol_rows[] = {
    {.kind = OPT_SECTION, .help = "Protocol (the defaults are the paper's):"},
    {OPT_CHOICE, "optimizer", "NAME", OPT_OFF(model_opts, optimizer), .help =
     "adam, sgd (with momentum), lbfgs (full batch, deterministic) or newton (full-batch "
     "trust-region Newton-CG on exact Hessian-vector products, deterministic; follows negative "
     "curvature instead of stopping at saddles)", .choices = optimizer_names},
    {OPT_DOUBLE, "lr", "X", OPT_OFF(model_opts, lr), 0, INFINITY, OPT_LO_OPEN,
     "learning rate (L-BFGS: initial step; Newton: initial trust radius)", .show = show_lr,
     .given = OPT_GIVEN(model_opts, lr_given)},
    {OPT_DOUBLE, "momentum", "X", OPT_OFF(model_opts, momentum), 0, 1, OPT_HI_OPEN, "SGD momentum", .given = 0},
    {OPT_LONG, "batch", "N", OPT_OFF(model_opts, batch), 0, 1 << 24, 0, "minibatch size (0: full batch)",
     .show = show_batch, .given = OPT_GIVEN(model_opts, batch_given)},
    {OPT_LONG, "max-epochs", "N", OPT_OFF(model_opts, max_epochs), 1, 1 << 24, 0,
     "at most N epochs per beta", .show = show_max_epochs,
     .given = OPT_GIVEN(model_opts, max_epochs_given)},
    {OPT_LONG, "patience", "N", OPT_OFF(model_opts, patience), 1, 1 << 24, 0,
     "stop after N epochs without a lower epoch-mean training loss", .given = 0},
    {OPT_DOUBLE, "min-delta", "X", OPT_OFF(model_opts, min_delta), 0, INFINITY, 0,
     "an improvement must beat the best epoch by more than X", .given = 0},
    {OPT_FLAG, "keep-optimizer", NULL, OPT_OFF(model_opts, keep_optimizer), .help =
     "keep the optimizer's state from one beta to the next (default: a new optimizer per beta)"},
    {OPT_DOUBLE, "grad-tol", "X", OPT_OFF(model_opts, grad_tol), 0, INFINITY, OPT_LO_OPEN,
     "lbfgs, newton: stop when max |gradient of L_beta| < X; a certified point is held to it",
     .show = show_grad_tol, .given = OPT_GIVEN(model_opts, grad_tol_given)},
    {.kind = OPT_SECTION, .help = "Certified minima:"},
    {OPT_FLAG, "certify", NULL, OPT_OFF(model_opts, certify), .help =
     "check that every trained point is a minimum of L_beta on all training samples: max "
     "|gradient| <= --grad-tol and lambda_min(H_L) >= -eps by Lanczos (warm-started from the "
     "previous point's lowest mode), eps = 10 x --certify-tol x max|lambda|; a point with "
     "lambda_min < -eps is left along its eigenvector and trained again (--max-escapes), one that "
     "still fails is marked certified 0. Adds grad_norm, lambda_min/max_E/L and certified to the "
     "tables"},
    {OPT_DOUBLE, "certify-tol", "X", OPT_OFF(model_opts, certify_tol), 0, 1, OPT_LO_OPEN | OPT_HI_OPEN,
     "Lanczos' relative residual tolerance of the certificate", .given = 0},
    {OPT_LONG, "max-escapes", "N", OPT_OFF(model_opts, max_escapes), 0, 100, 0,
     "escapes along negative curvature per point before it is marked", .given = 0},
    {OPT_CHOICE, "input-layer", "MODE", OPT_OFF(model_opts, input_layer), .help =
     "auto, sparse or dense: run the input layer on the inputs' entries off their per-feature "
     "background (image background) or as a dense product; auto takes sparse when at most 30% of "
     "the training set's entries differ from it (results agree to float rounding)",
     .choices = input_layer_names},
    {.kind = OPT_END},
};

static void model_protocol(const model_opts *m, pf_train_config *cfg)
{
    pf_train_config_default(cfg, (pf_opt_kind)m->optimizer);
    if (m->lr_given) cfg->opt.lr = m->lr;
    cfg->opt.momentum = m->momentum;
    if (m->grad_tol_given) cfg->grad_tol = m->grad_tol;
    if (m->batch_given || m->optimizer != PF_OPT_NEWTON) cfg->batch = (int)m->batch;
    cfg->certify = m->certify;
    cfg->certificate.lanczos.tol = m->certify_tol;
    cfg->certificate.max_escapes = (int)m->max_escapes;
    if (m->max_epochs_given) cfg->max_epochs = (int)m->max_epochs;
    cfg->patience = (int)m->patience;
    cfg->min_delta = m->min_delta;
    cfg->reset_optimizer = !m->keep_optimizer;
    cfg->input_layer = (pf_input_layer)m->input_layer;
}

static void model_spec(const model_opts *m, pf_model_spec *spec)
{
    pf_model_spec_default(spec);
    spec->arch = m->arch;
    if (m->act) spec->act = m->act;
    spec->no_bias = m->no_bias;
    spec->loss = m->loss;
    spec->init = m->init;
    spec->anchor = m->anchor;
    spec->seed = m->seed;
}

/* ---- analysis options ------------------------------------------------------- */

static const pf_option detect_rows[] = {
    {.kind = OPT_SECTION, .help = "Transitions:"},
    {OPT_INT, "window", "N", OPT_OFF(pf_analysis_config, detect.window), 2, 1000, 0,
     "points on each side for the local trends", .given = 0},
    {OPT_DOUBLE, "threshold", "X", OPT_OFF(pf_analysis_config, detect.threshold), 0, INFINITY, OPT_LO_OPEN,
     "jump of log r over the local noise needed for a transition", .given = 0},
    {OPT_DOUBLE, "min-jump", "X", OPT_OFF(pf_analysis_config, detect.min_rel_jump), 0, INFINITY, 0,
     "smallest relative drop of r that counts", .given = 0},
    {OPT_DOUBLE, "gap-factor", "X", OPT_OFF(pf_analysis_config, detect.gap_factor), 0, INFINITY, 0,
     "a grid step this many times wider than its neighbours' (in beta and in log beta) is a phase "
     "boundary, not a transition (0: never)", .given = 0},
    {OPT_DOUBLE, "encoded-threshold", "P", OPT_OFF(pf_analysis_config, encoding.threshold), 0, 100, 0,
     "a class is encoded on a plateau when its mean test accuracy there is above P percent...", .given = 0},
    {OPT_DOUBLE, "encoded-fraction", "F", OPT_OFF(pf_analysis_config, encoding.fraction), 0, 1, 0,
     "...and it is above P on at least F of the plateau's points (0: the mean alone); classes above "
     "P on a quarter of the points or more but not encoded are partial", .given = 0},
    {.kind = OPT_END},
};

static const pf_option refine_rows[] = {
    {OPT_DOUBLE, "refine-tol", "X", OPT_OFF(pf_analysis_config, refine_tol), 0, INFINITY, OPT_LO_OPEN,
     "bisect each transition in beta down to an interval of X", .given = 0},
    {.kind = OPT_END},
};

static const pf_option no_refine_rows[] = {
    {OPT_FLAG, "no-refine", NULL, 0, .help = "detect transitions but do not bisect them"},
    {.kind = OPT_END},
};

#define EXIT_HELP "\nExit status: 0 success, 1 runtime failure, 2 bad usage or bad input.\n"

/* What a command gets from its caller besides its options. */
typedef struct {
    pf_event_fn progress;
    void *progress_ctx;
    pf_figures_fn figures;
    const pf_dataset *train_arrays, *test_arrays;
    /* --data-parallel: the sum over the processes and this one's place */
    pf_reduce_fn reduce;
    void *reduce_user;
    int rank, ranks;
} hooks;

/* A command's plan (its tasks), made and run here one task after another. */
typedef int (*plan_fn)(void *opts, char **args, int n_args, const hooks *h, pf_plan **plan, pf_error *err);

static int run_as_plan(plan_fn make, void *o, char **args, int n_args, const hooks *h, pf_report *out,
                       pf_error *err)
{
    pf_plan *plan = NULL;
    int rc = make(o, args, n_args, h, &plan, err);
    if (!rc) rc = pf_plan_run_all(plan, out, err);
    pf_plan_free(plan);
    return rc;
}

/* A context of the command's threads for its run. */
static int with_ctx(int threads, pf_ctx **ctx, pf_error *err) { return pf_ctx_create(ctx, threads, err); }

/* The same, one of the processes of a data-parallel run when --data-parallel
 * was given and the caller handed over a reducer. */
static int with_data_ctx(const common_opts *c, const hooks *h, pf_ctx **ctx, pf_error *err)
{
    int rc = pf_ctx_create(ctx, c->threads, err);
    if (!rc && c->data_parallel && h->reduce)
        rc = pf_ctx_set_reducer(*ctx, h->reduce, h->reduce_user, h->rank, h->ranks, err);
    if (rc) {
        pf_ctx_free(*ctx);
        *ctx = NULL;
    }
    return rc;
}

/* ---- train ----------------------------------------------------------------- */

static const char *const train_usage =
    "Usage: pathfinder train [OPTIONS] --out FILE.safetensors\n"
    "Train an MLP at one L2 strength beta and write it as a safetensors checkpoint.\n"
    "Prints one JSON line with the final train/test metrics.\n\n";

enum { MAX_SEEDS = 100000 };

typedef struct {
    common_opts common;
    model_opts model;
    const char *out, *seeds_spec;
    double beta;
    uint64_t *seeds;     /* --seeds, or NULL */
    long n_seeds;
} train_args;

static const pf_option train_rows[] = {
    {.kind = OPT_SECTION, .help = "Training:"},
    {OPT_DOUBLE, "beta", "B", OPT_OFF(train_args, beta), 0, INFINITY, 0,
     "L2 strength: adds (B/2)||theta - anchor||^2", .given = 0},
    {OPT_STR, "out", "FILE", OPT_OFF(train_args, out), 0, 0, OPT_REQUIRED, "checkpoint to write", .given = 0},
    {OPT_STR, "seeds", "SPEC", OPT_OFF(train_args, seeds_spec), 0, 0, OPT_NO_DEFAULT,
     "train one model per seed, a range 0-4 or a list 0,1,2; --out must contain {seed} (e.g. "
     "minima/seed{seed}.safetensors); a seed whose file exists is skipped; one JSON line per seed", .given = 0},
    {.kind = OPT_END},
};

static const pf_option_table train_tables[] = {
    {train_rows, 0},
    {model_rows, OPT_OFF(train_args, model)},
    {protocol_rows, OPT_OFF(train_args, model)},
    {data_rows, OPT_OFF(train_args, common)},
    {data_parallel_rows, OPT_OFF(train_args, common)},
    {other_rows, OPT_OFF(train_args, common)},
    {NULL, 0},
};

/* "0-4" (inclusive) or "0,1,2" (or one seed) into an allocated array. */
static int parse_seeds(const char *spec, uint64_t **out, long *n)
{
    *out = NULL;
    *n = 0;
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", spec) >= (int)sizeof buf) return -1;
    char *dash = strchr(buf, '-');
    if (dash && !strchr(buf, ',')) {
        uint64_t lo, hi;
        *dash = '\0';
        if (parse_u64(buf, &lo) || parse_u64(dash + 1, &hi) || hi < lo || hi - lo >= MAX_SEEDS)
            return -1;
        *out = malloc((size_t)(hi - lo + 1) * sizeof **out);
        if (!*out) return -1;
        for (uint64_t s = lo; s <= hi; s++) (*out)[(*n)++] = s;
        return 0;
    }
    long cap = 1;
    for (const char *p = buf; *p; p++) cap += *p == ',';
    if (cap > MAX_SEEDS) return -1;
    *out = malloc((size_t)cap * sizeof **out);
    if (!*out) return -1;
    for (char *p = buf, *end;; p = end + 1) {
        end = strchr(p, ',');
        if (end) *end = '\0';
        uint64_t s;
        int dup = 0;
        if (parse_u64(p, &s)) {
            free(*out);
            *out = NULL;
            *n = 0;
            return -1;
        }
        for (long k = 0; k < *n; k++) dup |= (*out)[k] == s;
        if (!dup) (*out)[(*n)++] = s;
        if (!end) break;
    }
    return 0;
}

static void train_defaults(void *o)
{
    train_args *a = o;
    memset(a, 0, sizeof *a);
    common_default(&a->common);
    model_default(&a->model);
}

static int train_run(void *o, char **args, int n_args, const hooks *h, pf_report *out, pf_error *err)
{
    train_args *a = o;
    if (n_args > 0) return pf_fail(err, PF_EINPUT, "unexpected argument '%s'", args[0]);
    if (!a->out) return pf_fail(err, PF_EINPUT, "--out FILE.safetensors is required");
    if (a->seeds_spec && (parse_seeds(a->seeds_spec, &a->seeds, &a->n_seeds) || a->n_seeds == 0))
        return pf_fail(err, PF_EINPUT, "--seeds takes a range like 0-4 or a list like 0,1,2, got '%s'",
                       a->seeds_spec);
    if (a->seeds && a->model.seed_given) return pf_fail(err, PF_EINPUT, "give either --seed or --seeds, not both");
    pf_train_run_config c;
    pf_train_run_config_default(&c);
    c.data = a->common.data;
    model_spec(&a->model, &c.model);
    model_protocol(&a->model, &c.protocol);
    c.beta = a->beta;
    c.progress = h->progress;
    c.progress_ctx = h->progress_ctx;
    pf_ctx *ctx = NULL;
    int rc = with_data_ctx(&a->common, h, &ctx, err);
    if (!rc) rc = pf_run_train(ctx, a->out, a->seeds, a->n_seeds, &c, out, err);
    pf_ctx_free(ctx);
    free(a->seeds);
    a->seeds = NULL;
    return rc;
}

/* ---- eval ------------------------------------------------------------------- */

static const char *const eval_usage =
    "Usage: pathfinder eval [OPTIONS] FILE.safetensors\n"
    "Evaluate a checkpoint: train and test loss, accuracy, per-class accuracy, r and L_beta.\n"
    "Prints one JSON line.\n\n";

typedef struct {
    common_opts common;
    double beta;      /* < 0: the checkpoint's */
    const char *anchor, *act;
    int input_layer;  /* pf_input_layer */
} eval_args;

static void show_checkpoint(const void *opts, char *buf, size_t n)
{
    (void)opts;
    snprintf(buf, n, "the checkpoint's");
}

static const pf_option eval_rows[] = {
    {.kind = OPT_SECTION, .help = "Evaluation:"},
    {OPT_DOUBLE, "beta", "B", OPT_OFF(eval_args, beta), 0, INFINITY, 0,
     "L2 strength for the regularized loss", .show = show_checkpoint},
    {OPT_STR, "anchor", "FILE", OPT_OFF(eval_args, anchor), 0, 0, OPT_NO_DEFAULT,
     "anchor for r and L_beta (default: the origin)", .given = 0},
    {OPT_STR, "act", "NAMES", OPT_OFF(eval_args, act), 0, 0, OPT_NO_DEFAULT,
     "activations, for checkpoints without pathfinder metadata", .given = 0},
    {OPT_CHOICE, "input-layer", "MODE", OPT_OFF(eval_args, input_layer), .help =
     "auto, sparse or dense input layer (see train --help)", .choices = input_layer_names},
    {.kind = OPT_END},
};

static const pf_option_table eval_tables[] = {
    {eval_rows, 0},
    {data_rows, OPT_OFF(eval_args, common)},
    {data_parallel_rows, OPT_OFF(eval_args, common)},
    {other_rows, OPT_OFF(eval_args, common)},
    {NULL, 0},
};

static void eval_defaults(void *o)
{
    eval_args *a = o;
    memset(a, 0, sizeof *a);
    common_default(&a->common);
    a->beta = -1;
}

static int eval_run(void *o, char **args, int n_args, const hooks *h, pf_report *out, pf_error *err)
{
    eval_args *a = o;
    if (n_args != 1) return pf_fail(err, PF_EINPUT, "expected exactly one checkpoint file");
    pf_ctx *ctx = NULL;
    int rc = with_data_ctx(&a->common, h, &ctx, err);
    if (!rc)
        rc = pf_run_eval(ctx, args[0], &a->common.data, a->beta < 0 ? NAN : a->beta, a->anchor, a->act,
                         (pf_input_layer)a->input_layer, out, err);
    pf_ctx_free(ctx);
    return rc;
}

/* ---- saddle -------------------------------------------------------------------- */

static const char *const saddle_usage =
    "Usage: pathfinder saddle [OPTIONS] --out SADDLE.safetensors FILE.safetensors\n"
    "       pathfinder saddle [OPTIONS] --series GRID --out DIR FILE.safetensors\n"
    "The index-1 saddle of L_beta next to the minimum near a model (a transition's\n"
    "T<k>_below.safetensors, or any model and --beta): Newton-CG to the minimum, then\n"
    "minimum-mode following (Newton steps on the landscape reflected along the lowest mode\n"
    "of H_L, found by Lanczos at every step) to the saddle, both to --grad-tol; its index is\n"
    "counted by Lanczos. Writes the saddle as a checkpoint and prints a summary (one JSON\n"
    "line with --json): L_beta at the minimum and the saddle, the barrier, the index, the\n"
    "test accuracy and encoded classes. With --series, the minimum is followed from the\n"
    "model's beta to each beta of GRID in turn (nearest first), the saddle found at each\n"
    "(DIR/saddle_<k>.safetensors), and the barrier and lambda_min(H_L) at the minimum fitted\n"
    "with a (beta_c - beta)^gamma (the fold: 3/2 and 1/2); the whole report also goes to\n"
    "DIR/saddles.json.\n\n";

typedef struct {
    common_opts common;
    pf_saddle_run_config s;
    double beta;      /* < 0: the checkpoint's */
    const char *out;
    const char *series;
} saddle_args;

static const pf_option saddle_rows[] = {
    {.kind = OPT_SECTION, .help = "Saddle:"},
    {OPT_STR, "out", "FILE", OPT_OFF(saddle_args, out), 0, 0, OPT_NO_DEFAULT,
     "write the saddle here (.safetensors) (required)", .given = 0},
    {OPT_DOUBLE, "beta", "B", OPT_OFF(saddle_args, beta), 0, INFINITY, 0, "L2 strength of L_beta",
     .show = show_checkpoint},
    {OPT_STR, "anchor", "FILE", OPT_OFF(saddle_args, s.anchor), 0, 0, OPT_NO_DEFAULT,
     "anchor of L_beta (default: the origin)", .given = 0},
    {OPT_DOUBLE, "grad-tol", "X", OPT_OFF(saddle_args, s.grad_tol), 0, INFINITY, OPT_LO_OPEN,
     "stop when max |gradient of L_beta| < X, at the minimum and at the saddle", .given = 0},
    {OPT_INT, "max-iter", "N", OPT_OFF(saddle_args, s.max_iter), 1, 100000, 0,
     "iterations of the saddle search", .given = 0},
    {OPT_STR, "series", "GRID", OPT_OFF(saddle_args, series), 0, 0, OPT_NO_DEFAULT,
     "a quasi-static series of betas (a sweep's GRID syntax); --out is then a folder", .given = 0},
    {OPT_INT, "side", "S", OPT_OFF(saddle_args, s.direction), -1, 1, 0,
     "+1 or -1: climb along or against the soft mode; 0: the side the fold's normal form gives",
     .given = 0},
    {.kind = OPT_END},
};

static const pf_option_table saddle_tables[] = {
    {saddle_rows, 0},
    {data_rows, OPT_OFF(saddle_args, common)},
    {other_rows, OPT_OFF(saddle_args, common)},
    {NULL, 0},
};

static void saddle_defaults(void *o)
{
    saddle_args *a = o;
    memset(a, 0, sizeof *a);
    common_default(&a->common);
    pf_saddle_run_config_default(&a->s);
    a->beta = -1;
}

static int saddle_run(void *o, char **args, int n_args, const hooks *h, pf_report *out, pf_error *err)
{
    saddle_args *a = o;
    if (n_args != 1) return pf_fail(err, PF_EINPUT, "expected exactly one checkpoint file");
    if (!a->out) return pf_fail(err, PF_EINPUT, "--out %s is required", a->series ? "DIR" : "FILE.safetensors");
    a->s.data = a->common.data;
    a->s.beta = a->beta < 0 ? NAN : a->beta;
    a->s.progress = h->progress;
    a->s.progress_ctx = h->progress_ctx;
    double *betas = NULL;
    long n = 0;
    if (a->series) {
        pf_error e;
        if (pf_grid_parse(a->series, &betas, &n, &e)) return pf_fail(err, PF_EINPUT, "--series: %s", e.msg);
        a->s.series = betas, a->s.n_series = n;
    }
    pf_ctx *ctx = NULL;
    int rc = with_ctx(a->common.threads, &ctx, err);
    if (!rc) rc = pf_run_saddle(ctx, args[0], a->out, &a->s, out, err);
    pf_ctx_free(ctx);
    free(betas);
    a->s.series = NULL, a->s.n_series = 0;
    return rc;
}

/* ---- hessian ------------------------------------------------------------------- */

static const char *const hessian_usage =
    "Usage: pathfinder hessian [OPTIONS] FILE.safetensors\n"
    "       pathfinder hessian [OPTIONS] --out DIR FILE.safetensors FILE.safetensors...\n"
    "Extreme eigenvalues of the Hessian of the training error E at a checkpoint, and of\n"
    "L_beta = E + (beta/2)||theta - anchor||^2 (the same shifted by beta), by Lanczos with\n"
    "full reorthogonalization on exact Hessian-vector products (Pearlmutter's R-operator).\n"
    "Prints a table (or one JSON line with --json). With several checkpoints, one task each\n"
    "(shared out among the processes of mpirun), their results in DIR and one table of all.\n\n";

typedef struct {
    common_opts common;
    pf_spectrum_config s;
    int which;            /* index into which_names */
    double beta;          /* < 0: the checkpoint's */
} hessian_args;

static const char *const which_names[] = {"largest", "smallest", "both", NULL};

static const char *parse_out(void *opts, const char *arg)
{
    hessian_args *a = opts;
    if (!*arg) return "a .json or .csv file, or a folder";
    a->s.out = arg;
    return NULL;
}

static const char *parse_vectors(void *opts, const char *arg)
{
    hessian_args *a = opts;
    if (!pf_has_ext(arg, ".npy")) return "a .npy file";
    a->s.vectors = arg;
    return NULL;
}

static const char *parse_density(void *opts, const char *arg)
{
    hessian_args *a = opts;
    if (!pf_has_ext(arg, ".csv")) return "a .csv file";
    a->s.density = arg;
    return NULL;
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

static const pf_option hessian_rows[] = {
    {.kind = OPT_SECTION, .help = "Spectrum:"},
    {OPT_INT, "k", "K", OPT_OFF(hessian_args, s.lanczos.k), 1, 1 << 30, 0, "eigenvalues wanted at each end", .given = 0},
    {OPT_CHOICE, "which", "END", OPT_OFF(hessian_args, which), .help =
     "both, largest or smallest (algebraic: negative eigenvalues are the smallest)", .choices = which_names},
    {OPT_DOUBLE, "tol", "X", OPT_OFF(hessian_args, s.lanczos.tol), 0, 1, OPT_LO_OPEN | OPT_HI_OPEN,
     "converged when the Ritz residual ||H y - lambda y|| <= X times the largest |eigenvalue|", .given = 0},
    {OPT_INT, "max-dim", "M", OPT_OFF(hessian_args, s.lanczos.max_dim), 1, 100000, 0,
     "largest Krylov dimension; memory is M x parameters doubles", .show = show_max_dim},
    {OPT_U64, "seed", "S", OPT_OFF(hessian_args, s.lanczos.seed), 0, 1.8e19, 0,
     "seed of the Lanczos start vector and the density's probes", .given = 0},
    {OPT_DOUBLE, "neg-tol", "X", OPT_OFF(hessian_args, s.neg_tol), 0, 1, OPT_HI_OPEN,
     "saddle index = number of eigenvalues below -X times the largest |eigenvalue|", .given = 0},
    {OPT_DOUBLE, "beta", "B", OPT_OFF(hessian_args, beta), 0, INFINITY, 0, "L2 strength of L_beta",
     .show = show_checkpoint},
    {OPT_STR, "anchor", "FILE", OPT_OFF(hessian_args, s.anchor), 0, 0, OPT_NO_DEFAULT,
     "anchor of L_beta, for its value and r (default: the origin; it does not change the Hessian)", .given = 0},
    {OPT_LONG, "subset", "N", OPT_OFF(hessian_args, s.subset), 1, 1e15, OPT_NO_DEFAULT,
     "use the first N training samples (default: all)", .given = 0},
    {OPT_STR, "act", "NAMES", OPT_OFF(hessian_args, s.act), 0, 0, OPT_NO_DEFAULT,
     "activations, for checkpoints without pathfinder metadata", .given = 0},
    {OPT_LONG, "block", "N", OPT_OFF(hessian_args, s.block), 1, 1 << 20, 0, "samples per sgemm block", .given = 0},
    {.kind = OPT_SECTION, .help = "Output:"},
    {OPT_CUSTOM, "out", "FILE", 0, 0, 0, OPT_NO_DEFAULT,
     "also write the results as FILE.json or FILE.csv (by extension); with several checkpoints the "
     "folder of their results (required): FILE/model_<i>.json each and FILE/spectra.csv",
     .parse = parse_out},
    {OPT_CUSTOM, "vectors", "FILE.npy", 0, 0, 0, OPT_NO_DEFAULT,
     "also compute the eigenvectors (checked with one product each) and write them as float32 rows, "
     "in the order of the table", .parse = parse_vectors},
    {OPT_CUSTOM, "density", "FILE.csv", 0, 0, 0, OPT_NO_DEFAULT,
     "spectral density by stochastic Lanczos quadrature: columns lambda,density (Gaussian-broadened; "
     "integrates to ~1)", .parse = parse_density},
    {OPT_INT, "probes", "P", OPT_OFF(hessian_args, s.slq.n_probes), 1, 10000, 0, "density: random probe vectors", .given = 0},
    {OPT_INT, "density-steps", "M", OPT_OFF(hessian_args, s.slq.steps), 1, 100000, 0,
     "density: Lanczos steps per probe", .given = 0},
    {OPT_DOUBLE, "sigma", "X", OPT_OFF(hessian_args, s.sigma), 0, INFINITY, OPT_LO_OPEN,
     "density: Gaussian width", .show = show_auto},
    {OPT_LONG, "grid", "G", OPT_OFF(hessian_args, s.grid), 2, 1000000, 0, "density: grid points", .given = 0},
    {OPT_LONG, "time-hvp", "N", OPT_OFF(hessian_args, s.time_hvp), 1, 100000, OPT_NO_DEFAULT,
     "only time H.v at v = theta/||theta||: N one-shot products (from scratch) and N products of a "
     "reused operator (as Lanczos runs them, after its first); prints one JSON line with the best "
     "times, v.Hv and ||Hv||", .given = 0},
    {.kind = OPT_END},
};

static const pf_option_table hessian_tables[] = {
    {hessian_rows, 0},
    {data_rows, OPT_OFF(hessian_args, common)},
    {data_parallel_rows, OPT_OFF(hessian_args, common)},
    {other_rows, OPT_OFF(hessian_args, common)},
    {NULL, 0},
};

static void hessian_defaults(void *o)
{
    hessian_args *a = o;
    memset(a, 0, sizeof *a);
    common_default(&a->common);
    pf_spectrum_config_default(&a->s);
    a->which = (int)a->s.lanczos.which;
    a->beta = -1;
}

static void hessian_setup(hessian_args *a, const hooks *h)
{
    a->s.data = a->common.data;
    a->s.lanczos.which = (pf_eig_which)a->which;
    a->s.beta = a->beta < 0 ? NAN : a->beta;
    a->s.progress = h->progress;
    a->s.progress_ctx = h->progress_ctx;
}

/* Several checkpoints: one task each (spectrum.c); one: no plan (NULL). */
static int hessian_plan_of(void *o, char **args, int n_args, const hooks *h, pf_plan **plan, pf_error *err)
{
    hessian_args *a = o;
    *plan = NULL;
    if (n_args < 1) return pf_fail(err, PF_EINPUT, "expected a checkpoint file (or several)");
    if (n_args == 1) return PF_OK;
    if (a->common.data_parallel)
        return pf_fail(err, PF_EINPUT, "--data-parallel takes one checkpoint (several are shared out "
                       "among the processes without it)");
    hessian_setup(a, h);
    return pf_spectra_plan(a->s.out, (const char *const *)args, n_args, &a->s, a->common.threads, plan, err);
}

static int hessian_run(void *o, char **args, int n_args, const hooks *h, pf_report *out, pf_error *err)
{
    hessian_args *a = o;
    if (n_args > 1) return run_as_plan(hessian_plan_of, o, args, n_args, h, out, err);
    if (n_args != 1) return pf_fail(err, PF_EINPUT, "expected a checkpoint file (or several)");
    if (a->s.out && !pf_has_ext(a->s.out, ".json") && !pf_has_ext(a->s.out, ".csv"))
        return pf_fail(err, PF_EINPUT, "--out %s: one checkpoint's results go to a .json or .csv file", a->s.out);
    hessian_setup(a, h);
    pf_ctx *ctx = NULL;
    int rc = with_data_ctx(&a->common, h, &ctx, err);
    if (!rc) rc = pf_run_spectrum(ctx, args[0], &a->s, out, err);
    pf_ctx_free(ctx);
    return rc;
}

/* ---- sweep ----------------------------------------------------------------------- */

static const char *const sweep_usage =
    "Usage: pathfinder sweep [OPTIONS] --out DIR\n"
    "Quasi-static L2 sweep: train at each beta of a grid, warm-started from the previous one,\n"
    "then detect, refine and explain the phase transitions. Rerunning the same command resumes\n"
    "a sweep that was stopped, bit for bit.\n\n";

static const char *const sweep_tail =
    "\nOutputs in DIR: sweep.csv, config.json, transitions.json, phases.json, figures/,\n"
    "checkpoints/, transitions/T<k>_below|above.safetensors (refined saddle anchors).\n" EXIT_HELP;

typedef struct {
    common_opts common;
    model_opts model;
    const char *grid, *out, *seeds_spec;
    int direction;   /* index into directions */
    pf_analysis_config post;
    int no_refine;
    long hessian;    /* -1: off; else samples (0: all) */
    int argc;        /* the command line, for config.json */
    char *const *argv;
} sweep_args;

static const char *const directions[] = {"up", "down", "loop", NULL};

static void show_hessian(const void *opts, char *buf, size_t n)
{
    (void)opts;
    snprintf(buf, n, "off");
}

static const pf_option sweep_rows[] = {
    {.kind = OPT_SECTION, .help = "Sweep:"},
    {OPT_STR, "beta", "GRID", OPT_OFF(sweep_args, grid), .help =
     "a list of values and ranges, each a number, START:STOP:STEP or geom:START:STOP:N, e.g. "
     "0,0.02:0.09:0.0005; the default is the paper's 451 points"},
    {OPT_CHOICE, "direction", "DIR", OPT_OFF(sweep_args, direction), .help =
     "up, down, or loop (up, then back down: hysteresis)", .choices = directions},
    {OPT_STR, "out", "DIR", OPT_OFF(sweep_args, out), 0, 0, OPT_REQUIRED,
     "run folder, made if missing; rerunning the same command resumes it", .given = 0},
    {OPT_STR, "seeds", "SPEC", OPT_OFF(sweep_args, seeds_spec), 0, 0, OPT_NO_DEFAULT,
     "one sweep per seed (a range like 0-3 or a list like 0,3,7) into DIR/seed<S>/, then their "
     "merged hierarchy in DIR (phases.json, figures/); under mpirun the seeds, and every sweep's "
     "transitions, are shared out among the processes", .given = 0},
    {OPT_LONG, "save-every", "N", OPT_OFF(sweep_args, post.save_every), 0, 1e15, 0,
     "keep the checkpoint of every N-th point (0: only those beside transitions and the last)", .given = 0},
    {OPT_FLAG, "keep-checkpoints", NULL, OPT_OFF(sweep_args, post.keep_checkpoints), .help =
     "keep every point's checkpoint"},
    {.kind = OPT_SECTION, .help = "Hessian:"},
    {OPT_LONG, "hessian", "N", OPT_OFF(sweep_args, hessian), 0, 1e15, 0,
     "at every point record lambda_min and lambda_max of the Hessian of E (and of L_beta = E + "
     "beta I) in sweep.csv, by Lanczos on the first N training samples (0: all); about 10-40 "
     "products per point", .show = show_hessian},
    {.kind = OPT_END},
};

static const pf_option_table sweep_tables[] = {
    {sweep_rows, 0},
    {detect_rows, OPT_OFF(sweep_args, post)},
    {refine_rows, OPT_OFF(sweep_args, post)},
    {no_refine_rows, OPT_OFF(sweep_args, no_refine)},
    {model_rows, OPT_OFF(sweep_args, model)},
    {protocol_rows, OPT_OFF(sweep_args, model)},
    {data_rows, OPT_OFF(sweep_args, common)},
    {other_rows, OPT_OFF(sweep_args, common)},
    {NULL, 0},
};

static void sweep_defaults(void *o)
{
    sweep_args *a = o;
    memset(a, 0, sizeof *a);
    common_default(&a->common);
    model_default(&a->model);
    pf_analysis_config_default(&a->post);
    a->grid = PF_PAPER_GRID;
    a->hessian = -1;
}

/* The sweep the options describe (and its seeds, allocated, or NULL). */
static int sweep_setup(sweep_args *a, char **args, int n_args, const hooks *h, pf_sweep_config *cp,
                       uint64_t **seeds, long *n_seeds, pf_error *err)
{
    *seeds = NULL;
    *n_seeds = 0;
    if (n_args > 0) return pf_fail(err, PF_EINPUT, "unexpected argument '%s'", args[0]);
    if (!a->out) return pf_fail(err, PF_EINPUT, "--out DIR is required");
    if (a->seeds_spec && (parse_seeds(a->seeds_spec, seeds, n_seeds) || *n_seeds == 0))
        return pf_fail(err, PF_EINPUT, "--seeds takes a range like 0-4 or a list like 0,1,2, got '%s'",
                       a->seeds_spec);
    if (*seeds && a->model.seed_given) {
        free(*seeds);
        *seeds = NULL;
        return pf_fail(err, PF_EINPUT, "give either --seed or --seeds, not both");
    }
    if (a->no_refine) a->post.refine = 0;
    pf_sweep_config c;
    pf_sweep_config_default(&c);
    c.data = a->common.data;
    model_spec(&a->model, &c.model);
    model_protocol(&a->model, &c.protocol);
    c.grid = a->grid;
    c.direction = directions[a->direction];
    c.hessian_samples = a->hessian;
    c.analysis = a->post;
    c.argc = a->argc;
    c.argv = a->argv;
    c.progress = h->progress;
    c.progress_ctx = h->progress_ctx;
    c.figures = h->figures;
    *cp = c;
    return PF_OK;
}

static int sweep_plan_of(void *o, char **args, int n_args, const hooks *h, pf_plan **plan, pf_error *err)
{
    sweep_args *a = o;
    pf_sweep_config c;
    uint64_t *seeds;
    long n_seeds;
    int rc = sweep_setup(a, args, n_args, h, &c, &seeds, &n_seeds, err);
    if (!rc) rc = pf_sweep_plan(&c, a->out, seeds, n_seeds, a->common.threads, plan, err);
    free(seeds);
    return rc;
}

static int sweep_run(void *o, char **args, int n_args, const hooks *h, pf_report *out, pf_error *err)
{
    sweep_args *a = o;
    /* several sweeps: their plan, one task after another */
    if (a->seeds_spec) return run_as_plan(sweep_plan_of, o, args, n_args, h, out, err);
    pf_sweep_config c;
    uint64_t *seeds;
    long n_seeds;
    int rc = sweep_setup(a, args, n_args, h, &c, &seeds, &n_seeds, err);
    pf_ctx *ctx = NULL;
    if (!rc) rc = with_ctx(a->common.threads, &ctx, err);
    if (!rc) rc = pf_run_sweep(ctx, a->out, &c, out, err);
    pf_ctx_free(ctx);
    return rc;
}

/* ---- transitions, hierarchy --------------------------------------------------------- */

static const char *const transitions_usage =
    "Usage: pathfinder transitions [OPTIONS] DIR\n"
    "Detect first-order transitions in a sweep folder's sweep.csv, split it into phases, and\n"
    "write DIR/transitions.json, DIR/phases.json and DIR/figures/. Refinements recorded by\n"
    "`pathfinder sweep` are kept.\n\n";

static const char *const hierarchy_usage =
    "Usage: pathfinder hierarchy [OPTIONS] DIR... [--out OUTDIR]\n"
    "Merge the phases of several sweep folders (seeds, up and down legs) into one hierarchy\n"
    "of nested accuracy basins; print it as a tree. With --out, write OUTDIR/phases.json and\n"
    "OUTDIR/figures/hierarchy.{png,pdf,svg}.\n\n";

/* --json and --quiet of the commands that read no data. */
typedef struct {
    int json, quiet;
} output_flags;

typedef struct {
    pf_analysis_config post;
    const char *out;
    output_flags flags;
} analyze_args;

static const pf_option hierarchy_rows[] = {
    {.kind = OPT_SECTION, .help = "Output:"},
    {OPT_STR, "out", "OUTDIR", OPT_OFF(analyze_args, out), 0, 0, OPT_NO_DEFAULT,
     "where to write the merged hierarchy (phases.json, figures/)", .given = 0},
    {.kind = OPT_END},
};

static const pf_option output_rows[] = {
    {.kind = OPT_SECTION, .help = "Other:"},
    {OPT_FLAG, "json", NULL, OPT_OFF(output_flags, json), .help =
     "print the result as one JSON document on stdout instead of the tables"},
    {OPT_FLAG, "quiet", NULL, OPT_OFF(output_flags, quiet), .help = "no progress on stderr"},
    {.kind = OPT_END},
};

static const pf_option_table transitions_tables[] = {
    {detect_rows, OPT_OFF(analyze_args, post)},
    {output_rows, OPT_OFF(analyze_args, flags)},
    {NULL, 0},
};

static const pf_option_table hierarchy_tables[] = {
    {hierarchy_rows, 0},
    {detect_rows, OPT_OFF(analyze_args, post)},
    {output_rows, OPT_OFF(analyze_args, flags)},
    {NULL, 0},
};

static void analyze_defaults(void *o)
{
    analyze_args *a = o;
    memset(a, 0, sizeof *a);
    pf_analysis_config_default(&a->post);
}

static int transitions_run(void *o, char **args, int n_args, const hooks *h, pf_report *out, pf_error *err)
{
    analyze_args *a = o;
    if (n_args != 1) return pf_fail(err, PF_EINPUT, "expected exactly one sweep folder");
    return pf_run_analysis(args[0], &a->post, h->figures, out, err);
}

static int hierarchy_run(void *o, char **args, int n_args, const hooks *h, pf_report *out, pf_error *err)
{
    analyze_args *a = o;
    if (n_args < 1) return pf_fail(err, PF_EINPUT, "expected one or more sweep folders");
    return pf_run_hierarchy((const char *const *)args, n_args, a->out, &a->post, h->figures, out, err);
}

/* ---- refine ------------------------------------------------------------------------------ */

static const char *const refine_usage =
    "Usage: pathfinder refine [OPTIONS] DIR T<k>|D<k>\n"
    "Bisect one transition of a finished sweep folder again, to --tol in beta, from the\n"
    "checkpoints the sweep kept beside it, with the sweep's own data, model and protocol\n"
    "(DIR/config.json). Rewrites DIR/transitions/T<k>_below|above.safetensors, the\n"
    "transition's entry in DIR/transitions.json (with its tolerance), phases.json and the\n"
    "figures; trains nothing else. T<k> is the k-th transition of the up leg, D<k> of the\n"
    "down leg, as `pathfinder transitions DIR` lists them with the same detection options\n"
    "(the defaults unless given, here as there).\n\n";

typedef struct {
    pf_refine_config c;
    int threads;     /* 0: the sweep's */
    output_flags flags;
} refine_args;

static const pf_option refine_cmd_rows[] = {
    {.kind = OPT_SECTION, .help = "Refinement:"},
    {OPT_DOUBLE, "tol", "X", OPT_OFF(refine_args, c.tol), 0, INFINITY, OPT_LO_OPEN,
     "bisect down to an interval of X in beta", .given = 0},
    {OPT_INT, "threads", "N", OPT_OFF(refine_args, threads), 0, PF_MAX_THREADS, OPT_NO_DEFAULT,
     "pathfinder's own team (default: as many as the sweep had, which the results depend on)",
     .given = 0},
    {.kind = OPT_END},
};

static const pf_option_table refine_tables[] = {
    {refine_cmd_rows, 0},
    {detect_rows, OPT_OFF(refine_args, c.analysis)},
    {output_rows, OPT_OFF(refine_args, flags)},
    {NULL, 0},
};

static void refine_defaults(void *o)
{
    refine_args *a = o;
    memset(a, 0, sizeof *a);
    pf_refine_config_default(&a->c);
}

static int refine_run(void *o, char **args, int n_args, const hooks *h, pf_report *out, pf_error *err)
{
    refine_args *a = o;
    if (n_args != 2) return pf_fail(err, PF_EINPUT, "expected a sweep folder and a transition (T1, D2, ...)");
    pf_refine_config c = a->c;
    c.transition = args[1];
    c.train_arrays = h->train_arrays;
    c.test_arrays = h->test_arrays;
    c.progress = h->progress;
    c.progress_ctx = h->progress_ctx;
    c.figures = h->figures;
    pf_ctx *ctx = NULL;
    int rc = a->threads > 0 ? with_ctx(a->threads, &ctx, err) : PF_OK;
    if (!rc) rc = pf_run_refine(ctx, args[0], &c, out, err);
    pf_ctx_free(ctx);
    return rc;
}

/* ---- connect, probe -------------------------------------------------------------------- */

typedef struct {
    const char *cmd;
    int probe;
    common_opts common;
    model_opts model;
    const char *out, *grid, *from;
    pf_schedule_config sched;   /* tol and step_cap as fractions of ||A - B|| here */
    int max_ratio_set;
    pf_certify_config certify;
    long bridge_depth;
    double bridge_barrier;
    long star;                  /* -1: all pairs */
    long hessian;               /* -1: off; else samples (0: all) */
    double val_fraction;        /* 0: the training set steers */
    pf_analysis_config post;
    char **files;               /* the models (path_setup) */
    int n_files;
    char *anchors;              /* probe: a copy of --anchor, cut into the anchors */
} connect_args;

static const char *const connect_usage =
    "Usage: pathfinder connect [OPTIONS] A.safetensors B.safetensors [C.safetensors ...] --out DIR\n"
    "Pathfinder path from A to B: anchor the L2 term at B, start at A and raise beta, training\n"
    "to convergence at each beta warm-started from the previous one. Certifies the path and\n"
    "compares its error barrier with the straight line A -> B's.\n"
    "With more than two models: every pair i < j (or a star with --star), each in DIR/pair_I_J/;\n"
    "pairs whose summary.json exists are skipped, and a pair stopped midway continues from\n"
    "its last point (its state.bin), so a rerun resumes.\n\n";

static const char *const connect_tail =
    "\nOutputs per pair: path.csv (one row per point: beta, losses, accuracies and errors,\n"
    "per-class test accuracy, dist_A, dist_B, path_length, segment certification), summary.json,\n"
    "transitions.json, path_profile.png/.pdf/.svg (error vs normalized distance, path and line),\n"
    "path_beta.png/.pdf/.svg. Several pairs: also DIR/summary.csv and DIR/summary.json.\n"
    "Prints a table of the pairs." EXIT_HELP;

static const char *const probe_usage =
    "Usage: pathfinder probe [OPTIONS] --anchor SADDLE.safetensors --from MIN.safetensors --out DIR\n"
    "Probe the hierarchy from a saddle: anchor the L2 term at a model saved at a transition\n"
    "(a sweep's DIR/transitions/T<k>_below|above.safetensors), start at a minimum and raise\n"
    "beta with warm starts. Reports, in order, the transitions the path crosses and the\n"
    "classes each one loses or gains. Same machinery and outputs as 'pathfinder connect'\n"
    "with A = --from and B = --anchor.\n\n";

static const char *const probe_tail =
    "\nOutputs in DIR: path.csv, transitions.json (transitions crossed and phases), summary.json,\n"
    "path_profile.png/.pdf/.svg, path_beta.png/.pdf/.svg." EXIT_HELP;

static void show_all_pairs(const void *opts, char *buf, size_t n)
{
    (void)opts;
    snprintf(buf, n, "every pair i < j");
}

static void show_ratio(const void *opts, char *buf, size_t n)
{
    (void)opts;
    snprintf(buf, n, "--ratio");
}

static void show_off(const void *opts, char *buf, size_t n)
{
    (void)opts;
    snprintf(buf, n, "off");
}

static const pf_option connect_rows[] = {
    {OPT_STR, "out", "DIR", OPT_OFF(connect_args, out), 0, 0, OPT_REQUIRED,
     "output folder, made if missing", .given = 0},
    {OPT_LONG, "star", "I", OPT_OFF(connect_args, star), 0, 1e6, 0,
     "paths from model I (0-based) to every other model", .show = show_all_pairs},
    {.kind = OPT_END},
};

static const pf_option probe_rows[] = {
    {OPT_STR, "anchor", "FILE[,FILE...]", OPT_OFF(connect_args, model.anchor), 0, 0, OPT_REQUIRED,
     "the saddle model; several (a comma-separated list): one probe each, into DIR/anchor_<k>/ "
     "(k from 0), shared out among the processes under mpirun, and a table of them in DIR", .given = 0},
    {OPT_STR, "from", "FILE", OPT_OFF(connect_args, from), 0, 0, OPT_REQUIRED, "the start model", .given = 0},
    {OPT_STR, "out", "DIR", OPT_OFF(connect_args, out), 0, 0, OPT_REQUIRED,
     "output folder, made if missing; done when DIR/summary.json exists; a probe stopped midway "
     "continues from DIR/state.bin", .given = 0},
    {.kind = OPT_END},
};

static const pf_option path_rows[] = {
    {.kind = OPT_SECTION, .help = "Schedule (default: adaptive geometric):"},
    {OPT_DOUBLE, "beta-start", "X", OPT_OFF(connect_args, sched.beta_start), 0, INFINITY, OPT_LO_OPEN,
     "first beta", .given = 0},
    {OPT_DOUBLE, "ratio", "X", OPT_OFF(connect_args, sched.ratio), 1, 1000, OPT_LO_OPEN,
     "grow beta by this factor per point", .given = 0},
    {OPT_DOUBLE, "max-ratio", "X", OPT_OFF(connect_args, sched.max_ratio), 1, 1000, OPT_LO_OPEN,
     "the ratio may grow back up to X after easy steps", .show = show_ratio,
     .given = OPT_GIVEN(connect_args, max_ratio_set)},
    {OPT_DOUBLE, "min-ratio", "X", OPT_OFF(connect_args, sched.min_ratio), 1, 1000, OPT_LO_OPEN,
     "smallest ratio before a step is accepted anyway", .given = 0},
    {OPT_DOUBLE, "step-cap", "F", OPT_OFF(connect_args, sched.step_cap), 0, INFINITY, OPT_LO_OPEN,
     "a step may bring theta closer to B by at most F x ||A - B||", .given = 0},
    {OPT_DOUBLE, "error-jump", "P", OPT_OFF(connect_args, sched.error_jump), 0, INFINITY, OPT_LO_OPEN,
     "a step may raise the steering error by at most P points", .given = 0},
    {OPT_DOUBLE, "tol", "F", OPT_OFF(connect_args, sched.tol), 0, INFINITY, OPT_LO_OPEN,
     "stop once ||theta - B|| <= F x ||A - B||", .given = 0},
    {OPT_DOUBLE, "max-beta", "X", OPT_OFF(connect_args, sched.max_beta), 0, INFINITY, OPT_LO_OPEN,
     "or once beta would pass X", .given = 0},
    {OPT_LONG, "max-points", "N", OPT_OFF(connect_args, sched.max_points), 2, 1e6, 0,
     "or after N points, the start included", .given = 0},
    {OPT_STR, "beta", "GRID", OPT_OFF(connect_args, grid), 0, 0, OPT_NO_DEFAULT,
     "a fixed grid instead: a list of values and ranges (START:STOP:STEP, geom:START:STOP:N); the "
     "paper's connectivity grid is 0:1e-5:2e-8 in this convention", .given = 0},
    {.kind = OPT_NOTE, .help =
     "The rule: the next beta is the last one times the ratio. A step that brought theta closer to "
     "B by more than the cap (the drop of r = ||theta - B||; a growing r is the training's own "
     "drift, and ||theta - theta_prev|| is inflated by minibatch noise) or raised the steering "
     "error by more than the jump is undone and retried from the previous point with (ratio - 1) "
     "halved, down to --min-ratio. There a still-too-far step is accepted: as a jump (jump column "
     "1: a first-order transition or a steep stretch; the ratio stays small) if it shrank with the "
     "smaller steps, else as drift (jump column 2; the ratio is restored). After two easy steps in "
     "a row (at most half the cap and half the jump) (ratio - 1) doubles, up to --max-ratio. A "
     "refused first step retries below --beta-start."},
    {.kind = OPT_SECTION, .help = "Steering (no decision ever looks at the test set):"},
    {OPT_DOUBLE, "val-fraction", "F", OPT_OFF(connect_args, val_fraction), 0, 1,
     OPT_LO_OPEN | OPT_HI_OPEN | OPT_NO_DEFAULT,
     "carve a seeded validation split of F of the training set (the model trains on the rest) and "
     "steer by its error (default: steer by the training error); the test error is measured and "
     "reported only", .given = 0},
    {.kind = OPT_SECTION, .help = "Certification of the path's segments:"},
    {OPT_INT, "segment-points", "N", OPT_OFF(connect_args, certify.interior), 0, 1000, 0,
     "evenly spaced interior points per segment", .given = 0},
    {OPT_DOUBLE, "rise", "P", OPT_OFF(connect_args, certify.rise), 0, INFINITY, 0,
     "refine around a point whose steering error exceeds the segment's higher end by more than P "
     "points", .given = 0},
    {OPT_INT, "refine-levels", "L", OPT_OFF(connect_args, certify.levels), 0, 10, 0,
     "rounds of bisection there", .given = 0},
    {.kind = OPT_NOTE, .help =
     "The closing segment from the last point onto B is certified too. Barrier = highest error "
     "along the path minus the higher of the two ends' errors; the straight line A -> B is "
     "measured at the same number of evenly spaced points."},
    {.kind = OPT_SECTION, .help = "Bridges:"},
    {OPT_LONG, "bridge-depth", "N", OPT_OFF(connect_args, bridge_depth), 0, 10, 0,
     "levels of bridges (0: none)", .given = 0},
    {OPT_DOUBLE, "bridge-barrier", "P", OPT_OFF(connect_args, bridge_barrier), 0, INFINITY, 0,
     "bridge a segment whose steering error climbs more than P points above its higher end", .given = 0},
    {.kind = OPT_NOTE, .help =
     "At a first-order transition of the path the model snaps into another basin and the straight "
     "segment across the snap may cross a ridge. Such a segment is bridged: a path from its first "
     "point anchored at its second (same schedule, cap and tolerance scaled to the segment), its "
     "own segments bridged in turn. It replaces the segment if it climbs less. Bridge points are "
     "path.csv rows of kind 'bridge' (their beta belongs to the bridge's anchor); transitions are "
     "detected on the main path only."},
    {.kind = OPT_SECTION, .help = "Hessian:"},
    {OPT_LONG, "hessian", "N", OPT_OFF(connect_args, hessian), 0, 1e15, 0,
     "record lambda_min and lambda_max of the Hessian of E (and of L_beta = E + beta I) at every "
     "point, by Lanczos on the first N training samples (0: all); slow on large models",
     .show = show_off},
    {.kind = OPT_END},
};

/* The checkpoints define the model: of the model options only these apply. */
static const pf_option path_model_rows[] = {
    {OPT_U64, "seed", "S", OPT_OFF(model_opts, seed), 0, 1.8e19, 0, "seed of the minibatch shuffling", .given = 0},
    {OPT_STR, "act", "NAMES", OPT_OFF(model_opts, act), 0, 0, OPT_NO_DEFAULT,
     "activations, for checkpoints without pathfinder metadata", .given = 0},
    {OPT_STR, "loss", "ce|mse", OPT_OFF(model_opts, loss), 0, 0, OPT_NO_DEFAULT,
     "loss, for checkpoints without pathfinder metadata", .given = 0},
    {.kind = OPT_END},
};

static const pf_option_table connect_tables[] = {
    {connect_rows, 0},
    {path_rows, 0},
    {detect_rows, OPT_OFF(connect_args, post)},
    {protocol_rows, OPT_OFF(connect_args, model)},
    {path_model_rows, OPT_OFF(connect_args, model)},
    {data_rows, OPT_OFF(connect_args, common)},
    {other_rows, OPT_OFF(connect_args, common)},
    {NULL, 0},
};

static const pf_option_table probe_tables[] = {
    {probe_rows, 0},
    {path_rows, 0},
    {detect_rows, OPT_OFF(connect_args, post)},
    {protocol_rows, OPT_OFF(connect_args, model)},
    {path_model_rows, OPT_OFF(connect_args, model)},
    {data_rows, OPT_OFF(connect_args, common)},
    {other_rows, OPT_OFF(connect_args, common)},
    {NULL, 0},
};

static void path_defaults(connect_args *a)
{
    /* the library's defaults, as pf_run_connect and pf_run_probe have them */
    pf_path_run_config d;
    pf_path_run_config_default(&d);
    common_default(&a->common);
    model_default(&a->model);
    a->model.act = NULL;   /* from the checkpoints' metadata */
    a->post = d.analysis;
    a->sched = d.schedule;
    a->certify = d.certify;
    a->bridge_depth = d.bridge_depth;
    a->bridge_barrier = d.bridge_barrier;
    a->star = d.star;
    a->hessian = d.hessian_samples;
}

static void connect_defaults(void *o)
{
    memset(o, 0, sizeof(connect_args));
    path_defaults(o);
}

static void probe_defaults(void *o)
{
    connect_args *a = o;
    memset(a, 0, sizeof *a);
    path_defaults(a);
    a->probe = 1;
}

/* The paths the options describe: c, and the models (connect: the
 * arguments; probe: --from, then every --anchor) in a->files. */
static int path_setup(connect_args *a, char **args, int n_args, const hooks *h, pf_path_run_config *cp,
                      pf_error *err)
{
    if (!a->max_ratio_set) a->sched.max_ratio = a->sched.ratio;
    if (a->sched.min_ratio > a->sched.ratio)
        return pf_fail(err, PF_EINPUT, "--min-ratio %g is above --ratio %g", a->sched.min_ratio, a->sched.ratio);
    if (a->sched.max_ratio < a->sched.ratio)
        return pf_fail(err, PF_EINPUT, "--max-ratio %g is below --ratio %g", a->sched.max_ratio, a->sched.ratio);
    if (a->sched.max_beta < a->sched.beta_start) return pf_fail(err, PF_EINPUT, "--max-beta is below --beta-start");
    if (!a->out) return pf_fail(err, PF_EINPUT, "--out DIR is required");
    free(a->files);
    free(a->anchors);
    a->files = NULL;
    a->anchors = NULL;
    a->n_files = 0;
    if (a->probe) {
        if (n_args > 0) return pf_fail(err, PF_EINPUT, "unexpected argument '%s'", args[0]);
        if (!a->model.anchor || !a->from)
            return pf_fail(err, PF_EINPUT, "--anchor SADDLE.safetensors and --from MIN.safetensors are required");
        /* --anchor A,B,...: one probe per anchor */
        int n = 2;
        for (const char *p = a->model.anchor; *p; p++) n += *p == ',';
        a->files = calloc((size_t)n, sizeof *a->files);
        a->anchors = strdup(a->model.anchor);
        if (!a->files || !a->anchors) return pf_fail(err, PF_ERUNTIME, "out of memory");
        a->files[a->n_files++] = (char *)a->from;
        for (char *p = a->anchors, *end;; p = end + 1) {
            end = strchr(p, ',');
            if (end) *end = '\0';
            if (!*p) return pf_fail(err, PF_EINPUT, "--anchor: an empty file name in the list");
            a->files[a->n_files++] = p;
            if (!end) break;
        }
    } else {
        if (n_args < 2) return pf_fail(err, PF_EINPUT, "needs at least two checkpoints, got %d", n_args);
        if (a->star >= n_args)
            return pf_fail(err, PF_EINPUT, "--star %ld: there are only %d models (0-based)", a->star, n_args);
        if (!(a->files = calloc((size_t)n_args, sizeof *a->files))) return pf_fail(err, PF_ERUNTIME, "out of memory");
        for (int i = 0; i < n_args; i++) a->files[a->n_files++] = args[i];
    }
    pf_path_run_config c;
    pf_path_run_config_default(&c);
    c.data = a->common.data;
    c.val_fraction = a->val_fraction;
    c.act = a->model.act;
    c.loss = a->model.loss;
    c.seed = a->model.seed;
    model_protocol(&a->model, &c.protocol);
    c.grid = a->grid;
    c.schedule = a->sched;
    c.certify = a->certify;
    c.bridge_depth = (int)a->bridge_depth;
    c.bridge_barrier = a->bridge_barrier;
    c.hessian_samples = a->hessian;
    c.analysis = a->post;
    c.star = a->probe ? -1 : a->star;
    c.progress = h->progress;
    c.progress_ctx = h->progress_ctx;
    c.figures = h->figures;
    *cp = c;
    return PF_OK;
}

static int path_plan_of(void *o, char **args, int n_args, const hooks *h, pf_plan **plan, pf_error *err)
{
    connect_args *a = o;
    pf_path_run_config c;
    int rc = path_setup(a, args, n_args, h, &c, err);
    if (!rc) rc = pf_paths_plan(a->out, (const char *const *)a->files, a->n_files, a->probe, &c,
                                a->common.threads, plan, err);
    return rc;
}

static int path_run(void *o, char **args, int n_args, const hooks *h, pf_report *out, pf_error *err)
{
    return run_as_plan(path_plan_of, o, args, n_args, h, out, err);
}

/* ---- the commands ---------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *usage, *tail;
    size_t size;                       /* of its option struct */
    size_t common;                     /* offset of its common_opts, or (size_t)-1 */
    void (*defaults)(void *opts);
    const pf_option_table *tables;
    int (*run)(void *opts, char **args, int n_args, const hooks *h, pf_report *out, pf_error *err);
    /* its work as a plan of tasks, or NULL: one task, the run */
    int (*plan)(void *opts, char **args, int n_args, const hooks *h, pf_plan **plan, pf_error *err);
} command_def;

static const command_def commands[] = {
    {"train", train_usage, EXIT_HELP, sizeof(train_args), offsetof(train_args, common), train_defaults,
     train_tables, train_run, NULL},
    {"eval", eval_usage, EXIT_HELP, sizeof(eval_args), offsetof(eval_args, common), eval_defaults, eval_tables,
     eval_run, NULL},
    {"hessian", hessian_usage, EXIT_HELP, sizeof(hessian_args), offsetof(hessian_args, common),
     hessian_defaults, hessian_tables, hessian_run, hessian_plan_of},
    {"saddle", saddle_usage, EXIT_HELP, sizeof(saddle_args), offsetof(saddle_args, common), saddle_defaults,
     saddle_tables, saddle_run, NULL},
    {"sweep", sweep_usage, sweep_tail, sizeof(sweep_args), offsetof(sweep_args, common), sweep_defaults,
     sweep_tables, sweep_run, sweep_plan_of},
    {"transitions", transitions_usage, EXIT_HELP, sizeof(analyze_args), (size_t)-1, analyze_defaults,
     transitions_tables, transitions_run, NULL},
    {"hierarchy", hierarchy_usage, EXIT_HELP, sizeof(analyze_args), (size_t)-1, analyze_defaults,
     hierarchy_tables, hierarchy_run, NULL},
    {"refine", refine_usage, EXIT_HELP, sizeof(refine_args), (size_t)-1, refine_defaults, refine_tables,
     refine_run, NULL},
    {"connect", connect_usage, connect_tail, sizeof(connect_args), offsetof(connect_args, common),
     connect_defaults, connect_tables, path_run, path_plan_of},
    {"probe", probe_usage, probe_tail, sizeof(connect_args), offsetof(connect_args, common), probe_defaults,
     probe_tables, path_run, path_plan_of},
};
enum { N_COMMANDS = sizeof commands / sizeof *commands };

struct pf_command {
    const command_def *def;
    void *opts;
    char **args;
    int n_args, cap_args;
    char **strings;          /* copies of every value given, which the options point into */
    int n_strings, cap_strings;
    hooks h;
    int failed;
};

const char *pf_command_name(int i) { return i >= 0 && i < N_COMMANDS ? commands[i].name : NULL; }

int pf_command_new(const char *name, pf_command **out, pf_error *err)
{
    *out = NULL;
    const command_def *def = NULL;
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) def = &commands[i];
    if (!def) return pf_fail(err, PF_EINPUT, "unknown command '%s'", name);
    pf_command *c = calloc(1, sizeof *c);
    if (c) c->opts = calloc(1, def->size);
    if (!c || !c->opts) {
        free(c);
        return pf_fail(err, PF_ERUNTIME, "out of memory");
    }
    c->def = def;
    def->defaults(c->opts);
    *out = c;
    return PF_OK;
}

void pf_command_free(pf_command *c)
{
    if (!c) return;
    if (c->def->plan == path_plan_of) {
        connect_args *a = c->opts;
        free(a->files);
        free(a->anchors);
    }
    for (int i = 0; i < c->n_strings; i++) free(c->strings[i]);
    free(c->strings);
    free(c->args);
    free(c->opts);
    free(c);
}

/* A copy of s that lives as long as the command. */
static char *keep(pf_command *c, const char *s, pf_error *err)
{
    if (c->n_strings == c->cap_strings) {
        int cap = c->cap_strings ? 2 * c->cap_strings : 16;
        char **g = realloc(c->strings, (size_t)cap * sizeof *g);
        if (!g) return pf_fail(err, PF_ERUNTIME, "out of memory"), NULL;
        c->strings = g;
        c->cap_strings = cap;
    }
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (!copy) return pf_fail(err, PF_ERUNTIME, "out of memory"), NULL;
    memcpy(copy, s, n);
    c->strings[c->n_strings++] = copy;
    return copy;
}

int pf_command_n_options(const pf_command *c) { return pf_options_count(c->def->tables); }

const char *pf_command_option(const pf_command *c, int i, int *takes_value)
{
    const pf_option *o = pf_options_at(c->def->tables, i);
    if (!o) return NULL;
    if (takes_value) *takes_value = o->kind != OPT_FLAG;
    return o->name;
}

int pf_command_set(pf_command *c, const char *option, const char *value, pf_error *err)
{
    const char *v = value ? keep(c, value, err) : NULL;
    if (value && !v) return PF_ERUNTIME;
    return pf_options_set(c->def->tables, c->opts, option, v, err);
}

int pf_command_arg(pf_command *c, const char *arg, pf_error *err)
{
    if (c->n_args == c->cap_args) {
        int cap = c->cap_args ? 2 * c->cap_args : 8;
        char **g = realloc(c->args, (size_t)cap * sizeof *g);
        if (!g) return pf_fail(err, PF_ERUNTIME, "out of memory");
        c->args = g;
        c->cap_args = cap;
    }
    char *v = keep(c, arg, err);
    if (!v) return PF_ERUNTIME;
    c->args[c->n_args++] = v;
    return PF_OK;
}

int pf_command_arrays(pf_command *c, const pf_dataset *train, const pf_dataset *test, pf_error *err)
{
    int reads = c->def->common != (size_t)-1 || strcmp(c->def->name, "refine") == 0;
    if (!reads) return pf_fail(err, PF_EINPUT, "%s reads no data: it takes no arrays", c->def->name);
    if (!train || !test) return pf_fail(err, PF_EINPUT, "arrays need a training and a test set");
    if (c->def->common != (size_t)-1) {
        common_opts *co = (common_opts *)((char *)c->opts + c->def->common);
        co->data.train_arrays = train;
        co->data.test_arrays = test;
    }
    c->h.train_arrays = train;
    c->h.test_arrays = test;
    return PF_OK;
}

void pf_command_events(pf_command *c, pf_event_fn fn, void *ctx)
{
    c->h.progress = fn;
    c->h.progress_ctx = ctx;
}

void pf_command_figures(pf_command *c, pf_figures_fn fn) { c->h.figures = fn; }

void pf_command_line(pf_command *c, int argc, char *const *argv)
{
    if (strcmp(c->def->name, "sweep") == 0) {
        sweep_args *a = c->opts;
        a->argc = argc;
        a->argv = argv;
    }
}

/* The flags every front reads: --quiet and --json (0 when a command has none). */
static int flag_of(const pf_command *c, const char *name)
{
    size_t base;
    const pf_option *o = pf_options_find(c->def->tables, name, &base);
    return o && o->kind == OPT_FLAG ? *(const int *)((const char *)c->opts + base + o->offset) : 0;
}

int pf_command_quiet(const pf_command *c) { return flag_of(c, "quiet"); }
int pf_command_data_parallel(const pf_command *c) { return flag_of(c, "data-parallel"); }

void pf_command_reducer(pf_command *c, pf_reduce_fn sum, void *user, int rank, int size)
{
    c->h.reduce = sum;
    c->h.reduce_user = user;
    c->h.rank = rank;
    c->h.ranks = size;
}
int pf_command_json(const pf_command *c) { return flag_of(c, "json"); }

char *pf_command_help(const pf_command *c)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) return NULL;
    pf_options_help(f, c->def->usage, c->def->tables, c->opts, c->def->tail);
    fclose(f);
    return buf;
}

int pf_command_run(pf_command *c, pf_report *out, pf_error *err)
{
    memset(out, 0, sizeof *out);
    if (c->def->common != (size_t)-1) common_finish((common_opts *)((char *)c->opts + c->def->common));
    return c->def->run(c->opts, c->args, c->n_args, &c->h, out, err);
}

/* ---- plans ---------------------------------------------------------------------------- */

/* A command without tasks of its own: one task that runs it, in whichever
 * process gets it; the finish reports it there. */
typedef struct {
    pf_command *cmd;
    pf_report report;
    int ran;
} single_plan;

static void single_free(void *data)
{
    single_plan *s = data;
    if (s) pf_report_free(&s->report);
    free(s);
}

static int single_prepare(pf_plan *p, int stage, pf_error *err)
{
    single_plan *s = p->data;
    (void)stage;
    return pf_plan_add(p, err, "%s", s->cmd->def->name);
}

static int single_run(pf_plan *p, pf_ctx *ctx, long i, pf_error *err)
{
    single_plan *s = p->data;
    (void)ctx, (void)i;
    pf_report_free(&s->report);
    int rc = pf_command_run(s->cmd, &s->report, err);
    s->ran = !rc;
    return rc;
}

static int single_finish(pf_plan *p, pf_report *out, pf_error *err)
{
    single_plan *s = p->data;
    if (!s->ran) return pf_fail(err, PF_EINPUT, "%s: its one task ran in another process, which printed "
                                "its report", s->cmd->def->name);
    *out = s->report;
    memset(&s->report, 0, sizeof s->report);
    return PF_OK;
}

int pf_command_plan(pf_command *c, pf_plan **plan, pf_error *err)
{
    *plan = NULL;
    if (c->def->common != (size_t)-1) common_finish((common_opts *)((char *)c->opts + c->def->common));
    if (c->def->plan) {
        int rc = c->def->plan(c->opts, c->args, c->n_args, &c->h, plan, err);
        if (rc || *plan) return rc;
    }
    pf_plan *p = pf_plan_alloc(1, 1);
    single_plan *s = calloc(1, sizeof *s);
    if (!p || !s) {
        free(p), free(s);
        return pf_fail(err, PF_ERUNTIME, "out of memory");
    }
    s->cmd = c;
    p->data = s;
    p->free_data = single_free;
    p->prepare = single_prepare;
    p->run = single_run;
    p->finish = single_finish;
    *plan = p;
    return PF_OK;
}

int pf_command_has_tasks(const pf_command *c)
{
    return c->def->plan && (c->def->plan != hessian_plan_of || c->n_args > 1);
}

/* pathfinder train: train one model at one beta with the paper protocol (or
 * another optimizer), warm-started or freshly initialized; write it as
 * safetensors and print the final metrics as one JSON line. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const train_help =
    "Usage: pathfinder train [OPTIONS] --out FILE.safetensors\n"
    "Train an MLP at one L2 strength beta and write it as a safetensors checkpoint.\n"
    "Prints one JSON line with the final train/test metrics.\n\n"
    "Model:\n"
    "  --arch SIZES         layer sizes, e.g. 784,128,128,10 (default: INPUT,128,128,OUTPUT)\n"
    "  --act NAMES          sigmoid (default), tanh, relu or linear: one name for every hidden\n"
    "                       layer (output linear), or one per layer\n"
    "  --no-bias            layers without biases\n"
    "  --loss ce|mse        default: ce for class labels, mse for real targets\n"
    "  --init FILE          warm-start from a checkpoint instead of a fresh init\n"
    "  --seed S             seed for initialization and shuffling (default 0)\n"
    "Regularization:\n"
    "  --beta B             L2 strength: adds (B/2)||theta - anchor||^2 (default 0)\n"
    "  --anchor FILE        anchor checkpoint (default: the origin)\n"
    "Protocol (defaults are the paper's):\n"
    "  --optimizer NAME     adam (default), sgd or lbfgs (full batch, deterministic)\n"
    "  --lr X               learning rate (adam 0.0015, sgd 0.01, lbfgs initial step 1)\n"
    "  --momentum X         SGD momentum (default 0.9)\n"
    "  --batch N            minibatch size (default 64; 0 = full batch)\n"
    "  --max-epochs N       at most N epochs (default 50; lbfgs: iterations, default 500)\n"
    "  --patience N         stop after N epochs without a lower epoch-mean loss (default 5)\n"
    "  --min-delta X        an improvement must exceed X (default 0)\n"
    "  --keep-optimizer     do not reset optimizer state at the start\n"
    "  --grad-tol X         lbfgs: stop when max |gradient| < X (default 1e-5)\n"
    "Output:\n"
    "  --out FILE           checkpoint to write (required)\n"
    CLI_DATA_HELP
    "\nExit status: 0 success, 1 runtime failure, 2 bad usage or bad input.\n";

enum {
    OPT_ARCH = OPT_FIRST_COMMAND_OPTION, OPT_ACT, OPT_NO_BIAS, OPT_LOSS, OPT_INIT, OPT_SEED,
    OPT_BETA, OPT_ANCHOR, OPT_OPTIMIZER, OPT_LR, OPT_MOMENTUM, OPT_BATCH, OPT_MAX_EPOCHS,
    OPT_PATIENCE, OPT_MIN_DELTA, OPT_KEEP_OPT, OPT_GRAD_TOL, OPT_OUT
};

static const struct option train_options[] = {
    CLI_DATA_LONGOPTS,
    {"arch", required_argument, 0, OPT_ARCH},
    {"act", required_argument, 0, OPT_ACT},
    {"no-bias", no_argument, 0, OPT_NO_BIAS},
    {"loss", required_argument, 0, OPT_LOSS},
    {"init", required_argument, 0, OPT_INIT},
    {"seed", required_argument, 0, OPT_SEED},
    {"beta", required_argument, 0, OPT_BETA},
    {"anchor", required_argument, 0, OPT_ANCHOR},
    {"optimizer", required_argument, 0, OPT_OPTIMIZER},
    {"lr", required_argument, 0, OPT_LR},
    {"momentum", required_argument, 0, OPT_MOMENTUM},
    {"batch", required_argument, 0, OPT_BATCH},
    {"max-epochs", required_argument, 0, OPT_MAX_EPOCHS},
    {"patience", required_argument, 0, OPT_PATIENCE},
    {"min-delta", required_argument, 0, OPT_MIN_DELTA},
    {"keep-optimizer", no_argument, 0, OPT_KEEP_OPT},
    {"grad-tol", required_argument, 0, OPT_GRAD_TOL},
    {"out", required_argument, 0, OPT_OUT},
    {0, 0, 0, 0},
};

typedef struct {
    cli_common common;
    const char *arch, *act, *loss, *init, *anchor, *out;
    int no_bias;
    uint64_t seed;
    double beta;
    pf_opt_kind optimizer;
    double lr, momentum, min_delta, grad_tol;
    long batch, max_epochs, patience;
    int keep_optimizer;
} train_args;

static int parse_args(int argc, char **argv, train_args *a)
{
    const char *cmd = "train";
    memset(a, 0, sizeof *a);
    cli_common_default(&a->common);
    a->act = "sigmoid";
    a->lr = a->momentum = a->grad_tol = -1;
    a->batch = 64;
    a->max_epochs = -1;
    a->patience = 5;
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "", train_options, NULL)) != -1) {
        int r = cli_common_option(cmd, &a->common, opt, optarg);
        if (r < 0) return PF_EINPUT;
        if (r > 0) continue;
        long v;
        switch (opt) {
        case OPT_ARCH: a->arch = optarg; break;
        case OPT_ACT: a->act = optarg; break;
        case OPT_NO_BIAS: a->no_bias = 1; break;
        case OPT_LOSS: a->loss = optarg; break;
        case OPT_INIT: a->init = optarg; break;
        case OPT_ANCHOR: a->anchor = optarg; break;
        case OPT_OUT: a->out = optarg; break;
        case OPT_KEEP_OPT: a->keep_optimizer = 1; break;
        case OPT_SEED:
            if (cli_parse_u64(optarg, &a->seed))
                return cli_usage_error(cmd, "--seed needs a non-negative integer, got '%s'", optarg);
            break;
        case OPT_BETA:
            if (cli_parse_double(optarg, &a->beta) || a->beta < 0)
                return cli_usage_error(cmd, "--beta needs a number >= 0, got '%s'", optarg);
            break;
        case OPT_OPTIMIZER:
            if (pf_opt_from_name(optarg, &a->optimizer))
                return cli_usage_error(cmd, "--optimizer takes adam, sgd or lbfgs, got '%s'", optarg);
            break;
        case OPT_LR:
            if (cli_parse_double(optarg, &a->lr) || !(a->lr > 0))
                return cli_usage_error(cmd, "--lr needs a positive number, got '%s'", optarg);
            break;
        case OPT_MOMENTUM:
            if (cli_parse_double(optarg, &a->momentum) || a->momentum < 0 || a->momentum >= 1)
                return cli_usage_error(cmd, "--momentum needs a number in [0, 1), got '%s'", optarg);
            break;
        case OPT_MIN_DELTA:
            if (cli_parse_double(optarg, &a->min_delta) || a->min_delta < 0)
                return cli_usage_error(cmd, "--min-delta needs a number >= 0, got '%s'", optarg);
            break;
        case OPT_GRAD_TOL:
            if (cli_parse_double(optarg, &a->grad_tol) || !(a->grad_tol > 0))
                return cli_usage_error(cmd, "--grad-tol needs a positive number, got '%s'", optarg);
            break;
        case OPT_BATCH:
            if (cli_parse_long(optarg, &v) || v < 0 || v > 1 << 24)
                return cli_usage_error(cmd, "--batch needs a count >= 0, got '%s'", optarg);
            a->batch = v;
            break;
        case OPT_MAX_EPOCHS:
            if (cli_parse_long(optarg, &v) || v < 1 || v > 1 << 24)
                return cli_usage_error(cmd, "--max-epochs needs a positive count, got '%s'", optarg);
            a->max_epochs = v;
            break;
        case OPT_PATIENCE:
            if (cli_parse_long(optarg, &v) || v < 1 || v > 1 << 24)
                return cli_usage_error(cmd, "--patience needs a positive count, got '%s'", optarg);
            a->patience = v;
            break;
        default:
            return cli_usage_error(cmd, "unknown option");
        }
    }
    if (a->common.help) return PF_OK;
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!a->out) return cli_usage_error(cmd, "--out FILE.safetensors is required");
    return PF_OK;
}

/* Architecture from --arch/--act/--loss, fitted to the data's shape. */
static int build_arch(const train_args *a, const pf_dataset *train, pf_arch *arch, pf_error *err)
{
    int n_layers, sizes[PF_MAX_LAYERS + 1];
    int out_dim = pf_dataset_out_dim(train);
    if (a->arch) {
        int rc = pf_arch_parse_sizes(a->arch, &n_layers, sizes, err);
        if (rc) return rc;
        if (sizes[0] != train->dim)
            return pf_fail(err, PF_EINPUT, "--arch takes %d inputs but %s has %d features", sizes[0],
                           train->name, train->dim);
        if (sizes[n_layers] != out_dim)
            return pf_fail(err, PF_EINPUT, "--arch has %d outputs but %s needs %d", sizes[n_layers],
                           train->name, out_dim);
    } else {
        n_layers = 3;
        sizes[0] = train->dim, sizes[1] = 128, sizes[2] = 128, sizes[3] = out_dim;
    }
    pf_act acts[PF_MAX_LAYERS];
    int rc = pf_arch_parse_acts(a->act, n_layers, acts, err);
    if (rc) return rc;
    pf_loss loss = train->labels ? PF_LOSS_CE : PF_LOSS_MSE;
    if (a->loss && pf_loss_from_name(a->loss, &loss))
        return pf_fail(err, PF_EINPUT, "--loss takes ce or mse, got '%s'", a->loss);
    if (loss == PF_LOSS_CE && !train->labels)
        return pf_fail(err, PF_EINPUT, "--loss ce needs class labels but %s has real targets",
                       train->name);
    if (loss == PF_LOSS_MSE && !train->targets)
        return pf_fail(err, PF_EINPUT, "--loss mse needs real targets but %s has class labels "
                       "(use --target regression)", train->name);
    return pf_arch_init(arch, n_layers, sizes, acts, !a->no_bias, loss, err);
}

int cmd_train(int argc, char **argv)
{
    train_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc;
    if (a.common.help) {
        fputs(train_help, stdout);
        return PF_OK;
    }
    pf_set_threads(a.common.threads);
    pf_error err;
    pf_error_clear(&err);
    pf_dataset train = {0}, test = {0};
    pf_arch arch;
    float *theta = NULL, *anchor = NULL;
    pf_trainer trainer = {0};
    int trainer_ready = 0;
    if ((rc = pf_data_load(&a.common.data, &train, &test, &err))) goto done;
    if ((rc = build_arch(&a, &train, &arch, &err))) goto done;

    if (a.init) {
        pf_arch file_arch;
        if ((rc = pf_ckpt_read(a.init, &arch, a.arch ? &arch : NULL, &file_arch, &theta, NULL, &err)))
            goto done;
        if (!a.arch) arch = file_arch; /* the checkpoint defines the model */
        if (arch.sizes[0] != train.dim || arch.sizes[arch.n_layers] != pf_dataset_out_dim(&train)) {
            rc = pf_fail(&err, PF_EINPUT, "%s: model %d->%d does not fit %s (%d features, %d outputs)",
                         a.init, arch.sizes[0], arch.sizes[arch.n_layers], train.name, train.dim,
                         pf_dataset_out_dim(&train));
            goto done;
        }
    } else {
        theta = malloc(arch.n_params * sizeof *theta);
        if (!theta) {
            rc = pf_fail(&err, PF_ERUNTIME, "out of memory for %zu parameters", arch.n_params);
            goto done;
        }
        pf_rng rng;
        pf_rng_seed(&rng, a.seed);
        pf_init_params(&arch, theta, &rng);
    }
    if (a.anchor) {
        pf_arch anchor_arch;
        if ((rc = pf_ckpt_read(a.anchor, &arch, &arch, &anchor_arch, &anchor, NULL, &err))) goto done;
    }

    pf_train_config cfg;
    pf_train_config_paper(&cfg);
    pf_opt_config_default(&cfg.opt, a.optimizer);
    if (a.lr > 0) cfg.opt.lr = a.lr;
    if (a.momentum >= 0) cfg.opt.momentum = a.momentum;
    if (a.grad_tol > 0) cfg.grad_tol = a.grad_tol;
    cfg.beta = a.beta;
    cfg.anchor = anchor;
    cfg.batch = (int)a.batch;
    cfg.max_epochs = a.max_epochs > 0 ? (int)a.max_epochs : a.optimizer == PF_OPT_LBFGS ? 500 : 50;
    cfg.patience = (int)a.patience;
    cfg.min_delta = a.min_delta;
    cfg.reset_optimizer = !a.keep_optimizer;
    cli_progress prog;
    cli_progress_init(&prog, a.common.quiet);
    prog.beta = a.beta;
    cfg.progress = cli_progress_fn;
    cfg.progress_ctx = &prog;

    /* Shuffling draws from its own stream so that init and order are independent. */
    if ((rc = pf_trainer_init(&trainer, &arch, &cfg.opt, cfg.batch, train.n,
                              a.seed ^ 0x53485546464c45ULL, &err)))
        goto done;
    trainer_ready = 1;
    pf_train_result res;
    rc = pf_train_beta(&trainer, theta, &train, &cfg, &res, &err);
    cli_progress_done(&prog);
    if (rc) goto done;

    pf_metrics m;
    if ((rc = pf_measure(&trainer.eval_work, theta, &train, &test, anchor, a.beta, &m, &err))) goto done;

    pf_ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.beta = a.beta;
    snprintf(meta.anchor, sizeof meta.anchor, "%s", a.anchor ? a.anchor : "origin");
    meta.seed = a.seed;
    snprintf(meta.dataset, sizeof meta.dataset, "%s", train.name);
    snprintf(meta.extra, sizeof meta.extra,
             "{\"optimizer\":\"%s\",\"lr\":%.17g,\"batch\":%d,\"epochs\":%d,\"train_subset\":%ld,"
             "\"init\":\"%s\"}",
             pf_opt_name(cfg.opt.kind), cfg.opt.lr, cfg.batch, res.epochs, a.common.data.train_subset,
             a.init ? "checkpoint" : "nn.Linear default");
    if ((rc = pf_ckpt_write(a.out, &arch, theta, &meta, &err))) goto done;

    cJSON *o = cli_metrics_json(&m);
    cJSON_AddStringToObject(o, "command", "train");
    cJSON_AddStringToObject(o, "out", a.out);
    cJSON_AddStringToObject(o, "optimizer", pf_opt_name(cfg.opt.kind));
    cJSON_AddNumberToObject(o, "epochs", res.epochs);
    cJSON_AddNumberToObject(o, "steps", (double)res.steps);
    cJSON_AddNumberToObject(o, "last_epoch_loss", res.epoch_loss);
    cJSON_AddBoolToObject(o, "stopped_early", res.stopped_early);
    cJSON_AddNumberToObject(o, "train_seconds", res.seconds);
    cJSON_AddNumberToObject(o, "seconds_per_epoch", res.epochs ? res.seconds / res.epochs : 0.0);
    cli_print_json(o);

done:
    if (rc) cli_error("train", rc, "%s", err.msg);
    if (trainer_ready) pf_trainer_free(&trainer);
    free(theta);
    free(anchor);
    pf_dataset_free(&train);
    pf_dataset_free(&test);
    return rc;
}

/* Options shared by the commands that train: the model (architecture,
 * activations, init, anchor) and the per-beta protocol. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_model_default(cli_model_opts *m)
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
    m->input_layer = (int)c.input_layer;
}

static const char *const optimizer_names[] = {"adam", "sgd", "lbfgs", NULL};
const char *const cli_input_layer_names[] = {"auto", "sparse", "dense", NULL};

/* Defaults that depend on the optimizer, as the library sets them. */
static void show_lr(const void *opts, char *buf, size_t n)
{
    (void)opts;
    size_t len = 0;
    for (int k = 0; optimizer_names[k] && len < n; k++) {
        pf_train_config c;
        pf_train_config_default(&c, (pf_opt_kind)k);
        char v[32];
        cli_show_number(c.opt.lr, v, sizeof v);
        len += (size_t)snprintf(buf + len, n - len, "%s%s %s", k ? ", " : "", optimizer_names[k], v);
    }
}

static void show_max_epochs(const void *opts, char *buf, size_t n)
{
    (void)opts;
    pf_train_config c, l;
    pf_train_config_default(&c, PF_OPT_ADAM);
    pf_train_config_default(&l, PF_OPT_LBFGS);
    snprintf(buf, n, "%d; lbfgs: iterations, %d", c.max_epochs, l.max_epochs);
}

const cli_option cli_model_rows[] = {
    {CLI_SECTION, .help = "Model:"},
    {CLI_STR, "arch", "SIZES", CLI_OFF(cli_model_opts, arch), 0, 0, CLI_NO_DEFAULT,
     "layer sizes, e.g. 784,128,128,10 (default: INPUT,128,128,OUTPUT)", .given = 0},
    {CLI_STR, "act", "NAMES", CLI_OFF(cli_model_opts, act), .help =
     "sigmoid, tanh, relu or linear: one name for every hidden layer (the output stays linear), "
     "or one per layer"},
    {CLI_FLAG, "no-bias", NULL, CLI_OFF(cli_model_opts, no_bias), .help = "layers without biases"},
    {CLI_STR, "loss", "ce|mse", CLI_OFF(cli_model_opts, loss), 0, 0, CLI_NO_DEFAULT,
     "cross-entropy or mean squared error (default: ce for class labels, mse for real targets)", .given = 0},
    {CLI_STR, "init", "FILE", CLI_OFF(cli_model_opts, init), 0, 0, CLI_NO_DEFAULT,
     "start from a checkpoint instead of a fresh PyTorch-style initialization", .given = 0},
    {CLI_U64, "seed", "S", CLI_OFF(cli_model_opts, seed), 0, 1.8e19, 0,
     "seed of the initialization and the minibatch shuffling", .given = CLI_GIVEN(cli_model_opts, seed_given)},
    {CLI_STR, "anchor", "FILE", CLI_OFF(cli_model_opts, anchor), 0, 0, CLI_NO_DEFAULT,
     "anchor of the L2 term (default: the origin)", .given = 0},
    {CLI_END},
};

const cli_option cli_protocol_rows[] = {
    {CLI_SECTION, .help = "Protocol (the defaults are the paper's):"},
    {CLI_CHOICE, "optimizer", "NAME", CLI_OFF(cli_model_opts, optimizer), .help =
     "adam, sgd (with momentum) or lbfgs (full batch, deterministic)", .choices = optimizer_names},
    {CLI_DOUBLE, "lr", "X", CLI_OFF(cli_model_opts, lr), 0, INFINITY, CLI_LO_OPEN,
     "learning rate (L-BFGS: initial step)", .show = show_lr, .given = CLI_GIVEN(cli_model_opts, lr_given)},
    {CLI_DOUBLE, "momentum", "X", CLI_OFF(cli_model_opts, momentum), 0, 1, CLI_HI_OPEN, "SGD momentum", .given = 0},
    {CLI_LONG, "batch", "N", CLI_OFF(cli_model_opts, batch), 0, 1 << 24, 0, "minibatch size (0: full batch)", .given = 0},
    {CLI_LONG, "max-epochs", "N", CLI_OFF(cli_model_opts, max_epochs), 1, 1 << 24, 0,
     "at most N epochs per beta", .show = show_max_epochs,
     .given = CLI_GIVEN(cli_model_opts, max_epochs_given)},
    {CLI_LONG, "patience", "N", CLI_OFF(cli_model_opts, patience), 1, 1 << 24, 0,
     "stop after N epochs without a lower epoch-mean training loss", .given = 0},
    {CLI_DOUBLE, "min-delta", "X", CLI_OFF(cli_model_opts, min_delta), 0, INFINITY, 0,
     "an improvement must beat the best epoch by more than X", .given = 0},
    {CLI_FLAG, "keep-optimizer", NULL, CLI_OFF(cli_model_opts, keep_optimizer), .help =
     "keep the optimizer's state from one beta to the next (default: a new optimizer per beta)"},
    {CLI_DOUBLE, "grad-tol", "X", CLI_OFF(cli_model_opts, grad_tol), 0, INFINITY, CLI_LO_OPEN,
     "lbfgs: stop when max |gradient| < X", .given = CLI_GIVEN(cli_model_opts, grad_tol_given)},
    {CLI_CHOICE, "input-layer", "MODE", CLI_OFF(cli_model_opts, input_layer), .help =
     "auto, sparse or dense: run the input layer on the inputs' entries off their per-feature "
     "background (image background) or as a dense product; auto takes sparse when at most 30% of "
     "the training set's entries differ from it (results agree to float rounding)",
     .choices = cli_input_layer_names},
    {CLI_END},
};

/* Architecture from --arch/--act/--loss, fitted to the data's shape. */
static int build_arch(const cli_model_opts *m, const pf_dataset *train, pf_arch *arch, pf_error *err)
{
    int n_layers, sizes[PF_MAX_LAYERS + 1];
    int out_dim = pf_dataset_out_dim(train);
    if (m->arch) {
        int rc = pf_arch_parse_sizes(m->arch, &n_layers, sizes, err);
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
    int rc = pf_arch_parse_acts(m->act, n_layers, acts, err);
    if (rc) return rc;
    pf_loss loss = train->labels ? PF_LOSS_CE : PF_LOSS_MSE;
    if (m->loss && pf_loss_from_name(m->loss, &loss))
        return pf_fail(err, PF_EINPUT, "--loss takes ce or mse, got '%s'", m->loss);
    if (loss == PF_LOSS_CE && !train->labels)
        return pf_fail(err, PF_EINPUT, "--loss ce needs class labels but %s has real targets",
                       train->name);
    if (loss == PF_LOSS_MSE && !train->targets)
        return pf_fail(err, PF_EINPUT, "--loss mse needs real targets but %s has class labels "
                       "(use --target regression)", train->name);
    return pf_arch_init(arch, n_layers, sizes, acts, !m->no_bias, loss, err);
}

int cli_model_setup(const cli_model_opts *m, const pf_dataset *train, pf_arch *arch, float **theta,
                    float **anchor, pf_error *err)
{
    *theta = NULL;
    *anchor = NULL;
    int rc = build_arch(m, train, arch, err);
    if (rc) return rc;
    /* a model too large for the machine is refused before it is allocated */
    if (!m->init && (rc = pf_check_memory(arch, (int)m->batch, train->n, err))) return rc;
    if (m->init) {
        pf_arch file_arch;
        if ((rc = pf_ckpt_read(m->init, arch, m->arch ? arch : NULL, &file_arch, theta, NULL, err)))
            return rc;
        if (!m->arch) *arch = file_arch; /* the checkpoint defines the model */
        if (arch->sizes[0] != train->dim ||
            arch->sizes[arch->n_layers] != pf_dataset_out_dim(train)) {
            free(*theta);
            *theta = NULL;
            return pf_fail(err, PF_EINPUT, "%s: model %d->%d does not fit %s (%d features, %d outputs)",
                           m->init, arch->sizes[0], arch->sizes[arch->n_layers], train->name,
                           train->dim, pf_dataset_out_dim(train));
        }
    } else {
        *theta = malloc(arch->n_params * sizeof **theta);
        if (!*theta) return pf_fail(err, PF_ERUNTIME, "out of memory for %zu parameters", arch->n_params);
        pf_rng rng;
        pf_rng_seed(&rng, m->seed);
        pf_init_params(arch, *theta, &rng);
    }
    if (m->anchor) {
        pf_arch anchor_arch;
        if ((rc = pf_ckpt_read(m->anchor, arch, arch, &anchor_arch, anchor, NULL, err))) {
            free(*theta);
            *theta = NULL;
            return rc;
        }
    }
    return PF_OK;
}

void cli_model_train_config(const cli_model_opts *m, const pf_dataset *train, pf_train_config *cfg)
{
    pf_train_config_default(cfg, (pf_opt_kind)m->optimizer);
    cfg->input_layer = (pf_input_layer)m->input_layer;
    if (train) cfg->input_layer = pf_input_layer_resolve(cfg->input_layer, train->x, train->n, train->dim);
    if (m->lr_given) cfg->opt.lr = m->lr;
    cfg->opt.momentum = m->momentum;
    if (m->grad_tol_given) cfg->grad_tol = m->grad_tol;
    cfg->batch = (int)m->batch;
    if (m->max_epochs_given) cfg->max_epochs = (int)m->max_epochs;
    cfg->patience = (int)m->patience;
    cfg->min_delta = m->min_delta;
    cfg->reset_optimizer = !m->keep_optimizer;
}

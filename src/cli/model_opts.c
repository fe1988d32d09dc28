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
}

static const char *const optimizer_names[] = {"adam", "sgd", "lbfgs", NULL};

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
    {CLI_END},
};

void cli_model_train_config(const cli_model_opts *m, pf_train_config *cfg)
{
    pf_train_config_default(cfg, (pf_opt_kind)m->optimizer);
    if (m->lr_given) cfg->opt.lr = m->lr;
    cfg->opt.momentum = m->momentum;
    if (m->grad_tol_given) cfg->grad_tol = m->grad_tol;
    cfg->batch = (int)m->batch;
    if (m->max_epochs_given) cfg->max_epochs = (int)m->max_epochs;
    cfg->patience = (int)m->patience;
    cfg->min_delta = m->min_delta;
    cfg->reset_optimizer = !m->keep_optimizer;
}

void cli_model_spec(const cli_model_opts *m, pf_model_spec *spec)
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

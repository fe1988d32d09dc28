/* Options shared by the commands that train: the model (architecture,
 * activations, init, anchor) and the per-beta protocol. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_model_default(cli_model_opts *m)
{
    memset(m, 0, sizeof *m);
    m->act = "sigmoid";
    m->lr = m->momentum = m->grad_tol = -1;
    m->batch = 64;
    m->max_epochs = -1;
    m->patience = 5;
    m->optimizer = PF_OPT_ADAM;
}

int cli_model_option(const char *cmd, cli_model_opts *m, int opt, const char *arg)
{
    long v;
    switch (opt) {
    case OPT_ARCH: m->arch = arg; return 1;
    case OPT_ACT: m->act = arg; return 1;
    case OPT_NO_BIAS: m->no_bias = 1; return 1;
    case OPT_LOSS: m->loss = arg; return 1;
    case OPT_INIT: m->init = arg; return 1;
    case OPT_ANCHOR: m->anchor = arg; return 1;
    case OPT_KEEP_OPT: m->keep_optimizer = 1; return 1;
    case OPT_SEED:
        if (cli_parse_u64(arg, &m->seed))
            return cli_usage_error(cmd, "--seed needs a non-negative integer, got '%s'", arg), -1;
        return 1;
    case OPT_OPTIMIZER:
        if (pf_opt_from_name(arg, &m->optimizer))
            return cli_usage_error(cmd, "--optimizer takes adam, sgd or lbfgs, got '%s'", arg), -1;
        return 1;
    case OPT_LR:
        if (cli_parse_double(arg, &m->lr) || !(m->lr > 0))
            return cli_usage_error(cmd, "--lr needs a positive number, got '%s'", arg), -1;
        return 1;
    case OPT_MOMENTUM:
        if (cli_parse_double(arg, &m->momentum) || m->momentum < 0 || m->momentum >= 1)
            return cli_usage_error(cmd, "--momentum needs a number in [0, 1), got '%s'", arg), -1;
        return 1;
    case OPT_MIN_DELTA:
        if (cli_parse_double(arg, &m->min_delta) || m->min_delta < 0)
            return cli_usage_error(cmd, "--min-delta needs a number >= 0, got '%s'", arg), -1;
        return 1;
    case OPT_GRAD_TOL:
        if (cli_parse_double(arg, &m->grad_tol) || !(m->grad_tol > 0))
            return cli_usage_error(cmd, "--grad-tol needs a positive number, got '%s'", arg), -1;
        return 1;
    case OPT_BATCH:
        if (cli_parse_long(arg, &v) || v < 0 || v > 1 << 24)
            return cli_usage_error(cmd, "--batch needs a count >= 0, got '%s'", arg), -1;
        m->batch = v;
        return 1;
    case OPT_MAX_EPOCHS:
        if (cli_parse_long(arg, &v) || v < 1 || v > 1 << 24)
            return cli_usage_error(cmd, "--max-epochs needs a positive count, got '%s'", arg), -1;
        m->max_epochs = v;
        return 1;
    case OPT_PATIENCE:
        if (cli_parse_long(arg, &v) || v < 1 || v > 1 << 24)
            return cli_usage_error(cmd, "--patience needs a positive count, got '%s'", arg), -1;
        m->patience = v;
        return 1;
    }
    return 0;
}

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

void cli_model_train_config(const cli_model_opts *m, pf_train_config *cfg)
{
    pf_train_config_paper(cfg);
    pf_opt_config_default(&cfg->opt, m->optimizer);
    if (m->lr > 0) cfg->opt.lr = m->lr;
    if (m->momentum >= 0) cfg->opt.momentum = m->momentum;
    if (m->grad_tol > 0) cfg->grad_tol = m->grad_tol;
    cfg->batch = (int)m->batch;
    cfg->max_epochs = m->max_epochs > 0 ? (int)m->max_epochs : m->optimizer == PF_OPT_LBFGS ? 500 : 50;
    cfg->patience = (int)m->patience;
    cfg->min_delta = m->min_delta;
    cfg->reset_optimizer = !m->keep_optimizer;
}

uint64_t cli_shuffle_seed(uint64_t seed) { return seed ^ 0x53485546464c45ULL; }

/* Models from a spec: the architecture fitted to the data's shape, the
 * parameters (a fresh PyTorch-style initialization or a checkpoint) and the
 * anchor of the L2 term. */
#include <stdlib.h>
#include <string.h>

#include "pathfinder/io.h"

void pf_model_spec_default(pf_model_spec *m)
{
    memset(m, 0, sizeof *m);
    m->act = "sigmoid";
}

/* The architecture from arch/act/loss, fitted to the data's shape. */
static int build_arch(const pf_model_spec *m, const pf_dataset *train, pf_arch *arch, pf_error *err)
{
    int out_dim = pf_dataset_out_dim(train);
    int rc;
    if (m->arch) {
        /* the activations are checked once the shape is known to fit */
        if ((rc = pf_arch_parse(arch, m->arch, "linear", !m->no_bias, PF_LOSS_CE, err))) return rc;
        if (arch->in_dim != train->dim)
            return pf_fail(err, PF_EINPUT, "--arch takes %d inputs but %s has %d features", arch->in_dim,
                           train->name, train->dim);
        if (arch->sizes[arch->n_layers] != out_dim)
            return pf_fail(err, PF_EINPUT, "--arch has %d outputs but %s needs %d",
                           arch->sizes[arch->n_layers], train->name, out_dim);
    } else {
        int sizes[4] = {train->dim, 128, 128, out_dim};
        pf_act acts[3] = {PF_ACT_LINEAR, PF_ACT_LINEAR, PF_ACT_LINEAR};
        if ((rc = pf_arch_init(arch, 3, sizes, acts, !m->no_bias, PF_LOSS_CE, err))) return rc;
    }
    if ((rc = pf_arch_set_acts(arch, m->act ? m->act : "sigmoid", err))) return rc;
    pf_loss loss = train->labels ? PF_LOSS_CE : PF_LOSS_MSE;
    if (m->loss && pf_loss_from_name(m->loss, &loss))
        return pf_fail(err, PF_EINPUT, "--loss takes ce or mse, got '%s'", m->loss);
    if (loss == PF_LOSS_CE && !train->labels)
        return pf_fail(err, PF_EINPUT, "--loss ce needs class labels but %s has real targets",
                       train->name);
    if (loss == PF_LOSS_MSE && !train->targets)
        return pf_fail(err, PF_EINPUT, "--loss mse needs real targets but %s has class labels "
                       "(use --target regression)", train->name);
    arch->loss = loss;
    return PF_OK;
}

int pf_model_setup(const pf_model_spec *m, const pf_dataset *train, int batch, pf_arch *arch,
                   float **theta, float **anchor, pf_error *err)
{
    *theta = NULL;
    *anchor = NULL;
    int rc = build_arch(m, train, arch, err);
    if (rc) return rc;
    /* a model too large for the machine is refused before it is allocated */
    if (!m->init && (rc = pf_check_memory(arch, batch, train->n, err))) return rc;
    if (m->init) {
        pf_arch file_arch;
        if ((rc = pf_ckpt_read(m->init, arch, m->arch ? arch : NULL, &file_arch, theta, NULL, err)))
            return rc;
        if (!m->arch) *arch = file_arch; /* the checkpoint defines the model */
        if (arch->in_dim != train->dim || arch->sizes[arch->n_layers] != pf_dataset_out_dim(train)) {
            free(*theta);
            *theta = NULL;
            return pf_fail(err, PF_EINPUT, "%s: model %d->%d does not fit %s (%d features, %d outputs)",
                           m->init, arch->in_dim, arch->sizes[arch->n_layers], train->name,
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

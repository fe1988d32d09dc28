/* The stages of a convolutional model (convolutions with their
 * activations, poolings) on the fast float path: what mlp.c, the trainer
 * and hessian.c run before fc1 and after its backward pass. Internal to
 * the library. Rows [r0, r1) of a batch; `slot` picks the team member's
 * share of the workspace's im2col room. */
#ifndef PATHFINDER_CORE_STAGES_H
#define PATHFINDER_CORE_STAGES_H

#include "pathfinder/core.h"

/* The stage buffers of w (B = w->max_batch rows, slots im2col shares);
 * PF_OK or PF_ERUNTIME. pf_work_free frees them. */
int pf_stages_alloc(pf_work *w, int slots);
void pf_stages_free(pf_work *w);

/* What fc1 reads: the last stage's output, or x itself in an MLP. */
static inline const float *pf_fc_input(const pf_work *w, const float *x)
{
    return w->arch->n_stages ? w->sa[w->arch->n_stages - 1] : x;
}

/* The rows of x (B, in_dim) through every stage. */
void pf_stages_forward(pf_work *w, const float *theta, const float *x, int r0, int r1, int slot);
/* dLoss/d(fc1's input) of the rows: d[0] W_0 into the last stage's sd. */
void pf_feature_delta_rows(pf_work *w, const float *theta, int r0, int r1);
/* From the last stage's sd back to the input: the rows' gradient of every
 * convolution's weights and biases, added into grad (theta's layout), or
 * written there (overwrite: the stages' part of grad is cleared first). */
void pf_stages_backward(pf_work *w, const float *theta, const float *x, int r0, int r1, float *grad,
                        int overwrite, int slot);

/* Parameters of the stages: theta[0, pf_stage_params) (0 in an MLP). */
static inline size_t pf_stage_params(const pf_arch *A) { return A->n_stages ? A->w_off[0] : 0; }

#endif

/* Exact Hessian-vector products by Pearlmutter's R-operator.
 *
 * R{f} = d/dr f(theta + r v) at r = 0. Applied to the forward and backward
 * passes of mlp.c (z_l = a_{l-1} W_l^T + b_l, a_l = f_l(z_l), a_{-1} = x,
 * delta_l = dLoss/dz_l; V_l and c_l are the parts of v matching W_l and b_l)
 * it gives, row by row:
 *
 *   R-forward   Rz_l = a_{l-1} V_l^T + Ra_{l-1} W_l^T + c_l,   Ra_{-1} = 0
 *               Ra_l = f'_l(z_l) Rz_l
 *   output      g = dloss/da_{L-1} / N,  Rg = (d2 loss/da2) Ra_{L-1} / N
 *                 CE:  g = p - onehot(y),  Rg = p * (Ra - <p, Ra>),  p = softmax(a)
 *                 MSE: g = a - t,          Rg = Ra
 *   backward    e = delta_l W_l,  Re = Rdelta_l W_l + delta_l V_l
 *               delta_{l-1} = f'(z_{l-1}) e,  Rdelta_{l-1} = f' Re + f'' e Rz_{l-1}
 *               (the output layer uses e = g, Re = Rg)
 *   product     (Hv)_{W_l} = sum_rows Rdelta_l^T a_{l-1} + delta_l^T Ra_{l-1}
 *               (Hv)_{b_l} = sum_rows Rdelta_l
 *
 * which is H_E v exactly (up to rounding); H_{L_beta} v adds beta v. The
 * activation derivatives are taken from a = f(z): sigmoid f' = a(1-a),
 * f'' = f'(1-2a); tanh f' = 1-a^2, f'' = -2a f'; relu f' = [z > 0], f'' = 0
 * (the kink counts as flat, as in mlp.c); linear f' = 1, f'' = 0.
 *
 * The fast path runs these in float with sgemm over blocks of rows; each
 * block's product is added into a double accumulator, team members own
 * contiguous shares of the rows, and their accumulators are summed in
 * member order, so the same thread count gives bit-identical results.
 *
 * Sparse inputs. The input layer is most of the work (for the paper's MLP
 * 3 of the 4.4 sgemm-equivalents per sample), and image data is mostly
 * background: x = b + s with b a per-feature constant (the majority value)
 * and s zero in ~80% of MNIST's pixels. Then
 *     x W^T = b W^T + s W^T,     sum_rows Rdelta^T x = (sum_rows Rdelta)^T b + Rdelta^T s,
 * so when s has at most 30% nonzeros the input layer runs on s alone, from
 * the sparse form of the data that the caller's workspace keeps (sparse.h):
 * the forward gathers rows of W_0^T and V_0^T feature block by feature
 * block (a block stays in L1 while every row of the block takes its
 * entries), and the weight product adds each row's entries, times its
 * Rdelta row, into an L1-resident block of the product.
 *
 * Repeated products. a_l and e_l do not depend on v; an operator that will
 * be applied many times (Lanczos) keeps them from its first product, and
 * the later ones skip the forward pass, the e sgemms and half of the
 * sparse input layer's reads (about a quarter of the work).
 */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/core.h"
#include "pathfinder/hessian.h"
#include "act.h"
#include "pathfinder/conv.h"
#include "sparse.h"
#include "stages.h"
#include "team.h"

/* One team member's buffers for a block of B = w->max_batch rows. */
typedef struct {
    pf_work *w;                   /* z, a and delta of the block; member 0 borrows the caller's */
    pf_work own;                  /* members > 0 */
    float *rz[PF_MAX_LAYERS];     /* R{z_l} (B, sizes[l+1]) */
    float *ra[PF_MAX_LAYERS];     /* R{a_l} (B, sizes[l+1]) */
    float *rd[PF_MAX_LAYERS];     /* R{delta_l} (B, sizes[l+1]) */
    float *e, *re;                /* delta_l W_l and its R{} (B, widest layer) */
    float *block_hv;              /* one block's weight products (n_params) */
    double *acc;                  /* this member's sum over its blocks (n_params) */
    double loss;                  /* summed loss of its rows */
    /* sparse input layer only */
    double *acc0_t;               /* input-layer product of s, transposed (dim, sizes[1]) */
    double *rdelta_sum;           /* sum over rows of Rdelta_0 (sizes[1]) */
    float *outer;                 /* one feature block of a block's product (PF_SPARSE_BLOCK_BYTES) */
    size_t *cursor;               /* (max_batch) walks along the block's sparse rows */
    /* a convolutional model's stages: R{z} of the convolutions, R{out} and
     * R{sd} of every stage (B, out_size), and scratch for delta, R{delta}
     * and one product (B, the widest stage) */
    float *srz[PF_MAX_STAGES], *sra[PF_MAX_STAGES], *srd[PF_MAX_STAGES];
    float *sdel, *srdel, *stmp;
} hvp_member;

struct pf_hessian {
    const pf_arch *arch;
    const float *theta;
    const pf_dataset *d;
    size_t n;                     /* rows used: the first n of d */
    double norm;                  /* rows used by all the processes (n when alone) */
    double *sums;                 /* data-parallel: this process's H_E v, then its loss sum
                                   * (n_params + 1), for the context's reducer; else NULL */
    int n_members;                /* members with buffers */
    hvp_member m[PF_MAX_THREADS];
    float *vbuf;                  /* float copy of a double input (n_params) */
    float *theta_t, *v_t;         /* hidden layers' weights transposed, (sizes[l], sizes[l+1])
                                   * at w_off[l] (n_params; the input layer's slot unused) */
    /* a_l and e_l = delta_{l+1} W_{l+1} (e_{L-1} = g) of every row, (n, sizes[l+1]) each,
     * kept for repeated products; NULL when not cached */
    float *cache_a[PF_MAX_LAYERS], *cache_e[PF_MAX_LAYERS];
    int cache_ready;              /* filled by a completed product */
    /* sparse input layer: x = background + s, s the sparse set of d that the
     * caller's workspace keeps (made on first use) */
    int sparse;
    const pf_sparse_set *set;
    const float *background;      /* (dim) its majority value of each feature */
    float *wv_t;                  /* (2, dim, sizes[1]): W_0^T, then V_0^T */
    float *wv_bg;                 /* (2, sizes[1]): W_0 b + b_0, then V_0 b + c_0 */
    double mean_loss;
    /* the product being computed */
    const float *v;
    double beta;
    float *out_f;
    double *out_d;
};

/* Large arrays (CSR, CSC, cache: ~300 MB for MNIST) are touched once
 * right after allocation; 2 MiB pages spare the ~75,000 page faults that
 * cost as much as a product (pf_big_alloc). */
#define big_alloc pf_big_alloc

static void member_free(hvp_member *m, int borrowed)
{
    for (int l = 0; l < PF_MAX_LAYERS; l++) {
        free(m->rz[l]);
        free(m->ra[l]);
        free(m->rd[l]);
    }
    free(m->e);
    free(m->re);
    free(m->block_hv);
    free(m->acc);
    free(m->acc0_t);
    free(m->rdelta_sum);
    free(m->outer);
    free(m->cursor);
    for (int i = 0; i < PF_MAX_STAGES; i++) free(m->srz[i]), free(m->sra[i]), free(m->srd[i]);
    free(m->sdel), free(m->srdel), free(m->stmp);
    if (!borrowed) pf_work_free(&m->own);
    memset(m, 0, sizeof *m);
}

static int member_init(hvp_member *m, const pf_arch *A, pf_work *borrow, int max_batch, int sparse)
{
    memset(m, 0, sizeof *m);
    if (borrow) {
        m->w = borrow;
    } else {
        if (pf_work_init(&m->own, NULL, A, max_batch, NULL) != PF_OK) return PF_ERUNTIME;
        m->w = &m->own;
    }
    size_t B = (size_t)max_batch;
    int ok = 1, wide = 1;
    for (int l = 0; l < A->n_layers; l++) {
        size_t bytes = B * (size_t)A->sizes[l + 1] * sizeof(float);
        m->rz[l] = malloc(bytes);
        m->ra[l] = malloc(bytes);
        m->rd[l] = malloc(bytes);
        ok = ok && m->rz[l] && m->ra[l] && m->rd[l];
        if (A->sizes[l + 1] > wide) wide = A->sizes[l + 1];
    }
    size_t swide = 0;
    for (int i = 0; i < A->n_stages; i++) {
        const pf_stage *s = &A->stage[i];
        size_t bytes = B * s->out_size * sizeof(float);
        if (s->kind == PF_STAGE_CONV) ok = ok && (m->srz[i] = malloc(bytes));
        m->sra[i] = malloc(bytes);
        m->srd[i] = malloc(bytes);
        ok = ok && m->sra[i] && m->srd[i];
        swide = s->out_size > swide ? s->out_size : swide;
        swide = s->in_size > swide ? s->in_size : swide;
    }
    if (swide) {
        m->sdel = malloc(B * swide * sizeof(float));
        m->srdel = malloc(B * swide * sizeof(float));
        m->stmp = malloc(B * swide * sizeof(float));
        ok = ok && m->sdel && m->srdel && m->stmp;
    }
    m->e = malloc(B * (size_t)wide * sizeof(float));
    m->re = malloc(B * (size_t)wide * sizeof(float));
    m->block_hv = malloc(A->n_params * sizeof(float));
    m->acc = malloc(A->n_params * sizeof(double));
    if (sparse) {
        m->acc0_t = malloc((size_t)A->sizes[0] * (size_t)A->sizes[1] * sizeof(double));
        m->rdelta_sum = malloc((size_t)A->sizes[1] * sizeof(double));
        m->outer = malloc(PF_SPARSE_BLOCK_BYTES > A->sizes[1] * 16 * sizeof(float)
                              ? PF_SPARSE_BLOCK_BYTES : (size_t)A->sizes[1] * 16 * sizeof(float));
        m->cursor = malloc(B * sizeof *m->cursor);
        ok = ok && m->acc0_t && m->rdelta_sum && m->outer && m->cursor;
    }
    if (!ok || !m->e || !m->re || !m->block_hv || !m->acc) {
        member_free(m, borrow != NULL);
        return PF_ERUNTIME;
    }
    return PF_OK;
}

/* ra = f'(z) rz, with f' taken from a = f(z) (relu: z > 0 exactly when a > 0) */
static void r_activate(pf_act act, float *restrict ra, const float *restrict rz,
                       const float *restrict a, size_t n)
{
    switch (act) {
    case PF_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) ra[i] = a[i] * (1.0f - a[i]) * rz[i];
        break;
    case PF_ACT_TANH:
        for (size_t i = 0; i < n; i++) ra[i] = (1.0f - a[i] * a[i]) * rz[i];
        break;
    case PF_ACT_RELU:
        for (size_t i = 0; i < n; i++) ra[i] = a[i] > 0.0f ? rz[i] : 0.0f;
        break;
    case PF_ACT_LINEAR:
        memcpy(ra, rz, n * sizeof *ra);
        break;
    }
}

/* delta = f'(z) e,  rdelta = f'(z) re + f''(z) e rz, from a = f(z) */
static void r_delta(pf_act act, float *restrict delta, float *restrict rdelta,
                    const float *restrict e, const float *restrict re, const float *restrict rz,
                    const float *restrict a, size_t n)
{
    switch (act) {
    case PF_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) {
            float d1 = a[i] * (1.0f - a[i]), d2 = d1 * (1.0f - 2.0f * a[i]);
            delta[i] = d1 * e[i];
            rdelta[i] = d1 * re[i] + d2 * e[i] * rz[i];
        }
        break;
    case PF_ACT_TANH:
        for (size_t i = 0; i < n; i++) {
            float d1 = 1.0f - a[i] * a[i], d2 = -2.0f * a[i] * d1;
            delta[i] = d1 * e[i];
            rdelta[i] = d1 * re[i] + d2 * e[i] * rz[i];
        }
        break;
    case PF_ACT_RELU:
        for (size_t i = 0; i < n; i++) {
            int on = a[i] > 0.0f;
            delta[i] = on ? e[i] : 0.0f;
            rdelta[i] = on ? re[i] : 0.0f;
        }
        break;
    case PF_ACT_LINEAR:
        memcpy(delta, e, n * sizeof *delta);
        memcpy(rdelta, re, n * sizeof *rdelta);
        break;
    }
}

/* g and Rg of B output rows into e and re, divided by norm; returns the
 * summed loss. Softmax and its contractions are done in double per row. */
static double output_r(pf_loss loss, float *restrict g, float *restrict rg, const float *out,
                       const float *rout, const int *labels, const float *targets, int B, int K,
                       double norm)
{
    double total = 0.0;
    for (int i = 0; i < B; i++) {
        const float *o = out + (size_t)i * K, *ro = rout + (size_t)i * K;
        float *gi = g + (size_t)i * K, *rgi = rg + (size_t)i * K;
        if (loss == PF_LOSS_CE) {
            /* p = softmax(o) in double; up to 64 classes without recomputing exp */
            enum { KEEP = 64 };
            double ex[KEEP];
            int y = labels[i];
            double mx = o[0], sum = 0.0, dot = 0.0;
            for (int k = 1; k < K; k++) mx = o[k] > mx ? o[k] : mx;
            for (int k = 0; k < K; k++) {
                double t = exp((double)o[k] - mx);
                if (k < KEEP) ex[k] = t;
                sum += t;
            }
            total += mx + log(sum) - (double)o[y];
            for (int k = 0; k < K; k++)
                dot += (k < KEEP ? ex[k] : exp((double)o[k] - mx)) / sum * (double)ro[k];
            for (int k = 0; k < K; k++) {
                double p = (k < KEEP ? ex[k] : exp((double)o[k] - mx)) / sum;
                gi[k] = (float)((p - (k == y)) / norm);
                rgi[k] = (float)(p * ((double)ro[k] - dot) / norm);
            }
        } else {
            const float *t = targets + (size_t)i * K;
            double s = 0.0;
            for (int k = 0; k < K; k++) {
                double r = (double)o[k] - (double)t[k];
                s += r * r;
                gi[k] = (float)(r / norm);
                rgi[k] = (float)((double)ro[k] / norm);
            }
            total += 0.5 * s;
        }
    }
    return total;
}

/* ---- sparse input layer ----------------------------------------------------- */

/* The input layer runs sparse (see sparse.h) when the caller's workspace
 * says so for d: its sparse set of d (made on first use, then kept by the
 * workspace, so later operators and products on d find it made). */
static void sparse_setup(pf_hessian *h)
{
    const pf_dataset *d = h->d;
    /* a block's entries are counted in 32 bits */
    if ((double)h->m[0].w->max_batch * (double)d->dim >= (double)UINT32_MAX) return;
    int use;
    const pf_sparse_set *set = pf_sparse_find(h->m[0].w, d->x, d->n, d->dim, &use);
    if (!set) return; /* dense, or out of memory for the set: dense */
    h->set = set;
    h->background = set->background;
    h->sparse = 1;
}

/* The input layer of p (theta: half 0, v: half 1) into wv_t and wv_bg.
 * Each transpose is compact, so that V_0^T alone (all that products after
 * the first read) stays in a core's L2 cache. */
static void input_layer_split(pf_hessian *h, const float *p, int half)
{
    const pf_arch *A = h->arch;
    int dim = A->sizes[0], n_out = A->sizes[1];
    const float *W = p + A->w_off[0];
    for (int o = 0; o < n_out; o++) {
        double s = A->bias ? (double)p[A->b_off[0] + (size_t)o] : 0.0;
        for (int j = 0; j < dim; j++) {
            s += (double)W[(size_t)o * dim + j] * (double)h->background[j];
            h->wv_t[((size_t)half * dim + (size_t)j) * n_out + o] = W[(size_t)o * dim + j];
        }
        h->wv_bg[(size_t)half * n_out + o] = (float)s;
    }
}

/* Hidden layers' weights of p, transposed, at the same offsets. */
static void transpose_hidden(const pf_arch *A, const float *p, float *pt)
{
    for (int l = 1; l < A->n_layers; l++) {
        int n_in = A->sizes[l], n_out = A->sizes[l + 1];
        const float *W = p + A->w_off[l];
        float *Wt = pt + A->w_off[l];
        for (int o = 0; o < n_out; o++)
            for (int j = 0; j < n_in; j++) Wt[(size_t)j * n_out + o] = W[(size_t)o * n_in + j];
    }
}

/* ---- a convolutional model's stages ------------------------------------------ */

/* The R-forward of the stages, after their forward pass (w->sz, w->sa):
 *   conv   Rz = conv(R in; W) + conv(in; V) + c,  R out = f'(z) Rz
 *   max    R out = R in at each window's winner (max pooling is piecewise
 *          linear; at a tie the winner is the first largest entry, the
 *          same one its gradient goes to, so H v is that piece's)
 *   avg    R out = the mean of R in over each window
 * with R x = 0. */
static void stages_r_forward(hvp_member *m, const pf_hessian *h, const float *x, int B)
{
    const pf_arch *A = h->arch;
    pf_work *w = m->w;
    const float *v = h->v;
    for (int i = 0; i < A->n_stages; i++) {
        const pf_stage *s = &A->stage[i];
        const float *in = i ? w->sa[i - 1] : x, *rin = i ? m->sra[i - 1] : NULL;
        size_t n = (size_t)B * s->out_size;
        switch (s->kind) {
        case PF_STAGE_CONV:
            pf_conv_forward(m->srz[i], in, v + s->w_off, A->bias ? v + s->b_off : NULL, &s->conv, B,
                            w->conv_work);
            if (rin) {
                pf_conv_forward(m->stmp, rin, h->theta + s->w_off, NULL, &s->conv, B, w->conv_work);
                for (size_t q = 0; q < n; q++) m->srz[i][q] += m->stmp[q];
            }
            r_activate(s->act, m->sra[i], m->srz[i], w->sa[i], n);
            break;
        case PF_STAGE_MAXPOOL:
            if (!rin) {
                memset(m->sra[i], 0, n * sizeof(float));
                break;
            }
            for (int b = 0; b < B; b++) {
                size_t o = (size_t)b * s->out_size;
                const float *r = rin + (size_t)b * s->in_size;
                for (size_t q = o; q < o + s->out_size; q++) m->sra[i][q] = r[w->arg[i][q]];
            }
            break;
        case PF_STAGE_AVGPOOL:
            if (rin) pf_avgpool_forward(m->sra[i], rin, &s->pool, B);
            else memset(m->sra[i], 0, n * sizeof(float));
            break;
        }
    }
}

/* The R-backward of the stages from the gradient in the last one's output
 * (w->sd) and its R{} (m->srd), adding their weights' products into
 * block_hv (cleared here):
 *   conv   delta = f' sd,  R delta = f' R sd + f'' sd Rz
 *          (Hv)_W = R delta (*) in + delta (*) R in,  (Hv)_b = sum R delta
 *          sd_below = conv^T(delta; W),  R sd_below = conv^T(R delta; W) + conv^T(delta; V)
 *   pools  sd and R sd go back through the same windows (the winner, or evenly) */
static void stages_r_backward(hvp_member *m, const pf_hessian *h, const float *x, int B)
{
    const pf_arch *A = h->arch;
    pf_work *w = m->w;
    const float *theta = h->theta, *v = h->v;
    memset(m->block_hv, 0, pf_stage_params(A) * sizeof(float));
    for (int i = A->n_stages - 1; i >= 0; i--) {
        const pf_stage *s = &A->stage[i];
        float *below = i ? w->sd[i - 1] : NULL, *rbelow = i ? m->srd[i - 1] : NULL;
        switch (s->kind) {
        case PF_STAGE_CONV: {
            const float *in = i ? w->sa[i - 1] : x;
            r_delta(s->act, m->sdel, m->srdel, w->sd[i], m->srd[i], m->srz[i], w->sa[i],
                    (size_t)B * s->out_size);
            float *hw = m->block_hv + s->w_off, *hb = A->bias ? m->block_hv + s->b_off : NULL;
            pf_conv_backward(rbelow, hw, hb, m->srdel, in, theta + s->w_off, &s->conv, B, w->conv_work);
            if (!i) break;
            pf_conv_backward(m->stmp, hw, NULL, m->sdel, m->sra[i - 1], v + s->w_off, &s->conv, B,
                             w->conv_work);
            for (size_t q = 0, n = (size_t)B * s->in_size; q < n; q++) rbelow[q] += m->stmp[q];
            pf_conv_backward(below, NULL, NULL, m->sdel, NULL, theta + s->w_off, &s->conv, B,
                             w->conv_work);
            break;
        }
        case PF_STAGE_MAXPOOL:
            if (!i) break;
            pf_maxpool_backward(below, w->sd[i], w->arg[i], &s->pool, B);
            pf_maxpool_backward(rbelow, m->srd[i], w->arg[i], &s->pool, B);
            break;
        case PF_STAGE_AVGPOOL:
            if (!i) break;
            pf_avgpool_backward(below, w->sd[i], &s->pool, B);
            pf_avgpool_backward(rbelow, m->srd[i], &s->pool, B);
            break;
        }
    }
    for (size_t q = 0, n = pf_stage_params(A); q < n; q++) m->acc[q] += m->block_hv[q];
}

/* ---- one block ------------------------------------------------------------- */

/* out = keep * out + in P_l^T for B rows, P_l the layer-l weights of p
 * (theta or v). Hidden layers use the transposed copy pt (NoTrans x NoTrans):
 * with 128 inputs this OpenBLAS runs NT products at 70% of the NN speed. */
static void times_weights_t(const pf_arch *A, int l, const float *p, const float *pt,
                            const float *in, int B, float keep, float *out)
{
    int n_in = A->sizes[l], n_out = A->sizes[l + 1];
    if (l > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, n_out, n_in, 1.0f, in, n_in,
                    pt + A->w_off[l], n_out, keep, out, n_out);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, n_out, n_in, 1.0f, in, n_in,
                    p + A->w_off[l], n_in, keep, out, n_out);
}

/* z = in W^T + b (B rows), a = f(z). */
static void forward_layer(const pf_hessian *h, int l, const float *in, int B, float *z, float *a)
{
    const pf_arch *A = h->arch;
    int n_out = A->sizes[l + 1];
    float keep = 0.0f;
    if (A->bias) {
        const float *b = h->theta + A->b_off[l];
        for (int i = 0; i < B; i++) memcpy(z + (size_t)i * n_out, b, (size_t)n_out * sizeof(float));
        keep = 1.0f;
    }
    times_weights_t(A, l, h->theta, h->theta_t, in, B, keep, z);
    activate(A->act[l], a, z, (size_t)B * n_out);
}

/* The R-operator over rows [row0, row0 + B) of this member's share; adds the block's H v (already divided by N) into m->acc, or for
 * a sparse input layer into m->acc0_t and m->rdelta_sum, and returns the
 * block's summed loss. With a cache, the activations a_l and the backward
 * signals e_l (which do not depend on v) are computed by the first product
 * and read by the later ones, which then skip the forward pass, the e
 * sgemms and, for sparse inputs, half of the input layer's gathers; the
 * numbers are the same either way. */
static double block_hvp(hvp_member *m, const pf_hessian *h, size_t row0, int B)
{
    const pf_arch *A = h->arch;
    const pf_dataset *d = h->d;
    const float *theta = h->theta, *v = h->v;
    pf_work *w = m->w;
    int L = A->n_layers, K = A->sizes[L], first = 0, reuse = h->cache_ready;
    const float *x = d->x + row0 * (size_t)d->dim;
    const int *labels = d->labels ? d->labels + row0 : NULL;
    const float *targets = d->targets ? d->targets + row0 * (size_t)K : NULL;
    float *act[PF_MAX_LAYERS], *e[PF_MAX_LAYERS];
    for (int l = 0; l < L; l++) {
        size_t width = (size_t)A->sizes[l + 1];
        act[l] = h->cache_a[l] ? h->cache_a[l] + row0 * width : w->a[l];
        e[l] = h->cache_e[l] ? h->cache_e[l] + row0 * width : m->e;
    }

    pf_sparse_view sv = h->sparse ? pf_sparse_range(h->set, row0) : (pf_sparse_view){0};
    if (h->sparse) {
        int n_out = A->sizes[1];
        const float *vt = h->wv_t + (size_t)A->sizes[0] * n_out;
        pf_sparse_gather_rows(m->rz[0], (size_t)n_out, h->wv_bg + n_out, vt, (size_t)n_out, n_out, &sv, 0,
                              B);
        if (!reuse)
            pf_sparse_gather_rows(w->z[0], (size_t)n_out, h->wv_bg, h->wv_t, (size_t)n_out, n_out, &sv, 0,
                                  B);
        if (!reuse) activate(A->act[0], act[0], w->z[0], (size_t)B * n_out);
        r_activate(A->act[0], m->ra[0], m->rz[0], act[0], (size_t)B * n_out);
        first = 1;
    }
    /* a convolutional model: x is the input of the stages, fc1 reads feat */
    const float *input = x, *rfeat = NULL;
    if (A->n_stages) {
        pf_stages_forward(w, theta, x, 0, B, 0);
        stages_r_forward(m, h, x, B);
        x = pf_fc_input(w, x);
        rfeat = m->sra[A->n_stages - 1];
    }
    if (!reuse)
        for (int l = first; l < L; l++) forward_layer(h, l, l ? act[l - 1] : x, B, w->z[l], act[l]);

    for (int l = first; l < L; l++) {
        int n_out = A->sizes[l + 1];
        const float *in = l ? act[l - 1] : x;
        float *rz = m->rz[l];
        float keep = 0.0f;
        if (A->bias) {
            const float *c = v + A->b_off[l];
            for (int i = 0; i < B; i++) memcpy(rz + (size_t)i * n_out, c, (size_t)n_out * sizeof(float));
            keep = 1.0f;
        }
        times_weights_t(A, l, v, h->v_t, in, B, keep, rz);
        if (l) times_weights_t(A, l, theta, h->theta_t, m->ra[l - 1], B, 1.0f, rz);
        else if (rfeat) times_weights_t(A, 0, theta, h->theta_t, rfeat, B, 1.0f, rz);
        r_activate(A->act[l], m->ra[l], rz, act[l], (size_t)B * n_out);
    }

    double loss = output_r(A->loss, e[L - 1], m->re, act[L - 1], m->ra[L - 1], labels, targets, B, K,
                           h->norm);
    r_delta(A->act[L - 1], w->d[L - 1], m->rd[L - 1], e[L - 1], m->re, m->rz[L - 1], act[L - 1],
            (size_t)B * K);
    for (int l = L - 1; l > 0; l--) {
        int n_in = A->sizes[l], n_out = A->sizes[l + 1];
        const float *W = theta + A->w_off[l], *V = v + A->w_off[l];
        if (!reuse)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, n_in, n_out, 1.0f, w->d[l],
                        n_out, W, n_in, 0.0f, e[l - 1], n_in);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, n_in, n_out, 1.0f, m->rd[l], n_out,
                    W, n_in, 0.0f, m->re, n_in);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, n_in, n_out, 1.0f, w->d[l], n_out,
                    V, n_in, 1.0f, m->re, n_in);
        r_delta(A->act[l - 1], w->d[l - 1], m->rd[l - 1], e[l - 1], m->re, m->rz[l - 1], act[l - 1],
                (size_t)B * n_in);
    }

    if (h->sparse) {
        /* sum_rows Rdelta^T s, feature block by feature block: the block's
         * float sums stay in L1 while the rows add their entries, then go
         * into the double accumulator */
        int dim = A->sizes[0], n_out = A->sizes[1], block = pf_sparse_block(n_out);
        for (int i = 0; i < B; i++) m->cursor[i] = sv.beg[i];
        for (int p0 = 0; p0 < dim; p0 += block) {
            int nb = dim - p0 < block ? dim - p0 : block;
            if (!pf_sparse_outer_block(m->outer, (size_t)n_out, p0, nb, m->rd[0], (size_t)n_out, n_out,
                                       &sv, B, m->cursor))
                continue;
            double *acc = m->acc0_t + (size_t)p0 * n_out;
            size_t cnt = (size_t)nb * n_out;
            for (size_t q = 0; q < cnt; q++) acc[q] += m->outer[q];
        }
        for (int i = 0; i < B; i++) {
            const float *row = m->rd[0] + (size_t)i * n_out;
            for (int o = 0; o < n_out; o++) m->rdelta_sum[o] += row[o];
        }
    }
    for (int l = first; l < L; l++) {
        int n_in = A->sizes[l], n_out = A->sizes[l + 1];
        const float *in = l ? act[l - 1] : x;
        float *hw = m->block_hv + A->w_off[l];
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n_out, n_in, B, 1.0f, m->rd[l], n_out, in,
                    n_in, 0.0f, hw, n_in);
        if (l || rfeat)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n_out, n_in, B, 1.0f, w->d[l], n_out,
                        l ? m->ra[l - 1] : rfeat, n_in, 1.0f, hw, n_in);
        double *acc = m->acc + A->w_off[l];
        size_t cnt = (size_t)n_out * n_in;
        for (size_t i = 0; i < cnt; i++) acc[i] += hw[i];
    }
    if (A->n_stages) {
        /* into the stages: sd = delta_0 W_0, R sd = Rdelta_0 W_0 + delta_0 V_0 */
        int n_in = A->sizes[0], n_out = A->sizes[1];
        float *re = m->srd[A->n_stages - 1];
        pf_feature_delta_rows(w, theta, 0, B);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, n_in, n_out, 1.0f, m->rd[0], n_out,
                    theta + A->w_off[0], n_in, 0.0f, re, n_in);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, n_in, n_out, 1.0f, w->d[0], n_out,
                    v + A->w_off[0], n_in, 1.0f, re, n_in);
        stages_r_backward(m, h, input, B);
    }
    if (A->bias)
        /* bias products: column sums of Rdelta, straight into double */
        for (int l = 0; l < L; l++) {
            int n_out = A->sizes[l + 1];
            double *accb = m->acc + A->b_off[l];
            for (int i = 0; i < B; i++) {
                const float *row = m->rd[l] + (size_t)i * n_out;
                for (int o = 0; o < n_out; o++) accb[o] += row[o];
            }
        }
    return loss;
}

static void hvp_task(void *vctx, int tid, int nt)
{
    pf_hessian *h = vctx;
    hvp_member *m = &h->m[tid];
    const pf_arch *A = h->arch;
    size_t max_batch = (size_t)m->w->max_batch;
    size_t lo, hi;
    pf_share(h->n, tid, nt, &lo, &hi);
    memset(m->acc, 0, A->n_params * sizeof *m->acc);
    int dim = A->sizes[0], n_out = A->sizes[1];
    if (h->sparse) {
        memset(m->acc0_t, 0, (size_t)dim * n_out * sizeof *m->acc0_t);
        memset(m->rdelta_sum, 0, (size_t)n_out * sizeof *m->rdelta_sum);
    }
    double loss = 0.0;
    for (size_t start = lo; start < hi; start += max_batch) {
        int B = (int)(hi - start < max_batch ? hi - start : max_batch);
        loss += block_hvp(m, h, start, B);
    }
    if (h->sparse) {
        /* W_0's product: the s part (transposed back) plus the background's */
        double *acc = m->acc + A->w_off[0];
        for (int o = 0; o < n_out; o++)
            for (int j = 0; j < dim; j++)
                acc[(size_t)o * dim + j] = m->acc0_t[(size_t)j * n_out + o] +
                                           m->rdelta_sum[o] * (double)h->background[j];
    }
    m->loss = loss;
    pf_barrier();
    /* Each member finishes its share of the parameters, summing the
     * members' accumulators in member order. */
    size_t plo, phi;
    pf_share(A->n_params, tid, nt, &plo, &phi);
    for (size_t i = plo; i < phi; i++) {
        double s = h->m[0].acc[i];
        for (int k = 1; k < nt; k++) s += h->m[k].acc[i];
        if (h->sums) { /* the other processes' parts come first (hessian_run) */
            h->sums[i] = s;
            continue;
        }
        s += h->beta * (double)h->v[i];
        if (h->out_d) h->out_d[i] = s;
        if (h->out_f) h->out_f[i] = (float)s;
    }
}

/* The cache of a_l and e_l costs 2 n sum_l sizes[l+1] floats; it is kept
 * when that fits in this budget, since repeated products then skip the
 * forward pass (for the paper's MLP on MNIST: 128 MB, ~25% less work). */
static const double CACHE_BUDGET = 1024.0 * 1024.0 * 1024.0;

static int hessian_create(pf_hessian **out, pf_work *w, const float *theta, const pf_dataset *d,
                          size_t n_samples, int cache, pf_error *err)
{
    *out = NULL;
    const pf_arch *A = w ? w->arch : NULL;
    if (!A || !theta || !d || w->max_batch < 1)
        return pf_fail(err, PF_EINPUT, "hessian: missing workspace, parameters or data");
    if (d->n == 0) return pf_fail(err, PF_EINPUT, "hessian: %s has no samples", d->name);
    if (n_samples > d->n)
        return pf_fail(err, PF_EINPUT, "hessian: asked for the first %zu samples but %s has %zu",
                       n_samples, d->name, d->n);
    if (d->dim != A->in_dim)
        return pf_fail(err, PF_EINPUT, "hessian: model takes %d inputs but %s has %d features",
                       A->in_dim, d->name, d->dim);
    int K = A->sizes[A->n_layers];
    if (A->loss == PF_LOSS_CE) {
        if (!d->labels)
            return pf_fail(err, PF_EINPUT, "hessian: cross-entropy needs class labels, %s has none",
                           d->name);
        size_t n = n_samples ? n_samples : d->n;
        for (size_t i = 0; i < n; i++)
            if (d->labels[i] < 0 || d->labels[i] >= K)
                return pf_fail(err, PF_EINPUT, "hessian: %s: label %d of sample %zu is outside 0..%d",
                               d->name, d->labels[i], i, K - 1);
    } else if (!d->targets || d->n_targets != K) {
        return pf_fail(err, PF_EINPUT, "hessian: MSE needs %d real targets per sample in %s", K,
                       d->name);
    }
    pf_hessian *h = calloc(1, sizeof *h);
    if (!h) return pf_fail(err, PF_ERUNTIME, "out of memory for the Hessian operator");
    h->arch = A;
    h->theta = theta;
    h->d = d;
    h->n = n_samples ? n_samples : d->n;
    h->norm = (double)h->n;
    h->mean_loss = NAN;
    if (pf_ctx_sharded(w->ctx)) {
        /* every product is normalized by the rows of all the processes */
        h->sums = malloc((A->n_params + 1) * sizeof *h->sums);
        if (!h->sums) {
            free(h);
            return pf_fail(err, PF_ERUNTIME, "out of memory for the Hessian operator");
        }
        int rc = pf_ctx_reduce(w->ctx, &h->norm, 1, err);
        if (rc) {
            free(h->sums);
            free(h);
            return rc;
        }
    }
    h->m[0].w = w;
    sparse_setup(h);
    h->vbuf = malloc(A->n_params * sizeof *h->vbuf);
    h->theta_t = malloc(A->n_params * sizeof *h->theta_t);
    h->v_t = malloc(A->n_params * sizeof *h->v_t);
    int ok = h->vbuf && h->theta_t && h->v_t &&
             member_init(&h->m[0], A, w, w->max_batch, h->sparse) == PF_OK;
    if (ok) transpose_hidden(A, theta, h->theta_t);
    if (ok) h->n_members = 1;
    if (ok && h->sparse) {
        size_t n0 = (size_t)A->sizes[0] * (size_t)A->sizes[1];
        h->wv_t = malloc(2 * n0 * sizeof *h->wv_t);
        h->wv_bg = malloc(2 * (size_t)A->sizes[1] * sizeof *h->wv_bg);
        ok = h->wv_t && h->wv_bg;
        if (ok) input_layer_split(h, theta, 0);
    }
    if (!ok) {
        pf_hessian_free(h);
        return pf_fail(err, PF_ERUNTIME, "out of memory for Hessian buffers (batch %d)",
                       w->max_batch);
    }
    double widths = 0.0;
    for (int l = 0; l < A->n_layers; l++) widths += A->sizes[l + 1];
    /* (a convolutional model's products run the stages each time) */
    if (cache && !A->n_stages && 2.0 * (double)h->n * widths * sizeof(float) <= CACHE_BUDGET) {
        for (int l = 0; l < A->n_layers && cache; l++) {
            size_t bytes = h->n * (size_t)A->sizes[l + 1] * sizeof(float);
            h->cache_a[l] = big_alloc(bytes);
            h->cache_e[l] = big_alloc(bytes);
            cache = h->cache_a[l] && h->cache_e[l];
        }
        if (!cache) /* not enough memory: work without it */
            for (int l = 0; l < A->n_layers; l++) {
                free(h->cache_a[l]), free(h->cache_e[l]);
                h->cache_a[l] = h->cache_e[l] = NULL;
            }
    }
    *out = h;
    return PF_OK;
}

int pf_hessian_create(pf_hessian **out, pf_work *w, const float *theta, const pf_dataset *d,
                      size_t n_samples, pf_error *err)
{
    return hessian_create(out, w, theta, d, n_samples, 1, err);
}

void pf_hessian_free(pf_hessian *h)
{
    if (!h) return;
    for (int k = 0; k < h->n_members; k++) member_free(&h->m[k], k == 0);
    free(h->vbuf);
    free(h->sums);
    free(h->theta_t), free(h->v_t);
    free(h->wv_t), free(h->wv_bg);
    for (int l = 0; l < PF_MAX_LAYERS; l++) free(h->cache_a[l]), free(h->cache_e[l]);
    free(h);
}

void pf_hessian_move(pf_hessian *h, const float *theta2)
{
    h->theta = theta2;
    transpose_hidden(h->arch, theta2, h->theta_t);
    if (h->sparse) input_layer_split(h, theta2, 0);
    h->cache_ready = 0;
    h->mean_loss = NAN;
}

size_t pf_hessian_dim(const pf_hessian *h) { return h->arch->n_params; }
size_t pf_hessian_samples(const pf_hessian *h) { return (size_t)h->norm; }
double pf_hessian_loss(const pf_hessian *h) { return h->mean_loss; }
int pf_hessian_sparse_input(const pf_hessian *h) { return h->sparse; }

/* One product with the current team; the members' buffers are grown the
 * first time a larger team is seen. */
static int hessian_run(pf_hessian *h, double beta, const float *v, float *out_f, double *out_d,
                       pf_error *err)
{
    if (!isfinite(beta)) return pf_fail(err, PF_EINPUT, "hessian: beta must be finite");
    int nt = pf_ctx_threads(h->m[0].w->ctx);
    for (int k = h->n_members; k < nt; k++) {
        if (member_init(&h->m[k], h->arch, NULL, h->m[0].w->max_batch, h->sparse) != PF_OK)
            return pf_fail(err, PF_ERUNTIME, "out of memory for Hessian buffers of %d threads", nt);
        h->n_members = k + 1;
    }
    if (h->sparse) input_layer_split(h, v, 1);
    transpose_hidden(h->arch, v, h->v_t);
    h->v = v;
    h->beta = beta;
    h->out_f = out_f;
    h->out_d = out_d;
    if (nt == 1)
        hvp_task(h, 0, 1);
    else
        pf_parallel(h->m[0].w->ctx, hvp_task, h);
    double loss = 0.0;
    for (int k = 0; k < nt; k++) loss += h->m[k].loss;
    h->cache_ready = h->cache_a[0] != NULL;
    if (h->sums) {
        /* H_E v and the loss summed over the processes, then + beta v */
        size_t n = h->arch->n_params;
        h->sums[n] = loss;
        int rc = pf_ctx_reduce(h->m[0].w->ctx, h->sums, n + 1, err);
        if (rc) return rc;
        for (size_t i = 0; i < n; i++) {
            double s = h->sums[i] + beta * (double)v[i];
            if (out_d) out_d[i] = s;
            if (out_f) out_f[i] = (float)s;
        }
        loss = h->sums[n];
    }
    h->mean_loss = loss / h->norm;
    return PF_OK;
}

int pf_hessian_apply(pf_hessian *h, double beta, const float *v, float *hv, pf_error *err)
{
    return hessian_run(h, beta, v, hv, NULL, err);
}

int pf_hessian_matvec(void *ctx, const double *v, double *hv, pf_error *err)
{
    pf_hessian *h = ctx;
    for (size_t i = 0; i < h->arch->n_params; i++) h->vbuf[i] = (float)v[i];
    return hessian_run(h, 0.0, h->vbuf, NULL, hv, err);
}

int pf_hvp(pf_work *w, const float *theta, const pf_dataset *d, size_t n_samples, double beta,
           const float *v, float *hv, pf_error *err)
{
    if (!v || !hv) return pf_fail(err, PF_EINPUT, "hessian: missing vector");
    pf_hessian *h;
    int rc = hessian_create(&h, w, theta, d, n_samples, 0, err); /* one product: no cache */
    if (rc) return rc;
    rc = pf_hessian_apply(h, beta, v, hv, err);
    pf_hessian_free(h);
    return rc;
}

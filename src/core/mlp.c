/* The model's fast path: forward, loss and backward over a batch with
 * sgemm (a convolutional model's stages first, stages.c).
 *
 * Layer l (0-based) maps a_{l-1} (B, in) to z_l = a_{l-1} W_l^T + b_l (B, out)
 * and a_l = act_l(z_l); a_{-1} is the input batch. The loss reads a_{L-1}.
 * Backward carries delta_l = dLoss/dz_l down the layers:
 *   dW_l += delta_l^T a_{l-1},  db_l += sum_rows delta_l,
 *   delta_{l-1} = (delta_l W_l) * act'_{l-1}(z_{l-1}).
 * It is tested against the double-precision reference in reference.c.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/core.h"
#include "act.h"
#include "sparse.h"
#include "stages.h"
#include "team.h"

int pf_work_init(pf_work *w, pf_ctx *ctx, const pf_arch *arch, int max_batch, pf_error *err)
{
    memset(w, 0, sizeof *w);
    w->arch = arch;
    w->ctx = ctx;
    w->max_batch = max_batch;
    w->input_layer = PF_INPUT_AUTO;
    size_t B = (size_t)max_batch;
    int ok = 1;
    for (int l = 0; l < arch->n_layers; l++) {
        size_t n = B * (size_t)arch->sizes[l + 1] * sizeof(float);
        /* on cache lines: members write neighbouring shares of them */
        w->z[l] = pf_line_alloc(n);
        w->a[l] = pf_line_alloc(n);
        w->d[l] = pf_line_alloc(n);
        ok = ok && w->z[l] && w->a[l] && w->d[l];
    }
    ok = ok && pf_stages_alloc(w, pf_ctx_threads(ctx)) == PF_OK;
    w->xbuf = malloc(B * (size_t)arch->in_dim * sizeof(float));
    w->ybuf = malloc(B * (size_t)arch->sizes[arch->n_layers] * sizeof(float));
    w->lbuf = malloc(B * sizeof(int));
    if (!ok || !w->xbuf || !w->ybuf || !w->lbuf) {
        pf_work_free(w);
        return pf_fail(err, PF_ERUNTIME, "out of memory for a batch of %d", max_batch);
    }
    return PF_OK;
}

void pf_work_free(pf_work *w)
{
    for (int l = 0; l < PF_MAX_LAYERS; l++) {
        free(w->z[l]);
        free(w->a[l]);
        free(w->d[l]);
    }
    free(w->xbuf);
    free(w->ybuf);
    free(w->lbuf);
    pf_stages_free(w);
    if (w->own_sparse_cache) pf_sparse_cache_free(w->sparse_cache);
    pf_sparse_scratch_free(w->sparse_scratch);
    memset(w, 0, sizeof *w);
}

void pf_forward_cols(pf_work *w, const float *theta, const float *x, int B, int l, int o0, int o1)
{
    const pf_arch *A = w->arch;
    int n_in = A->sizes[l], n_out = A->sizes[l + 1], cols = o1 - o0;
    if (B <= 0 || cols <= 0) return;
    const float *in = l ? w->a[l - 1] : x;
    float *z = w->z[l] + o0, *a = w->a[l] + o0;
    float beta = 0.0f;
    if (A->bias) {
        const float *b = theta + A->b_off[l] + o0;
        for (int i = 0; i < B; i++) memcpy(z + (size_t)i * n_out, b, (size_t)cols * sizeof(float));
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, cols, n_in, 1.0f, in, n_in,
                theta + A->w_off[l] + (size_t)o0 * n_in, n_in, beta, z, n_out);
    if (cols == n_out)
        activate(A->act[l], a, z, (size_t)B * n_out);
    else
        for (int i = 0; i < B; i++)
            activate(A->act[l], a + (size_t)i * n_out, z + (size_t)i * n_out, (size_t)cols);
}

void pf_forward_rows(pf_work *w, const float *theta, const float *x, int l, int r0, int r1)
{
    const pf_arch *A = w->arch;
    int n_in = A->sizes[l], n_out = A->sizes[l + 1], rows = r1 - r0;
    if (rows <= 0) return;
    const float *in = (l ? w->a[l - 1] : x) + (size_t)r0 * n_in;
    float *z = w->z[l] + (size_t)r0 * n_out, *a = w->a[l] + (size_t)r0 * n_out;
    float beta = 0.0f;
    if (A->bias) {
        const float *b = theta + A->b_off[l];
        for (int i = 0; i < rows; i++) memcpy(z + (size_t)i * n_out, b, (size_t)n_out * sizeof(float));
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n_out, n_in, 1.0f, in, n_in,
                theta + A->w_off[l], n_in, beta, z, n_out);
    activate(A->act[l], a, z, (size_t)rows * n_out);
}

void pf_delta_rows(pf_work *w, const float *theta, int l, int r0, int r1)
{
    const pf_arch *A = w->arch;
    int n_in = A->sizes[l], n_out = A->sizes[l + 1], rows = r1 - r0;
    if (rows <= 0 || l == 0) return;
    size_t r = (size_t)r0 * n_in;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, n_in, n_out, 1.0f,
                w->d[l] + (size_t)r0 * n_out, n_out, theta + A->w_off[l], n_in, 0.0f, w->d[l - 1] + r, n_in);
    times_act_grad(A->act[l - 1], w->d[l - 1] + r, w->z[l - 1] + r, w->a[l - 1] + r, (size_t)rows * n_in);
}

void pf_forward_block(pf_work *w, const float *theta, const float *x, int B, const pf_sparse_view *v,
                      const float *wt, const float *c)
{
    if (w->sparse_scratch) w->sparse_scratch->batch_x = NULL;
    int first = 0;
    if (w->arch->n_stages) {
        pf_stages_forward(w, theta, x, 0, B, 0);
        x = pf_fc_input(w, x);
    }
    if (v) {
        pf_sparse_forward0(w, v, B, wt, (size_t)w->arch->sizes[1], c, 0, w->arch->sizes[1]);
        first = 1;
    }
    for (int l = first; l < w->arch->n_layers; l++)
        pf_forward_cols(w, theta, x, B, l, 0, w->arch->sizes[l + 1]);
}

int pf_sparse_weights(const pf_arch *A, const float *theta, const float *background, float *wt, float *c)
{
    int dim = A->sizes[0], n_out = A->sizes[1];
    pf_transpose(wt, theta + A->w_off[0], n_out, dim);
    pf_input_background(c, wt, A->bias ? theta + A->b_off[0] : NULL, background, dim, n_out, 0, n_out);
    return PF_OK;
}

void pf_forward(pf_work *w, const float *theta, const float *x, int B)
{
    int sparse = w->input_layer == PF_INPUT_SPARSE && !w->arch->n_stages;
    pf_sparse_scratch *s = sparse ? pf_sparse_scratch_get(w) : w->sparse_scratch;
    if (s) s->batch_x = NULL;
    if (sparse && s && B > 0) {
        /* the batch's own sparse form, kept for pf_backward */
        pf_sparse_free(&s->batch);
        if (pf_sparse_probe(&s->batch, x, (size_t)B, w->arch->sizes[0]) == PF_OK &&
            pf_sparse_build(&s->batch) == PF_OK) {
            pf_sparse_weights(w->arch, theta, s->batch.background, s->wt, s->c);
            pf_sparse_view v = pf_sparse_range(&s->batch, 0);
            pf_forward_block(w, theta, x, B, &v, s->wt, s->c);
            s->batch_x = x;
            s->batch_n = B;
            return;
        }
    }
    pf_forward_block(w, theta, x, B, NULL, NULL, NULL);
}

/* Per-sample loss of row i of the output; if dout is non-NULL it receives
 * d(loss_i)/d(out) * scale. CE uses a log-sum-exp in double. */
static double sample_loss(pf_loss loss, const float *out, int K, int label, const float *target,
                          float *dout, double scale, int *hit)
{
    if (loss == PF_LOSS_CE) {
        int arg = 0;
        for (int k = 1; k < K; k++)
            if (out[k] > out[arg]) arg = k;
        double mx = out[arg], sum = 0.0;
        for (int k = 0; k < K; k++) sum += exp((double)out[k] - mx);
        double lse = mx + log(sum);
        if (hit) *hit = (arg == label);
        if (dout)
            for (int k = 0; k < K; k++)
                dout[k] = (float)((exp((double)out[k] - lse) - (k == label)) * scale);
        return lse - (double)out[label];
    }
    double s = 0.0;
    for (int k = 0; k < K; k++) {
        double r = (double)out[k] - (double)target[k];
        s += r * r;
        if (dout) dout[k] = (float)(r * scale);
    }
    if (hit) *hit = 0;
    return 0.5 * s;
}

double pf_loss_value(const pf_work *w, const int *labels, const float *targets, int B,
                     unsigned char *correct)
{
    const pf_arch *A = w->arch;
    int K = A->sizes[A->n_layers];
    const float *out = w->a[A->n_layers - 1];
    double total = 0.0;
    for (int i = 0; i < B; i++) {
        int hit = 0;
        total += sample_loss(A->loss, out + (size_t)i * K, K, labels ? labels[i] : 0,
                             targets ? targets + (size_t)i * K : NULL, NULL, 0.0, &hit);
        if (correct) correct[i] = (unsigned char)hit;
    }
    return total / B;
}

double pf_output_delta_rows(pf_work *w, const int *labels, const float *targets, int r0, int r1,
                            double norm)
{
    const pf_arch *A = w->arch;
    int L = A->n_layers, K = A->sizes[L], B = r1 - r0;
    if (B <= 0) return 0.0;
    const float *out = w->a[L - 1] + (size_t)r0 * K;
    float *delta = w->d[L - 1] + (size_t)r0 * K;
    double total = 0.0;
    for (int i = 0; i < B; i++)
        total += sample_loss(A->loss, out + (size_t)i * K, K, labels ? labels[r0 + i] : 0,
                             targets ? targets + (size_t)(r0 + i) * K : NULL, delta + (size_t)i * K,
                             1.0 / norm, NULL);
    times_act_grad(A->act[L - 1], delta, w->z[L - 1] + (size_t)r0 * K, out, (size_t)B * K);
    return total;
}

void pf_delta_cols(pf_work *w, const float *theta, int B, int l, int j0, int j1)
{
    const pf_arch *A = w->arch;
    int n_in = A->sizes[l], n_out = A->sizes[l + 1], cols = j1 - j0;
    if (B <= 0 || cols <= 0 || l == 0) return;
    float *below = w->d[l - 1] + j0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, cols, n_out, 1.0f, w->d[l], n_out,
                theta + A->w_off[l] + j0, n_in, 0.0f, below, n_in);
    for (int i = 0; i < B; i++) {
        size_t r = (size_t)i * n_in + (size_t)j0;
        times_act_grad(A->act[l - 1], w->d[l - 1] + r, w->z[l - 1] + r, w->a[l - 1] + r, (size_t)cols);
    }
}

void pf_weight_grad(pf_work *w, const float *x, int B, int l, int o0, int o1, float *grad,
                    int overwrite)
{
    const pf_arch *A = w->arch;
    int n_in = A->sizes[l], n_out = A->sizes[l + 1], rows = o1 - o0;
    if (rows <= 0 || B <= 0) return;
    const float *in = l ? w->a[l - 1] : x;
    const float *delta = w->d[l] + o0;
    /* dW[o0:o1] = delta[:, o0:o1]^T in  (rows, n_in) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, n_in, B, 1.0f, delta, n_out, in, n_in,
                overwrite ? 0.0f : 1.0f, grad + A->w_off[l] + (size_t)o0 * n_in, n_in);
    if (!A->bias) return;
    /* db = column sums of delta, in double, a chunk of columns at a time. */
    enum { COLS = 256 };
    double cs[COLS];
    float *gb = grad + A->b_off[l] + o0;
    for (int c0 = 0; c0 < rows; c0 += COLS) {
        int nc = rows - c0 < COLS ? rows - c0 : COLS;
        for (int j = 0; j < nc; j++) cs[j] = 0.0;
        for (int i = 0; i < B; i++) {
            const float *row = delta + (size_t)i * n_out + c0;
            for (int j = 0; j < nc; j++) cs[j] += row[j];
        }
        for (int j = 0; j < nc; j++) gb[c0 + j] = (overwrite ? 0.0f : gb[c0 + j]) + (float)cs[j];
    }
}

double pf_backward_block(pf_work *w, const float *theta, const float *x, const int *labels,
                         const float *targets, int B, double norm, float *grad, int overwrite)
{
    const pf_arch *A = w->arch;
    pf_sparse_scratch *s = w->sparse_scratch;
    int sparse = s && s->batch_x == x && s->batch_n == B;
    double total = pf_output_delta_rows(w, labels, targets, 0, B, norm);
    for (int l = A->n_layers - 1; l > 0; l--) pf_delta_cols(w, theta, B, l, 0, A->sizes[l]);
    for (int l = sparse; l < A->n_layers; l++)
        pf_weight_grad(w, pf_fc_input(w, x), B, l, 0, w->arch->sizes[l + 1], grad, overwrite);
    if (A->n_stages) {
        pf_feature_delta_rows(w, theta, 0, B);
        pf_stages_backward(w, theta, x, 0, B, grad, overwrite, 0);
    }
    if (sparse) {
        /* the input layer's gradient, transposed while it is summed */
        int dim = A->sizes[0], n_out = A->sizes[1];
        pf_sparse_view v = pf_sparse_range(&s->batch, 0);
        if (!overwrite) pf_transpose(s->gt, grad + A->w_off[0], n_out, dim);
        pf_sparse_grad0(w, &v, B, s->gt, A->bias ? grad + A->b_off[0] : NULL, 0, n_out, overwrite,
                        s->cursor);
        pf_transpose(grad + A->w_off[0], s->gt, dim, n_out);
    }
    return total;
}

double pf_backward(pf_work *w, const float *theta, const float *x, const int *labels,
                   const float *targets, int B, float *grad)
{
    return pf_backward_block(w, theta, x, labels, targets, B, (double)B, grad, 0) / B;
}

/* Full-dataset passes split the samples into one contiguous share per team
 * member; each member walks its share in blocks with its own workspace and
 * gradient, and the partial gradients are summed in member order. With a
 * sparse input layer, every member reads the one W_0^T and background term
 * (set up before the pass) and sums its input-layer gradient transposed. */
typedef struct {
    pf_work *works;       /* (n_threads); works[0] is the caller's */
    float **grads;        /* (n_threads) or NULL */
    double *loss;         /* (n_threads) summed losses */
    const float *theta;
    const pf_dataset *d;
    double norm;          /* samples the mean is over (d->n, or all the processes') */
    size_t n_params;
    const pf_sparse_set *set;   /* sparse input layer, or NULL */
    const float *wt, *c;
} pass_ctx;

static void pass_task(void *vctx, int tid, int nt)
{
    pass_ctx *c = vctx;
    pf_work *w = &c->works[tid];
    const pf_arch *A = w->arch;
    const pf_dataset *d = c->d;
    int K = A->sizes[A->n_layers];
    size_t lo, hi;
    pf_share(d->n, tid, nt, &lo, &hi);
    float *grad = c->grads ? c->grads[tid] : NULL;
    if (grad && hi == lo) memset(grad, 0, c->n_params * sizeof *grad);
    float *gt = c->set && grad ? w->sparse_scratch->gt : NULL;
    double total = 0.0;
    for (size_t start = lo; start < hi; start += (size_t)w->max_batch) {
        int B = (int)(hi - start < (size_t)w->max_batch ? hi - start : (size_t)w->max_batch);
        const float *x = d->x + start * (size_t)d->dim;
        const int *lab = d->labels ? d->labels + start : NULL;
        const float *tgt = d->targets ? d->targets + start * (size_t)K : NULL;
        pf_sparse_view v = c->set ? pf_sparse_range(c->set, start) : (pf_sparse_view){0};
        pf_forward_block(w, c->theta, x, B, c->set ? &v : NULL, c->wt, c->c);
        if (!grad) {
            total += pf_loss_value(w, lab, tgt, B, NULL) * B;
            continue;
        }
        int first = start == lo;
        if (!c->set) {
            total += pf_backward_block(w, c->theta, x, lab, tgt, B, c->norm, grad, first);
            continue;
        }
        total += pf_output_delta_rows(w, lab, tgt, 0, B, c->norm);
        for (int l = A->n_layers - 1; l > 0; l--) pf_delta_cols(w, c->theta, B, l, 0, A->sizes[l]);
        for (int l = 1; l < A->n_layers; l++) pf_weight_grad(w, x, B, l, 0, A->sizes[l + 1], grad, first);
        pf_sparse_grad0(w, &v, B, gt, A->bias ? grad + A->b_off[0] : NULL, 0, A->sizes[1], first,
                        w->sparse_scratch->cursor);
    }
    if (gt && hi > lo) pf_transpose(grad + A->w_off[0], gt, A->sizes[0], A->sizes[1]);
    c->loss[tid] = total;
    if (!grad) return;
    pf_barrier();
    size_t plo, phi;
    pf_share(c->n_params, tid, nt, &plo, &phi);
    for (int k = 1; k < nt; k++)
        for (size_t i = plo; i < phi; i++) c->grads[0][i] += c->grads[k][i];
}

/* A member's scratch for the sparse input layer's blocks, or NULL. */
static pf_sparse_scratch *sparse_member(pf_work *w, const pf_sparse_set *set)
{
    (void)set;
    return pf_sparse_scratch_get(w);
}

/* Data-parallel: this process's gradient (float) and loss sum, summed over
 * the processes in double and the gradient rounded back to float. Returns
 * the summed loss, NaN (and the gradient NaN) if the reducer failed. */
static double reduce_gradient(pf_ctx *ctx, float *grad, size_t n, double loss)
{
    size_t m = grad ? n : 0;
    double *buf = malloc((m + 1) * sizeof *buf);
    int rc = PF_ERUNTIME;
    if (buf) {
        for (size_t i = 0; i < m; i++) buf[i] = (double)grad[i];
        buf[m] = loss;
        rc = pf_ctx_reduce(ctx, buf, m + 1, NULL);
    }
    for (size_t i = 0; i < m; i++) grad[i] = rc ? NAN : (float)buf[i];
    loss = rc ? NAN : buf[m];
    free(buf);
    return loss;
}

double pf_full_gradient(pf_work *w, const float *theta, const pf_dataset *d, float *grad)
{
    const pf_arch *A = w->arch;
    int nt = pf_ctx_threads(w->ctx);
    pf_work works[PF_MAX_THREADS];
    float *grads[PF_MAX_THREADS];
    double loss[PF_MAX_THREADS];
    int use;
    const pf_sparse_set *set = pf_sparse_find(w, d->x, d->n, d->dim, &use);
    pf_sparse_scratch *s = set ? sparse_member(w, set) : NULL;
    if (!s) set = NULL; /* out of memory for the sparse layer: run dense */
    works[0] = *w;
    grads[0] = grad;
    int ready = 1;
    for (int k = 1; k < nt; k++) {
        if (pf_work_init(&works[k], w->ctx, A, w->max_batch, NULL) != PF_OK) break;
        grads[k] = grad ? malloc(A->n_params * sizeof(float)) : NULL;
        ready = k + 1;
        if ((grad && !grads[k]) || (set && grad && !sparse_member(&works[k], set))) {
            pf_work_free(&works[k]);
            free(grads[k]);
            ready = k;
            break;
        }
    }
    if (ready < nt) nt = 1; /* out of memory for the team: do it alone */
    if (set) pf_sparse_weights(A, theta, set->background, s->wt, s->c);
    double norm = (double)d->n;
    int sharded = pf_ctx_sharded(w->ctx);
    /* data-parallel: the mean is over every process's rows */
    if (sharded && pf_ctx_reduce(w->ctx, &norm, 1, NULL)) norm = NAN;
    pass_ctx c = {works, grad ? grads : NULL, loss, theta, d, norm, A->n_params, set,
                  set ? s->wt : NULL, set ? s->c : NULL};
    if (nt == 1)
        pass_task(&c, 0, 1);
    else
        pf_parallel(w->ctx, pass_task, &c);
    double total = 0.0;
    for (int k = 0; k < nt; k++) total += loss[k];
    for (int k = 1; k < ready; k++) {
        pf_work_free(&works[k]);
        if (grad) free(grads[k]);
    }
    if (sharded) total = reduce_gradient(w->ctx, grad, A->n_params, total);
    return total / norm;
}

/* ---- shifted L2 ---------------------------------------------------------- */

double pf_l2_value(const float *theta, const float *anchor, size_t n, double beta)
{
    double r = pf_distance(theta, anchor, n);
    return 0.5 * beta * r * r;
}

void pf_l2_add_grad(float *grad, const float *theta, const float *anchor, size_t n, double beta)
{
    if (beta == 0.0) return;
    float b = (float)beta;
    if (anchor)
        for (size_t i = 0; i < n; i++) grad[i] += b * (theta[i] - anchor[i]);
    else
        for (size_t i = 0; i < n; i++) grad[i] += b * theta[i];
}

double pf_distance(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    if (b)
        for (size_t i = 0; i < n; i++) {
            double d = (double)a[i] - (double)b[i];
            s += d * d;
        }
    else
        for (size_t i = 0; i < n; i++) s += (double)a[i] * (double)a[i];
    return sqrt(s);
}

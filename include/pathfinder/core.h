/* pathfinder core: the numerical layer.
 *
 * Model (MLP, or convolution and pooling stages then linear layers),
 * losses, shifted L2, optimizers, RNG and errors. Nothing here reads files
 * or knows about the command line; everything above builds on it.
 *
 * Parameters live in one flat float vector in PyTorch order:
 *   conv1.weight (out, in, k, k), conv1.bias (out), conv2..., then
 *   fc1.weight (out1, in) row-major, fc1.bias (out1), fc2.weight (out2, out1), ...
 * so the shifted L2 term, distances and optimizers are single loops over it.
 */
#ifndef PATHFINDER_CORE_H
#define PATHFINDER_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PF_VERSION "0.1.0"

/* ---------------------------------------------------------------- errors */

/* Exit codes the command-line tool uses; library calls return them too. */
enum { PF_OK = 0, PF_ERUNTIME = 1, PF_EINPUT = 2 };

typedef struct {
    int code;       /* PF_OK, PF_ERUNTIME or PF_EINPUT */
    char msg[512];  /* one line, no trailing newline */
} pf_error;

/* Fill err (if non-NULL) with a printf-style message; returns code. */
int pf_fail(pf_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void pf_error_clear(pf_error *err);

/* ------------------------------------------------------------------- rng */

/* xoshiro256** seeded through splitmix64: small, fast, and its whole state
 * is four words, so it can be saved and restored exactly. */
typedef struct {
    uint64_t s[4];
} pf_rng;

void pf_rng_seed(pf_rng *rng, uint64_t seed);
uint64_t pf_rng_next(pf_rng *rng);
double pf_rng_uniform(pf_rng *rng);              /* [0, 1) with 53 bits */
uint64_t pf_rng_below(pf_rng *rng, uint64_t n);  /* unbiased, [0, n) */
void pf_rng_shuffle(pf_rng *rng, int *idx, size_t n);

/* ------------------------------------------------------------------ arch */

#define PF_MAX_LAYERS 16
#define PF_MAX_WIDTH (1 << 24)   /* units in one layer */
#define PF_MAX_THREADS 64

typedef enum { PF_ACT_SIGMOID, PF_ACT_TANH, PF_ACT_RELU, PF_ACT_LINEAR } pf_act;
typedef enum { PF_LOSS_CE, PF_LOSS_MSE } pf_loss;

/* Shapes of a convolution and of a pooling (conv.h has their kernels). */
typedef struct {
    int in_c, in_h, in_w;      /* input channels and size */
    int out_c, k, stride, pad; /* output channels, kernel, stride, zero padding */
    int out_h, out_w;          /* output size */
} pf_conv_shape;

typedef struct {
    int c, in_h, in_w;         /* channels and input size */
    int k;                     /* window size = stride */
    int out_h, out_w;
} pf_pool_shape;

/* A convolutional model is a sequence of stages (convolutions, each with
 * its activation, and poolings) on a C x H x W input, flattened into the
 * linear layers that follow. */
#define PF_MAX_STAGES 16
typedef enum { PF_STAGE_CONV, PF_STAGE_MAXPOOL, PF_STAGE_AVGPOOL } pf_stage_kind;

typedef struct {
    pf_stage_kind kind;
    pf_conv_shape conv;        /* PF_STAGE_CONV */
    pf_pool_shape pool;        /* the poolings */
    pf_act act;                /* applied after a convolution */
    size_t in_size, out_size;  /* floats of one sample in and out */
    size_t w_off, b_off;       /* conv{k}.weight [out, in, k, k] and conv{k}.bias in theta */
} pf_stage;

typedef struct {
    int n_layers;                    /* number of linear layers */
    int sizes[PF_MAX_LAYERS + 1];    /* sizes[0] = inputs of fc1, sizes[n_layers] = outputs */
    pf_act act[PF_MAX_LAYERS];       /* activation applied after layer l */
    int bias;                        /* 1: every layer has a bias */
    pf_loss loss;
    size_t n_params;
    size_t w_off[PF_MAX_LAYERS];     /* offset of fc{l+1}.weight in theta */
    size_t b_off[PF_MAX_LAYERS];     /* offset of fc{l+1}.bias (if bias) */
    /* The input: in_dim features per sample; a shaped spec ("1x28x28,...")
     * gives in_c x in_h x in_w (else they are 0). The stages run before
     * fc1 (none in an MLP, where in_dim = sizes[0]); their parameters come
     * first in theta, conv1.weight at 0. */
    int in_dim;
    int in_c, in_h, in_w;
    int n_stages, n_conv;
    pf_stage stage[PF_MAX_STAGES];
} pf_arch;

/* Build an arch from layer sizes; acts has n_layers entries. Fills offsets. */
int pf_arch_init(pf_arch *a, int n_layers, const int *sizes, const pf_act *acts,
                 int bias, pf_loss loss, pf_error *err);
/* "784,128,128,10" -> sizes. */
int pf_arch_parse_sizes(const char *spec, int *n_layers, int *sizes, pf_error *err);
/* Any architecture spec, with its activations (as pf_arch_parse_acts, over
 * the convolutions and then the linear layers):
 *   "784,128,128,10"                      an MLP (exactly pf_arch_init's)
 *   "1x28x28,conv8:3,maxpool2,conv16:3:1:1,avgpool2,fc32,fc10"
 * CxHxW is the input; convN:K[:S[:P]] has N channels, kernel K, stride S
 * (1) and zero padding P (0); maxpoolK and avgpoolK pool K x K windows
 * with stride K; "flatten" may be written, and is implied before the first
 * fcN (a linear layer of N outputs; the last one is the output). PF_EINPUT
 * with a one-line message naming the spec and the layer at fault. */
int pf_arch_parse(pf_arch *a, const char *spec, const char *acts, int bias, pf_loss loss,
                  pf_error *err);
/* Replace the activations of every layer with those of the list acts. */
int pf_arch_set_acts(pf_arch *a, const char *acts, pf_error *err);
/* 1 when the model has convolution or pooling stages. */
int pf_arch_is_cnn(const pf_arch *a);
/* "sigmoid" (hidden layers; output linear) or one name per layer. */
int pf_arch_parse_acts(const char *spec, int n_layers, pf_act *acts, pf_error *err);
int pf_act_from_name(const char *name, pf_act *act);
const char *pf_act_name(pf_act act);
const char *pf_loss_name(pf_loss loss);
int pf_loss_from_name(const char *name, pf_loss *loss);
/* Text forms used in checkpoint metadata: "784,128,10" (or the shaped
 * spec pf_arch_parse reads), "sigmoid,linear" (convolutions first). */
void pf_arch_sizes_str(const pf_arch *a, char *buf, size_t n);
void pf_arch_acts_str(const pf_arch *a, char *buf, size_t n);
int pf_arch_equal(const pf_arch *a, const pf_arch *b);

/* Bytes training needs (parameters, gradient, optimizer and path copies,
 * workspaces), and a check of that against the machine's memory: PF_EINPUT
 * with the model's size when it cannot fit. */
double pf_train_memory(const pf_arch *a, int batch, size_t n_train);
int pf_check_memory(const pf_arch *a, int batch, size_t n_train, pf_error *err);

/* PyTorch's nn.Conv2d and nn.Linear default init: weights and biases
 * uniform in +-1/sqrt(fan_in) (fan_in = in * k * k for a convolution),
 * drawn layer by layer in theta's order, weight then bias. */
void pf_init_params(const pf_arch *a, float *theta, pf_rng *rng);

/* --------------------------------------------------------------- dataset */

/* An in-memory dataset: n samples of dim features, row-major floats.
 * Classification: labels in [0, n_classes). Regression: targets (n, n_targets). */
typedef struct {
    size_t n;
    int dim;
    float *x;          /* (n, dim) */
    int *labels;       /* (n) or NULL */
    float *targets;    /* (n, n_targets) or NULL */
    int n_classes;     /* > 0 for classification */
    int n_targets;     /* > 0 for regression */
    char name[256];
} pf_dataset;

void pf_dataset_free(pf_dataset *d);
/* Output width a model needs for this dataset. */
int pf_dataset_out_dim(const pf_dataset *d);
/* Copy rows idx[0..m) into a new dataset (a fixed subset). */
int pf_dataset_subset(pf_dataset *dst, const pf_dataset *src, const int *idx, size_t m,
                      pf_error *err);
/* Split off round(fraction * n) samples, drawn by a seeded shuffle, as a
 * validation set; rest holds the others. Both keep the samples' order. */
int pf_dataset_split(const pf_dataset *src, double fraction, uint64_t seed, pf_dataset *rest,
                     pf_dataset *val, pf_error *err);
/* Keep, in place, the first n_keep samples (0: all), then of those rank's
 * contiguous block [n_keep*rank/size, n_keep*(rank+1)/size) of `size`
 * shares; the other rows are freed. PF_EINPUT if any share would be empty
 * (fewer rows than shares), whichever rank asks. */
int pf_dataset_shard(pf_dataset *d, size_t n_keep, int rank, int size, pf_error *err);

/* ------------------------------------------------------------------- mlp */

/* A context: a thread team (see "contexts" below). */
typedef struct pf_ctx pf_ctx;

/* How the input layer runs. Image inputs are mostly background (81% of
 * MNIST's pixels are 0, normalized to one constant): x = b + s with b the
 * per-feature majority value and s sparse, and the input layer is exactly
 * s W^T + (W b + bias) forward and s^T delta + b (1^T delta) for its weight
 * gradient, so it can run on the nonzeros of s alone. The results agree
 * with the dense sgemm path to float rounding.
 *   PF_INPUT_AUTO:   sparse on datasets where at most 30% of the entries
 *                    differ from the background (MNIST: 19%; Fashion-MNIST
 *                    at 50% and tabular data run dense); batches handed to
 *                    pf_forward directly run dense
 *   PF_INPUT_SPARSE: always sparse (correct on any data, fast on sparse data)
 *   PF_INPUT_DENSE:  always the dense sgemm */
typedef enum { PF_INPUT_AUTO, PF_INPUT_SPARSE, PF_INPUT_DENSE } pf_input_layer;
const char *pf_input_layer_name(pf_input_layer m);   /* "auto", "sparse", "dense" */
int pf_input_layer_from_name(const char *name, pf_input_layer *m);
/* The path `requested` takes on n rows x of dim features (for a model with
 * that input width): PF_INPUT_SPARSE or PF_INPUT_DENSE. Deterministic: it
 * depends on the data only (up to 1024 evenly spread rows are probed). */
pf_input_layer pf_input_layer_resolve(pf_input_layer requested, const float *x, size_t n, int dim);

/* Workspace for forward/backward over at most max_batch samples, and the
 * context whose team runs the passes over datasets made with it. */
typedef struct {
    const pf_arch *arch;
    pf_ctx *ctx;               /* NULL: one thread */
    int max_batch;
    pf_input_layer input_layer; /* PF_INPUT_AUTO after pf_work_init; set it to force a path */
    float *z[PF_MAX_LAYERS];   /* pre-activations (B, sizes[l+1]) */
    float *a[PF_MAX_LAYERS];   /* activations     (B, sizes[l+1]) */
    float *d[PF_MAX_LAYERS];   /* deltas dLoss/dz_l (B, sizes[l+1]) */
    float *xbuf;               /* gathered inputs (B, in_dim) */
    /* The stages of a convolutional model: convolutions' pre-activations,
     * every stage's output and its gradient dLoss/d(output) (B, out_size),
     * max pooling's winners, and im2col room for each team member. The
     * last stage's output is the input of fc1. */
    float *sz[PF_MAX_STAGES], *sa[PF_MAX_STAGES], *sd[PF_MAX_STAGES];
    int *arg[PF_MAX_STAGES];
    float *conv_work;
    size_t conv_work_size;     /* floats of one member's share */
    float *ybuf;               /* gathered regression targets (B, n_out) */
    int *lbuf;                 /* gathered labels (B) */
    /* Internal to the sparse input layer: the sparse forms of the datasets
     * this workspace ran on (kept until pf_work_free; a dataset's array
     * must not be changed in place while a workspace that saw it is used),
     * whether this workspace owns that cache, and its scratch. */
    struct pf_sparse_cache *sparse_cache;
    int own_sparse_cache;
    struct pf_sparse_scratch *sparse_scratch;
} pf_work;

int pf_work_init(pf_work *w, pf_ctx *ctx, const pf_arch *arch, int max_batch, pf_error *err);
void pf_work_free(pf_work *w);

/* Forward B rows of x (B, sizes[0]); logits end up in w->a[n_layers-1].
 * The input layer runs sparse only if w->input_layer is PF_INPUT_SPARSE
 * (pf_backward then uses the same sparse form of x). */
void pf_forward(pf_work *w, const float *theta, const float *x, int B);

/* The pieces of a training step on a dense input layer, so that team
 * members can share one batch.
 * Each member owns a share [o0, o1) of every layer's output units: it
 * computes those columns of z_l and a_l for the whole batch, the matching
 * columns of the deltas, and the gradient rows of its units, so the slices
 * of W, of the gradient and of the optimizer state it touches stay in its
 * own cache. Members meet at a barrier after each layer. */
void pf_forward_cols(pf_work *w, const float *theta, const float *x, int B, int l, int o0, int o1);
/* The same split by rows: layer l's z_l and a_l of rows [r0, r1), all
 * units; and the deltas of layer l-1 of rows [r0, r1) from those of layer
 * l. A member that owns a share of the rows runs the forward pass, the
 * output deltas and the deltas down to layer 0 on it alone, and meets the
 * others once, before the gradient (which needs every row). */
void pf_forward_rows(pf_work *w, const float *theta, const float *x, int l, int r0, int r1);
void pf_delta_rows(pf_work *w, const float *theta, int l, int r0, int r1);
/* Output deltas dLoss/dz_{L-1} of rows [r0, r1), with the loss normalized
 * by norm samples; returns the summed loss of those rows. */
double pf_output_delta_rows(pf_work *w, const int *labels, const float *targets, int r0, int r1,
                            double norm);
/* Columns [j0, j1) of the deltas of layer l-1, from the deltas of layer l. */
void pf_delta_cols(pf_work *w, const float *theta, int B, int l, int j0, int j1);
/* Gradient rows [o0, o1) of layer l (weights and bias) from the B rows'
 * deltas and inputs: written if overwrite, else accumulated. */
void pf_weight_grad(pf_work *w, const float *x, int B, int l, int o0, int o1, float *grad,
                    int overwrite);

/* Loss over the B rows just forwarded, as a mean over samples (CE), or
 * 1/2 * mean over samples of the sum over outputs (MSE). Accumulated in
 * double. If correct is non-NULL, it receives argmax hits per sample (CE). */
double pf_loss_value(const pf_work *w, const int *labels, const float *targets, int B,
                     unsigned char *correct);

/* Backward after pf_forward: accumulates d(batch mean loss)/dtheta into grad
 * (zero it first) and returns the batch mean loss. */
double pf_backward(pf_work *w, const float *theta, const float *x, const int *labels,
                   const float *targets, int B, float *grad);

/* Backward for B rows with the loss normalized by norm samples (B for a
 * batch mean, N for blocks of a dataset of N). Writes (overwrite = 1) or
 * accumulates into grad; returns the summed, not averaged, loss. */
double pf_backward_block(pf_work *w, const float *theta, const float *x, const int *labels,
                         const float *targets, int B, double norm, float *grad, int overwrite);

/* Loss and gradient over a whole dataset (blocks of w->max_batch, split
 * across the thread team), with the gradient being d(mean loss)/dtheta.
 * Returns the mean loss. grad may be NULL. The input layer runs as
 * w->input_layer decides for d. With a reducer on w's context, d is this
 * process's share: the loss and gradient are over every process's rows
 * (NaN if the reducer failed). */
double pf_full_gradient(pf_work *w, const float *theta, const pf_dataset *d, float *grad);

/* -------------------------------------------------------------- contexts */

/* A context: the thread team that splits every minibatch step and data pass
 * of the calls given it (OpenBLAS itself runs single-threaded). The same
 * seed and thread count give bit-identical results. Contexts share nothing,
 * so two threads of a program may each run work on their own and get what
 * two processes would. A NULL context means one thread. (pf_ctx is
 * declared above, with the workspaces that hold one.) */
int pf_ctx_create(pf_ctx **ctx, int n_threads, pf_error *err);
void pf_ctx_free(pf_ctx *ctx);
int pf_ctx_threads(const pf_ctx *ctx);

/* Data parallelism across processes. A context may be one of `size` that
 * each hold a share of every dataset its calls see (rank k: a contiguous
 * block, see pf_dataset_shard). Then the full-batch sums (pf_full_gradient
 * and so L-BFGS, pf_evaluate, the Hessian products and their loss) are
 * accumulated in double over this process's rows and handed to `sum`,
 * which must replace buf[0..n) by its sum over all the processes, in the
 * same order on each of them, so that every process gets the same bits
 * (an MPI_Allreduce in double, for one); the results are normalized by the
 * global sample count. The library calls `sum` only from the thread that
 * called it (never from team members) and in the same sequence on every
 * process; a non-zero return fails the call with PF_ERUNTIME. Without a
 * reducer (the default, or sum NULL) nothing changes. The library itself
 * never talks to other processes. PF_EINPUT on a bad rank or size. */
typedef int (*pf_reduce_fn)(double *buf, size_t n, void *user);
int pf_ctx_set_reducer(pf_ctx *ctx, pf_reduce_fn sum, void *user, int rank, int size,
                       pf_error *err);
int pf_ctx_rank(const pf_ctx *ctx);    /* 0 without a reducer */
int pf_ctx_ranks(const pf_ctx *ctx);   /* 1 without a reducer */

/* OpenBLAS picks its kernels by CPU model when it loads, and versions
 * before 0.3.25 fall back to their SSE3 kernels ("Prescott", 2-3x slower
 * sgemm) on Intel models they do not know. Then this returns the
 * OPENBLAS_CORETYPE that suits the CPU ("SkylakeX" with AVX-512, "Haswell"
 * with AVX2 and FMA), else NULL. OpenBLAS reads the variable only as it
 * loads: a program sets it and executes itself again (the tool does). */
const char *pf_blas_better_core(void);

/* ------------------------------------------------------------- shifted L2 */

/* Shifted L2: (beta/2) * ||theta - anchor||^2; anchor NULL means the origin. */
double pf_l2_value(const float *theta, const float *anchor, size_t n, double beta);
/* grad += beta * (theta - anchor) */
void pf_l2_add_grad(float *grad, const float *theta, const float *anchor, size_t n,
                    double beta);
/* ||a - b|| in double; b NULL means the origin. */
double pf_distance(const float *a, const float *b, size_t n);

/* ------------------------------------------------------- reference path */

/* Plain-loop double-precision forward+backward (no BLAS): the readable
 * definition the fast path is tested against, and the subject of the
 * finite-difference checks. grad may be NULL. Returns the mean loss. */
double pf_ref_loss_grad(const pf_arch *a, const double *theta, const double *x,
                        const int *labels, const double *targets, int B, double *grad);

/* ------------------------------------------------------------- optimizers */

/* Newton: full-batch trust-region Newton-CG on exact Hessian-vector
 * products (pf_newton in hessian.h; the trainer runs it, exp.h). */
typedef enum { PF_OPT_ADAM, PF_OPT_SGD, PF_OPT_LBFGS, PF_OPT_NEWTON } pf_opt_kind;

typedef struct {
    pf_opt_kind kind;
    double lr;          /* Adam 0.0015 (paper), SGD 0.01, L-BFGS initial step 1, Newton initial
                         * trust radius 1 */
    double beta1, beta2, eps;   /* Adam */
    double momentum;    /* SGD */
    int history;        /* L-BFGS memory */
} pf_opt_config;

void pf_opt_config_default(pf_opt_config *c, pf_opt_kind kind);
int pf_opt_from_name(const char *name, pf_opt_kind *kind);
const char *pf_opt_name(pf_opt_kind kind);

/* State of a first-order optimizer (Adam moments, SGD momentum buffer). */
typedef struct {
    pf_opt_config cfg;
    size_t n;
    long step;       /* steps since the last reset */
    float *m;        /* Adam first moment / SGD momentum buffer */
    float *v;        /* Adam second moment */
    float step_size; /* Adam: -lr / (1 - beta1^t) for the current step */
    float bc2_sqrt;  /* Adam: sqrt(1 - beta2^t) */
} pf_optim;

int pf_optim_init(pf_optim *o, const pf_opt_config *cfg, size_t n, pf_error *err);
void pf_optim_reset(pf_optim *o);
void pf_optim_free(pf_optim *o);
/* One step with PyTorch semantics. grad must already hold the total
 * gradient (loss + beta*(theta-anchor)); see pf_l2_add_grad. */
void pf_optim_step(pf_optim *o, float *theta, const float *grad);

/* The same step split for parallel use: pf_optim_begin once, then
 * pf_optim_update on disjoint ranges [lo, hi). The gradient is the sum of
 * n_grads partial gradients plus beta*(theta - anchor) (anchor NULL: origin). */
void pf_optim_begin(pf_optim *o);
void pf_optim_update(pf_optim *o, float *restrict theta, const float *const *grads, int n_grads,
                     const float *anchor, double beta, size_t lo, size_t hi);
/* The same for one gradient on a block of rows: the ranges
 * [off + r*ld, off + r*ld + cols) for r < rows. */
void pf_optim_update_rows(pf_optim *o, float *restrict theta, const float *grad, const float *anchor,
                          double beta, size_t off, size_t rows, size_t cols, size_t ld);
/* The same for [off, off + len) with that range's gradient in grad[0, len). */
void pf_optim_update_local(pf_optim *o, float *restrict theta, const float *grad, const float *anchor,
                           double beta, size_t off, size_t len);

/* Full-batch L-BFGS on f(theta) = mean loss over d + (beta/2)||theta-anchor||^2
 * with a backtracking Armijo line search. Deterministic. */
typedef struct {
    int max_iter;
    double grad_tol;    /* stop when ||g||_inf < grad_tol */
    double ftol;        /* stop when relative decrease < ftol */
    int history;
} pf_lbfgs_config;

typedef struct {
    int iterations;
    int evaluations;
    double f;           /* final regularized objective */
    double loss;        /* final unregularized mean loss */
    double grad_inf;
    int converged;
} pf_lbfgs_result;

int pf_lbfgs(pf_work *w, float *theta, const pf_dataset *d, const float *anchor,
             double beta, const pf_lbfgs_config *cfg, pf_lbfgs_result *res,
             pf_error *err);

#endif

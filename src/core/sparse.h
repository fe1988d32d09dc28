/* The sparse input layer: internal building blocks of the numerics
 * (sparse.c, mlp.c, hessian.c, and the trainer and evaluation above them).
 *
 * Inputs whose features mostly hold one value each (image background: 81%
 * of MNIST's pixels are 0, which the paper's normalization maps to -m/s)
 * split as x = b + s, with b a per-feature background and s mostly zero.
 * For the input layer (W (n_out, dim), bias c0) that is exact algebra:
 *     z   = x W^T + c0           = s W^T + (W b + c0)
 *     dW^T = x^T delta           = s^T delta + b (1^T delta)      (dim, n_out)
 * so the forward gathers rows of W^T at the nonzeros of s, the gradient
 * scatters into rows of dW^T, and the background enters through one
 * vector per step (W b + c0) and the column sums of delta (which are the
 * bias gradient anyway). Only rounding differs from x W^T.
 *
 * The sparse rows live in a pf_sparse_set (CSR of s, with b); a workspace
 * keeps the sets of the datasets it has run on (pf_sparse_find).
 */
#ifndef PATHFINDER_CORE_SPARSE_H
#define PATHFINDER_CORE_SPARSE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pathfinder/core.h"

#if defined(__AVX512F__) || defined(__FMA__) || defined(__AVX__)
#include <immintrin.h>
#endif

/* ---- SIMD through GCC/Clang generic vectors ---------------------------------- */

/* As wide as -march allows (the x86-64 baseline and NEON have 16-byte
 * registers). */
#if defined(__AVX512F__)
enum { PF_LANES = 16 };
#elif defined(__AVX__)
enum { PF_LANES = 8 };
#else
enum { PF_LANES = 4 };
#endif
typedef float pf_vf __attribute__((vector_size(PF_LANES * sizeof(float))));

static inline pf_vf pf_vload(const float *p)
{
    pf_vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void pf_vstore(float *p, pf_vf v) { memcpy(p, &v, sizeof v); }

/* a * b + c, fused where the machine has FMA (one rounding; C11 does not
 * contract a * b + c by itself). The scalar form rounds the same way, so a
 * column gives the same bits whether a vector lane or the tail loop
 * computed it. */
#if defined(__AVX512F__)
#define PF_FMA 1
static inline pf_vf pf_vfma(pf_vf a, pf_vf b, pf_vf c)
{
    return (pf_vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
}
#elif defined(__FMA__) && defined(__AVX__)
#define PF_FMA 1
static inline pf_vf pf_vfma(pf_vf a, pf_vf b, pf_vf c)
{
    return (pf_vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
}
#else
#define PF_FMA 0
static inline pf_vf pf_vfma(pf_vf a, pf_vf b, pf_vf c) { return a * b + c; }
#endif

static inline float pf_sfma(float a, float b, float c)
{
#if PF_FMA
    return fmaf(a, b, c);
#else
    return a * b + c;
#endif
}

/* s in every lane, by the machine's broadcast: filled lane by lane, GCC
 * (which prefers 256-bit vectors on AVX-512 machines) built the 512-bit
 * value from two 256-bit stores and one 512-bit load, which the core cannot
 * forward from store to load; every gathered or scattered entry then waited
 * for the store to reach L1 (measured on an AVX-512 Xeon: a full-MNIST
 * Hessian-vector product took 0.40 CPU s against 0.30, two training epochs
 * 1.69 user s against 1.13). */
static inline pf_vf pf_vsplat(float s)
{
#if defined(__AVX512F__)
    return (pf_vf)_mm512_set1_ps(s);
#elif defined(__AVX__)
    return (pf_vf)_mm256_set1_ps(s);
#else
    pf_vf v;
    for (int i = 0; i < PF_LANES; i++) v[i] = s;
    return v;
#endif
}

enum { PF_MAX_VECS = 8 }; /* vectors in a chunk: two sets of accumulators stay in registers */

/* out[0, nv*LANES) = start + sum_k val_k M[idx_k, 0, nv*LANES) (start NULL:
 * zero), inlined with a constant nv. The sum runs as two interleaved
 * partial sums, out = (start + sum over even k) + (sum over odd k), which
 * halves the chains of dependent FMAs; out may be start. */
static inline __attribute__((always_inline)) void pf_gather_chunk(
    float *out, const float *start, const float *restrict M, size_t ld, const uint32_t *restrict idx,
    const float *restrict val, size_t nnz, const int nv)
{
    pf_vf a0[PF_MAX_VECS], a1[PF_MAX_VECS];
#pragma GCC unroll 8
    for (int u = 0; u < nv; u++) {
        a0[u] = start ? pf_vload(start + u * PF_LANES) : (pf_vf){0};
        a1[u] = (pf_vf){0};
    }
    size_t k = 0;
    for (; k + 1 < nnz; k += 2) {
        const float *restrict r0 = M + (size_t)idx[k] * ld;
        const float *restrict r1 = M + (size_t)idx[k + 1] * ld;
        pf_vf s0 = pf_vsplat(val[k]), s1 = pf_vsplat(val[k + 1]);
#pragma GCC unroll 8
        for (int u = 0; u < nv; u++) {
            a0[u] = pf_vfma(s0, pf_vload(r0 + u * PF_LANES), a0[u]);
            a1[u] = pf_vfma(s1, pf_vload(r1 + u * PF_LANES), a1[u]);
        }
    }
    if (k < nnz) {
        const float *restrict r0 = M + (size_t)idx[k] * ld;
        pf_vf s0 = pf_vsplat(val[k]);
#pragma GCC unroll 8
        for (int u = 0; u < nv; u++) a0[u] = pf_vfma(s0, pf_vload(r0 + u * PF_LANES), a0[u]);
    }
#pragma GCC unroll 8
    for (int u = 0; u < nv; u++) pf_vstore(out + u * PF_LANES, a0[u] + a1[u]);
}

/* One function per chunk width, kept out of line: inlined into the loop
 * over chunks, GCC folds the chunk's offset into every address and runs
 * out of registers. */
#define PF_CHUNK_FN(name, body_fn, nv)                                                              \
    static __attribute__((noinline, unused)) void name(                                            \
        float *out, const float *start, const float *M, size_t ld, const uint32_t *idx,            \
        const float *val, size_t nnz)                                                              \
    {                                                                                               \
        body_fn(out, start, M, ld, idx, val, nnz, nv);                                              \
    }
PF_CHUNK_FN(pf_gather8, pf_gather_chunk, 8)
PF_CHUNK_FN(pf_gather4, pf_gather_chunk, 4)
PF_CHUNK_FN(pf_gather2, pf_gather_chunk, 2)
PF_CHUNK_FN(pf_gather1, pf_gather_chunk, 1)

/* out[0, width) = start + sum_k val_k M[idx_k, 0, width): a sparse row
 * times a dense matrix (ld floats per row), in register-sized chunks; every
 * column is summed the same way (see pf_gather_chunk) whichever chunk or
 * the tail loop holds it. out may be start. */
static inline void pf_sparse_gather(float *out, const float *start, const float *M, size_t ld,
                                    int width, const uint32_t *idx, const float *val, size_t nnz)
{
    int c = 0;
    for (; width - c >= 8 * PF_LANES; c += 8 * PF_LANES)
        pf_gather8(out + c, start ? start + c : NULL, M + c, ld, idx, val, nnz);
    if (width - c >= 4 * PF_LANES) {
        pf_gather4(out + c, start ? start + c : NULL, M + c, ld, idx, val, nnz);
        c += 4 * PF_LANES;
    }
    if (width - c >= 2 * PF_LANES) {
        pf_gather2(out + c, start ? start + c : NULL, M + c, ld, idx, val, nnz);
        c += 2 * PF_LANES;
    }
    if (width - c >= PF_LANES) {
        pf_gather1(out + c, start ? start + c : NULL, M + c, ld, idx, val, nnz);
        c += PF_LANES;
    }
    for (; c < width; c++) {
        float a0 = start ? start[c] : 0.0f, a1 = 0.0f;
        size_t k = 0;
        for (; k + 1 < nnz; k += 2) {
            a0 = pf_sfma(val[k], M[(size_t)idx[k] * ld + c], a0);
            a1 = pf_sfma(val[k + 1], M[(size_t)idx[k + 1] * ld + c], a1);
        }
        if (k < nnz) a0 = pf_sfma(val[k], M[(size_t)idx[k] * ld + c], a0);
        out[c] = a0 + a1;
    }
}

/* G[idx_k - base, 0, nv*LANES) += val_k d[0, nv*LANES) for every k (G with
 * ldg floats per row), d held in nv registers; inlined with a constant nv. */
static inline __attribute__((always_inline)) void pf_scatter_chunk(
    float *restrict G, size_t ldg, uint32_t base, const float *restrict d, const uint32_t *restrict idx,
    const float *restrict val, size_t nnz, const int nv)
{
    pf_vf dv[PF_MAX_VECS];
#pragma GCC unroll 8
    for (int u = 0; u < nv; u++) dv[u] = pf_vload(d + u * PF_LANES);
    for (size_t k = 0; k < nnz; k++) {
        float *restrict row = G + (size_t)(idx[k] - base) * ldg;
        pf_vf s = pf_vsplat(val[k]);
#pragma GCC unroll 8
        for (int u = 0; u < nv; u++)
            pf_vstore(row + u * PF_LANES, pf_vfma(s, dv[u], pf_vload(row + u * PF_LANES)));
    }
}

#define PF_SCATTER_FN(name, nv)                                                                     \
    static __attribute__((noinline, unused)) void name(float *G, size_t ldg, uint32_t base,        \
                                                       const float *d, const uint32_t *idx,        \
                                                       const float *val, size_t nnz)               \
    {                                                                                               \
        pf_scatter_chunk(G, ldg, base, d, idx, val, nnz, nv);                                       \
    }
PF_SCATTER_FN(pf_scatter8, 8)
PF_SCATTER_FN(pf_scatter4, 4)
PF_SCATTER_FN(pf_scatter2, 2)
PF_SCATTER_FN(pf_scatter1, 1)

/* G[idx_k - base, 0, width) += val_k d[0, width): the transpose of a
 * gather, one sparse row's outer product with d added into G. */
static inline void pf_sparse_scatter(float *G, size_t ldg, uint32_t base, int width, const float *d,
                                     const uint32_t *idx, const float *val, size_t nnz)
{
    int c = 0;
    for (; width - c >= 8 * PF_LANES; c += 8 * PF_LANES) pf_scatter8(G + c, ldg, base, d + c, idx, val, nnz);
    if (width - c >= 4 * PF_LANES) {
        pf_scatter4(G + c, ldg, base, d + c, idx, val, nnz);
        c += 4 * PF_LANES;
    }
    if (width - c >= 2 * PF_LANES) {
        pf_scatter2(G + c, ldg, base, d + c, idx, val, nnz);
        c += 2 * PF_LANES;
    }
    if (width - c >= PF_LANES) {
        pf_scatter1(G + c, ldg, base, d + c, idx, val, nnz);
        c += PF_LANES;
    }
    for (; c < width; c++)
        for (size_t k = 0; k < nnz; k++) {
            float *g = G + (size_t)(idx[k] - base) * ldg + c;
            *g = pf_sfma(val[k], d[c], *g);
        }
}

/* Bytes of a feature block's rows of W or of a gradient (about half of a
 * 48 KiB L1), and the features in a block of rows width floats wide. */
#define PF_SPARSE_BLOCK_BYTES 24576
static inline int pf_sparse_block(int width)
{
    int b = PF_SPARSE_BLOCK_BYTES / (int)(sizeof(float) * (size_t)(width > 0 ? width : 1));
    return b < 16 ? 16 : b;
}

/* ---- sparse inputs -------------------------------------------------------------- */

/* The input layer goes sparse under `auto` when at most this share of the
 * entries differs from the background (measured on up to 1024 rows), and
 * the inputs are at least PF_SPARSE_MIN_DIM wide. Calibrated by
 * bench/epoch.sh's density sweep: sparse wins below about 40% (MNIST is
 * 19%, Fashion-MNIST 50%). */
#define PF_SPARSE_MAX_DENSITY 0.30
#define PF_SPARSE_MIN_DIM 16

/* s = x - background of n rows of dim features, as CSR. */
typedef struct pf_sparse_set {
    const float *x;         /* the key: the rows this was made from ... */
    size_t n;
    int dim;
    uint64_t print;         /* ... and a fingerprint of sampled rows */
    int sparse;             /* what `auto` chose for them */
    double density;         /* share of the sampled entries off the background */
    float *background;      /* (dim) the majority value of each feature */
    size_t *row_ptr;        /* (n + 1) offsets into col/val; NULL if not built */
    uint32_t *col;          /* feature of each entry, ascending within a row */
    float *val;             /* x - background at it */
    size_t cap;             /* entries col/val have room for */
    size_t max_row;         /* most entries in one row */
} pf_sparse_set;

/* Rows of a set as a batch: row i of the batch holds the set's entries
 * [beg[i], end[i]). A range of the set's rows from r is {set, row_ptr + r,
 * row_ptr + r + 1}; a shuffled batch has its own offsets. */
typedef struct {
    const pf_sparse_set *set;
    const size_t *beg, *end;
} pf_sparse_view;

static inline pf_sparse_view pf_sparse_range(const pf_sparse_set *s, size_t first)
{
    pf_sparse_view v = {s, s->row_ptr + first, s->row_ptr + first + 1};
    return v;
}

static inline void pf_sparse_row(const pf_sparse_view *v, int i, const uint32_t **col,
                                 const float **val, size_t *nnz)
{
    size_t k0 = v->beg[i];
    *col = v->set->col + k0;
    *val = v->set->val + k0;
    *nnz = v->end[i] - k0;
}

/* Ask for row i's entries ahead of use: a shuffled batch's rows lie
 * anywhere in the set (MB of entries), and each is only ~1 KB long, too
 * short for the hardware prefetcher to get going. */
static inline void pf_sparse_prefetch(const pf_sparse_view *v, int i)
{
    const uint32_t *col;
    const float *val;
    size_t nnz;
    pf_sparse_row(v, i, &col, &val, &nnz);
    for (size_t k = 0; k < nnz; k += 64 / sizeof *col) {
        __builtin_prefetch(col + k, 0, 3);
        __builtin_prefetch(val + k, 0, 3);
    }
}

/* malloc for arrays of many MB that are read in random places (a sparse
 * set, the Hessian's caches): on Linux they get 2 MiB pages, which spare
 * the TLB misses (and, on first touch, the page faults) of 4 KiB ones.
 * Freed with free(). */
void *pf_big_alloc(size_t bytes);

/* Background (majority vote over up to 1024 evenly spread rows) and the
 * density of those rows off it; fills s->background (allocated), density,
 * sparse (the `auto` choice), and the key. PF_ERUNTIME when out of memory. */
int pf_sparse_probe(pf_sparse_set *s, const float *x, size_t n, int dim);
/* Build the CSR of all rows (after pf_sparse_probe). */
int pf_sparse_build(pf_sparse_set *s);
void pf_sparse_free(pf_sparse_set *s);

/* The sparse set of a dataset's rows x (n rows of dim features) in w's
 * cache (pf_work.sparse_cache), probed and, if the input layer runs sparse
 * on it under w->input_layer, built on first use. A cached set is the one
 * made from the same array, size and sampled rows. *use gets 1 when the
 * input layer runs sparse: NULL with *use = 0 means dense, NULL with
 * *use = 1 out of memory. */
const pf_sparse_set *pf_sparse_find(pf_work *w, const float *x, size_t n, int dim, int *use);
/* Let dst look sets up in src's cache (shared; src keeps owning it). */
int pf_sparse_share_cache(pf_work *dst, pf_work *src);
void pf_sparse_cache_free(struct pf_sparse_cache *c);

/* Scratch of a workspace's sparse input layer, allocated on first use:
 * W_0^T (dim, n_out), c = W_0 b + b_0 (n_out), a transposed gradient
 * (dim, n_out), and the sparse form of the last batch pf_forward was given.
 * NULL when out of memory. */
struct pf_sparse_scratch {
    float *wt, *c, *gt;
    size_t *cursor;         /* (max_batch) for pf_sparse_grad0 */
    pf_sparse_set batch;
    const float *batch_x;   /* the batch pf_forward last ran sparse on (NULL: dense) */
    int batch_n;
};
typedef struct pf_sparse_scratch pf_sparse_scratch;
pf_sparse_scratch *pf_sparse_scratch_get(pf_work *w);
void pf_sparse_scratch_free(pf_sparse_scratch *s);

/* dst (cols, rows) = src (rows, cols)^T. */
void pf_transpose(float *restrict dst, const float *restrict src, int rows, int cols);

/* c[o] = b0[o] + sum_j background_j W_0^T[j, o] for o in [o0, o1) (b0
 * NULL: no bias), with unit o of row j at wt[j * ldw + o - o0] (the whole
 * W_0^T (dim, n_out): ldw = n_out and o0's column first): the part of the
 * input layer the background contributes, summed over j in order. */
void pf_input_background(float *c, const float *wt, const float *b0, const float *background,
                         int dim, int ldw, int o0, int o1);

/* Number of entries of col[k, kend) (ascending) below lim. */
static inline size_t pf_count_below(const uint32_t *col, size_t k, size_t kend, uint32_t lim)
{
    size_t n = 0;
#if defined(__AVX512F__)
    __m512i lv = _mm512_set1_epi32((int)lim);
    while (k + n < kend) {
        size_t left = kend - k - n;
        __mmask16 valid = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        __m512i cv = _mm512_maskz_loadu_epi32(valid, col + k + n);
        __mmask16 below = _mm512_mask_cmplt_epu32_mask(valid, cv, lv);
        n += (size_t)__builtin_popcount((unsigned)below);
        if (below != 0xFFFF) break;
    }
#else
    while (k + n < kend && col[k + n] < lim) n++;
#endif
    return n;
}

/* z[i, 0, width) = c + sum over the entries of rows i in [r0, r1) of a view
 * of val W[col, 0, width) (W with ldw floats per row; c NULL: z already
 * holds the start), feature block by feature block: W's rows of one block
 * stay in L1 while the rows (up to 256 at a time) take their entries
 * there, summed in registers. */
void pf_sparse_gather_rows(float *z, size_t ldz, const float *c, const float *W, size_t ldw, int width,
                           const pf_sparse_view *v, int r0, int r1);

/* Forward of layer 0 on sparse rows: z_0 and a_0 columns [o0, o1) of batch
 * rows [0, B) from W_0^T's columns [o0, o1), row j at wt + j * ldw (the
 * whole W_0^T (dim, n_out): its column o0 and ldw = n_out; a trainer's
 * panel: the panel and its width), and c (pf_input_background). */
void pf_sparse_forward0(pf_work *w, const pf_sparse_view *v, int B, const float *wt, size_t ldw,
                        const float *c, int o0, int o1);
/* The same for batch rows [r0, r1), all units. */
void pf_sparse_forward0_rows(pf_work *w, const pf_sparse_view *v, int r0, int r1, const float *wt,
                             const float *c);
/* Gradient of layer 0 from delta_0 of B sparse rows of a view, for units
 * [o0, o1): gt (dim, n_out) gets the weights' (transposed), gb (n_out) the
 * bias's (gb NULL: no bias); written if overwrite, else accumulated. Feature
 * block by feature block, the block's rows of gt stay in L1 while every
 * batch row adds its entries there (its delta row held in registers).
 * cursor has room for B offsets. */
void pf_sparse_grad0(pf_work *w, const pf_sparse_view *v, int B, float *gt, float *gb, int o0, int o1,
                     int overwrite, size_t *cursor);
/* G[j - p0] = sum over rows i in [0, B) of the view of s_ij D[i, 0, width)
 * for the features j of block [p0, p0 + nb) (G: nb rows of ldg floats,
 * overwritten; D: rows of ldd floats), with cursor[i] walking along row i
 * (start them at v->beg[i] before block 0 and go through the blocks in
 * order). Returns the entries it added (0: G is all zero). */
size_t pf_sparse_outer_block(float *G, size_t ldg, int p0, int nb, const float *D, size_t ldd, int width,
                             const pf_sparse_view *v, int B, size_t *cursor);

/* pf_sparse_grad0 (overwrite) fused with the optimizer's step, for a
 * trainer that holds the input layer transposed in theta, in panels: the
 * units [o0, o1) of every feature are the panel (dim, o1 - o0) at
 * w_off[0] + o0 * dim (one panel: W_0^T itself); the anchor and the
 * optimizer's moments likewise (anchor NULL: none). Every feature block's
 * gradient is applied while it is in L1, the bias's after them, and c gets W_0 b + b_0
 * of the updated weights (as pf_input_background) for the next forward.
 * Units [o0, o1) (at most 4096); pf_optim_begin was called for the step;
 * g has room for one block (PF_SPARSE_BLOCK_BYTES). */
void pf_sparse_step0(pf_work *w, const pf_sparse_view *v, int B, pf_optim *o, float *theta,
                     const float *anchor, double beta, float *c, int o0, int o1, size_t *cursor,
                     float *g);

/* Forward B rows (mlp.c): the input layer on the sparse rows v with wt and
 * c (as pf_sparse_weights makes them) if v is given, else on the dense rows
 * x; the other layers as pf_forward_cols. */
void pf_forward_block(pf_work *w, const float *theta, const float *x, int B, const pf_sparse_view *v,
                      const float *wt, const float *c);
/* wt = W_0^T and c = W_0 b + b_0 of theta for a background b. */
int pf_sparse_weights(const pf_arch *A, const float *theta, const float *background, float *wt, float *c);

#endif

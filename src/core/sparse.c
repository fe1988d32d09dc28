/* The sparse input layer (see sparse.h): sparse forms of datasets, the
 * workspace's cache of them, and the layer's forward and gradient. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "pathfinder/core.h"
#include "act.h"
#include "sparse.h"

static const char *const input_layer_names[] = {"auto", "sparse", "dense"};

const char *pf_input_layer_name(pf_input_layer m)
{
    return (unsigned)m < 3 ? input_layer_names[m] : "?";
}

int pf_input_layer_from_name(const char *name, pf_input_layer *m)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(name, input_layer_names[i]) == 0) {
            *m = (pf_input_layer)i;
            return 0;
        }
    return -1;
}

void *pf_big_alloc(size_t bytes)
{
    enum { HUGE_PAGE = 2 << 20 };
    if (bytes < HUGE_PAGE) return malloc(bytes ? bytes : 1);
    size_t rounded = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *p = aligned_alloc(HUGE_PAGE, rounded);
#ifdef MADV_HUGEPAGE
    if (p) madvise(p, rounded, MADV_HUGEPAGE);
#endif
    return p;
}

/* ---- sparse sets ----------------------------------------------------------------- */

enum { PROBE_ROWS = 1024, PRINT_ROWS = 64 };

/* FNV-1a over the bits of up to PRINT_ROWS evenly spread rows: tells a
 * dataset from another one later allocated at the same address. */
static uint64_t fingerprint(const float *x, size_t n, int dim)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)n ^ ((uint64_t)dim << 40);
    size_t rows = n < PRINT_ROWS ? n : PRINT_ROWS;
    for (size_t t = 0; t < rows; t++) {
        const float *row = x + (t * n / rows) * (size_t)dim;
        for (int j = 0; j < dim; j++) {
            uint32_t b;
            memcpy(&b, &row[j], sizeof b);
            h = (h ^ b) * 1099511628211ULL;
        }
    }
    return h;
}

int pf_sparse_probe(pf_sparse_set *s, const float *x, size_t n, int dim)
{
    memset(s, 0, sizeof *s);
    s->x = x, s->n = n, s->dim = dim;
    s->print = fingerprint(x, n, dim);
    size_t D = (size_t)dim, probe = n < PROBE_ROWS ? n : PROBE_ROWS;
    s->background = malloc((D ? D : 1) * sizeof *s->background);
    size_t *votes = calloc(D ? D : 1, sizeof *votes);
    if (!s->background || !votes) {
        free(votes);
        pf_sparse_free(s);
        return PF_ERUNTIME;
    }
    /* Boyer-Moore majority vote per feature */
    for (size_t j = 0; j < D; j++) s->background[j] = 0.0f;
    for (size_t t = 0; t < probe; t++) {
        const float *row = x + (t * n / probe) * D;
        for (size_t j = 0; j < D; j++) {
            if (votes[j] == 0) s->background[j] = row[j], votes[j] = 1;
            else votes[j] += row[j] == s->background[j] ? 1 : (size_t)-1;
        }
    }
    free(votes);
    /* a NaN never equals itself: it is no background */
    for (size_t j = 0; j < D; j++)
        if (s->background[j] != s->background[j]) s->background[j] = 0.0f;
    size_t off = 0;
    for (size_t t = 0; t < probe; t++) {
        const float *row = x + (t * n / probe) * D;
        for (size_t j = 0; j < D; j++) off += row[j] != s->background[j];
    }
    s->density = probe && D ? (double)off / ((double)probe * (double)D) : 1.0;
    s->sparse = dim >= PF_SPARSE_MIN_DIM && s->density <= PF_SPARSE_MAX_DENSITY;
    return PF_OK;
}

/* Grow col/val to hold at least `need` entries (keeping the first `used`). */
static int set_reserve(pf_sparse_set *s, size_t need, size_t used)
{
    if (need <= s->cap) return PF_OK;
    size_t cap = need + need / 4;
    uint32_t *col = pf_big_alloc(cap * sizeof *col);
    float *val = pf_big_alloc(cap * sizeof *val);
    if (!col || !val) {
        free(col), free(val);
        return PF_ERUNTIME;
    }
    if (used) {
        memcpy(col, s->col, used * sizeof *col);
        memcpy(val, s->val, used * sizeof *val);
    }
    free(s->col), free(s->val);
    s->col = col, s->val = val, s->cap = cap;
    return PF_OK;
}

int pf_sparse_build(pf_sparse_set *s)
{
    size_t D = (size_t)s->dim;
    const float *bg = s->background;
    free(s->row_ptr);
    s->row_ptr = pf_big_alloc((s->n + 1) * sizeof *s->row_ptr);
    /* one pass over the rows (they are hundreds of MB): room for the
     * probed density and some, grown when a row would not fit */
    double guess = s->density * 1.1 * (double)s->n * (double)D + (double)D + 1.0;
    if (!s->row_ptr || set_reserve(s, (size_t)guess, 0) != PF_OK) goto oom;
    size_t k = 0;
    s->max_row = 0;
    for (size_t i = 0; i < s->n; i++) {
        s->row_ptr[i] = k;
        if (k + D + 1 > s->cap && set_reserve(s, k + D + 1 + (s->n - i) * (k / (i + 1)), k) != PF_OK)
            goto oom;
        const float *row = s->x + i * D;
        uint32_t *col = s->col;
        float *val = s->val;
        /* branch-free compaction: always write, advance only past an entry
         * off the background (so col/val need one slot of slack) */
        size_t k0 = k;
        for (size_t j = 0; j < D; j++) {
            col[k] = (uint32_t)j;
            val[k] = row[j] - bg[j];
            k += row[j] != bg[j];
        }
        if (k - k0 > s->max_row) s->max_row = k - k0;
    }
    s->row_ptr[s->n] = k;
    return PF_OK;
oom:
    free(s->row_ptr), free(s->col), free(s->val);
    s->row_ptr = NULL, s->col = NULL, s->val = NULL, s->cap = 0;
    return PF_ERUNTIME;
}

void pf_sparse_free(pf_sparse_set *s)
{
    free(s->background);
    free(s->row_ptr);
    free(s->col);
    free(s->val);
    memset(s, 0, sizeof *s);
}

pf_input_layer pf_input_layer_resolve(pf_input_layer requested, const float *x, size_t n, int dim)
{
    if (requested != PF_INPUT_AUTO) return requested;
    pf_sparse_set s;
    if (pf_sparse_probe(&s, x, n, dim) != PF_OK) return PF_INPUT_DENSE;
    int sparse = s.sparse;
    pf_sparse_free(&s);
    return sparse ? PF_INPUT_SPARSE : PF_INPUT_DENSE;
}

/* ---- the workspace's cache ----------------------------------------------------- */

enum { CACHE_SETS = 4 };

/* The sets of the last few datasets a workspace ran on (a trainer's
 * training, validation and test sets fit). */
struct pf_sparse_cache {
    pf_sparse_set sets[CACHE_SETS];
    unsigned used[CACHE_SETS];   /* when each was last found (0: empty) */
    unsigned clock;
};

void pf_sparse_cache_free(struct pf_sparse_cache *c)
{
    if (!c) return;
    for (int k = 0; k < CACHE_SETS; k++) pf_sparse_free(&c->sets[k]);
    free(c);
}

static struct pf_sparse_cache *cache_of(pf_work *w)
{
    if (!w->sparse_cache) {
        w->sparse_cache = calloc(1, sizeof *w->sparse_cache);
        w->own_sparse_cache = w->sparse_cache != NULL;
    }
    return w->sparse_cache;
}

int pf_sparse_share_cache(pf_work *dst, pf_work *src)
{
    struct pf_sparse_cache *c = cache_of(src);
    if (!c) return PF_ERUNTIME;
    if (dst->own_sparse_cache) pf_sparse_cache_free(dst->sparse_cache);
    dst->sparse_cache = c;
    dst->own_sparse_cache = 0;
    return PF_OK;
}

const pf_sparse_set *pf_sparse_find(pf_work *w, const float *x, size_t n, int dim, int *use)
{
    *use = 0;
    /* a convolution, not a linear layer, reads a convolutional model's input */
    if (w->input_layer == PF_INPUT_DENSE || n == 0 || w->arch->n_stages) return NULL;
    struct pf_sparse_cache *c = cache_of(w);
    if (!c) {
        *use = w->input_layer == PF_INPUT_SPARSE;
        return NULL;
    }
    pf_sparse_set *s = NULL;
    uint64_t print = 0;
    int printed = 0;
    for (int k = 0; k < CACHE_SETS && !s; k++) {
        pf_sparse_set *t = &c->sets[k];
        if (!c->used[k] || t->x != x || t->n != n || t->dim != dim) continue;
        if (!printed) print = fingerprint(x, n, dim), printed = 1;
        if (t->print == print) s = t;
    }
    if (!s) {
        /* replace the least recently used */
        int k = 0;
        for (int j = 1; j < CACHE_SETS; j++)
            if (c->used[j] < c->used[k]) k = j;
        pf_sparse_free(&c->sets[k]);
        c->used[k] = 0;
        if (pf_sparse_probe(&c->sets[k], x, n, dim) != PF_OK) {
            *use = w->input_layer == PF_INPUT_SPARSE;
            return NULL;
        }
        s = &c->sets[k];
    }
    c->used[s - c->sets] = ++c->clock;
    *use = w->input_layer == PF_INPUT_SPARSE || s->sparse;
    if (!*use) return NULL;
    if (!s->row_ptr && pf_sparse_build(s) != PF_OK) return NULL;
    return s;
}

/* ---- scratch ------------------------------------------------------------------------ */

pf_sparse_scratch *pf_sparse_scratch_get(pf_work *w)
{
    if (w->sparse_scratch) return w->sparse_scratch;
    const pf_arch *A = w->arch;
    size_t n0 = (size_t)A->sizes[0] * (size_t)A->sizes[1];
    pf_sparse_scratch *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->wt = malloc(n0 * sizeof *s->wt);
    s->gt = malloc(n0 * sizeof *s->gt);
    s->c = malloc((size_t)A->sizes[1] * sizeof *s->c);
    s->cursor = malloc((size_t)w->max_batch * sizeof *s->cursor);
    if (!s->wt || !s->gt || !s->c || !s->cursor) {
        pf_sparse_scratch_free(s);
        return NULL;
    }
    w->sparse_scratch = s;
    return s;
}

void pf_sparse_scratch_free(pf_sparse_scratch *s)
{
    if (!s) return;
    free(s->wt), free(s->gt), free(s->c);
    pf_sparse_free(&s->batch);
    free(s->cursor);
    free(s);
}

/* ---- the layer --------------------------------------------------------------------- */

void pf_transpose(float *restrict dst, const float *restrict src, int rows, int cols)
{
    enum { TILE = 16 };
    for (int i0 = 0; i0 < rows; i0 += TILE)
        for (int j0 = 0; j0 < cols; j0 += TILE) {
            int i1 = i0 + TILE < rows ? i0 + TILE : rows, j1 = j0 + TILE < cols ? j0 + TILE : cols;
            for (int i = i0; i < i1; i++)
                for (int j = j0; j < j1; j++) dst[(size_t)j * rows + i] = src[(size_t)i * cols + j];
        }
}

void pf_input_background(float *c, const float *wt, const float *b0, const float *background,
                         int dim, int ldw, int o0, int o1)
{
    if (o1 <= o0) return;
    for (int o = o0; o < o1; o++) c[o] = 0.0f;
    for (int j = 0; j < dim; j++) {
        const float *row = wt + (size_t)j * (size_t)ldw - o0;
        float b = background[j];
        for (int o = o0; o < o1; o++) c[o] = pf_sfma(b, row[o], c[o]);
    }
    if (b0)
        for (int o = o0; o < o1; o++) c[o] += b0[o];
}

void pf_sparse_gather_rows(float *z, size_t ldz, const float *c, const float *W, size_t ldw, int width,
                           const pf_sparse_view *v, int r0, int r1)
{
    int dim = v->set->dim;
    /* a block of W's rows fills about half of a 48 KiB L1; it is sized by
     * the whole row of z (ldz), not the columns asked for nor W's layout,
     * so that a column's sum is split into the same blocks, and rounds the
     * same, whether the whole row or a slice of it is gathered */
    int block = pf_sparse_block((int)ldz);
    const uint32_t *col = v->set->col;
    const float *val = v->set->val;
    enum { ROWS = 256 };
    size_t cursor[ROWS];
    for (int q0 = r0; q0 < r1; q0 += ROWS) {
        int q1 = r1 - q0 < ROWS ? r1 : q0 + ROWS;
        for (int i = q0; i < q1; i++) {
            cursor[i - q0] = v->beg[i];
            if (c) memcpy(z + (size_t)i * ldz, c, (size_t)width * sizeof *z);
        }
        for (int p0 = 0; p0 < dim; p0 += block) {
            uint32_t lim = (uint32_t)(p0 + block);
            for (int i = q0; i < q1; i++) {
                size_t k = cursor[i - q0], n = pf_count_below(col, k, v->end[i], lim);
                if (!n) continue;
                float *zr = z + (size_t)i * ldz;
                pf_sparse_gather(zr, zr, W, ldw, width, col + k, val + k, n);
                cursor[i - q0] = k + n;
            }
        }
    }
}

void pf_sparse_forward0_rows(pf_work *w, const pf_sparse_view *v, int r0, int r1, const float *wt,
                             const float *c)
{
    const pf_arch *A = w->arch;
    int n_out = A->sizes[1];
    if (r1 <= r0) return;
    float *z = w->z[0], *a = w->a[0];
    pf_sparse_gather_rows(z, (size_t)n_out, c, wt, (size_t)n_out, n_out, v, r0, r1);
    size_t off = (size_t)r0 * n_out;
    activate(A->act[0], a + off, z + off, (size_t)(r1 - r0) * n_out);
}

void pf_sparse_forward0(pf_work *w, const pf_sparse_view *v, int B, const float *wt, size_t ldw,
                        const float *c, int o0, int o1)
{
    const pf_arch *A = w->arch;
    int n_out = A->sizes[1], width = o1 - o0;
    if (B <= 0 || width <= 0) return;
    float *z = w->z[0], *a = w->a[0];
    pf_sparse_gather_rows(z + o0, (size_t)n_out, c + o0, wt, ldw, width, v, 0, B);
    if (width == n_out)
        activate(A->act[0], a, z, (size_t)B * n_out);
    else
        for (int i = 0; i < B; i++)
            activate(A->act[0], a + (size_t)i * n_out + o0, z + (size_t)i * n_out + o0, (size_t)width);
}

/* Column sums of delta's columns [o0, o1) over B rows, in double, into
 * cs (float). */
static void delta_colsum(const pf_work *w, int B, int o0, int o1, float *cs)
{
    int n_out = w->arch->sizes[1];
    enum { COLS = 256 };
    double acc[COLS];
    for (int c0 = o0; c0 < o1; c0 += COLS) {
        int nc = o1 - c0 < COLS ? o1 - c0 : COLS;
        for (int j = 0; j < nc; j++) acc[j] = 0.0;
        for (int i = 0; i < B; i++) {
            const float *row = w->d[0] + (size_t)i * n_out + c0;
            for (int j = 0; j < nc; j++) acc[j] += row[j];
        }
        for (int j = 0; j < nc; j++) cs[c0 - o0 + j] = (float)acc[j];
    }
}

/* The entries of features [p0, p0 + nb) of rows [0, B) added into G
 * ((nb, ldg), feature p0 first) as val delta_i[o0, o1); cursor[i] walks
 * along row i. */
static void scatter_block(const pf_work *w, const pf_sparse_view *v, int B, int p0, int nb, float *G,
                          size_t ldg, int o0, int o1, size_t *cursor)
{
    int n_out = w->arch->sizes[1];
    const uint32_t *col = v->set->col;
    const float *val = v->set->val;
    for (int i = 0; i < B; i++) {
        size_t k = cursor[i], n = pf_count_below(col, k, v->end[i], (uint32_t)(p0 + nb));
        if (!n) continue;
        pf_sparse_scatter(G, ldg, (uint32_t)p0, o1 - o0, w->d[0] + (size_t)i * n_out + o0, col + k,
                          val + k, n);
        cursor[i] = k + n;
    }
}

size_t pf_sparse_outer_block(float *G, size_t ldg, int p0, int nb, const float *D, size_t ldd, int width,
                             const pf_sparse_view *v, int B, size_t *cursor)
{
    const uint32_t *col = v->set->col;
    const float *val = v->set->val;
    size_t added = 0;
    for (int r = 0; r < nb; r++) memset(G + (size_t)r * ldg, 0, (size_t)width * sizeof *G);
    for (int i = 0; i < B; i++) {
        size_t k = cursor[i], n = pf_count_below(col, k, v->end[i], (uint32_t)(p0 + nb));
        if (!n) continue;
        pf_sparse_scatter(G, ldg, (uint32_t)p0, width, D + (size_t)i * ldd, col + k, val + k, n);
        cursor[i] = k + n;
        added += n;
    }
    return added;
}

void pf_sparse_grad0(pf_work *w, const pf_sparse_view *v, int B, float *gt, float *gb, int o0, int o1,
                     int overwrite, size_t *cursor)
{
    const pf_arch *A = w->arch;
    int dim = A->sizes[0], n_out = A->sizes[1], width = o1 - o0;
    if (B <= 0 || width <= 0) return;
    const float *bg = v->set->background;
    enum { COLS = 4096 };
    float cs[COLS];
    for (int c0 = o0; c0 < o1; c0 += COLS) {
        int c1 = o1 - c0 < COLS ? o1 : c0 + COLS, nc = c1 - c0;
        delta_colsum(w, B, c0, c1, cs);
        if (gb)
            for (int j = 0; j < nc; j++) gb[c0 + j] = (overwrite ? 0.0f : gb[c0 + j]) + cs[j];
        for (int i = 0; i < B; i++) cursor[i] = v->beg[i];
        int block = pf_sparse_block(nc);
        for (int p0 = 0; p0 < dim; p0 += block) {
            int nb = dim - p0 < block ? dim - p0 : block;
            /* the background's part, b_j (1^T delta), then the entries' */
            for (int r = p0; r < p0 + nb; r++) {
                float *g = gt + (size_t)r * n_out + c0;
                if (overwrite)
                    for (int j = 0; j < nc; j++) g[j] = bg[r] * cs[j];
                else
                    for (int j = 0; j < nc; j++) g[j] = pf_sfma(bg[r], cs[j], g[j]);
            }
            scatter_block(w, v, B, p0, nb, gt + (size_t)p0 * n_out + c0, (size_t)n_out, c0, c1, cursor);
        }
    }
}

void pf_sparse_step0(pf_work *w, const pf_sparse_view *v, int B, pf_optim *o, float *theta,
                     const float *anchor, double beta, float *c, int o0, int o1, size_t *cursor, float *g)
{
    const pf_arch *A = w->arch;
    int dim = A->sizes[0], width = o1 - o0;
    enum { COLS = 4096 };
    float cs[COLS];
    if (width <= 0 || width > COLS) return;
    const float *bg = v->set->background;
    delta_colsum(w, B, o0, o1, cs);
    for (int i = 0; i < B; i++) cursor[i] = v->beg[i];
    for (int j = 0; j < width; j++) c[o0 + j] = 0.0f;
    int block = pf_sparse_block(width);
    for (int p0 = 0; p0 < dim; p0 += block) {
        int nb = dim - p0 < block ? dim - p0 : block;
        for (int r = 0; r < nb; r++)
            for (int j = 0; j < width; j++) g[(size_t)r * width + j] = bg[p0 + r] * cs[j];
        scatter_block(w, v, B, p0, nb, g, (size_t)width, o0, o1, cursor);
        /* the block's gradient is summed: its step, and its share of c */
        for (int r = 0; r < nb; r++) {
            size_t off = A->w_off[0] + (size_t)o0 * dim + (size_t)(p0 + r) * width;
            pf_optim_update_local(o, theta, g + (size_t)r * width, anchor, beta, off, (size_t)width);
            const float *wr = theta + off;
            float b = bg[p0 + r];
            for (int j = 0; j < width; j++) c[o0 + j] = pf_sfma(b, wr[j], c[o0 + j]);
        }
    }
    if (A->bias) {
        size_t off = A->b_off[0] + (size_t)o0;
        pf_optim_update_local(o, theta, cs, anchor, beta, off, (size_t)width);
        for (int j = 0; j < width; j++) c[o0 + j] += theta[off + (size_t)j];
    }
}

/* Phases (plateaus between transitions and grid gaps), their encoded class
 * sets, and the hierarchy of nested accuracy basins merged across sweeps.
 *
 * Per-class accuracies flicker from point to point with minibatch noise, so
 * a class counts as encoded on a plateau when its accuracy averaged over the
 * whole plateau is above the threshold and it is above the threshold on
 * most of the plateau's points (pf_encoding): a class held only at some
 * betas is partial, not encoded. A plateau whose mean train loss is
 * within 0.02 of ln K (cross-entropy) is the trivial phase: the model says
 * one class whatever the input, which encodes nothing even though that one
 * class scores 100%. A plateau that is not trivial yet encodes no class is
 * unresolved: it holds something (its loss is below ln K), but no class
 * reliably; it is known by its partial classes.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/exp.h"
#include "exp/results.h"

#define SET_WORDS (PF_MAX_CLASSES / 64)

int pf_set_has(const uint64_t *set, int k) { return (int)((set[k / 64] >> (k % 64)) & 1u); }

static void set_add(uint64_t *set, int k) { set[k / 64] |= (uint64_t)1 << (k % 64); }

int pf_set_count(const uint64_t *set, int n_classes)
{
    int c = 0;
    for (int k = 0; k < n_classes; k++) c += pf_set_has(set, k);
    return c;
}

void pf_set_str(const uint64_t *set, int n_classes, char *buf, size_t n)
{
    size_t len = (size_t)snprintf(buf, n, "{");
    int first = 1;
    for (int k = 0; k < n_classes && len < n; k++)
        if (pf_set_has(set, k)) {
            len += (size_t)snprintf(buf + len, n - len, "%s%d", first ? "" : ",", k);
            first = 0;
        }
    if (len < n) snprintf(buf + len, n - len, "}");
}

/* a inside b (equal allowed) */
static int set_subset(const uint64_t *a, const uint64_t *b)
{
    for (int w = 0; w < SET_WORDS; w++)
        if (a[w] & ~b[w]) return 0;
    return 1;
}

static int set_equal(const uint64_t *a, const uint64_t *b)
{
    return memcmp(a, b, SET_WORDS * sizeof *a) == 0;
}

/* a strictly inside b */
static int set_proper_subset(const uint64_t *a, const uint64_t *b)
{
    return set_subset(a, b) && !set_equal(a, b);
}

void pf_encoding_default(pf_encoding *e)
{
    e->threshold = 50.0;
    e->fraction = 0.8;
}

/* Average the points [first, last] into q and say what it encodes. */
static void fill_phase(pf_phase *q, long first, long last, const double *beta,
                       const double *test_acc, const double *train_loss, const double *r,
                       const double *class_acc, int n_classes, const pf_encoding *enc,
                       pf_loss loss)
{
    q->first = first;
    q->last = last;
    q->beta_from = beta[first];
    q->beta_to = beta[last];
    q->n_classes = n_classes;
    double cnt = (double)(last - first + 1);
    for (long i = first; i <= last; i++) {
        q->mean_accuracy += test_acc[i] / cnt;
        q->mean_loss += train_loss[i] / cnt;
        q->mean_r += r[i] / cnt;
        for (int k = 0; k < n_classes; k++) {
            double a = class_acc[i * n_classes + k];
            q->class_mean[k] += a / cnt;
            q->class_above[k] += (a > enc->threshold) / cnt;
        }
    }
    q->trivial = loss == PF_LOSS_CE && n_classes > 1 &&
                 fabs(q->mean_loss - log((double)n_classes)) < PF_TRIVIAL_TOL;
    /* the fraction with a little slack: 4 of 5 points is 0.8 however it rounds */
    if (!q->trivial)
        for (int k = 0; k < n_classes; k++) {
            if (q->class_mean[k] > enc->threshold && q->class_above[k] >= enc->fraction - 1e-9)
                set_add(q->encoded, k);
            else if (q->class_above[k] >= 0.25)
                set_add(q->partial, k);
        }
    q->unresolved = !q->trivial && pf_set_count(q->encoded, n_classes) == 0;
}

/* The boundaries, in ascending beta, are the transitions and the gaps merged
 * (a gap that is also a transition's pair of points counts once, as the
 * transition). A phase runs from the point above one boundary to the point
 * below the next. */
int pf_phases(const double *beta, const double *test_acc, const double *train_loss, const double *r,
              const double *class_acc, long n, int n_classes, const pf_transition *t, long nt,
              const long *gaps, long n_gaps, const pf_encoding *enc, pf_loss loss,
              pf_phase **phases, long *n_phases, pf_error *err)
{
    *phases = NULL;
    *n_phases = 0;
    if (n < 1) return pf_fail(err, PF_EINPUT, "no points to split into phases");
    if (!(enc->fraction >= 0 && enc->fraction <= 1))
        return pf_fail(err, PF_EINPUT, "encoded fraction %g is not in [0, 1]", enc->fraction);
    if (n_classes > PF_MAX_CLASSES) return pf_fail(err, PF_EINPUT, "too many classes");
    if (nt < 0 || n_gaps < 0 || (nt > 0 && !t) || (n_gaps > 0 && !gaps))
        return pf_fail(err, PF_EINPUT, "invalid phase boundaries");
    pf_phase *ph = calloc((size_t)(nt + n_gaps + 1), sizeof *ph);
    if (!ph) return pf_fail(err, PF_ERUNTIME, "out of memory");
    long np = 0, first = 0, a = 0, b = 0, from_transition = -1;
    pf_bound from_kind = PF_BOUND_END;
    for (;;) {
        long last, next_first = n, to_transition = -1;
        pf_bound to_kind;
        if (a < nt && (b >= n_gaps || t[a].below <= gaps[b])) {
            if (b < n_gaps && gaps[b] == t[a].below) b++;
            last = t[a].below;
            next_first = t[a].above;
            to_kind = PF_BOUND_TRANSITION;
            to_transition = a++;
        } else if (b < n_gaps) {
            last = gaps[b++];
            next_first = last + 1;
            to_kind = PF_BOUND_GAP;
        } else {
            last = n - 1;
            to_kind = PF_BOUND_END;
        }
        if (first < 0 || last >= n || last < first || next_first <= last) {
            free(ph);
            return pf_fail(err, PF_EINPUT, "transitions or gaps out of order or out of range");
        }
        pf_phase *q = &ph[np++];
        fill_phase(q, first, last, beta, test_acc, train_loss, r, class_acc, n_classes, enc, loss);
        q->bound_from = from_kind;
        q->transition_from = from_transition;
        q->bound_to = to_kind;
        q->transition_to = to_transition;
        if (to_kind == PF_BOUND_END) break;
        first = next_first;
        from_kind = to_kind;
        from_transition = to_transition;
    }
    *phases = ph;
    *n_phases = np;
    return PF_OK;
}

const char *pf_bound_name(pf_bound b)
{
    switch (b) {
    case PF_BOUND_TRANSITION: return "transition";
    case PF_BOUND_GAP: return "gap";
    default: return "end";
    }
}

void pf_basin_label(const pf_basin *b, int n_classes, char *buf, size_t n)
{
    char set[4 * PF_MAX_CLASSES + 8];
    if (b->trivial) {
        snprintf(buf, n, "{} trivial");
    } else if (b->unresolved) {
        pf_set_str(b->partial, n_classes, set, sizeof set);
        snprintf(buf, n, "unresolved: partial %s", set);
    } else {
        pf_set_str(b->set, n_classes, buf, n);
    }
}

void pf_hierarchy_free(pf_hierarchy *h)
{
    free(h->nodes);
    memset(h, 0, sizeof *h);
}

/* The kinds in the order they are listed: basins that encode classes
 * (largest first), then unresolved ones (most partial classes first), then
 * the trivial one. */
static int basin_rank(const pf_basin *b) { return b->trivial ? 2 : b->unresolved ? 1 : 0; }

static int cmp_nodes(const void *a, const void *b)
{
    const pf_basin *x = a, *y = b;
    int rx = basin_rank(x), ry = basin_rank(y);
    if (rx != ry) return rx - ry;
    if (x->size != y->size) return y->size - x->size;
    int px = pf_set_count(x->partial, PF_MAX_CLASSES), py = pf_set_count(y->partial, PF_MAX_CLASSES);
    if (px != py) return py - px;
    int c = memcmp(y->set, x->set, sizeof x->set);
    if (c == 0) c = memcmp(y->partial, x->partial, sizeof x->partial);
    return c < 0 ? -1 : c > 0;
}

/* The node a phase belongs to: the trivial one, an unresolved one keyed by
 * its partial classes, or the one of its encoded set. */
static int same_node(const pf_basin *b, const pf_phase *q)
{
    if (q->trivial || b->trivial) return q->trivial && b->trivial;
    if (q->unresolved || b->unresolved)
        return q->unresolved && b->unresolved && set_equal(b->partial, q->partial);
    return set_equal(b->set, q->encoded);
}

/* Consecutive phases of a run are nested when one's encoded set contains
 * the other's. An unresolved or trivial phase encodes nothing, so it is
 * nested with any: partial classes flicker, they are not held, and neither
 * make nor break the nesting. */
static int phases_nested(const pf_phase *a, const pf_phase *b)
{
    if (a->trivial || b->trivial || a->unresolved || b->unresolved) return 1;
    return set_subset(a->encoded, b->encoded) || set_subset(b->encoded, a->encoded);
}

static int find_node(const pf_hierarchy *h, const pf_phase *q)
{
    for (int i = 0; i < h->n; i++)
        if (same_node(&h->nodes[i], q)) return i;
    return -1;
}

/* Parent links. The smallest container wins (among containers of one size,
 * the last in node order):
 *  - a basin that encodes classes: the smallest one strictly containing its set;
 *  - the trivial basin: the smallest basin that encodes classes;
 *  - an unresolved basin: the smallest of the encoded sets it was entered
 *    from, i.e. in each run where it was seen the nearest phase below it in
 *    beta that encodes classes (raising beta only takes classes away, so a
 *    phase sits inside the basins below it in beta, on an up or a down
 *    leg). Its partial classes do not place it: near the trivial phase they
 *    are a noisy union of whatever the model says now and then, and one
 *    class flickering past a quarter of the points would move it to the
 *    root. Only when no encoded phase lies below it (it starts a sweep)
 *    does it go to the smallest encoded set holding all its partial classes.
 * Unresolved and trivial basins hold no class reliably, so they contain
 * nothing: they are leaves. A node with no container is a root. */
static void link_parents(pf_hierarchy *h, const pf_phase *const *runs, const long *counts, int n_runs)
{
    for (int i = 0; i < h->n; i++) {
        pf_basin *b = &h->nodes[i];
        b->parent = -1;
        for (int j = h->n - 1; j >= 0; j--) {
            const pf_basin *up = &h->nodes[j];
            if (j == i || up->trivial || up->unresolved) continue;
            int inside = b->trivial      ? 1
                         : b->unresolved ? set_subset(b->partial, up->set)
                                         : set_proper_subset(b->set, up->set);
            if (inside && (b->parent < 0 || up->size < h->nodes[b->parent].size)) b->parent = j;
        }
    }
    /* unresolved basins: the sets they were entered from, where there are any */
    int *entered = malloc((size_t)(h->n > 0 ? h->n : 1) * sizeof *entered);
    if (!entered) return; /* the containment links stand */
    for (int i = 0; i < h->n; i++) entered[i] = -1;
    for (int r = 0; r < n_runs; r++)
        for (long p = 0; p < counts[r]; p++) {
            if (!runs[r][p].unresolved) continue;
            long below = p - 1;
            while (below >= 0 && (runs[r][below].trivial || runs[r][below].unresolved)) below--;
            if (below < 0) continue;
            int i = find_node(h, &runs[r][p]), up = find_node(h, &runs[r][below]);
            if (i < 0 || up < 0) continue;
            if (entered[i] < 0 || h->nodes[up].size < h->nodes[entered[i]].size ||
                (h->nodes[up].size == h->nodes[entered[i]].size && up > entered[i]))
                entered[i] = up;
        }
    for (int i = 0; i < h->n; i++)
        if (entered[i] >= 0) h->nodes[i].parent = entered[i];
    free(entered);
}

int pf_hierarchy_build(const pf_phase *const *runs, const long *counts, int n_runs, int n_classes,
                       pf_hierarchy *h, pf_error *err)
{
    memset(h, 0, sizeof *h);
    long total = 0;
    for (int r = 0; r < n_runs; r++) total += counts[r];
    h->nodes = calloc((size_t)(total > 0 ? total : 1), sizeof *h->nodes);
    if (!h->nodes) return pf_fail(err, PF_ERUNTIME, "out of memory");
    h->n_classes = n_classes;
    h->consistent = 1;
    for (int r = 0; r < n_runs; r++)
        for (long p = 0; p < counts[r]; p++) {
            const pf_phase *q = &runs[r][p];
            /* along a sweep each phase should sit inside the one before it
             * (up) or contain it (down); either way, a chain of inclusions */
            if (p > 0 && !phases_nested(&runs[r][p - 1], q)) h->consistent = 0;
            int found = -1;
            for (int i = 0; i < h->n; i++)
                if (same_node(&h->nodes[i], q)) found = i;
            if (found < 0) {
                found = h->n++;
                pf_basin *b = &h->nodes[found];
                b->trivial = q->trivial;
                b->unresolved = q->unresolved;
                if (!q->trivial) memcpy(b->set, q->encoded, sizeof q->encoded);
                if (q->unresolved) memcpy(b->partial, q->partial, sizeof q->partial);
                b->size = pf_set_count(b->set, n_classes);
                b->beta_min = q->beta_from;
                b->beta_max = q->beta_to;
            }
            pf_basin *b = &h->nodes[found];
            b->seen++;
            b->beta_min = fmin(b->beta_min, q->beta_from);
            b->beta_max = fmax(b->beta_max, q->beta_to);
        }
    qsort(h->nodes, (size_t)h->n, sizeof *h->nodes, cmp_nodes);
    link_parents(h, runs, counts, n_runs);
    return PF_OK;
}

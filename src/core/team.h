/* The thread team of a context (parallel.c): internal building blocks of
 * the numerics, not part of the public API. */
#ifndef PATHFINDER_TEAM_H
#define PATHFINDER_TEAM_H

#include <stddef.h>

#include "pathfinder/core.h"

typedef void (*pf_task_fn)(void *arg, int tid, int n_threads);
/* Run fn on every member of ctx's team (the caller is member 0) and wait
 * for all; with a NULL context or one thread, just call fn(arg, 0, 1). */
void pf_parallel(pf_ctx *ctx, pf_task_fn fn, void *arg);
/* Inside a task: wait until every member of its team reaches this point. */
void pf_barrier(void);

/* Data parallelism (core.h, pf_ctx_set_reducer): 1 if ctx has a reducer,
 * whose calls then see this process's share of every dataset. */
int pf_ctx_sharded(const pf_ctx *ctx);
/* buf[0..n) summed over the processes in place by ctx's reducer (nothing
 * without one). Call it only from the thread that called into the library,
 * outside team tasks. PF_ERUNTIME if the reducer fails. */
int pf_ctx_reduce(pf_ctx *ctx, double *buf, size_t n, pf_error *err);

/* [lo, hi) share of n items for member tid of n_threads. */
static inline void pf_share(size_t n, int tid, int n_threads, size_t *lo, size_t *hi)
{
    *lo = n * (size_t)tid / (size_t)n_threads;
    *hi = n * (size_t)(tid + 1) / (size_t)n_threads;
}

/* Floats in a 64-byte cache line. */
enum { PF_LINE_BYTES = 64, PF_LINE_FLOATS = PF_LINE_BYTES / 4 };

/* The same share of n floats in whole cache lines: a member's share of a
 * row that starts on a line starts on a line of its own. */
static inline void pf_share_lines(size_t n, int tid, int n_threads, size_t *lo, size_t *hi)
{
    pf_share((n + PF_LINE_FLOATS - 1) / PF_LINE_FLOATS, tid, n_threads, lo, hi);
    *lo = *lo * PF_LINE_FLOATS < n ? *lo * PF_LINE_FLOATS : n;
    *hi = *hi * PF_LINE_FLOATS < n ? *hi * PF_LINE_FLOATS : n;
}

/* Zeroed memory on a cache line (free with free): the buffers members
 * write side by side, so that no line is written by two members. */
void *pf_line_alloc(size_t bytes);

#endif

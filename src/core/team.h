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

/* [lo, hi) share of n items for member tid of n_threads. */
static inline void pf_share(size_t n, int tid, int n_threads, size_t *lo, size_t *hi)
{
    *lo = n * (size_t)tid / (size_t)n_threads;
    *hi = n * (size_t)(tid + 1) / (size_t)n_threads;
}

#endif

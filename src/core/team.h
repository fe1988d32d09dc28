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

#endif

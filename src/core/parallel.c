/* Contexts and their thread teams.
 *
 * A context (pf_ctx) owns a small fixed team of threads for data-parallel
 * steps. pf_parallel(ctx, fn, arg) runs fn(arg, tid, n) on every member, the
 * caller being member 0, and returns when all are done. Work is split by
 * tid only and partial results are combined in tid order, so the same
 * thread count always gives bit-identical results. Members spin briefly
 * between tasks (a minibatch step is a fraction of a millisecond) and then
 * sleep. Contexts share nothing: two threads of a program may each drive
 * their own, and get what two processes would. OpenBLAS runs
 * single-threaded inside the teams.
 */
#include <cblas.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/core.h"
#include "team.h"

enum { SPIN_ROUNDS = 20000 }; /* then sleep until the next task */

struct pf_ctx {
    int n;                      /* team size, caller included */
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_uint generation;     /* bumped for every task */
    atomic_int remaining;       /* members still working on the task */
    atomic_uint barrier_count;
    atomic_uint barrier_phase;
    pf_task_fn fn;
    void *arg;
    atomic_int stop;
    unsigned start_generation;
    /* data parallelism across processes (core.h): NULL when alone */
    pf_reduce_fn reduce;
    void *reduce_user;
    int rank, ranks;
};

/* The team whose task this thread is running (pf_barrier's). */
static _Thread_local pf_ctx *current;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Waiting for a partner: spin a while (it is usually microseconds away),
 * then yield the core, which matters when the machine is busier than the
 * team is large and the partner needs this very core to make progress.
 * A pause is ~140 cycles on recent Intel cores: 1000 of them are ~50 us,
 * a sixth of a paper-protocol step. */
enum { WAIT_SPINS = 1000 };

static inline void wait_turn(int *spins)
{
    if (++*spins < WAIT_SPINS)
        cpu_relax();
    else
        sched_yield();
}

typedef struct {
    pf_ctx *team;
    int tid;
} member_arg;

static void *member_main(void *p)
{
    member_arg m = *(member_arg *)p;
    free(p);
    pf_ctx *team = m.team;
    current = team;
    /* The generation as it was before this member existed: a task posted
     * while the thread was starting is still seen as new. */
    unsigned seen = team->start_generation;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&team->generation, memory_order_acquire)) == seen) {
            if (++spins < SPIN_ROUNDS) {
                if (spins < 2000)
                    cpu_relax();
                else
                    sched_yield();
                continue;
            }
            pthread_mutex_lock(&team->lock);
            while (atomic_load(&team->generation) == seen && !atomic_load(&team->stop))
                pthread_cond_wait(&team->wake, &team->lock);
            pthread_mutex_unlock(&team->lock);
            spins = 0;
        }
        if (atomic_load(&team->stop)) return NULL;
        seen = g;
        team->fn(team->arg, m.tid, team->n);
        atomic_fetch_sub_explicit(&team->remaining, 1, memory_order_release);
    }
}

static void team_stop(pf_ctx *team)
{
    if (team->n <= 1) return;
    pthread_mutex_lock(&team->lock);
    atomic_store(&team->stop, 1);
    atomic_fetch_add(&team->generation, 1);
    pthread_cond_broadcast(&team->wake);
    pthread_mutex_unlock(&team->lock);
    for (int i = 1; i < team->n; i++) pthread_join(team->threads[i], NULL);
    team->n = 1;
}

int pf_ctx_create(pf_ctx **ctx, int n_threads, pf_error *err)
{
    *ctx = NULL;
    if (n_threads < 1 || n_threads > PF_MAX_THREADS)
        return pf_fail(err, PF_EINPUT, "a context needs 1 to %d threads, not %d", PF_MAX_THREADS, n_threads);
    openblas_set_num_threads(1);   /* the team splits the work, not OpenBLAS */
    pf_ctx *c = calloc(1, sizeof *c);
    if (!c) return pf_fail(err, PF_ERUNTIME, "out of memory for a context");
    c->n = 1;
    if (n_threads > 1) {
        c->threads = calloc((size_t)n_threads, sizeof *c->threads);
        if (!c->threads) {
            free(c);
            return pf_fail(err, PF_ERUNTIME, "out of memory for a team of %d threads", n_threads);
        }
        pthread_mutex_init(&c->lock, NULL);
        pthread_cond_init(&c->wake, NULL);
        c->start_generation = atomic_load(&c->generation);
        for (int i = 1; i < n_threads; i++) {
            member_arg *m = malloc(sizeof *m);
            if (m) *m = (member_arg){c, i};
            if (!m || pthread_create(&c->threads[i], NULL, member_main, m) != 0) {
                free(m);
                int made = i;
                c->n = made;
                pf_ctx_free(c);
                return pf_fail(err, PF_ERUNTIME, "cannot start thread %d of %d", made + 1, n_threads);
            }
            c->n = i + 1;
        }
    }
    *ctx = c;
    return PF_OK;
}

void pf_ctx_free(pf_ctx *ctx)
{
    if (!ctx) return;
    int had_team = ctx->threads != NULL;
    team_stop(ctx);
    if (had_team) {
        pthread_mutex_destroy(&ctx->lock);
        pthread_cond_destroy(&ctx->wake);
    }
    free(ctx->threads);
    free(ctx);
}

int pf_ctx_threads(const pf_ctx *ctx) { return ctx ? ctx->n : 1; }

int pf_ctx_set_reducer(pf_ctx *ctx, pf_reduce_fn sum, void *user, int rank, int size, pf_error *err)
{
    if (!ctx) return pf_fail(err, PF_EINPUT, "a reducer needs a context");
    if (!sum) {
        ctx->reduce = NULL, ctx->reduce_user = NULL, ctx->rank = 0, ctx->ranks = 0;
        return PF_OK;
    }
    if (size < 1 || rank < 0 || rank >= size)
        return pf_fail(err, PF_EINPUT, "rank %d of %d processes does not exist", rank, size);
    ctx->reduce = sum;
    ctx->reduce_user = user;
    ctx->rank = rank;
    ctx->ranks = size;
    return PF_OK;
}

int pf_ctx_rank(const pf_ctx *ctx) { return ctx && ctx->reduce ? ctx->rank : 0; }
int pf_ctx_ranks(const pf_ctx *ctx) { return ctx && ctx->reduce ? ctx->ranks : 1; }
int pf_ctx_sharded(const pf_ctx *ctx) { return ctx && ctx->reduce; }

int pf_ctx_reduce(pf_ctx *ctx, double *buf, size_t n, pf_error *err)
{
    if (!ctx || !ctx->reduce) return PF_OK;
    if (ctx->reduce(buf, n, ctx->reduce_user) != 0)
        return pf_fail(err, PF_ERUNTIME, "the sum over the processes failed");
    return PF_OK;
}

void pf_parallel(pf_ctx *ctx, pf_task_fn fn, void *arg)
{
    if (!ctx || ctx->n <= 1) {
        pf_ctx *outer = current;
        current = NULL;
        fn(arg, 0, 1);
        current = outer;
        return;
    }
    ctx->fn = fn;
    ctx->arg = arg;
    atomic_store(&ctx->remaining, ctx->n - 1);
    pthread_mutex_lock(&ctx->lock);
    atomic_fetch_add_explicit(&ctx->generation, 1, memory_order_release);
    pthread_cond_broadcast(&ctx->wake);
    pthread_mutex_unlock(&ctx->lock);
    pf_ctx *outer = current;
    current = ctx;
    fn(arg, 0, ctx->n);
    current = outer;
    int spins = 0;
    while (atomic_load_explicit(&ctx->remaining, memory_order_acquire) > 0) wait_turn(&spins);
}

/* Sense-reversing barrier for the members of the running task. */
void *pf_line_alloc(size_t bytes)
{
    size_t rounded = (bytes + PF_LINE_BYTES - 1) / PF_LINE_BYTES * PF_LINE_BYTES;
    if (!rounded) rounded = PF_LINE_BYTES;
    void *p = aligned_alloc(PF_LINE_BYTES, rounded);
    if (p) memset(p, 0, rounded);
    return p;
}

void pf_barrier(void)
{
    pf_ctx *team = current;
    if (!team || team->n <= 1) return;
    unsigned phase = atomic_load_explicit(&team->barrier_phase, memory_order_acquire);
    if (atomic_fetch_add_explicit(&team->barrier_count, 1, memory_order_acq_rel) + 1 ==
        (unsigned)team->n) {
        atomic_store(&team->barrier_count, 0);
        atomic_store_explicit(&team->barrier_phase, phase + 1, memory_order_release);
    } else {
        int spins = 0;
        while (atomic_load_explicit(&team->barrier_phase, memory_order_acquire) == phase)
            wait_turn(&spins);
    }
}

/* A tiny fixed thread team for data-parallel steps.
 *
 * pf_parallel(fn, ctx) runs fn(ctx, tid, n) on every member, the caller being
 * member 0, and returns when all are done. Work is split by tid only, and
 * partial results are combined in tid order, so the same thread count always
 * gives bit-identical results. Members spin briefly between tasks (a
 * minibatch step is a fraction of a millisecond) and then sleep.
 * OpenBLAS runs single-threaded inside the team.
 */
#include <cblas.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "pathfinder/core.h"

enum { SPIN_ROUNDS = 20000 }; /* then sleep until the next task */

typedef struct {
    int n;                      /* team size, caller included */
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_uint generation;     /* bumped for every task */
    atomic_int remaining;       /* members still working on the task */
    atomic_uint barrier_count;
    atomic_uint barrier_phase;
    pf_task_fn fn;
    void *ctx;
    atomic_int stop;
    unsigned start_generation;
} team_t;

static team_t team = {.n = 1};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Waiting for a partner: spin a while (it is usually microseconds away),
 * then yield the core, which matters when the machine is busier than the
 * team is large and the partner needs this very core to make progress. */
static inline void wait_turn(int *spins)
{
    if (++*spins < 20000)
        cpu_relax();
    else
        sched_yield();
}

static void *member_main(void *arg)
{
    int tid = (int)(size_t)arg;
    /* The generation as it was before this member existed: a task posted
     * while the thread was starting is still seen as new. */
    unsigned seen = team.start_generation;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&team.generation, memory_order_acquire)) == seen) {
            if (++spins < SPIN_ROUNDS) {
                if (spins < 2000)
                    cpu_relax();
                else
                    sched_yield();
                continue;
            }
            pthread_mutex_lock(&team.lock);
            while (atomic_load(&team.generation) == seen && !atomic_load(&team.stop))
                pthread_cond_wait(&team.wake, &team.lock);
            pthread_mutex_unlock(&team.lock);
            spins = 0;
        }
        if (atomic_load(&team.stop)) return NULL;
        seen = g;
        team.fn(team.ctx, tid, team.n);
        atomic_fetch_sub_explicit(&team.remaining, 1, memory_order_release);
    }
}

static void team_stop(void)
{
    if (team.n <= 1) return;
    pthread_mutex_lock(&team.lock);
    atomic_store(&team.stop, 1);
    atomic_fetch_add(&team.generation, 1);
    pthread_cond_broadcast(&team.wake);
    pthread_mutex_unlock(&team.lock);
    for (int i = 1; i < team.n; i++) pthread_join(team.threads[i], NULL);
    free(team.threads);
    pthread_mutex_destroy(&team.lock);
    pthread_cond_destroy(&team.wake);
    team.threads = NULL;
    team.n = 1;
}

int pf_threads(void) { return team.n; }

void pf_set_threads(int n)
{
    static int registered;
    if (n < 1) n = 1;
    if (n > PF_MAX_THREADS) n = PF_MAX_THREADS;
    openblas_set_num_threads(1);
    if (n == team.n) return;
    team_stop();
    if (n == 1) return;
    team.threads = calloc((size_t)n, sizeof *team.threads);
    if (!team.threads) return; /* stay single-threaded */
    pthread_mutex_init(&team.lock, NULL);
    pthread_cond_init(&team.wake, NULL);
    atomic_store(&team.stop, 0);
    atomic_store(&team.barrier_count, 0);
    team.n = n;
    team.start_generation = atomic_load(&team.generation);
    for (int i = 1; i < n; i++)
        if (pthread_create(&team.threads[i], NULL, member_main, (void *)(size_t)i) != 0) {
            /* Could not grow the team: fall back to the members we have. */
            team.n = i;
            break;
        }
    if (!registered) {
        atexit(team_stop);
        registered = 1;
    }
}

void pf_parallel(pf_task_fn fn, void *ctx)
{
    if (team.n <= 1) {
        fn(ctx, 0, 1);
        return;
    }
    team.fn = fn;
    team.ctx = ctx;
    atomic_store(&team.remaining, team.n - 1);
    pthread_mutex_lock(&team.lock);
    atomic_fetch_add_explicit(&team.generation, 1, memory_order_release);
    pthread_cond_broadcast(&team.wake);
    pthread_mutex_unlock(&team.lock);
    fn(ctx, 0, team.n);
    int spins = 0;
    while (atomic_load_explicit(&team.remaining, memory_order_acquire) > 0) wait_turn(&spins);
}

/* Sense-reversing barrier for the members of a running task. */
void pf_barrier(void)
{
    if (team.n <= 1) return;
    unsigned phase = atomic_load_explicit(&team.barrier_phase, memory_order_acquire);
    if (atomic_fetch_add_explicit(&team.barrier_count, 1, memory_order_acq_rel) + 1 ==
        (unsigned)team.n) {
        atomic_store(&team.barrier_count, 0);
        atomic_store_explicit(&team.barrier_phase, phase + 1, memory_order_release);
    } else {
        int spins = 0;
        while (atomic_load_explicit(&team.barrier_phase, memory_order_acquire) == phase)
            wait_turn(&spins);
    }
}

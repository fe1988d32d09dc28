/* The tool under mpirun: a command's plan (run.h, pf_plan) shared out
 * among the ranks. Rank 0 deals the tasks of each stage in the plan's
 * order, one at a time, to whichever rank asks next (itself included: a
 * thread of rank 0 runs tasks while its main thread deals), and every rank
 * prepares the next stage only when the whole stage is done. A task runs
 * as in one process, into folders of its own, so the results do not depend
 * on the number of ranks or on who ran what. A failed task is printed by
 * its rank as one line naming it; no task is dealt after it, the running
 * ones finish, and rank 0 prints what finished, failed and never started.
 * Only rank 0 merges and prints the report.
 *
 * Only the main thread of a rank calls MPI (MPI_THREAD_FUNNELED), and a
 * rank that waits does so by testing its request between short sleeps:
 * MPI's blocking calls spin, and a spinning rank would take a core from
 * the rank that works beside it.
 *
 * With --data-parallel the command is not dealt: every rank runs it on its
 * share of the samples, with a reducer (core.h, pf_ctx_set_reducer) that
 * sums the library's full-batch partial sums by MPI_Allreduce in double on
 * a communicator of its own. The library calls the reducer from the
 * thread that runs the command, the main one. Those waits are blocking:
 * the ranks do equal work between two sums, so they arrive together, and
 * a sleep would cost more than the sum (one per Hessian product). Rank 0
 * alone writes and prints. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Launched by mpirun (or srun with PMIx): the launcher's environment. */
static int env_int(const char *name, int fallback)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : fallback;
}

int cli_mpi_launched(void)
{
    return env_int("OMPI_COMM_WORLD_SIZE", 0) > 0 || env_int("PMIX_SIZE", 0) > 0 ||
           getenv("PMIX_RANK") != NULL;
}

int cli_mpi_env_rank(void)
{
    int r = env_int("OMPI_COMM_WORLD_RANK", -1);
    return r >= 0 ? r : env_int("PMIX_RANK", 0);
}

#ifndef PF_MPI

int cli_mpi_run(const char *name, pf_command *cmd, pf_report *report, int *printer, pf_error *err)
{
    (void)cmd;
    (void)report;
    *printer = 1; /* every rank says it: none waits for another to print */
    return pf_fail(err, PF_EINPUT, "this pathfinder was built without Open MPI (install libopenmpi-dev "
                   "and rebuild); run '%s' without mpirun", name);
}

void cli_mpi_finish(void)
{
}

#else

#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

enum { TAG_ASK = 1, TAG_TASK = 2, MSG_LEN = sizeof(((pf_error *)0)->msg) };

/* A worker's message to rank 0: the task it ran (-1: none yet) and how it
 * went, asking for the next one. */
typedef struct {
    long task;
    int rc;
    char msg[MSG_LEN];
} ask_msg;

/* Wait for a request without spinning: test, then sleep a little longer
 * each time (up to 5 ms). */
static void lazy_wait(MPI_Request *req)
{
    int done = 0;
    long ns = 50000;
    for (;;) {
        MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (done) return;
        struct timespec t = {0, ns};
        nanosleep(&t, NULL);
        if (ns < 5000000) ns *= 2;
    }
}

static void lazy_bcast(void *buf, int n, MPI_Datatype type)
{
    MPI_Request req;
    MPI_Ibcast(buf, n, type, 0, MPI_COMM_WORLD, &req);
    lazy_wait(&req);
}

static void lazy_allreduce(const void *in, void *out, int n, MPI_Datatype type, MPI_Op op)
{
    MPI_Request req;
    MPI_Iallreduce(in, out, n, type, op, MPI_COMM_WORLD, &req);
    lazy_wait(&req);
}

/* One stage on rank 0: what the tasks came to. */
typedef struct {
    pf_plan *plan;
    const char *name;
    long n;
    pthread_mutex_t lock;
    long next;             /* the next task to deal */
    int stop;              /* a task failed: deal no more */
    long finished, failed;
    atomic_int local_done; /* rank 0's own thread has taken its last task */
    pf_error first;        /* the first failure, for the exit */
} dealer;

static long deal(dealer *d)
{
    pthread_mutex_lock(&d->lock);
    long i = !d->stop && d->next < d->n ? d->next++ : -1;
    pthread_mutex_unlock(&d->lock);
    return i;
}

static void task_failed(const char *name, const char *task, int rank, const char *msg)
{
    fprintf(stderr, "pathfinder %s: task '%s' failed on rank %d: %s\n", name, task, rank, msg);
}

static void record(dealer *d, long task, int rc, const char *msg)
{
    pthread_mutex_lock(&d->lock);
    if (rc) {
        d->failed++;
        d->stop = 1;
        if (!d->first.code) {
            d->first.code = rc;
            snprintf(d->first.msg, sizeof d->first.msg, "task '%s': %s", pf_plan_task(d->plan, task), msg);
        }
    } else {
        d->finished++;
    }
    pthread_mutex_unlock(&d->lock);
}

/* Rank 0's own share: the same tasks as any worker's. */
static void *local_worker(void *arg)
{
    dealer *d = arg;
    long i;
    while ((i = deal(d)) >= 0) {
        pf_error err;
        pf_error_clear(&err);
        int rc = pf_plan_run(d->plan, i, &err);
        if (rc) task_failed(d->name, pf_plan_task(d->plan, i), 0, err.msg);
        record(d, i, rc, err.msg);
    }
    atomic_store(&d->local_done, 1);
    return NULL;
}

/* Rank 0: deal a stage to itself and the size - 1 others, until every
 * worker has been told there is nothing left. */
static void deal_stage(dealer *d, int size)
{
    pthread_t th;
    int threaded = pthread_create(&th, NULL, local_worker, d) == 0;
    if (!threaded) local_worker(d);   /* no thread: rank 0 runs its share first */
    int waiting = size - 1;
    ask_msg m;
    MPI_Request req = MPI_REQUEST_NULL;
    long ns = 50000;
    while (waiting > 0 || !atomic_load(&d->local_done)) {
        if (waiting > 0 && req == MPI_REQUEST_NULL)
            MPI_Irecv(&m, (int)sizeof m, MPI_BYTE, MPI_ANY_SOURCE, TAG_ASK, MPI_COMM_WORLD, &req);
        int got = 0;
        MPI_Status st;
        if (req != MPI_REQUEST_NULL) MPI_Test(&req, &got, &st);
        if (got) {
            req = MPI_REQUEST_NULL;
            if (m.task >= 0) record(d, m.task, m.rc, m.msg);
            long next = deal(d);
            if (next < 0) waiting--;
            MPI_Send(&next, 1, MPI_LONG, st.MPI_SOURCE, TAG_TASK, MPI_COMM_WORLD);
            ns = 50000;
            continue;
        }
        struct timespec t = {0, ns};
        nanosleep(&t, NULL);
        if (ns < 2000000) ns *= 2;
    }
    if (threaded) pthread_join(th, NULL);
}

/* Ranks 1..: ask, run, ask again with how it went. */
static void work_stage(pf_plan *plan, const char *name, int rank)
{
    ask_msg m = {.task = -1};
    for (;;) {
        MPI_Send(&m, (int)sizeof m, MPI_BYTE, 0, TAG_ASK, MPI_COMM_WORLD);
        long next;
        MPI_Request req;
        MPI_Irecv(&next, 1, MPI_LONG, 0, TAG_TASK, MPI_COMM_WORLD, &req);
        lazy_wait(&req);
        if (next < 0) return;
        pf_error err;
        pf_error_clear(&err);
        memset(&m, 0, sizeof m);
        m.task = next;
        m.rc = pf_plan_run(plan, next, &err);
        if (m.rc) {
            task_failed(name, pf_plan_task(plan, next), rank, err.msg);
            snprintf(m.msg, sizeof m.msg, "%s", err.msg);
        }
    }
}

static const char *plural(long n) { return n == 1 ? "" : "s"; }

/* The plan's stages on every rank; the finish on rank 0. */
static int run_plan(const char *name, pf_command *cmd, int rank, int size, pf_report *report, pf_error *err)
{
    pf_plan *plan = NULL;
    int rc = pf_command_plan(cmd, &plan, err), any;
    /* every rank must have its plan, or none goes on */
    lazy_allreduce(&rc, &any, 1, MPI_INT, MPI_MAX);
    if (any && !rc) rc = pf_fail(err, any, "another rank could not plan the work");
    int stages = rc ? 0 : pf_plan_stages(plan);
    long total_done = 0;
    for (int s = 0; s < stages && !rc; s++) {
        long n = 0;
        rc = pf_plan_prepare(plan, s, &n, err);
        long mine[2] = {rc ? -1 : n, rc ? -1 : -n}, all[2];
        lazy_allreduce(mine, all, 2, MPI_LONG, MPI_MIN);
        if (!rc && (all[0] < 0 || all[0] != -all[1]))
            rc = pf_fail(err, PF_ERUNTIME, "the ranks see different work in stage %d of %d (is DIR on a "
                         "filesystem they all share?)", s + 1, stages);
        any = rc;
        lazy_allreduce(&rc, &any, 1, MPI_INT, MPI_MAX);
        if (any) {
            if (!rc) rc = pf_fail(err, any, "another rank could not prepare stage %d", s + 1);
            break;
        }
        long tally[3] = {0, 0, 0};   /* finished, failed, error code */
        if (rank == 0) {
            dealer d = {.plan = plan, .name = name, .n = n};
            pthread_mutex_init(&d.lock, NULL);
            pf_error_clear(&d.first);
            deal_stage(&d, size);
            pthread_mutex_destroy(&d.lock);
            tally[0] = d.finished;
            tally[1] = d.failed;
            tally[2] = d.first.code;
            if (d.failed) {
                *err = d.first;
                fprintf(stderr, "pathfinder %s: stage %d of %d: %ld task%s finished, %ld failed, %ld not "
                        "started%s\n", name, s + 1, stages, d.finished, plural(d.finished), d.failed,
                        n - d.finished - d.failed, s + 1 < stages ? "; the later stages not started" : "");
            }
        } else {
            work_stage(plan, name, rank);
        }
        lazy_bcast(tally, 3, MPI_LONG);
        total_done += tally[0];
        if (tally[1]) rc = (int)tally[2];
        if (rc && rank != 0) pf_fail(err, rc, "stopped: a task failed (rank 0 has the summary)");
    }
    /* the merge and the report: rank 0 alone, the others wait for it */
    int final = rc;
    if (rank == 0 && !rc) {
        rc = pf_plan_finish(plan, report, err);
        final = rc;
    }
    lazy_bcast(&final, 1, MPI_INT);
    if (rank != 0 && final && !rc) rc = pf_fail(err, final, "the finish on rank 0 failed");
    (void)total_done;
    pf_plan_free(plan);
    return rc;
}

/* ---- data-parallel ---------------------------------------------------------- */

/* The reducer: in-place sums over the ranks, on a communicator of its own
 * (so that the agreement at the end of a run cannot be taken for one of
 * them), timed for the summary line. */
typedef struct {
    MPI_Comm comm;
    long calls;
    double seconds;
} sum_state;

static int mpi_sum(double *buf, size_t n, void *user)
{
    sum_state *st = user;
    double t0 = MPI_Wtime();
    int rc = MPI_SUCCESS;
    /* (counts above INT_MAX in pieces) */
    for (size_t off = 0; off < n && rc == MPI_SUCCESS; off += (size_t)1 << 30) {
        size_t len = n - off < (size_t)1 << 30 ? n - off : (size_t)1 << 30;
        rc = MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)len, MPI_DOUBLE, MPI_SUM, st->comm);
    }
    st->seconds += MPI_Wtime() - t0;
    st->calls++;
    return rc == MPI_SUCCESS ? 0 : -1;
}

/* A rank that failed while the others may still be summing: they would
 * wait for it forever, so after this long it ends the job. */
enum { FAILED_RANK_WAIT_SECONDS = 60 };

/* Every rank runs the command; then they agree on how it went. */
static int run_data_parallel(const char *name, pf_command *cmd, int rank, int size, pf_report *report,
                             pf_error *err)
{
    sum_state st = {MPI_COMM_NULL, 0, 0.0};
    if (MPI_Comm_dup(MPI_COMM_WORLD, &st.comm) != MPI_SUCCESS)
        return pf_fail(err, PF_ERUNTIME, "MPI_Comm_dup failed");
    pf_command_reducer(cmd, mpi_sum, &st, rank, size);
    double t0 = MPI_Wtime();
    int rc = pf_command_run(cmd, report, err);
    double seconds = MPI_Wtime() - t0;
    /* [worst code, rank 0's code] */
    int mine[2] = {rc, rank == 0 ? rc : 0}, all[2] = {0, 0};
    MPI_Request req;
    MPI_Iallreduce(mine, all, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &req);
    if (rc) {
        double until = MPI_Wtime() + FAILED_RANK_WAIT_SECONDS;
        int done = 0;
        while (!done && MPI_Wtime() < until) {
            MPI_Test(&req, &done, MPI_STATUS_IGNORE);
            struct timespec t = {0, 2000000};
            if (!done) nanosleep(&t, NULL);
        }
        if (!done) {
            fprintf(stderr, "pathfinder %s: rank %d failed alone: %s; ending the job\n", name, rank, err->msg);
            MPI_Abort(MPI_COMM_WORLD, rc);
        }
    } else {
        lazy_wait(&req);
    }
    if (rank != 0 && rc && !all[1]) /* rank 0 went on: this one's message is news */
        fprintf(stderr, "pathfinder %s: rank %d: %s\n", name, rank, err->msg);
    if (rank == 0 && !rc && all[0]) {
        pf_report_free(report);
        rc = pf_fail(err, all[0], "another rank failed (its message is above)");
    }
    if (rank == 0 && !rc && size > 1 && !pf_command_quiet(cmd))
        fprintf(stderr, "pathfinder %s: data-parallel on %d ranks: %ld sums took %.3f s of %.3f s (%.1f%%)\n",
                name, size, st.calls, st.seconds, seconds, seconds > 0 ? 100.0 * st.seconds / seconds : 0.0);
    pf_command_reducer(cmd, NULL, NULL, 0, 1);
    MPI_Comm_free(&st.comm);
    return rc;
}

/* A command that is one task: rank 0 runs it, the others wait. */
static int run_single(pf_command *cmd, int rank, pf_report *report, pf_error *err)
{
    int rc = rank == 0 ? pf_command_run(cmd, report, err) : PF_OK;
    int final = rc;
    lazy_bcast(&final, 1, MPI_INT);
    if (rank != 0 && final) rc = pf_fail(err, final, "the task on rank 0 failed");
    return rc;
}

int cli_mpi_run(const char *name, pf_command *cmd, pf_report *report, int *printer, pf_error *err)
{
    int provided = 0, rank = 0, size = 1;
    *printer = cli_mpi_env_rank() == 0;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return pf_fail(err, PF_ERUNTIME, "MPI_Init_thread failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    *printer = rank == 0;
    int rc;
    if (provided < MPI_THREAD_FUNNELED) {
        rc = pf_fail(err, PF_ERUNTIME, "the MPI library offers no thread support (FUNNELED)");
    } else if (pf_command_data_parallel(cmd)) {
        rc = run_data_parallel(name, cmd, rank, size, report, err);
    } else if (pf_command_has_tasks(cmd)) {
        rc = run_plan(name, cmd, rank, size, report, err);
    } else {
        rc = run_single(cmd, rank, report, err);
    }
    return rc;
}

/* After rank 0 has printed: every rank is here before any leaves, so a
 * rank that exits with an error cannot have the launcher kill rank 0
 * before its message is out (Finalize's own wait may spin: hence the
 * lazy barrier first). */
void cli_mpi_finish(void)
{
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (!initialized || finalized) return;
    fflush(stdout);
    fflush(stderr);
    MPI_Request req;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    lazy_wait(&req);
    MPI_Finalize();
}

#endif

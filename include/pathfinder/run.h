/* pathfinder run: experiments in run folders, resumable, and the one state
 * format they share.
 *
 * Each call runs a whole experiment into a folder (made if missing, locked
 * while in use), writes its tables, state and analysis there, and can be
 * rerun to resume where it stopped, bit for bit. */
#ifndef PATHFINDER_RUN_H
#define PATHFINDER_RUN_H

#include "pathfinder/core.h"
#include "pathfinder/hessian.h"
#include "pathfinder/exp.h"
#include "pathfinder/io.h"

/* ----------------------------------------------------------------- states */

/* State files (state.c): the one format of every resumable run. Named,
 * typed, counted fields, little-endian, versioned, with a CRC-32; see the
 * format at the top of state.c. Build one with pf_state_new and the put
 * calls (errors surface at pf_state_write), read one back with
 * pf_state_read and ask for fields by name, type and count. */
#define PF_STATE_VERSION 2
typedef enum {
    PF_STATE_BYTES = 1, PF_STATE_I64 = 2, PF_STATE_U64 = 3, PF_STATE_F64 = 4, PF_STATE_F32 = 5
} pf_state_type;
typedef struct pf_state pf_state;

pf_state *pf_state_new(const char *kind);
void pf_state_free(pf_state *s);
const char *pf_state_kind(const pf_state *s);
void pf_state_put(pf_state *s, const char *name, pf_state_type type, const void *v, size_t count);
void pf_state_put_i64(pf_state *s, const char *name, int64_t v);
void pf_state_put_f64(pf_state *s, const char *name, double v);
void pf_state_put_str(pf_state *s, const char *name, const char *v);
/* Written atomically. */
int pf_state_write(const pf_state *s, const char *path, pf_error *err);
/* kind NULL: any. Old (0.1) state files are refused with a message. */
int pf_state_read(const char *path, const char *kind, pf_state **out, pf_error *err);
/* Element count of a field of that type, or -1 if there is none. */
long pf_state_count(const pf_state *s, const char *name, pf_state_type type);
/* Copy exactly count elements; an error names the file and the field. */
int pf_state_get(const pf_state *s, const char *name, pf_state_type type, void *v, size_t count,
                 pf_error *err);
const void *pf_state_data(const pf_state *s, const char *name, pf_state_type type, size_t *count);
int pf_state_get_i64(const pf_state *s, const char *name, int64_t *v, pf_error *err);
int pf_state_get_f64(const pf_state *s, const char *name, double *v, pf_error *err);
int pf_state_get_str(const pf_state *s, const char *name, char *v, size_t n, pf_error *err);
/* A trainer's state (pf_trainer_get_state) as fields PREFIX.kind, .step,
 * .rng, .m, .v (the optimizer buffers it has), and back. */
void pf_state_put_trainer(pf_state *s, const char *prefix, const pf_trainer_state *ts);
int pf_state_get_trainer(const pf_state *s, const char *prefix, size_t n_params,
                         pf_trainer_state *ts, pf_error *err);

/* ------------------------------------------------------------ progress */

/* What a run call tells as it goes, to a callback of the caller's (the
 * command line draws its progress lines from it). Fields that do not apply
 * to an event's kind are 0 (NaN for betas). The event, and what it points
 * to, lives for the duration of the call only. */
typedef enum {
    PF_EVENT_EPOCH,     /* a training epoch is under way: epoch, max_epochs, step, steps, loss */
    PF_EVENT_POINT,     /* a sweep point or path point is done */
    PF_EVENT_NOTE,      /* a line for the user: text ("resuming ...", "refining T3 ...") */
    PF_EVENT_WARNING,   /* a warning for the user: text */
    PF_EVENT_LANCZOS    /* a Lanczos step: index = Krylov dimension, total = wanted, epoch = converged */
} pf_event_kind;

typedef struct {
    pf_event_kind kind;
    const char *run;             /* the folder or pair ("0-1", "probe") it belongs to */
    const char *text;            /* NOTE, WARNING */
    long index, total;           /* point (or step) index, and how many there are when known */
    double beta;
    int direction;               /* +1 up, -1 down */
    int epoch, max_epochs;
    long step, steps;
    double loss;                 /* EPOCH: running mean of the epoch's minibatch losses */
    int epochs;                  /* POINT: epochs trained there */
    double train_loss, test_accuracy, test_error, r;
    const double *class_accuracy;   /* POINT: per-class test accuracy (n_classes), or NULL */
    int n_classes;
    int bridge, retries, jump;   /* path points: bridge level, refused tries, jump kind */
    double segment_max_test_error, dist_anchor, step_length;
    int diverged;
    double seconds;              /* since the call began */
} pf_event;

typedef void (*pf_event_fn)(void *ctx, const pf_event *e);

/* --------------------------------------------------------------- reports */

/* What a run call reports when it is done: one JSON document (what the
 * folder's JSON files hold, and the files written) and the same as text
 * tables for a terminal. Both allocated; free with pf_report_free. */
typedef struct {
    char *json;
    char *text;
} pf_report;

void pf_report_free(pf_report *r);

/* The figures of a folder are drawn by the figure library (fig.h:
 * pf_fig_folder), which a run call reaches through this hook, so that this
 * library links without PLplot. NULL: no figures. */
typedef int (*pf_figures_fn)(const char *dir, pf_error *err);

/* -------------------------------------------------------------- analysis */

/* How a sweep is analysed: the detector, when a plateau encodes a class,
 * and the refinement of each transition; which checkpoints are kept. */
typedef struct {
    pf_detect_config detect;
    pf_encoding encoding;
    int refine;              /* bisect each transition (a sweep run only; default 1) */
    double refine_tol;       /* down to an interval of this in beta (default 1e-6) */
    long save_every;         /* keep every N-th point's checkpoint (0: only those beside transitions
                              * and the last) */
    int keep_checkpoints;    /* keep them all */
} pf_analysis_config;

void pf_analysis_config_default(pf_analysis_config *c);

/* transitions DIR: detect the transitions, gaps and phases of a sweep
 * folder's table, reuse the refinements it records, and write
 * transitions.json, phases.json and (through figures) its figures. */
int pf_run_analysis(const char *dir, const pf_analysis_config *c, pf_figures_fn figures,
                    pf_report *out, pf_error *err);

/* hierarchy DIR...: merge the phases of several sweep folders (seeds, up and
 * down legs) into one hierarchy of nested accuracy basins; with out_dir,
 * write out_dir/phases.json and (through figures) its figure. */
int pf_run_hierarchy(const char *const *dirs, int n_dirs, const char *out_dir,
                     const pf_analysis_config *c, pf_figures_fn figures, pf_report *out,
                     pf_error *err);

/* ----------------------------------------------------------------- sweeps */

/* The paper's origin grid: 0, 0.0002, ..., 0.09 (451 points). */
#define PF_PAPER_GRID "0:0.09:0.0002"

/* A quasi-static sweep: train at each beta of a grid, warm-started from the
 * previous one, then detect, refine and explain the transitions. */
typedef struct {
    pf_data_options data;
    pf_model_spec model;
    pf_train_config protocol;     /* per beta; the sweep sets its beta and anchor */
    const char *grid;             /* a list of values and ranges (default PF_PAPER_GRID) */
    const char *direction;        /* "up" (default), "down" or "loop" (up, then back down) */
    long hessian_samples;         /* -1 (default): off; else lambda_min and lambda_max of H_E at
                                   * every point, by Lanczos on the first N samples (0: all) */
    pf_analysis_config analysis;
    int argc;                     /* the command line, recorded in config.json (may be 0) */
    char *const *argv;
    pf_event_fn progress;         /* may be NULL */
    void *progress_ctx;
    pf_figures_fn figures;        /* may be NULL */
} pf_sweep_config;

void pf_sweep_config_default(pf_sweep_config *c);

/* Run the sweep into dir, or resume the one there: bit for bit what an
 * uninterrupted run gives, for every optimizer and option. A folder that
 * holds another sweep (other settings), or results without a
 * config.json, is refused with PF_EINPUT. The report holds the
 * transitions, phases, hierarchy and the files written. */
int pf_run_sweep(pf_ctx *ctx, const char *dir, const pf_sweep_config *c, pf_report *out,
                 pf_error *err);

/* refine DIR T<k>: bisect one transition of a finished sweep again (to a
 * finer tolerance, say), from the checkpoints the sweep kept beside it,
 * with the sweep's own data, model and protocol as config.json records
 * them, on a context with as many threads as the sweep had (ctx NULL: one
 * made for the call). Rewrites that
 * transition's transitions/T<k>_below|above checkpoints, its entry in
 * transitions.json (with the tolerance) and the analysis; trains nothing
 * else. Reproducible: the same call gives the same bits. */
typedef struct {
    const char *transition;        /* its label: T1, T2, ... (up leg) or D1, ... (down leg) */
    double tol;                    /* final interval in beta (default: the sweep's, 1e-6) */
    pf_analysis_config analysis;   /* detection and encoding, as for the sweep */
    const pf_dataset *train_arrays, *test_arrays;   /* a sweep of arrays in memory: the same */
    pf_event_fn progress;
    void *progress_ctx;
    pf_figures_fn figures;
} pf_refine_config;

void pf_refine_config_default(pf_refine_config *c);
int pf_run_refine(pf_ctx *ctx, const char *dir, const pf_refine_config *c, pf_report *out,
                  pf_error *err);

/* ------------------------------------------------------------------ paths */

/* Pathfinder paths: start at one model, anchor the L2 term at another and
 * raise beta with warm starts; certified, compared with the straight line,
 * closed onto the anchor. Every decision is taken on training data (or on
 * a validation split of it): the test set is measured, never used. */
typedef struct {
    pf_data_options data;
    double val_fraction;          /* > 0: steer by a seeded validation split of this much of the
                                   * training set (trained on the rest); 0: by the training set */
    const char *act, *loss;       /* for checkpoints without pathfinder metadata (NULL: theirs) */
    uint64_t seed;                /* of the minibatch shuffling */
    pf_train_config protocol;     /* per beta */
    const char *grid;             /* a fixed grid of betas, or NULL: the adaptive schedule */
    pf_schedule_config schedule;  /* step_cap and tol as fractions of ||A - B|| */
    pf_certify_config certify;
    int bridge_depth;             /* levels of bridges across snaps (0: none) */
    double bridge_barrier;        /* bridge a segment that climbs more than this (points) */
    long hessian_samples;         /* -1: off; else the extremes of H_E at every point (0: all) */
    pf_analysis_config analysis;  /* how the transitions crossed are detected and explained */
    long star;                    /* connect: -1 every pair i < j; else from model star to each other */
    pf_event_fn progress;
    void *progress_ctx;
    pf_figures_fn figures;
} pf_path_run_config;

void pf_path_run_config_default(pf_path_run_config *c);

/* connect: a path for every pair of the models (dir/pair_I_J/ when there are
 * more than two, else dir itself); pairs done before (summary.json) are
 * kept, a pair stopped midway continues from its state.bin bit for bit. */
int pf_run_connect(pf_ctx *ctx, const char *dir, const char *const *models, int n_models,
                   const pf_path_run_config *c, pf_report *out, pf_error *err);
/* probe: the path from a minimum toward a saddle (a transition's model),
 * and the transitions it crosses, in order. */
int pf_run_probe(pf_ctx *ctx, const char *dir, const char *from, const char *anchor,
                 const pf_path_run_config *c, pf_report *out, pf_error *err);

/* --------------------------------------------------------------- spectra */

/* The Hessian spectrum of a checkpoint. */
typedef struct {
    pf_data_options data;
    pf_lanczos_config lanczos;    /* k (default 10) at each requested end, tolerance, dimension cap */
    double beta;                  /* of L_beta; NaN (default): the checkpoint's */
    const char *anchor;           /* for L_beta's value and r (NULL: the origin) */
    const char *act;              /* for checkpoints without pathfinder metadata */
    long subset;                  /* the first N training samples (0: all) */
    long block;                   /* samples per sgemm block (default 512) */
    double neg_tol;               /* saddle index: eigenvalues below -neg_tol x max|eigenvalue| */
    const char *out;              /* also write the results as .json or .csv (NULL: no) */
    const char *vectors;          /* also the eigenvectors, as float32 rows in .npy (NULL: no) */
    const char *density;          /* also the spectral density as .csv (NULL: no) */
    pf_slq_config slq;            /* its probes (4) and Lanczos steps (80) */
    double sigma;                 /* its Gaussian width (0: 1% of the spectral range) */
    long grid;                    /* its grid points (400) */
    long time_hvp;                /* > 0: only time this many single products */
    pf_event_fn progress;
    void *progress_ctx;
} pf_spectrum_config;

void pf_spectrum_config_default(pf_spectrum_config *c);

/* The report holds the eigenvalues of H_E and H_L, residuals, the saddle
 * indices of E and L_beta, and the cost (Krylov dimension, products, time). */
int pf_run_spectrum(pf_ctx *ctx, const char *model, const pf_spectrum_config *c, pf_report *out,
                    pf_error *err);

/* ---------------------------------------------------------------- saddles */

/* The index-1 saddle of L_beta next to the minimum near a model (a
 * transition's below-side model, or any): Newton-CG to the minimum, then
 * minimum-mode following to the saddle, both to grad_tol; the index is
 * counted by Lanczos. The saddle is written to out_path (safetensors);
 * the report: beta, L_beta at the minimum and at the saddle, the barrier
 * (the integral of the gradient from the minimum to the saddle), the
 * index, the test accuracy and encoded classes at both.
 * With a series of betas, the minimum is followed quasi-statically from the
 * model to each beta in turn (nearest the model's beta first), the saddle
 * found at each and written to out_path/saddle_<k>.safetensors, and the
 * barriers and lambda_min(H_L) at the minima over the index-1 points are
 * fitted with a (beta_c - beta)^gamma (the fold: 3/2 and 1/2); the report,
 * points and fits, also goes to out_path/saddles.json. */
typedef struct {
    pf_data_options data;
    double beta;                  /* NaN (default): the checkpoint's */
    const char *anchor;           /* NULL: the origin */
    double grad_tol;              /* max |gradient| (default 1e-6) */
    int max_iter;                 /* of the saddle search (default 200) */
    int direction;                /* +1 / -1 along the soft mode; 0 (default): the fold's side */
    pf_encoding encoding;         /* which classes count as encoded (test accuracy above threshold) */
    const double *series;         /* n_series > 0: a quasi-static series of betas, out_path a folder */
    long n_series;
    pf_event_fn progress;         /* may be NULL: a NOTE after each saddle of a series */
    void *progress_ctx;
} pf_saddle_run_config;

void pf_saddle_run_config_default(pf_saddle_run_config *c);
int pf_run_saddle(pf_ctx *ctx, const char *model, const char *out_path, const pf_saddle_run_config *c,
                  pf_report *out, pf_error *err);

/* ----------------------------------------------------------------- models */

/* Train one model at one beta (the paper protocol by default). */
typedef struct {
    pf_data_options data;
    pf_model_spec model;
    pf_train_config protocol;
    double beta;                  /* the L2 strength: (beta/2)||theta - anchor||^2 */
    pf_event_fn progress;
    void *progress_ctx;
} pf_train_run_config;

void pf_train_run_config_default(pf_train_run_config *c);

/* Train and write out (a safetensors checkpoint). With seeds (n_seeds of
 * them), one model per seed, out containing {seed}; a seed whose file
 * exists is skipped, so a rerun resumes. A model whose training diverged
 * is not written (PF_ERUNTIME). The report: one JSON line per model. */
int pf_run_train(pf_ctx *ctx, const char *out, const uint64_t *seeds, long n_seeds,
                 const pf_train_run_config *c, pf_report *report, pf_error *err);
/* out with every {seed} replaced by seed (-1 if it does not fit in n). */
int pf_seed_path(char *dst, size_t n, const char *pattern, uint64_t seed);

/* The metrics of a checkpoint on train and test data: loss, accuracy,
 * per-class accuracy, r = ||theta - anchor|| and L_beta (beta NaN: the
 * checkpoint's; act: for checkpoints without metadata), with the input
 * layer run as input_layer decides for each set. One JSON line. */
int pf_run_eval(pf_ctx *ctx, const char *model, const pf_data_options *data, double beta,
                const char *anchor, const char *act, pf_input_layer input_layer, pf_report *report,
                pf_error *err);

/* -------------------------------------------------------------- commands */

/* Every run call by name, with its options given as the command line
 * spells them (without the dashes): the command line and the bindings both
 * go through these, so their options, checks, defaults and help are the
 * library's. Commands: train, eval, hessian, sweep, transitions,
 * hierarchy, connect, probe (pf_command_name(i) lists them, NULL after the
 * last). */
typedef struct pf_command pf_command;

const char *pf_command_name(int i);
int pf_command_new(const char *name, pf_command **cmd, pf_error *err);
void pf_command_free(pf_command *cmd);
/* Its options: name i (NULL past the last), and whether it takes a value. */
int pf_command_n_options(const pf_command *cmd);
const char *pf_command_option(const pf_command *cmd, int i, int *takes_value);
/* Set an option (value NULL for a flag); PF_EINPUT naming the option and
 * what it needs. Values are copied. */
int pf_command_set(pf_command *cmd, const char *option, const char *value, pf_error *err);
/* A positional argument: a checkpoint, a folder. */
int pf_command_arg(pf_command *cmd, const char *arg, pf_error *err);
/* Data in memory instead of --data (borrowed; they must outlive the run). */
int pf_command_arrays(pf_command *cmd, const pf_dataset *train, const pf_dataset *test, pf_error *err);
void pf_command_events(pf_command *cmd, pf_event_fn fn, void *ctx);
void pf_command_figures(pf_command *cmd, pf_figures_fn fn);
/* The command line it came from, recorded in a sweep's config.json. */
void pf_command_line(pf_command *cmd, int argc, char *const *argv);
int pf_command_quiet(const pf_command *cmd);
int pf_command_json(const pf_command *cmd);
/* 1 if --data-parallel was given: the caller then runs the command in
 * every one of several processes, each with a reducer (pf_ctx_set_reducer)
 * handed over here, before pf_command_run; the command loads its share of
 * the samples in each and writes its files in rank 0 only. */
int pf_command_data_parallel(const pf_command *cmd);
void pf_command_reducer(pf_command *cmd, pf_reduce_fn sum, void *user, int rank, int size);
/* --help, with the defaults the library sets (allocated). */
char *pf_command_help(const pf_command *cmd);
int pf_command_run(pf_command *cmd, pf_report *out, pf_error *err);

/* ------------------------------------------------------------------ plans */

/* A command's work as independent tasks, for running them on many
 * processes (the MPI driver) or one after another: stages of tasks, each
 * task into folders of its own, then a finishing step that merges (the
 * hierarchy of several seeds, the table of several pairs). The tasks of a
 * stage may depend on what the stages before it wrote, so a stage is
 * prepared only once they are all done; a task's results never depend on
 * which process runs it or in what order. Every task resumes as the
 * command does: a finished task is a quick no-op when run again.
 *
 * sweep: 0: the sweep of each seed (--seeds; else the one sweep), 1: the
 * bisection of each transition found, 2: each sweep's analysis; finish: the
 * merged hierarchy of several seeds. connect and probe: 0: each pair (each
 * anchor); finish: the table. hessian: 0: each checkpoint; finish: the
 * table. Other commands: one task, and the finish prints its report. */
typedef struct pf_plan pf_plan;

/* The plan of a command whose options are set (the command must outlive it). */
int pf_command_plan(pf_command *cmd, pf_plan **plan, pf_error *err);
void pf_plan_free(pf_plan *p);
int pf_plan_stages(const pf_plan *p);
/* Prepare stage s (every task of the stages before it done): its tasks. */
int pf_plan_prepare(pf_plan *p, int stage, long *n_tasks, pf_error *err);
/* The prepared stage's task i: its name (a folder, a transition) and run. */
const char *pf_plan_task(const pf_plan *p, long i);
int pf_plan_run(pf_plan *p, long i, pf_error *err);
/* After the last stage, in one process: merge and report. */
int pf_plan_finish(pf_plan *p, pf_report *out, pf_error *err);
/* Every stage's tasks in order in this process, then the finish. */
int pf_plan_run_all(pf_plan *p, pf_report *out, pf_error *err);
/* 1 if the command splits into several tasks (its plan is more than the
 * command run once). */
int pf_command_has_tasks(const pf_command *cmd);

#endif

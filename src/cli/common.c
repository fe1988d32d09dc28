/* Helpers shared by the commands: errors, numbers, data options, progress,
 * JSON output. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cli_error(const char *cmd, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "pathfinder%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "pathfinder %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see pathfinder %s --help)\n", cmd);
    va_end(ap);
    return PF_EINPUT;
}

int cli_parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int cli_parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno) return -1;
    *out = v;
    return 0;
}

int cli_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s == '-') return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || errno) return -1;
    *out = (uint64_t)v;
    return 0;
}

void cli_common_default(cli_common *c)
{
    memset(c, 0, sizeof *c);
    pf_data_options_default(&c->data);
    c->threads = 1;
}

/* --normalize auto | none | MEAN,STD */
static const char *parse_normalize(void *opts, const char *arg)
{
    cli_common *c = opts;
    if (strcmp(arg, "auto") == 0) {
        c->data.norm = PF_NORM_AUTO;
        return NULL;
    }
    if (strcmp(arg, "none") == 0) {
        c->data.norm = PF_NORM_NONE;
        return NULL;
    }
    char buf[128];
    snprintf(buf, sizeof buf, "%s", arg);
    char *comma = strchr(buf, ',');
    const char *need = "auto, none or MEAN,STD with STD > 0";
    if (!comma) return need;
    *comma = '\0';
    if (cli_parse_double(buf, &c->data.mean) || cli_parse_double(comma + 1, &c->data.std) ||
        !(c->data.std > 0))
        return need;
    c->data.norm = PF_NORM_FIXED;
    return NULL;
}

static void show_normalize(const void *opts, char *buf, size_t n)
{
    (void)opts;
    snprintf(buf, n, "auto: MNIST by the paper's mean %g and std %g, other images by their training "
             "set's, tables feature by feature", PF_MNIST_MEAN, PF_MNIST_STD);
}

static const char *const target_names[] = {"auto", "class", "regression", NULL};

const cli_option cli_data_rows[] = {
    {CLI_SECTION, .help = "Data:"},
    {CLI_STR, "data", "SPEC", CLI_OFF(cli_common, data.spec), .help =
     "mnist, fashion-mnist, or a folder with IDX files (train-images-idx3-ubyte[.gz] ...), "
     "train.csv/test.csv, or train_x.npy/train_y.npy/test_x.npy/test_y.npy"},
    {CLI_LONG, "train-subset", "N", CLI_OFF(cli_common, data.train_subset), 1, 1e15,
     CLI_NO_DEFAULT, "train on a fixed subset of N samples, drawn with --subset-seed (default: all)", .given = 0},
    {CLI_U64, "subset-seed", "S", CLI_OFF(cli_common, data.subset_seed), 0, 1.8e19, 0,
     "seed that draws the subset", .given = 0},
    {CLI_CUSTOM, "normalize", "MODE", 0, .help = "auto, none, or MEAN,STD", .parse = parse_normalize,
     .show = show_normalize},
    {CLI_CHOICE, "target", "KIND", CLI_OFF(cli_common, target), .help =
     "auto (integral single targets are class labels), class or regression", .choices = target_names},
    {CLI_INT, "targets", "K", CLI_OFF(cli_common, data.n_targets), 1, 1 << 20, CLI_NO_DEFAULT,
     "CSV: number of trailing target columns (default 1)", .given = 0},
    {CLI_END},
};

const cli_option cli_other_rows[] = {
    {CLI_SECTION, .help = "Other:"},
    {CLI_INT, "threads", "N", CLI_OFF(cli_common, threads), 1, PF_MAX_THREADS, 0,
     "size of pathfinder's thread team, which splits every minibatch and data pass; the same "
     "seed and thread count give the same output", .given = 0},
    {CLI_FLAG, "quiet", NULL, CLI_OFF(cli_common, quiet), .help = "no progress on stderr"},
    {CLI_FLAG, "json", NULL, CLI_OFF(cli_common, json), .help =
     "print the result as one JSON document on stdout instead of the tables"},
    {CLI_END},
};

void cli_common_finish(cli_common *c)
{
    static const pf_target_kind kinds[] = {PF_TARGET_AUTO, PF_TARGET_CLASS, PF_TARGET_REGRESSION};
    c->data.target = kinds[c->target];
}

void cli_progress_init(cli_progress *p, const char *cmd, int quiet)
{
    memset(p, 0, sizeof *p);
    p->cmd = cmd;
    p->quiet = quiet;
    p->terminal = !quiet && isatty(STDERR_FILENO);
}

void cli_progress_done(cli_progress *p)
{
    if (p->printed) fprintf(stderr, "\r\033[K");
    p->printed = 0;
}

static void epoch_line(cli_progress *c, const pf_event *e)
{
    double done = (double)(e->epoch - 1) * (double)e->steps + (double)e->step;
    double rate = e->seconds > 0 ? done / e->seconds : 0.0;
    double left = rate > 0 ? (double)(e->steps - e->step) / rate : 0.0;
    fprintf(stderr, "\r\033[Kbeta %-8g epoch %d/%d  step %ld/%ld  loss %.5f  %.0f steps/s  epoch ETA %.1fs",
            e->beta, e->epoch, e->max_epochs, e->step, e->steps, e->loss, rate, left);
    fflush(stderr);
    c->printed = 1;
}

static void point_line(const pf_event *e)
{
    if (e->dist_anchor > 0 || e->step_length > 0 || e->bridge) {   /* a path's point */
        fprintf(stderr, "[%s] %s %ld beta %-10.4g test err %6.2f%% (segment max %6.2f%%)  |theta-B| %9.4f  "
                "step %8.4f%s%s  %.1fs\n", e->run, e->bridge ? "bridge" : "point", e->index, e->beta,
                e->test_error, e->segment_max_test_error, e->dist_anchor, e->step_length,
                e->retries ? "  retried" : "", e->jump == 1 ? "  JUMP" : e->jump == 2 ? "  drift" : "",
                e->seconds);
        return;
    }
    fprintf(stderr, "[%ld/%ld] beta %-9.6g %-4s epochs %2d  test acc %6.2f%%  r %8.4f  E %.4f  %.1fs\n",
            e->index + 1, e->total, e->beta, e->direction > 0 ? "up" : "down", e->epochs, e->test_accuracy,
            e->r, e->train_loss, e->seconds);
}

void cli_event(void *ctx, const pf_event *e)
{
    cli_progress *c = ctx;
    switch (e->kind) {
    case PF_EVENT_EPOCH:
        if (c->terminal) epoch_line(c, e);
        break;
    case PF_EVENT_POINT:
        if (!c->terminal) break;
        cli_progress_done(c);
        point_line(e);
        break;
    case PF_EVENT_NOTE:
        if (c->quiet) break;
        cli_progress_done(c);
        fprintf(stderr, "pathfinder %s: %s\n", c->cmd, e->text);
        break;
    case PF_EVENT_WARNING:
        cli_progress_done(c);
        fprintf(stderr, "pathfinder %s: warning: %s\n", c->cmd, e->text);
        break;
    case PF_EVENT_LANCZOS:
        if (!c->terminal) break;
        fprintf(stderr, "\r\033[Klanczos: Krylov dimension %ld, %d/%ld converged, %.1f s", e->index,
                e->epoch, e->total, e->seconds);
        fflush(stderr);
        c->printed = 1;
        break;
    }
}

void cli_print_report(const pf_report *r, int json)
{
    const char *text = json ? r->json : r->text;
    if (!text) return;
    fputs(text, stdout);
    if (json) fputc('\n', stdout);
    fflush(stdout);
}




void cli_print_json(cJSON *obj)
{
    char *s = cJSON_PrintUnformatted(obj);
    if (s) {
        puts(s);
        fflush(stdout);
        free(s);
    }
    cJSON_Delete(obj);
}

/* ---- analysis options ------------------------------------------------------- */

const cli_option cli_detect_rows[] = {
    {CLI_SECTION, .help = "Transitions:"},
    {CLI_INT, "window", "N", CLI_OFF(pf_analysis_config, detect.window), 2, 1000, 0,
     "points on each side for the local trends", .given = 0},
    {CLI_DOUBLE, "threshold", "X", CLI_OFF(pf_analysis_config, detect.threshold), 0, INFINITY, CLI_LO_OPEN,
     "jump of log r over the local noise needed for a transition", .given = 0},
    {CLI_DOUBLE, "min-jump", "X", CLI_OFF(pf_analysis_config, detect.min_rel_jump), 0, INFINITY, 0,
     "smallest relative drop of r that counts", .given = 0},
    {CLI_DOUBLE, "gap-factor", "X", CLI_OFF(pf_analysis_config, detect.gap_factor), 0, INFINITY, 0,
     "a grid step this many times wider than its neighbours' (in beta and in log beta) is a phase "
     "boundary, not a transition (0: never)", .given = 0},
    {CLI_DOUBLE, "encoded-threshold", "P", CLI_OFF(pf_analysis_config, encoding.threshold), 0, 100, 0,
     "a class is encoded on a plateau when its mean test accuracy there is above P percent...", .given = 0},
    {CLI_DOUBLE, "encoded-fraction", "F", CLI_OFF(pf_analysis_config, encoding.fraction), 0, 1, 0,
     "...and it is above P on at least F of the plateau's points (0: the mean alone); classes above "
     "P on a quarter of the points or more but not encoded are partial", .given = 0},
    {CLI_END},
};

const cli_option cli_refine_rows[] = {
    {CLI_DOUBLE, "refine-tol", "X", CLI_OFF(pf_analysis_config, refine_tol), 0, INFINITY, CLI_LO_OPEN,
     "bisect each transition in beta down to an interval of X", .given = 0},
    {CLI_END},
};

const cli_option cli_no_refine_rows[] = {
    {CLI_FLAG, "no-refine", NULL, 0, .help = "detect transitions but do not bisect them"},
    {CLI_END},
};

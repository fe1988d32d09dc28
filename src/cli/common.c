/* The command line's messages and progress: one-line errors, and the
 * library's events drawn on stderr. */
#include <stdarg.h>
#include <stdio.h>
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
    case PF_EVENT_POINT:   /* whole lines: in a log as on a terminal */
        if (c->quiet) break;
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

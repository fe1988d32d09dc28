/* A beta sweep on a small MNIST subset with resume, then one of its
 * transitions refined further: the public API of libpathfinder alone.
 *
 *   cc sweep_refine.c $(pkg-config --cflags --libs pathfinder pathfinder-fig)
 *   ./a.out DIR        (interrupt it and run it again: it resumes bit for bit)
 *
 * Data come from $PATHFINDER_DATA/mnist (see the README). */
#include <stdio.h>

#include <pathfinder.h>

/* The library reports progress as events; a program prints what it likes. */
static void on_event(void *ctx, const pf_event *e)
{
    (void)ctx;
    if (e->kind == PF_EVENT_POINT)
        printf("point %ld/%ld  beta %.4f  test accuracy %.2f%%  r %.3f\n", e->index + 1, e->total,
               e->beta, e->test_accuracy, e->r);
    else if (e->kind == PF_EVENT_NOTE || e->kind == PF_EVENT_WARNING)
        printf("%s\n", e->text);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    pf_error err;
    pf_ctx *ctx = NULL;
    if (pf_ctx_create(&ctx, 2, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return err.code;
    }

    /* The paper's protocol and defaults, made smaller: 3000 training
     * samples, at most 6 epochs per beta, beta = 0 and then 0.06 to 0.1. */
    pf_sweep_config c;
    pf_sweep_config_default(&c);
    c.data.train_subset = 3000;
    c.protocol.max_epochs = 6;
    c.grid = "0,0.06:0.1:0.0025";
    c.analysis.detect.threshold = 4;
    c.analysis.refine_tol = 1e-3;
    c.progress = on_event;
    c.figures = pf_fig_folder;   /* or NULL: no figures, no PLplot */

    pf_report report;
    int rc = pf_run_sweep(ctx, dir, &c, &report, &err);
    if (rc == PF_OK) {
        fputs(report.text, stdout);
        pf_report_free(&report);

        /* The first transition, bisected ten times finer. The sweep's data,
         * model and protocol come from DIR/config.json. */
        pf_refine_config r;
        pf_refine_config_default(&r);
        r.transition = "T1";
        r.tol = 1e-4;
        r.analysis = c.analysis;
        r.progress = on_event;
        r.figures = pf_fig_folder;
        rc = pf_run_refine(ctx, dir, &r, &report, &err);
        if (rc == PF_OK) {
            fputs(report.text, stdout);
            pf_report_free(&report);
        }
    }
    if (rc) fprintf(stderr, "%s\n", err.msg);
    pf_ctx_free(ctx);
    return rc;
}

/* Two minima trained from different seeds, the Pathfinder path between
 * them, and a probe from one of them toward a saddle a sweep found: the
 * public API of libpathfinder alone.
 *
 *   cc connect_probe.c $(pkg-config --cflags --libs pathfinder pathfinder-fig)
 *   ./a.out DIR SADDLE.safetensors   (e.g. a sweep's DIR/transitions/T1_above.safetensors)
 *
 * Every step resumes when run again: minima already written are kept, and a
 * path stopped midway continues from its state. */
#include <stdint.h>
#include <stdio.h>

#include <pathfinder.h>

static int fail(const pf_error *err)
{
    fprintf(stderr, "%s\n", err->msg);
    return err->code;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s DIR SADDLE.safetensors\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1], *saddle = argv[2];
    pf_error err;
    pf_ctx *ctx = NULL;
    if (pf_ctx_create(&ctx, 2, &err)) return fail(&err);
    char pattern[4096], a[4096], b[4096], out[4096];
    snprintf(pattern, sizeof pattern, "%s/minima/seed{seed}.safetensors", dir);
    const uint64_t seeds[2] = {1, 2};
    pf_seed_path(a, sizeof a, pattern, seeds[0]);
    pf_seed_path(b, sizeof b, pattern, seeds[1]);

    /* two minima at beta = 0 on 3000 training samples */
    pf_train_run_config t;
    pf_train_run_config_default(&t);
    t.data.train_subset = 3000;
    t.protocol.max_epochs = 4;
    pf_report report;
    int rc = pf_run_train(ctx, pattern, seeds, 2, &t, &report, &err);
    if (rc) return pf_ctx_free(ctx), fail(&err);
    fputs(report.json, stdout);
    pf_report_free(&report);

    /* the path from A to B, with coarser steps than the defaults */
    pf_path_run_config p;
    pf_path_run_config_default(&p);
    p.data = t.data;
    p.protocol.max_epochs = 2;
    p.schedule.ratio = p.schedule.max_ratio = 3;
    p.schedule.step_cap = 0.25;
    p.schedule.tol = 0.05;
    p.figures = pf_fig_folder;
    const char *models[2] = {a, b};
    snprintf(out, sizeof out, "%s/connect", dir);
    rc = pf_run_connect(ctx, out, models, 2, &p, &report, &err);
    if (rc) return pf_ctx_free(ctx), fail(&err);
    fputs(report.text, stdout);
    pf_report_free(&report);

    /* from minimum A toward the saddle: the transitions the path crosses.
     * Kept short here (12 points, no bridges); a real probe runs to the
     * saddle with the defaults. */
    p.schedule.max_points = 12;
    p.bridge_depth = 0;
    snprintf(out, sizeof out, "%s/probe", dir);
    rc = pf_run_probe(ctx, out, a, saddle, &p, &report, &err);
    if (rc) return pf_ctx_free(ctx), fail(&err);
    fputs(report.text, stdout);
    pf_report_free(&report);
    pf_ctx_free(ctx);
    return 0;
}

/* The extreme Hessian eigenvalues of a checkpoint, its saddle index, and
 * the spectral density: the public API of libpathfinder alone.
 *
 *   cc spectrum.c $(pkg-config --cflags --libs pathfinder)
 *   ./a.out MODEL.safetensors DENSITY.csv */
#include <stdio.h>

#include <pathfinder.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.safetensors DENSITY.csv\n", argv[0]);
        return 2;
    }
    pf_error err;
    pf_ctx *ctx = NULL;
    pf_spectrum_config c;
    pf_spectrum_config_default(&c);
    c.lanczos.k = 5;          /* five eigenvalues at each end */
    c.subset = 2000;          /* of E on the first 2000 training samples */
    c.density = argv[2];      /* and the density by stochastic Lanczos quadrature */
    pf_report report;
    int rc = pf_ctx_create(&ctx, 2, &err);
    if (!rc) rc = pf_run_spectrum(ctx, argv[1], &c, &report, &err);
    if (!rc) {
        fputs(report.text, stdout);
        pf_report_free(&report);
    } else {
        fprintf(stderr, "%s\n", err.msg);
    }
    pf_ctx_free(ctx);
    return rc;
}

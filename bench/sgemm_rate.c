/* The machine's sgemm rate: best of several n x n x n products, with the
 * given number of OpenBLAS threads. Prints one JSON line. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1024, threads = argc > 2 ? atoi(argv[2]) : 1;
    if (n < 16 || threads < 1) {
        fprintf(stderr, "usage: sgemm_rate N THREADS\n");
        return 2;
    }
    openblas_set_num_threads(threads);
    size_t nn = (size_t)n * n;
    float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c);
    if (!a || !b || !c) return 1;
    for (size_t i = 0; i < nn; i++) {
        a[i] = (float)(i % 7) * 1e-3f;
        b[i] = (float)(i % 5) * 1e-3f;
    }
    double best = 1e30;
    for (int rep = 0; rep < 8; rep++) {
        double t = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        t = now() - t;
        if (rep && t < best) best = t; /* the first call warms up */
    }
    printf("{\"n\": %d, \"threads\": %d, \"gflops\": %.2f}\n", n, threads, 2.0 * n * nn / best / 1e9);
    free(a), free(b), free(c);
    return 0;
}

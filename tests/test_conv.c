/* Convolution and pooling kernels: the double reference against central
 * finite differences, and the float fast paths (im2col + sgemm) against the
 * reference, with and without bias, stride and padding; shape errors; and
 * max pooling's rule for ties. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/conv.h"

static double *random_doubles(pf_rng *rng, size_t n)
{
    double *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = 2 * pf_rng_uniform(rng) - 1;
    return v;
}

static float *to_float(const double *v, size_t n)
{
    float *f = malloc(n * sizeof *f);
    for (size_t i = 0; i < n; i++) f[i] = (float)v[i];
    return f;
}

/* max |a - b| / max |b|, over n entries. */
static double rel_err(const float *a, const double *b, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs(a[i] - b[i]));
        den = fmax(den, fabs(b[i]));
    }
    return den > 0 ? num / den : num;
}

typedef struct {
    int in_c, h, w, out_c, k, stride, pad, bias;
} conv_case;

static const conv_case CASES[] = {
    {1, 6, 6, 3, 3, 1, 0, 1}, /* plain */
    {2, 7, 5, 4, 3, 2, 1, 0}, /* stride and padding, no bias, not square */
    {3, 5, 5, 2, 5, 1, 2, 1}, /* kernel as large as the input, padded */
    {2, 4, 4, 3, 1, 1, 0, 1}, /* 1x1 */
    {1, 8, 8, 2, 4, 3, 1, 1}, /* stride that leaves a border unread */
};

static pf_conv_shape case_shape(const conv_case *k)
{
    pf_conv_shape s;
    assert_int_equal(pf_conv_shape_init(&s, k->in_c, k->h, k->w, k->out_c, k->k, k->stride, k->pad,
                                        NULL), PF_OK);
    return s;
}

/* L = <g, conv(in; w, b)>: a scalar whose gradient is the backward pass of g. */
static double conv_objective(const double *g, const double *in, const double *w, const double *b,
                             const pf_conv_shape *s, int B, double *out)
{
    pf_conv_forward_ref(out, in, w, b, s, B);
    double L = 0.0;
    for (size_t i = 0; i < (size_t)B * pf_conv_out_size(s); i++) L += g[i] * out[i];
    return L;
}

/* Central differences on every entry of v (one of in, w, b) against grad. */
static void check_fd_entries(double *v, size_t n, const double *grad, const double *g,
                             const double *in, const double *w, const double *b,
                             const pf_conv_shape *s, int B, double *out)
{
    const double h = 1e-5;
    for (size_t i = 0; i < n; i++) {
        double keep = v[i];
        v[i] = keep + h;
        double up = conv_objective(g, in, w, b, s, B, out);
        v[i] = keep - h;
        double down = conv_objective(g, in, w, b, s, B, out);
        v[i] = keep;
        double fd = (up - down) / (2 * h);
        assert_true(fabs(fd - grad[i]) <= 1e-7 * (1 + fabs(fd)));
    }
}

static void test_conv_reference_matches_finite_differences(void **state)
{
    (void)state;
    pf_rng rng;
    pf_rng_seed(&rng, 7);
    const int B = 2;
    for (size_t c = 0; c < sizeof CASES / sizeof *CASES; c++) {
        const conv_case *k = &CASES[c];
        pf_conv_shape s = case_shape(k);
        size_t ni = B * pf_conv_in_size(&s), no = B * pf_conv_out_size(&s);
        size_t nw = pf_conv_weight_size(&s);
        double *in = random_doubles(&rng, ni), *w = random_doubles(&rng, nw);
        double *b = k->bias ? random_doubles(&rng, (size_t)s.out_c) : NULL;
        double *g = random_doubles(&rng, no), *out = malloc(no * sizeof *out);
        double *din = malloc(ni * sizeof *din), *dw = calloc(nw, sizeof *dw);
        double *db = calloc((size_t)s.out_c, sizeof *db);
        pf_conv_backward_ref(din, dw, k->bias ? db : NULL, g, in, w, &s, B);
        check_fd_entries(in, ni, din, g, in, w, b, &s, B, out);
        check_fd_entries(w, nw, dw, g, in, w, b, &s, B, out);
        if (b) check_fd_entries(b, (size_t)s.out_c, db, g, in, w, b, &s, B, out);
        free(in), free(w), free(b), free(g), free(out), free(din), free(dw), free(db);
    }
}

static void test_conv_fast_path_matches_reference(void **state)
{
    (void)state;
    pf_rng rng;
    pf_rng_seed(&rng, 11);
    const int B = 3;
    for (size_t c = 0; c < sizeof CASES / sizeof *CASES; c++) {
        const conv_case *k = &CASES[c];
        pf_conv_shape s = case_shape(k);
        size_t ni = B * pf_conv_in_size(&s), no = B * pf_conv_out_size(&s);
        size_t nw = pf_conv_weight_size(&s), nb = (size_t)s.out_c;
        double *in = random_doubles(&rng, ni), *w = random_doubles(&rng, nw);
        double *b = random_doubles(&rng, nb), *g = random_doubles(&rng, no);
        double *out = malloc(no * sizeof *out), *din = malloc(ni * sizeof *din);
        double *dw = calloc(nw, sizeof *dw), *db = calloc(nb, sizeof *db);
        pf_conv_forward_ref(out, in, w, k->bias ? b : NULL, &s, B);
        pf_conv_backward_ref(din, dw, db, g, in, w, &s, B);

        float *fin = to_float(in, ni), *fw = to_float(w, nw), *fb = to_float(b, nb);
        float *fg = to_float(g, no), *fout = malloc(no * sizeof *fout);
        float *fdin = malloc(ni * sizeof *fdin), *fdw = calloc(nw, sizeof *fdw);
        float *fdb = calloc(nb, sizeof *fdb);
        float *work = malloc(pf_conv_work_size(&s) * sizeof *work);
        pf_conv_forward(fout, fin, fw, k->bias ? fb : NULL, &s, B, work);
        pf_conv_backward(fdin, fdw, fdb, fg, fin, fw, &s, B, work);
        assert_true(rel_err(fout, out, no) < 1e-5);
        assert_true(rel_err(fdin, din, ni) < 1e-5);
        assert_true(rel_err(fdw, dw, nw) < 1e-5);
        assert_true(rel_err(fdb, db, nb) < 1e-5);

        /* The weight gradient accumulates: a second pass doubles it. */
        pf_conv_backward(NULL, fdw, NULL, fg, fin, fw, &s, B, work);
        for (size_t i = 0; i < nw; i++) dw[i] *= 2;
        assert_true(rel_err(fdw, dw, nw) < 1e-5);
        free(in), free(w), free(b), free(g), free(out), free(din), free(dw), free(db);
        free(fin), free(fw), free(fb), free(fg), free(fout), free(fdin), free(fdw), free(fdb);
        free(work);
    }
}

/* Pooling objective L = <g, pool(in)>. */
static double pool_objective(int max, const double *g, const double *in, const pf_pool_shape *s,
                             int B, double *out, int *arg)
{
    if (max) pf_maxpool_forward_ref(out, arg, in, s, B);
    else pf_avgpool_forward_ref(out, in, s, B);
    double L = 0.0;
    for (size_t i = 0; i < (size_t)B * s->c * s->out_h * s->out_w; i++) L += g[i] * out[i];
    return L;
}

static void test_pools_match_finite_differences_and_reference(void **state)
{
    (void)state;
    pf_rng rng;
    pf_rng_seed(&rng, 13);
    const int B = 2, sizes[][4] = {{2, 6, 4, 2}, {3, 9, 9, 3}, {1, 5, 5, 1}};
    for (size_t c = 0; c < sizeof sizes / sizeof *sizes; c++)
        for (int max = 0; max <= 1; max++) {
            pf_pool_shape s;
            assert_int_equal(pf_pool_shape_init(&s, sizes[c][0], sizes[c][1], sizes[c][2],
                                                sizes[c][3], NULL), PF_OK);
            size_t ni = (size_t)B * s.c * s.in_h * s.in_w, no = (size_t)B * s.c * s.out_h * s.out_w;
            double *in = random_doubles(&rng, ni), *g = random_doubles(&rng, no);
            double *out = malloc(no * sizeof *out), *din = malloc(ni * sizeof *din);
            int *arg = malloc(no * sizeof *arg), *farg = malloc(no * sizeof *farg);
            pool_objective(max, g, in, &s, B, out, arg);
            if (max) pf_maxpool_backward_ref(din, g, arg, &s, B);
            else pf_avgpool_backward_ref(din, g, &s, B);
            const double h = 1e-6; /* random inputs: no window is within h of a tie */
            for (size_t i = 0; i < ni; i++) {
                double keep = in[i];
                in[i] = keep + h;
                double up = pool_objective(max, g, in, &s, B, out, farg);
                in[i] = keep - h;
                double down = pool_objective(max, g, in, &s, B, out, farg);
                in[i] = keep;
                assert_true(fabs((up - down) / (2 * h) - din[i]) < 1e-8);
            }
            pool_objective(max, g, in, &s, B, out, arg);

            float *fin = to_float(in, ni), *fg = to_float(g, no);
            float *fout = malloc(no * sizeof *fout), *fdin = malloc(ni * sizeof *fdin);
            if (max) {
                pf_maxpool_forward(fout, farg, fin, &s, B);
                pf_maxpool_backward(fdin, fg, farg, &s, B);
                assert_memory_equal(farg, arg, no * sizeof *arg);
            } else {
                pf_avgpool_forward(fout, fin, &s, B);
                pf_avgpool_backward(fdin, fg, &s, B);
            }
            assert_true(rel_err(fout, out, no) < 1e-6);
            assert_true(rel_err(fdin, din, ni) < 1e-6);
            free(in), free(g), free(out), free(din), free(arg), free(farg);
            free(fin), free(fg), free(fout), free(fdin);
        }
}

/* Ties go to the first largest entry in row-major order; a NaN wins. */
static void test_maxpool_ties_and_nan(void **state)
{
    (void)state;
    pf_pool_shape s;
    assert_int_equal(pf_pool_shape_init(&s, 1, 2, 4, 2, NULL), PF_OK);
    const float in[8] = {1, 3, 0, 2, /* window 0: 1 3 / 3 0  window 1: 0 2 / NAN 2 */
                         3, 0, NAN, 2};
    float out[2], din[8], dout[2] = {5, 7};
    int arg[2];
    pf_maxpool_forward(out, arg, in, &s, 1);
    assert_int_equal(arg[0], 1);
    assert_int_equal(arg[1], 6);
    assert_true(out[0] == 3 && isnan(out[1]));
    pf_maxpool_backward(din, dout, arg, &s, 1);
    const float want[8] = {0, 5, 0, 0, 0, 0, 7, 0};
    assert_memory_equal(din, want, sizeof want);
}

static void test_shape_errors_name_the_problem(void **state)
{
    (void)state;
    pf_conv_shape c;
    pf_pool_shape p;
    pf_error err;
    assert_int_equal(pf_conv_shape_init(&c, 1, 4, 4, 8, 5, 1, 0, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, "kernel 5 is larger than its input 4x4"));
    assert_int_equal(pf_conv_shape_init(&c, 1, 4, 4, 8, 5, 1, 1, &err), PF_OK); /* padded to 6x6 */
    assert_int_equal(c.out_h, 2);
    assert_int_equal(pf_conv_shape_init(&c, 1, 9, 9, 8, 3, 0, 0, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, "stride 0"));
    assert_int_equal(pf_conv_shape_init(&c, 1, 9, 9, 8, 3, 1, 2, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, "padding 2 is more than half the kernel 3"));
    assert_int_equal(pf_pool_shape_init(&p, 8, 7, 7, 2, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, "window 2 does not divide its input 7x7"));
    /* Output sizes as PyTorch computes them: floor((H + 2P - K) / S) + 1. */
    assert_int_equal(pf_conv_shape_init(&c, 1, 28, 28, 8, 3, 2, 1, &err), PF_OK);
    assert_int_equal(c.out_h, 14);
    assert_int_equal(c.out_w, 14);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_reference_matches_finite_differences),
        cmocka_unit_test(test_conv_fast_path_matches_reference),
        cmocka_unit_test(test_pools_match_finite_differences_and_reference),
        cmocka_unit_test(test_maxpool_ties_and_nan),
        cmocka_unit_test(test_shape_errors_name_the_problem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Cross-check against PyTorch: a fixture written by scripts/make_fixture.py
 * (Debian's python3-torch) holds small MLPs' parameters, a batch, outputs,
 * loss, gradient, and parameters after optimizer steps. Every tensor must
 * match within 1e-5 relative, on both paths of the input layer (dense
 * sgemm and sparse). The fixture is made by `make fixtures`; a missing
 * fixture is a failure, not a skip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder/conv.h"
#include "pathfinder/core.h"
#include "pathfinder/hessian.h"

static cJSON *fixture;

static int load_fixture(void **state)
{
    (void)state;
    const char *build = getenv("PF_TEST_BUILD");
    char path[1024];
    snprintf(path, sizeof path, "%s/fixtures/torch_fixture.json", build ? build : "build");
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "missing PyTorch fixture %s: run `make fixtures`\n", path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = '\0';
    fixture = cJSON_Parse(buf);
    free(buf);
    return fixture ? 0 : -1;
}

static int free_fixture(void **state)
{
    (void)state;
    cJSON_Delete(fixture);
    return 0;
}

static float *floats(const cJSON *c, const char *key, size_t expect)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(c, key);
    assert_true(cJSON_IsArray(arr));
    size_t n = (size_t)cJSON_GetArraySize(arr);
    if (expect) assert_int_equal(n, expect);
    float *v = malloc((n ? n : 1) * sizeof *v);
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) v[i++] = (float)e->valuedouble;
    return v;
}

static double number(const cJSON *c, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, key);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

/* |ours - torch| <= 1e-5 |torch| + atol, with atol a 1e-5 share of the
 * tensor's scale so that entries near zero are judged fairly. */
static void expect_close(const char *what, const char *case_name, const float *ours,
                         const float *ref, size_t n)
{
    double scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
    for (size_t i = 0; i < n; i++) {
        double tol = 1e-5 * fabs(ref[i]) + 1e-5 * 1e-2 * scale + 1e-12;
        if (!(fabs((double)ours[i] - ref[i]) <= tol))
            fail_msg("%s/%s[%zu]: pathfinder %.9g, PyTorch %.9g (tolerance %.3g)", case_name, what,
                     i, ours[i], ref[i], tol);
    }
}

typedef struct {
    pf_arch arch;
    int B;
    float *theta, *x, *targets, *anchor;
    int *labels;
    const char *name;
} torch_case;

static void case_load(torch_case *tc, const cJSON *c)
{
    pf_error err;
    tc->name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
    const cJSON *sz = cJSON_GetObjectItemCaseSensitive(c, "sizes");
    const cJSON *ac = cJSON_GetObjectItemCaseSensitive(c, "acts");
    int sizes[PF_MAX_LAYERS + 1], n = 0;
    pf_act acts[PF_MAX_LAYERS];
    const cJSON *e;
    cJSON_ArrayForEach(e, sz) sizes[n++] = e->valueint;
    int k = 0;
    cJSON_ArrayForEach(e, ac) assert_int_equal(pf_act_from_name(e->valuestring, &acts[k++]), 0);
    pf_loss loss;
    assert_int_equal(pf_loss_from_name(cJSON_GetObjectItemCaseSensitive(c, "loss")->valuestring, &loss), 0);
    int bias = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "bias"));
    assert_int_equal(pf_arch_init(&tc->arch, n - 1, sizes, acts, bias, loss, &err), PF_OK);
    tc->B = (int)number(c, "batch");
    tc->theta = floats(c, "theta", tc->arch.n_params);
    tc->anchor = floats(c, "anchor", tc->arch.n_params);
    tc->x = floats(c, "x", (size_t)tc->B * sizes[0]);
    tc->labels = NULL;
    tc->targets = NULL;
    if (loss == PF_LOSS_CE) {
        tc->labels = malloc((size_t)tc->B * sizeof(int));
        int i = 0;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(c, "labels")) tc->labels[i++] = e->valueint;
    } else {
        tc->targets = floats(c, "targets", (size_t)tc->B * sizes[n - 1]);
    }
}

static void case_free(torch_case *tc)
{
    free(tc->theta), free(tc->x), free(tc->targets), free(tc->anchor), free(tc->labels);
}

static void check_forward_loss_gradient(pf_input_layer path)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(fixture, "cases"))
    {
        torch_case tc;
        case_load(&tc, c);
        size_t np = tc.arch.n_params;
        int K = tc.arch.sizes[tc.arch.n_layers];
        pf_work w;
        pf_error err;
        assert_int_equal(pf_work_init(&w, NULL, &tc.arch, tc.B, &err), PF_OK);
        w.input_layer = path;
        pf_forward(&w, tc.theta, tc.x, tc.B);
        float *out = floats(c, "output", (size_t)tc.B * K);
        expect_close("output", tc.name, w.a[tc.arch.n_layers - 1], out, (size_t)tc.B * K);
        float *g = calloc(np, sizeof *g), *gref = floats(c, "grad", np);
        double loss = pf_backward(&w, tc.theta, tc.x, tc.labels, tc.targets, tc.B, g);
        double lref = number(c, "loss_value");
        if (!(fabs(loss - lref) <= 1e-5 * fabs(lref)))
            fail_msg("%s/loss: pathfinder %.9g, PyTorch %.9g", tc.name, loss, lref);
        expect_close("grad", tc.name, g, gref, np);
        free(out), free(g), free(gref);
        pf_work_free(&w);
        case_free(&tc);
    }
}

static void test_forward_loss_gradient(void **state)
{
    (void)state;
    check_forward_loss_gradient(PF_INPUT_DENSE);
}

static void test_forward_loss_gradient_sparse(void **state)
{
    (void)state;
    check_forward_loss_gradient(PF_INPUT_SPARSE);
}

/* Run `steps` optimizer steps on the fixture batch, as the script did. */
static void run_steps(torch_case *tc, const pf_opt_config *oc, int steps, const float *anchor,
                      double beta, float *theta, pf_input_layer path)
{
    size_t np = tc->arch.n_params;
    pf_work w;
    pf_optim o;
    pf_error err;
    assert_int_equal(pf_work_init(&w, NULL, &tc->arch, tc->B, &err), PF_OK);
    w.input_layer = path;
    assert_int_equal(pf_optim_init(&o, oc, np, &err), PF_OK);
    float *g = malloc(np * sizeof *g);
    memcpy(theta, tc->theta, np * sizeof *theta);
    for (int s = 0; s < steps; s++) {
        memset(g, 0, np * sizeof *g);
        pf_forward(&w, theta, tc->x, tc->B);
        pf_backward(&w, theta, tc->x, tc->labels, tc->targets, tc->B, g);
        pf_l2_add_grad(g, theta, anchor, np, beta);
        pf_optim_step(&o, theta, g);
    }
    free(g);
    pf_optim_free(&o);
    pf_work_free(&w);
}

static void check_optimizer_steps(pf_input_layer path)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(fixture, "cases"))
    {
        torch_case tc;
        case_load(&tc, c);
        size_t np = tc.arch.n_params;
        int steps = (int)number(c, "steps");
        double beta = number(c, "beta");
        float *theta = malloc(np * sizeof *theta);
        pf_opt_config adam, sgd;
        pf_opt_config_default(&adam, PF_OPT_ADAM);
        adam.lr = number(c, "adam_lr");
        pf_opt_config_default(&sgd, PF_OPT_SGD);
        sgd.lr = number(c, "sgd_lr");
        sgd.momentum = number(c, "sgd_momentum");

        float *ref = floats(c, "adam_wd", np);
        run_steps(&tc, &adam, steps, NULL, beta, theta, path);
        expect_close("adam_wd", tc.name, theta, ref, np);
        free(ref);

        ref = floats(c, "adam_shifted", np);
        run_steps(&tc, &adam, steps, tc.anchor, beta, theta, path);
        expect_close("adam_shifted", tc.name, theta, ref, np);
        free(ref);

        ref = floats(c, "sgd_wd", np);
        run_steps(&tc, &sgd, steps, NULL, beta, theta, path);
        expect_close("sgd_wd", tc.name, theta, ref, np);
        free(ref);

        free(theta);
        case_free(&tc);
    }
}

static void test_optimizer_steps(void **state)
{
    (void)state;
    check_optimizer_steps(PF_INPUT_DENSE);
}

static void test_optimizer_steps_sparse(void **state)
{
    (void)state;
    check_optimizer_steps(PF_INPUT_SPARSE);
}

/* The comparison itself can fail: perturbing Adam's epsilon-free step
 * (AdamW-style decay instead of L2 in the gradient) is caught. */
static void test_detects_decoupled_decay(void **state)
{
    (void)state;
    const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(fixture, "cases"), 0);
    torch_case tc;
    case_load(&tc, c);
    size_t np = tc.arch.n_params;
    float *theta = malloc(np * sizeof *theta), *ref = floats(c, "adam_wd", np);
    pf_opt_config adam;
    pf_opt_config_default(&adam, PF_OPT_ADAM);
    adam.lr = number(c, "adam_lr");
    double beta = number(c, "beta");
    /* Decoupled decay: no L2 in the gradient, shrink theta separately. */
    run_steps(&tc, &adam, (int)number(c, "steps"), NULL, 0.0, theta, PF_INPUT_DENSE);
    size_t bad = 0;
    for (size_t i = 0; i < np; i++) {
        float decayed = theta[i] * (float)(1.0 - adam.lr * beta);
        bad += fabs((double)decayed - ref[i]) > 1e-5 * fabs(ref[i]) + 1e-9;
    }
    assert_true(bad > np / 2);
    free(theta), free(ref);
    case_free(&tc);
}

static int integer(const cJSON *c, const char *key) { return (int)number(c, key); }

/* conv2d against torch.nn.Conv2d: output and the gradients of <g, out>. */
static void test_conv_kernels_match_torch(void **state)
{
    (void)state;
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(fixture, "conv_cases"), *c;
    assert_true(cJSON_GetArraySize(cases) >= 3);
    cJSON_ArrayForEach(c, cases) {
        const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        pf_conv_shape s;
        pf_error err;
        assert_int_equal(pf_conv_shape_init(&s, integer(c, "in_c"), integer(c, "h"), integer(c, "w"),
                                            integer(c, "out_c"), integer(c, "k"),
                                            integer(c, "stride"), integer(c, "pad"), &err), PF_OK);
        int B = integer(c, "batch"), bias = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "bias"));
        size_t ni = B * pf_conv_in_size(&s), no = B * pf_conv_out_size(&s), nw = pf_conv_weight_size(&s);
        float *x = floats(c, "x", ni), *w = floats(c, "weight", nw), *g = floats(c, "g", no);
        float *out_ref = floats(c, "out", no), *dx_ref = floats(c, "dx", ni);
        float *dw_ref = floats(c, "dweight", nw);
        float *b = bias ? floats(c, "b", (size_t)s.out_c) : NULL;
        float *out = malloc(no * sizeof *out), *dx = malloc(ni * sizeof *dx);
        float *dw = calloc(nw, sizeof *dw), *db = calloc((size_t)s.out_c, sizeof *db);
        float *work = malloc(pf_conv_work_size(&s) * sizeof *work);
        pf_conv_forward(out, x, w, b, &s, B, work);
        pf_conv_backward(dx, dw, bias ? db : NULL, g, x, w, &s, B, work);
        expect_close("out", name, out, out_ref, no);
        expect_close("dx", name, dx, dx_ref, ni);
        expect_close("dweight", name, dw, dw_ref, nw);
        if (bias) {
            float *db_ref = floats(c, "dbias", (size_t)s.out_c);
            expect_close("dbias", name, db, db_ref, (size_t)s.out_c);
            free(db_ref);
        }
        free(x), free(w), free(g), free(out_ref), free(dx_ref), free(dw_ref), free(b);
        free(out), free(dx), free(dw), free(db), free(work);
    }
}

/* Max pooling on inputs with ties (the gradient must go where torch sends
 * it) and average pooling, against torch.nn.functional. */
static void test_pools_match_torch(void **state)
{
    (void)state;
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(fixture, "pool_cases"), *c;
    assert_true(cJSON_GetArraySize(cases) >= 3);
    cJSON_ArrayForEach(c, cases) {
        const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        int max = !strcmp(cJSON_GetObjectItemCaseSensitive(c, "kind")->valuestring, "max");
        pf_pool_shape s;
        assert_int_equal(pf_pool_shape_init(&s, integer(c, "c"), integer(c, "h"), integer(c, "w"),
                                            integer(c, "k"), NULL), PF_OK);
        int B = integer(c, "batch");
        size_t ni = (size_t)B * s.c * s.in_h * s.in_w, no = (size_t)B * s.c * s.out_h * s.out_w;
        float *x = floats(c, "x", ni), *g = floats(c, "g", no);
        float *out_ref = floats(c, "out", no), *dx_ref = floats(c, "dx", ni);
        float *out = malloc(no * sizeof *out), *dx = malloc(ni * sizeof *dx);
        int *arg = malloc(no * sizeof *arg);
        if (max) {
            pf_maxpool_forward(out, arg, x, &s, B);
            pf_maxpool_backward(dx, g, arg, &s, B);
            assert_memory_equal(out, out_ref, no * sizeof *out);
            assert_memory_equal(dx, dx_ref, ni * sizeof *dx); /* ties routed as torch routes them */
        } else {
            pf_avgpool_forward(out, x, &s, B);
            pf_avgpool_backward(dx, g, &s, B);
            expect_close("out", name, out, out_ref, no);
            expect_close("dx", name, dx, dx_ref, ni);
        }
        free(x), free(g), free(out_ref), free(dx_ref), free(out), free(dx), free(arg);
    }
}

/* Small CNNs against their torch modules: logits, loss and gradient, a
 * Hessian-vector product (torch's double backward, in float64) and the
 * parameters after Adam steps with weight decay. */
static void test_cnn_matches_torch(void **state)
{
    (void)state;
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(fixture, "cnn_cases"), *c;
    assert_true(cJSON_GetArraySize(cases) >= 3);
    cJSON_ArrayForEach(c, cases) {
        const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        const char *spec = cJSON_GetObjectItemCaseSensitive(c, "spec")->valuestring;
        const char *acts = cJSON_GetObjectItemCaseSensitive(c, "acts")->valuestring;
        int bias = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "bias"));
        pf_arch a;
        pf_error err;
        if (pf_arch_parse(&a, spec, acts, bias, PF_LOSS_CE, &err)) fail_msg("%s: %s", name, err.msg);
        int B = integer(c, "batch"), K = a.sizes[a.n_layers];
        size_t np = a.n_params;
        assert_int_equal(np, (size_t)integer(c, "n_params"));
        float *theta = floats(c, "params", np), *x = floats(c, "x", (size_t)B * a.in_dim);
        float *logits = floats(c, "logits", (size_t)B * K), *gref = floats(c, "grad", np);
        float *v = floats(c, "v", np), *hvref = floats(c, "hv", np), *aref = floats(c, "adam", np);
        int *labels = malloc((size_t)B * sizeof *labels), i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(c, "labels")) labels[i++] = e->valueint;
        pf_work w;
        assert_int_equal(pf_work_init(&w, NULL, &a, B, &err), PF_OK);
        float *g = calloc(np, sizeof *g), *hv = malloc(np * sizeof *hv), *t = malloc(np * sizeof *t);
        pf_forward(&w, theta, x, B);
        expect_close("logits", name, w.a[a.n_layers - 1], logits, (size_t)B * K);
        double loss = pf_backward(&w, theta, x, labels, NULL, B, g);
        if (fabs(loss - number(c, "loss")) > 1e-5 * fabs(number(c, "loss")))
            fail_msg("%s: loss %.9g, PyTorch %.9g", name, loss, number(c, "loss"));
        expect_close("grad", name, g, gref, np);
        pf_dataset d = {.n = (size_t)B, .dim = a.in_dim, .x = x, .labels = labels, .n_classes = K};
        snprintf(d.name, sizeof d.name, "%s", name);
        assert_int_equal(pf_hvp(&w, theta, &d, 0, 0.0, v, hv, &err), PF_OK);
        expect_close("hv", name, hv, hvref, np);
        /* torch's Adam(weight_decay = wd): the gradient gets wd * theta */
        pf_opt_config oc;
        pf_opt_config_default(&oc, PF_OPT_ADAM);
        oc.lr = number(c, "adam_lr");
        pf_optim o;
        assert_int_equal(pf_optim_init(&o, &oc, np, &err), PF_OK);
        memcpy(t, theta, np * sizeof *t);
        for (int k = 0; k < integer(c, "adam_steps"); k++) {
            memset(g, 0, np * sizeof *g);
            pf_forward(&w, t, x, B);
            pf_backward(&w, t, x, labels, NULL, B, g);
            pf_l2_add_grad(g, t, NULL, np, number(c, "adam_weight_decay"));
            pf_optim_step(&o, t, g);
        }
        expect_close("adam", name, t, aref, np);
        pf_optim_free(&o);
        pf_work_free(&w);
        free(theta), free(x), free(logits), free(gref), free(v), free(hvref), free(aref), free(labels);
        free(g), free(hv), free(t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_loss_gradient),
        cmocka_unit_test(test_forward_loss_gradient_sparse),
        cmocka_unit_test(test_optimizer_steps),
        cmocka_unit_test(test_optimizer_steps_sparse),
        cmocka_unit_test(test_detects_decoupled_decay),
        cmocka_unit_test(test_conv_kernels_match_torch),
        cmocka_unit_test(test_pools_match_torch),
        cmocka_unit_test(test_cnn_matches_torch),
    };
    return cmocka_run_group_tests_name("pytorch", tests, load_fixture, free_fixture);
}

/* Figures: every figure is written as PNG, PDF and SVG from a synthetic
 * sweep (200 points, 10 classes, r stepping down three times), empty inputs
 * still give figures, and a base path in a missing directory is an error
 * naming the path.
 *
 * Set PF_FIG_KEEP=DIR to keep copies of the figures in DIR for a look. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pathfinder/io.h"
#include "fig/figures.h"

#define N_POINTS 200
#define N_CLASSES 10
#define N_STEPS 3

/* The classes that stop being learned at each transition. */
static const int dropped[N_STEPS][4] = {{2, 6, 8, 9}, {3, 4, 5, -1}, {0, 7, -1, -1}};

static double noise(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) / 9007199254740992.0 - 0.5;
}

/* A sweep over beta in [0, 0.1] with transitions after the points in at[].
 * r falls smoothly from 90 and steps down by 10^-0.6 at each transition;
 * the classes in dropped[] fall to chance and E steps up. */
static void make_sweep(pf_point_result *rows, long n, const long *at, int direction, uint64_t seed)
{
    uint64_t s = seed;
    for (long j = 0; j < n; j++) {
        long i = direction > 0 ? j : n - 1 - j;   /* the down leg runs from the top */
        pf_point_result *p = &rows[j];
        memset(p, 0, sizeof *p);
        p->index = j;
        p->point.beta = 0.1 * (double)i / (double)(n - 1);
        p->point.direction = direction;
        int phase = 0;
        for (int k = 0; k < N_STEPS; k++)
            if (i > at[k]) phase = k + 1;
        double log_r = log10(90.0) - 1.2 * (double)i / (double)(n - 1) - 0.6 * phase;
        p->m.beta = p->point.beta;
        p->m.r = pow(10, log_r + 0.01 * noise(&s));
        p->m.train.loss = 0.05 + 0.65 * phase + 0.1 * (double)i / (double)n + 0.02 * noise(&s);
        p->m.reg_loss = p->m.train.loss + 0.5 * p->m.beta * p->m.r * p->m.r;
        p->m.test.n_classes = N_CLASSES;
        double sum = 0;
        for (int k = 0; k < N_CLASSES; k++) {
            int lost = 0;
            for (int t = 0; t < phase; t++)
                for (int d = 0; d < 4; d++) lost |= dropped[t][d] == k;
            double a = lost ? 3 + 4 * noise(&s) : 97 - 10 * (double)i / (double)n + 2 * noise(&s);
            p->m.test.class_accuracy[k] = a;
            sum += a;
        }
        p->m.test.accuracy = sum / N_CLASSES;
        p->m.train.accuracy = p->m.test.accuracy;
    }
}

static void make_transitions(const pf_point_result *rows, const long *at, pf_transition *t)
{
    for (int k = 0; k < N_STEPS; k++) {
        memset(&t[k], 0, sizeof t[k]);
        t[k].below = at[k];
        t[k].above = at[k] + 1;
        t[k].beta_below = rows[at[k]].point.beta;
        t[k].beta_above = rows[at[k] + 1].point.beta;
        t[k].r_below = rows[at[k]].m.r;
        t[k].r_above = rows[at[k] + 1].m.r;
        t[k].major = 1;
    }
}

static void set_of(pf_basin *b, const int *classes, int count, int parent, int seen, double lo,
                   double hi)
{
    memset(b, 0, sizeof *b);
    for (int i = 0; i < count; i++) b->set[classes[i] / 64] |= 1ull << (classes[i] % 64);
    b->size = count;
    b->parent = parent;
    b->seen = seen;
    b->beta_min = lo;
    b->beta_max = hi;
}

/* A chain {0..9} > {0,1,3,4,5,7} > {0,1,7} > {1}, and a second branch
 * {1,2,6,8} > {2,8} under the root; sorted by size. */
static void make_hierarchy(pf_hierarchy *h, pf_basin *nodes)
{
    static const int all[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    static const int six[6] = {0, 1, 3, 4, 5, 7}, four[4] = {1, 2, 6, 8};
    static const int three[3] = {0, 1, 7}, two[2] = {2, 8}, one[1] = {1};
    set_of(&nodes[0], all, 10, -1, 3, 0, 0.025);
    set_of(&nodes[1], six, 6, 0, 2, 0.026, 0.055);
    set_of(&nodes[2], four, 4, 0, 1, 0.031, 0.048);
    set_of(&nodes[3], three, 3, 1, 2, 0.056, 0.08);
    set_of(&nodes[4], two, 2, 2, 1, 0.05, 0.05);
    set_of(&nodes[5], one, 1, 3, 3, 0.081, 0.1);
    h->n_classes = N_CLASSES;
    h->n = 6;
    h->nodes = nodes;
    h->consistent = 1;
}

/* ---- file checks --------------------------------------------------------- */

static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size + 1);
    if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[size] = '\0';
        *n = (size_t)size;
    }
    return buf;
}

static void keep_copy(const char *path, const char *name)
{
    const char *keep = getenv("PF_FIG_KEEP");
    if (!keep || !*keep) return;
    mkdir(keep, 0755);
    size_t n;
    char *buf = read_all(path, &n);
    if (!buf) return;
    char dst[1024];
    snprintf(dst, sizeof dst, "%s/%s", keep, name);
    FILE *f = fopen(dst, "wb");
    if (f) {
        fwrite(buf, 1, n, f);
        fclose(f);
    }
    free(buf);
}

/* buf[0..n) ends with tail, but for trailing newlines. */
static int ends_with(const char *buf, size_t n, const char *tail)
{
    size_t t = strlen(tail);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
    return n >= t && memcmp(buf + n - t, tail, t) == 0;
}

/* Check BASE.{png,pdf,svg}: each whole (PNG's IEND chunk, PDF's %%EOF,
 * SVG's closing tag), the SVG's description naming every panel given (the
 * NULL-terminated list), no temporary file left; keep copies if asked, and
 * remove them. */
static void check_figure(const char *dir, const char *name, size_t min_png, ...)
{
    static const char *const ext[3] = {"png", "pdf", "svg"};
    for (int e = 0; e < 3; e++) {
        char path[1024], file[256];
        snprintf(file, sizeof file, "%s.%s", name, ext[e]);
        snprintf(path, sizeof path, "%s/%s", dir, file);
        size_t n = 0;
        char *buf = read_all(path, &n);
        if (!buf) fail_msg("%s was not written", path);
        if (e == 0) {
            static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
            assert_true(n > min_png);
            assert_memory_equal(buf, sig, 8);
            assert_true(ends_with(buf, n, "IEND\xae\x42\x60\x82"));
        } else if (e == 1) {
            assert_true(n > 4);
            assert_memory_equal(buf, "%PDF", 4);
            assert_true(ends_with(buf, n, "%%EOF"));
        } else {
            assert_non_null(strstr(buf, "<svg"));
            assert_true(ends_with(buf, n, "</svg>"));
            char *desc = strstr(buf, "<desc>"), *end = desc ? strstr(desc, "</desc>") : NULL;
            if (!end) fail_msg("%s has no description", path);
            *end = '\0';
            va_list ap;
            va_start(ap, min_png);
            for (const char *panel; (panel = va_arg(ap, const char *));)
                if (!strstr(desc, panel)) fail_msg("%s does not name the panel '%s'", path, panel);
            va_end(ap);
        }
        free(buf);
        keep_copy(path, file);
        assert_int_equal(remove(path), 0);
    }
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q '\\.tmp\\.'", dir);
    assert_int_not_equal(system(cmd), 0);   /* no temporary left behind */
}

static char *make_dir(void)
{
    char *dir = strdup("/tmp/pf_test_figures_XXXXXX");
    assert_non_null(dir);
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void base_in(char *base, size_t n, const char *dir, const char *name)
{
    snprintf(base, n, "%s/%s", dir, name);
}

/* Under LeakSanitizer: fontconfig keeps its caches for the life of the
 * process, and PLplot's cairo driver does not free its gradient patterns. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libfontconfig.so\nleak:libcairo.so\nleak:libpango\nleak:libplplot.so\n";
}

/* ---- tests --------------------------------------------------------------- */

static void test_all_figures(void **state)
{
    (void)state;
    static pf_point_result up[N_POINTS], down[N_POINTS];
    static const long at[N_STEPS] = {49, 109, 159};
    static const long at_down[N_STEPS] = {41, 97, 150};   /* the way back jumps later */
    make_sweep(up, N_POINTS, at, +1, 1);
    make_sweep(down, N_POINTS, at_down, -1, 2);
    up[30].m.reg_loss = NAN;   /* a missing value leaves a gap, nothing else */
    up[120].m.r = NAN;
    pf_transition t[N_STEPS];
    make_transitions(up, at, t);
    pf_basin nodes[6];
    pf_hierarchy h;
    make_hierarchy(&h, nodes);

    char *dir = make_dir(), base[1024];
    pf_error err = {0};
    base_in(base, sizeof base, dir, "phase_diagram");
    assert_int_equal(pf_fig_phase_diagram(base, up, N_POINTS, t, N_STEPS,
                                          "MNIST 784-100-10, sweep up", &err), PF_OK);
    check_figure(dir, "phase_diagram", 10000, "test accuracy", "r = ||theta - theta_c||",
                 "E (train loss)", "L_beta", "T3 at beta", (char *)NULL);
    base_in(base, sizeof base, dir, "class_heatmap");
    assert_int_equal(pf_fig_class_heatmap(base, up, N_POINTS, t, N_STEPS,
                                          "Per-class test accuracy", &err), PF_OK);
    check_figure(dir, "class_heatmap", 10000, "Per-class test accuracy", "classes 0 to", "T1 at beta",
                 (char *)NULL);
    base_in(base, sizeof base, dir, "hysteresis");
    assert_int_equal(pf_fig_hysteresis(base, up, N_POINTS, down, N_POINTS, "Hysteresis loop", &err),
                     PF_OK);
    check_figure(dir, "hysteresis", 10000, "r = ||theta - theta_c||", "test accuracy", "up (", "down (",
                 (char *)NULL);
    base_in(base, sizeof base, dir, "hierarchy");
    assert_int_equal(pf_fig_hierarchy(base, &h, "Hierarchy of accuracy basins", &err), PF_OK);
    check_figure(dir, "hierarchy", 10000, (char *)NULL);
    /* Non-uniform betas and a class missing from the test set (grey). */
    for (long i = 0; i < N_POINTS; i++) {
        double u = (double)i / (N_POINTS - 1);
        up[i].point.beta = 0.1 * u * u;
        up[i].m.test.n_classes = N_CLASSES + 1;
        up[i].m.test.class_accuracy[N_CLASSES] = -1;
    }
    make_transitions(up, at, t);
    base_in(base, sizeof base, dir, "class_heatmap_uneven");
    assert_int_equal(pf_fig_class_heatmap(base, up, N_POINTS, t, N_STEPS, NULL, &err), PF_OK);
    check_figure(dir, "class_heatmap_uneven", 10000, "classes 0 to", (char *)NULL);
    /* No titles, one leg only. */
    base_in(base, sizeof base, dir, "hysteresis_up_only");
    assert_int_equal(pf_fig_hysteresis(base, up, N_POINTS, NULL, 0, NULL, &err), PF_OK);
    check_figure(dir, "hysteresis_up_only", 10000, "down (0 points)", (char *)NULL);
    assert_int_equal(rmdir(dir), 0);
    free(dir);
}

/* A long chain with side branches and a second root, for legibility. */
static void test_large_hierarchy(void **state)
{
    (void)state;
    enum { K = 20, CHAIN = 17 };
    pf_basin nodes[CHAIN + 3];
    int classes[K];
    for (int k = 0; k < K; k++) classes[k] = k;
    int n = 0;
    for (int c = 0; c < CHAIN; c++, n++)   /* {0..19} > {0..18} > ... > {0..3} */
        set_of(&nodes[n], classes, K - c, c - 1, 1 + c % 3, 0.01 * c, 0.01 * c + 0.008);
    static const int side[2] = {7, 15}, single[1] = {12};
    set_of(&nodes[n++], side, 2, 8, 1, 0.2, 0.2);   /* under {0..11} */
    set_of(&nodes[n++], single, 1, 7, 2, 0.21, 0.23);
    static const int lone[1] = {19};
    set_of(&nodes[n++], lone, 1, -1, 1, 0.3, 0.3);  /* a second root */
    pf_hierarchy h = {K, n, nodes, 0};

    char *dir = make_dir(), base[1024];
    pf_error err = {0};
    base_in(base, sizeof base, dir, "hierarchy_large");
    assert_int_equal(pf_fig_hierarchy(base, &h, "20 basins, K = 20", &err), PF_OK);
    check_figure(dir, "hierarchy_large", 10000, (char *)NULL);
    /* A cycle in the parent links does not hang or crash. */
    nodes[2].parent = 4;
    base_in(base, sizeof base, dir, "hierarchy_cycle");
    assert_int_equal(pf_fig_hierarchy(base, &h, NULL, &err), PF_OK);
    check_figure(dir, "hierarchy_cycle", 1000, (char *)NULL);
    assert_int_equal(rmdir(dir), 0);
    free(dir);
}

/* Nodes that encode nothing: an unresolved one (named by its partial
 * classes, dashed) beside the trivial one. Cairo draws text as glyph
 * outlines, so the labels are looked for in the SVG's <desc>; the SVG is
 * whole (ends with </svg>). */
static void test_hierarchy_unresolved(void **state)
{
    (void)state;
    static const int all[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, three[3] = {0, 1, 7}, one[1] = {0};
    pf_basin nodes[5];
    set_of(&nodes[0], all, 10, -1, 1, 0, 0);
    set_of(&nodes[1], three, 3, 0, 1, 0.0375, 0.059);
    set_of(&nodes[2], one, 1, 1, 1, 0.0595, 0.074);
    set_of(&nodes[3], NULL, 0, 1, 1, 0.0745, 0.0845);   /* unresolved: partial {0,7} */
    nodes[3].unresolved = 1;
    nodes[3].partial[0] = 1u | 1u << 7;
    set_of(&nodes[4], NULL, 0, 2, 1, 0.085, 0.09);      /* trivial */
    nodes[4].trivial = 1;
    pf_hierarchy h = {N_CLASSES, 5, nodes, 1};

    char *dir = make_dir(), base[1024], path[1100];
    pf_error err = {0};
    base_in(base, sizeof base, dir, "hierarchy_unresolved");
    assert_int_equal(pf_fig_hierarchy(base, &h, "Hierarchy of accuracy basins", &err), PF_OK);
    snprintf(path, sizeof path, "%s.svg", base);
    size_t n = 0;
    char *svg = read_all(path, &n);
    assert_non_null(svg);
    while (n > 0 && (svg[n - 1] == '\n' || svg[n - 1] == '\r')) svg[--n] = '\0';
    assert_true(n > 6);
    assert_string_equal(svg + n - 6, "</svg>");
    char *desc = strstr(svg, "<desc>");
    assert_non_null(desc);
    assert_true(desc < strstr(svg, "</desc>"));
    assert_non_null(strstr(desc, "unresolved: partial {0,7}"));
    assert_non_null(strstr(desc, "{} trivial"));
    assert_non_null(strstr(desc, "{0,1,7}"));
    assert_non_null(strstr(svg, "<title>Hierarchy of accuracy basins</title>"));
    free(svg);
    check_figure(dir, "hierarchy_unresolved", 10000, (char *)NULL);
    assert_int_equal(rmdir(dir), 0);
    free(dir);
}

/* No points, no classes, no nodes: still a figure saying so. */
static void test_empty_inputs(void **state)
{
    (void)state;
    char *dir = make_dir(), base[1024];
    pf_error err = {0};
    base_in(base, sizeof base, dir, "empty_phase");
    assert_int_equal(pf_fig_phase_diagram(base, NULL, 0, NULL, 0, "empty", &err), PF_OK);
    check_figure(dir, "empty_phase", 1000, (char *)NULL);
    base_in(base, sizeof base, dir, "empty_heatmap");
    assert_int_equal(pf_fig_class_heatmap(base, NULL, 0, NULL, 0, NULL, &err), PF_OK);
    check_figure(dir, "empty_heatmap", 1000, (char *)NULL);
    base_in(base, sizeof base, dir, "empty_hysteresis");
    assert_int_equal(pf_fig_hysteresis(base, NULL, 0, NULL, 0, NULL, &err), PF_OK);
    check_figure(dir, "empty_hysteresis", 1000, (char *)NULL);
    pf_hierarchy h = {N_CLASSES, 0, NULL, 1};
    base_in(base, sizeof base, dir, "empty_hierarchy");
    assert_int_equal(pf_fig_hierarchy(base, &h, NULL, &err), PF_OK);
    check_figure(dir, "empty_hierarchy", 1000, (char *)NULL);
    assert_int_equal(rmdir(dir), 0);
    free(dir);
}

static void test_errors(void **state)
{
    (void)state;
    static pf_point_result rows[N_POINTS];
    static const long at[N_STEPS] = {49, 109, 159};
    make_sweep(rows, N_POINTS, at, +1, 3);
    pf_error err = {0};
    const char *base = "/nonexistent-pathfinder-dir/fig";
    assert_int_equal(pf_fig_phase_diagram(base, rows, N_POINTS, NULL, 0, NULL, &err), PF_ERUNTIME);
    assert_int_equal(err.code, PF_ERUNTIME);
    assert_non_null(strstr(err.msg, "/nonexistent-pathfinder-dir/fig.png"));
    assert_int_equal(pf_fig_hierarchy(base, &(pf_hierarchy){0}, NULL, &err), PF_ERUNTIME);
    assert_non_null(strstr(err.msg, base));

    assert_int_equal(pf_fig_class_heatmap(NULL, rows, N_POINTS, NULL, 0, NULL, &err), PF_EINPUT);
    assert_int_equal(pf_fig_hysteresis("/tmp/x", NULL, 5, NULL, 0, NULL, &err), PF_EINPUT);
    assert_int_equal(pf_fig_phase_diagram("/tmp/x", rows, N_POINTS, NULL, 2, NULL, &err), PF_EINPUT);
    assert_int_equal(pf_fig_hierarchy("/tmp/x", NULL, NULL, &err), PF_EINPUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_figures),
        cmocka_unit_test(test_large_hierarchy),
        cmocka_unit_test(test_hierarchy_unresolved),
        cmocka_unit_test(test_empty_inputs),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("figures", tests, NULL, NULL);
}

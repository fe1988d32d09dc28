/* CSV and NPY readers: labels vs regression detection, headers, line endings,
 * and the ways a file can be wrong. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pathfinder/io.h"

static char tmpdir[64];
static char path[256], path2[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pf_test_tab_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
    if (d) closedir(d);
    return rmdir(tmpdir);
}

static void write_file(char *p, const char *name, const void *buf, size_t n)
{
    snprintf(p, 256, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
}

static const char *write_csv(const char *name, const char *text)
{
    write_file(path, name, text, strlen(text));
    return path;
}

/* An NPY file of format version 1 or 2, laid out as NumPy writes it. */
static const char *write_npy(char *p, const char *name, const char *descr, const char *fortran,
                             const char *shape, const void *data, size_t n, int version)
{
    char dict[256];
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }",
                       descr, fortran, shape);
    size_t pre = version == 1 ? 10 : 12, hlen = (size_t)len + 1;
    while ((pre + hlen) % 64) hlen++;  /* pad with spaces, end with '\n', like NumPy */
    unsigned char *buf = calloc(1, pre + hlen + n);
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)version;
    buf[8] = (unsigned char)hlen;
    buf[9] = (unsigned char)(hlen >> 8);
    memset(buf + pre, ' ', hlen);
    memcpy(buf + pre, dict, (size_t)len);
    buf[pre + hlen - 1] = '\n';
    if (n) memcpy(buf + pre + hlen, data, n);
    write_file(p, name, buf, pre + hlen + n);
    free(buf);
    return p;
}

/* Loading must fail with PF_EINPUT and a one-line message containing what. */
static void expect_csv_bad(const char *p, pf_target_kind kind, const char *what)
{
    pf_dataset d;
    pf_error err;
    int rc = pf_csv_read(p, 1, kind, &d, &err);
    if (rc != PF_EINPUT || !strstr(err.msg, what))
        print_error("got rc %d, message '%s'; wanted '%s'\n", rc, err.msg, what);
    assert_int_equal(rc, PF_EINPUT);
    assert_non_null(strstr(err.msg, p));
    assert_non_null(strstr(err.msg, what));
    assert_null(strchr(err.msg, '\n'));
    assert_null(d.x);
}

static void expect_npy_bad(pf_target_kind kind, const char *what)
{
    pf_dataset d;
    pf_error err;
    int rc = pf_npy_read_dataset(path, path2, kind, &d, &err);
    if (rc != PF_EINPUT || !strstr(err.msg, what))
        print_error("got rc %d, message '%s'; wanted '%s'\n", rc, err.msg, what);
    assert_int_equal(rc, PF_EINPUT);
    assert_non_null(strstr(err.msg, what));
    assert_null(strchr(err.msg, '\n'));
    assert_null(d.x);
}

/* ----------------------------------------------------------------- csv */

static void test_csv_integral_targets_are_labels(void **s)
{
    (void)s;
    pf_dataset d;
    pf_error err;
    assert_int_equal(pf_csv_read(write_csv("a.csv", "1,2,0\n3.5,-4,2\n"), 1, PF_TARGET_AUTO,
                                 &d, &err), PF_OK);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.dim, 2);
    assert_non_null(d.labels);
    assert_null(d.targets);
    assert_int_equal(d.n_classes, 3);
    assert_int_equal(d.labels[1], 2);
    assert_true(d.x[2] == 3.5f && d.x[3] == -4.0f);
    pf_dataset_free(&d);
}

static void test_csv_fractional_targets_are_regression(void **s)
{
    (void)s;
    pf_dataset d;
    pf_error err;
    assert_int_equal(pf_csv_read(write_csv("r.csv", "1,2,0.5\n3,4,1\n"), 1, PF_TARGET_AUTO,
                                 &d, &err), PF_OK);
    assert_null(d.labels);
    assert_int_equal(d.n_targets, 1);
    assert_true(d.targets[0] == 0.5f && d.targets[1] == 1.0f);
    pf_dataset_free(&d);
}

static void test_csv_negative_integers_are_regression(void **s)
{
    (void)s;
    pf_dataset d;
    pf_error err;
    assert_int_equal(pf_csv_read(write_csv("neg.csv", "1,-1\n2,3\n"), 1, PF_TARGET_AUTO,
                                 &d, &err), PF_OK);
    assert_null(d.labels);
    assert_int_equal(d.n_targets, 1);
    pf_dataset_free(&d);
}

static void test_csv_forced_regression(void **s)
{
    (void)s;
    pf_dataset d;
    pf_error err;
    assert_int_equal(pf_csv_read(write_csv("fr.csv", "1,2,0\n3,4,1\n"), 1, PF_TARGET_REGRESSION,
                                 &d, &err), PF_OK);
    assert_null(d.labels);
    assert_int_equal(d.n_targets, 1);
    pf_dataset_free(&d);
}

static void test_csv_two_target_columns(void **s)
{
    (void)s;
    pf_dataset d;
    pf_error err;
    assert_int_equal(pf_csv_read(write_csv("t2.csv", "1,2,3,4\n5,6,7,8\n"), 2, PF_TARGET_AUTO,
                                 &d, &err), PF_OK);
    assert_int_equal(d.dim, 2);
    assert_int_equal(d.n_targets, 2);
    assert_true(d.targets[2] == 7.0f && d.targets[3] == 8.0f);
    pf_dataset_free(&d);
}

static void test_csv_header_skipped(void **s)
{
    (void)s;
    pf_dataset d;
    pf_error err;
    assert_int_equal(pf_csv_read(write_csv("h.csv", "x1, x2 ,label\n1,2,1\n3,4,0\n"), 1,
                                 PF_TARGET_AUTO, &d, &err), PF_OK);
    assert_int_equal(d.n, 2);
    assert_true(d.x[0] == 1.0f);
    assert_int_equal(d.n_classes, 2);
    pf_dataset_free(&d);
}

static void test_csv_crlf_and_trailing_blank_lines(void **s)
{
    (void)s;
    pf_dataset d;
    pf_error err;
    assert_int_equal(pf_csv_read(write_csv("crlf.csv", "a,b,y\r\n1,2,1\r\n3,4,0\r\n\r\n\n"), 1,
                                 PF_TARGET_AUTO, &d, &err), PF_OK);
    assert_int_equal(d.n, 2);
    assert_true(d.x[3] == 4.0f);
    assert_int_equal(d.labels[0], 1);
    pf_dataset_free(&d);
}

static void test_csv_bad_ragged_rows(void **s)
{
    (void)s;
    expect_csv_bad(write_csv("ragged.csv", "1,2,0\n3,4,1\n5,1\n"), PF_TARGET_AUTO, "ragged.csv:3:");
}

static void test_csv_bad_non_numeric_cell(void **s)
{
    (void)s;
    expect_csv_bad(write_csv("text.csv", "1,2,0\n3,abc,1\n"), PF_TARGET_AUTO, "text.csv:2:");
}

static void test_csv_bad_nan(void **s)
{
    (void)s;
    expect_csv_bad(write_csv("nan.csv", "1,2,0\n3,4,1\nnan,1,1\n"), PF_TARGET_AUTO, "nan.csv:3:");
}

static void test_csv_bad_inf(void **s)
{
    (void)s;
    expect_csv_bad(write_csv("inf.csv", "1,-inf,0\n"), PF_TARGET_AUTO, "inf.csv:1:");
}

static void test_csv_bad_empty_file(void **s)
{
    (void)s;
    expect_csv_bad(write_csv("empty.csv", ""), PF_TARGET_AUTO, "no data rows");
}

static void test_csv_bad_header_only(void **s)
{
    (void)s;
    expect_csv_bad(write_csv("head.csv", "a,b,y\n"), PF_TARGET_AUTO, "no data rows");
}

static void test_csv_bad_class_not_integral(void **s)
{
    (void)s;
    expect_csv_bad(write_csv("frac.csv", "1,2,0.5\n"), PF_TARGET_CLASS, "not a class label");
}

static void test_csv_bad_negative_labels(void **s)
{
    (void)s;
    expect_csv_bad(write_csv("neglab.csv", "1,2,1\n1,2,-1\n"), PF_TARGET_CLASS,
                   "neglab.csv:2: target -1 is not a class label");
    /* the line counts the header and the blank lines before the data */
    expect_csv_bad(write_csv("neglab.csv", "\na,b,y\n1,2,1\n1,2,-1\n"), PF_TARGET_CLASS,
                   "neglab.csv:4: target -1 is not a class label");
}

/* Only a first line of names is a header; one bad cell among numbers is a
 * broken first row, which used to vanish silently as a "header". */
static void test_csv_bad_first_row_cell(void **s)
{
    (void)s;
    expect_csv_bad(write_csv("first.csv", "1,abc,0\n2,3,1\n4,5,0\n"), PF_TARGET_AUTO,
                   "first.csv:1: 'abc' is not a finite number");
    expect_csv_bad(write_csv("first.csv", "1,2,zero\n2,3,1\n"), PF_TARGET_AUTO, "first.csv:1:");
    expect_csv_bad(write_csv("first.csv", "\nx,nan,y\n2,3,1\n"), PF_TARGET_AUTO, "first.csv:2:");
    /* an empty name is still not a number: this is a header */
    pf_dataset d;
    pf_error err;
    assert_int_equal(pf_csv_read(write_csv("first.csv", "x,,y\n1,2,1\n"), 1, PF_TARGET_AUTO, &d,
                                 &err), PF_OK);
    assert_int_equal(d.n, 1);
    pf_dataset_free(&d);
}

static void on_alarm(int sig) { (void)sig; }

/* A FIFO with no writer blocks a blind open forever; the alarm (without
 * SA_RESTART) turns such a hang into a failed open. */
static void arm_alarm(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
    alarm(2);
}

static void test_csv_bad_fifo(void **s)
{
    (void)s;
    snprintf(path, sizeof path, "%s/fifo.csv", tmpdir);
    assert_int_equal(mkfifo(path, 0600), 0);
    arm_alarm();
    expect_csv_bad(path, PF_TARGET_AUTO, "fifo.csv: not a regular file");
    alarm(0);
}

static void test_csv_bad_nonexistent(void **s)
{
    (void)s;
    snprintf(path, sizeof path, "%s/none.csv", tmpdir);
    expect_csv_bad(path, PF_TARGET_AUTO, "cannot open");
}

/* ----------------------------------------------------------------- npy */

static const float x34[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};

static void test_npy_integer_targets_are_labels(void **s)
{
    (void)s;
    const int64_t y[3] = {2, 0, 4};
    write_npy(path, "x.npy", "<f4", "False", "(3, 2, 2)", x34, sizeof x34, 1);
    write_npy(path2, "y.npy", "<i8", "False", "(3,)", y, sizeof y, 1);
    pf_dataset d;
    pf_error err;
    assert_int_equal(pf_npy_read_dataset(path, path2, PF_TARGET_AUTO, &d, &err), PF_OK);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.dim, 4);
    assert_true(d.x[11] == 11.0f);
    assert_int_equal(d.n_classes, 5);
    assert_int_equal(d.labels[2], 4);
    pf_dataset_free(&d);
}

static void test_npy_float_targets_are_regression(void **s)
{
    (void)s;
    const double y[6] = {0.5, 1, 2, 3, 4, 5};
    write_npy(path, "x.npy", "<f4", "False", "(3, 4)", x34, sizeof x34, 1);
    write_npy(path2, "y.npy", "<f8", "False", "(3, 2)", y, sizeof y, 1);
    pf_dataset d;
    pf_error err;
    assert_int_equal(pf_npy_read_dataset(path, path2, PF_TARGET_AUTO, &d, &err), PF_OK);
    assert_null(d.labels);
    assert_int_equal(d.n_targets, 2);
    assert_true(d.targets[0] == 0.5f && d.targets[5] == 5.0f);
    pf_dataset_free(&d);
}

static void test_npy_float_targets_forced_to_class(void **s)
{
    (void)s;
    const float y[3] = {1, 0, 1};
    write_npy(path, "x.npy", "<f4", "False", "(3, 4)", x34, sizeof x34, 1);
    write_npy(path2, "y.npy", "<f4", "False", "(3,)", y, sizeof y, 1);
    pf_dataset d;
    pf_error err;
    assert_int_equal(pf_npy_read_dataset(path, path2, PF_TARGET_CLASS, &d, &err), PF_OK);
    assert_int_equal(d.n_classes, 2);
    pf_dataset_free(&d);
}

static void test_npy_ubyte_vector_v2_header(void **s)
{
    (void)s;
    const uint8_t x[4] = {0, 128, 255, 7};
    const int16_t y[4] = {1, 1, 0, 3};
    write_npy(path, "x.npy", "|u1", "False", "(4,)", x, sizeof x, 2);
    write_npy(path2, "y.npy", "<i2", "False", "(4,)", y, sizeof y, 2);
    pf_dataset d;
    pf_error err;
    assert_int_equal(pf_npy_read_dataset(path, path2, PF_TARGET_AUTO, &d, &err), PF_OK);
    assert_int_equal(d.dim, 1);
    assert_true(d.x[2] == 255.0f);
    assert_int_equal(d.n_classes, 4);
    pf_dataset_free(&d);
}

static void test_npy_bad_magic(void **s)
{
    (void)s;
    const int32_t y[3] = {0, 1, 2};
    write_npy(path2, "y.npy", "<i4", "False", "(3,)", y, sizeof y, 1);
    write_file(path, "x.npy", "\x92NUMPY\x01\x00\x00\x00", 10);
    expect_npy_bad(PF_TARGET_AUTO, "bad magic");
}

static void test_npy_bad_fortran_order(void **s)
{
    (void)s;
    write_npy(path, "x.npy", "<f4", "True", "(3, 4)", x34, sizeof x34, 1);
    expect_npy_bad(PF_TARGET_AUTO, "Fortran");
}

static void test_npy_bad_dtype(void **s)
{
    (void)s;
    write_npy(path, "x.npy", "<c8", "False", "(3, 2)", x34, sizeof x34, 1);
    expect_npy_bad(PF_TARGET_AUTO, "unsupported dtype");
    write_npy(path, "x.npy", ">f4", "False", "(3, 4)", x34, sizeof x34, 1);
    expect_npy_bad(PF_TARGET_AUTO, "unsupported dtype");
}

static void test_npy_bad_size_mismatch(void **s)
{
    (void)s;
    write_npy(path, "x.npy", "<f4", "False", "(3, 5)", x34, sizeof x34, 1);
    expect_npy_bad(PF_TARGET_AUTO, "shape declares 60 bytes of data but file holds 48");
}

static void test_npy_bad_count_mismatch(void **s)
{
    (void)s;
    const int32_t y[4] = {0, 1, 2, 3};
    write_npy(path, "x.npy", "<f4", "False", "(3, 4)", x34, sizeof x34, 1);
    write_npy(path2, "y.npy", "<i4", "False", "(4,)", y, sizeof y, 1);
    expect_npy_bad(PF_TARGET_AUTO, "y.npy: targets need shape (3)");
}

static void test_npy_bad_negative_labels(void **s)
{
    (void)s;
    const int32_t y[3] = {0, -1, 2};
    write_npy(path, "x.npy", "<f4", "False", "(3, 4)", x34, sizeof x34, 1);
    write_npy(path2, "y.npy", "<i4", "False", "(3,)", y, sizeof y, 1);
    expect_npy_bad(PF_TARGET_AUTO, "not a class label");
}

static void test_npy_bad_fifo(void **s)
{
    (void)s;
    const int32_t y[3] = {0, 1, 2};
    write_npy(path2, "y.npy", "<i4", "False", "(3,)", y, sizeof y, 1);
    snprintf(path, sizeof path, "%s/fifo.npy", tmpdir);
    assert_int_equal(mkfifo(path, 0600), 0);
    arm_alarm();
    expect_npy_bad(PF_TARGET_AUTO, "fifo.npy: not a regular file");
    alarm(0);
}

/* Non-finite features or targets fail at load, naming the file. */
static void test_npy_bad_non_finite(void **s)
{
    (void)s;
    const int32_t y[3] = {0, 1, 2};
    float xf[12];
    double xd[12];
    for (int i = 0; i < 12; i++) xf[i] = (float)i, xd[i] = i;
    write_npy(path2, "y.npy", "<i4", "False", "(3,)", y, sizeof y, 1);
    xf[5] = NAN;
    write_npy(path, "x.npy", "<f4", "False", "(3, 4)", xf, sizeof xf, 1);
    expect_npy_bad(PF_TARGET_AUTO, "x.npy: element 5 is NaN");
    xd[7] = -INFINITY;
    write_npy(path, "x.npy", "<f8", "False", "(3, 4)", xd, sizeof xd, 1);
    expect_npy_bad(PF_TARGET_AUTO, "x.npy: element 7 is Inf");
    xd[7] = 1e300;  /* finite as a double, Inf as the float we train in */
    write_npy(path, "x.npy", "<f8", "False", "(3, 4)", xd, sizeof xd, 1);
    expect_npy_bad(PF_TARGET_AUTO, "x.npy: element 7 is beyond float range");

    const double ty[3] = {0.5, NAN, 1};
    write_npy(path, "x.npy", "<f4", "False", "(3, 4)", x34, sizeof x34, 1);
    write_npy(path2, "y.npy", "<f8", "False", "(3,)", ty, sizeof ty, 1);
    expect_npy_bad(PF_TARGET_AUTO, "y.npy: element 1 is NaN");
}

/* A header cut anywhere, even right after "'descr': '", is refused without
 * reading past its end (run under ASan, that read was a heap overflow). */
static void test_npy_bad_header_cut_anywhere(void **s)
{
    (void)s;
    const int32_t y[3] = {0, 1, 2};
    write_npy(path2, "y.npy", "<i4", "False", "(3,)", y, sizeof y, 1);
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
    size_t full = strlen(dict);
    for (size_t len = 0; len < full; len++) {
        unsigned char buf[128];
        memcpy(buf, "\x93NUMPY\x01\x00", 8);
        buf[8] = (unsigned char)len;
        buf[9] = 0;
        memcpy(buf + 10, dict, len);
        write_file(path, "cut.npy", buf, 10 + len);
        pf_dataset d;
        pf_error err;
        assert_int_equal(pf_npy_read_dataset(path, path2, PF_TARGET_AUTO, &d, &err), PF_EINPUT);
        assert_non_null(strstr(err.msg, "cut.npy: "));
        assert_null(d.x);
    }
    /* the exact case of the report: the descr value is cut after its quote */
    const char *cut = "{'descr': '";
    unsigned char buf[64];
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)strlen(cut);
    buf[9] = 0;
    memcpy(buf + 10, cut, strlen(cut));
    write_file(path, "cut.npy", buf, 10 + strlen(cut));
    expect_npy_bad(PF_TARGET_AUTO, "unsupported dtype");
}

static void test_npy_bad_class_from_fractions(void **s)
{
    (void)s;
    const float y[3] = {0, 0.5f, 1};
    write_npy(path, "x.npy", "<f4", "False", "(3, 4)", x34, sizeof x34, 1);
    write_npy(path2, "y.npy", "<f4", "False", "(3,)", y, sizeof y, 1);
    expect_npy_bad(PF_TARGET_CLASS, "not a class label");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_integral_targets_are_labels),
        cmocka_unit_test(test_csv_fractional_targets_are_regression),
        cmocka_unit_test(test_csv_negative_integers_are_regression),
        cmocka_unit_test(test_csv_forced_regression),
        cmocka_unit_test(test_csv_two_target_columns),
        cmocka_unit_test(test_csv_header_skipped),
        cmocka_unit_test(test_csv_crlf_and_trailing_blank_lines),
        cmocka_unit_test(test_csv_bad_ragged_rows),
        cmocka_unit_test(test_csv_bad_non_numeric_cell),
        cmocka_unit_test(test_csv_bad_nan),
        cmocka_unit_test(test_csv_bad_inf),
        cmocka_unit_test(test_csv_bad_empty_file),
        cmocka_unit_test(test_csv_bad_header_only),
        cmocka_unit_test(test_csv_bad_class_not_integral),
        cmocka_unit_test(test_csv_bad_negative_labels),
        cmocka_unit_test(test_csv_bad_nonexistent),
        cmocka_unit_test(test_csv_bad_first_row_cell),
        cmocka_unit_test(test_csv_bad_fifo),
        cmocka_unit_test(test_npy_integer_targets_are_labels),
        cmocka_unit_test(test_npy_float_targets_are_regression),
        cmocka_unit_test(test_npy_float_targets_forced_to_class),
        cmocka_unit_test(test_npy_ubyte_vector_v2_header),
        cmocka_unit_test(test_npy_bad_magic),
        cmocka_unit_test(test_npy_bad_fortran_order),
        cmocka_unit_test(test_npy_bad_dtype),
        cmocka_unit_test(test_npy_bad_size_mismatch),
        cmocka_unit_test(test_npy_bad_count_mismatch),
        cmocka_unit_test(test_npy_bad_negative_labels),
        cmocka_unit_test(test_npy_bad_class_from_fractions),
        cmocka_unit_test(test_npy_bad_fifo),
        cmocka_unit_test(test_npy_bad_non_finite),
        cmocka_unit_test(test_npy_bad_header_cut_anywhere),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

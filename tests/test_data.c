/* Dataset loading: directory discovery, normalization, seeded subsets, and the
 * real MNIST and Fashion-MNIST when they are on this machine. */
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
#include <zlib.h>

#include "pathfinder/io.h"

enum { N_TRAIN = 40, N_TEST = 12, SIDE = 3 };

static char tmpdir[64];      /* holds a tiny IDX set */
static char emptydir[64];    /* holds nothing loadable */
static char tabdir[64];      /* holds train.csv and test.csv */
static char npydir[64];      /* holds train_x.npy ... test_y.npy */
static char flatdir[64];     /* holds an IDX set of constant images */

static void put_be32(unsigned char *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8) p[i] = (unsigned char)v;
}

/* A ubyte IDX file of shape (n) or (n, SIDE, SIDE); gzip'd if name ends in .gz. */
static void write_idx(const char *dir, const char *name, uint32_t n, int images, unsigned seed)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    size_t count = images ? n * SIDE * SIDE : n, len = 0;
    unsigned char *buf = malloc(16 + count);
    buf[len++] = 0;
    buf[len++] = 0;
    buf[len++] = 0x08;
    buf[len++] = images ? 3 : 1;
    put_be32(buf + len, n), len += 4;
    if (images) put_be32(buf + len, SIDE), put_be32(buf + len + 4, SIDE), len += 8;
    for (size_t i = 0; i < count; i++, len++)
        buf[len] = images ? (unsigned char)((i * 2654435761u + seed) >> 13)  /* spread-out pixels */
                          : (unsigned char)((i * 7 + seed) % 3);              /* labels 0..2 */
    gzFile g = gzopen(p, strstr(name, ".gz") ? "wb" : "wbT");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, buf, (unsigned)len), (int)len);
    assert_int_equal(gzclose(g), Z_OK);
    free(buf);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A version 1 NPY file whose header is padded to 128 bytes, as NumPy pads to 64s. */
static void write_npy(const char *dir, const char *name, const char *descr, const char *shape,
                      const void *data, size_t n)
{
    char p[256], head[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    memset(head, ' ', sizeof head);
    memcpy(head, "\x93NUMPY\x01\x00\x76\x00", 10);  /* header length 118 */
    int len = snprintf(head + 10, 100, "{'descr': '%s', 'fortran_order': False, 'shape': %s}",
                       descr, shape);
    assert_true(len > 0 && len < 100);
    head[10 + len] = ' ';
    head[127] = '\n';
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(head, 1, sizeof head, f), sizeof head);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static int make_dir(char *buf, const char *tag)
{
    snprintf(buf, 64, "/tmp/pf_test_data_%s_XXXXXX", tag);
    return mkdtemp(buf) ? 0 : -1;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    if (d) closedir(d);
    rmdir(dir);
}

static int setup(void **state)
{
    (void)state;
    if (make_dir(tmpdir, "idx") || make_dir(emptydir, "empty") || make_dir(tabdir, "csv") ||
        make_dir(npydir, "npy") || make_dir(flatdir, "flat"))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    remove_dir(tmpdir);
    remove_dir(emptydir);
    remove_dir(tabdir);
    remove_dir(npydir);
    remove_dir(flatdir);
    return 0;
}

/* The tiny set: raw training files and gzip'd test files. */
static void write_tiny_idx_set(void)
{
    write_idx(tmpdir, "train-images-idx3-ubyte", N_TRAIN, 1, 1);
    write_idx(tmpdir, "train-labels-idx1-ubyte", N_TRAIN, 0, 1);
    write_idx(tmpdir, "t10k-images-idx3-ubyte.gz", N_TEST, 1, 2);
    write_idx(tmpdir, "t10k-labels-idx1-ubyte.gz", N_TEST, 0, 2);
}

static void mean_std(const pf_dataset *d, double *mean, double *std)
{
    size_t count = d->n * (size_t)d->dim;
    double sum = 0, sq = 0;
    for (size_t i = 0; i < count; i++) sum += d->x[i];
    *mean = sum / (double)count;
    for (size_t i = 0; i < count; i++) sq += (d->x[i] - *mean) * (d->x[i] - *mean);
    *std = sqrt(sq / (double)count);
}

static int load(const char *spec, long subset, uint64_t seed, pf_dataset *train,
                pf_dataset *test, pf_error *err)
{
    pf_data_options o;
    pf_data_options_default(&o);
    o.spec = spec;
    o.train_subset = subset;
    o.subset_seed = seed;
    return pf_data_load(&o, train, test, err);
}

static void test_defaults(void **s)
{
    (void)s;
    pf_data_options o;
    pf_data_options_default(&o);
    assert_string_equal(o.spec, "mnist");
    assert_int_equal(o.target, PF_TARGET_AUTO);
    assert_int_equal(o.n_targets, 1);
    assert_int_equal(o.norm, PF_NORM_AUTO);
    assert_true(o.mean == 0 && o.std == 1);
    assert_int_equal(o.train_subset, 0);
}

static void test_idx_dir_auto_norm_gives_zero_mean_unit_std(void **s)
{
    (void)s;
    write_tiny_idx_set();
    pf_dataset train, test;
    pf_error err;
    assert_int_equal(load(tmpdir, 0, 0, &train, &test, &err), PF_OK);
    assert_int_equal(train.n, N_TRAIN);
    assert_int_equal(test.n, N_TEST);
    assert_int_equal(train.dim, SIDE * SIDE);
    assert_int_equal(train.n_classes, 3);
    assert_int_equal(test.n_classes, 3);
    assert_string_equal(train.name, tmpdir);
    double mean, std;
    mean_std(&train, &mean, &std);
    assert_true(fabs(mean) < 1e-5);
    assert_true(fabs(std - 1) < 1e-4);
    pf_dataset_free(&train);
    pf_dataset_free(&test);
}

static void test_idx_dir_no_norm_scales_bytes_to_unit(void **s)
{
    (void)s;
    write_tiny_idx_set();
    pf_data_options o;
    pf_data_options_default(&o);
    o.spec = tmpdir;
    o.norm = PF_NORM_NONE;
    pf_dataset train, test;
    pf_error err;
    assert_int_equal(pf_data_load(&o, &train, &test, &err), PF_OK);
    float lo = 1, hi = 0;
    for (size_t i = 0; i < train.n * (size_t)train.dim; i++) {
        if (train.x[i] < lo) lo = train.x[i];
        if (train.x[i] > hi) hi = train.x[i];
    }
    assert_true(lo >= 0 && hi <= 1 && hi > 0.5f);
    pf_dataset_free(&train);
    pf_dataset_free(&test);
}

static void test_subset_has_n_rows_and_is_deterministic(void **s)
{
    (void)s;
    write_tiny_idx_set();
    pf_dataset a, b, c, test;
    pf_error err;
    assert_int_equal(load(tmpdir, 7, 11, &a, &test, &err), PF_OK);
    assert_int_equal(test.n, N_TEST);  /* the test set is never subset */
    pf_dataset_free(&test);
    assert_int_equal(load(tmpdir, 7, 11, &b, &test, &err), PF_OK);
    pf_dataset_free(&test);
    assert_int_equal(load(tmpdir, 7, 12, &c, &test, &err), PF_OK);
    pf_dataset_free(&test);
    assert_int_equal(a.n, 7);
    assert_int_equal(c.n, 7);
    size_t bytes = 7 * (size_t)a.dim * sizeof(float);
    assert_memory_equal(a.x, b.x, bytes);
    assert_memory_equal(a.labels, b.labels, 7 * sizeof(int));
    assert_memory_not_equal(a.x, c.x, bytes);
    pf_dataset_free(&a);
    pf_dataset_free(&b);
    pf_dataset_free(&c);
}

static void test_subset_larger_than_train_errors(void **s)
{
    (void)s;
    write_tiny_idx_set();
    pf_dataset train, test;
    pf_error err;
    assert_int_equal(load(tmpdir, N_TRAIN + 1, 0, &train, &test, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, "subset"));
    assert_null(train.x);
    assert_null(test.x);
}

static void test_csv_dir_zscores_each_feature(void **s)
{
    (void)s;
    write_text(tabdir, "train.csv", "f1,f2,y\n1,10,0\n2,10,1\n3,10,1\n");
    write_text(tabdir, "test.csv", "f1,f2,y\n2,11,0\n");
    pf_dataset train, test;
    pf_error err;
    assert_int_equal(load(tabdir, 0, 0, &train, &test, &err), PF_OK);
    assert_int_equal(train.n_classes, 2);
    assert_true(fabsf(train.x[0] + 1.2247449f) < 1e-5f);  /* (1 - 2) / sqrt(2/3) */
    assert_true(train.x[1] == 0.0f);                       /* constant feature: std 1 */
    assert_true(test.x[0] == 0.0f && test.x[1] == 1.0f);
    pf_dataset_free(&train);
    pf_dataset_free(&test);
}

static void test_npy_dir_loads_and_agrees(void **s)
{
    (void)s;
    const float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const int32_t y[4] = {0, 1, 1, 0}, y_test[2] = {1, 0};
    write_npy(npydir, "train_x.npy", "<f4", "(4, 2)", x, sizeof x);
    write_npy(npydir, "train_y.npy", "<i4", "(4,)", y, sizeof y);
    write_npy(npydir, "test_x.npy", "<f4", "(2, 2)", x, 4 * sizeof(float));
    write_npy(npydir, "test_y.npy", "<i4", "(2,)", y_test, sizeof y_test);
    pf_data_options o;
    pf_data_options_default(&o);
    o.spec = npydir;
    o.norm = PF_NORM_FIXED;
    o.mean = 1;
    o.std = 2;
    pf_dataset train, test;
    pf_error err;
    assert_int_equal(pf_data_load(&o, &train, &test, &err), PF_OK);
    assert_int_equal(train.n, 4);
    assert_int_equal(test.n, 2);
    assert_int_equal(train.dim, 2);
    assert_int_equal(train.n_classes, 2);
    assert_true(train.x[7] == 3.5f && test.x[1] == 0.5f);  /* (x - 1) / 2 */
    pf_dataset_free(&train);
    pf_dataset_free(&test);
}

static void test_train_test_dim_mismatch_errors(void **s)
{
    (void)s;
    const float x[6] = {1, 2, 3, 4, 5, 6};
    write_npy(npydir, "test_x.npy", "<f4", "(2, 3)", x, sizeof x);
    pf_dataset train, test;
    pf_error err;
    assert_int_equal(load(npydir, 0, 0, &train, &test, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, "train has 2 features but test has 3"));
    assert_null(train.x);
}

static void test_unknown_spec_errors(void **s)
{
    (void)s;
    pf_dataset train, test;
    pf_error err;
    assert_int_equal(load("no-such-dataset", 0, 0, &train, &test, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, "unknown dataset 'no-such-dataset'"));
}

static void test_empty_dir_errors(void **s)
{
    (void)s;
    pf_dataset train, test;
    pf_error err;
    assert_int_equal(load(emptydir, 0, 0, &train, &test, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, emptydir));
    assert_non_null(strstr(err.msg, "train.csv"));
}

static void test_missing_mnist_says_make_data(void **s)
{
    (void)s;
    const char *old = getenv("PATHFINDER_DATA");
    char *saved = old ? strdup(old) : NULL;
    setenv("PATHFINDER_DATA", emptydir, 1);
    char dir[1024], want[1024];
    snprintf(want, sizeof want, "%s/mnist", emptydir);
    assert_int_equal(pf_data_dir("mnist", dir, sizeof dir), 0);   /* only there, and not there */
    assert_string_equal(dir, want);
    pf_dataset train, test;
    pf_error err;
    int rc = load("mnist", 0, 0, &train, &test, &err);
    if (saved) setenv("PATHFINDER_DATA", saved, 1);
    else unsetenv("PATHFINDER_DATA");
    free(saved);
    assert_int_equal(rc, PF_EINPUT);
    assert_non_null(strstr(err.msg, "MNIST not found in"));
    assert_non_null(strstr(err.msg, "make data"));
}

/* train.csv has class labels; a stray -1 in test.csv made auto-detection
 * call it regression, and the error said only "train and test disagree". */
static void test_csv_dir_bad_label_names_file_and_line(void **s)
{
    (void)s;
    write_text(tabdir, "train.csv", "f,y\n1,0\n2,1\n3,1\n");
    write_text(tabdir, "test.csv", "f,y\n2,1\n4,-1\n5,0\n");
    pf_dataset train, test;
    pf_error err;
    assert_int_equal(load(tabdir, 0, 0, &train, &test, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, "test.csv:3: target -1 is not a class label"));
    assert_non_null(strstr(err.msg, "train.csv has class labels"));
    assert_null(train.x);
    /* the same from the other side: the stray value is in train.csv */
    write_text(tabdir, "train.csv", "f,y\n1,0\n2,2.5\n");
    write_text(tabdir, "test.csv", "f,y\n2,1\n4,0\n");
    assert_int_equal(load(tabdir, 0, 0, &train, &test, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, "train.csv:3: target 2.5 is not a class label"));
}

/* A std too small to divide by: zero or subnormal as a float. A fixed one
 * of 1e-40 used to pass (it is > 0) and turned every input into Inf. */
static void test_norm_rejects_tiny_std(void **s)
{
    (void)s;
    write_tiny_idx_set();
    pf_data_options o;
    pf_data_options_default(&o);
    o.spec = tmpdir;
    o.norm = PF_NORM_FIXED;
    pf_dataset train, test;
    pf_error err;
    const double bad_std[] = {1e-40, 0, -1, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad_std / sizeof *bad_std; i++) {
        o.std = bad_std[i];
        assert_int_equal(pf_data_load(&o, &train, &test, &err), PF_EINPUT);
        assert_non_null(strstr(err.msg, tmpdir));
        assert_non_null(strstr(err.msg, "std"));
        assert_null(train.x);
    }

    /* a feature whose values differ only by subnormal amounts */
    write_text(tabdir, "train.csv", "f1,f2,y\n0,1,0\n2e-39,2,1\n");
    write_text(tabdir, "test.csv", "f1,f2,y\n0,1,0\n");
    assert_int_equal(load(tabdir, 0, 0, &train, &test, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, tabdir));
    assert_non_null(strstr(err.msg, "feature 1 has std"));
}

/* Images that are all the same value have std 0: nothing to scale by. */
static void test_idx_dir_constant_images_rejected(void **s)
{
    (void)s;
    char p[256];
    unsigned char buf[16 + 5 * 4];
    memset(buf, 0, sizeof buf);
    buf[2] = 0x08;
    buf[3] = 3;
    put_be32(buf + 4, 5), put_be32(buf + 8, 2), put_be32(buf + 12, 2);
    for (size_t i = 16; i < sizeof buf; i++) buf[i] = 7;
    const char *img[2] = {"train-images-idx3-ubyte", "t10k-images-idx3-ubyte"};
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/%s", flatdir, img[k]);
        FILE *f = fopen(p, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(buf, 1, sizeof buf, f), sizeof buf);
        fclose(f);
    }
    write_idx(flatdir, "train-labels-idx1-ubyte", 5, 0, 1);
    write_idx(flatdir, "t10k-labels-idx1-ubyte", 5, 0, 2);
    pf_dataset train, test;
    pf_error err;
    assert_int_equal(load(flatdir, 0, 0, &train, &test, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, flatdir));
    assert_non_null(strstr(err.msg, "std 0"));
    assert_null(train.x);
}

static void on_alarm(int sig) { (void)sig; }

/* A FIFO with no writer (a sweep folder's config.json, say) blocked the
 * open forever. The alarm (without SA_RESTART) turns a hang into a failure. */
static void arm_alarm(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
    alarm(2);
}

static void test_read_file_refuses_fifo(void **s)
{
    (void)s;
    char p[256];
    snprintf(p, sizeof p, "%s/config.json", emptydir);
    assert_int_equal(mkfifo(p, 0600), 0);
    char *text = NULL;
    pf_error err;
    arm_alarm();
    int rc = pf_read_file(p, &text, NULL, 1 << 20, &err);
    alarm(0);
    unlink(p);
    assert_int_equal(rc, PF_EINPUT);
    assert_non_null(strstr(err.msg, "config.json: not a regular file"));
    assert_null(text);
}

/* The shared opener refuses what is not a regular file, and reports the
 * size of what is. */
static void test_open_input(void **s)
{
    (void)s;
    char p[256];
    snprintf(p, sizeof p, "%s/fifo", emptydir);
    assert_int_equal(mkfifo(p, 0600), 0);
    const char *refused[] = {p, emptydir, "/dev/zero"};  /* FIFO, folder, device */
    for (int i = 0; i < 3; i++) {
        FILE *f = (FILE *)&s;
        int fd = 7;
        pf_error err;
        arm_alarm();
        assert_int_equal(pf_open_input(refused[i], &f, NULL, &err), PF_EINPUT);
        assert_int_equal(pf_open_input_fd(refused[i], &fd, NULL, &err), PF_EINPUT);
        alarm(0);
        assert_null(f);
        assert_int_equal(fd, -1);
        assert_non_null(strstr(err.msg, refused[i]));
        assert_non_null(strstr(err.msg, "not a regular file"));
    }
    unlink(p);
    write_text(emptydir, "five", "12345");
    snprintf(p, sizeof p, "%s/five", emptydir);
    FILE *f;
    uint64_t size = 0;
    pf_error err;
    assert_int_equal(pf_open_input(p, &f, &size, &err), PF_OK);
    assert_int_equal(size, 5);
    char got[8] = {0};
    assert_int_equal(fread(got, 1, sizeof got, f), 5);  /* blocking reads work as usual */
    assert_string_equal(got, "12345");
    fclose(f);
    unlink(p);
    snprintf(p, sizeof p, "%s/none", emptydir);
    assert_int_equal(pf_open_input(p, &f, NULL, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, "none: cannot open: No such file"));
}

/* Whether DIR/NAME or DIR/NAME.gz exists. */
static int have_file(const char *dir, const char *name)
{
    char p[1024];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (stat(p, &st) == 0) return 1;
    snprintf(p, sizeof p, "%s/%s.gz", dir, name);
    return stat(p, &st) == 0;
}

static void check_full_set(const pf_dataset *train, const pf_dataset *test)
{
    assert_int_equal(train->n, 60000);
    assert_int_equal(test->n, 10000);
    assert_int_equal(train->dim, 784);
    assert_int_equal(train->n_classes, 10);
    assert_int_equal(test->n_classes, 10);
    double mean, std;
    mean_std(train, &mean, &std);
    assert_true(fabs(mean) < 0.05);
    assert_true(fabs(std - 1) < 0.05);
}

static void test_real_mnist(void **s)
{
    (void)s;
    char dir[1024];
    pf_data_dir("mnist", dir, sizeof dir);
    if (!have_file(dir, "train-images-idx3-ubyte")) skip();
    pf_dataset train, test;
    pf_error err;
    assert_int_equal(load("mnist", 0, 0, &train, &test, &err), PF_OK);
    check_full_set(&train, &test);
    assert_string_equal(train.name, "mnist");
    const int first[5] = {5, 0, 4, 1, 9};
    assert_memory_equal(train.labels, first, sizeof first);
    pf_dataset_free(&train);
    pf_dataset_free(&test);
}

static void test_real_fashion_mnist(void **s)
{
    (void)s;
    char dir[1024];
    pf_data_dir("fashion-mnist", dir, sizeof dir);
    if (!have_file(dir, "train-images-idx3-ubyte") &&
        !have_file("/usr/share/datasets/fashion-mnist", "train-images-idx3-ubyte"))
        skip();
    pf_dataset train, test;
    pf_error err;
    assert_int_equal(load("fashion-mnist", 0, 0, &train, &test, &err), PF_OK);
    check_full_set(&train, &test);
    assert_string_equal(train.name, "fashion-mnist");
    pf_dataset_free(&train);
    pf_dataset_free(&test);
}

/* Arrays given in memory load as the same table written to CSV does: the
 * same normalized features, labels and classes; the caller's arrays stay
 * as they were; bad arrays are refused with what is wrong. */
static void test_arrays_load_like_a_table(void **s)
{
    (void)s;
    float xtr[] = {0, 10, 1, 20, 2, 40, 3, 80, 4, 160}, xte[] = {1, 5, 7, 9};
    int ytr[] = {0, 2, 1, 2, 0}, yte[] = {1, 0};
    float keep[10];
    memcpy(keep, xtr, sizeof keep);
    write_text(tabdir, "train.csv", "a,b,y\n0,10,0\n1,20,2\n2,40,1\n3,80,2\n4,160,0\n");
    write_text(tabdir, "test.csv", "a,b,y\n1,5,1\n7,9,0\n");
    pf_dataset ftr, fte, atr, ate;
    pf_error err;
    assert_int_equal(load(tabdir, 0, 0, &ftr, &fte, &err), PF_OK);

    pf_dataset in_tr = {.n = 5, .dim = 2, .x = xtr, .labels = ytr};
    pf_dataset in_te = {.n = 2, .dim = 2, .x = xte, .labels = yte};
    pf_data_options o;
    pf_data_options_default(&o);
    o.train_arrays = &in_tr;
    o.test_arrays = &in_te;
    assert_int_equal(pf_data_load(&o, &atr, &ate, &err), PF_OK);
    assert_string_equal(atr.name, "arrays");
    assert_int_equal(atr.n_classes, 3);
    assert_int_equal(ate.n_classes, 3);
    assert_memory_equal(atr.x, ftr.x, sizeof xtr);
    assert_memory_equal(ate.x, fte.x, sizeof xte);
    assert_memory_equal(atr.labels, ytr, sizeof ytr);
    assert_memory_equal(xtr, keep, sizeof keep);
    assert_true(fabsf(atr.x[0]) > 0.5f);   /* z-scored, not copied as given */
    pf_dataset_free(&atr), pf_dataset_free(&ate);

    o.train_subset = 3;
    assert_int_equal(pf_data_load(&o, &atr, &ate, &err), PF_OK);
    assert_int_equal(atr.n, 3);
    pf_dataset_free(&atr), pf_dataset_free(&ate);
    o.train_subset = 0;

    ytr[3] = -1;
    assert_int_equal(pf_data_load(&o, &atr, &ate, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, "train label -1 of sample 3"));
    assert_null(atr.x);
    ytr[3] = 2;
    xte[2] = NAN;
    assert_int_equal(pf_data_load(&o, &atr, &ate, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, "test feature 0 of sample 1 is not finite"));
    xte[2] = 7;
    o.test_arrays = NULL;
    assert_int_equal(pf_data_load(&o, &atr, &ate, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, "test set missing"));
    pf_dataset_free(&ftr), pf_dataset_free(&fte);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_idx_dir_auto_norm_gives_zero_mean_unit_std),
        cmocka_unit_test(test_idx_dir_no_norm_scales_bytes_to_unit),
        cmocka_unit_test(test_subset_has_n_rows_and_is_deterministic),
        cmocka_unit_test(test_subset_larger_than_train_errors),
        cmocka_unit_test(test_csv_dir_zscores_each_feature),
        cmocka_unit_test(test_npy_dir_loads_and_agrees),
        cmocka_unit_test(test_train_test_dim_mismatch_errors),
        cmocka_unit_test(test_unknown_spec_errors),
        cmocka_unit_test(test_empty_dir_errors),
        cmocka_unit_test(test_missing_mnist_says_make_data),
        cmocka_unit_test(test_csv_dir_bad_label_names_file_and_line),
        cmocka_unit_test(test_norm_rejects_tiny_std),
        cmocka_unit_test(test_idx_dir_constant_images_rejected),
        cmocka_unit_test(test_read_file_refuses_fifo),
        cmocka_unit_test(test_open_input),
        cmocka_unit_test(test_arrays_load_like_a_table),
        cmocka_unit_test(test_real_mnist),
        cmocka_unit_test(test_real_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

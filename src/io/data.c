/* Named and on-disk datasets: find the files, load train and test, normalize
 * with training statistics, and take a fixed seeded training subset. */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pathfinder/io.h"

#define PATH_LEN 4096

#define FASHION_SYSTEM_DIR "/usr/share/datasets/fashion-mnist"


static const char *const idx_names[4] = {
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
};

void pf_data_options_default(pf_data_options *o)
{
    memset(o, 0, sizeof *o);
    o->spec = "mnist";
    o->target = PF_TARGET_AUTO;
    o->n_targets = 1;
    o->norm = PF_NORM_AUTO;
    o->mean = 0;
    o->std = 1;
    o->train_subset = 0;
    o->subset_seed = 0;
}


static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* DIR/NAME if it is a file, else DIR/NAME.gz; 0 if neither. */
static int find_file(char *buf, size_t n, const char *dir, const char *name, int try_gz)
{
    snprintf(buf, n, "%s/%s", dir, name);
    if (is_file(buf)) return 1;
    if (!try_gz) return 0;
    snprintf(buf, n, "%s/%s.gz", dir, name);
    return is_file(buf);
}

static int find_set(char paths[][PATH_LEN], const char *dir, const char *const *names,
                    int count, int try_gz)
{
    for (int i = 0; i < count; i++)
        if (!find_file(paths[i], PATH_LEN, dir, names[i], try_gz)) return 0;
    return 1;
}

/* --------------------------------------------------------------- idx set */

/* Images (n, ...) and labels (n) into one dataset; ubyte pixels become [0, 1]. */
static int idx_pair(const char *img_path, const char *lab_path, pf_dataset *d, pf_error *err)
{
    pf_idx img, lab;
    int rc = pf_idx_read(img_path, &img, err);
    if (rc) return rc;
    rc = pf_idx_read(lab_path, &lab, err);
    if (rc) {
        pf_idx_free(&img);
        return rc;
    }
    size_t n = img.dims[0], dim = n ? img.count / n : 0;
    if (n == 0 || dim == 0 || dim > INT_MAX) {
        rc = pf_fail(err, PF_EINPUT, "%s: images give %zu samples of %zu values", img_path, n, dim);
    } else if (lab.rank != 1 || lab.dims[0] != n) {
        rc = pf_fail(err, PF_EINPUT, "%s: labels need shape (%zu) to match %s", lab_path, n,
                     img_path);
    } else if (!(d->labels = malloc(n * sizeof(int)))) {
        rc = pf_fail(err, PF_ERUNTIME, "%s: out of memory", lab_path);
    } else {
        d->n_classes = 0;
        for (size_t i = 0; i < n && !rc; i++) {
            float v = lab.data[i];
            if (!(v >= 0 && v < 256 && v == floorf(v)))
                rc = pf_fail(err, PF_EINPUT, "%s: label %g of sample %zu is not in 0..255",
                             lab_path, v, i + 1);
            else if ((d->labels[i] = (int)v) >= d->n_classes)
                d->n_classes = d->labels[i] + 1;
        }
    }
    if (!rc) {
        if (img.type == 0x08)
            for (size_t i = 0; i < img.count; i++) img.data[i] /= 255.0f;
        d->x = img.data;
        img.data = NULL;
        d->n = n;
        d->dim = (int)dim;
    }
    pf_idx_free(&img);
    pf_idx_free(&lab);
    return rc;
}

static int load_idx(char paths[][PATH_LEN], pf_dataset *train, pf_dataset *test, pf_error *err)
{
    int rc = idx_pair(paths[0], paths[1], train, err);
    if (!rc) rc = idx_pair(paths[2], paths[3], test, err);
    return rc;
}

/* ---------------------------------------------------------- normalization */

/* In float, as torchvision's Normalize does, so MNIST inputs match PyTorch's bit for bit. */
static void scale_all(pf_dataset *d, double mean, double std)
{
    size_t count = d->n * (size_t)d->dim;
    float m = (float)mean, s = (float)std;
    for (size_t i = 0; i < count; i++) d->x[i] = (d->x[i] - m) / s;
}

/* A std we divide by: zero or below FLT_MIN (subnormal as a float, the type
 * the data is scaled in) would turn the inputs into Inf or rounding noise. */
static int usable_std(double std) { return isfinite(std) && std >= FLT_MIN; }

/* One mean and std over every value of the training set. */
static int scalar_stats(const pf_dataset *d, double *mean, double *std, pf_error *err)
{
    size_t count = d->n * (size_t)d->dim;
    double sum = 0, sq = 0;
    for (size_t i = 0; i < count; i++) sum += d->x[i];
    *mean = sum / (double)count;
    for (size_t i = 0; i < count; i++) sq += (d->x[i] - *mean) * (d->x[i] - *mean);
    *std = sqrt(sq / (double)count);
    if (!usable_std(*std))
        return pf_fail(err, PF_EINPUT, "%s: training values have std %g (mean %g): too small to "
                       "normalize by; use --normalize none or MEAN,STD", d->name, *std, *mean);
    return PF_OK;
}

/* Per-feature z-score with the training set's mean and std. A constant
 * feature (std 0) keeps std 1, so it becomes 0 in training; a std that is
 * not 0 but below FLT_MIN is refused, naming the feature. */
static int zscore_features(pf_dataset *train, pf_dataset *test, pf_error *err)
{
    int dim = train->dim;
    double *mean = calloc((size_t)dim, sizeof(double)), *std = calloc((size_t)dim, sizeof(double));
    if (!mean || !std) {
        free(mean);
        free(std);
        return pf_fail(err, PF_ERUNTIME, "out of memory normalizing %d features", dim);
    }
    for (size_t i = 0; i < train->n; i++)
        for (int j = 0; j < dim; j++) mean[j] += train->x[i * (size_t)dim + j];
    for (int j = 0; j < dim; j++) mean[j] /= (double)train->n;
    for (size_t i = 0; i < train->n; i++)
        for (int j = 0; j < dim; j++) {
            double c = train->x[i * (size_t)dim + j] - mean[j];
            std[j] += c * c;
        }
    for (int j = 0; j < dim; j++) {
        std[j] = sqrt(std[j] / (double)train->n);
        if (std[j] == 0) std[j] = 1;
        if (!usable_std(std[j])) {
            int rc = pf_fail(err, PF_EINPUT, "%s: feature %d has std %g (mean %g) in training: "
                             "too small to normalize by; use --normalize none or MEAN,STD",
                             train->name, j + 1, std[j], mean[j]);
            free(mean);
            free(std);
            return rc;
        }
    }
    pf_dataset *sets[2] = {train, test};
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < sets[s]->n; i++)
            for (int j = 0; j < dim; j++) {
                float *v = &sets[s]->x[i * (size_t)dim + j];
                *v = (float)((*v - mean[j]) / std[j]);
            }
    free(mean);
    free(std);
    return PF_OK;
}

typedef enum { SRC_MNIST, SRC_IDX, SRC_TABLE } source_kind;

static int normalize(const pf_data_options *o, source_kind src, pf_dataset *train,
                     pf_dataset *test, pf_error *err)
{
    double mean = o->mean, std = o->std;
    switch (o->norm) {
    case PF_NORM_NONE:
        return PF_OK;
    case PF_NORM_FIXED:
        if (!usable_std(std) || !isfinite(mean))
            return pf_fail(err, PF_EINPUT, "%s: normalization needs a finite mean and a finite "
                           "std of at least %g, not %g and %g", train->name, FLT_MIN, mean, std);
        break;
    case PF_NORM_AUTO:
        if (src == SRC_TABLE) return zscore_features(train, test, err);
        if (src == SRC_MNIST) {
            mean = PF_MNIST_MEAN;
            std = PF_MNIST_STD;
        } else {
            int rc = scalar_stats(train, &mean, &std, err);
            if (rc) return rc;
        }
        break;
    }
    scale_all(train, mean, std);
    scale_all(test, mean, std);
    return PF_OK;
}

/* ------------------------------------------------------------------ load */

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* A fixed subset: the first m of a seeded shuffle, kept in file order. */
static int take_subset(pf_dataset *train, long m, uint64_t seed, pf_error *err)
{
    if ((size_t)m > train->n)
        return pf_fail(err, PF_EINPUT, "%s: training subset of %ld asks for more than its %zu "
                       "samples", train->name, m, train->n);
    if (train->n > INT_MAX)
        return pf_fail(err, PF_EINPUT, "%s: too many samples (%zu) to take a subset", train->name,
                       train->n);
    int *idx = malloc(train->n * sizeof(int));
    if (!idx) return pf_fail(err, PF_ERUNTIME, "out of memory taking a subset");
    for (size_t i = 0; i < train->n; i++) idx[i] = (int)i;
    pf_rng rng;
    pf_rng_seed(&rng, seed);
    pf_rng_shuffle(&rng, idx, train->n);
    qsort(idx, (size_t)m, sizeof(int), cmp_int);
    pf_dataset sub;
    int rc = pf_dataset_subset(&sub, train, idx, (size_t)m, err);
    free(idx);
    if (rc) return rc;
    pf_dataset_free(train);
    *train = sub;
    return PF_OK;
}

/* Train and test must describe the same problem. */
static int check_agree(const char *name, pf_dataset *train, pf_dataset *test, pf_error *err)
{
    if (train->dim != test->dim)
        return pf_fail(err, PF_EINPUT, "%s: train has %d features but test has %d", name,
                       train->dim, test->dim);
    if (!train->labels != !test->labels)
        return pf_fail(err, PF_EINPUT, "%s: train and test disagree on class labels vs "
                       "regression targets", name);
    if (train->targets && train->n_targets != test->n_targets)
        return pf_fail(err, PF_EINPUT, "%s: train has %d targets but test has %d", name,
                       train->n_targets, test->n_targets);
    if (train->labels) {
        /* A small test set may miss the top class: both take the larger count. */
        int k = train->n_classes > test->n_classes ? train->n_classes : test->n_classes;
        train->n_classes = test->n_classes = k < 2 ? 2 : k;
    }
    return PF_OK;
}

/* Auto-detection made one CSV file's targets class labels and the other's
 * regression values (a stray -1, say). Read the regression one again as
 * class labels, so the error names the file and line of the first value
 * that is not a label. */
static int csv_disagreement(const pf_data_options *o, char paths[][PATH_LEN],
                            const pf_dataset *train, pf_error *err)
{
    const char *odd = train->labels ? paths[1] : paths[0];
    const char *other = train->labels ? paths[0] : paths[1];
    pf_dataset again;
    pf_error why;
    pf_error_clear(&why);
    int rc = pf_csv_read(odd, o->n_targets, PF_TARGET_CLASS, &again, &why);
    pf_dataset_free(&again);
    if (rc == PF_OK) return PF_OK;  /* cannot happen; check_agree still reports it */
    if (rc != PF_EINPUT) {
        *err = why;
        return rc;
    }
    return pf_fail(err, PF_EINPUT, "%s, while %s has class labels (use --target to choose)",
                   why.msg, other);
}

/* Find and read the files; *src says how to normalize. */
static int load_files(const pf_data_options *o, const char *name, source_kind *src,
                      pf_dataset *train, pf_dataset *test, pf_error *err)
{
    char paths[4][PATH_LEN];
    char dir[PATH_LEN];
    if (strcmp(o->spec, "mnist") == 0) {
        pf_data_dir("mnist", dir, sizeof dir);
        if (!find_set(paths, dir, idx_names, 4, 1))
            return pf_fail(err, PF_EINPUT, "MNIST not found in %s: run `make data` in the source "
                           "tree (scripts/fetch-mnist.sh), or set PATHFINDER_DATA", dir);
        *src = SRC_MNIST;
        return load_idx(paths, train, test, err);
    }
    if (strcmp(o->spec, "fashion-mnist") == 0) {
        if (!pf_data_dir("fashion-mnist", dir, sizeof dir)) snprintf(dir, sizeof dir, "%s", FASHION_SYSTEM_DIR);
        if (!find_set(paths, dir, idx_names, 4, 1))
            return pf_fail(err, PF_EINPUT, "Fashion-MNIST not found in %s: install the Debian "
                           "package dataset-fashion-mnist or put the IDX files there", dir);
        *src = SRC_IDX;
        return load_idx(paths, train, test, err);
    }
    if (!is_dir(o->spec))
        return pf_fail(err, PF_EINPUT, "unknown dataset '%s': use mnist, fashion-mnist or a "
                       "directory", o->spec);

    static const char *const csv_names[2] = {"train.csv", "test.csv"};
    static const char *const npy_names[4] = {"train_x.npy", "train_y.npy", "test_x.npy",
                                             "test_y.npy"};
    *src = SRC_TABLE;
    if (find_set(paths, o->spec, idx_names, 4, 1)) {
        *src = SRC_IDX;
        return load_idx(paths, train, test, err);
    }
    if (find_set(paths, o->spec, csv_names, 2, 0)) {
        int rc = pf_csv_read(paths[0], o->n_targets, o->target, train, err);
        if (!rc) rc = pf_csv_read(paths[1], o->n_targets, o->target, test, err);
        if (!rc && !train->labels != !test->labels) rc = csv_disagreement(o, paths, train, err);
        return rc;
    }
    if (find_set(paths, o->spec, npy_names, 4, 0)) {
        int rc = pf_npy_read_dataset(paths[0], paths[1], o->target, train, err);
        return rc ? rc : pf_npy_read_dataset(paths[2], paths[3], o->target, test, err);
    }
    return pf_fail(err, PF_EINPUT, "%s: no dataset found (looked for %s[.gz] and the other IDX "
                   "files, train.csv + test.csv, train_x.npy + train_y.npy + test_x.npy + "
                   "test_y.npy)", name, idx_names[0]);
}

/* A copy of caller's arrays (pf_data_options.train_arrays/test_arrays),
 * checked as a file's contents are: a shape, one kind of target, labels
 * that are class indices, finite values. which names it in errors. */
static int copy_arrays(const pf_dataset *a, const char *which, pf_dataset *d, pf_error *err)
{
    memset(d, 0, sizeof *d);
    if (!a) return pf_fail(err, PF_EINPUT, "arrays: %s set missing (give both train and test)",
                           which);
    if (a->n == 0 || a->dim <= 0 || !a->x)
        return pf_fail(err, PF_EINPUT, "arrays: %s set has no samples or no features", which);
    if (!a->labels == !a->targets)
        return pf_fail(err, PF_EINPUT, "arrays: %s set needs either class labels or regression "
                       "targets", which);
    if (a->targets && a->n_targets <= 0)
        return pf_fail(err, PF_EINPUT, "arrays: %s set has targets but n_targets = %d", which,
                       a->n_targets);
    if (a->n > INT_MAX || (size_t)a->dim > SIZE_MAX / sizeof(float) / a->n)
        return pf_fail(err, PF_EINPUT, "arrays: %s set is too large (%zu x %d)", which, a->n,
                       a->dim);
    size_t nx = a->n * (size_t)a->dim;
    for (size_t i = 0; i < nx; i++)
        if (!isfinite(a->x[i]))
            return pf_fail(err, PF_EINPUT, "arrays: %s feature %zu of sample %zu is not finite",
                           which, i % (size_t)a->dim, i / (size_t)a->dim);
    int top = -1;
    if (a->labels) {
        for (size_t i = 0; i < a->n; i++) {
            int y = a->labels[i];
            if (y < 0 || (a->n_classes > 0 && y >= a->n_classes))
                return pf_fail(err, PF_EINPUT, "arrays: %s label %d of sample %zu is not a class "
                               "index%s", which, y, i, a->n_classes > 0 ? " below n_classes" : "");
            if (y > top) top = y;
        }
    } else {
        for (size_t i = 0; i < a->n * (size_t)a->n_targets; i++)
            if (!isfinite(a->targets[i]))
                return pf_fail(err, PF_EINPUT, "arrays: %s target %zu of sample %zu is not "
                               "finite", which, i % (size_t)a->n_targets, i / (size_t)a->n_targets);
    }
    int *idx = malloc(a->n * sizeof *idx);
    if (!idx) return pf_fail(err, PF_ERUNTIME, "arrays: out of memory copying the %s set", which);
    for (size_t i = 0; i < a->n; i++) idx[i] = (int)i;
    int rc = pf_dataset_subset(d, a, idx, a->n, err);
    free(idx);
    if (rc) return rc;
    if (d->labels && d->n_classes <= 0) d->n_classes = top + 1;
    return PF_OK;
}

int pf_data_load(const pf_data_options *o, pf_dataset *train, pf_dataset *test,
                 pf_error *err)
{
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    const char *name = o->train_arrays || o->test_arrays ? "arrays" : o->spec ? o->spec : "mnist";
    pf_data_options opt = *o;
    opt.spec = name;
    source_kind src = SRC_TABLE;
    int rc;
    if (o->train_arrays || o->test_arrays) {
        rc = copy_arrays(o->train_arrays, "train", train, err);
        if (!rc) rc = copy_arrays(o->test_arrays, "test", test, err);
    } else {
        rc = load_files(&opt, name, &src, train, test, err);
    }
    if (!rc) {
        snprintf(train->name, sizeof train->name, "%s", name);
        snprintf(test->name, sizeof test->name, "%s", name);
        rc = check_agree(name, train, test, err);
    }
    if (!rc) rc = normalize(&opt, src, train, test, err);
    if (!rc && opt.train_subset > 0) rc = take_subset(train, opt.train_subset, opt.subset_seed, err);
    if (rc) {
        pf_dataset_free(train);
        pf_dataset_free(test);
    }
    return rc;
}

int pf_data_shard(const pf_ctx *ctx, pf_dataset *train, size_t n_keep, pf_dataset *test,
                  pf_error *err)
{
    int rank = pf_ctx_rank(ctx), size = pf_ctx_ranks(ctx);
    if (size == 1) return PF_OK;
    int rc = pf_dataset_shard(train, n_keep, rank, size, err);
    if (!rc && test && test->n) rc = pf_dataset_shard(test, 0, rank, size, err);
    return rc;
}

/* pathfinder io: file formats (IDX, CSV, NPY, safetensors), datasets from a
 * spec, and safe reading and writing of files and folders.
 *
 * Every loader validates sizes declared in a file's header against the file's
 * real size before allocating, and reports problems as one line naming the
 * file: "FILE: problem". Nothing here exits; callers decide.
 */
#ifndef PATHFINDER_IO_H
#define PATHFINDER_IO_H

#include "pathfinder/core.h"

/* ------------------------------------------------------------------- idx */

/* An IDX array of any rank, converted to float (and kept as the raw type). */
typedef struct {
    int type;            /* 0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int, 0x0D float, 0x0E double */
    int rank;
    uint32_t dims[8];
    size_t count;        /* product of dims */
    float *data;         /* (count) */
} pf_idx;

/* Read a raw or gzip-compressed IDX file (the gzip case is detected from
 * the content, not the name). */
int pf_idx_read(const char *path, pf_idx *out, pf_error *err);
void pf_idx_free(pf_idx *idx);

/* ------------------------------------------------------------ tabular */

/* CSV: one sample per line, numbers separated by commas; an optional header
 * line of non-numeric names is skipped. The last n_targets columns are the
 * target(s); n_targets = 1 with integral values gives class labels unless
 * regression is forced. */
typedef enum { PF_TARGET_AUTO, PF_TARGET_CLASS, PF_TARGET_REGRESSION } pf_target_kind;

int pf_csv_read(const char *path, int n_targets, pf_target_kind kind, pf_dataset *out,
                pf_error *err);

/* NPY (format 1.0/2.0/3.0, little-endian, C order): features (n, ...) of
 * f4/f8/u1/i1/i2/i4/i8, and targets (n) integer labels or (n)/(n, k) floats. */
int pf_npy_read_dataset(const char *x_path, const char *y_path, pf_target_kind kind,
                        pf_dataset *out, pf_error *err);

/* ------------------------------------------------------------ datasets */

/* The paper's MNIST statistics (of pixels scaled to [0, 1]). */
#define PF_MNIST_MEAN 0.1307
#define PF_MNIST_STD 0.3081

typedef enum {
    PF_NORM_AUTO,        /* MNIST: the paper's PF_MNIST_MEAN/STD; other images: train mean/std;
                          * tables: each feature's train mean/std */
    PF_NORM_NONE,
    PF_NORM_FIXED        /* mean/std given */
} pf_norm_kind;

typedef struct {
    const char *spec;        /* "mnist", "fashion-mnist" or a directory */
    pf_target_kind target;
    int n_targets;           /* CSV: number of trailing target columns (default 1) */
    pf_norm_kind norm;
    double mean, std;        /* PF_NORM_FIXED */
    long train_subset;       /* > 0: fixed seeded subset of the training set */
    uint64_t subset_seed;
    /* Data in memory instead of spec (borrowed): copied, then normalized as
     * a table is (each feature by the training set's mean and std under
     * auto), and subset like any other. */
    const pf_dataset *train_arrays, *test_arrays;
} pf_data_options;

void pf_data_options_default(pf_data_options *o);

/* The folder of a named dataset ("mnist", "fashion-mnist"). With
 * $PATHFINDER_DATA set: $PATHFINDER_DATA/NAME, and nowhere else. Without:
 * the first that exists of the per-user folder
 * ($XDG_DATA_HOME or ~/.local/share)/pathfinder/NAME and NAME in the data/
 * folder of the source tree the program or the shared library sits in
 * (`make data` fetches MNIST there). Writes it into buf and returns 1; when
 * there is none, writes the places looked in and returns 0. */
int pf_data_dir(const char *name, char *buf, size_t n);

/* Load train and test sets. A directory may hold MNIST-style IDX files
 * (train-images-idx3-ubyte[.gz] ...), train.csv/test.csv, or
 * train_x.npy/train_y.npy/test_x.npy/test_y.npy. Normalization statistics
 * come from the training set and are applied to both. */
int pf_data_load(const pf_data_options *o, pf_dataset *train, pf_dataset *test,
                 pf_error *err);

/* ---------------------------------------------------------------- models */

/* A model as the options describe it. */
typedef struct {
    const char *arch;     /* layer sizes "784,128,128,10"; NULL: INPUT,128,128,OUTPUT */
    const char *act;      /* one activation for every hidden layer, or one per layer
                           * (default "sigmoid"; the output stays linear) */
    int no_bias;
    const char *loss;     /* "ce" or "mse"; NULL: ce for class labels, mse for real targets */
    const char *init;     /* start from this checkpoint (NULL: a fresh nn.Linear-style init) */
    const char *anchor;   /* the anchor of the L2 term (NULL: the origin) */
    uint64_t seed;        /* of the initialization and of the minibatch shuffling */
} pf_model_spec;

void pf_model_spec_default(pf_model_spec *m);

/* The architecture fitted to train's shape, the initial parameters (*theta,
 * allocated) and the anchor (*anchor, allocated, or NULL for the origin).
 * A model too large for the machine's memory (training with this batch) is
 * refused before it is allocated. */
int pf_model_setup(const pf_model_spec *m, const pf_dataset *train, int batch, pf_arch *arch,
                   float **theta, float **anchor, pf_error *err);

/* ----------------------------------------------------------- checkpoints */

/* Metadata stored with a model, as safetensors string metadata. */
typedef struct {
    double beta;
    char anchor[512];     /* "origin" or a checkpoint path */
    uint64_t seed;
    char dataset[256];
    const char *extra;    /* writing: a JSON object text with more fields, or NULL; its
                           * members become string metadata. Reading: NULL */
} pf_ckpt_meta;

/* Write theta as safetensors: tensors fc{l}.weight (out, in) and fc{l}.bias
 * (out), dtype F32, plus metadata keys format=pt, pathfinder_version,
 * architecture, activations, bias, loss, beta, anchor, seed, dataset.
 * Written to a temporary file and renamed. */
int pf_ckpt_write(const char *path, const pf_arch *arch, const float *theta,
                  const pf_ckpt_meta *meta, pf_error *err);

/* Read a safetensors checkpoint. The architecture is inferred from tensor
 * shapes; activations and loss come from metadata when present, else from
 * fallback (if non-NULL), else sigmoid hidden layers and a linear output with
 * CE. If expect is non-NULL the file must match it. *theta is allocated. */
int pf_ckpt_read(const char *path, const pf_arch *fallback, const pf_arch *expect,
                 pf_arch *arch, float **theta, pf_ckpt_meta *meta, pf_error *err);

/* ------------------------------------------------------------ checksums */

/* CRC-32 of a dataset's arrays (features, labels, targets), as recorded in
 * a run's config.json. */
uint32_t pf_dataset_checksum(const pf_dataset *d);
/* CRC-32 (zlib's) of n bytes, continuing from crc (start with 0). */
uint32_t pf_crc32(uint32_t crc, const void *buf, size_t n);

/* Read a whole (small) file; *buf is NUL-terminated and allocated. */
int pf_read_file(const char *path, char **buf, size_t *n, size_t max, pf_error *err);

/* Open an input file (input.c) without ever blocking: a FIFO, device or
 * directory is refused with PF_EINPUT "PATH: not a regular file". *size
 * (if non-NULL) gets the file's size. The fd variant is for gzdopen. */
int pf_open_input(const char *path, FILE **f, uint64_t *size, pf_error *err);
int pf_open_input_fd(const char *path, int *fd, uint64_t *size, pf_error *err);

/* ------------------------------------------------------------ utilities */

/* Writing results (output.c). A regular or new file is written to a unique
 * temporary name beside it (PATH.tmp.PID.SEQ), flushed, and renamed into
 * place: a failed write (full disk) leaves the previous file as it was. A
 * symbolic link is followed and its target written that way; a character
 * device or a FIFO with a reader is written straight to; anything else is
 * refused with PF_EINPUT. */
int pf_write_file_atomic(const char *path, const void *buf, size_t n, pf_error *err);

/* What an output path names once its links are followed (into target). */
enum { PF_OUT_NEW, PF_OUT_REGULAR, PF_OUT_DEVICE, PF_OUT_FIFO };
int pf_output_target(const char *path, char *target, size_t n, int *kind, pf_error *err);
/* A fresh temporary name for path (-1 if it does not fit in n). */
int pf_temp_name(const char *path, char *tmp, size_t n);

/* mkdir -p: path and its missing parents. */
int pf_make_dirs(const char *path, pf_error *err);
/* Before long work: path can be written (its folder exists or is made, and
 * is writable; it is not a directory or a device that cannot take it). */
int pf_check_output_file(const char *path, pf_error *err);

/* An exclusive lock on a run folder (flock on DIR/.lock), held until
 * released or the process ends: a second process gets PF_EINPUT naming the
 * folder and the holder's pid. */
typedef struct pf_dir_lock pf_dir_lock;
int pf_dir_lock_acquire(const char *dir, pf_dir_lock **lock, pf_error *err);
/* The same lock shared: several holders (tasks that write separate files
 * of one folder) keep an exclusive holder out, and it them. */
int pf_dir_lock_shared(const char *dir, pf_dir_lock **lock, pf_error *err);
/* An exclusive lock on the lock file path itself (one task of a folder). */
int pf_file_lock_acquire(const char *path, pf_dir_lock **lock, pf_error *err);
void pf_dir_lock_release(pf_dir_lock *lock);
/* Remove temporary files (NAME.tmp.PID[.SEQ]) in dir and, depth levels
 * down, its subfolders; counts them into *removed (may be NULL). */
int pf_remove_stale_temps(const char *dir, int depth, long *removed, pf_error *err);
/* Make a run folder (and its parents), check it is writable, lock it and
 * remove the temporary files a killed run left in it. */
int pf_run_folder_open(const char *dir, pf_dir_lock **lock, pf_error *err);

#endif

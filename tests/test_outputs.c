/* Writing results safely, as root would meet it: outputs that are devices,
 * FIFOs or symbolic links are never replaced by regular files; run folders
 * are made like mkdir -p, locked against a second process, and cleared of
 * the temporary files a killed run left; a write that fails (file size
 * limit, a full disk) exits 1 and leaves the previous file; a folder that
 * is not a sweep's is refused; output paths are checked before any work. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tool.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "pathfinder/io.h"
#include "run/tables.h"

static char data[400];
static const char *quick = "--max-epochs 1 --batch 16 --normalize none --quiet";

/* A small CSV classification set. */
static void make_data(void)
{
    snprintf(data, sizeof data, "%s/csv", tmpdir);
    mkdir(data, 0755);
    const char *names[2] = {"train.csv", "test.csv"};
    for (int k = 0; k < 2; k++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", data, names[k]);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fprintf(f, "a,b,label\n");
        for (int i = 0; i < (k ? 40 : 160); i++) {
            double u = ((i * 37 + k * 11) % 100) / 100.0 - 0.5;
            fprintf(f, "%g,%g,%d\n", i % 2 + 0.3 * u, -(i % 2) + 0.2 * u, i % 2);
        }
        fclose(f);
    }
}

static int setup(void **state)
{
    (void)state;
    if (tool_setup("outputs")) return -1;
    make_data();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return tool_teardown();
}

static int is_char_device(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISCHR(st.st_mode);
}

/* --out /dev/null discards the result and leaves the device alone (it was
 * once replaced by a regular file); a symbolic link stays a link and its
 * target gets the file; a FIFO nobody reads is refused at once, one a
 * process reads gets the bytes. */
static void test_special_outputs(void **state)
{
    (void)state;
    run_result r;
    /* a null device of our own (as root), so a regression cannot break the
     * machine's /dev/null; /dev/null itself otherwise */
    char null_dev[600];
    snprintf(null_dev, sizeof null_dev, "%s/null", tmpdir);
    if (mknod(null_dev, S_IFCHR | 0666, makedev(1, 3)) != 0) snprintf(null_dev, sizeof null_dev, "/dev/null");
    run(&r, "train --data %s %s --out %s", data, quick, null_dev);
    if (r.status != 0) fail_msg("train --out %s failed (%d): %s", null_dev, r.status, r.err);
    assert_true(is_char_device(null_dev));

    char target[600], link[600];
    snprintf(target, sizeof target, "%s/real.safetensors", tmpdir);
    snprintf(link, sizeof link, "%s/link.safetensors", tmpdir);
    assert_int_equal(symlink("real.safetensors", link), 0);   /* dangling until written */
    run(&r, "train --data %s %s --out %s", data, quick, link);
    assert_int_equal(r.status, 0);
    struct stat st;
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(stat(target, &st), 0);
    assert_true(S_ISREG(st.st_mode) && st.st_size > 0);
    run(&r, "eval %s --data %s --normalize none --quiet", link, data);
    assert_int_equal(r.status, 0);

    char fifo[600];
    snprintf(fifo, sizeof fifo, "%s/pipe", tmpdir);
    assert_int_equal(mkfifo(fifo, 0644), 0);
    run(&r, "train --data %s %s --out %s", data, quick, fifo);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, fifo));
    assert_non_null(strstr(r.err, "FIFO"));
    assert_int_equal(count_lines(r.err), 1);
    assert_int_equal(stat(fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    /* with a reader it is written to */
    char got[600];
    snprintf(got, sizeof got, "%s/from_pipe", tmpdir);
    assert_int_equal(shell("(cat %s > %s &) ; %s train --data %s %s --out %s >/dev/null", fifo, got, tool,
                           data, quick, fifo), 0);
    assert_int_equal(shell("sleep 0.2; test -s %s", got), 0);
    assert_int_equal(stat(fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
}

/* --out A/B/C makes the missing folders, for files and run folders alike;
 * an output under a regular file is refused before any work. */
static void test_missing_folders_are_made(void **state)
{
    (void)state;
    run_result r;
    run(&r, "train --data %s %s --out %s/new/deeper/m.safetensors", data, quick, tmpdir);
    assert_int_equal(r.status, 0);
    run(&r, "sweep --data %s %s --beta 0,0.01 --no-refine --out %s/runs/a/b", data, quick, tmpdir);
    if (r.status != 0) fail_msg("sweep into new folders failed (%d): %s", r.status, r.err);
    char path[600];
    snprintf(path, sizeof path, "%s/runs/a/b/sweep.csv", tmpdir);
    assert_int_equal(access(path, F_OK), 0);
    /* checked before the data is even read: the error is about the output */
    char file[600];
    snprintf(file, sizeof file, "%s/plain", tmpdir);
    FILE *f = fopen(file, "w");
    fclose(f);
    run(&r, "train --data %s/nonexistent %s --out %s/x.safetensors", tmpdir, quick, file);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "not a folder"));
    run(&r, "sweep --data %s/nonexistent %s --out %s/sub", tmpdir, quick, file);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "not a folder"));
    run(&r, "hessian %s/real.safetensors --data %s --normalize none --out %s/h.json", tmpdir, data, file);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "not a folder"));
}

/* Two processes on one run folder: the second is refused (exit 2, naming
 * the folder) while the first holds it, and nothing of it is mixed in. */
static void test_run_folders_are_locked(void **state)
{
    (void)state;
    char dir[600], csv[700];
    snprintf(dir, sizeof dir, "%s/locked", tmpdir);
    snprintf(csv, sizeof csv, "%s/sweep.csv", dir);
    char args[1200];
    snprintf(args, sizeof args, "sweep --data %s --normalize none --quiet --batch 8 --max-epochs 3 "
             "--beta 0:0.05:0.001 --no-refine --out %s", data, dir);
    pid_t pid = fork();
    if (pid == 0) {
        char cmd[2400];
        snprintf(cmd, sizeof cmd, "exec %s %s >/dev/null 2>&1", tool, args);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    /* wait for the first one to be inside (its table exists) */
    for (int i = 0; i < 20000 && access(csv, F_OK) != 0; i++) usleep(1000);
    run_result r;
    run(&r, "sweep --data %s --normalize none --quiet --batch 8 --max-epochs 3 --seed 9 "
        "--beta 0:0.05:0.001 --no-refine --out %s", data, dir);
    int st;
    int first_done = waitpid(pid, &st, WNOHANG) == pid;
    if (!first_done) {
        assert_int_equal(r.status, 2);
        assert_non_null(strstr(r.err, dir));
        assert_non_null(strstr(r.err, "in use by another pathfinder process"));
        assert_int_equal(count_lines(r.err), 1);
        waitpid(pid, &st, 0);
    }
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* the folder holds the first sweep's settings only */
    char *cfg = NULL;
    char path[700];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cfg = slurp(path);
    assert_non_null(cfg);
    assert_null(strstr(cfg, "\"9\""));
    free(cfg);
    /* done, the lock is free again: a rerun just re-reports */
    run(&r, "%s", args);
    assert_int_equal(r.status, 0);
}

/* Temporary files left by a kill -9 are removed by the next run in that
 * folder; a folder with a sweep table but no config.json is refused. */
static void test_stale_temps_and_foreign_folders(void **state)
{
    (void)state;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/stale", tmpdir);
    run_result r;
    run(&r, "sweep --data %s %s --beta 0,0.01 --no-refine --out %s", data, quick, dir);
    assert_int_equal(r.status, 0);
    assert_int_equal(shell("touch %s/sweep.csv.tmp.99999 %s/figures/phase_diagram_up.png.tmp.4242.7 "
                           "%s/checkpoints/p00001.safetensors.tmp.12", dir, dir, dir), 0);
    run(&r, "sweep --data %s %s --beta 0,0.01 --no-refine --out %s", data, quick, dir);
    assert_int_equal(r.status, 0);
    assert_int_equal(shell("test $(ls %s %s/figures %s/checkpoints | grep -c '\\.tmp\\.') -eq 0", dir, dir,
                           dir), 0);

    char foreign[600];
    snprintf(foreign, sizeof foreign, "%s/foreign", tmpdir);
    mkdir(foreign, 0755);
    assert_int_equal(shell("cp %s/sweep.csv %s/", dir, foreign), 0);
    run(&r, "sweep --data %s %s --beta 0,0.01 --no-refine --out %s", data, quick, foreign);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "no config.json"));
    char *before = NULL, path[700];
    snprintf(path, sizeof path, "%s/sweep.csv", foreign);
    before = slurp(path);
    char *orig = NULL;
    snprintf(path, sizeof path, "%s/sweep.csv", dir);
    orig = slurp(path);
    assert_string_equal(before, orig);
    free(before);
    free(orig);
}

/* A write that fails midway (here the file size limit: write returns
 * EFBIG, as it returns ENOSPC on a full disk) exits 1, and the previous
 * file is still there, whole. */
static void test_failed_writes_keep_the_previous_file(void **state)
{
    (void)state;
    char dir[600], svg[700];
    snprintf(dir, sizeof dir, "%s/full", tmpdir);
    snprintf(svg, sizeof svg, "%s/figures/phase_diagram_up.svg", dir);
    run_result r;
    run(&r, "sweep --data %s %s --beta 0,0.01,0.02 --no-refine --out %s", data, quick, dir);
    assert_int_equal(r.status, 0);
    char *before = slurp(svg);
    assert_non_null(before);
    assert_non_null(strstr(before, "</svg>"));
    /* 8 blocks of 512 bytes: the figures do not fit */
    int st = shell("trap '' XFSZ; ulimit -f 8; exec %s transitions %s >/dev/null 2>%s/err.txt", tool, dir,
                   tmpdir);
    assert_int_equal(st, 1);
    char errpath[700];
    snprintf(errpath, sizeof errpath, "%s/err.txt", tmpdir);
    char *msg = slurp(errpath);
    assert_non_null(msg);
    assert_int_equal(count_lines(msg), 1);
    assert_non_null(strstr(msg, "too large"));
    free(msg);
    char *after = slurp(svg);
    assert_string_equal(before, after);
    free(before);
    free(after);
    /* and the library says the same directly: a full device */
    pf_error err;
    char big[4096];
    memset(big, 'x', sizeof big);
    assert_int_equal(pf_write_file_atomic("/dev/full", big, sizeof big, &err), PF_ERUNTIME);
    assert_non_null(strstr(err.msg, "No space left"));
    assert_true(is_char_device("/dev/full"));
}

/* A finite blow-up (SGD with lr * beta far above 2) is no result: train
 * refuses to write it (exit 1), a sweep marks the row diverged and warns. */
static void test_divergence_is_marked(void **state)
{
    (void)state;
    run_result r;
    char out[600];
    snprintf(out, sizeof out, "%s/blown.safetensors", tmpdir);
    run(&r, "train --data %s %s --optimizer sgd --beta 1000 --max-epochs 3 --out %s", data, quick, out);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "diverged at beta 1000"));
    assert_int_equal(count_lines(r.err), 1);
    assert_int_not_equal(access(out, F_OK), 0);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/blown", tmpdir);
    run(&r, "sweep --data %s %s --optimizer sgd --beta 0,1000 --max-epochs 3 --no-refine --out %s", data,
        quick, dir);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "warning: training diverged at beta 1000"));
    char csv[700];
    snprintf(csv, sizeof csv, "%s/sweep.csv", dir);
    pf_point_result *rows;
    long n;
    pf_error err;
    assert_int_equal(pf_sweep_csv_read(csv, &rows, &n, &err), PF_OK);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].diverged, 0);
    assert_int_equal(rows[1].diverged, 1);
    free(rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_special_outputs),
        cmocka_unit_test(test_missing_folders_are_made),
        cmocka_unit_test(test_run_folders_are_locked),
        cmocka_unit_test(test_stale_temps_and_foreign_folders),
        cmocka_unit_test(test_failed_writes_keep_the_previous_file),
        cmocka_unit_test(test_divergence_is_marked),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

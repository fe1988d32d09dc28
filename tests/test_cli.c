/* The command-line tool as a user meets it: help and version, exit codes
 * (0 success, 1 runtime failure, 2 bad usage or input), one-line errors
 * that name the file, results never damaged by a failed run, and
 * checkpoints that move between pathfinder and PyTorch unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tool.h"
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A small CSV classification set: 3 classes separable along x0 - x1. */
static void make_csv_dataset(const char *dir)
{
    mkdir(dir, 0755);
    const char *names[2] = {"train.csv", "test.csv"};
    for (int k = 0; k < 2; k++) {
        char path[1100];
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fprintf(f, "a,b,c,label\n");
        for (int i = 0; i < (k ? 60 : 240); i++) {
            int c = i % 3;
            double u = ((i * 37 + k * 11) % 100) / 100.0 - 0.5;
            fprintf(f, "%g,%g,%g,%d\n", c + 0.3 * u, -c + 0.2 * u, u, c);
        }
        fclose(f);
    }
}

static int setup(void **state)
{
    (void)state;
    return tool_setup("cli");
}

static int teardown(void **state)
{
    (void)state;
    return tool_teardown();
}

static void test_help_and_version(void **state)
{
    (void)state;
    run_result r;
    run(&r, "--version");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "pathfinder "));
    const char *cmds[] = {"--help", "train --help", "eval --help"};
    for (int i = 0; i < 3; i++) {
        run(&r, "%s", cmds[i]);
        assert_int_equal(r.status, 0);
        assert_non_null(strstr(r.out, "Usage: pathfinder"));
        assert_non_null(strstr(r.out, "Exit status"));
    }
    run(&r, "%s", "");
    assert_int_equal(r.status, 2);
}

/* Bad usage: exit 2 and a one-line message that says what is wrong. */
static void test_bad_usage(void **state)
{
    (void)state;
    struct {
        const char *args, *needle;
    } cases[] = {
        {"frobnicate", "unknown command"},
        {"train --out x.safetensors --beta -1", "--beta"},
        {"train --out x.safetensors --lr abc", "--lr"},
        {"train --out x.safetensors --threads 0", "--threads"},
        {"train --out x.safetensors --optimizer rmsprop", "--optimizer"},
        {"train --out x.safetensors --batch 12x", "--batch"},
        {"train --beta 0.1", "--out"},
        {"train --out x.safetensors --bogus", "unrecognized option"},
        {"train --out x.safetensors --normalize 1,0", "--normalize"},
        {"eval", "exactly one checkpoint"},
        {"eval a.safetensors b.safetensors", "exactly one checkpoint"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        run_result r;
        run(&r, "%s", cases[i].args);
        if (r.status != 2 || !strstr(r.err, cases[i].needle))
            fail_msg("'%s': exit %d, stderr '%s'", cases[i].args, r.status, r.err);
    }
}

/* Bad input files: exit 2, one line naming the file. */
static void test_bad_files(void **state)
{
    (void)state;
    char path[1100], data[512];
    run_result r;
    snprintf(path, sizeof path, "%s/missing.safetensors", tmpdir);
    run(&r, "eval %s", path);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, path));
    assert_int_equal(count_lines(r.err), 1);

    snprintf(path, sizeof path, "%s/garbage.safetensors", tmpdir);
    write_text(path, "this is not a checkpoint at all, just text");
    run(&r, "eval %s", path);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, path));
    assert_int_equal(count_lines(r.err), 1);

    snprintf(data, sizeof data, "%s/nodata", tmpdir);
    run(&r, "train --data %s --out %s/x.safetensors", data, tmpdir);
    assert_int_equal(r.status, 2);
    assert_int_equal(count_lines(r.err), 1);

    snprintf(data, sizeof data, "%s/ragged", tmpdir);
    mkdir(data, 0755);
    snprintf(path, sizeof path, "%s/train.csv", data);
    write_text(path, "1,2,0\n3,4,1\n5,1\n");
    snprintf(path, sizeof path, "%s/test.csv", data);
    write_text(path, "1,2,0\n");
    run(&r, "train --data %s --out %s/x.safetensors", data, tmpdir);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "train.csv"));
}

static cJSON *last_json(const char *out)
{
    const char *line = out, *p;
    while ((p = strchr(line, '\n')) && p[1]) line = p + 1;
    cJSON *j = cJSON_Parse(line);
    assert_non_null(j);
    return j;
}

static double number_at(const cJSON *j, const char *a, const char *b)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(j, a);
    if (b) o = cJSON_GetObjectItemCaseSensitive(o, b);
    assert_true(cJSON_IsNumber(o));
    return o->valuedouble;
}

/* Train on a CSV set, then eval the checkpoint: same numbers. A failed
 * run leaves an existing result untouched; warm starts check shapes. */
static void test_train_eval_roundtrip(void **state)
{
    (void)state;
    char data[512], model[512], other[512];
    snprintf(data, sizeof data, "%s/csv", tmpdir);
    make_csv_dataset(data);
    snprintf(model, sizeof model, "%s/m.safetensors", tmpdir);
    run_result r;
    run(&r, "train --data %s --arch 3,8,3 --act tanh --max-epochs 30 --lr 0.01 --batch 16 "
            "--seed 3 --quiet --out %s", data, model);
    if (r.status != 0) fail_msg("train failed: %s", r.err);
    cJSON *t = last_json(r.out);
    double acc = number_at(t, "test", "accuracy");
    assert_true(acc > 80.0);
    run(&r, "eval %s --data %s", model, data);
    assert_int_equal(r.status, 0);
    cJSON *e = last_json(r.out);
    assert_true(number_at(e, "test", "accuracy") == acc);
    assert_true(number_at(e, "test", "loss") == number_at(t, "test", "loss"));
    assert_true(fabs(number_at(e, "r", NULL) - number_at(t, "r", NULL)) < 1e-12);
    cJSON_Delete(t);
    cJSON_Delete(e);

    /* bad input after a good result: the old file must survive unchanged */
    struct stat before, after;
    assert_int_equal(stat(model, &before), 0);
    run(&r, "train --data %s/none --out %s", tmpdir, model);
    assert_int_equal(r.status, 2);
    assert_int_equal(stat(model, &after), 0);
    assert_int_equal(before.st_size, after.st_size);
    assert_true(before.st_mtime == after.st_mtime);

    /* an output directory that does not exist: runtime failure, no file */
    run(&r, "train --data %s --arch 3,4,3 --max-epochs 1 --quiet --out %s/no/such/dir/m.safetensors",
        data, tmpdir);
    assert_int_equal(r.status, 1);

    /* warm start from a model of another shape is refused */
    snprintf(other, sizeof other, "%s/other.safetensors", tmpdir);
    run(&r, "train --data %s --arch 3,5,5,3 --max-epochs 1 --quiet --out %s", data, other);
    assert_int_equal(r.status, 0);
    run(&r, "train --data %s --arch 3,8,3 --init %s --out %s/x.safetensors", data, other, tmpdir);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, other));
    run(&r, "train --data %s --arch 3,8,3 --anchor %s --beta 0.1 --out %s/x.safetensors", data,
        other, tmpdir);
    assert_int_equal(r.status, 2);

    /* same seed, same threads: byte-identical checkpoints */
    char a2[512];
    snprintf(a2, sizeof a2, "%s/m2.safetensors", tmpdir);
    run(&r, "train --data %s --arch 3,8,3 --act tanh --max-epochs 30 --lr 0.01 --batch 16 "
            "--seed 3 --quiet --out %s", data, a2);
    assert_int_equal(r.status, 0);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cmp -s %s %s", model, a2);
    assert_int_equal(system(cmd), 0);
}

/* Checkpoints move between pathfinder and PyTorch unchanged: a model
 * trained here loads into torch nn.Module with load_state_dict(strict=True)
 * and gives the same MNIST test accuracy; a torch-written file loads here. */
static void test_pytorch_interop(void **state)
{
    (void)state;
    char model[512], cmd[2048], mnist[600];
    const char *root = getenv("PATHFINDER_DATA");
    snprintf(mnist, sizeof mnist, "%s/mnist", root && *root ? root : "data");
    snprintf(model, sizeof model, "%s/mnist.safetensors", tmpdir);
    run_result r;
    run(&r, "train --arch 784,64,10 --max-epochs 1 --threads 2 --quiet --out %s", model);
    if (r.status != 0) fail_msg("train on MNIST failed (make data?): %s", r.err);
    cJSON *ours = last_json(r.out);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 scripts/torch_interop.py eval %s --mnist %s", model,
             mnist);
    FILE *p = popen(cmd, "r");
    char buf[4096] = {0};
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = '\0';
    assert_int_equal(pclose(p), 0);
    cJSON *theirs = cJSON_Parse(buf);
    assert_non_null(theirs);
    double a = number_at(ours, "test", "accuracy"), b = number_at(theirs, "test_accuracy", NULL);
    print_message("pathfinder-trained model: accuracy here %.2f%%, in PyTorch %.2f%%\n", a, b);
    assert_true(fabs(a - b) <= 0.011); /* at most one test image may flip on rounding */
    cJSON_Delete(ours);
    cJSON_Delete(theirs);

    snprintf(model, sizeof model, "%s/torch.safetensors", tmpdir);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 scripts/torch_interop.py write %s --arch 784,32,16,10 --act relu "
             "--seed 5 --train-steps 300 --mnist %s", model, mnist);
    p = popen(cmd, "r");
    n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = '\0';
    assert_int_equal(pclose(p), 0);
    theirs = cJSON_Parse(buf);
    assert_non_null(theirs);
    run(&r, "eval %s --act relu --threads 2", model);
    if (r.status != 0) fail_msg("eval of a torch-written file failed: %s", r.err);
    ours = last_json(r.out);
    a = number_at(ours, "test", "accuracy");
    b = number_at(theirs, "test_accuracy", NULL);
    print_message("torch-written model: accuracy in PyTorch %.2f%%, here %.2f%%\n", b, a);
    assert_true(a > 80.0);
    assert_true(fabs(a - b) <= 0.011);
    assert_true(fabs(number_at(ours, "test", "loss") - number_at(theirs, "test_loss", NULL)) < 1e-4);
    cJSON_Delete(ours);
    cJSON_Delete(theirs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_bad_usage),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_train_eval_roundtrip),
        cmocka_unit_test(test_pytorch_interop),
    };
    return cmocka_run_group_tests_name("cli", tests, setup, teardown);
}

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

#include "pathfinder/core.h"
#include "pathfinder/exp.h"
#include "exp/results.h"

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
        {"train --out x.safetensors --input-layer fast", "--input-layer"},
        {"train --out x.safetensors --batch 12x", "--batch"},
        {"train --beta 0.1", "--out"},
        {"train --out x.safetensors --bogus", "unknown or ambiguous option '--bogus'"},
        {"sweep --out x --beta", "--beta needs a value"},
        {"sweep --out x --window 1", "--window needs a whole number from 2 to 1000"},
        {"train --out x.safetensors --arch 784,100000000,10", "outside 1..16777216"},
        {"train --out x.safetensors --normalize 1,0", "--normalize"},
        {"train --out x.safetensors --arch 1x28x28,conv8:29,fc10", "kernel 29 is larger than its input 28x28"},
        {"train --out x.safetensors --arch 1x28x28,conv8:3,maxpool2,conv16:3,maxpool2,fc32,fc10",
         "window 2 does not divide its input 11x11"},
        {"train --out x.safetensors --arch 1x28x28,fc32,conv8:3,fc10", "comes after an fc layer"},
        {"train --out x.safetensors --arch 3x28x28,conv8:3,fc10", "--arch takes 2352 inputs"},
        {"train --out x.safetensors --arch 1x28x28,conv8:3,fc32,fc10 --act relu,relu,relu,relu", "activations"},
        {"eval", "exactly one checkpoint"},
        {"eval a.safetensors b.safetensors", "exactly one checkpoint"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        run_result r;
        run(&r, "%s", cases[i].args);
        if (r.status != 2 || !strstr(r.err, cases[i].needle) || count_lines(r.err) != 1)
            fail_msg("'%s': exit %d, stderr '%s'", cases[i].args, r.status, r.err);
    }
}

/* text with every run of blanks and newlines made one space */
static void squeeze(char *text)
{
    char *o = text;
    for (const char *p = text; *p; p++) {
        if (*p == ' ' || *p == '\n') {
            if (o > text && o[-1] != ' ') *o++ = ' ';
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
}

/* The defaults --help shows are the library's: each option's paragraph
 * (up to the next option) says "(default V)" with V the library's value.
 * (sweep --help once said the threshold default was 8; the code used 6.) */
static void test_help_shows_the_code_defaults(void **state)
{
    (void)state;
    pf_detect_config det;
    pf_detect_config_default(&det);
    pf_encoding enc;
    pf_encoding_default(&enc);
    pf_train_config adam, sgd, lbfgs, newton;
    pf_train_config_default(&adam, PF_OPT_ADAM);
    pf_train_config_default(&sgd, PF_OPT_SGD);
    pf_train_config_default(&lbfgs, PF_OPT_LBFGS);
    pf_train_config_default(&newton, PF_OPT_NEWTON);
    pf_schedule_config sched;
    pf_schedule_config_default(&sched);
    pf_certify_config cert;
    pf_certify_config_default(&cert);
    char v[18][96];
    snprintf(v[0], 96, "--threshold X %g", det.threshold);
    snprintf(v[1], 96, "--window N %d", det.window);
    snprintf(v[2], 96, "--min-jump X %g", det.min_rel_jump);
    snprintf(v[3], 96, "--gap-factor X %g", det.gap_factor);
    snprintf(v[4], 96, "--encoded-threshold P %g", enc.threshold);
    snprintf(v[5], 96, "--encoded-fraction F %g", enc.fraction);
    snprintf(v[6], 96, "--lr X adam %g, sgd %g, lbfgs %g, newton %g", adam.opt.lr, sgd.opt.lr, lbfgs.opt.lr,
             newton.opt.lr);
    snprintf(v[7], 96, "--max-epochs N %d; lbfgs, newton: iterations, %d", adam.max_epochs, lbfgs.max_epochs);
    snprintf(v[8], 96, "--patience N %d", adam.patience);
    snprintf(v[9], 96, "--batch N %d; newton: %d", adam.batch, newton.batch);
    snprintf(v[10], 96, "--momentum X %g", sgd.opt.momentum);
    snprintf(v[11], 96, "--grad-tol X lbfgs %g, newton %g", lbfgs.grad_tol, newton.grad_tol);
    snprintf(v[12], 96, "--ratio X %g", sched.ratio);
    snprintf(v[13], 96, "--min-ratio X %g", sched.min_ratio);
    snprintf(v[14], 96, "--segment-points N %d", cert.interior);
    snprintf(v[15], 96, "--bridge-depth N %d", PF_BRIDGE_DEPTH);
    snprintf(v[16], 96, "--certify-tol X %g", adam.certificate.lanczos.tol);
    snprintf(v[17], 96, "--max-escapes N %d", adam.certificate.max_escapes);
    const char *cmds[2] = {"sweep --help", "connect --help"};
    for (int c = 0; c < 2; c++) {
        run_result r;
        run(&r, "%s", cmds[c]);
        assert_int_equal(r.status, 0);
        squeeze(r.out);
        for (int k = 0; k < 18; k++) {
            if (c == 0 && k >= 12 && k < 16) continue;   /* path options are connect's */
            /* the option's own row: its name and metavar, as other rows' help
             * may name it in passing */
            char name[96], metavar[16], row[128], want[128];
            sscanf(v[k], "%95s %15s", name, metavar);
            snprintf(row, sizeof row, "%s %s", name, metavar);
            const char *at = strstr(r.out, row);
            if (!at) fail_msg("%s: no %s", cmds[c], name);
            const char *next = strstr(at + 2, " --");
            size_t len = next ? (size_t)(next - at) : strlen(at);
            char para[1024];
            snprintf(para, sizeof para, "%.*s", (int)(len < sizeof para - 1 ? len : sizeof para - 1), at);
            snprintf(want, sizeof want, "(default %s)", v[k] + strlen(name) + 1 + strcspn(v[k] + strlen(name) + 1, " ") + 1);
            if (!strstr(para, want)) fail_msg("%s: '%s' does not say %s", cmds[c], para, want);
        }
        /* --threads is pathfinder's own team */
        assert_non_null(strstr(r.out, "--threads N size of pathfinder's thread team"));
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
    /* tabular data runs the dense input layer unless told otherwise; the line
     * names the path taken, and the sparse path measures the same model alike */
    const cJSON *layer = cJSON_GetObjectItemCaseSensitive(t, "input_layer");
    assert_true(cJSON_IsString(layer) && strcmp(layer->valuestring, "dense") == 0);
    run(&r, "eval %s --data %s --input-layer sparse", model, data);
    assert_int_equal(r.status, 0);
    cJSON *es = last_json(r.out);
    assert_true(fabs(number_at(es, "test", "loss") - number_at(e, "test", "loss")) <
                1e-5 * (1 + fabs(number_at(e, "test", "loss"))));
    cJSON_Delete(es);
    run(&r, "train --data %s --arch 3,8,3 --max-epochs 2 --input-layer sparse --quiet --out %s/s.safetensors",
        data, tmpdir);
    assert_int_equal(r.status, 0);
    cJSON *ts = last_json(r.out);
    layer = cJSON_GetObjectItemCaseSensitive(ts, "input_layer");
    assert_true(cJSON_IsString(layer) && strcmp(layer->valuestring, "sparse") == 0);
    cJSON_Delete(ts);
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

    /* an output folder that does not exist is made, like mkdir -p */
    run(&r, "train --data %s --arch 3,4,3 --max-epochs 1 --quiet --out %s/no/such/dir/m.safetensors",
        data, tmpdir);
    assert_int_equal(r.status, 0);

    /* a model that cannot fit in memory is refused with its size, before training */
    run(&r, "train --data %s --arch 3,4000000,4000000,3 --quiet --out %s/huge.safetensors", data, tmpdir);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "parameters and needs about"));
    assert_int_equal(count_lines(r.err), 1);

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

/* The JSON line of scripts/torch_interop.py run with the printf-style
 * arguments, which must succeed. */
static cJSON *torch_json(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static cJSON *torch_json(const char *fmt, ...)
{
    char cmd[2048], buf[4096];
    int k = snprintf(cmd, sizeof cmd, "/usr/bin/python3 scripts/torch_interop.py ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd + k, sizeof cmd - (size_t)k, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = '\0';
    assert_int_equal(pclose(p), 0);
    cJSON *j = cJSON_Parse(buf);
    assert_non_null(j);
    return j;
}

/* Checkpoints move between pathfinder and PyTorch unchanged: a model
 * trained here loads into torch nn.Module with load_state_dict(strict=True)
 * and gives the same MNIST test accuracy; a torch-written file loads here. */
static void test_pytorch_interop(void **state)
{
    (void)state;
    char model[512], mnist[600];
    const char *root = getenv("PATHFINDER_DATA");
    snprintf(mnist, sizeof mnist, "%s/mnist", root && *root ? root : "data");
    snprintf(model, sizeof model, "%s/mnist.safetensors", tmpdir);
    run_result r;
    run(&r, "train --arch 784,64,10 --max-epochs 1 --threads 2 --quiet --out %s", model);
    if (r.status != 0) fail_msg("train on MNIST failed (make data?): %s", r.err);
    cJSON *ours = last_json(r.out);
    cJSON *theirs = torch_json("eval %s --mnist %s", model, mnist);
    assert_non_null(theirs);
    double a = number_at(ours, "test", "accuracy"), b = number_at(theirs, "test_accuracy", NULL);
    print_message("pathfinder-trained model: accuracy here %.2f%%, in PyTorch %.2f%%\n", a, b);
    assert_true(fabs(a - b) <= 0.011); /* at most one test image may flip on rounding */
    cJSON_Delete(ours);
    cJSON_Delete(theirs);

    snprintf(model, sizeof model, "%s/torch.safetensors", tmpdir);
    theirs = torch_json("write %s --arch 784,32,16,10 --act relu "
                        "--seed 5 --train-steps 300 --mnist %s", model, mnist);
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

/* The same both ways for a small CNN, which here also trains past 95% on
 * MNIST in one epoch. */
static void test_pytorch_interop_cnn(void **state)
{
    (void)state;
    const char *arch = "1x28x28,conv8:3:1:1,maxpool2,conv16:3:1:1,maxpool2,fc32,fc10";
    char model[512], mnist[600];
    const char *root = getenv("PATHFINDER_DATA");
    snprintf(mnist, sizeof mnist, "%s/mnist", root && *root ? root : "data");
    snprintf(model, sizeof model, "%s/cnn.safetensors", tmpdir);
    run_result r;
    run(&r, "train --arch %s --act relu --max-epochs 1 --threads 2 --quiet --out %s", arch, model);
    if (r.status != 0) fail_msg("CNN training on MNIST failed: %s", r.err);
    cJSON *ours = last_json(r.out);
    double a = number_at(ours, "test", "accuracy");
    print_message("CNN after one epoch: test accuracy %.2f%%\n", a);
    assert_true(a > 95.0);
    cJSON *theirs = torch_json("eval %s --mnist %s", model, mnist);
    assert_non_null(theirs);
    double b = number_at(theirs, "test_accuracy", NULL);
    print_message("pathfinder-trained CNN: accuracy here %.2f%%, in PyTorch %.2f%%\n", a, b);
    assert_true(fabs(a - b) <= 0.011);
    cJSON_Delete(ours);
    cJSON_Delete(theirs);

    snprintf(model, sizeof model, "%s/torch-cnn.safetensors", tmpdir);
    theirs = torch_json("write %s --arch 1x28x28,conv4:5:2,avgpool2,fc10 "
                        "--act tanh --seed 5 --train-steps 300 --mnist %s", model, mnist);
    assert_non_null(theirs);
    run(&r, "eval %s --threads 2", model);
    if (r.status != 0) fail_msg("eval of a torch-written CNN failed: %s", r.err);
    ours = last_json(r.out);
    a = number_at(ours, "test", "accuracy");
    b = number_at(theirs, "test_accuracy", NULL);
    print_message("torch-written CNN: accuracy in PyTorch %.2f%%, here %.2f%%\n", b, a);
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
        cmocka_unit_test(test_help_shows_the_code_defaults),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_train_eval_roundtrip),
        cmocka_unit_test(test_pytorch_interop),
        cmocka_unit_test(test_pytorch_interop_cnn),
    };
    return cmocka_run_group_tests_name("cli", tests, setup, teardown);
}

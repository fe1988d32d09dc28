/* Checkpoints: round trips through pf_ckpt_write/pf_ckpt_read, the layout the
 * reference safetensors library produces, atomic writes, and one test per
 * way a file can be malformed (each must fail with PF_EINPUT naming the file,
 * never crash). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "pathfinder/io.h"

/* ------------------------------------------------------------- helpers */

/* A fresh empty file in /tmp; the caller removes it and frees the name. */
static char *tmp_path(void)
{
    char *path = strdup("/tmp/pf_test_st_XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    return path;
}

static void drop(char *path)
{
    remove(path);
    free(path);
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    assert_true(size >= 0);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return buf;
}

static void spill(const char *path, const void *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static uint64_t header_len(const unsigned char *file)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | file[i];
    return v;
}

/* A safetensors file by hand: the given header text (unpadded, as any
 * writer may produce) and data bytes. */
static void write_st(const char *path, const void *data, size_t n_data, const char *header)
{
    size_t hlen = strlen(header);
    unsigned char *buf = malloc(8 + hlen + n_data);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(buf + 8, header, hlen);
    if (n_data) memcpy(buf + 8 + hlen, data, n_data);
    spill(path, buf, 8 + hlen + n_data);
    free(buf);
}

static void make_arch(pf_arch *a, int n_layers, const int *sizes, const char *acts, int bias,
                      pf_loss loss)
{
    pf_act act[PF_MAX_LAYERS];
    pf_error err;
    assert_int_equal(pf_arch_parse_acts(acts, n_layers, act, &err), PF_OK);
    assert_int_equal(pf_arch_init(a, n_layers, sizes, act, bias, loss, &err), PF_OK);
}

static float *make_params(const pf_arch *a, uint64_t seed)
{
    float *theta = malloc(a->n_params * sizeof *theta);
    assert_non_null(theta);
    pf_rng rng;
    pf_rng_seed(&rng, seed);
    pf_init_params(a, theta, &rng);
    return theta;
}

/* pf_ckpt_read must fail with PF_EINPUT, name the file, say `needle`, and
 * leave no parameters behind. */
static void expect_reject(const char *path, const char *needle)
{
    pf_arch arch;
    float *theta = (float *)&arch; /* must be reset to NULL */
    pf_ckpt_meta meta;
    pf_error err;
    pf_error_clear(&err);
    int rc = pf_ckpt_read(path, NULL, NULL, &arch, &theta, &meta, &err);
    if (rc != PF_EINPUT || !strstr(err.msg, path) || !strstr(err.msg, needle))
        print_error("got rc %d, message '%s'; wanted '%s'\n", rc, err.msg, needle);
    assert_int_equal(rc, PF_EINPUT);
    assert_int_equal(err.code, PF_EINPUT);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, needle));
    assert_null(strchr(err.msg, '\n'));
    assert_null(theta);
}

/* The small model of the malformed-file tests, 3 -> 2 -> 2 with biases,
 * laid out as the reference library would (sorted by name). */
#define T(name, shape, b, e) \
    "\"" name "\":{\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"
#define FC1_BIAS T("fc1.bias", "[2]", 0, 8)
#define FC1_WEIGHT T("fc1.weight", "[2,3]", 8, 32)
#define FC2_BIAS T("fc2.bias", "[2]", 32, 40)
#define FC2_WEIGHT T("fc2.weight", "[2,2]", 40, 56)
#define SMALL_TENSORS FC1_BIAS "," FC1_WEIGHT "," FC2_BIAS "," FC2_WEIGHT

static float small_data[14];

static void fill_small_data(void)
{
    for (int i = 0; i < 14; i++) small_data[i] = 0.25f * (float)(i - 7);
}

/* ------------------------------------------------------------ round trip */

static void roundtrip(int bias)
{
    const int sizes[] = {5, 7, 4, 3};
    pf_arch arch;
    make_arch(&arch, 3, sizes, "tanh,relu,linear", bias, PF_LOSS_MSE);
    float *theta = make_params(&arch, 42);
    pf_ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.beta = 1e-3; /* not a binary fraction: needs all 17 digits */
    strcpy(meta.anchor, "runs/anchor.safetensors");
    meta.seed = UINT64_C(18446744073709551557);
    strcpy(meta.dataset, "mnist");

    char *path = tmp_path();
    pf_error err;
    assert_int_equal(pf_ckpt_write(path, &arch, theta, &meta, &err), PF_OK);

    size_t n;
    unsigned char *file = slurp(path, &n);
    uint64_t hlen = header_len(file);
    assert_int_equal(hlen % 8, 0);
    assert_int_equal(n, 8 + hlen + 4 * arch.n_params);
    free(file);

    pf_arch back;
    float *theta2 = NULL;
    pf_ckpt_meta meta2;
    assert_int_equal(pf_ckpt_read(path, NULL, &arch, &back, &theta2, &meta2, &err), PF_OK);
    assert_true(pf_arch_equal(&back, &arch));
    assert_int_equal(back.n_params, arch.n_params);
    assert_int_equal(back.bias, bias);
    assert_int_equal(back.loss, PF_LOSS_MSE);
    assert_memory_equal(theta2, theta, arch.n_params * sizeof *theta);
    assert_true(meta2.beta == meta.beta);
    assert_string_equal(meta2.anchor, meta.anchor);
    assert_true(meta2.seed == meta.seed);
    assert_string_equal(meta2.dataset, meta.dataset);
    assert_null(meta2.extra);

    free(theta);
    free(theta2);
    drop(path);
}

static void test_roundtrip_with_bias(void **state)
{
    (void)state;
    roundtrip(1);
}

static void test_roundtrip_without_bias(void **state)
{
    (void)state;
    roundtrip(0);
}

/* Same bytes as the reference library: "__metadata__" first, tensors in
 * name order ("fc10" before "fc2") with contiguous offsets, space padding. */
static void test_layout_matches_reference(void **state)
{
    (void)state;
    int sizes[12];
    for (int l = 0; l < 12; l++) sizes[l] = 2 + l % 3;
    pf_arch arch;
    make_arch(&arch, 11, sizes, "relu", 1, PF_LOSS_CE);
    float *theta = make_params(&arch, 7);
    char *path = tmp_path();
    pf_error err;
    assert_int_equal(pf_ckpt_write(path, &arch, theta, NULL, &err), PF_OK);

    size_t n;
    unsigned char *file = slurp(path, &n);
    uint64_t hlen = header_len(file);
    assert_true(8 + hlen <= n);
    char *header = malloc(hlen + 1);
    memcpy(header, file + 8, hlen);
    header[hlen] = '\0';
    assert_true(strncmp(header, "{\"__metadata__\":{", 17) == 0);
    assert_null(strstr(header, ": ")); /* compact separators */
    size_t json_len = strlen(header);
    while (json_len > 0 && header[json_len - 1] == ' ') json_len--;
    assert_true(hlen - json_len < 8);
    assert_int_equal(header[json_len - 1], '}');

    cJSON *root = cJSON_Parse(header);
    assert_non_null(root);
    cJSON *md = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(md, "format")->valuestring, "pt");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(md, "pathfinder_version")->valuestring,
                        PF_VERSION);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(md, "anchor")->valuestring, "origin");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(md, "beta")->valuestring, "0");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(md, "seed")->valuestring, "0");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(md, "dataset")->valuestring, "");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(md, "bias")->valuestring, "true");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(md, "loss")->valuestring, "ce");

    const cJSON *prev = NULL;
    double offset = 0;
    int count = 0;
    for (const cJSON *t = md->next; t; t = t->next, count++) {
        if (prev) assert_true(strcmp(prev->string, t->string) < 0);
        const cJSON *offs = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
        assert_true(cJSON_GetArrayItem(offs, 0)->valuedouble == offset);
        offset = cJSON_GetArrayItem(offs, 1)->valuedouble;
        /* the bytes at those offsets are the tensor from theta */
        int k = atoi(t->string + 2);
        int is_bias = strstr(t->string, ".bias") != NULL;
        const float *src = theta + (is_bias ? arch.b_off[k - 1] : arch.w_off[k - 1]);
        size_t begin = (size_t)cJSON_GetArrayItem(offs, 0)->valuedouble;
        assert_memory_equal(file + 8 + hlen + begin, src, (size_t)offset - begin);
        prev = t;
    }
    assert_int_equal(count, 22);
    assert_true(offset == 4.0 * (double)arch.n_params);
    assert_string_equal(md->next->string, "fc1.bias");
    assert_string_equal(md->next->next->next->string, "fc10.bias");

    cJSON_Delete(root);
    free(header);
    free(file);
    free(theta);
    drop(path);
}

/* meta->extra members become string metadata; a non-object is refused. */
static void test_extra_metadata(void **state)
{
    (void)state;
    const int sizes[] = {3, 2};
    pf_arch arch;
    make_arch(&arch, 1, sizes, "linear", 1, PF_LOSS_CE);
    float *theta = make_params(&arch, 1);
    pf_ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    strcpy(meta.anchor, "origin");
    meta.extra = "{\"lr\": 0.0015, \"steps\": 3000, \"note\": \"hi\", \"seed\": 9, "
                 "\"flag\": true}";
    char *path = tmp_path();
    pf_error err;
    assert_int_equal(pf_ckpt_write(path, &arch, theta, &meta, &err), PF_OK);

    size_t n;
    unsigned char *file = slurp(path, &n);
    cJSON *root = cJSON_ParseWithLength((const char *)file + 8, (size_t)header_len(file));
    assert_non_null(root);
    cJSON *md = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(md, "lr")->valuestring, "0.0015");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(md, "steps")->valuestring, "3000");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(md, "note")->valuestring, "hi");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(md, "flag")->valuestring, "true");
    /* our own keys win over extra's */
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(md, "seed")->valuestring, "0");
    cJSON_Delete(root);
    free(file);

    pf_arch back;
    float *theta2 = NULL;
    pf_ckpt_meta meta2;
    assert_int_equal(pf_ckpt_read(path, NULL, NULL, &back, &theta2, &meta2, &err), PF_OK);
    assert_int_equal(meta2.seed, 0);
    free(theta2);

    meta.extra = "[1, 2]";
    assert_int_equal(pf_ckpt_write(path, &arch, theta, &meta, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, path));
    free(theta);
    drop(path);
}

/* ---------------------------------------------------------- atomic writes */

static void test_temp_file_gone_after_success(void **state)
{
    (void)state;
    const int sizes[] = {4, 3, 2};
    pf_arch arch;
    make_arch(&arch, 2, sizes, "sigmoid", 1, PF_LOSS_CE);
    float *theta = make_params(&arch, 3);
    char *path = tmp_path();
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    pf_error err;
    assert_int_equal(pf_ckpt_write(path, &arch, theta, NULL, &err), PF_OK);
    assert_true(file_exists(path));
    assert_false(file_exists(tmp));
    /* overwriting an existing checkpoint works the same way */
    theta[0] += 1.0f;
    assert_int_equal(pf_ckpt_write(path, &arch, theta, NULL, &err), PF_OK);
    assert_false(file_exists(tmp));
    pf_arch back;
    float *theta2 = NULL;
    assert_int_equal(pf_ckpt_read(path, NULL, NULL, &back, &theta2, NULL, &err), PF_OK);
    assert_true(theta2[0] == theta[0]);
    free(theta2);
    free(theta);
    drop(path);
}

/* Nothing named like one of the writer's temporary files (PATH.tmp.*) is left beside path. */
static int temp_left_beside(const char *path)
{
    char pattern[600];
    snprintf(pattern, sizeof pattern, "%s.tmp.*", path);
    glob_t g;
    int found = glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 0;
    globfree(&g);
    return found;
}

static void test_write_into_missing_directory(void **state)
{
    (void)state;
    const int sizes[] = {4, 2};
    pf_arch arch;
    make_arch(&arch, 1, sizes, "linear", 1, PF_LOSS_CE);
    float *theta = make_params(&arch, 3);
    char dir[] = "/tmp/pf_test_st_dir_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/missing/model.safetensors", dir);
    pf_error err;
    assert_int_equal(pf_ckpt_write(path, &arch, theta, NULL, &err), PF_ERUNTIME);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "No such file or directory"));
    assert_false(file_exists(path));
    assert_false(temp_left_beside(path));

    /* a target that is not a file (a directory) is refused as bad input,
     * named, and left as it was, with no temporary file beside it */
    snprintf(path, sizeof path, "%s", dir);
    assert_int_equal(pf_write_file_atomic(path, "x", 1, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, path));
    assert_false(temp_left_beside(path));
    assert_int_equal(rmdir(dir), 0);
    free(theta);
}

static void test_write_refuses_nan(void **state)
{
    (void)state;
    const int sizes[] = {4, 2};
    pf_arch arch;
    make_arch(&arch, 1, sizes, "linear", 1, PF_LOSS_CE);
    float *theta = make_params(&arch, 3);
    theta[arch.b_off[0] + 1] = NAN;
    char *path = tmp_path();
    remove(path);
    pf_error err;
    assert_int_equal(pf_ckpt_write(path, &arch, theta, NULL, &err), PF_ERUNTIME);
    assert_non_null(strstr(err.msg, "fc1.bias holds NaN at index 1"));
    assert_false(file_exists(path));
    free(theta);
    free(path);
}

/* ----------------------------------------------------- expected / defaults */

static void test_expected_arch_mismatch(void **state)
{
    (void)state;
    const int small[] = {784, 64, 10}, big[] = {784, 128, 128, 10};
    pf_arch a, b;
    make_arch(&a, 2, small, "sigmoid", 1, PF_LOSS_CE);
    make_arch(&b, 3, big, "sigmoid", 1, PF_LOSS_CE);
    float *theta = make_params(&a, 5);
    char *path = tmp_path();
    pf_error err;
    assert_int_equal(pf_ckpt_write(path, &a, theta, NULL, &err), PF_OK);

    pf_arch back;
    float *theta2 = NULL;
    assert_int_equal(pf_ckpt_read(path, NULL, &b, &back, &theta2, NULL, &err), PF_EINPUT);
    assert_null(theta2);
    char want[600];
    snprintf(want, sizeof want,
             "%s: architecture 784,64,10 does not match the expected 784,128,128,10", path);
    assert_string_equal(err.msg, want);

    /* same sizes, other activations */
    pf_arch c;
    make_arch(&c, 2, small, "relu", 1, PF_LOSS_CE);
    assert_int_equal(pf_ckpt_read(path, NULL, &c, &back, &theta2, NULL, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, "sigmoid,linear"));
    assert_non_null(strstr(err.msg, "relu,linear"));

    /* the right expectation loads */
    assert_int_equal(pf_ckpt_read(path, NULL, &a, &back, &theta2, NULL, &err), PF_OK);
    assert_memory_equal(theta2, theta, a.n_params * sizeof *theta);
    free(theta2);
    free(theta);
    drop(path);
}

/* What a PyTorch user writes with safetensors.torch.save_file: no pathfinder
 * metadata (or only format=pt). Activations come from the defaults, else
 * from fallback or expect. */
static void test_torch_style_file_without_metadata(void **state)
{
    (void)state;
    fill_small_data();
    const char *headers[] = {
        "{" SMALL_TENSORS "}",
        "{\"__metadata__\":{\"format\":\"pt\"}," SMALL_TENSORS "}",
        /* any tensor order in the header is fine */
        "{" FC2_WEIGHT "," FC1_WEIGHT "," FC2_BIAS ",\"__metadata__\":{}," FC1_BIAS "}",
    };
    for (size_t h = 0; h < sizeof headers / sizeof headers[0]; h++) {
        char *path = tmp_path();
        write_st(path, small_data, sizeof small_data, headers[h]);
        pf_arch arch;
        float *theta = NULL;
        pf_ckpt_meta meta;
        pf_error err;
        assert_int_equal(pf_ckpt_read(path, NULL, NULL, &arch, &theta, &meta, &err), PF_OK);
        assert_int_equal(arch.n_layers, 2);
        assert_int_equal(arch.sizes[0], 3);
        assert_int_equal(arch.sizes[1], 2);
        assert_int_equal(arch.sizes[2], 2);
        assert_int_equal(arch.bias, 1);
        assert_int_equal(arch.act[0], PF_ACT_SIGMOID);
        assert_int_equal(arch.act[1], PF_ACT_LINEAR);
        assert_int_equal(arch.loss, PF_LOSS_CE);
        /* fc1.weight is bytes [8, 32) = floats 2..7 */
        assert_memory_equal(theta + arch.w_off[0], small_data + 2, 6 * sizeof(float));
        assert_memory_equal(theta + arch.b_off[0], small_data + 0, 2 * sizeof(float));
        assert_memory_equal(theta + arch.w_off[1], small_data + 10, 4 * sizeof(float));
        assert_memory_equal(theta + arch.b_off[1], small_data + 8, 2 * sizeof(float));
        assert_true(meta.beta == 0.0);
        assert_string_equal(meta.anchor, "origin");
        assert_int_equal(meta.seed, 0);
        assert_string_equal(meta.dataset, "");
        free(theta);

        /* fallback supplies activations and loss */
        const int sizes[] = {3, 2, 2};
        pf_arch fb;
        make_arch(&fb, 2, sizes, "tanh", 1, PF_LOSS_MSE);
        assert_int_equal(pf_ckpt_read(path, &fb, NULL, &arch, &theta, NULL, &err), PF_OK);
        assert_true(pf_arch_equal(&arch, &fb));
        free(theta);
        /* so does expect, when there is no fallback */
        assert_int_equal(pf_ckpt_read(path, NULL, &fb, &arch, &theta, NULL, &err), PF_OK);
        assert_true(pf_arch_equal(&arch, &fb));
        free(theta);
        drop(path);
    }
}

/* ---------------------------------------------------------- malformed files */

static void test_reject_nonexistent_file(void **state)
{
    (void)state;
    expect_reject("/tmp/pf_test_st_does_not_exist.safetensors", "No such file");
}

static void test_reject_short_file(void **state)
{
    (void)state;
    char *path = tmp_path();
    spill(path, "\x10\0\0\0\0", 5);
    expect_reject(path, "too short");
    spill(path, "", 0);
    expect_reject(path, "too short");
    drop(path);
}

static void test_reject_truncated_data(void **state)
{
    (void)state;
    const int sizes[] = {4, 3, 2};
    pf_arch arch;
    make_arch(&arch, 2, sizes, "sigmoid", 1, PF_LOSS_CE);
    float *theta = make_params(&arch, 3);
    char *path = tmp_path();
    pf_error err;
    assert_int_equal(pf_ckpt_write(path, &arch, theta, NULL, &err), PF_OK);
    size_t n;
    unsigned char *file = slurp(path, &n);
    spill(path, file, n - 10);
    expect_reject(path, "out of range");
    free(file);
    free(theta);
    drop(path);
}

static void test_reject_header_length_beyond_file(void **state)
{
    (void)state;
    fill_small_data();
    char *path = tmp_path();
    write_st(path, small_data, sizeof small_data, "{" SMALL_TENSORS "}");
    size_t n;
    unsigned char *file = slurp(path, &n);
    uint64_t big = n; /* 8 bytes more than there are */
    for (int i = 0; i < 8; i++) file[i] = (unsigned char)(big >> (8 * i));
    spill(path, file, n);
    expect_reject(path, "runs past the end");
    for (int i = 0; i < 8; i++) file[i] = 0xFF;
    spill(path, file, n);
    expect_reject(path, "absurd");
    free(file);
    drop(path);
}

static void test_reject_bad_json(void **state)
{
    (void)state;
    fill_small_data();
    char *path = tmp_path();
    write_st(path, small_data, sizeof small_data, "{" FC1_BIAS "," FC1_WEIGHT ",");
    expect_reject(path, "not valid JSON");
    write_st(path, small_data, sizeof small_data, "[" SMALL_TENSORS "]");
    expect_reject(path, "not valid JSON");
    write_st(path, NULL, 0, "[1,2]");
    expect_reject(path, "not a JSON object");
    write_st(path, small_data, sizeof small_data, "{" SMALL_TENSORS "}x");
    expect_reject(path, "text after");
    write_st(path, small_data, sizeof small_data, "{\"__metadata__\":{\"a\":\"\xC3\x28\"}," SMALL_TENSORS "}");
    expect_reject(path, "UTF-8");
    write_st(path, small_data, sizeof small_data, "{\"__metadata__\":{\"a\":1}," SMALL_TENSORS "}");
    expect_reject(path, "not a string");
    write_st(path, small_data, sizeof small_data, "{\"__metadata__\":[]," SMALL_TENSORS "}");
    expect_reject(path, "__metadata__");
    drop(path);
}

static void test_reject_f16(void **state)
{
    (void)state;
    fill_small_data();
    char *path = tmp_path();
    write_st(path, small_data, sizeof small_data,
             "{" FC1_BIAS ",\"fc1.weight\":{\"dtype\":\"F16\",\"shape\":[2,3],"
             "\"data_offsets\":[8,32]}," FC2_BIAS "," FC2_WEIGHT "}");
    expect_reject(path, "tensor fc1.weight has dtype F16; only F32 is supported");
    drop(path);
}

static void test_reject_bad_entry(void **state)
{
    (void)state;
    fill_small_data();
    char *path = tmp_path();
    write_st(path, small_data, sizeof small_data,
             "{" FC1_BIAS ",\"fc1.weight\":{\"shape\":[2,3],\"data_offsets\":[8,32]}," FC2_BIAS
             "," FC2_WEIGHT "}");
    expect_reject(path, "no dtype");
    write_st(path, small_data, sizeof small_data,
             "{" FC1_BIAS ",\"fc1.weight\":{\"dtype\":\"F32\",\"data_offsets\":[8,32]}," FC2_BIAS
             "," FC2_WEIGHT "}");
    expect_reject(path, "no shape");
    write_st(path, small_data, sizeof small_data,
             "{" FC1_BIAS ",\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[2,3]}," FC2_BIAS
             "," FC2_WEIGHT "}");
    expect_reject(path, "data_offsets");
    write_st(path, small_data, sizeof small_data,
             "{" FC1_BIAS "," T("fc1.weight", "[2,-3]", 8, 32) "," FC2_BIAS "," FC2_WEIGHT "}");
    expect_reject(path, "non-negative integers");
    write_st(path, small_data, sizeof small_data,
             "{" FC1_BIAS "," T("fc1.weight", "[2,3.5]", 8, 32) "," FC2_BIAS "," FC2_WEIGHT "}");
    expect_reject(path, "non-negative integers");
    write_st(path, small_data, sizeof small_data,
             "{" FC1_BIAS "," T("fc1.weight", "[2,3]", 8.5, 32) "," FC2_BIAS "," FC2_WEIGHT "}");
    expect_reject(path, "data_offsets");
    write_st(path, small_data, sizeof small_data, "{" FC1_BIAS ",\"fc1.weight\":7}");
    expect_reject(path, "not described by a JSON object");
    write_st(path, small_data, sizeof small_data,
             "{" FC1_BIAS "," T("fc1.weight", "[2,3,1]", 8, 32) "," FC2_BIAS "," FC2_WEIGHT
             "}");
    expect_reject(path, "rank 3");
    write_st(path, small_data, sizeof small_data,
             "{" T("fc1.bias", "[1,2]", 0, 8) "," FC1_WEIGHT "," FC2_BIAS "," FC2_WEIGHT "}");
    expect_reject(path, "rank 2");
    drop(path);
}

static void test_reject_offsets_out_of_range(void **state)
{
    (void)state;
    fill_small_data();
    char *path = tmp_path();
    write_st(path, small_data, sizeof small_data,
             "{" FC1_BIAS "," FC1_WEIGHT "," FC2_BIAS "," T("fc2.weight", "[2,2]", 40, 60) "}");
    expect_reject(path, "offsets out of range");
    write_st(path, small_data, sizeof small_data,
             "{" FC1_BIAS "," FC1_WEIGHT "," FC2_BIAS "," T("fc2.weight", "[2,2]", 56, 40) "}");
    expect_reject(path, "offsets out of range");
    write_st(path, small_data, sizeof small_data,
             "{" FC1_BIAS "," FC1_WEIGHT "," FC2_BIAS ","
             T("fc2.weight", "[2,2]", 40, 18446744073709551615) "}");
    expect_reject(path, "fc2.weight");
    drop(path);
}

static void test_reject_wrong_byte_length(void **state)
{
    (void)state;
    fill_small_data();
    char *path = tmp_path();
    write_st(path, small_data, sizeof small_data,
             "{" FC1_BIAS "," T("fc1.weight", "[2,2]", 8, 32) "," FC2_BIAS "," FC2_WEIGHT "}");
    expect_reject(path, "tensor fc1.weight: its shape needs");
    /* a shape whose element count overflows 64 bits */
    write_st(path, small_data, sizeof small_data,
             "{" FC1_BIAS "," T("fc1.weight", "[4294967296,4294967296]", 8, 32) "," FC2_BIAS
             "," FC2_WEIGHT "}");
    expect_reject(path, "2^64");
    drop(path);
}

static void test_reject_overlapping_tensors(void **state)
{
    (void)state;
    fill_small_data();
    char *path = tmp_path();
    /* fc1.bias reuses the first 8 bytes of fc1.weight; 8 bytes at the end
     * keep the total right */
    write_st(path, small_data, sizeof small_data,
             "{" T("fc1.bias", "[2]", 8, 16) "," FC1_WEIGHT "," FC2_BIAS ","
             T("fc2.weight", "[2,2]", 0, 16) "}");
    expect_reject(path, "overlap");
    drop(path);
}

static void test_reject_hole_in_buffer(void **state)
{
    (void)state;
    fill_small_data();
    float more[16];
    memcpy(more, small_data, sizeof small_data);
    more[14] = more[15] = 0.0f;
    char *path = tmp_path();
    /* 8 bytes between fc2.bias and fc2.weight */
    write_st(path, more, sizeof more,
             "{" FC1_BIAS "," FC1_WEIGHT "," FC2_BIAS "," T("fc2.weight", "[2,2]", 48, 64) "}");
    expect_reject(path, "bytes [40, 48) of the data buffer belong to no tensor");
    /* 8 unused bytes after the last tensor */
    write_st(path, more, sizeof more, "{" SMALL_TENSORS "}");
    expect_reject(path, "bytes [56, 64) of the data buffer belong to no tensor");
    drop(path);
}

static void test_reject_unknown_tensor_name(void **state)
{
    (void)state;
    fill_small_data();
    const char *names[] = {"fc1.gamma", "layer1.weight", "fc0.weight", "fc01.weight",
                           "fc1.weight.extra", "fc"};
    char *path = tmp_path();
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char header[512];
        snprintf(header, sizeof header,
                 "{" FC1_BIAS "," FC1_WEIGHT "," FC2_BIAS "," FC2_WEIGHT
                 ",\"%s\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[56,56]}}",
                 names[i]);
        write_st(path, small_data, sizeof small_data, header);
        expect_reject(path, names[i]);
    }
    write_st(path, small_data, sizeof small_data,
             "{" SMALL_TENSORS ",\"fc17.weight\":{\"dtype\":\"F32\",\"shape\":[0,0],"
             "\"data_offsets\":[56,56]}}");
    expect_reject(path, "at most 16 layers");
    write_st(path, small_data, sizeof small_data, "{" SMALL_TENSORS "," FC1_BIAS "}");
    expect_reject(path, "twice");
    drop(path);
}

static void test_reject_missing_fc2(void **state)
{
    (void)state;
    fill_small_data();
    char *path = tmp_path();
    /* fc1 and fc3, no fc2 */
    write_st(path, small_data, sizeof small_data,
             "{" FC1_BIAS "," FC1_WEIGHT "," T("fc3.bias", "[2]", 32, 40) ","
             T("fc3.weight", "[2,2]", 40, 56) "}");
    expect_reject(path, "missing tensor fc2.weight");
    /* only a bias for fc2 */
    write_st(path, small_data, sizeof small_data,
             "{" FC1_BIAS "," T("fc1.weight", "[2,5]", 8, 48) "," T("fc2.bias", "[2]", 48, 56) "}");
    expect_reject(path, "missing tensor fc2.weight");
    write_st(path, NULL, 0, "{\"__metadata__\":{}}");
    expect_reject(path, "no tensors");
    drop(path);
}

static void test_reject_shapes_that_do_not_chain(void **state)
{
    (void)state;
    fill_small_data();
    char *path = tmp_path();
    /* fc1 outputs 2 but fc2 takes 4 inputs */
    write_st(path, small_data, 52,
             "{" FC1_BIAS "," FC1_WEIGHT "," T("fc2.bias", "[1]", 32, 36) ","
             T("fc2.weight", "[1,4]", 36, 52) "}");
    expect_reject(path, "shapes do not chain");
    /* a bias whose length is not the layer's output width */
    write_st(path, small_data, 52,
             "{" FC1_BIAS "," FC1_WEIGHT "," T("fc2.bias", "[1]", 32, 36) ","
             T("fc2.weight", "[2,2]", 36, 52) "}");
    expect_reject(path, "fc2.bias has length 1");
    /* a zero-width layer */
    write_st(path, NULL, 0, "{" T("fc1.weight", "[0,3]", 0, 0) "}");
    expect_reject(path, "sizes must be in");
    drop(path);
}

static void test_reject_mixed_bias(void **state)
{
    (void)state;
    fill_small_data();
    char *path = tmp_path();
    float more[12];
    memcpy(more, small_data, sizeof more);
    write_st(path, more, sizeof more,
             "{" FC1_BIAS "," FC1_WEIGHT "," T("fc2.weight", "[2,2]", 32, 48) "}");
    expect_reject(path, "fc1.bias is present but fc2.bias is missing");
    drop(path);
}

static void test_reject_nan_value(void **state)
{
    (void)state;
    fill_small_data();
    float data[14];
    memcpy(data, small_data, sizeof data);
    data[9] = NAN; /* fc2.bias = floats 8..9 */
    char *path = tmp_path();
    write_st(path, data, sizeof data, "{" SMALL_TENSORS "}");
    expect_reject(path, "tensor fc2.bias holds NaN at index 1");
    drop(path);
}

static void test_reject_inf_value(void **state)
{
    (void)state;
    fill_small_data();
    float data[14];
    memcpy(data, small_data, sizeof data);
    data[2 + 4] = -INFINITY; /* fc1.weight = floats 2..7 */
    char *path = tmp_path();
    write_st(path, data, sizeof data, "{" SMALL_TENSORS "}");
    expect_reject(path, "tensor fc1.weight holds Inf at index 4");
    drop(path);
}

static void test_reject_contradicting_metadata(void **state)
{
    (void)state;
    fill_small_data();
    char *path = tmp_path();
    write_st(path, small_data, sizeof small_data,
             "{\"__metadata__\":{\"architecture\":\"3,4,2\"}," SMALL_TENSORS "}");
    expect_reject(path, "architecture metadata '3,4,2' contradicts the tensor shapes 3,2,2");
    write_st(path, small_data, sizeof small_data,
             "{\"__metadata__\":{\"architecture\":\"3,2,2,1\"}," SMALL_TENSORS "}");
    expect_reject(path, "contradicts");
    write_st(path, small_data, sizeof small_data,
             "{\"__metadata__\":{\"architecture\":\"banana\"}," SMALL_TENSORS "}");
    expect_reject(path, "contradicts");
    write_st(path, small_data, sizeof small_data,
             "{\"__metadata__\":{\"activations\":\"swish\"}," SMALL_TENSORS "}");
    expect_reject(path, "swish");
    write_st(path, small_data, sizeof small_data,
             "{\"__metadata__\":{\"activations\":\"relu,relu,relu\"}," SMALL_TENSORS "}");
    expect_reject(path, "activations");
    write_st(path, small_data, sizeof small_data,
             "{\"__metadata__\":{\"loss\":\"hinge\"}," SMALL_TENSORS "}");
    expect_reject(path, "hinge");
    write_st(path, small_data, sizeof small_data,
             "{\"__metadata__\":{\"bias\":\"false\"}," SMALL_TENSORS "}");
    expect_reject(path, "bias metadata");
    write_st(path, small_data, sizeof small_data,
             "{\"__metadata__\":{\"beta\":\"lots\"}," SMALL_TENSORS "}");
    expect_reject(path, "beta");
    write_st(path, small_data, sizeof small_data,
             "{\"__metadata__\":{\"seed\":\"-1\"}," SMALL_TENSORS "}");
    expect_reject(path, "seed");

    /* agreeing metadata is fine, and is used */
    write_st(path, small_data, sizeof small_data,
             "{\"__metadata__\":{\"architecture\":\"3,2,2\",\"activations\":\"relu,linear\","
             "\"loss\":\"mse\",\"bias\":\"true\",\"beta\":\"0.5\",\"seed\":\"12\"}," SMALL_TENSORS
             "}");
    pf_arch arch;
    float *theta = NULL;
    pf_ckpt_meta meta;
    pf_error err;
    assert_int_equal(pf_ckpt_read(path, NULL, NULL, &arch, &theta, &meta, &err), PF_OK);
    assert_int_equal(arch.act[0], PF_ACT_RELU);
    assert_int_equal(arch.loss, PF_LOSS_MSE);
    assert_true(meta.beta == 0.5);
    assert_int_equal(meta.seed, 12);
    free(theta);
    drop(path);
}

static void test_reject_directory(void **state)
{
    (void)state;
    expect_reject("/tmp", "not a regular file");
}

/* beta is the L2 strength: eval computed a negative reg_loss from -5 and
 * exited 0. */
static void test_reject_negative_beta(void **state)
{
    (void)state;
    fill_small_data();
    char *path = tmp_path();
    write_st(path, small_data, sizeof small_data,
             "{\"__metadata__\":{\"beta\":\"-5\"}," SMALL_TENSORS "}");
    expect_reject(path, "beta metadata '-5' is negative");
    write_st(path, small_data, sizeof small_data,
             "{\"__metadata__\":{\"beta\":\"-1e-300\"}," SMALL_TENSORS "}");
    expect_reject(path, "negative");
    write_st(path, small_data, sizeof small_data,
             "{\"__metadata__\":{\"beta\":\"nan\"}," SMALL_TENSORS "}");
    expect_reject(path, "beta metadata 'nan' is not a finite number");
    write_st(path, small_data, sizeof small_data,
             "{\"__metadata__\":{\"seed\":\"18446744073709551616\"}," SMALL_TENSORS "}");
    expect_reject(path, "seed metadata");
    write_st(path, small_data, sizeof small_data,
             "{\"__metadata__\":{\"seed\":\" 7\"}," SMALL_TENSORS "}");
    expect_reject(path, "seed metadata");
    drop(path);
}

/* Names and values quoted from the header may hold JSON escapes like \n;
 * the message must stay one line (found by fuzz_safetensors). */
static void test_reject_quoted_control_characters(void **state)
{
    (void)state;
    fill_small_data();
    char *path = tmp_path();
    write_st(path, small_data, sizeof small_data,
             "{\"fc1\\n.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}");
    expect_reject(path, "unexpected tensor 'fc1?.weight'");
    write_st(path, small_data, sizeof small_data,
             "{\"__metadata__\":{\"loss\":\"ce\\r\\nx\"}," SMALL_TENSORS "}");
    expect_reject(path, "unknown loss 'ce??x'");
    drop(path);
}

static void on_alarm(int sig) { (void)sig; }

/* A FIFO given as --init or --anchor hung eval forever in fopen. The alarm
 * (without SA_RESTART) turns such a hang into a failed open. */
static void test_reject_fifo(void **state)
{
    (void)state;
    char *path = tmp_path();
    remove(path);
    assert_int_equal(mkfifo(path, 0600), 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
    alarm(2);
    expect_reject(path, "not a regular file");
    alarm(0);
    drop(path);
}

static long max_rss_kb(void)
{
    struct rusage ru;
    assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
    return ru.ru_maxrss;
}

/* A large file is refused from its header alone: the data is never read
 * (it used to be, whole, before the header was looked at: 3.5 GB for a
 * garbage file). The files are sparse, so they cost no disk; reading one
 * would show as resident memory. */
static void test_header_checked_before_data(void **state)
{
    (void)state;
    fill_small_data();
    const off_t big = (off_t)768 << 20;
    const char *headers[] = {"{\"not\": json", "{" SMALL_TENSORS "}"};
    const char *needles[] = {"not valid JSON", "belong to no tensor"};
    for (int i = 0; i < 2; i++) {
        char *path = tmp_path();
        write_st(path, small_data, sizeof small_data, headers[i]);
        assert_int_equal(truncate(path, big), 0);
        long before = max_rss_kb();
        expect_reject(path, needles[i]);
        long grown_mb = (max_rss_kb() - before) / 1024;
        if (grown_mb > 64) fail_msg("reading a rejected %lld MB file took %ld MB of memory",
                                    (long long)(big >> 20), grown_mb);
        drop(path);
    }
}

/* Every truncation and many random corruptions of a valid file load or fail
 * cleanly (run under ASan/UBSan this is the memory-safety check). */
static void test_corrupted_files_never_crash(void **state)
{
    (void)state;
    const int sizes[] = {3, 4, 2};
    pf_arch arch;
    make_arch(&arch, 2, sizes, "tanh", 1, PF_LOSS_CE);
    float *theta = make_params(&arch, 11);
    char *path = tmp_path();
    pf_error err;
    assert_int_equal(pf_ckpt_write(path, &arch, theta, NULL, &err), PF_OK);
    size_t n;
    unsigned char *good = slurp(path, &n);
    unsigned char *bad = malloc(n);
    assert_non_null(bad);

    for (size_t len = 0; len < n; len++) {
        spill(path, good, len);
        expect_reject(path, path);
    }
    pf_rng rng;
    pf_rng_seed(&rng, 2024);
    for (int trial = 0; trial < 1500; trial++) {
        memcpy(bad, good, n);
        int flips = 1 + (int)pf_rng_below(&rng, 4);
        for (int f = 0; f < flips; f++)
            bad[pf_rng_below(&rng, n)] = (unsigned char)pf_rng_below(&rng, 256);
        spill(path, bad, n);
        pf_arch back;
        float *theta2 = NULL;
        int rc = pf_ckpt_read(path, NULL, NULL, &back, &theta2, NULL, &err);
        assert_true(rc == PF_OK || rc == PF_EINPUT);
        if (rc == PF_OK) {
            assert_non_null(theta2);
            assert_int_equal(back.n_params, arch.n_params);
        } else {
            assert_null(theta2);
            assert_non_null(strstr(err.msg, path));
        }
        free(theta2);
    }
    free(bad);
    free(good);
    free(theta);
    drop(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_with_bias),
        cmocka_unit_test(test_roundtrip_without_bias),
        cmocka_unit_test(test_layout_matches_reference),
        cmocka_unit_test(test_extra_metadata),
        cmocka_unit_test(test_temp_file_gone_after_success),
        cmocka_unit_test(test_write_into_missing_directory),
        cmocka_unit_test(test_write_refuses_nan),
        cmocka_unit_test(test_expected_arch_mismatch),
        cmocka_unit_test(test_torch_style_file_without_metadata),
        cmocka_unit_test(test_reject_nonexistent_file),
        cmocka_unit_test(test_reject_short_file),
        cmocka_unit_test(test_reject_truncated_data),
        cmocka_unit_test(test_reject_header_length_beyond_file),
        cmocka_unit_test(test_reject_bad_json),
        cmocka_unit_test(test_reject_f16),
        cmocka_unit_test(test_reject_bad_entry),
        cmocka_unit_test(test_reject_offsets_out_of_range),
        cmocka_unit_test(test_reject_wrong_byte_length),
        cmocka_unit_test(test_reject_overlapping_tensors),
        cmocka_unit_test(test_reject_hole_in_buffer),
        cmocka_unit_test(test_reject_unknown_tensor_name),
        cmocka_unit_test(test_reject_missing_fc2),
        cmocka_unit_test(test_reject_shapes_that_do_not_chain),
        cmocka_unit_test(test_reject_mixed_bias),
        cmocka_unit_test(test_reject_nan_value),
        cmocka_unit_test(test_reject_inf_value),
        cmocka_unit_test(test_reject_contradicting_metadata),
        cmocka_unit_test(test_reject_directory),
        cmocka_unit_test(test_reject_negative_beta),
        cmocka_unit_test(test_reject_quoted_control_characters),
        cmocka_unit_test(test_reject_fifo),
        cmocka_unit_test(test_header_checked_before_data),
        cmocka_unit_test(test_corrupted_files_never_crash),
    };
    return cmocka_run_group_tests_name("safetensors", tests, NULL, NULL);
}

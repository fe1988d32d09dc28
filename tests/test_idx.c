/* IDX reader: round trips of every type at several ranks, raw and gzip'd,
 * and one test per way a file can be broken. */
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

static char tmpdir[64];
static char path[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pf_test_idx_XXXXXX");
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

static const char *tmp_path(const char *name)
{
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

static void write_bytes(const char *p, const void *buf, size_t n, int gz)
{
    if (gz) {
        gzFile g = gzopen(p, "wb");
        assert_non_null(g);
        if (n) assert_int_equal(gzwrite(g, buf, (unsigned)n), (int)n);
        assert_int_equal(gzclose(g), Z_OK);
    } else {
        FILE *f = fopen(p, "wb");
        assert_non_null(f);
        if (n) assert_int_equal(fwrite(buf, 1, n, f), n);
        fclose(f);
    }
}

static void put_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8) p[i] = (unsigned char)v;
}

/* Header for (type, rank, dims) followed by data_bytes of payload; returns length. */
static size_t make_header(unsigned char *buf, int type, int rank, const uint32_t *dims)
{
    buf[0] = buf[1] = 0;
    buf[2] = (unsigned char)type;
    buf[3] = (unsigned char)rank;
    for (int i = 0; i < rank; i++) put_be(buf + 4 + 4 * i, dims[i], 4);
    return 4 + 4 * (size_t)rank;
}

/* Values the test expects back, encoded big-endian in the given type. */
static size_t encode(unsigned char *p, int type, double v)
{
    switch (type) {
    case 0x08: case 0x09: p[0] = (unsigned char)(int)v; return 1;
    case 0x0B: put_be(p, (uint16_t)(int16_t)v, 2); return 2;
    case 0x0C: put_be(p, (uint32_t)(int32_t)v, 4); return 4;
    case 0x0D: { float f = (float)v; uint32_t u; memcpy(&u, &f, 4); put_be(p, u, 4); return 4; }
    default: { uint64_t u; memcpy(&u, &v, 8); put_be(p, u, 8); return 8; }
    }
}

static double sample_value(int type, size_t i)
{
    switch (type) {
    case 0x08: return (double)(i * 37 % 256);
    case 0x09: return (double)((int)(i * 37 % 256) - 128);
    case 0x0B: return (double)((int)i * 1000 - 30000);
    case 0x0C: return (double)((int)i * 123457 - 1000000);
    case 0x0D: return 0.25 * (double)i - 3.5;
    default: return 1e-3 * (double)i - 0.0625;
    }
}

static void round_trip(int type, int rank, const uint32_t *dims, int gz)
{
    unsigned char buf[4096];
    size_t count = 1;
    for (int i = 0; i < rank; i++) count *= dims[i];
    size_t n = make_header(buf, type, rank, dims);
    for (size_t i = 0; i < count; i++) n += encode(buf + n, type, sample_value(type, i));
    const char *p = tmp_path(gz ? "rt.idx.gz" : "rt.idx");
    write_bytes(p, buf, n, gz);

    pf_idx idx;
    pf_error err;
    assert_int_equal(pf_idx_read(p, &idx, &err), PF_OK);
    assert_int_equal(idx.type, type);
    assert_int_equal(idx.rank, rank);
    assert_int_equal(idx.count, count);
    for (int i = 0; i < rank; i++) assert_int_equal(idx.dims[i], dims[i]);
    for (size_t i = 0; i < count; i++)
        assert_true(idx.data[i] == (float)sample_value(type, i));
    pf_idx_free(&idx);
    assert_null(idx.data);
}

static void round_trip_all_ranks(int type)
{
    const uint32_t d1[1] = {7}, d2[2] = {3, 5}, d3[3] = {2, 3, 4};
    for (int gz = 0; gz < 2; gz++) {
        round_trip(type, 1, d1, gz);
        round_trip(type, 2, d2, gz);
        round_trip(type, 3, d3, gz);
    }
}

static void test_round_trip_ubyte(void **s) { (void)s; round_trip_all_ranks(0x08); }
static void test_round_trip_sbyte(void **s) { (void)s; round_trip_all_ranks(0x09); }
static void test_round_trip_int16(void **s) { (void)s; round_trip_all_ranks(0x0B); }
static void test_round_trip_int32(void **s) { (void)s; round_trip_all_ranks(0x0C); }
static void test_round_trip_float(void **s) { (void)s; round_trip_all_ranks(0x0D); }
static void test_round_trip_double(void **s) { (void)s; round_trip_all_ranks(0x0E); }

static void test_rank_eight(void **s)
{
    (void)s;
    const uint32_t dims[8] = {1, 2, 1, 2, 1, 2, 1, 2};
    round_trip(0x08, 8, dims, 0);
}

/* Reading p must fail with PF_EINPUT, one line naming the file and saying what. */
static void expect_bad(const char *p, const char *what)
{
    pf_idx idx;
    pf_error err;
    pf_error_clear(&err);
    int rc = pf_idx_read(p, &idx, &err);
    if (rc != PF_EINPUT || !strstr(err.msg, p) || !strstr(err.msg, what))
        print_error("got rc %d, message '%s'; wanted '%s'\n", rc, err.msg, what);
    assert_int_equal(rc, PF_EINPUT);
    assert_int_equal(err.code, PF_EINPUT);
    assert_non_null(strstr(err.msg, p));
    assert_non_null(strstr(err.msg, what));
    assert_null(strchr(err.msg, '\n'));
    assert_null(idx.data);
}

/* A 10-byte ubyte vector with `extra` payload bytes more (or fewer). */
static size_t vector_file(unsigned char *buf, long extra)
{
    const uint32_t dims[1] = {10};
    size_t n = make_header(buf, 0x08, 1, dims);
    for (long i = 0; i < 10 + extra; i++) buf[n++] = (unsigned char)i;
    return n;
}

static void test_bad_empty_file(void **s)
{
    (void)s;
    write_bytes(tmp_path("empty.idx"), "", 0, 0);
    expect_bad(path, "empty file");
}

static void test_bad_magic(void **s)
{
    (void)s;
    unsigned char buf[64];
    size_t n = vector_file(buf, 0);
    buf[0] = 0x01;
    write_bytes(tmp_path("magic.idx"), buf, n, 0);
    expect_bad(path, "bad magic");
}

static void test_bad_unknown_type(void **s)
{
    (void)s;
    unsigned char buf[64];
    size_t n = vector_file(buf, 0);
    buf[2] = 0x0A;
    write_bytes(tmp_path("type.idx"), buf, n, 0);
    expect_bad(path, "unknown IDX data type");
}

static void test_bad_rank_zero(void **s)
{
    (void)s;
    unsigned char buf[8] = {0, 0, 0x08, 0, 1, 2, 3, 4};
    write_bytes(tmp_path("rank0.idx"), buf, sizeof buf, 0);
    expect_bad(path, "rank 0");
}

static void test_bad_rank_nine(void **s)
{
    (void)s;
    const uint32_t dims[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    unsigned char buf[64];
    size_t n = make_header(buf, 0x08, 9, dims);
    buf[n++] = 42;
    write_bytes(tmp_path("rank9.idx"), buf, n, 0);
    expect_bad(path, "rank 9");
}

static void test_bad_dims_overflow(void **s)
{
    (void)s;
    const uint32_t dims[3] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    unsigned char buf[64];
    size_t n = make_header(buf, 0x0E, 3, dims);
    write_bytes(tmp_path("overflow.idx"), buf, n, 0);
    expect_bad(path, "overflow");
}

static void test_bad_truncated_data(void **s)
{
    (void)s;
    unsigned char buf[64];
    write_bytes(tmp_path("short.idx"), buf, vector_file(buf, -5), 0);
    expect_bad(path, "file holds 5");
}

static void test_bad_trailing_bytes(void **s)
{
    (void)s;
    unsigned char buf[64];
    write_bytes(tmp_path("long.idx"), buf, vector_file(buf, 2), 0);
    expect_bad(path, "file holds 12");
}

static void test_bad_gzip_trailing_bytes(void **s)
{
    (void)s;
    unsigned char buf[64];
    write_bytes(tmp_path("long.idx.gz"), buf, vector_file(buf, 2), 1);
    expect_bad(path, "declares 10 bytes of data but the gzip stream holds more");
}

/* A gzip'd vector big enough that cutting it leaves a partial stream. */
static size_t gzip_vector(unsigned char **out)
{
    enum { N = 20000 };
    unsigned char *buf = malloc(N + 8);
    const uint32_t dims[1] = {N};
    size_t n = make_header(buf, 0x08, 1, dims);
    for (size_t i = 0; i < N; i++) buf[n++] = (unsigned char)(i * 7919 >> 3);
    write_bytes(tmp_path("whole.idx.gz"), buf, n, 1);
    free(buf);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    *out = malloc(1 << 16);
    size_t len = fread(*out, 1, 1 << 16, f);
    fclose(f);
    assert_true(len > 100 && len < (1 << 16));
    return len;
}

static void test_bad_truncated_gzip(void **s)
{
    (void)s;
    unsigned char *gz;
    size_t len = gzip_vector(&gz);
    write_bytes(tmp_path("cut.idx"), gz, len / 2, 0);
    expect_bad(path, "truncated gzip data");
    free(gz);
}

/* Cut from the middle but keep the ISIZE trailer, so only the read itself
 * can notice. */
static void test_bad_gzip_cut_keeping_trailer(void **s)
{
    (void)s;
    unsigned char *gz;
    size_t len = gzip_vector(&gz);
    memmove(gz + len / 2, gz + len - 8, 8);
    write_bytes(tmp_path("cut-trailer.idx"), gz, len / 2 + 8, 0);
    expect_bad(path, "corrupt gzip");
    free(gz);
}

static void test_bad_gzip_corrupt_byte(void **s)
{
    (void)s;
    unsigned char *gz;
    size_t len = gzip_vector(&gz);
    gz[len / 2] ^= 0x55;
    write_bytes(tmp_path("flipped.idx"), gz, len, 0);
    expect_bad(path, "corrupt gzip");
    free(gz);
}

/* A clean gzip stream shorter than declared; then the same with its ISIZE
 * patched to the declared size, which must not fool the reader either. */
static void test_bad_gzip_trailer_lies(void **s)
{
    (void)s;
    unsigned char buf[64];
    write_bytes(tmp_path("lies.idx.gz"), buf, vector_file(buf, -5), 1);
    expect_bad(path, "lies.idx.gz: header declares 10 bytes of data but the gzip stream holds 5");
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    unsigned char isize[4] = {8 + 10, 0, 0, 0};
    assert_int_equal(fseek(f, -4, SEEK_END), 0);
    assert_int_equal(fwrite(isize, 1, 4, f), 4);
    fclose(f);
    expect_bad(path, "lies.idx.gz: ");
}

/* Append buf to p as one more gzip member, as `cat a.gz b.gz` would. */
static void append_member(const char *p, const void *buf, size_t n)
{
    gzFile g = gzopen(p, "ab");
    assert_non_null(g);
    if (n) assert_int_equal(gzwrite(g, buf, (unsigned)n), (int)n);
    assert_int_equal(gzclose(g), Z_OK);
}

/* A valid file in several gzip members, even split inside the header: the
 * old size check compared against the last member's ISIZE and refused it. */
static void test_gzip_multi_member(void **s)
{
    (void)s;
    const uint32_t dims[2] = {30, 7};
    unsigned char buf[512];
    size_t n = make_header(buf, 0x08, 2, dims);
    for (size_t i = 0; i < 210; i++) n += encode(buf + n, 0x08, sample_value(0x08, i));
    const size_t cuts[][2] = {{3, 100}, {12, 13}, {150, 221}};
    for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++) {
        const char *p = tmp_path("multi.idx.gz");
        unlink(p);
        append_member(p, buf, cuts[c][0]);
        append_member(p, buf + cuts[c][0], cuts[c][1] - cuts[c][0]);
        append_member(p, "", 0);  /* an empty member is still a member */
        append_member(p, buf + cuts[c][1], n - cuts[c][1]);
        pf_idx idx;
        pf_error err;
        if (pf_idx_read(p, &idx, &err) != PF_OK) fail_msg("%s", err.msg);
        assert_int_equal(idx.count, 210);
        for (size_t i = 0; i < 210; i++) assert_true(idx.data[i] == (float)sample_value(0x08, i));
        pf_idx_free(&idx);
    }
}

/* Sizes that agree with the gzip trailer only modulo 2^32. The old check
 * accepted them and then asked for 16 GB (or 4 PB) before reading a byte. */
static void test_bad_gzip_size_beyond_what_it_holds(void **s)
{
    (void)s;
    unsigned char buf[64];
    const uint32_t dims2[2] = {2, 0x80000005u};  /* 2^32 + 10 bytes: ISIZE 22 matches */
    size_t n = make_header(buf, 0x08, 2, dims2);
    for (int i = 0; i < 10; i++) buf[n++] = (unsigned char)i;
    write_bytes(tmp_path("mod32.idx.gz"), buf, n, 1);
    expect_bad(path, "header declares 4294967306 bytes of data but a gzip file of");

    const uint32_t dims3[3] = {65536, 65536, 65536};  /* 2^48 bytes: ISIZE 16 matches */
    write_bytes(tmp_path("huge.idx.gz"), buf, make_header(buf, 0x08, 3, dims3), 1);
    expect_bad(path, "IDX dimensions overflow the limit");
}

/* NaN, Inf and doubles beyond float range in float IDX data must fail at
 * load, naming the file, not later as a "diverged" training run. */
static void test_bad_non_finite_floats(void **s)
{
    (void)s;
    const uint32_t dims[1] = {4};
    const struct { int type; double value; const char *what; } cases[] = {
        {0x0D, NAN, "element 2 is NaN"},
        {0x0D, INFINITY, "element 2 is Inf"},
        {0x0E, -INFINITY, "element 2 is Inf"},
        {0x0E, NAN, "element 2 is NaN"},
        {0x0E, 1e300, "element 2 is beyond float range"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
        for (int gz = 0; gz < 2; gz++) {
            unsigned char buf[64];
            size_t n = make_header(buf, cases[c].type, 1, dims);
            for (int i = 0; i < 4; i++)
                n += encode(buf + n, cases[c].type, i == 2 ? cases[c].value : 0.5 * i);
            write_bytes(tmp_path(gz ? "nan.idx.gz" : "nan.idx"), buf, n, gz);
            expect_bad(path, cases[c].what);
        }
}

static void on_alarm(int sig) { (void)sig; }

/* A FIFO with no writer: a reader that opens it blindly blocks forever. The
 * alarm (without SA_RESTART) turns such a hang into a failed open. */
static void test_bad_fifo(void **s)
{
    (void)s;
    const char *p = tmp_path("fifo.idx");
    assert_int_equal(mkfifo(p, 0600), 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
    alarm(2);
    expect_bad(p, "not a regular file");
    alarm(0);
}

static void test_bad_nonexistent_file(void **s)
{
    (void)s;
    expect_bad(tmp_path("does-not-exist.idx"), "No such file");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_ubyte),
        cmocka_unit_test(test_round_trip_sbyte),
        cmocka_unit_test(test_round_trip_int16),
        cmocka_unit_test(test_round_trip_int32),
        cmocka_unit_test(test_round_trip_float),
        cmocka_unit_test(test_round_trip_double),
        cmocka_unit_test(test_rank_eight),
        cmocka_unit_test(test_bad_empty_file),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_bad_unknown_type),
        cmocka_unit_test(test_bad_rank_zero),
        cmocka_unit_test(test_bad_rank_nine),
        cmocka_unit_test(test_bad_dims_overflow),
        cmocka_unit_test(test_bad_truncated_data),
        cmocka_unit_test(test_bad_trailing_bytes),
        cmocka_unit_test(test_bad_gzip_trailing_bytes),
        cmocka_unit_test(test_bad_truncated_gzip),
        cmocka_unit_test(test_bad_gzip_cut_keeping_trailer),
        cmocka_unit_test(test_bad_gzip_corrupt_byte),
        cmocka_unit_test(test_bad_gzip_trailer_lies),
        cmocka_unit_test(test_gzip_multi_member),
        cmocka_unit_test(test_bad_gzip_size_beyond_what_it_holds),
        cmocka_unit_test(test_bad_non_finite_floats),
        cmocka_unit_test(test_bad_fifo),
        cmocka_unit_test(test_bad_nonexistent_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

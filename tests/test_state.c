/* The state format (state.c): fields by name, type and count, a CRC, clear
 * refusals of damaged, truncated, mis-sized and old files, and trainer
 * states of every optimizer. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "pathfinder/core.h"
#include "pathfinder/exp.h"
#include "exp/results.h"
#include "pathfinder/io.h"
#include "pathfinder/run.h"

static char dir[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pf_state_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void write_sample(const char *path, const float *theta, size_t n)
{
    pf_error err;
    pf_state *s = pf_state_new("sweep");
    assert_non_null(s);
    pf_state_put_i64(s, "next_index", 7);
    pf_state_put_f64(s, "length", M_PI);
    pf_state_put_str(s, "note", "resume me");
    pf_state_put(s, "theta", PF_STATE_F32, theta, n);
    assert_int_equal(pf_state_write(s, path, &err), PF_OK);
    pf_state_free(s);
}

static void test_fields_round_trip(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s/a.bin", dir);
    float theta[10];
    for (int i = 0; i < 10; i++) theta[i] = (float)i / 3.0f;
    write_sample(path, theta, 10);
    pf_state *s;
    pf_error err;
    assert_int_equal(pf_state_read(path, "sweep", &s, &err), PF_OK);
    int64_t next;
    double length;
    char note[32];
    float back[10];
    assert_int_equal(pf_state_get_i64(s, "next_index", &next, &err), PF_OK);
    assert_int_equal(pf_state_get_f64(s, "length", &length, &err), PF_OK);
    assert_int_equal(pf_state_get_str(s, "note", note, sizeof note, &err), PF_OK);
    assert_int_equal(pf_state_get(s, "theta", PF_STATE_F32, back, 10, &err), PF_OK);
    assert_int_equal(next, 7);
    assert_true(length == M_PI);
    assert_string_equal(note, "resume me");
    assert_memory_equal(back, theta, sizeof theta);
    assert_int_equal(pf_state_count(s, "theta", PF_STATE_F32), 10);
    assert_int_equal(pf_state_count(s, "theta", PF_STATE_F64), -1);
    assert_int_equal(pf_state_count(s, "nothing", PF_STATE_F32), -1);
    /* a field of another size or a missing one names the file and the field */
    float big[11];
    assert_int_equal(pf_state_get(s, "theta", PF_STATE_F32, big, 11, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "'theta' holds 10 float32 values, expected 11"));
    assert_int_equal(pf_state_get_i64(s, "points", &next, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, "'points' is missing"));
    pf_state_free(s);
    /* the kind is checked */
    assert_int_equal(pf_state_read(path, "path", &s, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, "state of a sweep, not of a path"));
}

static void test_damage_is_refused(void **state)
{
    (void)state;
    char path[256], cmd[2048];
    snprintf(path, sizeof path, "%s/b.bin", dir);
    float theta[100] = {0};
    write_sample(path, theta, 100);
    long n = file_size(path);
    pf_state *s = NULL;
    pf_error err;
    /* truncated anywhere: one clear message, not a confusing size report */
    for (long cut = 0; cut < n; cut += 37) {
        snprintf(cmd, sizeof cmd, "cp %s %s.cut && truncate -s %ld %s.cut", path, path, cut, path);
        assert_int_equal(system(cmd), 0);
        char cut_path[300];
        snprintf(cut_path, sizeof cut_path, "%s.cut", path);
        assert_int_equal(pf_state_read(cut_path, "sweep", &s, &err), PF_EINPUT);
        assert_null(s);
        assert_non_null(strstr(err.msg, cut_path));
        if (cut >= 24) assert_non_null(strstr(err.msg, "truncated or corrupted"));
    }
    /* one flipped byte anywhere: the checksum catches it */
    for (long at = 0; at < n; at += 53) {
        snprintf(cmd, sizeof cmd, "cp %s %s.flip && printf '\\x5a' | dd of=%s.flip bs=1 seek=%ld "
                 "conv=notrunc status=none", path, path, path, at);
        assert_int_equal(system(cmd), 0);
        char flip_path[300];
        snprintf(flip_path, sizeof flip_path, "%s.flip", path);
        int rc = pf_state_read(flip_path, "sweep", &s, &err);
        if (rc == PF_OK) { /* the byte was 0x5a already */
            pf_state_free(s);
            continue;
        }
        assert_int_equal(rc, PF_EINPUT);
    }
    /* the state files of pathfinder 0.1 */
    snprintf(cmd, sizeof cmd, "printf 'PFSTATE1xxxxxxxxxxxxxxxxxxxx' > %s/old.bin", dir);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "%s/old.bin", dir);
    assert_int_equal(pf_state_read(path, "sweep", &s, &err), PF_EINPUT);
    assert_non_null(strstr(err.msg, "pathfinder 0.1"));
}

/* A trainer's state round-trips for each optimizer: exactly the buffers it
 * has (SGD's momentum buffer included), and a state is refused by a trainer
 * of another optimizer or size. */
static void test_trainer_states(void **state)
{
    (void)state;
    const int sizes[] = {3, 4, 2};
    const pf_act acts[] = {PF_ACT_TANH, PF_ACT_LINEAR};
    pf_arch a;
    pf_error err;
    assert_int_equal(pf_arch_init(&a, 2, sizes, acts, 1, PF_LOSS_CE, &err), PF_OK);
    const pf_opt_kind kinds[] = {PF_OPT_ADAM, PF_OPT_SGD, PF_OPT_LBFGS};
    for (int k = 0; k < 3; k++) {
        pf_opt_config oc;
        pf_opt_config_default(&oc, kinds[k]);
        pf_trainer t, u;
        assert_int_equal(pf_trainer_init(&t, NULL, &a, &oc, 4, 10, 5, &err), PF_OK);
        assert_int_equal(pf_trainer_init(&u, NULL, &a, &oc, 4, 10, 6, &err), PF_OK);
        t.optim.step = 11 + k;
        for (size_t i = 0; i < a.n_params; i++) {
            if (t.optim.m) t.optim.m[i] = (float)i * 0.25f - 1.0f;
            if (t.optim.v) t.optim.v[i] = (float)i * 0.125f;
        }
        pf_rng_next(&t.rng);
        pf_trainer_state ts, back;
        assert_int_equal(pf_trainer_get_state(&t, &ts, &err), PF_OK);
        pf_state *s = pf_state_new("sweep");
        pf_state_put_trainer(s, "trainer", &ts);
        char path[256];
        snprintf(path, sizeof path, "%s/trainer%d.bin", dir, k);
        assert_int_equal(pf_state_write(s, path, &err), PF_OK);
        pf_state_free(s);
        assert_int_equal(pf_state_read(path, "sweep", &s, &err), PF_OK);
        assert_int_equal(pf_state_get_trainer(s, "trainer", a.n_params, &back, &err), PF_OK);
        assert_int_equal(pf_trainer_set_state(&u, &back, &err), PF_OK);
        assert_int_equal(u.optim.step, t.optim.step);
        assert_memory_equal(u.rng.s, t.rng.s, sizeof t.rng.s);
        if (t.optim.m) assert_memory_equal(u.optim.m, t.optim.m, a.n_params * sizeof(float));
        if (t.optim.v) assert_memory_equal(u.optim.v, t.optim.v, a.n_params * sizeof(float));
        assert_int_equal(back.m != NULL, t.optim.m != NULL);
        assert_int_equal(back.v != NULL, t.optim.v != NULL);
        /* another optimizer refuses it */
        pf_opt_config other;
        pf_opt_config_default(&other, kinds[(k + 1) % 3]);
        pf_trainer w;
        assert_int_equal(pf_trainer_init(&w, NULL, &a, &other, 4, 10, 5, &err), PF_OK);
        assert_int_equal(pf_trainer_set_state(&w, &back, &err), PF_EINPUT);
        assert_non_null(strstr(err.msg, pf_opt_name(kinds[k])));
        /* and so does another model size */
        assert_int_equal(pf_state_get_trainer(s, "trainer", a.n_params + 1, &ts, &err) != PF_OK ||
                             pf_trainer_set_state(&u, &ts, &err) != PF_OK,
                         1);
        pf_trainer_state_free(&ts);
        pf_trainer_state_free(&back);
        pf_state_free(s);
        pf_trainer_free(&t);
        pf_trainer_free(&u);
        pf_trainer_free(&w);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_round_trip),
        cmocka_unit_test(test_damage_is_refused),
        cmocka_unit_test(test_trainer_states),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * test_cgroup.c - cgroup v1 groups (cgroup.c), as root on the real hierarchies: limits show up in
 * the files, destroy removes everything (killing leftovers), a stale group under the parent is
 * swept by setup, and a child touching 64 MB in a 32 MB group is OOM-killed and counted.
 * Everything lives under a private parent "test-nimbus-<pid>" (never the daemon's "nimbus"),
 * removed at the end.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "cgroup.h"
#include "util.h"

static const char *const ctrls[] = {"memory", "pids", "cpu"};
static char parent[64];

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static char *read_trim(const char *dir, const char *file)
{
    char *path = xasprintf("%s/%s", dir, file), *text = NULL;
    int r = read_file(path, &text, NULL);
    free(path);
    if (r < 0)
        return NULL;
    text[strcspn(text, "\n")] = '\0';
    return text;
}

static int setup(void **state)
{
    (void)state;
    snprintf(parent, sizeof(parent), "test-nimbus-%d", (int)getpid());
    struct nb_err err = {0};
    if (cgroup_setup_at(parent, &err) < 0) {
        fprintf(stderr, "cgroup_setup_at: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    /* What a failed test may have left, then the parent itself. */
    static const char *const kids[] = {"test-a", "test-oom", "test-left", "stale"};
    for (size_t i = 0; i < ARRAY_SIZE(ctrls); i++) {
        for (size_t k = 0; k < ARRAY_SIZE(kids); k++) {
            char *kid = xasprintf("/sys/fs/cgroup/%s/%s/%s", ctrls[i], parent, kids[k]);
            rmdir(kid);
            free(kid);
        }
        char *dir = xasprintf("/sys/fs/cgroup/%s/%s", ctrls[i], parent);
        rmdir(dir);
        free(dir);
    }
    return 0;
}

static void test_create_limits_destroy(void **state)
{
    (void)state;
    struct nb_cgroup cg;
    struct nb_err err = {0};
    struct nb_cgroup_limits lim = {
        .memory_bytes = 32u << 20, .pids_max = 17, .cpu_period_us = 10000, .cpu_quota_us = 5000};
    assert_int_equal(cgroup_create(&cg, "test-a", &lim, &err), 0);
    for (int i = 0; i < 3; i++)
        assert_true(exists(cg.dirs[i]));
    assert_null(cg.dirs[3]);
    char *v = read_trim(cg.dirs[0], "memory.limit_in_bytes");
    assert_string_equal(v, "33554432");
    free(v);
    v = read_trim(cg.dirs[1], "pids.max");
    assert_string_equal(v, "17");
    free(v);
    v = read_trim(cg.dirs[2], "cpu.cfs_period_us");
    assert_string_equal(v, "10000");
    free(v);
    v = read_trim(cg.dirs[2], "cpu.cfs_quota_us");
    assert_string_equal(v, "5000");
    free(v);
    assert_int_equal(cgroup_set_cpu_quota(&cg, 0, &err), 0);
    v = read_trim(cg.dirs[2], "cpu.cfs_quota_us");
    assert_string_equal(v, "-1");
    free(v);

    uint64_t n = 99;
    assert_int_equal(cgroup_oom_kills(&cg, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(cgroup_max_usage(&cg, &n, &err), 0);

    /* A second group of the same name is refused and leaves the first intact. */
    struct nb_cgroup dup;
    assert_int_equal(cgroup_create(&dup, "test-a", &lim, &err), -EEXIST);
    assert_true(exists(cg.dirs[0]));

    char *dirs[3];
    for (int i = 0; i < 3; i++)
        dirs[i] = xstrdup(cg.dirs[i]);
    cgroup_destroy(&cg);
    for (int i = 0; i < 3; i++) {
        assert_null(cg.dirs[i]);
        assert_false(exists(dirs[i]));
        free(dirs[i]);
    }
    cgroup_destroy(&cg); /* safe twice / on a zeroed struct */
}

static void expect_file(const char *dir, const char *file, const char *want)
{
    char *v = read_trim(dir, file);
    assert_non_null(v);
    assert_string_equal(v, want);
    free(v);
}

/* A pooled group gets another function's limits: raising memory needs memsw first. */
static void test_set_limits(void **state)
{
    (void)state;
    struct nb_cgroup cg;
    struct nb_err err = {0};
    struct nb_cgroup_limits lim = {.memory_bytes = 32u << 20, .pids_max = 17};
    assert_int_equal(cgroup_create(&cg, "test-a", &lim, &err), 0);
    char *memsw_path = xasprintf("%s/memory.memsw.limit_in_bytes", cg.dirs[0]);
    bool memsw = exists(memsw_path);
    free(memsw_path);
    struct nb_cgroup_limits up = {
        .memory_bytes = 256u << 20, .pids_max = 99, .cpu_period_us = 10000, .cpu_quota_us = 2500};
    if (cgroup_set_limits(&cg, &up, &err) < 0)
        fail_msg("cgroup_set_limits: %s", err.msg);
    expect_file(cg.dirs[0], "memory.limit_in_bytes", "268435456");
    if (memsw)
        expect_file(cg.dirs[0], "memory.memsw.limit_in_bytes", "268435456");
    expect_file(cg.dirs[1], "pids.max", "99");
    expect_file(cg.dirs[2], "cpu.cfs_period_us", "10000");
    expect_file(cg.dirs[2], "cpu.cfs_quota_us", "2500");
    struct nb_cgroup_limits down = {.memory_bytes = 16u << 20, .pids_max = 8};
    assert_int_equal(cgroup_set_limits(&cg, &down, &err), 0);
    expect_file(cg.dirs[0], "memory.limit_in_bytes", "16777216");
    if (memsw)
        expect_file(cg.dirs[0], "memory.memsw.limit_in_bytes", "16777216");
    expect_file(cg.dirs[1], "pids.max", "8");
    expect_file(cg.dirs[2], "cpu.cfs_quota_us", "-1"); /* 0 = unlimited */
    struct nb_cgroup_limits none = {0};
    assert_int_equal(cgroup_set_limits(&cg, &none, &err), -EINVAL);
    cgroup_destroy(&cg);
    assert_int_equal(cgroup_set_limits(&cg, &down, &err), -EINVAL);
}

static void test_bad_input(void **state)
{
    (void)state;
    struct nb_cgroup cg;
    struct nb_err err = {0};
    struct nb_cgroup_limits lim = {.memory_bytes = 1 << 20, .pids_max = 4};
    assert_int_equal(cgroup_create(&cg, "../escape", &lim, &err), -EINVAL);
    assert_int_equal(cgroup_create(&cg, "", &lim, &err), -EINVAL);
    struct nb_cgroup_limits none = {0};
    assert_int_equal(cgroup_create(&cg, "test-b", &none, &err), -EINVAL);
    char *b = xasprintf("/sys/fs/cgroup/memory/%s/test-b", parent);
    assert_false(exists(b));
    free(b);
    cgroup_destroy(&cg);
}

/* Puts the calling process into every dir of cg (as the sandbox child does). */
static void join(const struct nb_cgroup *cg)
{
    for (int i = 0; cg->dirs[i]; i++) {
        char *p = xasprintf("%s/cgroup.procs", cg->dirs[i]);
        FILE *f = fopen(p, "w");
        if (!f || fputs("0", f) < 0 || fclose(f) != 0)
            _exit(100);
        free(p);
    }
}

static void test_oom_kill(void **state)
{
    (void)state;
    struct nb_cgroup cg;
    struct nb_err err = {0};
    struct nb_cgroup_limits lim = {.memory_bytes = 32u << 20, .pids_max = 8};
    assert_int_equal(cgroup_create(&cg, "test-oom", &lim, &err), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        join(&cg);
        size_t n = 64u << 20;
        volatile char *p = malloc(n);
        for (size_t i = 0; p && i < n; i += 4096)
            p[i] = 1;
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
    uint64_t kills = 0, peak = 0;
    assert_int_equal(cgroup_oom_kills(&cg, &kills, &err), 0);
    assert_true(kills >= 1);
    assert_int_equal(cgroup_max_usage(&cg, &peak, &err), 0);
    assert_true(peak >= (30u << 20));
    assert_int_equal(cgroup_reset_max_usage(&cg, &err), 0);
    cgroup_destroy(&cg);
}

/* Forks a child that joins cg and sleeps; returns once it is in the group. */
static pid_t start_member(struct nb_cgroup *cg)
{
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        join(cg);
        close(ready[0]);
        close(ready[1]);
        for (;;)
            pause();
    }
    close(ready[1]);
    char c;
    assert_int_equal(read(ready[0], &c, 1), 0); /* child joined (closed its end) */
    close(ready[0]);
    return pid;
}

static void test_destroy_kills_leftovers(void **state)
{
    (void)state;
    struct nb_cgroup cg;
    struct nb_err err = {0};
    struct nb_cgroup_limits lim = {.memory_bytes = 64u << 20, .pids_max = 8};
    assert_int_equal(cgroup_create(&cg, "test-left", &lim, &err), 0);
    pid_t pid = start_member(&cg);
    char *mem = xstrdup(cg.dirs[0]);
    cgroup_destroy(&cg);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_false(exists(mem));
    free(mem);
}

static void test_setup_sweeps_stale(void **state)
{
    (void)state;
    struct nb_cgroup cg;
    struct nb_err err = {0};
    struct nb_cgroup_limits lim = {.memory_bytes = 64u << 20, .pids_max = 8};
    assert_int_equal(cgroup_create(&cg, "stale", &lim, &err), 0);
    pid_t pid = start_member(&cg);
    /* A "restart": setup under the same parent kills the process and removes the group. */
    assert_int_equal(cgroup_setup_at(parent, &err), 0);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    for (int i = 0; i < 3; i++)
        assert_false(exists(cg.dirs[i]));
    cgroup_destroy(&cg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_limits_destroy),
        cmocka_unit_test(test_set_limits),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_oom_kill),
        cmocka_unit_test(test_destroy_kills_leftovers),
        cmocka_unit_test(test_setup_sweeps_stale),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * test_seccomp.c - the compiled sandbox filter (seccomp.c): it builds, and a forked child that
 * loads it gets EPERM from the denied calls, ENOSYS from clone3, is killed for a foreign-ABI
 * (x32, i386) syscall, and can still do ordinary things (getpid, fork without namespace flags).
 * Runs as root, so an EPERM here comes from the filter, not from missing privileges.
 */
#include <errno.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "seccomp.h"
#include "util.h"

static struct sock_fprog prog;

static int setup(void **state)
{
    (void)state;
    struct nb_err err = {0};
    if (seccomp_build(&prog, &err) < 0) {
        fprintf(stderr, "seccomp_build: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(prog.filter);
    return 0;
}

static void test_builds(void **state)
{
    (void)state;
    assert_non_null(prog.filter);
    assert_true(prog.len > 10);
    assert_true(prog.len < BPF_MAXINSNS);
}

/* Runs fn in a child under the filter; returns the child's wait status. fn returns 0 on success
 * or the line number of the failed check. */
static int run_filtered(int (*fn)(void))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
            _exit(200);
        _exit(fn());
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

#define EXPECT_ERRNO(call, e)                                                                      \
    do {                                                                                           \
        errno = 0;                                                                                 \
        if ((call) != -1 || errno != (e))                                                          \
            return __LINE__; /* < 256: the exit code names the failed check */                     \
    } while (0)

static int denied_calls(void)
{
    EXPECT_ERRNO(mount("none", "/mnt", "tmpfs", 0, NULL), EPERM);
    EXPECT_ERRNO(umount2("/proc", MNT_DETACH), EPERM);
    EXPECT_ERRNO(unshare(CLONE_NEWNS), EPERM);
    EXPECT_ERRNO(unshare(CLONE_NEWUSER), EPERM);
    EXPECT_ERRNO(setns(0, 0), EPERM);
    EXPECT_ERRNO(ptrace(PTRACE_TRACEME, 0, NULL, NULL), EPERM);
    EXPECT_ERRNO(syscall(SYS_bpf, 0, NULL, 0), EPERM);
    EXPECT_ERRNO(syscall(SYS_keyctl, 0, 0, 0, 0, 0), EPERM);
    EXPECT_ERRNO(syscall(SYS_pivot_root, "/", "/"), EPERM);
    EXPECT_ERRNO(chroot("/"), EPERM);
    EXPECT_ERRNO(syscall(SYS_io_uring_setup, 1, NULL), EPERM);
    EXPECT_ERRNO(syscall(SYS_userfaultfd, 0), EPERM);
    EXPECT_ERRNO(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0), EPERM);
    EXPECT_ERRNO(syscall(SYS_mknodat, -100, "/tmp/x", 0, 0), EPERM);
    /* clone with a namespace flag: EPERM; clone3 at all: ENOSYS. */
    EXPECT_ERRNO(syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0), EPERM);
    EXPECT_ERRNO(syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0), EPERM);
    struct clone_args ca = {.exit_signal = SIGCHLD};
    EXPECT_ERRNO(syscall(SYS_clone3, &ca, sizeof(ca)), ENOSYS);
    return 0;
}

static int allowed_calls(void)
{
    if (getpid() <= 0)
        return 1;
    /* fork() (clone without namespace flags) still works, and so does waiting for it. */
    pid_t p = fork();
    if (p < 0)
        return 2;
    if (p == 0)
        _exit(42);
    int st;
    if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 42)
        return 3;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 4;
    fclose(f);
    return 0;
}

static int foreign_abi(void)
{
    /* x32 getpid on x86_64: the filter must kill the process, not let it through. */
    syscall(0x40000000 + 39);
    return 1;
}

static int foreign_abi_i386(void)
{
#if defined(__x86_64__)
    /* i386 getpid through int 0x80: audit arch I386, also foreign. */
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
    (void)ret;
#endif
    return 1;
}

static void test_denied(void **state)
{
    (void)state;
    int st = run_filtered(denied_calls);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("denied_calls failed: status %#x (exit code = line of the check)", st);
}

static void test_allowed(void **state)
{
    (void)state;
    int st = run_filtered(allowed_calls);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_foreign_abi_killed(void **state)
{
    (void)state;
#if defined(__x86_64__)
    int st = run_filtered(foreign_abi);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGSYS);
    st = run_filtered(foreign_abi_i386);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGSYS);
#else
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builds),
        cmocka_unit_test(test_denied),
        cmocka_unit_test(test_allowed),
        cmocka_unit_test(test_foreign_abi_killed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * test_fdpass.c - unit tests for fdpass.c: a message arrives as head then payload with its fds
 * (CLOEXEC, usable); fds past what the receiver takes are closed or dropped, never leaked, and
 * MSG_CTRUNC says so when they did not fit; MSG_TRUNC, EAGAIN and end of file are reported.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdpass.h"

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void socks(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

static void test_roundtrip(void **state)
{
    (void)state;
    int sv[2], p[2];
    socks(sv);
    assert_int_equal(pipe(p), 0);
    uint64_t head = 0x1122334455667788u;
    assert_int_equal(fdpass_send(sv[0], &head, sizeof(head), "body", 4, p, 2, 0), 0);
    char buf[64];
    int fds[FDPASS_FDS_MAX];
    size_t nfds = 9;
    int mflags = -1;
    assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), 0, fds, 2, &nfds, &mflags), 12);
    assert_false(mflags & (MSG_TRUNC | MSG_CTRUNC));
    assert_memory_equal(buf, &head, sizeof(head));
    assert_memory_equal(buf + 8, "body", 4);
    assert_int_equal(nfds, 2);
    for (size_t i = 0; i < 2; i++)
        assert_true(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
    assert_int_equal(write(fds[1], "x", 1), 1); /* the pipe's write end, passed */
    char c = 0;
    assert_int_equal(read(p[0], &c, 1), 1);
    assert_int_equal(c, 'x');
    /* head only, no fds */
    assert_int_equal(fdpass_send(sv[0], "hd", 2, NULL, 0, NULL, 0, 0), 0);
    assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), 0, fds, 2, &nfds, &mflags), 2);
    assert_int_equal(nfds, 0);
    for (int i = 0; i < 2; i++) {
        close(fds[i]);
        close(p[i]);
    }
    close(sv[0]);
    close(sv[1]);
}

/* Sends n of out, receives taking at most max; checks how many were handed out and MSG_CTRUNC,
 * closes them, and checks that no fd is left open beyond the count before. */
static void pass_and_count(const int sv[2], const int *out, size_t n, size_t max, size_t want,
                           bool want_ctrunc)
{
    int before = count_fds();
    char buf[16];
    int fds[FDPASS_FDS_MAX];
    size_t nfds = 0;
    int mflags = 0;
    assert_int_equal(fdpass_send(sv[0], "m", 1, NULL, 0, out, n, 0), 0);
    assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), 0, fds, max, &nfds, &mflags), 1);
    assert_int_equal(nfds, want);
    assert_int_equal(!!(mflags & MSG_CTRUNC), want_ctrunc);
    for (size_t i = 0; i < nfds; i++)
        close(fds[i]);
    assert_int_equal(count_fds(), before);
}

static void test_extra_fds_never_leak(void **state)
{
    (void)state;
    int sv[2], p[2], q[2], r[2];
    socks(sv);
    assert_int_equal(pipe(p), 0);
    assert_int_equal(pipe(q), 0);
    assert_int_equal(pipe(r), 0);
    int out[5] = {p[0], p[1], q[0], q[1], r[0]};
    /* 4 fit the control buffer for 3 (CMSG_SPACE rounds up): the 4th is closed, no MSG_CTRUNC */
    pass_and_count(sv, out, 4, 3, 3, false);
    /* 5 do not: the kernel drops the 5th and says so */
    pass_and_count(sv, out, 5, 3, 3, true);
    /* none taken at all: no room either */
    pass_and_count(sv, out, 1, 0, 0, true);
    for (int i = 0; i < 2; i++) {
        close(p[i]);
        close(q[i]);
        close(r[i]);
    }
    close(sv[0]);
    close(sv[1]);
}

static void test_trunc_eagain_eof(void **state)
{
    (void)state;
    int sv[2];
    socks(sv);
    char buf[4];
    int fds[1];
    size_t nfds = 0;
    int mflags = 0;
    assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT, fds, 1, &nfds, &mflags),
                     -EAGAIN);
    assert_int_equal(fdpass_send(sv[0], "0123", 4, "4567", 4, NULL, 0, 0), 0);
    assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), 0, fds, 1, &nfds, &mflags), 4);
    assert_true(mflags & MSG_TRUNC);
    assert_memory_equal(buf, "0123", 4);
    close(sv[0]);
    assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), 0, fds, 1, &nfds, &mflags), 0);
    assert_int_equal(fdpass_send(sv[1], "x", 1, NULL, 0, NULL, 0, 0), -EPIPE); /* no SIGPIPE */
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_extra_fds_never_leak),
        cmocka_unit_test(test_trunc_eagain_eof),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

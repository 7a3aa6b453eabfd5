/*
 * test_sandbox.c - the real spawner (spawner.c) building real sandboxes (sandbox.c), driven from
 * a libuv loop as the daemon does. Runs as root. Each test starts its own spawner (this process
 * has no threads, as spawner_start requires) and stops it at the end.
 *
 * Checked from inside a sandbox (sh scripts): unprivileged uid, read-only /var/task and /, no
 * host files, writable /tmp, no capabilities, no_new_privs, seccomp mode 2, hostname, pid 1 is
 * our init, only lo, cgroup namespace; from outside: exit statuses through exit_cb, spawn errors
 * (never hangs), kills through the pidfd, and no sandbox survives spawner_stop, the daemon's
 * death or the spawner's death. Parked sandboxes: in their groups before the spawn, continued by
 * a spawn (the same process, same checks from inside), usable once, killed by unpark and by
 * spawner_stop, and bad park ids or cgroups fail cleanly. Host paths used: a temp dir under /tmp
 * and the cgroup parent "test-nimbus-sbx-<pid>", both removed at the end.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "cgroup.h"
#include "sandbox.h"
#include "spawner.h"
#include "util.h"
#include "zygote.h"

#define UID 61051
#define GID 61052
#define PORT 9001

static char base[64];     /* /tmp/nimbus-sbx-XXXXXX (host only) */
static char code_dir[96]; /* base/code -> /var/task */
static char rt_dir[96];   /* base/runtime -> /var/runtime */
static char secret[128];  /* base/data/secret: must stay invisible */
static char cg_parent[64];

/* ---- fixture ---------------------------------------------------------------------------- */

struct fx {
    struct nb_spawner *sp;
    uv_loop_t loop;
};

struct run {
    bool spawned, exited, done;
    int rc;
    struct nb_err err;
    struct nb_spawned res;
    int wstatus;
    int exit_calls;
};

struct netns {
    bool done;
    int rc, ns, listen, unix_l;
    struct nb_err err;
};

static void write_text(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, text, strlen(text)), 0);
    close(fd);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(base, sizeof(base), "/tmp/nimbus-sbx-XXXXXX");
    if (!mkdtemp(base))
        return -1;
    chmod(base, 0755);
    snprintf(code_dir, sizeof(code_dir), "%s/code", base);
    snprintf(rt_dir, sizeof(rt_dir), "%s/runtime", base);
    snprintf(secret, sizeof(secret), "%s/data/secret", base);
    char data[128];
    snprintf(data, sizeof(data), "%s/data", base);
    if (mkdir(code_dir, 0755) || mkdir(rt_dir, 0755) || mkdir(data, 0700))
        return -1;
    char p[160];
    snprintf(p, sizeof(p), "%s/hello.txt", code_dir);
    write_text(p, "hello from task\n", 0644);
    snprintf(p, sizeof(p), "%s/rt.txt", rt_dir);
    write_text(p, "hello from runtime\n", 0644);
    write_text(secret, "secret\n", 0600);
    snprintf(cg_parent, sizeof(cg_parent), "test-nimbus-sbx-%d", (int)getpid());
    struct nb_err err = {0};
    if (cgroup_setup_at(cg_parent, &err) < 0) {
        fprintf(stderr, "cgroup_setup_at: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    rm_rf(base);
    static const char *const ctrls[] = {"memory", "pids", "cpu"};
    for (size_t i = 0; i < ARRAY_SIZE(ctrls); i++) {
        char d[160];
        /* the group a failed test_view_from_inside may have left, then the parent */
        snprintf(d, sizeof(d), "/sys/fs/cgroup/%s/%s/test-view", ctrls[i], cg_parent);
        rmdir(d);
        snprintf(d, sizeof(d), "/sys/fs/cgroup/%s/%s/test-live", ctrls[i], cg_parent);
        rmdir(d);
        snprintf(d, sizeof(d), "/sys/fs/cgroup/%s/%s/test-park", ctrls[i], cg_parent);
        rmdir(d);
        snprintf(d, sizeof(d), "/sys/fs/cgroup/%s/%s", ctrls[i], cg_parent);
        rmdir(d);
    }
    return 0;
}

static int fx_setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    struct nb_err err = {0};
    f->sp = spawner_start(&err);
    if (!f->sp) {
        fprintf(stderr, "spawner_start: %s\n", err.msg);
        free(f);
        return -1;
    }
    uv_loop_init(&f->loop);
    if (spawner_attach(f->sp, &f->loop, &err) < 0)
        return -1;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    if (f->sp)
        spawner_stop(f->sp);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* close callbacks */
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static void tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until *flag or ms pass; returns *flag. */
static bool run_until(uv_loop_t *loop, const bool *flag, int ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, tick, 5, 5);
    uint64_t end = mono_ns() + (uint64_t)ms * 1000000;
    while (!*flag && mono_ns() < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag;
}

static void on_spawn(void *data, int rc, const struct nb_spawned *res, const struct nb_err *err)
{
    struct run *r = data;
    r->rc = rc;
    if (rc == 0) {
        r->spawned = true;
        r->res = *res;
    } else {
        r->err = *err;
        r->done = true;
    }
}

static void on_exit_cb(void *data, int wstatus)
{
    struct run *r = data;
    ASSERT(r->spawned); /* exit_cb never before spawn_cb */
    r->exited = r->done = true;
    r->wstatus = wstatus;
    r->exit_calls++;
}

struct park {
    bool done;
    int rc;
    uint64_t id;
    struct nb_err err;
};

static void on_park(void *data, int rc, uint64_t id, const struct nb_err *err)
{
    struct park *p = data;
    ASSERT(!p->done); /* exactly once */
    p->done = true;
    p->rc = rc;
    p->id = id;
    if (err)
        p->err = *err;
}

static void on_netns(void *data, int rc, int ns, int listen, int unix_l, const struct nb_err *err)
{
    struct netns *n = data;
    n->done = true;
    n->rc = rc;
    n->ns = ns;
    n->listen = listen;
    n->unix_l = unix_l;
    if (err)
        n->err = *err;
}

static struct nb_sandbox_spec spec_for(const char *const *argv, int netns_fd,
                                       const char *const *cgroups)
{
    static const char *const env[] = {"PATH=/usr/bin:/bin", "FOO=bar baz", NULL};
    return (struct nb_sandbox_spec){
        .code_dir = code_dir,
        .runtime_dir = rt_dir,
        .argv = argv,
        .envp = env,
        .netns_fd = netns_fd,
        .cgroup_dirs = cgroups,
        .uid = UID,
        .gid = GID,
        .tmp_bytes = 8u << 20,
        .hostname = "fn-test",
    };
}

static void make_netns(struct fx *f, struct netns *n)
{
    struct nb_err err = {0};
    memset(n, 0, sizeof(*n));
    assert_int_equal(spawner_make_netns(f->sp, PORT, on_netns, n, &err), 0);
    assert_true(run_until(&f->loop, &n->done, 5000));
    if (n->rc)
        fail_msg("make_netns: %s", n->err.msg);
    assert_true(n->ns >= 0 && n->listen >= 0 && n->unix_l >= 0);
}

/* Reads everything left in a non-blocking pipe whose writers are gone. */
static char *drain(int fd)
{
    struct nb_buf b = NB_BUF_INIT;
    char chunk[4096];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n > 0) {
            buf_append(&b, chunk, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        break;
    }
    return buf_detach(&b, NULL);
}

static void close_run(struct run *r)
{
    if (r->spawned) {
        close(r->res.pidfd);
        close(r->res.stdout_fd);
        close(r->res.stderr_fd);
    }
}

static void spawn_ok(struct fx *f, const struct nb_sandbox_spec *spec, struct run *r)
{
    struct nb_err err = {0};
    memset(r, 0, sizeof(*r));
    assert_int_equal(spawner_spawn(f->sp, spec, on_spawn, on_exit_cb, r, &err), 0);
    assert_true(run_until(&f->loop, &r->spawned, 5000) || r->done);
    if (r->rc)
        fail_msg("spawn failed: %s", r->err.msg);
}

/* out must contain line as a whole line. */
static void expect_line(const char *out, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = out; (p = strstr(p, line)); p++)
        if ((p == out || p[-1] == '\n') && p[n] == '\n')
            return;
    fail_msg("missing line '%s' in output:\n%s", line, out);
}

static bool pidfd_gone(int pidfd, int ms)
{
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}

/* ---- tests ------------------------------------------------------------------------------ */

static const char view_script[] =
    "echo uid=$(id -u) gid=$(id -g) user=$(id -un) groups=$(id -G)\n"
    "echo pid=$$ init=$(cat /proc/1/comm) ppid=$PPID\n"
    "if touch /var/task/x 2>/dev/null; then echo task=rw; else echo task=ro; fi\n"
    "if touch /x 2>/dev/null; then echo root=rw; else echo root=ro; fi\n"
    "if touch /etc/x 2>/dev/null; then echo etc=rw; else echo etc=ro; fi\n"
    "if touch /usr/x 2>/dev/null; then echo usr=rw; else echo usr=ro; fi\n"
    "cat /var/task/hello.txt /var/runtime/rt.txt\n"
    "for p in /root /work /home /sys /run /var/lib \"$SECRET\" \"$(dirname \"$SECRET\")\"; do\n"
    "  test -e \"$p\" && echo visible=$p\n"
    "done\n"
    "echo hi > /tmp/f && echo tmp=$(cat /tmp/f) tmpmode=$(stat -c %a /tmp)\n"
    "echo x > /dev/null && echo devnull=ok\n"
    "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status "
    "| tr -d ' \\t'\n"
    "echo host=$(uname -n) etchost=$(cat /etc/hostname)\n"
    "echo ifaces=$(sed -n '3,$p' /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ,)\n"
    "echo cg_not_root=$(grep -vc ':/$' /proc/self/cgroup)\n"
    "echo nprocs=$(ls /proc | grep -c '^[0-9]')\n"
    "echo env=\"$FOO\" cwd=$(pwd) core=$(ulimit -c)\n"
    "echo fds=$(ls /proc/self/fd | tr '\\n' ,)\n"
    /* every mount (ids and device numbers vary): what, where, per-mount and superblock options */
    "sed -E 's/^[0-9]+ [0-9]+ [0-9]+:[0-9]+ /mnt: /' /proc/self/mountinfo\n"
    "echo err-line >&2\n"
    "exit 7\n";

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What view_script showed, checked; returns its mount lines (malloc'd). */
static char *check_view(struct run *r)
{
    assert_true(r->res.pid > 0);
    assert_true(WIFEXITED(r->wstatus));
    assert_int_equal(WEXITSTATUS(r->wstatus), 7);
    char *out = drain(r->res.stdout_fd), *errout = drain(r->res.stderr_fd);

    expect_line(out, "uid=61051 gid=61052 user=sbx_user1051 groups=61052");
    expect_line(out, "pid=2 init=nimbus-init ppid=1");
    expect_line(out, "task=ro");
    expect_line(out, "root=ro");
    expect_line(out, "etc=ro");
    expect_line(out, "usr=ro");
    expect_line(out, "hello from task");
    expect_line(out, "hello from runtime");
    if (strstr(out, "visible="))
        fail_msg("host paths visible inside the sandbox:\n%s", out);
    expect_line(out, "tmp=hi tmpmode=1777");
    expect_line(out, "devnull=ok");
    expect_line(out, "CapInh:0000000000000000");
    expect_line(out, "CapPrm:0000000000000000");
    expect_line(out, "CapEff:0000000000000000");
    expect_line(out, "CapBnd:0000000000000000");
    expect_line(out, "CapAmb:0000000000000000");
    expect_line(out, "NoNewPrivs:1");
    expect_line(out, "Seccomp:2");
    expect_line(out, "host=fn-test etchost=fn-test");
    expect_line(out, "ifaces=lo,");
    expect_line(out, "cg_not_root=0"); /* cgroup namespace rooted at its own group */
    expect_line(out, "env=bar baz cwd=/var/task core=0");
    expect_line(out, "fds=0,1,2,3,"); /* stdio and ls's own: nothing from the host */
    assert_string_equal(errout, "err-line\n");
    int np = atoi(strstr(out, "nprocs=") + 7);
    assert_true(np >= 2 && np < 10);
    /* the mount lines, sorted (the order of the mounts is not what matters) */
    char *lines[128], *save = NULL;
    size_t n = 0;
    for (char *l = strtok_r(out, "\n", &save); l && n < ARRAY_SIZE(lines);
         l = strtok_r(NULL, "\n", &save))
        if (!strncmp(l, "mnt: ", 5))
            lines[n++] = l;
    qsort(lines, n, sizeof(*lines), cmp_str);
    struct nb_buf mnt = NB_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        buf_append(&mnt, lines[i], strlen(lines[i]));
        buf_append(&mnt, "\n", 1);
    }
    buf_append(&mnt, "", 1);
    assert_non_null(strstr(mnt.data, " /var/task ro,nosuid,nodev"));
    assert_non_null(strstr(mnt.data, " /var/runtime ro,nosuid,nodev"));
    assert_non_null(strstr(mnt.data, " /etc ro,nosuid,nodev,noexec"));
    assert_non_null(strstr(mnt.data, "/ / ro,nosuid,nodev"));
    assert_non_null(strstr(mnt.data, " /tmp rw,nosuid,nodev"));
    assert_non_null(strstr(mnt.data, "size=8192k"));
    free(out);
    free(errout);
    return (char *)mnt.data;
}

static void test_view_from_inside(void **state)
{
    struct fx *f = *state;
    struct netns n;
    make_netns(f, &n);
    struct nb_cgroup cg;
    struct nb_err err = {0};
    struct nb_cgroup_limits lim = {.memory_bytes = 128u << 20, .pids_max = 64};
    assert_int_equal(cgroup_create(&cg, "test-view", &lim, &err), 0);

    char *script = xasprintf("SECRET=%s\n%s", secret, view_script);
    const char *argv[] = {"/usr/bin/sh", "-c", script, NULL};
    struct nb_sandbox_spec spec = spec_for(argv, n.ns, (const char *const *)cg.dirs);
    struct run r;
    spawn_ok(f, &spec, &r);
    assert_true(run_until(&f->loop, &r.exited, 5000));
    free(check_view(&r));

    uint64_t peak = 0;
    assert_int_equal(cgroup_max_usage(&cg, &peak, &err), 0);
    assert_true(peak > 0); /* the sandbox was charged to its group */
    free(script);
    close_run(&r);
    cgroup_destroy(&cg);
    close(n.ns);
    close(n.listen);
    close(n.unix_l);
}

static void test_runtime_api_socket(void **state)
{
    struct fx *f = *state;
    struct netns n;
    make_netns(f, &n);
    /* A listener in the host netns the sandbox must NOT reach. */
    int host = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(host, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(host, 4), 0);
    socklen_t sl = sizeof(sin);
    getsockname(host, (struct sockaddr *)&sin, &sl);
    /* An abstract Unix listener in the host netns: abstract names are per netns. */
    char host_name[64];
    snprintf(host_name, sizeof(host_name), "nimbus-test-host-%d", (int)getpid());
    int uhost = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    memcpy(sun.sun_path + 1, host_name, strlen(host_name));
    socklen_t ul = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(host_name));
    assert_int_equal(bind(uhost, (struct sockaddr *)&sun, ul), 0);
    assert_int_equal(listen(uhost, 4), 0);
    char *py = xasprintf(
        "import socket\n"
        "s = socket.create_connection(('127.0.0.1', %d)); s.sendall(b'ping'); s.close()\n"
        "u = socket.socket(socket.AF_UNIX); u.connect('\\0%s'); u.sendall(b'pong'); u.close()\n"
        "try:\n"
        "    socket.create_connection(('127.0.0.1', %d), timeout=1); print('host=reached')\n"
        "except OSError as e:\n"
        "    print('host=' + type(e).__name__)\n"
        "try:\n"
        "    socket.socket(socket.AF_UNIX).connect('\\0%s'); print('uhost=reached')\n"
        "except OSError as e:\n"
        "    print('uhost=' + type(e).__name__)\n",
        PORT, NB_RUNTIME_API_SOCKET, ntohs(sin.sin_port), host_name);
    const char *argv[] = {"/usr/bin/python3", "-I", "-S", "-c", py, NULL};
    struct nb_sandbox_spec spec = spec_for(argv, n.ns, NULL);
    struct run r;
    spawn_ok(f, &spec, &r);
    assert_true(run_until(&f->loop, &r.exited, 10000));
    char *out = drain(r.res.stdout_fd), *errout = drain(r.res.stderr_fd);
    if (!WIFEXITED(r.wstatus) || WEXITSTATUS(r.wstatus) != 0)
        fail_msg("python failed (status %#x): %s%s", r.wstatus, out, errout);
    assert_string_equal(out, "host=ConnectionRefusedError\nuhost=ConnectionRefusedError\n");
    /* The connection waits in the listener's backlog, served from the host netns. */
    int c = accept4(n.listen, NULL, NULL, SOCK_CLOEXEC);
    assert_true(c >= 0);
    char buf[8] = {0};
    assert_int_equal(read(c, buf, sizeof(buf)), 4);
    assert_string_equal(buf, "ping");
    close(c);
    /* and the Unix one in the abstract listener made in that netns */
    c = accept4(n.unix_l, NULL, NULL, SOCK_CLOEXEC);
    assert_true(c >= 0);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(read(c, buf, sizeof(buf)), 4);
    assert_string_equal(buf, "pong");
    close(c);
    close(uhost);
    close(host);
    free(py);
    free(out);
    free(errout);
    close_run(&r);
    close(n.ns);
    close(n.listen);
    close(n.unix_l);
}

static void expect_spawn_error(struct fx *f, const struct nb_sandbox_spec *spec, int code,
                               const char *text)
{
    struct nb_err err = {0};
    struct run r = {0};
    assert_int_equal(spawner_spawn(f->sp, spec, on_spawn, on_exit_cb, &r, &err), 0);
    assert_true(run_until(&f->loop, &r.done, 5000));
    assert_false(r.spawned);
    if (r.rc != -code || !strstr(r.err.msg, text))
        fail_msg("want error %d containing '%s', got %d '%s'", code, text, r.rc, r.err.msg);
    /* exit_cb never follows a failed spawn */
    bool never = false;
    run_until(&f->loop, &never, 50);
    assert_int_equal(r.exit_calls, 0);
}

/* A spawn refused by the call itself: no callback follows. */
static void expect_spawn_refused(struct fx *f, const struct nb_sandbox_spec *spec, int code,
                                 const char *text)
{
    struct nb_err err = {0};
    struct run r = {0};
    int rc = spawner_spawn(f->sp, spec, on_spawn, on_exit_cb, &r, &err);
    if (rc != -code || !strstr(err.msg, text))
        fail_msg("want refusal %d containing '%s', got %d '%s'", code, text, rc, err.msg);
    bool never = false;
    run_until(&f->loop, &never, 50);
    assert_false(r.done);
}

static void test_spawn_errors(void **state)
{
    struct fx *f = *state;
    const char *missing[] = {"/var/task/missing", NULL};
    struct nb_sandbox_spec spec = spec_for(missing, -1, NULL);
    expect_spawn_error(f, &spec, ENOENT, "cannot execute '/var/task/missing'");

    const char *notexec[] = {"/var/task/hello.txt", NULL};
    spec = spec_for(notexec, -1, NULL);
    expect_spawn_error(f, &spec, EACCES, "cannot execute");

    const char *sh[] = {"/usr/bin/true", NULL};
    spec = spec_for(sh, -1, NULL);
    spec.code_dir = "/nonexistent/code";
    expect_spawn_error(f, &spec, ENOENT, "cannot bind '/nonexistent/code'");

    const char *bad_cg[] = {"/sys/fs/cgroup/memory/no-such-group", NULL};
    spec = spec_for(sh, -1, bad_cg);
    expect_spawn_error(f, &spec, ENOENT, "cannot attach to cgroup");

    /* Not a network namespace: setns fails in the child; the spawner survives. */
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    spec = spec_for(sh, p[0], NULL);
    expect_spawn_error(f, &spec, EINVAL, "cannot join the network namespace");
    close(p[0]);
    close(p[1]);

    /* The host's own network namespace is refused (fail closed). */
    int hostns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_true(hostns >= 0);
    spec = spec_for(sh, hostns, NULL);
    expect_spawn_error(f, &spec, EINVAL, "host network namespace");
    close(hostns);

    /* Refused before sending: bad spec. */
    struct nb_err err = {0};
    struct run r = {0};
    spec = spec_for(sh, -1, NULL);
    spec.uid = 0;
    assert_int_equal(spawner_spawn(f->sp, &spec, on_spawn, on_exit_cb, &r, &err), -EINVAL);
    const char *rel[] = {"true", NULL};
    spec = spec_for(rel, -1, NULL);
    assert_int_equal(spawner_spawn(f->sp, &spec, on_spawn, on_exit_cb, &r, &err), -EINVAL);
    spec = spec_for(sh, -1, NULL);
    spec.tmp_bytes = 0;
    assert_int_equal(spawner_spawn(f->sp, &spec, on_spawn, on_exit_cb, &r, &err), -EINVAL);
    assert_int_equal(spawner_make_netns(f->sp, 0, on_netns, NULL, &err), -EINVAL);

    /* After all that, the spawner still works. */
    spec = spec_for(sh, -1, NULL);
    spawn_ok(f, &spec, &r);
    assert_true(run_until(&f->loop, &r.exited, 5000));
    assert_true(WIFEXITED(r.wstatus) && WEXITSTATUS(r.wstatus) == 0);
    close_run(&r);
}

static void test_kill(void **state)
{
    struct fx *f = *state;
    const char *argv[] = {"/usr/bin/sleep", "100", NULL};
    struct nb_sandbox_spec spec = spec_for(argv, -1, NULL);
    struct run r;
    spawn_ok(f, &spec, &r);
    assert_int_equal(spawner_kill(r.res.pidfd, SIGKILL), 0);
    assert_true(run_until(&f->loop, &r.exited, 5000));
    assert_true(WIFSIGNALED(r.wstatus));
    assert_int_equal(WTERMSIG(r.wstatus), SIGKILL);
    assert_int_equal(r.exit_calls, 1);
    assert_int_equal(spawner_kill(r.res.pidfd, SIGKILL), -ESRCH);
    close_run(&r);

    /* SIGTERM is forwarded by the init to the runtime, which dies of it: 128 + 15. */
    spawn_ok(f, &spec, &r);
    bool never = false;
    run_until(&f->loop, &never, 30); /* let sleep start */
    assert_int_equal(spawner_kill(r.res.pidfd, SIGTERM), 0);
    assert_true(run_until(&f->loop, &r.exited, 5000));
    assert_true(WIFEXITED(r.wstatus));
    assert_int_equal(WEXITSTATUS(r.wstatus), 128 + SIGTERM);
    close_run(&r);
}

static void test_many_concurrent(void **state)
{
    struct fx *f = *state;
    enum { N = 24 };
    struct run r[N];
    const char *argv[] = {"/usr/bin/sh", "-c", "echo $$; exit 3", NULL};
    struct nb_sandbox_spec spec = spec_for(argv, -1, NULL);
    struct nb_err err = {0};
    memset(r, 0, sizeof(r));
    for (int i = 0; i < N; i++)
        assert_int_equal(spawner_spawn(f->sp, &spec, on_spawn, on_exit_cb, &r[i], &err), 0);
    uint64_t end = mono_ns() + 10000000000ull;
    for (int i = 0; i < N; i++) {
        while (!r[i].done && mono_ns() < end) {
            bool never = false;
            run_until(&f->loop, &never, 5);
        }
        if (r[i].rc)
            fail_msg("spawn %d: %s", i, r[i].err.msg);
        assert_true(r[i].exited);
        assert_true(WIFEXITED(r[i].wstatus) && WEXITSTATUS(r[i].wstatus) == 3);
        char *out = drain(r[i].res.stdout_fd);
        assert_string_equal(out, "2\n");
        free(out);
        close_run(&r[i]);
    }
}

static void test_stop_kills_all(void **state)
{
    struct fx *f = *state;
    const char *argv[] = {"/usr/bin/sleep", "100", NULL};
    struct nb_sandbox_spec spec = spec_for(argv, -1, NULL);
    struct run a, b;
    spawn_ok(f, &spec, &a);
    spawn_ok(f, &spec, &b);
    spawner_stop(f->sp);
    f->sp = NULL;
    assert_true(pidfd_gone(a.res.pidfd, 2000));
    assert_true(pidfd_gone(b.res.pidfd, 2000));
    assert_false(a.exited); /* pending callbacks are not called after spawner_stop */
    close_run(&a);
    close_run(&b);
}

/* A restarting daemon's cgroup sweep must not touch groups of a running spawner's sandboxes. */
static void test_sweep_spares_live(void **state)
{
    struct fx *f = *state;
    struct nb_cgroup cg;
    struct nb_err err = {0};
    struct nb_cgroup_limits lim = {.memory_bytes = 64u << 20, .pids_max = 16};
    assert_int_equal(cgroup_create(&cg, "test-live", &lim, &err), 0);
    const char *argv[] = {"/usr/bin/sleep", "100", NULL};
    struct nb_sandbox_spec spec = spec_for(argv, -1, (const char *const *)cg.dirs);
    struct run r;
    spawn_ok(f, &spec, &r);
    assert_int_equal(cgroup_setup_at(cg_parent, &err), 0);
    assert_false(pidfd_gone(r.res.pidfd, 100));
    struct stat st;
    assert_int_equal(stat(cg.dirs[0], &st), 0);
    assert_int_equal(spawner_kill(r.res.pidfd, SIGKILL), 0);
    assert_true(run_until(&f->loop, &r.exited, 5000));
    close_run(&r);
    cgroup_destroy(&cg);
}

static int read_ppid(pid_t pid)
{
    char path[64], *text = NULL;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (read_file(path, &text, NULL) < 0)
        return -1;
    int ppid = -1;
    char *p = strrchr(text, ')');
    if (p)
        sscanf(p + 2, "%*c %d", &ppid);
    free(text);
    return ppid;
}

static void test_spawner_killed(void **state)
{
    struct fx *f = *state;
    const char *argv[] = {"/usr/bin/sleep", "100", NULL};
    struct nb_sandbox_spec spec = spec_for(argv, -1, NULL);
    struct run r;
    spawn_ok(f, &spec, &r);
    int spawner_pid = read_ppid(r.res.pid);
    assert_true(spawner_pid > 1);
    /* Even a SIGKILLed spawner leaves no sandbox behind (their parent-death signal). */
    assert_int_equal(kill(spawner_pid, SIGKILL), 0);
    assert_true(pidfd_gone(r.res.pidfd, 2000));
    /* The daemon side notices: the running sandbox gets its exit_cb, new requests fail. */
    assert_true(run_until(&f->loop, &r.exited, 2000));
    assert_true(WIFSIGNALED(r.wstatus) && WTERMSIG(r.wstatus) == SIGKILL);
    struct nb_err err = {0};
    struct run r2 = {0};
    assert_int_equal(spawner_spawn(f->sp, &spec, on_spawn, on_exit_cb, &r2, &err), -EPIPE);
    close_run(&r);
}

/* A "daemon" in a child process dies abruptly; its spawner must take every sandbox with it. */
static void test_daemon_death(void **state)
{
    (void)state;
    int up[2], go[2];
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(go), 0);
    pid_t daemon = fork();
    assert_true(daemon >= 0);
    if (daemon == 0) {
        struct nb_err err = {0};
        struct nb_spawner *sp = spawner_start(&err);
        uv_loop_t loop;
        uv_loop_init(&loop);
        if (!sp || spawner_attach(sp, &loop, &err) < 0)
            _exit(1);
        const char *argv[] = {"/usr/bin/sleep", "100", NULL};
        struct nb_sandbox_spec spec = spec_for(argv, -1, NULL);
        struct run r = {0};
        if (spawner_spawn(sp, &spec, on_spawn, on_exit_cb, &r, &err) < 0 ||
            !run_until(&loop, &r.spawned, 5000))
            _exit(2);
        pid_t pid = r.res.pid;
        if (write(up[1], &pid, sizeof(pid)) != sizeof(pid))
            _exit(3);
        char c;
        if (read(go[0], &c, 1) < 0)
            _exit(4);
        raise(SIGKILL);
    }
    close(up[1]);
    close(go[0]);
    pid_t sbx = 0;
    assert_int_equal(read(up[0], &sbx, sizeof(sbx)), sizeof(sbx));
    int pidfd = (int)syscall(SYS_pidfd_open, sbx, 0);
    assert_true(pidfd >= 0);
    assert_int_equal(write(go[1], "x", 1), 1);
    int st;
    assert_int_equal(waitpid(daemon, &st, 0), daemon);
    assert_true(WIFSIGNALED(st));
    assert_true(pidfd_gone(pidfd, 3000));
    close(pidfd);
    close(up[0]);
    close(go[1]);
}

/* The daemon end of the spawner socket: this process's only unix SEQPACKET socket. */
static int find_spawner_socket(void)
{
    for (int fd = 3; fd < 1024; fd++) {
        int type = 0, domain = 0;
        socklen_t l = sizeof(type);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) == 0 && type == SOCK_SEQPACKET &&
            getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l) == 0 && domain == AF_UNIX)
            return fd;
    }
    return -1;
}

static void send_raw(int sock, const void *buf, size_t len, int fd)
{
    struct iovec iov = {(void *)buf, len};
    union {
        char b[CMSG_SPACE(sizeof(int) * 2)];
        struct cmsghdr align;
    } cm;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(&cm, 0, sizeof(cm));
        mh.msg_control = cm.b;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * 2);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * 2);
        int two[2] = {fd, fd};
        memcpy(CMSG_DATA(c), two, sizeof(two));
    }
    assert_true(sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)len);
}

/* Garbage straight onto the wire: each is answered (logged by the daemon side as an error for an
 * unknown request) and the spawner keeps serving. */
static void test_garbage_requests(void **state)
{
    struct fx *f = *state;
    int sock = find_spawner_socket();
    assert_true(sock >= 0);
    struct {
        uint32_t type;
        int32_t arg;
        uint64_t id;
        char payload[64];
    } m;
    memset(&m, 0xa5, sizeof(m));
    send_raw(sock, &m, 3, -1);      /* shorter than a header */
    m.type = 77, m.id = 1ull << 60; /* unknown type */
    send_raw(sock, &m, 16, -1);
    m.type = 1; /* SPAWN with a garbage spec */
    send_raw(sock, &m, sizeof(m), -1);
    send_raw(sock, &m, 16, -1); /* SPAWN with no spec at all */
    m.type = 2, m.arg = 9001;   /* MAKE_NETNS carrying fds */
    send_raw(sock, &m, 16, STDERR_FILENO);
    m.type = 2, m.arg = -5; /* MAKE_NETNS with a bad port */
    send_raw(sock, &m, 16, -1);
    m.type = 3, m.arg = 9; /* KILL for an unknown id: ignored */
    send_raw(sock, &m, 16, -1);
    bool never = false;
    run_until(&f->loop, &never, 100);
    const char *argv[] = {"/usr/bin/true", NULL};
    struct nb_sandbox_spec spec = spec_for(argv, -1, NULL);
    struct run r;
    spawn_ok(f, &spec, &r);
    assert_true(run_until(&f->loop, &r.exited, 5000));
    assert_true(WIFEXITED(r.wstatus) && WEXITSTATUS(r.wstatus) == 0);
    close_run(&r);
}

struct stop_in_cb {
    struct fx *f;
    struct run r;
};

static void on_spawn_then_stop(void *data, int rc, const struct nb_spawned *res,
                               const struct nb_err *err)
{
    struct stop_in_cb *s = data;
    on_spawn(&s->r, rc, res, err);
    spawner_stop(s->f->sp);
    s->f->sp = NULL;
}

static void test_stop_inside_callback(void **state)
{
    struct fx *f = *state;
    const char *argv[] = {"/usr/bin/sleep", "100", NULL};
    struct nb_sandbox_spec spec = spec_for(argv, -1, NULL);
    struct stop_in_cb s = {.f = f};
    struct nb_err err = {0};
    assert_int_equal(spawner_spawn(f->sp, &spec, on_spawn_then_stop, on_exit_cb, &s, &err), 0);
    assert_true(run_until(&f->loop, &s.r.spawned, 5000));
    assert_null(f->sp);
    assert_true(pidfd_gone(s.r.res.pidfd, 2000));
    close_run(&s.r);
}

/* ---- parked sandboxes ------------------------------------------------------------------ */

static uint64_t park_spec_ok(struct fx *f, const struct nb_park_spec *ps)
{
    struct park p = {0};
    struct nb_err err = {0};
    assert_int_equal(spawner_park(f->sp, ps, on_park, &p, &err), 0);
    assert_true(run_until(&f->loop, &p.done, 5000));
    if (p.rc)
        fail_msg("park failed: %s", p.err.msg);
    assert_true(p.id != 0);
    return p.id;
}

static int spawner_park_cg(struct fx *f, const char *const *cgroups, nb_park_cb cb, struct park *p,
                           struct nb_err *err)
{
    struct nb_park_spec ps = {.cgroup_dirs = cgroups, .netns_fd = -1};
    return spawner_park(f->sp, &ps, cb, p, err);
}

static uint64_t park_ok(struct fx *f, const char *const *cgroups)
{
    struct nb_park_spec ps = {.cgroup_dirs = cgroups, .netns_fd = -1};
    return park_spec_ok(f, &ps);
}

/* The only process in dir/cgroup.procs, or 0 (none, or more than one). */
static pid_t only_proc(const char *dir)
{
    char *path = xasprintf("%s/cgroup.procs", dir), *text = NULL;
    int r = read_file(path, &text, NULL);
    free(path);
    if (r < 0)
        return 0;
    int pid = 0, n = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        pid = atoi(line), n++;
    free(text);
    return n == 1 ? (pid_t)pid : 0;
}

static char *comm_of(pid_t pid)
{
    char path[64], *text = NULL;
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    if (read_file(path, &text, NULL) < 0)
        return xstrdup("");
    text[strcspn(text, "\n")] = '\0';
    return text;
}

static const char park_script[] = "echo uid=$(id -u) pid=$$ init=$(cat /proc/1/comm)\n"
                                  "echo cg_not_root=$(grep -vc ':/$' /proc/self/cgroup)\n"
                                  "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status "
                                  "| tr -d ' \\t'\n"
                                  "echo host=$(uname -n) task=$(cat /var/task/hello.txt)\n"
                                  "echo ifaces=$(sed -n '3,$p' /proc/net/dev | cut -d: -f1 | "
                                  "tr -d ' ' | tr '\\n' ,)\n"
                                  "exit 5\n";

static void test_park_then_spawn(void **state)
{
    struct fx *f = *state;
    struct nb_cgroup cg;
    struct nb_err err = {0};
    struct nb_cgroup_limits lim = {.memory_bytes = 128u << 20, .pids_max = 64};
    assert_int_equal(cgroup_create(&cg, "test-park", &lim, &err), 0);
    uint64_t id = park_ok(f, (const char *const *)cg.dirs);

    /* Before any spawn, the parked init is already in every group. */
    pid_t parked = only_proc(cg.dirs[0]);
    assert_true(parked > 0);
    for (int i = 1; cg.dirs[i]; i++)
        assert_int_equal(only_proc(cg.dirs[i]), parked);
    char *comm = comm_of(parked);
    assert_string_equal(comm, "nimbus-init");
    free(comm);

    /* The spawn continues that very process, with the pooled netns, as a normal sandbox. */
    struct netns n;
    make_netns(f, &n);
    const char *argv[] = {"/usr/bin/sh", "-c", park_script, NULL};
    struct nb_sandbox_spec spec = spec_for(argv, n.ns, (const char *const *)cg.dirs);
    spec.park_id = id;
    struct run r;
    spawn_ok(f, &spec, &r);
    assert_int_equal(r.res.pid, parked);
    assert_true(run_until(&f->loop, &r.exited, 5000));
    assert_true(WIFEXITED(r.wstatus));
    assert_int_equal(WEXITSTATUS(r.wstatus), 5);
    assert_int_equal(r.exit_calls, 1);
    char *out = drain(r.res.stdout_fd);
    expect_line(out, "uid=61051 pid=2 init=nimbus-init");
    expect_line(out, "cg_not_root=0");
    expect_line(out, "CapEff:0000000000000000");
    expect_line(out, "NoNewPrivs:1");
    expect_line(out, "Seccomp:2");
    expect_line(out, "host=fn-test task=hello from task");
    expect_line(out, "ifaces=lo,");
    free(out);
    uint64_t peak = 0;
    assert_int_equal(cgroup_max_usage(&cg, &peak, &err), 0);
    assert_true(peak > 0);
    close_run(&r);

    /* An id is used once. */
    expect_spawn_error(f, &spec, ESRCH, "no parked sandbox");

    /* Without a netns fd (a fresh, empty one) and without repeating the cgroups. */
    id = park_ok(f, (const char *const *)cg.dirs);
    const char *true_argv[] = {"/usr/bin/sh", "-c", "test $(id -u) = 61051", NULL};
    spec = spec_for(true_argv, -1, NULL);
    spec.park_id = id;
    spawn_ok(f, &spec, &r);
    assert_true(run_until(&f->loop, &r.exited, 5000));
    assert_true(WIFEXITED(r.wstatus) && WEXITSTATUS(r.wstatus) == 0);
    close_run(&r);
    cgroup_destroy(&cg);
    close(n.ns);
    close(n.listen);
    close(n.unix_l);
}

static bool pid_gone(pid_t pid, int ms)
{
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return errno == ESRCH;
    bool gone = pidfd_gone(fd, ms);
    close(fd);
    return gone;
}

static void test_park_unpark(void **state)
{
    struct fx *f = *state;
    struct nb_cgroup cg;
    struct nb_err err = {0};
    struct nb_cgroup_limits lim = {.memory_bytes = 64u << 20, .pids_max = 16};
    assert_int_equal(cgroup_create(&cg, "test-park", &lim, &err), 0);
    uint64_t id = park_ok(f, (const char *const *)cg.dirs);
    pid_t pid = only_proc(cg.dirs[0]);
    assert_true(pid > 0);
    spawner_unpark(f->sp, id);
    assert_true(pid_gone(pid, 2000));
    const char *argv[] = {"/usr/bin/true", NULL};
    struct nb_sandbox_spec spec = spec_for(argv, -1, NULL);
    spec.park_id = id;
    expect_spawn_error(f, &spec, ESRCH, "no parked sandbox");
    spawner_unpark(f->sp, id); /* unknown by now: ignored */

    /* A parked child outlives the setup timeout's reach, but not the spawner. */
    id = park_ok(f, (const char *const *)cg.dirs);
    pid = only_proc(cg.dirs[0]);
    assert_true(pid > 0);
    spawner_stop(f->sp);
    f->sp = NULL;
    assert_true(pid_gone(pid, 2000));
    cgroup_destroy(&cg);
}

static void test_park_errors(void **state)
{
    struct fx *f = *state;
    struct nb_err err = {0};
    /* A group that does not exist: the park fails, nothing is left. */
    const char *bad_cg[] = {"/sys/fs/cgroup/memory/no-such-group", NULL};
    struct park p = {0};
    assert_int_equal(spawner_park_cg(f, bad_cg, on_park, &p, &err), 0);
    assert_true(run_until(&f->loop, &p.done, 5000));
    assert_int_equal(p.rc, -ENOENT);
    assert_non_null(strstr(p.err.msg, "cannot attach to cgroup"));
    const char *rel_cg[] = {"relative", NULL};
    assert_int_equal(spawner_park_cg(f, rel_cg, on_park, &p, &err), -EINVAL);

    /* An id nobody parked. */
    const char *argv[] = {"/usr/bin/true", NULL};
    struct nb_sandbox_spec spec = spec_for(argv, -1, NULL);
    spec.park_id = 987654321;
    expect_spawn_error(f, &spec, ESRCH, "no parked sandbox with id 987654321");

    /* A spec naming other cgroups than the park's: refused by the child, which dies. */
    struct nb_cgroup cg;
    struct nb_cgroup_limits lim = {.memory_bytes = 64u << 20, .pids_max = 16};
    assert_int_equal(cgroup_create(&cg, "test-park", &lim, &err), 0);
    spec.park_id = park_ok(f, (const char *const *)cg.dirs);
    pid_t pid = only_proc(cg.dirs[0]);
    const char *other[] = {cg.dirs[0], NULL};
    spec.cgroup_dirs = other;
    expect_spawn_error(f, &spec, EINVAL, "other cgroups");
    assert_true(pid_gone(pid, 2000));

    /* The host's netns is refused for a parked child too. */
    spec.park_id = park_ok(f, (const char *const *)cg.dirs);
    spec.cgroup_dirs = NULL;
    int hostns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    spec.netns_fd = hostns;
    expect_spawn_error(f, &spec, EINVAL, "host network namespace");
    close(hostns);
    /* ...and the refusal did not use it up. */
    spec.netns_fd = -1;
    struct run r;
    spawn_ok(f, &spec, &r);
    assert_true(run_until(&f->loop, &r.exited, 5000));
    assert_true(WIFEXITED(r.wstatus) && WEXITSTATUS(r.wstatus) == 0);
    close_run(&r);
    cgroup_destroy(&cg);
}

/* A deep park: the child joined the netns and built its root before the spec. Inside, the
 * sandbox is the very one a direct start builds: same view, same mounts with the same options
 * (the /tmp size too, whether the park guessed it or not), no fd from the host. */
static void test_deep_park(void **state)
{
    struct fx *f = *state;
    struct nb_cgroup cg;
    struct nb_err err = {0};
    struct nb_cgroup_limits lim = {.memory_bytes = 128u << 20, .pids_max = 64};
    assert_int_equal(cgroup_create(&cg, "test-deep", &lim, &err), 0);
    char *script = xasprintf("SECRET=%s\n%s", secret, view_script);
    const char *argv[] = {"/usr/bin/sh", "-c", script, NULL};

    /* the reference: a direct start */
    struct netns n;
    make_netns(f, &n);
    struct nb_sandbox_spec spec = spec_for(argv, n.ns, (const char *const *)cg.dirs);
    struct run r;
    spawn_ok(f, &spec, &r);
    assert_true(run_until(&f->loop, &r.exited, 5000));
    char *want = check_view(&r);
    close_run(&r);

    /* /tmp size guessed wrong, right, and right with the identity (/etc, hostname) given at
     * park time: the same sandbox each time */
    for (int guess = 0; guess < 3; guess++) {
        struct nb_park_spec ps = {.cgroup_dirs = (const char *const *)cg.dirs,
                                  .netns_fd = n.ns,
                                  .runtime_dir = rt_dir,
                                  .tmp_bytes = guess ? spec.tmp_bytes : 0};
        if (guess == 2) {
            ps.uid = spec.uid;
            ps.gid = spec.gid;
            ps.hostname = spec.hostname;
        }
        spec.park_id = park_spec_ok(f, &ps);
        pid_t parked = only_proc(cg.dirs[0]);
        assert_true(parked > 0);
        spec.netns_fd = -1; /* it has one */
        spawn_ok(f, &spec, &r);
        assert_int_equal(r.res.pid, parked);
        assert_true(run_until(&f->loop, &r.exited, 5000));
        char *got = check_view(&r);
        assert_string_equal(got, want);
        free(got);
        close_run(&r);
    }
    free(want);

    /* A deep park's spec brings no netns, names the park's runtime dir, and the code dir must
     * exist; each mistake fails that spawn (and the child). The daemon hands a deep-parked child
     * its spec itself, so what it can check fails the call at once; the child's own checks
     * come back through the callback. */
    struct nb_park_spec ps = {
        .cgroup_dirs = (const char *const *)cg.dirs, .netns_fd = n.ns, .runtime_dir = rt_dir};
    spec.park_id = park_spec_ok(f, &ps);
    spec.netns_fd = n.ns;
    expect_spawn_refused(f, &spec, EINVAL, "keeps its own network namespace");
    spec.netns_fd = -1;
    expect_spawn_error(f, &spec, ESRCH, "no parked sandbox"); /* gone with the failed spawn */
    spec.park_id = park_spec_ok(f, &ps);
    spec.runtime_dir = code_dir;
    expect_spawn_error(f, &spec, EINVAL, "another runtime dir");
    spec.runtime_dir = rt_dir;
    /* given an identity at park time, the spec must name the same */
    struct nb_park_spec who = ps;
    who.uid = who.gid = spec.uid + 1;
    who.hostname = "other-host";
    spec.park_id = park_spec_ok(f, &who);
    expect_spawn_error(f, &spec, EINVAL, "another uid, gid or hostname");
    who.uid = who.gid = spec.uid;
    spec.park_id = park_spec_ok(f, &who);
    expect_spawn_error(f, &spec, EINVAL, "another uid, gid or hostname");
    /* an identity is for deep parks only, and needs uid and gid */
    who.hostname = NULL;
    who.gid = 0;
    assert_int_equal(spawner_park(f->sp, &who, on_park, NULL, &err), -EINVAL);
    who.gid = who.uid;
    who.netns_fd = -1;
    who.runtime_dir = NULL;
    assert_int_equal(spawner_park(f->sp, &who, on_park, NULL, &err), -EINVAL);
    spec.park_id = park_spec_ok(f, &ps);
    char *gone = xasprintf("%s/no-such-dir", code_dir);
    spec.code_dir = gone;
    expect_spawn_refused(f, &spec, ENOENT, "cannot clone the mount");
    free(gone);
    /* A deep-parked child that died while parked: its take fails, the next park serves. */
    spec.code_dir = code_dir;
    spec.park_id = park_spec_ok(f, &ps);
    pid_t parked = 0;
    for (int i = 0; i < 200 && !(parked = only_proc(cg.dirs[0])); i++)
        usleep(10000); /* the children of the failed spawns above are on their way out */
    assert_true(parked > 0);
    assert_int_equal(kill(parked, SIGKILL), 0);
    assert_true(pid_gone(parked, 2000));
    expect_spawn_refused(f, &spec, EPIPE, "cannot hand the spec");
    /* Only a deep park takes a runtime dir; the host's netns is refused. */
    ps.netns_fd = -1;
    assert_int_equal(spawner_park(f->sp, &ps, on_park, NULL, &err), -EINVAL);
    int hostns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    ps.netns_fd = hostns;
    struct park p = {0};
    assert_int_equal(spawner_park(f->sp, &ps, on_park, &p, &err), 0);
    assert_true(run_until(&f->loop, &p.done, 5000));
    assert_int_equal(p.rc, -EINVAL);
    assert_non_null(strstr(p.err.msg, "host network namespace"));
    close(hostns);
    free(script);
    cgroup_destroy(&cg);
    close(n.ns);
    close(n.listen);
    close(n.unix_l);
}

/* A zygote that cannot start (here: exits at once) fails the parks it was sent, and the spawner
 * goes on serving; a later park starts it again (and fails again). */
static void test_park_zygote_dead(void **state)
{
    struct fx *f = *state;
    struct nb_err err = {0};
    struct nb_cgroup cg;
    struct nb_cgroup_limits lim = {.memory_bytes = 64u << 20, .pids_max = 16};
    assert_int_equal(cgroup_create(&cg, "test-zy", &lim, &err), 0);
    const char *zargv[] = {"/bin/false", NULL};
    const char *zenv[] = {"PATH=/usr/bin", NULL};
    for (int i = 0; i < 2; i++) {
        struct park p = {0};
        assert_int_equal(spawner_park_zygote(f->sp, zargv, zenv, (const char *const *)cg.dirs,
                                             on_park, &p, &err),
                         0);
        assert_true(run_until(&f->loop, &p.done, 5000));
        assert_int_equal(p.rc, -EPIPE);
        assert_non_null(strstr(p.err.msg, "python zygote"));
    }
    const char *bad[] = {"relative", NULL};
    assert_int_equal(
        spawner_park_zygote(f->sp, bad, zenv, (const char *const *)cg.dirs, on_park, NULL, &err),
        -EINVAL);
    /* the spawner still works */
    const char *argv[] = {"/usr/bin/true", NULL};
    struct nb_sandbox_spec spec = spec_for(argv, -1, NULL);
    struct run r;
    spawn_ok(f, &spec, &r);
    assert_true(run_until(&f->loop, &r.exited, 5000));
    close_run(&r);
    cgroup_destroy(&cg);
}

static void test_zygote_wire(void **state)
{
    (void)state;
    const char *argv[] = {"/usr/bin/python3", "-s", "/x/zygote.py", NULL};
    const char *envp[] = {"A=1", "B=", NULL};
    const char *cgs[] = {"/sys/fs/cgroup/memory/x", NULL};
    struct nb_buf b = NB_BUF_INIT;
    struct nb_err err = {0};
    assert_int_equal(zygote_park_encode(argv, envp, cgs, &b, &err), 0);
    char **av, **ev;
    const void *park;
    size_t park_len;
    assert_int_equal(zygote_park_decode(b.data, b.len, &av, &ev, &park, &park_len, &err), 0);
    assert_string_equal(av[2], "/x/zygote.py");
    assert_null(av[3]);
    assert_string_equal(ev[1], "B=");
    struct nb_sandbox_req req;
    assert_int_equal(sandbox_park_decode(park, park_len, &req, &err), 0);
    assert_string_equal(req.cgroup_dirs[0], cgs[0]);
    sandbox_req_release(&req);
    free(av);
    free(ev);
    for (size_t len = 0; len < b.len - park_len; len++)
        assert_int_equal(zygote_park_decode(b.data, len, &av, &ev, &park, &park_len, &err),
                         -EINVAL);
    const char *rel[] = {"python3", NULL}, *noeq[] = {"A", NULL};
    assert_int_equal(zygote_park_encode(rel, envp, cgs, &b, &err), -EINVAL);
    assert_int_equal(zygote_park_encode(argv, noeq, cgs, &b, &err), -EINVAL);
    buf_release(&b);
}

static void test_decode_garbage(void **state)
{
    (void)state;
    const char *argv[] = {"/usr/bin/true", "x", NULL};
    struct nb_sandbox_spec spec = spec_for(argv, -1, NULL);
    struct nb_buf b = NB_BUF_INIT;
    struct nb_err err = {0};
    assert_int_equal(sandbox_spec_encode(&spec, &b, &err), 0);
    struct nb_sandbox_req req;
    assert_int_equal(sandbox_req_decode(b.data, b.len, &req, &err), 0);
    assert_string_equal(req.argv[1], "x");
    assert_null(req.argv[2]);
    assert_string_equal(req.envp[1], "FOO=bar baz");
    assert_int_equal(req.uid, UID);
    sandbox_req_release(&req);
    /* Every truncation and every single-byte corruption is either rejected or still valid. */
    for (size_t len = 0; len < b.len; len++)
        assert_int_equal(sandbox_req_decode(b.data, len, &req, &err), -EINVAL);
    unsigned seed = 1;
    for (int round = 0; round < 5000; round++) {
        char *copy = xmalloc(b.len);
        memcpy(copy, b.data, b.len);
        int flips = 1 + round % 4;
        for (int i = 0; i < flips; i++) {
            seed = seed * 1103515245u + 12345u;
            copy[(seed >> 8) % b.len] = (char)(seed >> 20);
        }
        if (sandbox_req_decode(copy, b.len, &req, &err) == 0)
            sandbox_req_release(&req);
        free(copy);
    }
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_view_from_inside, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_runtime_api_socket, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_spawn_errors, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_kill, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_many_concurrent, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stop_kills_all, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_sweep_spares_live, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_spawner_killed, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_garbage_requests, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stop_inside_callback, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_park_then_spawn, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_park_unpark, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_park_errors, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_deep_park, fx_setup, fx_teardown),
        cmocka_unit_test(test_daemon_death),
        cmocka_unit_test_setup_teardown(test_park_zygote_dead, fx_setup, fx_teardown),
        cmocka_unit_test(test_decode_garbage),
        cmocka_unit_test(test_zygote_wire),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

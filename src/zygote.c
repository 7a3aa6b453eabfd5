/*
 * zygote.c - the language-independent half of a zygote (zygote.h): its wire with the spawner, its
 * own hardening, and the loop that clones parked sandboxes on request.
 *
 * Invariants: the zygote only ever blocks in recvmsg or in a send to the spawner; a bad request is
 * answered with ZY_ERROR and never ends the loop; every fd it hands over is closed on its side
 * right after. It holds no fd a sandbox could use: each sandbox child closes everything but its
 * own pipes first thing (sandbox.c), including the zygote's socket.
 */
#include "zygote.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "fdpass.h"
#include "seccomp.h"

#define ZYGOTE_MAGIC 0x4e425a31u /* "NBZ1" */
#define ERROR_TEXT_MAX 500

int zygote_send(int fd, uint32_t type, int32_t arg, uint64_t id, const void *payload, size_t len,
                const int *fds, size_t nfds)
{
    struct nb_zygote_msg h = {.type = type, .arg = arg, .id = id};
    ASSERT(nfds <= ZYGOTE_FDS);
    return fdpass_send(fd, &h, sizeof(h), payload, len, fds, nfds, 0);
}

ssize_t zygote_recv(int fd, void *buf, size_t cap, int flags, int *fds, size_t *nfds, int *mflags)
{
    return fdpass_recv(fd, buf, cap, flags, fds, ZYGOTE_FDS, nfds, mflags);
}

/* ---- hardening ---------------------------------------------------------------------------- */

static const int kept_caps[] = {CAP_SYS_ADMIN,    CAP_SETUID,       CAP_SETGID,         CAP_SETPCAP,
                                CAP_SYS_RESOURCE, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH};

static bool cap_kept(int cap)
{
    for (size_t i = 0; i < ARRAY_SIZE(kept_caps); i++)
        if (kept_caps[i] == cap)
            return true;
    return false;
}

static int drop_caps(struct nb_err *err)
{
    int last = -1;
    for (int cap = 0;; cap++) {
        if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) {
            if (errno == EINVAL)
                break;
            return err_set(err, errno, "cannot read bounding capability %d: %s", cap,
                           strerror(errno));
        }
        last = cap;
        if (!cap_kept(cap) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
            return err_set(err, errno, "cannot drop bounding capability %d: %s", cap,
                           strerror(errno));
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
        return err_set(err, errno, "cannot clear ambient capabilities: %s", strerror(errno));
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2], had[2];
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &hdr, had) < 0)
        return err_set(err, errno, "cannot read capabilities: %s", strerror(errno));
    for (size_t i = 0; i < ARRAY_SIZE(kept_caps); i++) {
        int c = kept_caps[i];
        data[c / 32].effective |= 1u << (c % 32);
        data[c / 32].permitted |= 1u << (c % 32);
    }
    for (int i = 0; i < 2; i++) { /* keep only what we have (a host may withhold some) */
        data[i].effective &= had[i].permitted;
        data[i].permitted &= had[i].permitted;
    }
    if (syscall(SYS_capset, &hdr, data) < 0)
        return err_set(err, errno, "cannot set capabilities: %s", strerror(errno));
    /* Verify, do not trust. */
    struct __user_cap_data_struct now[2];
    if (syscall(SYS_capget, &hdr, now) < 0)
        return err_set(err, errno, "cannot read capabilities: %s", strerror(errno));
    for (int i = 0; i < 2; i++)
        if (now[i].permitted != data[i].permitted || now[i].inheritable)
            return err_set(err, EPERM, "zygote capabilities were not reduced");
    for (int cap = 0; cap <= last; cap++)
        if (!cap_kept(cap) && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 0)
            return err_set(err, EPERM, "capability %d is still in the bounding set", cap);
    return 0;
}

int zygote_harden(struct nb_err *err)
{
    if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET) < 0)
        return err_set(err, errno, "cannot unshare the zygote's namespaces: %s", strerror(errno));
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return err_set(err, errno, "cannot make mounts private: %s", strerror(errno));
    /* The zygote reads; only its sandbox children write (cgroup.procs), each in its own tmpfs
     * root otherwise. */
    struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID};
    if (syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &ro, sizeof(ro)) < 0)
        return err_set(err, errno, "cannot make the zygote's mounts read-only: %s",
                       strerror(errno));
    struct mount_attr rw = {.attr_clr = MOUNT_ATTR_RDONLY};
    if (syscall(SYS_mount_setattr, AT_FDCWD, "/sys/fs/cgroup", AT_RECURSIVE, &rw, sizeof(rw)) < 0)
        return err_set(err, errno, "cannot keep '/sys/fs/cgroup' writable: %s", strerror(errno));
    if (sethostname("nimbus-zygote", strlen("nimbus-zygote")) < 0)
        return err_set(err, errno, "cannot set the zygote's hostname: %s", strerror(errno));
    int r = drop_caps(err);
    if (r < 0)
        return r;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
        return err_set(err, EPERM, "cannot set no_new_privs");
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        return err_set(err, errno, "cannot clear dumpable: %s", strerror(errno));
    struct sock_fprog prog = {0};
    r = seccomp_build_zygote(&prog, err);
    if (r < 0)
        return r;
    r = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
    free(prog.filter);
    if (r < 0)
        return err_set(err, errno, "cannot load the zygote's seccomp filter: %s", strerror(errno));
    return 0;
}

/* ---- the loop ----------------------------------------------------------------------------- */

static void reply_error(int sock, uint64_t id, const struct nb_err *e)
{
    (void)zygote_send(sock, ZY_ERROR, e->code ? e->code : EIO, id, e->msg,
                      strnlen(e->msg, ERROR_TEXT_MAX), NULL, 0);
}

int zygote_serve(int sock, const struct nb_sandbox_env *env, const struct nb_zygote_hooks *hooks,
                 struct nb_err *err)
{
    static unsigned char buf[sizeof(struct nb_zygote_msg) + SANDBOX_SPEC_MAX];
    ASSERT(env->run);
    /* A raw clone of a threaded process would copy one thread and whatever locks the others
     * held: refuse (the zygote then exits, and Python functions start the plain way). */
    _cleanup_free_ char *status = NULL;
    const char *t =
        read_file("/proc/self/status", &status, NULL) == 0 ? strstr(status, "\nThreads:") : NULL;
    if (!t || atoi(t + strlen("\nThreads:")) != 1)
        return err_set(err, EBUSY, "the zygote must be single-threaded");
    for (;;) {
        int fds[ZYGOTE_FDS];
        size_t nfds = 0;
        int mflags = 0;
        ssize_t n = zygote_recv(sock, buf, sizeof(buf), 0, fds, &nfds, &mflags);
        for (size_t i = 0; i < nfds; i++)
            close(fds[i]); /* a park request carries none */
        if (n == 0)
            return 0;
        if (n < 0)
            return err_set(err, (int)-n, "zygote cannot receive: %s", strerror((int)-n));
        struct nb_zygote_msg h = {0};
        struct nb_err e = {0};
        if ((size_t)n < sizeof(h)) {
            err_set(&e, EINVAL, "short zygote request (%zd bytes)", n);
            reply_error(sock, 0, &e);
            continue;
        }
        memcpy(&h, buf, sizeof(h));
        struct nb_sandbox_req req;
        if (h.type != ZY_PARK || (mflags & (MSG_TRUNC | MSG_CTRUNC)) || nfds) {
            err_set(&e, EINVAL, "bad zygote request (type %u)", h.type);
            reply_error(sock, h.id, &e);
            continue;
        }
        if (zygote_park_req_decode(buf + sizeof(h), (size_t)n - sizeof(h), &req, &e) < 0) {
            reply_error(sock, h.id, &e);
            continue;
        }
        struct nb_sandbox_child child;
        if (hooks && hooks->before_fork)
            hooks->before_fork();
        int r = sandbox_park(env, &req, -1, &child, &e);
        if (hooks && hooks->after_fork_parent)
            hooks->after_fork_parent();
        sandbox_req_release(&req);
        if (r < 0) {
            reply_error(sock, h.id, &e);
            continue;
        }
        int out[ZYGOTE_FDS] = {child.pidfd, child.status_fd, child.stdout_fd, child.stderr_fd,
                               child.spec_fd};
        r = zygote_send(sock, ZY_PARKED, child.pid, h.id, NULL, 0, out, ZYGOTE_FDS);
        if (r < 0) /* the spawner is gone or broken: the child dies with it (parent death) */
            kill(child.pid, SIGKILL);
        for (size_t i = 0; i < ZYGOTE_FDS; i++)
            close(out[i]);
        if (r == -EPIPE || r == -ECONNRESET)
            return 0;
    }
}

/* ---- the start request -------------------------------------------------------------------- */

struct wire_zygote {
    uint32_t magic;
    uint32_t argc;
    uint32_t envc;
    uint32_t pad;
};

static size_t count(const char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

static int validate(const char *const *argv, size_t argc, const char *const *envp, size_t envc,
                    struct nb_err *err)
{
    if (argc == 0 || argc > ZYGOTE_ARGV_MAX || argv[0][0] != '/')
        return err_set(err, EINVAL, "zygote argv[0] must be an absolute path");
    if (envc > ZYGOTE_ENV_MAX)
        return err_set(err, EINVAL, "zygote environment has too many entries (%zu)", envc);
    for (size_t i = 0; i < envc; i++)
        if (!strchr(envp[i], '=') || envp[i][0] == '=')
            return err_set(err, EINVAL, "zygote environment entry is not K=V");
    return 0;
}

int zygote_park_encode(const char *const *argv, const char *const *envp,
                       const char *const *cgroup_dirs, struct nb_buf *out, struct nb_err *err)
{
    size_t argc = count(argv), envc = count(envp);
    int r = validate(argv, argc, envp, envc, err);
    if (r < 0)
        return r;
    size_t start = out->len;
    struct wire_zygote w = {.magic = ZYGOTE_MAGIC, .argc = (uint32_t)argc, .envc = (uint32_t)envc};
    buf_append(out, &w, sizeof(w));
    for (size_t i = 0; i < argc; i++)
        buf_append(out, argv[i], strlen(argv[i]) + 1);
    for (size_t i = 0; i < envc; i++)
        buf_append(out, envp[i], strlen(envp[i]) + 1);
    struct nb_park_spec ps = {.cgroup_dirs = cgroup_dirs, .netns_fd = -1};
    r = sandbox_park_encode(&ps, out, err);
    if (r == 0 && out->len - start > SANDBOX_SPEC_MAX)
        r = err_set(err, E2BIG, "zygote park request is too large");
    if (r < 0)
        out->len = start;
    return r;
}

int zygote_park_req_decode(const void *buf, size_t len, struct nb_sandbox_req *req,
                           struct nb_err *err)
{
    int r = sandbox_park_decode(buf, len, req, err);
    if (r == 0 && req->has_netns) { /* a deep park needs a netns fd; zygote children get none */
        sandbox_req_release(req);
        r = err_set(err, EINVAL, "the zygote parks no deep sandboxes");
    }
    return r;
}

static char **take_strv(const char **p, const char *end, uint32_t n)
{
    char **v = xcalloc((size_t)n + 1, sizeof(char *));
    for (uint32_t i = 0; i < n; i++) {
        const char *nul = *p < end ? memchr(*p, '\0', (size_t)(end - *p)) : NULL;
        if (!nul) {
            free(v);
            return NULL;
        }
        v[i] = (char *)*p;
        *p = nul + 1;
    }
    return v;
}

int zygote_park_decode(const void *buf, size_t len, char ***argv, char ***envp, const void **park,
                       size_t *park_len, struct nb_err *err)
{
    struct wire_zygote w;
    *argv = *envp = NULL;
    if (len < sizeof(w) || len > SANDBOX_SPEC_MAX)
        return err_set(err, EINVAL, "bad zygote park request size %zu", len);
    memcpy(&w, buf, sizeof(w));
    if (w.magic != ZYGOTE_MAGIC || w.pad || w.argc == 0 || w.argc > ZYGOTE_ARGV_MAX ||
        w.envc > ZYGOTE_ENV_MAX)
        return err_set(err, EINVAL, "bad zygote park request header");
    const char *p = (const char *)buf + sizeof(w), *end = (const char *)buf + len;
    *argv = take_strv(&p, end, w.argc);
    if (*argv)
        *envp = take_strv(&p, end, w.envc);
    int r = 0;
    if (!*envp)
        r = err_set(err, EINVAL, "zygote park request is truncated");
    else
        r = validate((const char *const *)*argv, w.argc, (const char *const *)*envp, w.envc, err);
    if (r < 0) {
        free(*argv);
        free(*envp);
        *argv = *envp = NULL;
        return r;
    }
    *park = p;
    *park_len = (size_t)(end - p);
    return 0;
}

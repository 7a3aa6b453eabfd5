/*
 * sandbox.c - the mechanism that builds one sandbox, run inside the spawner (sandbox.h).
 *
 * sandbox_start clone()s the sandbox init with new pid, mount, ipc and uts namespaces. The child,
 * in this order: closes every fd it does not need, attaches itself to its cgroups, unshares the
 * cgroup namespace, resets its signal dispositions, joins the network namespace, builds a private
 * tmpfs root (read-only /usr, /etc with the host's few files, /var/task, /var/runtime, tmpfs /tmp,
 * a minimal /dev, /proc: build_root, bind_code, bind_runtime), pivot_roots into it and makes it
 * read-only (enter_root), writes /etc's per-instance files and makes /etc read-only, sets the
 * hostname (finish_root), drops every capability and switches to the unprivileged uid/gid, and
 * VERIFIES each drop took effect, then sets no_new_privs. It then acts as pid 1: forks the
 * runtime child (stdio wired, seccomp loaded, execve), forwards polite signals to it, reaps
 * orphans and exits with the runtime's status (128+signal when killed).
 * sandbox_park clones the same child ahead of time; it stops after the cgroup namespace step and
 * waits for its spec (await_spec), then goes on as above. A deep park (sandbox_park with a netns)
 * first empties the bounding set, joins the netns, builds the root with the park's runtime dir
 * and /tmp size, and enters it; after the spec only finish_root is left (the code dir arrives as
 * an open_tree clone from the spawner and is move_mount'ed, then made read-only; /tmp and
 * /dev/shm are resized if the spec's size differs) and the rest of the privilege drop. The same
 * functions in both orders; a deep-parked sandbox has the very mounts and options of a direct
 * start (tests/unit/test_sandbox.c test_deep_park).
 * Zygote mode (env->run, zygote.h): the same child, cloned by the Python zygote with CLONE_PARENT;
 * the init fork()s the runtime before dropping its own privileges, and the runtime child drops
 * its own, loads the same filter and calls env->run instead of execve (run_zygote_runtime).
 *
 * Invariants: every step is checked; the first failure is written to the CLOEXEC status pipe and
 * the child exits (fail closed) - a half-built sandbox never runs code. Nothing here links the
 * policy: which uid, which limits, which filter all come from the spawner and the daemon.
 * The spawner is single-threaded, so the children may use ordinary libc; set*id and capset still
 * go through raw syscalls so the code stays correct if that ever changes.
 */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "fdpass.h"

/* ---- wire form of a spec ---------------------------------------------------------------- */

#define SPEC_MAGIC 0x4e425332u /* "NBS2" */
#define PARK_MAGIC 0x4e425032u /* "NBP2" */
#define PARK_DEEP (1u << 0)
#define PARK_HAS_RUNTIME (1u << 1)
#define PARK_HAS_HOSTNAME (1u << 2)
#define SPEC_HAS_RUNTIME (1u << 0)
#define SPEC_HAS_HOSTNAME (1u << 1)
#define SPEC_HAS_NETNS (1u << 2)
#define SPEC_ARGC_MAX 1024
#define SPEC_ENVC_MAX 4096
#define SPEC_CGROUPS_MAX 8
#define HOSTNAME_MAX 64

struct wire_spec {
    uint32_t magic;
    uint32_t flags;
    uint32_t uid;
    uint32_t gid;
    uint64_t tmp_bytes;
    uint32_t argc;
    uint32_t envc;
    uint32_t ncgroups;
    uint32_t pad;
    uint64_t park_id;
};

struct wire_park {
    uint32_t magic;
    uint32_t ncgroups;
    uint32_t flags;
    uint32_t uid; /* deep only: the identity /etc gets at park time (0: none, set after the spec) */
    uint32_t gid;
    uint32_t pad;
    uint64_t tmp_bytes;
};

static size_t count_strv(const char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

static bool is_abs_path(const char *s)
{
    return s && s[0] == '/' && strlen(s) < PATH_MAX;
}

static bool valid_hostname(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > HOSTNAME_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '.'))
            return false;
    return true;
}

static int validate_cgroups(const char *const *dirs, size_t n, struct nb_err *err)
{
    if (n > SPEC_CGROUPS_MAX)
        return err_set(err, EINVAL, "sandbox has too many cgroups (%zu)", n);
    for (size_t i = 0; i < n; i++)
        if (!is_abs_path(dirs[i]))
            return err_set(err, EINVAL, "sandbox cgroup dir must be an absolute path");
    return 0;
}

/* The checks shared by both sides of the wire. */
static int validate(const char *code_dir, const char *runtime_dir, const char *hostname,
                    const char *const *argv, size_t argc, size_t envc,
                    const char *const *cgroup_dirs, size_t ncg, uid_t uid, gid_t gid,
                    uint64_t tmp_bytes, struct nb_err *err)
{
    if (!is_abs_path(code_dir))
        return err_set(err, EINVAL, "sandbox code_dir must be an absolute path");
    if (runtime_dir && !is_abs_path(runtime_dir))
        return err_set(err, EINVAL, "sandbox runtime_dir must be an absolute path");
    if (hostname && !valid_hostname(hostname))
        return err_set(err, EINVAL, "invalid sandbox hostname '%s'", hostname);
    if (argc == 0 || argc > SPEC_ARGC_MAX || !is_abs_path(argv[0]))
        return err_set(err, EINVAL, "sandbox argv[0] must be an absolute path");
    if (envc > SPEC_ENVC_MAX)
        return err_set(err, EINVAL, "sandbox environment has too many entries (%zu)", envc);
    int r = validate_cgroups(cgroup_dirs, ncg, err);
    if (r < 0)
        return r;
    if (uid == 0 || gid == 0 || uid == (uid_t)-1 || gid == (gid_t)-1)
        return err_set(err, EINVAL, "sandbox uid and gid must be unprivileged (got %u:%u)",
                       (unsigned)uid, (unsigned)gid);
    if (tmp_bytes == 0)
        return err_set(err, EINVAL, "sandbox tmp_bytes must be > 0");
    return 0;
}

static void put_str(struct nb_buf *b, const char *s)
{
    buf_append(b, s, strlen(s) + 1);
}

int sandbox_spec_encode(const struct nb_sandbox_spec *spec, struct nb_buf *out, struct nb_err *err)
{
    size_t argc = count_strv(spec->argv), envc = count_strv(spec->envp);
    size_t ncg = count_strv(spec->cgroup_dirs);
    int r = validate(spec->code_dir, spec->runtime_dir, spec->hostname, spec->argv, argc, envc,
                     spec->cgroup_dirs, ncg, spec->uid, spec->gid, spec->tmp_bytes, err);
    if (r < 0)
        return r;
    struct wire_spec w = {
        .magic = SPEC_MAGIC,
        .flags = (spec->runtime_dir ? SPEC_HAS_RUNTIME : 0) |
                 (spec->hostname ? SPEC_HAS_HOSTNAME : 0) |
                 (spec->netns_fd >= 0 ? SPEC_HAS_NETNS : 0),
        .uid = spec->uid,
        .gid = spec->gid,
        .tmp_bytes = spec->tmp_bytes,
        .argc = (uint32_t)argc,
        .envc = (uint32_t)envc,
        .ncgroups = (uint32_t)ncg,
        .park_id = spec->park_id,
    };
    size_t start = out->len;
    buf_append(out, &w, sizeof(w));
    put_str(out, spec->code_dir);
    if (spec->runtime_dir)
        put_str(out, spec->runtime_dir);
    if (spec->hostname)
        put_str(out, spec->hostname);
    for (size_t i = 0; i < argc; i++)
        put_str(out, spec->argv[i]);
    for (size_t i = 0; i < envc; i++)
        put_str(out, spec->envp[i]);
    for (size_t i = 0; i < ncg; i++)
        put_str(out, spec->cgroup_dirs[i]);
    if (out->len - start > SANDBOX_SPEC_MAX) {
        out->len = start;
        return err_set(err, E2BIG, "sandbox spec is too large (over %d bytes)", SANDBOX_SPEC_MAX);
    }
    return 0;
}

/* Returns the NUL-terminated string at *p and advances past it, or NULL if none fits. */
static const char *take_str(const char **p, const char *end)
{
    const char *s = *p;
    if (s >= end)
        return NULL;
    const char *nul = memchr(s, '\0', (size_t)(end - s));
    if (!nul)
        return NULL;
    *p = nul + 1;
    return s;
}

static char **take_strv(const char **p, const char *end, uint32_t n)
{
    char **v = xcalloc((size_t)n + 1, sizeof(char *));
    for (uint32_t i = 0; i < n; i++) {
        const char *s = take_str(p, end);
        if (!s) {
            free(v);
            return NULL;
        }
        v[i] = (char *)s;
    }
    return v;
}

int sandbox_req_decode(const void *buf, size_t len, struct nb_sandbox_req *req, struct nb_err *err)
{
    memset(req, 0, sizeof(*req));
    struct wire_spec w;
    if (len < sizeof(w) || len > SANDBOX_SPEC_MAX)
        return err_set(err, EINVAL, "bad spawn request size %zu", len);
    memcpy(&w, buf, sizeof(w));
    if (w.magic != SPEC_MAGIC || w.pad)
        return err_set(err, EINVAL, "bad spawn request magic");
    if (w.flags & ~(SPEC_HAS_RUNTIME | SPEC_HAS_HOSTNAME | SPEC_HAS_NETNS) ||
        w.argc > SPEC_ARGC_MAX || w.envc > SPEC_ENVC_MAX || w.ncgroups > SPEC_CGROUPS_MAX)
        return err_set(err, EINVAL, "bad spawn request header");
    const char *p = (const char *)buf + sizeof(w), *end = (const char *)buf + len;
    req->code_dir = take_str(&p, end);
    if (w.flags & SPEC_HAS_RUNTIME)
        req->runtime_dir = take_str(&p, end);
    if (w.flags & SPEC_HAS_HOSTNAME)
        req->hostname = take_str(&p, end);
    if (!req->code_dir || (w.flags & SPEC_HAS_RUNTIME && !req->runtime_dir) ||
        (w.flags & SPEC_HAS_HOSTNAME && !req->hostname))
        goto truncated;
    req->argv = take_strv(&p, end, w.argc);
    if (req->argv)
        req->envp = take_strv(&p, end, w.envc);
    if (req->envp)
        req->cgroup_dirs = take_strv(&p, end, w.ncgroups);
    if (!req->cgroup_dirs)
        goto truncated;
    if (p != end) {
        sandbox_req_release(req);
        return err_set(err, EINVAL, "spawn request has %zu trailing bytes", (size_t)(end - p));
    }
    req->uid = w.uid;
    req->gid = w.gid;
    req->tmp_bytes = w.tmp_bytes;
    req->park_id = w.park_id;
    req->has_netns = w.flags & SPEC_HAS_NETNS;
    int r = validate(req->code_dir, req->runtime_dir, req->hostname, (const char *const *)req->argv,
                     w.argc, w.envc, (const char *const *)req->cgroup_dirs, w.ncgroups, req->uid,
                     req->gid, req->tmp_bytes, err);
    if (r < 0)
        sandbox_req_release(req);
    return r;

truncated:
    sandbox_req_release(req);
    return err_set(err, EINVAL, "spawn request is truncated");
}

static int validate_park(const char *runtime_dir, uint64_t tmp_bytes, uid_t uid, gid_t gid,
                         const char *hostname, bool deep, struct nb_err *err)
{
    if (!deep && (runtime_dir || tmp_bytes || uid || gid || hostname))
        return err_set(err, EINVAL,
                       "only a deep park takes a runtime dir, a /tmp size and an identity");
    if (runtime_dir && !is_abs_path(runtime_dir))
        return err_set(err, EINVAL, "sandbox runtime_dir must be an absolute path");
    if (!uid != !gid || (hostname && !uid))
        return err_set(err, EINVAL, "a park's identity needs a uid, a gid and may add a hostname");
    if (hostname && !valid_hostname(hostname))
        return err_set(err, EINVAL, "invalid sandbox hostname '%s'", hostname);
    return 0;
}

int sandbox_park_encode(const struct nb_park_spec *ps, struct nb_buf *out, struct nb_err *err)
{
    size_t n = count_strv(ps->cgroup_dirs);
    bool deep = ps->netns_fd >= 0;
    int r = validate_cgroups(ps->cgroup_dirs, n, err);
    if (r == 0)
        r = validate_park(ps->runtime_dir, ps->tmp_bytes, ps->uid, ps->gid, ps->hostname, deep,
                          err);
    if (r < 0)
        return r;
    struct wire_park w = {
        .magic = PARK_MAGIC,
        .ncgroups = (uint32_t)n,
        .flags = (deep ? PARK_DEEP : 0) | (ps->runtime_dir ? PARK_HAS_RUNTIME : 0) |
                 (ps->hostname ? PARK_HAS_HOSTNAME : 0),
        .uid = (uint32_t)ps->uid,
        .gid = (uint32_t)ps->gid,
        .tmp_bytes = ps->tmp_bytes,
    };
    buf_append(out, &w, sizeof(w));
    for (size_t i = 0; i < n; i++)
        put_str(out, ps->cgroup_dirs[i]);
    if (ps->runtime_dir)
        put_str(out, ps->runtime_dir);
    if (ps->hostname)
        put_str(out, ps->hostname);
    return 0;
}

int sandbox_park_decode(const void *buf, size_t len, struct nb_sandbox_req *req, struct nb_err *err)
{
    memset(req, 0, sizeof(*req));
    struct wire_park w;
    if (len < sizeof(w) || len > SANDBOX_SPEC_MAX)
        return err_set(err, EINVAL, "bad park request size %zu", len);
    memcpy(&w, buf, sizeof(w));
    if (w.magic != PARK_MAGIC || w.pad || w.ncgroups > SPEC_CGROUPS_MAX ||
        w.flags & ~(PARK_DEEP | PARK_HAS_RUNTIME | PARK_HAS_HOSTNAME))
        return err_set(err, EINVAL, "bad park request header");
    const char *p = (const char *)buf + sizeof(w), *end = (const char *)buf + len;
    req->cgroup_dirs = take_strv(&p, end, w.ncgroups);
    if (req->cgroup_dirs && w.flags & PARK_HAS_RUNTIME && !(req->runtime_dir = take_str(&p, end)))
        p = NULL;
    if (p && req->cgroup_dirs && w.flags & PARK_HAS_HOSTNAME &&
        !(req->hostname = take_str(&p, end)))
        p = NULL;
    if (!req->cgroup_dirs || p != end) {
        sandbox_req_release(req);
        return err_set(err, EINVAL, "bad park request body");
    }
    req->tmp_bytes = w.tmp_bytes;
    req->uid = w.uid;
    req->gid = w.gid;
    req->has_netns = w.flags & PARK_DEEP;
    int r = validate_cgroups((const char *const *)req->cgroup_dirs, w.ncgroups, err);
    if (r == 0)
        r = validate_park(req->runtime_dir, req->tmp_bytes, req->uid, req->gid, req->hostname,
                          req->has_netns, err);
    if (r < 0)
        sandbox_req_release(req);
    return r;
}

void sandbox_req_release(struct nb_sandbox_req *req)
{
    free(req->argv);
    free(req->envp);
    free(req->cgroup_dirs);
    memset(req, 0, sizeof(*req));
}

/* ---- the child: failure reporting ------------------------------------------------------- */

struct status_msg {
    int32_t code;
    char text[500];
};

/* Set in each child right after clone; the status pipe's write end. */
static int status_fd = -1;

static _Noreturn PRINTF_LIKE(2, 3) void die_code(int code, const char *fmt, ...)
{
    struct status_msg m = {.code = code ? code : EIO};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m.text, sizeof(m.text), fmt, ap);
    va_end(ap);
    /* One write below PIPE_BUF: atomic. Nothing to do if it fails; the spawner then sees a setup
     * child that exited without exec'ing, which it reports as a failure too. */
    ssize_t n = write(status_fd, &m, sizeof(m.code) + strlen(m.text) + 1);
    (void)n;
    _exit(SANDBOX_EXIT_SETUP);
}

/* Fails with errno and its text appended: "what failed '<subject>': <strerror>". */
#define die_errno(...) die_errno_(errno, __VA_ARGS__)
static _Noreturn PRINTF_LIKE(2, 3) void die_errno_(int e, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    die_code(e, "%s: %s", what, strerror(e));
}

/* ---- the child: filesystem -------------------------------------------------------------- */

struct child_ctx {
    const struct nb_sandbox_env *env;
    const struct nb_sandbox_req *req; /* a deep-parked child: the park's until the spec came */
    int out_fd, err_fd, netns_fd;
    int spec_fd;      /* parked: where the spec arrives; -1 otherwise */
    bool fresh_netns; /* unshare a new network namespace (parked child with no netns fd) */
    bool deep;        /* deep park: netns and root built before the spec (sandbox.h) */
    int code_fd;      /* deep park: detached clone of the code dir (from the spawner, with the
                         spec), or -1 */
    const char *park_runtime_dir; /* deep park: what the park bound at /var/runtime (or NULL) */
    uint64_t park_tmp_bytes;      /* deep park: the size /tmp and /dev/shm got (0: one page) */
    bool identity_done; /* deep park given an identity: /etc and the hostname written before the
                           spec, which must then name the same uid, gid and hostname */
    char path[PATH_MAX];
};

/* A path under the new root, in c->path (valid until the next call). */
static const char *at(struct child_ctx *c, const char *rel)
{
    int n = snprintf(c->path, sizeof(c->path), "%s/%s", c->env->root_dir, rel);
    if (n < 0 || (size_t)n >= sizeof(c->path))
        die_code(ENAMETOOLONG, "sandbox path '%s' is too long", rel);
    return c->path;
}

static void do_mount(const char *src, const char *dst, const char *type, unsigned long flags,
                     const char *data)
{
    if (mount(src, dst, type, flags, data) < 0)
        die_errno("cannot mount %s '%s' at '%s'", type ? type : "", src ? src : "", dst);
}

/* A read-only bind: bind first, then remount (a bind ignores MS_RDONLY on the first call). */
static void bind_ro(const char *src, const char *dst, unsigned long extra)
{
    if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
        die_errno("cannot bind '%s' at '%s'", src, dst);
    if (mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | extra, NULL) < 0)
        die_errno("cannot remount '%s' read-only", dst);
}

static void remount_ro(const char *dst, unsigned long extra)
{
    if (mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | extra, NULL) < 0)
        die_errno("cannot remount '%s' read-only", dst);
}

static void make_dir(const char *path, mode_t mode)
{
    if (mkdir(path, mode) < 0)
        die_errno("cannot create directory '%s'", path);
}

static void make_file(const char *path, const char *content, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        die_errno("cannot create '%s'", path);
    int r = write_all(fd, content, strlen(content));
    if (r < 0)
        die_code(-r, "cannot write '%s': %s", path, strerror(-r));
    close(fd);
}

static void make_symlink(const char *target, const char *path)
{
    if (symlink(target, path) < 0)
        die_errno("cannot create symlink '%s'", path);
}

/* Host files of /etc a runtime needs, bound read-only when present. */
static const char *const etc_binds[] = {
    "ld.so.cache",   "ld.so.conf", "ld.so.conf.d", "localtime",
    "nsswitch.conf", "ssl",        "alternatives", "mime.types",
};

/* /etc as a writable tmpfs with the host's files bound in; the per-instance files and the
 * read-only remount come in finish_root. */
static void build_etc(struct child_ctx *c)
{
    do_mount("tmpfs", at(c, "etc"), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
             "mode=0755,size=256k,nr_inodes=256");
    for (size_t i = 0; i < ARRAY_SIZE(etc_binds); i++) {
        char src[PATH_MAX];
        snprintf(src, sizeof(src), "/etc/%s", etc_binds[i]);
        struct stat st;
        if (stat(src, &st) < 0)
            continue; /* optional */
        char rel[PATH_MAX];
        snprintf(rel, sizeof(rel), "etc/%s", etc_binds[i]);
        if (S_ISDIR(st.st_mode))
            make_dir(at(c, rel), 0755);
        else
            make_file(at(c, rel), "", 0644);
        bind_ro(src, at(c, rel), MS_NOSUID | MS_NODEV | MS_NOEXEC);
    }
}

/* The files of /etc that name the instance (its uid, gid and hostname), after the pivot. */
static void write_etc(const struct nb_sandbox_req *req, const char *host)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "root:x:0:0:root:/root:/usr/sbin/nologin\n"
             "sbx_user1051:x:%u:%u::/tmp:/usr/sbin/nologin\n",
             (unsigned)req->uid, (unsigned)req->gid);
    make_file("/etc/passwd", text, 0644);
    snprintf(text, sizeof(text), "root:x:0:\nsbx_user1051:x:%u:\n", (unsigned)req->gid);
    make_file("/etc/group", text, 0644);
    snprintf(text, sizeof(text), "127.0.0.1\tlocalhost %s\n::1\tlocalhost ip6-localhost\n", host);
    make_file("/etc/hosts", text, 0644);
    snprintf(text, sizeof(text), "%s\n", host);
    make_file("/etc/hostname", text, 0644);
    remount_ro("/etc", MS_NOSUID | MS_NODEV | MS_NOEXEC);
}

/* tmpfs options "mode=1777,size=N": the spec's size, or the park's (one page if it has none;
 * finish_root resizes it when the spec's differs). */
static void tmp_opts(const struct child_ctx *c, char *opts, size_t len)
{
    unsigned long long size = c->req->tmp_bytes ? (unsigned long long)c->req->tmp_bytes : 4096ull;
    snprintf(opts, len, "mode=1777,size=%llu", size);
}

static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};

static void build_dev(struct child_ctx *c)
{
    char opts[64];
    do_mount("tmpfs", at(c, "dev"), "tmpfs", MS_NOSUID | MS_NOEXEC,
             "mode=0755,size=64k,nr_inodes=64");
    for (size_t i = 0; i < ARRAY_SIZE(dev_nodes); i++) {
        char src[64], rel[64];
        snprintf(src, sizeof(src), "/dev/%s", dev_nodes[i]);
        snprintf(rel, sizeof(rel), "dev/%s", dev_nodes[i]);
        make_file(at(c, rel), "", 0666);
        if (mount(src, at(c, rel), NULL, MS_BIND, NULL) < 0)
            die_errno("cannot bind '%s'", src);
        /* Devices must stay writable (/dev/null); the bind stays nosuid, noexec. */
        if (mount(NULL, at(c, rel), NULL, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NOEXEC, NULL) < 0)
            die_errno("cannot remount '%s'", src);
    }
    make_symlink("/proc/self/fd", at(c, "dev/fd"));
    make_symlink("/proc/self/fd/0", at(c, "dev/stdin"));
    make_symlink("/proc/self/fd/1", at(c, "dev/stdout"));
    make_symlink("/proc/self/fd/2", at(c, "dev/stderr"));
    make_dir(at(c, "dev/shm"), 01777);
    tmp_opts(c, opts, sizeof(opts));
    do_mount("tmpfs", at(c, "dev/shm"), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts);
    remount_ro(at(c, "dev"), MS_NOSUID | MS_NOEXEC);
}

/* Everything of the private root that does not depend on the function, under env->root_dir:
 * tmpfs root, read-only /usr, /etc (writable until finish_root), empty /var/task and
 * /var/runtime, /tmp, /dev, /proc with a read-only /proc/sys. */
static void build_root(struct child_ctx *c)
{
    char opts[64];
    /* Nothing we mount may propagate back to the host (or from it into us). */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        die_errno("cannot make mounts private");
    do_mount("tmpfs", c->env->root_dir, "tmpfs", MS_NOSUID | MS_NODEV,
             "mode=0755,size=64k,nr_inodes=64");
    static const char *const dirs[] = {"usr", "etc", "var",  "var/task", "var/runtime",
                                       "tmp", "dev", "proc", "opt"};
    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
        make_dir(at(c, dirs[i]), 0755);
    make_symlink("usr/bin", at(c, "bin"));
    make_symlink("usr/sbin", at(c, "sbin"));
    make_symlink("usr/lib", at(c, "lib"));
    make_symlink("usr/lib64", at(c, "lib64"));

    bind_ro("/usr", at(c, "usr"), MS_NOSUID | MS_NODEV);
    build_etc(c);
    tmp_opts(c, opts, sizeof(opts));
    do_mount("tmpfs", at(c, "tmp"), "tmpfs", MS_NOSUID | MS_NODEV, opts);
    build_dev(c);
    do_mount("proc", at(c, "proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    /* /proc/sys is root-owned, but keep it read-only even if a uid bug ever let root in. */
    if (mount(at(c, "proc/sys"), at(c, "proc/sys"), NULL, MS_BIND | MS_REC, NULL) < 0)
        die_errno("cannot bind '/proc/sys'");
    remount_ro(at(c, "proc/sys"), MS_NOSUID | MS_NODEV | MS_NOEXEC);
}

/* The runtime dir (a deep park's, or the spec's), bound from the host path before the pivot. */
static void bind_runtime(struct child_ctx *c)
{
    if (c->req->runtime_dir)
        bind_ro(c->req->runtime_dir, at(c, "var/runtime"), MS_NOSUID | MS_NODEV);
}

/* Not deep-parked: the code dir, bound from the host path before the pivot. */
static void bind_code(struct child_ctx *c)
{
    bind_ro(c->req->code_dir, at(c, "var/task"), MS_NOSUID | MS_NODEV);
}

/* pivot_root into env->root_dir, old root detached, / read-only. */
static void enter_root(struct child_ctx *c)
{
    /* pivot_root(".", ".") stacks the old root on the new one; detaching it leaves only ours. */
    if (chdir(c->env->root_dir) < 0)
        die_errno("cannot enter '%s'", c->env->root_dir);
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        die_errno("cannot pivot_root to '%s'", c->env->root_dir);
    if (umount2(".", MNT_DETACH) < 0)
        die_errno("cannot detach the old root");
    if (chdir("/") < 0)
        die_errno("cannot enter the new root");
    remount_ro("/", MS_NOSUID | MS_NODEV);
}

/* Deep park, after the spec: a detached tree from the spawner (fd, consumed) at dst, then
 * read-only exactly like bind_ro's. */
static void attach_tree(int *fd, const char *dst)
{
    if (move_mount(*fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        die_errno("cannot attach the tree at '%s'", dst);
    close(*fd); /* a host mount's fd never stays open in the sandbox */
    *fd = -1;
    remount_ro(dst, MS_NOSUID | MS_NODEV);
}

static void resize_tmpfs(const char *dst, unsigned long flags, uint64_t bytes)
{
    char opts[48];
    snprintf(opts, sizeof(opts), "size=%llu", (unsigned long long)bytes);
    if (mount(NULL, dst, NULL, MS_REMOUNT | flags, opts) < 0)
        die_errno("cannot resize '%s'", dst);
}

/* /etc's passwd, group, hosts and hostname for req's uid, gid and hostname (then /etc read-only),
 * and the hostname itself. */
static void write_identity(const struct nb_sandbox_req *req)
{
    const char *host = req->hostname ? req->hostname : "sandbox";
    write_etc(req, host);
    if (sethostname(host, strlen(host)) < 0)
        die_errno("cannot set hostname '%s'", host);
}

/* The per-instance rest, inside the new root: (deep park) the code tree and, unless the park
 * guessed them right, the sizes of /tmp and /dev/shm; unless the park had the identity already,
 * /etc's files, then /etc read-only, and the hostname. */
static void finish_root(struct child_ctx *c)
{
    const struct nb_sandbox_req *req = c->req;
    if (c->deep) {
        attach_tree(&c->code_fd, "/var/task");
        if (req->tmp_bytes != c->park_tmp_bytes) {
            resize_tmpfs("/tmp", MS_NOSUID | MS_NODEV, req->tmp_bytes);
            resize_tmpfs("/dev/shm", MS_NOSUID | MS_NODEV | MS_NOEXEC, req->tmp_bytes);
        }
    }
    if (!c->identity_done)
        write_identity(req);
    if (chdir("/var/task") < 0)
        die_errno("cannot enter '/var/task'");
}

/* ---- the child: privileges -------------------------------------------------------------- */

static void caps_get(struct __user_cap_data_struct data[2])
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    if (syscall(SYS_capget, &hdr, data) < 0)
        die_errno("cannot read capabilities");
}

/* The highest capability number, once the bounding set was emptied (-1 before). */
static int bset_last = -1;

/* Empties the capability bounding set and verifies it. It only limits what an execve may grant,
 * not what this process holds, so a deep-parked child does it before its spec. Verified here, once:
 * nothing can add a capability back to a bounding set (the kernel only ever lowers it). */
static void drop_bounding_set(void)
{
    int last = -1;
    for (int cap = 0;; cap++) {
        if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) {
            if (errno == EINVAL)
                break;
            die_errno("cannot read bounding capability %d", cap);
        }
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
            die_errno("cannot drop bounding capability %d", cap);
        last = cap;
    }
    if (last < 0)
        die_code(EPERM, "cannot enumerate the capability bounding set");
    for (int cap = 0; cap <= last; cap++)
        if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 0)
            die_code(EPERM, "capability %d is still in the bounding set", cap);
    bset_last = last;
}

static void drop_privileges(const struct nb_sandbox_req *req)
{
    if (bset_last < 0)
        drop_bounding_set();
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
        die_errno("cannot clear ambient capabilities");
    if (syscall(SYS_setgroups, 0, NULL) < 0)
        die_errno("cannot clear supplementary groups");
    if (syscall(SYS_setresgid, req->gid, req->gid, req->gid) < 0)
        die_errno("cannot switch to gid %u", (unsigned)req->gid);
    if (syscall(SYS_setresuid, req->uid, req->uid, req->uid) < 0)
        die_errno("cannot switch to uid %u", (unsigned)req->uid);
    /* Leaving uid 0 cleared permitted and effective; inheritable needs clearing by hand. */
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct zero[2];
    memset(zero, 0, sizeof(zero));
    if (syscall(SYS_capset, &hdr, zero) < 0)
        die_errno("cannot clear capabilities");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        die_errno("cannot set no_new_privs");

    /* Verify, do not trust: each drop must have taken effect. */
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
        die_errno("cannot read ids");
    if (ru != req->uid || eu != req->uid || su != req->uid || rg != req->gid || eg != req->gid ||
        sg != req->gid)
        die_code(EPERM, "uid/gid switch did not take effect");
    if (getgroups(0, NULL) != 0)
        die_code(EPERM, "supplementary groups were not cleared");
    /* Permitted and inheritable empty also means ambient empty: the kernel keeps ambient a subset
     * of both (dropping a capability from either drops it from ambient). The bounding set was
     * verified when it was emptied (drop_bounding_set) and cannot grow back. */
    struct __user_cap_data_struct now[2];
    caps_get(now);
    for (int i = 0; i < 2; i++)
        if (now[i].effective || now[i].permitted || now[i].inheritable)
            die_code(EPERM, "capabilities were not cleared");
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_SYS_ADMIN, 0, 0) != 0)
        die_code(EPERM, "capability %d is still in the ambient set", CAP_SYS_ADMIN);
    if (syscall(SYS_setresuid, 0, 0, 0) == 0 || syscall(SYS_setresgid, 0, 0, 0) == 0)
        die_code(EPERM, "could switch back to root after dropping privileges");
    if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
        die_code(EPERM, "no_new_privs did not take effect");
}

/* ---- the child: init and runtime -------------------------------------------------------- */

/* Signals pid 1 forwards to the runtime. pid 1 only receives signals it has a handler for. */
static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

static void noop_handler(int sig)
{
    (void)sig;
}

/* Every signal disposition back to the default (the spawner ignores a few), so that the runtime
 * starts like a fresh process; child_main does it early, run_runtime only undoes run_init's. */
static void default_signals(void)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int sig = 1; sig < NSIG; sig++)
        (void)sigaction(sig, &dfl, NULL);
}

/* Runs in the vfork child of the init: see run_init before changing anything here. */
static _Noreturn void run_runtime(struct child_ctx *c)
{
    /* Default dispositions (child_main reset the others), nothing blocked: the runtime starts
     * like a fresh process. */
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
        if (sigaction(forwarded[i], &dfl, NULL) < 0)
            die_errno("cannot reset signal %d", forwarded[i]);
    if (sigaction(SIGCHLD, &dfl, NULL) < 0)
        die_errno("cannot reset signal %d", SIGCHLD);
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
        die_errno("cannot unblock signals");
    int nul = open("/dev/null", O_RDWR);
    if (nul < 0)
        die_errno("cannot open '/dev/null'");
    /* 0-2 were closed when the init started, so nul is 0; out_fd and err_fd are >= 3. */
    if ((nul != 0 && dup2(nul, 0) < 0) || dup2(c->out_fd, 1) < 0 || dup2(c->err_fd, 2) < 0)
        die_errno("cannot set up stdio");
    if (nul > 2)
        close(nul);
    /* No core dumps: a pipe core_pattern would run a host helper for every crash. */
    struct rlimit nocore = {0, 0};
    if (setrlimit(RLIMIT_CORE, &nocore) < 0)
        die_errno("cannot disable core dumps");
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, c->env->prog, 0, 0) < 0)
        die_errno("cannot load the seccomp filter");
    execve(c->req->argv[0], c->req->argv, c->req->envp);
    int e = errno;
    struct status_msg m = {.code = e};
    snprintf(m.text, sizeof(m.text), "cannot execute '%s': %s", c->req->argv[0], strerror(e));
    ssize_t n = write(status_fd, &m, sizeof(m.code) + strlen(m.text) + 1);
    (void)n;
    _exit(SANDBOX_EXIT_EXEC);
}

static int exit_code_of(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return 255;
}

static void tie_to_spawner(const struct nb_sandbox_env *env);

/* Zygote mode: the signal dispositions of the interpreter (Python's own SIGINT, SIGPIPE...
 * handlers), saved by run_init before it installs its own, restored in the runtime child. */
static struct sigaction zygote_saved[NSIG];

/* The argv and environment areas of this process as the kernel shows them in /proc/self/cmdline
 * and /proc/self/environ (fields 48-51 of /proc/self/stat). */
static bool mm_areas(unsigned long long v[4])
{
    char *stat = NULL;
    if (read_file("/proc/self/stat", &stat, NULL) < 0)
        return false;
    char *p = strrchr(stat, ')');
    int got = 0;
    for (int field = 3; p && field <= 51; field++) {
        p = strchr(p, ' ');
        if (!p)
            break;
        p++;
        if (field >= 48)
            v[got++] = strtoull(p, NULL, 10);
    }
    free(stat);
    return got == 4 && v[1] > v[0] && v[3] > v[2];
}

/* Writes strs NUL-separated into [start, end) as far as whole strings fit; zeroes the rest (the
 * kernel then reads the strings followed by NULs). */
static void fill_area(char *start, char *end, char *const *strs)
{
    char *p = start;
    for (size_t i = 0; strs[i]; i++) {
        size_t n = strlen(strs[i]) + 1;
        if ((size_t)(end - p) < n)
            break;
        memcpy(p, strs[i], n);
        p += n;
    }
    memset(p, 0, (size_t)(end - p));
}

/* Zygote mode: makes /proc/self/cmdline and /proc/self/environ read req's argv and envp (as after
 * an execve of them) and points environ at envp. With CAP_SYS_RESOURCE (PR_SET_MM) the areas are
 * moved to a new block; without it, they are rewritten in place - the zygote is started with a
 * padding variable so that its environment area has room (park_pool.c). */
static void zygote_set_image(const struct nb_sandbox_req *req)
{
    size_t alen = 0, elen = 0, envc = 0;
    for (size_t i = 0; req->argv[i]; i++)
        alen += strlen(req->argv[i]) + 1;
    for (; req->envp[envc]; envc++)
        elen += strlen(req->envp[envc]) + 1;
    char *block = xmalloc(alen + elen + 1), *p = block;
    char **env = xcalloc(envc + 1, sizeof(char *));
    for (size_t i = 0; req->argv[i]; i++)
        p = stpcpy(p, req->argv[i]) + 1;
    for (size_t i = 0; i < envc; i++) {
        env[i] = p;
        p = stpcpy(p, req->envp[i]) + 1;
    }
    environ = env; /* never freed: the process' environment from now on */
    /* Each call must keep start <= end: the block lies below the original stack area, so the
     * starts move first. */
    bool moved =
        prctl(PR_SET_MM, PR_SET_MM_ARG_START, (unsigned long)block, 0, 0) == 0 &&
        prctl(PR_SET_MM, PR_SET_MM_ARG_END, (unsigned long)(block + alen), 0, 0) == 0 &&
        prctl(PR_SET_MM, PR_SET_MM_ENV_START, (unsigned long)(block + alen), 0, 0) == 0 &&
        prctl(PR_SET_MM, PR_SET_MM_ENV_END, (unsigned long)(block + alen + elen), 0, 0) == 0;
    unsigned long long a[4];
    if (!moved && mm_areas(a)) {
        fill_area((char *)(uintptr_t)a[0], (char *)(uintptr_t)a[1], req->argv);
        fill_area((char *)(uintptr_t)a[2], (char *)(uintptr_t)a[3], req->envp);
    }
    const char *base = strrchr(req->argv[0], '/');
    (void)prctl(PR_SET_NAME, base ? base + 1 : req->argv[0], 0, 0, 0);
}

/* Zygote mode: the runtime child, forked (not vfork'd: it goes on running the zygote's
 * interpreter) by the init while both are still privileged. Same steps as run_runtime, plus
 * its own privilege drop (the init drops its own after the fork), and run() instead of execve. */
static _Noreturn void run_zygote_runtime(struct child_ctx *c)
{
    for (int sig = 1; sig < NSIG; sig++)
        (void)sigaction(sig, &zygote_saved[sig], NULL);
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
        die_errno("cannot unblock signals");
    int nul = open("/dev/null", O_RDWR);
    if (nul < 0)
        die_errno("cannot open '/dev/null'");
    /* 0-2 were closed when the init started, so nul is 0; out_fd and err_fd are >= 3. */
    if ((nul != 0 && dup2(nul, 0) < 0) || dup2(c->out_fd, 1) < 0 || dup2(c->err_fd, 2) < 0)
        die_errno("cannot set up stdio");
    if (nul > 2)
        close(nul);
    close(c->out_fd); /* not exec'ing: close what CLOEXEC would have */
    close(c->err_fd);
    struct rlimit nocore = {0, 0};
    if (setrlimit(RLIMIT_CORE, &nocore) < 0)
        die_errno("cannot disable core dumps");
    zygote_set_image(c->req);
    drop_privileges(c->req);
    /* An execve by the unprivileged uid would have made the process dumpable again (owner of
     * its /proc files); the uid switch cleared it. */
    if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
        die_errno("cannot set dumpable");
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, c->env->prog, 0, 0) < 0)
        die_errno("cannot load the seccomp filter");
    /* What an execve would leave: stdio only (the spawner's pidfd, the status pipe... were all
     * CLOEXEC). The status pipe's end-of-file tells the spawner "exec'd" once the init closed
     * its end too. */
    if (close_range(3, ~0u, 0) < 0)
        die_errno("cannot close inherited fds");
    status_fd = -1;
    c->env->run(c->req, c->env->run_arg);
    _exit(SANDBOX_EXIT_EXEC);
}

static _Noreturn void run_init(struct child_ctx *c)
{
    bool zygote = c->env->run != NULL;
    if (zygote)
        for (int sig = 1; sig < NSIG; sig++)
            if (sigaction(sig, NULL, &zygote_saved[sig]) < 0)
                zygote_saved[sig] = (struct sigaction){.sa_handler = SIG_DFL};
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    struct sigaction sa = {.sa_handler = noop_handler};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++) {
        sigaddset(&set, forwarded[i]);
        if (sigaction(forwarded[i], &sa, NULL) < 0)
            die_errno("cannot install handler for signal %d", forwarded[i]);
    }
    if (sigaction(SIGCHLD, &sa, NULL) < 0)
        die_errno("cannot install SIGCHLD handler");
    /* Blocked before the fork, so nothing sent in between is lost. */
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        die_errno("cannot block signals");
    /* vfork: no copy of this address space (a fork costs ~0.5 ms of a ~2 ms start here). Safe
     * because run_runtime only changes per-task state (handlers, mask, fds, rlimit, seccomp), never
     * returns, and ends in execve or _exit; the init waits until then. */
    pid_t rt = zygote ? fork() : vfork();
    if (rt < 0)
        die_errno("cannot fork the runtime");
    if (rt == 0) {
        if (zygote)
            run_zygote_runtime(c);
        run_runtime(c);
    }
    if (zygote) {
        /* The runtime child dropped its own privileges; now the init's. A failure here kills
         * the init, and with it the runtime (pid namespace). */
        drop_privileges(c->req);
        tie_to_spawner(c->env);
    }
    /* The runtime child now holds the only status pipe end: end-of-file there = exec'd. */
    close(status_fd);
    close(c->out_fd);
    close(c->err_fd);
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&set, &si);
        if (sig < 0)
            continue;
        if (sig != SIGCHLD) {
            kill(rt, sig);
            continue;
        }
        int st;
        pid_t p;
        while ((p = waitpid(-1, &st, WNOHANG)) > 0)
            if (p == rt)
                _exit(exit_code_of(st)); /* the kernel kills the rest of the pid namespace */
    }
}

/* Closes every fd but those in keep (n entries, -1 ignored). */
static void close_other_fds(int *keep, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
            int t = keep[j];
            keep[j] = keep[j - 1];
            keep[j - 1] = t;
        }
    unsigned lo = 0;
    for (size_t i = 0; i < n; i++) {
        if (keep[i] < 0 || (unsigned)keep[i] < lo)
            continue;
        if ((unsigned)keep[i] > lo && close_range(lo, (unsigned)keep[i] - 1, 0) < 0)
            die_errno("cannot close inherited fds");
        lo = (unsigned)keep[i] + 1;
    }
    if (close_range(lo, ~0u, 0) < 0)
        die_errno("cannot close inherited fds");
}

static void attach_cgroups(const struct nb_sandbox_req *req)
{
    for (size_t i = 0; req->cgroup_dirs[i]; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/cgroup.procs", req->cgroup_dirs[i]);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            die_errno("cannot attach to cgroup '%s'", req->cgroup_dirs[i]);
        if (write(fd, "0", 1) != 1)
            die_errno("cannot attach to cgroup '%s'", req->cgroup_dirs[i]);
        close(fd);
    }
}

/* Makes the init die with the spawner, whatever kills the spawner. */
static void tie_to_spawner(const struct nb_sandbox_env *env)
{
    /* After the uid switch: a credential change clears the parent-death signal. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        die_errno("cannot set the parent-death signal");
    if (env->spawner_pidfd >= 0) {
        struct pollfd pfd = {.fd = env->spawner_pidfd, .events = POLLIN};
        if (poll(&pfd, 1, 0) != 0)
            die_code(ESRCH, "spawner exited during sandbox setup");
        close(env->spawner_pidfd);
    }
    /* No ptrace attach, no core dumps, /proc/1 owned by root. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        die_errno("cannot clear dumpable");
}

/* True when the spec's cgroups are none or exactly those the child was parked in. */
static bool same_cgroups(char **parked, char **spec)
{
    if (!spec[0])
        return true;
    size_t i = 0;
    for (; parked[i] && spec[i]; i++)
        if (strcmp(parked[i], spec[i]))
            return false;
    return !parked[i] && !spec[i];
}

/* Parked: says so on the status pipe, then blocks (no setup deadline applies) until the spawner
 * sends the rest of the spec, which replaces c->req, with its fd: the netns (if the spec has
 * one), or, deep-parked, the code tree. End-of-file means unparked or the spawner is gone: exit
 * quietly. */
static void await_spec(struct child_ctx *c)
{
    static struct nb_sandbox_req req;
    /* Parked for long: die with the spawner (set again after the uid switch, which clears it). */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        die_errno("cannot set the parent-death signal");
    struct status_msg m = {.code = 0, .text = "parked"};
    if (write(status_fd, &m, sizeof(m.code) + sizeof("parked")) < 0)
        _exit(SANDBOX_EXIT_SETUP);
    char *buf = xmalloc(SANDBOX_SPEC_MAX + 1); /* freed by execve */
    int fds[3] = {-1, -1, -1};
    size_t nfds = 0;
    int mflags = 0;
    ssize_t n =
        fdpass_recv(c->spec_fd, buf, SANDBOX_SPEC_MAX + 1, 0, fds, ARRAY_SIZE(fds), &nfds, &mflags);
    if (n == 0)
        _exit(0);
    if (n < 0)
        die_errno_((int)-n, "cannot receive the sandbox spec");
    struct nb_err e = {0};
    if (mflags & (MSG_TRUNC | MSG_CTRUNC))
        die_code(E2BIG, "sandbox spec for a parked child is too large");
    if (sandbox_req_decode(buf, (size_t)n, &req, &e) < 0)
        die_code(e.code, "%s", e.msg);
    if (c->deep && req.has_netns)
        die_code(EINVAL, "sandbox spec for a deep-parked child names a network namespace");
    if (nfds != (c->deep || req.has_netns ? 1 : 0))
        die_code(EINVAL, "sandbox spec for a parked child carries %zu fds", nfds);
    if (c->deep && (!req.runtime_dir != !c->req->runtime_dir ||
                    (req.runtime_dir && strcmp(req.runtime_dir, c->req->runtime_dir))))
        die_code(EINVAL, "sandbox spec names another runtime dir than the parked child's");
    if (!same_cgroups(c->req->cgroup_dirs, req.cgroup_dirs))
        die_code(EINVAL, "sandbox spec names other cgroups than the parked child's");
    if (c->identity_done &&
        (req.uid != c->req->uid || req.gid != c->req->gid || !req.hostname != !c->req->hostname ||
         (req.hostname && strcmp(req.hostname, c->req->hostname))))
        die_code(EINVAL, "sandbox spec names another uid, gid or hostname than the parked child's");
    close(c->spec_fd);
    c->spec_fd = -1;
    if (c->deep) {
        c->code_fd = fds[0];
        c->park_runtime_dir = c->req->runtime_dir;
        c->park_tmp_bytes = c->req->tmp_bytes;
    } else {
        c->netns_fd = nfds ? fds[0] : -1;
        c->fresh_netns = !req.has_netns;
    }
    c->req = &req;
}

static void join_netns(struct child_ctx *c)
{
    if (c->netns_fd >= 0) {
        if (setns(c->netns_fd, CLONE_NEWNET) < 0)
            die_errno("cannot join the network namespace");
        close(c->netns_fd);
        c->netns_fd = -1;
    } else if (c->fresh_netns && unshare(CLONE_NEWNET) < 0) {
        die_errno("cannot create the network namespace");
    }
}

static _Noreturn void child_main(struct child_ctx *c)
{
    int keep[] = {status_fd, c->out_fd, c->err_fd, c->netns_fd, c->env->spawner_pidfd, c->spec_fd};
    close_other_fds(keep, ARRAY_SIZE(keep));
    attach_cgroups(c->req); /* first: everything after it is charged to the instance */
    sandbox_set_proc_title("nimbus-init");
    /* Own session: a terminal's ^C aimed at the daemon never reaches a function. */
    if (setsid() < 0)
        die_errno("cannot start a session");
    if (unshare(CLONE_NEWCGROUP) < 0)
        die_errno("cannot unshare the cgroup namespace");
    if (!c->env->run) /* zygote mode keeps the interpreter's (run_zygote_runtime) */
        default_signals();
    if (c->deep) { /* everything the function does not decide, before the spec */
        drop_bounding_set();
        join_netns(c);
        build_root(c);
        bind_runtime(c);
        enter_root(c);
        if (c->req->uid) { /* given an identity: /etc too */
            write_identity(c->req);
            c->identity_done = true;
        }
    }
    if (c->spec_fd >= 0)
        await_spec(c);
    if (!c->deep) {
        join_netns(c);
        build_root(c);
        bind_code(c);
        bind_runtime(c);
        enter_root(c);
    }
    finish_root(c);
    if (!c->env->run) { /* zygote mode: run_init forks the runtime first (see there) */
        drop_privileges(c->req);
        tie_to_spawner(c->env);
    }
    run_init(c);
}

/* ---- the spawner side ------------------------------------------------------------------- */

int sandbox_prepare(const struct nb_sandbox_env *env, struct nb_err *err)
{
    int r = mkdir_p(env->root_dir, 0755);
    if (r < 0)
        return err_set(err, r, "cannot create '%s': %s", env->root_dir, strerror(-r));
    return 0;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

/* Clones the sandbox init. park: it gets a spec socket and waits there after the cgroup attach
 * (netns_fd < 0: its network namespace is decided with the spec, so it is cloned in the
 * spawner's) or, deep (netns_fd >= 0), after it joined netns_fd and built its root. */
static int start(const struct nb_sandbox_env *env, const struct nb_sandbox_req *req, int netns_fd,
                 bool park, struct nb_sandbox_child *child, struct nb_err *err)
{
    int st[2] = {-1, -1}, out[2] = {-1, -1}, er[2] = {-1, -1}, sp[2] = {-1, -1};
    if (pipe2(st, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(er, O_CLOEXEC) < 0 ||
        (park && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)) {
        int e = errno;
        int fds[] = {st[0], st[1], out[0], out[1], er[0], er[1], sp[0], sp[1]};
        for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
            if (fds[i] >= 0)
                close(fds[i]);
        return err_set(err, e, "cannot create sandbox pipes: %s", strerror(e));
    }
    int pidfd = -1;
    struct clone_args args = {
        .flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_PIDFD |
                 (netns_fd < 0 && !park ? CLONE_NEWNET : 0) | (env->run ? CLONE_PARENT : 0),
        .pidfd = (uint64_t)(uintptr_t)&pidfd,
        /* with CLONE_PARENT the child inherits the caller's exit signal (clone3 insists on 0) */
        .exit_signal = env->run ? 0 : SIGCHLD,
    };
    /* stack 0: the child continues on a copy of this stack, like fork(). */
    long pid = syscall(SYS_clone3, &args, sizeof(args));
    if (pid == 0) {
        status_fd = st[1];
        struct child_ctx c = {.env = env,
                              .req = req,
                              .out_fd = out[1],
                              .err_fd = er[1],
                              .netns_fd = netns_fd,
                              .spec_fd = sp[1],
                              .deep = park && netns_fd >= 0,
                              .code_fd = -1};
        child_main(&c);
    }
    int e = errno;
    int ours[] = {st[1], out[1], er[1], sp[1]};
    for (size_t i = 0; i < ARRAY_SIZE(ours); i++)
        if (ours[i] >= 0)
            close(ours[i]);
    if (pid < 0) {
        int theirs[] = {st[0], out[0], er[0], sp[0]};
        for (size_t i = 0; i < ARRAY_SIZE(theirs); i++)
            if (theirs[i] >= 0)
                close(theirs[i]);
        return err_set(err, e, "cannot clone the sandbox: %s", strerror(e));
    }
    (void)set_nonblock(st[0]);
    (void)set_nonblock(out[0]);
    (void)set_nonblock(er[0]);
    child->pid = (pid_t)pid;
    child->pidfd = pidfd;
    child->status_fd = st[0];
    child->stdout_fd = out[0];
    child->stderr_fd = er[0];
    child->spec_fd = sp[0];
    return 0;
}

int sandbox_start(const struct nb_sandbox_env *env, const struct nb_sandbox_req *req, int netns_fd,
                  struct nb_sandbox_child *child, struct nb_err *err)
{
    if (req->has_netns != (netns_fd >= 0))
        return err_set(err, EINVAL, "spawn request and network namespace fd disagree");
    return start(env, req, netns_fd, false, child, err);
}

int sandbox_park(const struct nb_sandbox_env *env, const struct nb_sandbox_req *req, int netns_fd,
                 struct nb_sandbox_child *child, struct nb_err *err)
{
    return start(env, req, netns_fd, true, child, err);
}

int sandbox_open_tree(const char *dir, int *fd_out, struct nb_err *err)
{
    int fd = open_tree(AT_FDCWD, dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (fd < 0)
        return err_set(err, errno, "cannot clone the mount of '%s': %s", dir, strerror(errno));
    *fd_out = fd;
    return 0;
}

int sandbox_send_spec(int spec_fd, const void *spec, size_t len, const int *fds, size_t nfds,
                      struct nb_err *err)
{
    ASSERT(nfds <= 3);
    int r = fdpass_send(spec_fd, spec, len, NULL, 0, fds, nfds, MSG_DONTWAIT);
    if (r < 0)
        return err_set(err, r, "cannot hand the spec to the parked sandbox: %s", strerror(-r));
    return 0;
}

int sandbox_result(int fd, struct nb_err *err)
{
    struct status_msg m;
    ssize_t n;
    do
        n = read(fd, &m, sizeof(m));
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return -EAGAIN;
    if (n < 0)
        return err_set(err, errno, "cannot read sandbox status: %s", strerror(errno));
    if (n == 0)
        return 0;
    if ((size_t)n <= sizeof(m.code))
        return err_set(err, EIO, "sandbox setup failed (truncated status)");
    if (m.code == 0)
        return SANDBOX_PARKED; /* await_spec's message; die_code never sends code 0 */
    ((char *)&m)[n < (ssize_t)sizeof(m) ? n : (ssize_t)sizeof(m) - 1] = '\0';
    int code = m.code > 0 && m.code < 4096 ? m.code : EIO;
    if (code == EAGAIN) /* keep -EAGAIN meaning "not yet" for the caller */
        code = EBUSY;
    return err_set(err, code, "%s", m.text);
}

/* ---- process title ---------------------------------------------------------------------- */

void sandbox_set_proc_title(const char *name)
{
    (void)prctl(PR_SET_NAME, name, 0, 0, 0);
    char *stat = NULL;
    if (read_file("/proc/self/stat", &stat, NULL) < 0)
        return;
    /* Fields after the last ')' start at field 3; arg_start and arg_end are fields 48 and 49. */
    char *p = strrchr(stat, ')');
    unsigned long long arg_start = 0, arg_end = 0;
    for (int field = 3; p && field <= 49; field++) {
        p = strchr(p, ' ');
        if (!p)
            break;
        p++;
        if (field == 48)
            arg_start = strtoull(p, NULL, 10);
        else if (field == 49)
            arg_end = strtoull(p, NULL, 10);
    }
    free(stat);
    if (!arg_start || arg_end <= arg_start + 1)
        return;
    size_t len = (size_t)(arg_end - arg_start);
    char *area = (char *)(uintptr_t)arg_start;
    memset(area, 0, len);
    size_t n = strlen(name);
    memcpy(area, name, n < len - 1 ? n : len - 1);
}

/*
 * spawner.h - the daemon's side of the spawner: a small single-threaded process forked at start-up,
 * before any thread exists, that builds sandboxes and network namespaces on request.
 *
 * Protocol: a unix SEQPACKET socketpair. The daemon sends one request per message; the spawner
 * answers each with one message (fds passed with SCM_RIGHTS) and, for each sandbox it started,
 * later sends one exit message carrying the wait status (the spawner is the parent and reaps).
 * All daemon-side calls are asynchronous and run on the loop thread; callbacks run on the loop.
 *
 * Sandbox (built by sandbox.c inside the spawner; DESIGN.md §4): new pid, mount, ipc, uts and
 * cgroup namespaces; joins the given network namespace; tmpfs root with read-only /usr, a minimal
 * /etc, the code at /var/task and the runtime at /var/runtime (both read-only), tmpfs /tmp limited
 * to tmp_bytes, minimal /dev, /proc; pivot_root; / read-only. It attaches itself to the cgroups,
 * drops every capability, switches to uid/gid, sets no_new_privs and loads the seccomp filter
 * (compiled once in the spawner) right before execve(argv[0]). Each step is checked; any failure
 * kills the child and is reported (fail closed). A tiny init (pid 1 of the new pid namespace)
 * forks the runtime, reaps orphans and exits with the runtime's status (128+signal when killed),
 * so killing pid 1 through the pidfd kills the whole instance.
 *
 * Parked sandboxes (spawner_park): the same child, cloned ahead of time, attaches itself to its
 * cgroups and unshares the cgroup namespace, then waits without a deadline. Moving a process into
 * a cgroup can cost an RCU grace period (5-16 ms after an idle spell), so doing it here keeps it
 * off the request path. Given a network namespace, the park is deep: the child also joins it and
 * builds its whole root (every mount, pivot_root, read-only /) before it waits; only what names
 * the function or instance is left for the spec - the code and runtime dirs (the spawner clones
 * their mounts with open_tree and passes them along; the child attaches them read-only), /etc's
 * passwd, group, hosts and hostname (then /etc read-only), the sizes of /tmp and /dev/shm, the
 * hostname, the uid switch. spawner_spawn with spec.park_id hands it the rest of its spec; it
 * then goes on as any other spawn (same callbacks, same errors). A deep-parked child gets its spec
 * from the daemon directly (the spawner passed its spec socket along when it parked), so what the
 * daemon checks itself - the code dir's mount can be cloned, no netns in the spec, the child is
 * still alive - fails spawner_spawn at once instead of through the callback. It dies with the
 * spawner like any sandbox.
 *
 * Ownership: spawner_start returns a struct the daemon frees with spawner_stop. Spec strings are
 * borrowed for the duration of the spawner_spawn call only (they are serialised). fds handed to a
 * callback belong to the callback (it must close or keep them).
 */
#ifndef NIMBUS_SPAWNER_H
#define NIMBUS_SPAWNER_H

#include <sys/types.h>
#include <uv.h>

#include "err.h"

struct nb_spawner;

struct nb_sandbox_spec {
    const char *code_dir;           /* host dir bound read-only at /var/task */
    const char *runtime_dir;        /* host dir bound read-only at /var/runtime (may be NULL) */
    const char *const *argv;        /* NULL-terminated; argv[0] is a path inside the sandbox */
    const char *const *envp;        /* NULL-terminated; the complete environment */
    int netns_fd;                   /* network namespace to join (borrowed; passed to the spawner);
                                       -1: a fresh empty one (lo down, ~0.6 ms); the host's: EINVAL */
    const char *const *cgroup_dirs; /* NULL-terminated host cgroup dirs; the child writes its pid
                                       to each cgroup.procs before anything else */
    uid_t uid;                      /* unprivileged, != 0 */
    gid_t gid;                      /* != 0 */
    uint64_t tmp_bytes;             /* size of /tmp, and of /dev/shm; must be > 0 */
    const char *hostname;           /* may be NULL ("sandbox"); [A-Za-z0-9.-], at most 64 chars */
    uint64_t park_id;               /* 0: clone a new sandbox. Else the id spawner_park gave: that
                                       parked child continues (once; cgroup_dirs must be NULL or
                                       the park's; netns_fd -1 for a deep park); an unknown or
                                       used id fails (ESRCH) */
};

/* A park (spawner_park). Borrowed for the call. */
struct nb_park_spec {
    const char *const *cgroup_dirs; /* NULL-terminated host cgroup dirs the child attaches to */
    int netns_fd;                   /* -1: the netns comes with the spawn. Else a deep park: the
                                       child joins it at once (passed to the spawner; the host's:
                                       EINVAL) and builds its root; the spawn's netns_fd must then
                                       be -1 */
    const char *runtime_dir;        /* deep only, may be NULL: bound at /var/runtime at park time;
                                       the spawn's runtime_dir must be the same (else it fails) */
    uint64_t tmp_bytes;             /* deep only: size of /tmp and /dev/shm at park time (0: one
                                       page); resized when the spawn's differs */
    uid_t uid;                      /* deep only, 0: none. The instance identity /etc (passwd,
                                       group, hosts, hostname) and the hostname get at park time;
                                       the spawn's uid, gid and hostname must then be the same
                                       (else it fails). 0: written after the spawn */
    gid_t gid;                      /* with uid */
    const char *hostname;           /* with uid, may be NULL ("sandbox") */
};

struct nb_spawned {
    pid_t pid;     /* host pid of the sandbox init */
    int pidfd;     /* owned by the callback */
    int stdout_fd; /* read end of the runtime's stdout pipe, non-blocking; owned by the callback */
    int stderr_fd; /* read end of the runtime's stderr pipe, non-blocking; owned by the callback */
};

/* rc is 0 with res filled, or negative with err filled. Called exactly once per accepted
 * spawner_spawn, after the runtime was exec'd (rc 0) or when anything failed (setup step, execve,
 * 10 s setup timeout, spawner gone: -EPIPE). On failure nothing is left running and no exit_cb
 * follows. err->msg says which step failed ("cannot execute '/var/task/x': No such file or
 * directory"); its code is the errno of that step, so do not map it to API errors blindly (an
 * ENOENT here is a broken function, not a missing resource). */
typedef void (*nb_spawn_cb)(void *data, int rc, const struct nb_spawned *res,
                            const struct nb_err *err);
/* Sandbox init exited; wstatus as from waitpid. Called exactly once per successful spawn, always
 * after its spawn_cb (possibly in the same loop iteration). The init exits with the runtime's
 * status: WIFEXITED with the runtime's code, or WIFEXITED with 128+signal when the runtime was
 * killed (an OOM kill of the runtime reads 137: check cgroup_oom_kills). WIFSIGNALED means the init
 * itself was killed (spawner_kill(SIGKILL), or SIGKILL when the spawner died). When it runs, the
 * sandbox's processes are all gone; stdout/stderr may still hold unread data: read to EOF. */
typedef void (*nb_exit_cb)(void *data, int wstatus);
/* rc 0 with park_id (never 0) of a child that is attached to its cgroups and waits, or negative
 * with err (e.g. ENOENT: a cgroup dir does not exist). */
typedef void (*nb_park_cb)(void *data, int rc, uint64_t park_id, const struct nb_err *err);
/* The abstract Unix socket name (without its leading NUL) of the Runtime API in every namespace
 * made by spawner_make_netns. Abstract names are scoped to the network namespace: a function sees
 * its own instance's listener only. */
#define NB_RUNTIME_API_SOCKET "nimbus-runtime-api"

/* rc 0: netns_fd is an fd of a new network namespace with lo up, listen_fd a TCP socket bound and
 * listening on 127.0.0.1:port inside it, unix_fd a Unix stream socket bound and listening on the
 * abstract name NB_RUNTIME_API_SOCKET inside it. All three owned by the callback. */
typedef void (*nb_netns_cb)(void *data, int rc, int netns_fd, int listen_fd, int unix_fd,
                            const struct nb_err *err);

/* Forks the spawner. Must run before any thread is created (before uv_queue_work etc.); refused
 * with EBUSY otherwise. Waits (up to 10 s) until the spawner has compiled the seccomp filter and
 * prepared its root dir, and fails with its reason if it cannot (fail closed at start-up). */
struct nb_spawner *spawner_start(struct nb_err *err);
/* Attaches the spawner's socket to loop; call once the loop exists. */
int spawner_attach(struct nb_spawner *sp, uv_loop_t *loop, struct nb_err *err);
/* Asks for a sandbox. Callbacks get data. Returns 0 when the request was sent (or queued);
 * a negative value (bad spec: EINVAL/E2BIG; spawner gone: EPIPE; a deep park that cannot be
 * taken, see above: the park is dropped) means no callback will run.
 * Callbacks never run from inside this call. on_exit may be NULL. */
int spawner_spawn(struct nb_spawner *sp, const struct nb_sandbox_spec *spec, nb_spawn_cb on_spawn,
                  nb_exit_cb on_exit, void *data, struct nb_err *err);
/* Asks for a parked sandbox as ps says. cb runs exactly once if this returns 0 (-EPIPE if the
 * spawner dies first). The id stays valid until a spawner_spawn uses it, spawner_unpark, or the
 * spawner stops; the child costs a process and its pipes (and a deep one its mounts) meanwhile.
 */
int spawner_park(struct nb_spawner *sp, const struct nb_park_spec *ps, nb_park_cb cb, void *data,
                 struct nb_err *err);
/* The same, but the child is cloned by a zygote (zygote.h): a pre-initialised interpreter started
 * (once, then again after it died or when argv/envp change) as execve(zygote_argv[0], zygote_argv,
 * zygote_envp) with its socket at fd ZYGOTE_SOCK_FD. Its parked children are the spawner's like
 * any other (same ids, same spawn, kill and exit reports); a spawn of one runs the zygote's
 * runtime in-process instead of spec.argv (which then only names what /proc shows). If the zygote
 * cannot start or dies, cb gets the error (e.g. EPIPE). */
int spawner_park_zygote(struct nb_spawner *sp, const char *const *zygote_argv,
                        const char *const *zygote_envp, const char *const *cgroup_dirs,
                        nb_park_cb cb, void *data, struct nb_err *err);
/* Kills a parked, unused sandbox (best effort; unknown ids are ignored). No callback runs. */
void spawner_unpark(struct nb_spawner *sp, uint64_t park_id);
/* Asks for a new network namespace with the Runtime API listener on 127.0.0.1:port (the
 * listener is non-blocking and CLOEXEC). cb runs exactly once if this returns 0. */
int spawner_make_netns(struct nb_spawner *sp, int port, nb_netns_cb cb, void *data,
                       struct nb_err *err);
/* Sends sig to the sandbox init through its pidfd. Returns 0 or -errno (-ESRCH once it exited).
 * SIGKILL kills the whole sandbox at once; SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1/2 are
 * forwarded by the init to the runtime process. */
int spawner_kill(int pidfd, int sig);
/* Closes the socket, which makes the spawner kill every sandbox it started and exit; waits for it
 * (bounded) and frees sp. Pending callbacks are not called. May be called from a callback (the
 * stop then completes when the callback returns). Once attached, sp's memory is released in a
 * close callback: run the loop once more before uv_loop_close.
 * If the spawner dies on its own, the daemon side notices: pending spawn/netns callbacks get
 * -EPIPE, every running sandbox gets exit_cb(SIGKILL) (they are killed), later calls fail with
 * EPIPE. The daemon still calls spawner_stop to free it. */
void spawner_stop(struct nb_spawner *sp);

#endif

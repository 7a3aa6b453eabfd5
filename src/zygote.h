/*
 * zygote.h - pre-initialised language runtimes that clone sandboxes (the Python zygote:
 * runtimes/python/zygote.py with the _nimbus_zygote extension, src/zygote_py.c). Design and
 * isolation argument: docs/design/zygote.md.
 *
 * A zygote is a child of the spawner, exec'd by it (spawner.c) and serving it alone over a
 * SOCK_SEQPACKET socket. It hardens itself (zygote_harden), pre-imports its runtime, then serves
 * park requests: for each, it clones a parked sandbox exactly as the spawner would (sandbox_park)
 * except that the clone has CLONE_PARENT - the sandbox is the spawner's child, which reaps it and
 * reports its exit like any other - and that its runtime child goes on running the zygote's
 * interpreter instead of execve (struct nb_sandbox_env.run). The zygote answers with the fds the
 * spawner needs to treat the child as one of its own parked kids.
 *
 * Wire, one message = struct nb_zygote_msg + payload, fds as SCM_RIGHTS:
 *   spawner -> zygote  ZY_PARK    id; payload: a park request (sandbox_park_encode)
 *   zygote -> spawner  ZY_PARKED  id, pid; fds: pidfd, status, stdout, stderr, spec (5)
 *                      ZY_ERROR   id, code; payload: message text
 * The spawner's request to start a zygote travels in MSG_PARK_ZYGOTE (zygote_park_encode): the
 * zygote's argv and envp, then the park request itself.
 *
 * Nothing here depends on Python; src/zygote_py.c binds it to the interpreter.
 */
#ifndef NIMBUS_ZYGOTE_H
#define NIMBUS_ZYGOTE_H

#include <sys/types.h>

#include "sandbox.h"

#define ZYGOTE_FDS 5
#define ZYGOTE_ARGV_MAX 16
#define ZYGOTE_ENV_MAX 64
/* The socket is always this fd in the exec'd zygote. */
#define ZYGOTE_SOCK_FD 3

enum nb_zygote_type { ZY_PARK = 1, ZY_PARKED = 2, ZY_ERROR = 3 };

struct nb_zygote_msg {
    uint32_t type;
    int32_t arg; /* ZY_PARKED: pid; ZY_ERROR: errno code */
    uint64_t id;
};

/* Called around each clone in the zygote (e.g. PyOS_BeforeFork / PyOS_AfterFork_Parent). */
struct nb_zygote_hooks {
    void (*before_fork)(void);
    void (*after_fork_parent)(void);
};

/* Sends one message (blocking, MSG_NOSIGNAL). Returns 0 or -errno. */
int zygote_send(int fd, uint32_t type, int32_t arg, uint64_t id, const void *payload, size_t len,
                const int *fds, size_t nfds);
/* Receives one message into buf (header first). flags: MSG_DONTWAIT or 0. Returns its length, 0
 * at end of file, or -errno; fds (at most ZYGOTE_FDS, more are closed) in fds (count in nfds),
 * CLOEXEC; *mflags gets msg_flags. */
ssize_t zygote_recv(int fd, void *buf, size_t cap, int flags, int *fds, size_t *nfds, int *mflags);

/* Zygote side, at start-up, root: own mount (everything read-only and nosuid, but the cgroup
 * hierarchies), ipc, uts and network namespaces; every capability dropped from all sets but
 * those its sandbox children need to build themselves (SYS_ADMIN, SETUID, SETGID, SETPCAP,
 * SYS_RESOURCE, DAC_OVERRIDE, DAC_READ_SEARCH); no_new_privs; not dumpable; the zygote's
 * seccomp filter (seccomp_build_zygote). Checked. */
int zygote_harden(struct nb_err *err);
/* Zygote side: serves park requests on sock until end of file (returns 0) or a socket error.
 * env->run must be set; env->prog, root_dir and spawner_pidfd as in the spawner. In a sandbox's
 * runtime child this never returns: env->run does not either. */
int zygote_serve(int sock, const struct nb_sandbox_env *env, const struct nb_zygote_hooks *hooks,
                 struct nb_err *err);

/* The MSG_PARK_ZYGOTE payload: argv (argv[0] an absolute path; at most ZYGOTE_ARGV_MAX), envp
 * (at most ZYGOTE_ENV_MAX, each "K=V"), then the park request for cgroup_dirs. */
int zygote_park_encode(const char *const *argv, const char *const *envp,
                       const char *const *cgroup_dirs, struct nb_buf *out, struct nb_err *err);
/* sandbox_park_decode for the park request a zygote serves: a deep park is refused. */
int zygote_park_req_decode(const void *buf, size_t len, struct nb_sandbox_req *req,
                           struct nb_err *err);
/* Decodes and validates it. argv and envp are malloc'd NULL-terminated arrays of pointers into
 * buf (free the arrays); park and park_len give the park request inside buf. */
int zygote_park_decode(const void *buf, size_t len, char ***argv, char ***envp, const void **park,
                       size_t *park_len, struct nb_err *err);

#endif

/*
 * sandbox.h - internal to the spawner: the wire form of a spawn request and the code that turns
 * one into a running sandbox (DESIGN.md §4; docs/design/sandbox.md for the security model).
 *
 * The daemon encodes a struct nb_sandbox_spec with sandbox_spec_encode; the spawner decodes it into
 * a struct nb_sandbox_req (strings point into the message buffer) and calls sandbox_start, which
 * clone()s the sandbox init and returns at once. The child builds the sandbox, step by step, each
 * checked; the first failure is written to the status pipe and the child exits (fail closed).
 * sandbox_result reads that pipe: end-of-file means execve succeeded.
 *
 * Parking (sandbox_park): the same child, cloned ahead of time, stops right after it attached
 * itself to its cgroups and unshared the cgroup namespace - the expensive, lock-heavy part of a
 * start (shared/notes/sandbox.md §5) - reports SANDBOX_PARKED on the status pipe and blocks on a
 * SEQPACKET socket until sandbox_send_spec delivers the rest of its spec (and netns fd); it then
 * continues with the very same code as a direct start. A deep park also joins its netns and builds
 * and enters its whole root before it reports parked; its spec comes with the code dir's mount
 * (sandbox_open_tree) instead of a netns. End-of-file on that socket ends it.
 *
 * Only the spawner (single-threaded, so ordinary libc is safe in the children) calls
 * sandbox_start. Encoding and decoding are pure and safe anywhere; decoding validates everything
 * (it is the spawner's input boundary).
 */
#ifndef NIMBUS_SANDBOX_H
#define NIMBUS_SANDBOX_H

#include <linux/filter.h>

#include "err.h"
#include "spawner.h"

/* Empty host directory each sandbox mounts its private root on (inside its own mount ns). */
#define SANDBOX_ROOT_DIR "/run/nimbus/sbxroot"
/* Largest encoded spec; the spawner's receive buffer is sized from it. */
#define SANDBOX_SPEC_MAX (64 * 1024)
/* Exit status of a sandbox init whose setup failed (the reason went over the status pipe). */
#define SANDBOX_EXIT_SETUP 125
/* Exit status of the runtime child when execve failed. */
#define SANDBOX_EXIT_EXEC 127
/* sandbox_result of a parked child that is waiting for its spec. */
#define SANDBOX_PARKED 1

/* A decoded spec. Strings point into the buffer it was decoded from; the arrays are malloc'd and
 * NULL-terminated (released by sandbox_req_release). */
struct nb_sandbox_req {
    const char *code_dir;
    const char *runtime_dir; /* NULL when absent */
    const char *hostname;    /* NULL when absent */
    char **argv;
    char **envp;
    char **cgroup_dirs;
    uid_t uid;
    gid_t gid;
    uint64_t tmp_bytes;
    uint64_t park_id; /* 0, or the parked child to continue (spawner.c) */
    bool has_netns;   /* the request carries a netns fd; without one the sandbox gets a fresh,
                         empty network namespace (no interfaces up) */
};

/* Spawner-wide state the children use; borrowed. */
struct nb_sandbox_env {
    const struct sock_fprog *prog; /* seccomp program loaded right before execve */
    const char *root_dir;          /* SANDBOX_ROOT_DIR */
    int spawner_pidfd;             /* the spawner's own pidfd (parent-death check), or -1 */
    /* Zygote mode (zygote.h), NULL in the spawner: the sandbox is cloned with CLONE_PARENT, so
     * it is the spawner's child, not the caller's; the init fork()s the runtime child before
     * dropping its own privileges, and the runtime child - after the very same setup as a
     * fresh runtime (its own privilege drop, verified; stdio; seccomp), with /proc/self/cmdline
     * and /proc/self/environ showing req's argv and envp, and the status pipe closed - calls
     * run(req, run_arg) instead of execve. run must not return (it longjmps back into the
     * zygote's interpreter); if it does, the runtime exits with SANDBOX_EXIT_EXEC. */
    void (*run)(const struct nb_sandbox_req *req, void *run_arg);
    void *run_arg;
};

/* A started sandbox, as the spawner sees it. All fds are CLOEXEC and owned by the caller. */
struct nb_sandbox_child {
    pid_t pid;
    int pidfd;
    int status_fd; /* read end of the status pipe, non-blocking */
    int stdout_fd; /* read end, non-blocking */
    int stderr_fd; /* read end, non-blocking */
    int spec_fd;   /* parked children: the spawner's end of the spec socket; otherwise -1 */
};

/* Validates spec and appends its wire form to out. EINVAL names the bad field; E2BIG when the
 * encoding exceeds SANDBOX_SPEC_MAX. spec->netns_fd is not encoded (it travels as SCM_RIGHTS);
 * only its presence is. */
int sandbox_spec_encode(const struct nb_sandbox_spec *spec, struct nb_buf *out, struct nb_err *err);
/* Decodes and validates buf[0..len); req borrows buf. On failure nothing needs releasing. */
int sandbox_req_decode(const void *buf, size_t len, struct nb_sandbox_req *req, struct nb_err *err);
void sandbox_req_release(struct nb_sandbox_req *req);
/* The wire form of a park request (ps->netns_fd only as "deep" or not: the fd travels as
 * SCM_RIGHTS), validated like a spec's, appended to out. */
int sandbox_park_encode(const struct nb_park_spec *ps, struct nb_buf *out, struct nb_err *err);
/* Decodes a park request into req: only cgroup_dirs, runtime_dir, tmp_bytes, uid, gid, hostname
 * (a deep park's identity, 0/NULL when none) and has_netns (= a deep park) are set. Release with
 * sandbox_req_release. */
int sandbox_park_decode(const void *buf, size_t len, struct nb_sandbox_req *req,
                        struct nb_err *err);

/* Creates env->root_dir if needed. */
int sandbox_prepare(const struct nb_sandbox_env *env, struct nb_err *err);
/* Clones the sandbox init for req; netns_fd is joined (or -1 when !req->has_netns). Returns 0
 * with child filled once the clone succeeded; the outcome of the setup comes later through
 * sandbox_result. Spawner only. */
int sandbox_start(const struct nb_sandbox_env *env, const struct nb_sandbox_req *req, int netns_fd,
                  struct nb_sandbox_child *child, struct nb_err *err);
/* Clones a parked sandbox init attached to req->cgroup_dirs (the other fields are unused); child
 * gets spec_fd too. netns_fd < 0: its network namespace is chosen when the spec arrives. Else a
 * deep park: it joins netns_fd (borrowed; not the spawner's own) and builds its whole root before
 * it reports parked; its spec then must have no netns and comes with the trees of its code and
 * runtime dirs (sandbox_open_tree). Spawner (or zygote) only. */
int sandbox_park(const struct nb_sandbox_env *env, const struct nb_sandbox_req *req, int netns_fd,
                 struct nb_sandbox_child *child, struct nb_err *err);
/* A detached clone of the mount at dir (open_tree OPEN_TREE_CLONE, CLOEXEC) in *fd_out, for a
 * deep-parked child to attach; the caller owns and closes it. */
int sandbox_open_tree(const char *dir, int *fd_out, struct nb_err *err);
/* Hands a parked child its encoded spec (as sandbox_spec_encode made it) and its fds, without
 * blocking: the netns fd if the spec has one; deep-parked, the code tree then the runtime tree if
 * the spec has a runtime dir (at most 3; borrowed). The child validates both again and goes on
 * with the setup; its outcome comes through sandbox_result as for sandbox_start. */
int sandbox_send_spec(int spec_fd, const void *spec, size_t len, const int *fds, size_t nfds,
                      struct nb_err *err);
/* Reads the status pipe without blocking: 0 = the runtime was exec'd (end of file), -EAGAIN =
 * still setting up (err untouched), SANDBOX_PARKED = a parked child waits for its spec, other
 * negative = the child's error, in err. */
int sandbox_result(int status_fd, struct nb_err *err);

/* Best effort: renames the calling process (comm and /proc/<pid>/cmdline) to name, so that ps
 * shows "nimbus-spawner" and sandboxes see "nimbus-init" as pid 1, not the daemon's argv. */
void sandbox_set_proc_title(const char *name);

#endif

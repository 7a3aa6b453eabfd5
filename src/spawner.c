/*
 * spawner.c - both ends of the spawner (spawner.h): the daemon's asynchronous client on the
 * libuv loop, and the main loop of the single-threaded spawner process forked by spawner_start.
 *
 * Wire: one SOCK_SEQPACKET message per request or reply, a struct msg_hdr followed by a payload,
 * fds as SCM_RIGHTS. Daemon -> spawner: SPAWN (encoded spec, netns fd), MAKE_NETNS (port), KILL
 * (id, signal), PARK (cgroup dirs), PARK_ZYGOTE (the zygote's argv/envp + a park: the kid is
 * cloned by the Python zygote, zygote.h, which the spawner starts, feeds and reaps; the kid is
 * the spawner's own child all the same, CLONE_PARENT), TAKE (a park id). Spawner -> daemon: READY
 * once at start, then per request exactly one of SPAWNED (pid; pidfd, stdout, stderr), NETNS
 * (netns fd, TCP listener, abstract Unix listener), PARKED (a deep park: with the kid's spec
 * socket) or ERROR (code, text), and for each SPAWNED exactly one EXIT (wait status), always after
 * it. A parked kid is known by its park id until a SPAWN (shallow) or a TAKE (deep) names it: it
 * then takes that request's id and follows the SPAWN protocol; KILL of a park id unparks (nothing
 * is reported for a parked kid).
 *
 * Deep parks skip the spawner on the request path: PARKED hands the daemon the kid's spec socket,
 * the daemon sends the kid its spec and a clone of the code dir's mount itself (one process
 * wake-up less before the kid runs), then sends TAKE so the spawner supervises the kid from there.
 * A deep kid that dies while parked is kept (reaped, its pipes open) until its TAKE or KILL, so a
 * kid that got its spec and died before the TAKE arrived is still reported as SPAWNED + EXIT or
 * ERROR.
 *
 * Spawner invariants: it only ever blocks in poll() or in a send to the daemon (the zygote's
 * socket is non-blocking); a bad request is answered with ERROR and never ends the loop; sandbox
 * setup happens in the children, so several can be in flight (a child still setting up after
 * 10 s is killed and reported). When the daemon's end closes (spawner_stop, daemon death) or
 * SIGTERM arrives (its parent-death signal), it SIGKILLs every sandbox it started (and the
 * zygote), reaps them and exits. Each sandbox init also has SIGKILL as its parent-death signal,
 * so not even a SIGKILLed spawner leaves orphans.
 *
 * Daemon invariants: nothing blocks the loop (sends that would block are queued); callbacks run
 * only from the loop's poll callback, never from inside spawner_spawn/spawner_make_netns.
 */
#include "spawner.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "fdpass.h"
#include "log.h"
#include "sandbox.h"
#include "seccomp.h"
#include "zygote.h"

/* ---- wire ------------------------------------------------------------------------------- */

enum msg_type {
    MSG_SPAWN = 1,
    MSG_MAKE_NETNS = 2,
    MSG_KILL = 3,
    MSG_PARK = 4,
    MSG_PARK_ZYGOTE = 5,
    MSG_TAKE = 6,
    MSG_READY = 100,
    MSG_SPAWNED = 101,
    MSG_NETNS = 102,
    MSG_ERROR = 103,
    MSG_EXIT = 104,
    MSG_PARKED = 105,
};

struct msg_hdr {
    uint32_t type;
    int32_t arg; /* SPAWNED: pid; EXIT: wait status; ERROR/READY: errno code; MAKE_NETNS: port;
                    KILL: signal */
    uint64_t id; /* request id chosen by the daemon; 0 = none */
};

#define MSG_FDS_MAX 5
#define ERROR_TEXT_MAX 500
#define SETUP_TIMEOUT_MS 10000
#define STOP_WAIT_MS 5000
#define READY_WAIT_MS 10000
/* A zygote that answers no park for this long (start-up included) is replaced. */
#define ZYGOTE_ANSWER_MS 30000

static int send_msg(int fd, uint32_t type, int32_t arg, uint64_t id, const void *payload,
                    size_t len, const int *fds, size_t nfds)
{
    struct msg_hdr h = {.type = type, .arg = arg, .id = id};
    ASSERT(nfds <= MSG_FDS_MAX);
    return fdpass_send(fd, &h, sizeof(h), payload, len, fds, nfds, 0);
}

/* Receives one message without blocking. Returns its length, 0 at end of file, or -errno. fds
 * received are stored in fds (*nfds); *mflags gets msg_flags (MSG_TRUNC, MSG_CTRUNC). */
static ssize_t recv_msg(int fd, void *buf, size_t cap, int *fds, size_t *nfds, int *mflags)
{
    return fdpass_recv(fd, buf, cap, MSG_DONTWAIT, fds, MSG_FDS_MAX, nfds, mflags);
}

static void close_fds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* ---- the spawner process ---------------------------------------------------------------- */

enum kid_state {
    KID_PARKING, /* waiting for the park report or a setup error (deadline) */
    KID_PARKED,  /* waiting, without a deadline, for a SPAWN naming it */
    KID_SETUP,   /* waiting for exec or a setup error (deadline) */
    KID_RUNNING, /* SPAWNED sent: EXIT follows */
    KID_GONE,    /* reported as ERROR, or unparked: nothing more is reported */
};

struct kid {
    uint64_t id; /* request id: the PARK's until a SPAWN takes the kid over, then the SPAWN's */
    pid_t pid;
    int pidfd, status_fd, stdout_fd, stderr_fd, spec_fd; /* -1 once handed over or closed */
    uint64_t deadline_ns;                                /* setup deadline while starting */
    enum kid_state state;
    bool deep;   /* deep-parked (sandbox_park with a netns): its spec socket went to the daemon
                    with PARKED, which sends the spec itself and then a TAKE */
    bool reaped; /* a deep kid that died while PARKED: kept (fds open, pid not to be signalled)
                    until its TAKE or KILL, so a TAKE racing its exit still reports it properly */
    int wstatus; /* reaped: its wait status */
};

/* The zygote (zygote.h), started on the first MSG_PARK_ZYGOTE, restarted by the first one after it
 * died or when the daemon asks for one with another argv/envp. */
struct zygote_proc {
    pid_t pid;         /* 0: none (or reaped) */
    int sock;          /* -1: none */
    struct nb_buf key; /* the argv+envp part of the request that started it */
    uint64_t *pending; /* park ids sent to it, not answered yet */
    size_t npending, cappending;
    uint64_t deadline_ns; /* while parks are pending: the zygote must answer one by then */
};

struct spawner_proc {
    int sock;
    int sigfd;
    struct zygote_proc zy;
    int orig_netns;
    struct sock_fprog prog;
    struct nb_sandbox_env env;
    struct nb_err init_err; /* set when the spawner cannot build sandboxes at all */
    struct kid *kids;
    size_t nkids, capkids;
    bool peer_gone;
};

/* Kills every sandbox, reaps them and exits. */
static _Noreturn void proc_exit(struct spawner_proc *s, int code)
{
    if (s->zy.pid > 0) {
        kill(s->zy.pid, SIGKILL);
        while (waitpid(s->zy.pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    for (size_t i = 0; i < s->nkids; i++)
        if (!s->kids[i].reaped)
            kill(s->kids[i].pid, SIGKILL);
    for (size_t i = 0; i < s->nkids; i++)
        while (!s->kids[i].reaped && waitpid(s->kids[i].pid, NULL, 0) < 0 && errno == EINTR)
            ;
    _exit(code);
}

static void proc_send(struct spawner_proc *s, uint32_t type, int32_t arg, uint64_t id,
                      const void *payload, size_t len, const int *fds, size_t nfds)
{
    /* Blocking send: the daemon's side never blocks, so it always drains us eventually. */
    int r = send_msg(s->sock, type, arg, id, payload, len, fds, nfds);
    if (r < 0) {
        if (r != -EPIPE && r != -ECONNRESET)
            log_err("msg=\"spawner cannot reply\" error=\"%s\"", strerror(-r));
        s->peer_gone = true;
    }
}

static void proc_send_error(struct spawner_proc *s, uint64_t id, const struct nb_err *e)
{
    size_t len = strnlen(e->msg, ERROR_TEXT_MAX);
    proc_send(s, MSG_ERROR, e->code ? e->code : EIO, id, e->msg, len, NULL, 0);
}

static struct kid *kid_by_pid(struct spawner_proc *s, pid_t pid)
{
    for (size_t i = 0; i < s->nkids; i++)
        if (s->kids[i].pid == pid && !s->kids[i].reaped) /* a reaped kid's pid may be reused */
            return &s->kids[i];
    return NULL;
}

static struct kid *kid_by_id(struct spawner_proc *s, uint64_t id)
{
    for (size_t i = 0; i < s->nkids; i++)
        if (s->kids[i].id == id)
            return &s->kids[i];
    return NULL;
}

static void kid_close(struct kid *k)
{
    int fds[] = {k->pidfd, k->status_fd, k->stdout_fd, k->stderr_fd, k->spec_fd};
    close_fds(fds, ARRAY_SIZE(fds));
    k->pidfd = k->status_fd = k->stdout_fd = k->stderr_fd = k->spec_fd = -1;
}

static bool kid_waiting(const struct kid *k)
{
    return k->state == KID_PARKING || k->state == KID_SETUP;
}

/* Decides a kid in PARKING or SETUP: parked (PARKED), exec'd (SPAWNED), failed (ERROR + SIGKILL)
 * or still pending. When the kid has been reaped or timed out, "pending" is a failure too. */
static void kid_resolve(struct spawner_proc *s, struct kid *k, bool reaped, bool timed_out)
{
    struct nb_err e = {0};
    int r = sandbox_result(k->status_fd, &e);
    bool parking = k->state == KID_PARKING;
    if (r == -EAGAIN) {
        if (!reaped && !timed_out)
            return;
        if (timed_out)
            err_set(&e, ETIMEDOUT, "sandbox setup timed out after %d ms", SETUP_TIMEOUT_MS);
        else
            err_set(&e, ECHILD, "sandbox init exited during setup");
        r = -e.code;
    } else if (r == SANDBOX_PARKED && (!parking || reaped)) {
        r = err_set(&e, reaped ? ECHILD : EPROTO, "sandbox init %s",
                    reaped ? "exited while parked" : "reported parking unasked");
    } else if (r == 0 && parking) {
        r = err_set(&e, ECHILD, "sandbox init exited during setup");
    }
    if (r == SANDBOX_PARKED) {
        k->state = KID_PARKED; /* keeps its fds until a SPAWN or TAKE takes it over */
        proc_send(s, MSG_PARKED, k->pid, k->id, NULL, 0, &k->spec_fd, k->deep ? 1 : 0);
        if (k->deep) { /* the daemon's now (or, if the send failed, nobody's: the kid exits) */
            close(k->spec_fd);
            k->spec_fd = -1;
        }
        return;
    }
    if (r == 0) {
        k->state = KID_RUNNING;
        int fds[] = {k->pidfd, k->stdout_fd, k->stderr_fd};
        proc_send(s, MSG_SPAWNED, k->pid, k->id, NULL, 0, fds, ARRAY_SIZE(fds));
    } else {
        k->state = KID_GONE;
        if (!reaped)
            kill(k->pid, SIGKILL);
        proc_send_error(s, k->id, &e);
    }
    kid_close(k);
}

static void zygote_lost(struct spawner_proc *s, const char *why);

static void reap_kids(struct spawner_proc *s)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        if (pid == s->zy.pid) {
            s->zy.pid = 0;
            zygote_lost(s, "exited");
            continue;
        }
        struct kid *k = kid_by_pid(s, pid);
        if (!k)
            continue;
        if (k->state == KID_PARKED && k->deep) {
            k->reaped = true; /* kept for its TAKE or KILL (see struct kid) */
            k->wstatus = st;
            continue;
        }
        if (kid_waiting(k))
            kid_resolve(s, k, true, false);
        if (k->state == KID_RUNNING)
            proc_send(s, MSG_EXIT, st, k->id, NULL, 0, NULL, 0);
        kid_close(k);
        *k = s->kids[--s->nkids];
    }
}

static void kid_add(struct spawner_proc *s, uint64_t id, const struct nb_sandbox_child *child,
                    enum kid_state state)
{
    if (s->nkids == s->capkids) {
        s->capkids = s->capkids ? 2 * s->capkids : 64;
        s->kids = xrealloc(s->kids, s->capkids * sizeof(*s->kids));
    }
    s->kids[s->nkids++] = (struct kid){
        .id = id,
        .pid = child->pid,
        .pidfd = child->pidfd,
        .status_fd = child->status_fd,
        .stdout_fd = child->stdout_fd,
        .stderr_fd = child->stderr_fd,
        .spec_fd = child->spec_fd,
        .deadline_ns = mono_ns() + (uint64_t)SETUP_TIMEOUT_MS * 1000000,
        .state = state,
    };
}

/* The fd a deep-parked kid gets with req: a detached clone of its code dir, made here, in the
 * host's mount namespace. Returns 1, or -errno with e set. */
static int open_code_tree(const struct nb_sandbox_req *req, int *fd, struct nb_err *e)
{
    if (req->has_netns)
        return err_set(e, EINVAL, "a deep-parked sandbox keeps its own network namespace");
    if (sandbox_open_tree(req->code_dir, fd, e) < 0)
        return -e->code;
    return 1;
}

/* A SPAWN naming a parked kid (already validated): hand it the spec; from now on the kid is
 * request id's sandbox, starting like any other (SETUP, with the setup deadline). */
static void unpark(struct spawner_proc *s, uint64_t id, const struct nb_sandbox_req *req,
                   const void *spec, size_t len, int netns_fd)
{
    struct nb_err e = {0};
    struct kid *k = kid_by_id(s, req->park_id);
    if (!k || k->state != KID_PARKED || k->spec_fd < 0) { /* a deep kid's goes with TAKE */
        err_set(&e, ESRCH, "no parked sandbox with id %llu", (unsigned long long)req->park_id);
        proc_send_error(s, id, &e);
        return;
    }
    k->id = id;
    int fd = netns_fd;
    int nfds = k->deep ? open_code_tree(req, &fd, &e) : netns_fd >= 0 ? 1 : 0;
    int r = nfds < 0 ? nfds : sandbox_send_spec(k->spec_fd, spec, len, &fd, (size_t)nfds, &e);
    if (k->deep && nfds > 0)
        close(fd); /* the kid has its own copy now (or none: it dies below) */
    if (r < 0) {
        k->state = KID_GONE;
        kill(k->pid, SIGKILL);
        kid_close(k);
        proc_send_error(s, id, &e);
        return;
    }
    close(k->spec_fd);
    k->spec_fd = -1;
    k->state = KID_SETUP;
    k->deadline_ns = mono_ns() + (uint64_t)SETUP_TIMEOUT_MS * 1000000;
}

/* A TAKE: the daemon has sent deep-parked kid park_id its spec itself (over the spec socket it got
 * with PARKED); from now on the kid is request id's sandbox, starting like any other. A kid that
 * died meanwhile is resolved at once: SPAWNED + EXIT if it had exec'd, else ERROR. */
static void handle_take(struct spawner_proc *s, uint64_t id, const void *payload, size_t len,
                        size_t nfds)
{
    struct nb_err e = {0};
    uint64_t park_id = 0;
    struct kid *k = NULL;
    if (len == sizeof(park_id))
        memcpy(&park_id, payload, sizeof(park_id));
    if (id == 0 || kid_by_id(s, id))
        err_set(&e, EINVAL, "take request id %llu is not unique", (unsigned long long)id);
    else if (nfds || len != sizeof(park_id))
        err_set(&e, EINVAL, "bad take request");
    else if (!(k = kid_by_id(s, park_id)) || k->state != KID_PARKED || !k->deep)
        err_set(&e, ESRCH, "no deep-parked sandbox with id %llu", (unsigned long long)park_id);
    if (e.code) {
        proc_send_error(s, id, &e);
        return;
    }
    k->id = id;
    k->state = KID_SETUP;
    k->deadline_ns = mono_ns() + (uint64_t)SETUP_TIMEOUT_MS * 1000000;
    if (k->reaped) {
        kid_resolve(s, k, true, false);
        if (k->state == KID_RUNNING)
            proc_send(s, MSG_EXIT, k->wstatus, k->id, NULL, 0, NULL, 0);
        kid_close(k);
        *k = s->kids[--s->nkids];
    }
}

/* A netns fd from the daemon: a daemon bug must not put a function on the host's network. */
static int check_netns(struct spawner_proc *s, int fd, struct nb_err *e)
{
    struct stat a, b;
    if (fstat(fd, &a) < 0 || fstat(s->orig_netns, &b) < 0)
        return err_set(e, errno, "cannot inspect the network namespace fd: %s", strerror(errno));
    if (a.st_dev == b.st_dev && a.st_ino == b.st_ino)
        return err_set(e, EINVAL, "refusing to run a sandbox in the host network namespace");
    return 0;
}

static void handle_spawn(struct spawner_proc *s, uint64_t id, const void *payload, size_t len,
                         int *fds, size_t nfds)
{
    struct nb_err e = {0};
    struct nb_sandbox_req req;
    if (s->init_err.code) {
        proc_send_error(s, id, &s->init_err);
        return;
    }
    if (id == 0 || kid_by_id(s, id)) {
        err_set(&e, EINVAL, "spawn request id %llu is not unique", (unsigned long long)id);
        proc_send_error(s, id, &e);
        return;
    }
    if (sandbox_req_decode(payload, len, &req, &e) < 0) {
        proc_send_error(s, id, &e);
        return;
    }
    if (nfds != (req.has_netns ? 1u : 0u)) {
        err_set(&e, EINVAL, "spawn request carries %zu fds", nfds);
        proc_send_error(s, id, &e);
        sandbox_req_release(&req);
        return;
    }
    if (nfds && check_netns(s, fds[0], &e) < 0) {
        proc_send_error(s, id, &e);
        sandbox_req_release(&req);
        return;
    }
    if (req.park_id) {
        unpark(s, id, &req, payload, len, nfds ? fds[0] : -1);
        sandbox_req_release(&req);
        return;
    }
    struct nb_sandbox_child child;
    int r = sandbox_start(&s->env, &req, nfds ? fds[0] : -1, &child, &e);
    sandbox_req_release(&req);
    if (r < 0) {
        proc_send_error(s, id, &e);
        return;
    }
    kid_add(s, id, &child, KID_SETUP);
}

/* A PARK request: clone a child that attaches to the cgroups and waits; with a netns fd, a deep
 * park (it joins the netns and builds its root first). */
static void handle_park(struct spawner_proc *s, uint64_t id, const void *payload, size_t len,
                        const int *fds, size_t nfds)
{
    struct nb_err e = {0};
    struct nb_sandbox_req req;
    struct nb_sandbox_child child;
    if (s->init_err.code)
        e = s->init_err;
    else if (id == 0 || kid_by_id(s, id))
        err_set(&e, EINVAL, "park request id %llu is not unique", (unsigned long long)id);
    else if (nfds > 1)
        err_set(&e, EINVAL, "park request carries %zu fds", nfds);
    else if ((nfds == 0 || check_netns(s, fds[0], &e) == 0) &&
             sandbox_park_decode(payload, len, &req, &e) == 0) {
        int r = req.has_netns == (nfds == 1)
                    ? sandbox_park(&s->env, &req, nfds ? fds[0] : -1, &child, &e)
                    : err_set(&e, EINVAL, "park request and network namespace fd disagree");
        sandbox_req_release(&req);
        if (r == 0) {
            kid_add(s, id, &child, KID_PARKING);
            s->kids[s->nkids - 1].deep = nfds == 1;
            return;
        }
    }
    proc_send_error(s, id, &e);
}

/* ---- the zygote -------------------------------------------------------------------------- */

/* The zygote is gone or unusable: every park it still owed fails; it is killed (and reaped in
 * reap_kids). Kids it already cloned are ours (CLONE_PARENT) and live on. */
static void zygote_lost(struct spawner_proc *s, const char *why)
{
    struct zygote_proc *z = &s->zy;
    if (z->sock < 0)
        return;
    log_warn("msg=\"python zygote stopped\" reason=\"%s\" pending=%zu", why, z->npending);
    close(z->sock);
    z->sock = -1;
    if (z->pid > 0)
        kill(z->pid, SIGKILL);
    buf_reset(&z->key);
    struct nb_err e = {0};
    err_set(&e, EPIPE, "python zygote %s", why);
    for (size_t i = 0; i < z->npending; i++)
        proc_send_error(s, z->pending[i], &e);
    z->npending = 0;
}

static bool zygote_unpend(struct zygote_proc *z, uint64_t id)
{
    for (size_t i = 0; i < z->npending; i++)
        if (z->pending[i] == id) {
            z->pending[i] = z->pending[--z->npending];
            return true;
        }
    return false;
}

/* fork + exec of the zygote with its socket at ZYGOTE_SOCK_FD; it starts (imports) on its own
 * time, requests wait in its socket meanwhile. */
static int zygote_start(struct spawner_proc *s, char **argv, char **envp, const void *key,
                        size_t key_len, struct nb_err *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return err_set(err, errno, "cannot create the zygote socket: %s", strerror(errno));
    pid_t me = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        return err_set(err, e, "cannot fork the zygote: %s", strerror(e));
    }
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != me)
            _exit(1);
        (void)setsid(); /* no terminal signals */
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        for (int sig = 1; sig < NSIG; sig++)
            (void)sigaction(sig, &dfl, NULL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (sv[1] == ZYGOTE_SOCK_FD ? fcntl(sv[1], F_SETFD, 0) < 0
                                    : dup2(sv[1], ZYGOTE_SOCK_FD) < 0)
            _exit(1);
        /* stdin and stdout /dev/null, as neither is a terminal for an instance either (Python
         * decides stdout's buffering at start); stderr stays the daemon's, for the zygote's own
         * errors. */
        int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (nul < 0 || dup2(nul, 0) < 0 || dup2(nul, 1) < 0)
            _exit(1);
        close_range(ZYGOTE_SOCK_FD + 1, ~0u, 0);
        execve(argv[0], argv, envp);
        log_err("msg=\"cannot execute the python zygote\" path=%s error=\"%s\"", argv[0],
                strerror(errno));
        _exit(127);
    }
    close(sv[1]);
    /* Never block on the zygote (it may be busy starting, or hung): a full socket fails the park.
     */
    int fl = fcntl(sv[0], F_GETFL);
    if (fl >= 0)
        (void)fcntl(sv[0], F_SETFL, fl | O_NONBLOCK);
    s->zy.sock = sv[0];
    s->zy.pid = pid;
    buf_reset(&s->zy.key);
    buf_append(&s->zy.key, key, key_len);
    log_info("msg=\"python zygote started\" pid=%d", (int)pid);
    return 0;
}

/* A PARK_ZYGOTE request: the same park, cloned by the zygote (started here if needed). */
static void handle_park_zygote(struct spawner_proc *s, uint64_t id, const void *payload, size_t len,
                               size_t nfds)
{
    struct nb_err e = {0};
    char **argv = NULL, **envp = NULL;
    const void *park = NULL;
    size_t park_len = 0;
    struct nb_sandbox_req req;
    struct zygote_proc *z = &s->zy;
    if (s->init_err.code)
        e = s->init_err;
    else if (id == 0 || kid_by_id(s, id))
        err_set(&e, EINVAL, "park request id %llu is not unique", (unsigned long long)id);
    else if (nfds)
        err_set(&e, EINVAL, "park request carries fds");
    else if (zygote_park_decode(payload, len, &argv, &envp, &park, &park_len, &e) == 0 &&
             zygote_park_req_decode(park, park_len, &req, &e) == 0) {
        sandbox_req_release(&req); /* validated here; the zygote decodes it again */
        size_t key_len = len - park_len;
        if (z->sock >= 0 && (z->key.len != key_len || memcmp(z->key.data, payload, key_len)))
            zygote_lost(s, "replaced");
        if (z->sock >= 0 || zygote_start(s, argv, envp, payload, key_len, &e) == 0) {
            int r = zygote_send(z->sock, ZY_PARK, 0, id, park, park_len, NULL, 0);
            if (r == 0) {
                if (z->npending == z->cappending) {
                    z->cappending = z->cappending ? 2 * z->cappending : 16;
                    z->pending = xrealloc(z->pending, z->cappending * sizeof(*z->pending));
                }
                if (z->npending == 0)
                    z->deadline_ns = mono_ns() + (uint64_t)ZYGOTE_ANSWER_MS * 1000000;
                z->pending[z->npending++] = id;
            } else {
                err_set(&e, -r, "cannot send to the python zygote: %s", strerror(-r));
            }
        }
    }
    free(argv);
    free(envp);
    if (e.code)
        proc_send_error(s, id, &e);
}

/* Replies from the zygote. */
static void zygote_read(struct spawner_proc *s)
{
    struct zygote_proc *z = &s->zy;
    for (int i = 0; i < 32 && z->sock >= 0; i++) {
        char buf[sizeof(struct nb_zygote_msg) + ERROR_TEXT_MAX + 16];
        int fds[ZYGOTE_FDS];
        size_t nfds = 0;
        int mflags = 0;
        ssize_t n = zygote_recv(z->sock, buf, sizeof(buf), MSG_DONTWAIT, fds, &nfds, &mflags);
        if (n == -EAGAIN)
            return;
        if (n <= 0 || (size_t)n < sizeof(struct nb_zygote_msg)) {
            close_fds(fds, nfds);
            zygote_lost(s, n == 0 || n == -ECONNRESET ? "closed its socket"
                           : n < 0                    ? "socket failed"
                                                      : "sent a bad message");
            return;
        }
        struct nb_zygote_msg h;
        memcpy(&h, buf, sizeof(h));
        struct nb_err e = {0};
        z->deadline_ns = mono_ns() + (uint64_t)ZYGOTE_ANSWER_MS * 1000000; /* it is alive */
        if (!zygote_unpend(z, h.id)) {
            log_warn("msg=\"zygote reply for unknown park\" id=%llu", (unsigned long long)h.id);
            if (h.type == ZY_PARKED && nfds >= 1)
                (void)spawner_kill(fds[0], SIGKILL);
            close_fds(fds, nfds);
            continue;
        }
        if (h.type == ZY_ERROR) {
            err_set(&e, h.arg > 0 ? h.arg : EIO, "%.*s", (int)((size_t)n - sizeof(h)),
                    buf + sizeof(h));
            proc_send_error(s, h.id, &e);
        } else if (h.type != ZY_PARKED || nfds != ZYGOTE_FDS || (mflags & MSG_CTRUNC)) {
            if (h.type == ZY_PARKED && nfds >= 1)
                (void)spawner_kill(fds[0], SIGKILL);
            err_set(&e, EPROTO, "bad park reply from the python zygote");
            proc_send_error(s, h.id, &e);
        } else {
            struct nb_sandbox_child child = {.pid = h.arg,
                                             .pidfd = fds[0],
                                             .status_fd = fds[1],
                                             .stdout_fd = fds[2],
                                             .stderr_fd = fds[3],
                                             .spec_fd = fds[4]};
            nfds = 0; /* the kid's now */
            kid_add(s, h.id, &child, KID_PARKING);
            /* It is our child (CLONE_PARENT): if it already died, reap_kids may have passed it
             * over before we knew it. */
            struct pollfd pfd = {.fd = child.pidfd, .events = POLLIN};
            if (poll(&pfd, 1, 0) > 0) {
                struct kid *k = &s->kids[s->nkids - 1];
                kid_resolve(s, k, true, false);
                kid_close(k);
                s->nkids--;
            }
        }
        close_fds(fds, nfds);
    }
}

static int lo_up(struct nb_err *err)
{
    _cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return err_set(err, errno, "cannot create socket: %s", strerror(errno));
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        return err_set(err, errno, "cannot read flags of 'lo': %s", strerror(errno));
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        return err_set(err, errno, "cannot bring 'lo' up: %s", strerror(errno));
    return 0;
}

/* Runs inside the new netns: lo up, the listeners (TCP and abstract Unix), and an fd for the
 * namespace. */
static int fill_netns(int port, int *ns_out, int *listen_out, int *unix_out, struct nb_err *err)
{
    _cleanup_close_ int ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (ns < 0)
        return err_set(err, errno, "cannot open the new network namespace: %s", strerror(errno));
    int r = lo_up(err);
    if (r < 0)
        return r;
    _cleanup_close_ int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l < 0)
        return err_set(err, errno, "cannot create listener: %s", strerror(errno));
    int one = 1;
    if (setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        return err_set(err, errno, "cannot set SO_REUSEADDR: %s", strerror(errno));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(l, (struct sockaddr *)&sin, sizeof(sin)) < 0)
        return err_set(err, errno, "cannot bind 127.0.0.1:%d: %s", port, strerror(errno));
    if (listen(l, 128) < 0)
        return err_set(err, errno, "cannot listen on 127.0.0.1:%d: %s", port, strerror(errno));
    _cleanup_close_ int u = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (u < 0)
        return err_set(err, errno, "cannot create Unix listener: %s", strerror(errno));
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    /* sun_path[0] stays NUL: an abstract name, no file, visible in this namespace only */
    memcpy(sun.sun_path + 1, NB_RUNTIME_API_SOCKET, strlen(NB_RUNTIME_API_SOCKET));
    socklen_t sl =
        (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(NB_RUNTIME_API_SOCKET));
    if (bind(u, (struct sockaddr *)&sun, sl) < 0)
        return err_set(err, errno, "cannot bind @%s: %s", NB_RUNTIME_API_SOCKET, strerror(errno));
    if (listen(u, 128) < 0)
        return err_set(err, errno, "cannot listen on @%s: %s", NB_RUNTIME_API_SOCKET,
                       strerror(errno));
    *ns_out = steal_fd(ns);
    *listen_out = steal_fd(l);
    *unix_out = steal_fd(u);
    return 0;
}

static void handle_make_netns(struct spawner_proc *s, uint64_t id, int port)
{
    struct nb_err e = {0};
    if (port < 1 || port > 65535) {
        err_set(&e, EINVAL, "invalid runtime API port %d", port);
        proc_send_error(s, id, &e);
        return;
    }
    /* unshare(CLONE_NEWNET) moves this (only) task; we step back right after. */
    if (unshare(CLONE_NEWNET) < 0) {
        err_set(&e, errno, "cannot create network namespace: %s", strerror(errno));
        proc_send_error(s, id, &e);
        return;
    }
    int ns = -1, l = -1, u = -1;
    int r = fill_netns(port, &ns, &l, &u, &e);
    if (setns(s->orig_netns, CLONE_NEWNET) < 0) {
        /* Never keep running in a function's namespace. */
        log_err("msg=\"spawner cannot return to its network namespace\" error=\"%s\"",
                strerror(errno));
        proc_exit(s, 1);
    }
    if (r < 0) {
        proc_send_error(s, id, &e);
        return;
    }
    int fds[] = {ns, l, u};
    proc_send(s, MSG_NETNS, 0, id, NULL, 0, fds, 3);
    close(ns);
    close(l);
    close(u);
}

/* Handles one message; false when the daemon's end is closed. */
static bool handle_request(struct spawner_proc *s)
{
    static unsigned char buf[sizeof(struct msg_hdr) + SANDBOX_SPEC_MAX];
    int fds[MSG_FDS_MAX];
    size_t nfds = 0;
    int mflags = 0;
    ssize_t n = recv_msg(s->sock, buf, sizeof(buf), fds, &nfds, &mflags);
    if (n == -EAGAIN)
        return true;
    if (n <= 0)
        return false;
    struct msg_hdr h = {0};
    struct nb_err e = {0};
    if ((size_t)n >= sizeof(h))
        memcpy(&h, buf, sizeof(h));
    const void *payload = buf + sizeof(h);
    size_t plen = (size_t)n >= sizeof(h) ? (size_t)n - sizeof(h) : 0;
    if ((size_t)n < sizeof(h))
        err_set(&e, EINVAL, "short request (%zd bytes)", n);
    else if (mflags & MSG_TRUNC)
        err_set(&e, E2BIG, "request too large");
    else if (mflags & MSG_CTRUNC)
        err_set(&e, EINVAL, "request carries too many fds");
    if (e.code) {
        proc_send_error(s, h.id, &e);
        close_fds(fds, nfds);
        return true;
    }
    switch (h.type) {
    case MSG_SPAWN:
        handle_spawn(s, h.id, payload, plen, fds, nfds);
        break;
    case MSG_MAKE_NETNS:
        if (nfds == 0) {
            handle_make_netns(s, h.id, h.arg);
            break;
        }
        err_set(&e, EINVAL, "netns request carries fds");
        proc_send_error(s, h.id, &e);
        break;
    case MSG_KILL: {
        struct kid *k = kid_by_id(s, h.id);
        if (k && h.arg > 0 && h.arg < NSIG && k->state != KID_GONE && !k->reaped)
            kill(k->pid, h.arg);
        if (k && k->state == KID_PARKED && h.arg == SIGKILL) {
            k->state = KID_GONE; /* unparked: never usable again, reaped silently */
            kid_close(k);
            if (k->reaped)
                *k = s->kids[--s->nkids];
        }
        break;
    }
    case MSG_PARK:
        handle_park(s, h.id, payload, plen, fds, nfds);
        break;
    case MSG_PARK_ZYGOTE:
        handle_park_zygote(s, h.id, payload, plen, nfds);
        break;
    case MSG_TAKE:
        handle_take(s, h.id, payload, plen, nfds);
        break;
    default:
        err_set(&e, EINVAL, "unknown request type %u", h.type);
        proc_send_error(s, h.id, &e);
    }
    close_fds(fds, nfds);
    return true;
}

static void proc_init(struct spawner_proc *s)
{
    /* Dispositions and the mask are inherited by the sandboxes; start them clean. */
    struct sigaction dfl = {.sa_handler = SIG_DFL}, ign = {.sa_handler = SIG_IGN};
    for (int sig = 1; sig < NSIG; sig++)
        (void)sigaction(sig, &dfl, NULL);
    /* The daemon decides when to stop; a terminal's ^C or a hangup must not kill sandboxes. */
    sigaction(SIGINT, &ign, NULL);
    sigaction(SIGHUP, &ign, NULL);
    sigaction(SIGPIPE, &ign, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_SETMASK, &set, NULL);
    s->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (s->sigfd < 0) {
        log_err("msg=\"spawner cannot create signalfd\" error=\"%s\"", strerror(errno));
        _exit(1);
    }
    s->orig_netns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    s->env.root_dir = SANDBOX_ROOT_DIR;
    s->env.prog = &s->prog;
    s->env.spawner_pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (s->orig_netns < 0)
        err_set(&s->init_err, errno, "cannot open the spawner's network namespace: %s",
                strerror(errno));
    else if (seccomp_build(&s->prog, &s->init_err) == 0)
        (void)sandbox_prepare(&s->env, &s->init_err);
    if (s->init_err.code)
        err_prefix(&s->init_err, "spawner cannot build sandboxes");
}

static _Noreturn void proc_main(int sock, pid_t daemon_pid)
{
    struct spawner_proc s = {.sock = sock, .sigfd = -1, .orig_netns = -1};
    s.zy.sock = -1;
    /* Die with the daemon (SIGTERM: we still kill our sandboxes on the way out). */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0 || getppid() != daemon_pid)
        _exit(1);
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
            _exit(1);
    /* Keep stdio (our log goes to the daemon's stderr) and the socket; nothing else. */
    if (sock > 3)
        close_range(3, (unsigned)sock - 1, 0);
    close_range((unsigned)sock + 1, ~0u, 0);
    sandbox_set_proc_title("nimbus-spawner");
    proc_init(&s);
    proc_send(&s, MSG_READY, s.init_err.code, 0, s.init_err.msg,
              strnlen(s.init_err.msg, ERROR_TEXT_MAX), NULL, 0);

    struct pollfd *pfds = NULL;
    size_t cappfds = 0;
    while (!s.peer_gone) {
        enum { BASE = 3 }; /* the daemon's socket, signals, the zygote's socket; then kids */
        if (cappfds < s.nkids + BASE) {
            cappfds = s.nkids + BASE + 64;
            pfds = xrealloc(pfds, cappfds * sizeof(*pfds));
        }
        pfds[0] = (struct pollfd){.fd = s.sock, .events = POLLIN};
        pfds[1] = (struct pollfd){.fd = s.sigfd, .events = POLLIN};
        pfds[2] = (struct pollfd){.fd = s.zy.sock, .events = POLLIN};
        size_t np = BASE;
        uint64_t now = mono_ns(), next = UINT64_MAX;
        for (size_t i = 0; i < s.nkids; i++) {
            /* Other kids keep fd -1: poll ignores the entry, indexes stay aligned. */
            bool waiting = kid_waiting(&s.kids[i]);
            pfds[np++] =
                (struct pollfd){.fd = waiting ? s.kids[i].status_fd : -1, .events = POLLIN};
            if (waiting && s.kids[i].deadline_ns < next)
                next = s.kids[i].deadline_ns;
        }
        if (s.zy.npending && s.zy.deadline_ns < next)
            next = s.zy.deadline_ns;
        int timeout = next == UINT64_MAX ? -1 : next <= now ? 0 : (int)((next - now) / 1000000 + 1);
        if (poll(pfds, np, timeout) < 0) {
            if (errno == EINTR)
                continue;
            log_err("msg=\"spawner poll failed\" error=\"%s\"", strerror(errno));
            proc_exit(&s, 1);
        }
        now = mono_ns();
        /* 1. Starting kids (no reaping or request handling yet, so indexes hold). */
        for (size_t i = 0; i + BASE < np && i < s.nkids; i++) {
            struct kid *k = &s.kids[i];
            if (kid_waiting(k) && (pfds[i + BASE].revents || now >= k->deadline_ns))
                kid_resolve(&s, k, false, now >= k->deadline_ns && !pfds[i + BASE].revents);
        }
        /* 2. Signals: exits, or SIGTERM (the daemon died). */
        if (pfds[1].revents) {
            struct signalfd_siginfo si;
            while (read(s.sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                if (si.ssi_signo == SIGTERM)
                    proc_exit(&s, 0);
            reap_kids(&s);
        }
        /* 2b. The zygote's replies (new kids are appended: indexes above stay valid). */
        if (pfds[2].revents && s.zy.sock >= 0)
            zygote_read(&s);
        if (s.zy.npending && mono_ns() >= s.zy.deadline_ns)
            zygote_lost(&s, "did not answer"); /* hung: killed; the next park starts another */
        /* 3. Requests. A few per round so exits are not starved. */
        if (pfds[0].revents & POLLIN) {
            for (int i = 0; i < 32 && !s.peer_gone; i++) {
                if (!handle_request(&s))
                    proc_exit(&s, 0);
                struct pollfd one = {.fd = s.sock, .events = POLLIN};
                if (poll(&one, 1, 0) <= 0 || !(one.revents & POLLIN))
                    break;
            }
        } else if (pfds[0].revents & (POLLHUP | POLLERR)) {
            proc_exit(&s, 0);
        }
    }
    proc_exit(&s, 0);
}

/* ---- the daemon side -------------------------------------------------------------------- */

/* REQ_PARKED: not a request but a deep-parked kid the daemon holds the spec socket of (spec_fd),
 * kept under its park id until spawner_spawn takes it or spawner_unpark drops it. */
enum req_kind { REQ_SPAWN, REQ_NETNS, REQ_PARK, REQ_PARKED };

struct sp_req {
    struct sp_req *next; /* hash chain */
    uint64_t id;
    enum req_kind kind;
    bool deep;    /* REQ_PARK: a deep park (PARKED brings its spec socket) */
    int spec_fd;  /* REQ_PARKED: the parked kid's spec socket */
    bool spawned; /* SPAWNED seen; waiting for EXIT */
    nb_spawn_cb on_spawn;
    nb_exit_cb on_exit;
    nb_netns_cb on_netns;
    nb_park_cb on_park;
    void *data;
};

struct sp_out {
    struct sp_out *next;
    uint32_t type;
    int32_t arg;
    uint64_t id;
    int fd; /* our dup, or -1 */
    size_t len;
    unsigned char payload[];
};

struct nb_spawner {
    uv_poll_t poll; /* freed with the struct in its close callback once attached */
    int fd;
    pid_t pid; /* 0 once reaped */
    bool attached, dead, dispatching, stop_requested;
    uint64_t next_id;
    struct sp_req **buckets;
    size_t nbuckets, nreqs;
    struct sp_out *out_head, *out_tail;
};

static size_t req_bucket(const struct nb_spawner *sp, uint64_t id)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (sp->nbuckets - 1);
}

static void req_insert(struct nb_spawner *sp, struct sp_req *rq)
{
    if (sp->nreqs >= sp->nbuckets) {
        size_t old = sp->nbuckets;
        struct sp_req **ob = sp->buckets;
        sp->nbuckets = old ? 2 * old : 64;
        sp->buckets = xcalloc(sp->nbuckets, sizeof(*sp->buckets));
        for (size_t i = 0; i < old; i++) {
            for (struct sp_req *r = ob[i], *nx; r; r = nx) {
                nx = r->next;
                size_t b = req_bucket(sp, r->id);
                r->next = sp->buckets[b];
                sp->buckets[b] = r;
            }
        }
        free(ob);
    }
    size_t b = req_bucket(sp, rq->id);
    rq->next = sp->buckets[b];
    sp->buckets[b] = rq;
    sp->nreqs++;
}

static struct sp_req *req_find(struct nb_spawner *sp, uint64_t id)
{
    if (!sp->nbuckets)
        return NULL;
    for (struct sp_req *r = sp->buckets[req_bucket(sp, id)]; r; r = r->next)
        if (r->id == id)
            return r;
    return NULL;
}

static struct sp_req *req_take(struct nb_spawner *sp, uint64_t id)
{
    if (!sp->nbuckets)
        return NULL;
    for (struct sp_req **pp = &sp->buckets[req_bucket(sp, id)]; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            struct sp_req *r = *pp;
            *pp = r->next;
            sp->nreqs--;
            return r;
        }
    }
    return NULL;
}

/* Detaches every request (for failing them all, or freeing). */
static struct sp_req *req_take_all(struct nb_spawner *sp)
{
    struct sp_req *list = NULL;
    for (size_t i = 0; i < sp->nbuckets; i++) {
        for (struct sp_req *r = sp->buckets[i], *nx; r; r = nx) {
            nx = r->next;
            r->next = list;
            list = r;
        }
        sp->buckets[i] = NULL;
    }
    sp->nreqs = 0;
    return list;
}

static void out_free_all(struct nb_spawner *sp)
{
    for (struct sp_out *o = sp->out_head, *nx; o; o = nx) {
        nx = o->next;
        if (o->fd >= 0)
            close(o->fd);
        free(o);
    }
    sp->out_head = sp->out_tail = NULL;
}

static void on_poll(uv_poll_t *h, int status, int events);

static void poll_update(struct nb_spawner *sp)
{
    if (!sp->attached || sp->dead)
        return;
    int ev = UV_READABLE | (sp->out_head ? UV_WRITABLE : 0);
    /* libuv replaces the callback on every start: passing NULL would crash on the next event */
    int r = uv_poll_start(&sp->poll, ev, on_poll);
    if (r < 0)
        log_err("msg=\"cannot poll the spawner socket\" error=\"%s\"", uv_strerror(r));
}

/* Sends now, or queues (fd dup'd) when the socket is full. */
static int send_or_queue(struct nb_spawner *sp, uint32_t type, int32_t arg, uint64_t id,
                         const void *payload, size_t len, int fd, struct nb_err *err)
{
    if (sp->dead)
        return err_set(err, EPIPE, "spawner has exited");
    if (!sp->out_head) {
        int r = send_msg(sp->fd, type, arg, id, payload, len, &fd, fd >= 0 ? 1 : 0);
        if (r == 0)
            return 0;
        if (r != -EAGAIN)
            return err_set(err, r, "cannot send to the spawner: %s", strerror(-r));
    }
    struct sp_out *o = xmalloc(sizeof(*o) + len);
    o->next = NULL;
    o->type = type;
    o->arg = arg;
    o->id = id;
    o->len = len;
    if (len)
        memcpy(o->payload, payload, len);
    o->fd = -1;
    if (fd >= 0 && (o->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0) {
        int e = errno;
        free(o);
        return err_set(err, e, "cannot duplicate fd for the spawner: %s", strerror(e));
    }
    if (sp->out_tail)
        sp->out_tail->next = o;
    else
        sp->out_head = o;
    sp->out_tail = o;
    poll_update(sp);
    return 0;
}

/* Returns 0, or -errno when the socket failed (the caller treats that as the spawner's death). */
static int out_flush(struct nb_spawner *sp)
{
    while (sp->out_head) {
        struct sp_out *o = sp->out_head;
        int r = send_msg(sp->fd, o->type, o->arg, o->id, o->payload, o->len, &o->fd,
                         o->fd >= 0 ? 1 : 0);
        if (r == -EAGAIN)
            break;
        if (r < 0)
            return r;
        sp->out_head = o->next;
        if (!sp->out_head)
            sp->out_tail = NULL;
        if (o->fd >= 0)
            close(o->fd);
        free(o);
    }
    poll_update(sp);
    return 0;
}

static void req_fail(struct sp_req *rq, const struct nb_err *e)
{
    if (rq->kind == REQ_PARKED) {
        close(rq->spec_fd); /* its park callback ran already; the kid dies with the spawner */
    } else if (rq->spawned) {
        /* The sandbox dies with the spawner (kill-all on exit, or its parent-death signal). */
        if (rq->on_exit)
            rq->on_exit(rq->data, SIGKILL);
    } else if (rq->kind == REQ_SPAWN) {
        rq->on_spawn(rq->data, -e->code, NULL, e);
    } else if (rq->kind == REQ_PARK) {
        rq->on_park(rq->data, -e->code, 0, e);
    } else {
        rq->on_netns(rq->data, -e->code, -1, -1, -1, e);
    }
}

static void spawner_died(struct nb_spawner *sp, const char *why)
{
    if (sp->dead)
        return;
    sp->dead = true;
    if (sp->attached)
        uv_poll_stop(&sp->poll);
    int st = 0;
    if (sp->pid > 0 && waitpid(sp->pid, &st, WNOHANG) == sp->pid)
        sp->pid = 0;
    log_err("msg=\"spawner exited\" reason=\"%s\" pending=%zu", why, sp->nreqs);
    out_free_all(sp);
    struct nb_err e;
    err_set(&e, EPIPE, "spawner exited (%s)", why);
    for (struct sp_req *r = req_take_all(sp), *nx; r; r = nx) {
        nx = r->next;
        req_fail(r, &e);
        free(r);
    }
}

static void dispatch(struct nb_spawner *sp, const struct msg_hdr *h, const char *text, size_t tlen,
                     int *fds, size_t nfds, int mflags)
{
    struct nb_err e = {0};
    struct sp_req *rq = req_find(sp, h->id);
    switch (h->type) {
    case MSG_SPAWNED:
        if (!rq || rq->kind != REQ_SPAWN || rq->spawned) {
            log_warn("msg=\"spawner reply for unknown request\" id=%llu",
                     (unsigned long long)h->id);
            if (nfds >= 1)
                (void)spawner_kill(fds[0], SIGKILL); /* nobody would supervise it */
            break;
        }
        if (nfds != 3 || (mflags & MSG_CTRUNC)) {
            /* We cannot control it without its pidfd: have the spawner kill it. */
            (void)send_or_queue(sp, MSG_KILL, SIGKILL, h->id, NULL, 0, -1, NULL);
            req_take(sp, h->id);
            err_set(&e, EMFILE, "cannot receive the sandbox's fds (out of fds?)");
            rq->on_spawn(rq->data, -e.code, NULL, &e);
            free(rq);
            break;
        }
        rq->spawned = true;
        struct nb_spawned res = {
            .pid = h->arg, .pidfd = fds[0], .stdout_fd = fds[1], .stderr_fd = fds[2]};
        nfds = 0; /* handed over */
        rq->on_spawn(rq->data, 0, &res, NULL);
        break;
    case MSG_NETNS:
        if (!rq || rq->kind != REQ_NETNS) {
            log_warn("msg=\"spawner reply for unknown request\" id=%llu",
                     (unsigned long long)h->id);
            break;
        }
        req_take(sp, h->id);
        if (nfds != 3 || (mflags & MSG_CTRUNC)) {
            err_set(&e, EMFILE, "cannot receive the network namespace fds (out of fds?)");
            rq->on_netns(rq->data, -e.code, -1, -1, -1, &e);
        } else {
            nfds = 0;
            rq->on_netns(rq->data, 0, fds[0], fds[1], fds[2], NULL);
        }
        free(rq);
        break;
    case MSG_ERROR:
        err_set(&e, h->arg > 0 ? h->arg : EIO, "%.*s", (int)tlen, text);
        if (!rq || rq->spawned) {
            log_warn("msg=\"spawner error for unknown request\" id=%llu error=\"%s\"",
                     (unsigned long long)h->id, e.msg);
            break;
        }
        req_take(sp, h->id);
        req_fail(rq, &e);
        free(rq);
        break;
    case MSG_PARKED:
        if (!rq || rq->kind != REQ_PARK) {
            log_warn("msg=\"spawner reply for unknown request\" id=%llu",
                     (unsigned long long)h->id);
            (void)send_or_queue(sp, MSG_KILL, SIGKILL, h->id, NULL, 0, -1, NULL);
            break;
        }
        req_take(sp, h->id);
        if (nfds != (rq->deep ? 1u : 0u) || (mflags & MSG_CTRUNC)) {
            (void)send_or_queue(sp, MSG_KILL, SIGKILL, h->id, NULL, 0, -1, NULL);
            err_set(&e, EMFILE, "cannot receive the parked sandbox's spec socket (out of fds?)");
            rq->on_park(rq->data, -e.code, 0, &e);
            free(rq);
            break;
        }
        if (rq->deep) { /* kept: spawner_spawn sends this kid its spec itself */
            rq->kind = REQ_PARKED;
            rq->spec_fd = fds[0];
            nfds = 0;
            req_insert(sp, rq);
        }
        rq->on_park(rq->data, 0, h->id, NULL);
        if (!rq->deep)
            free(rq);
        break;
    case MSG_EXIT:
        if (!rq || !rq->spawned)
            break; /* a spawn we already failed (see MSG_SPAWNED) */
        req_take(sp, h->id);
        if (rq->on_exit)
            rq->on_exit(rq->data, h->arg);
        free(rq);
        break;
    default:
        log_warn("msg=\"unknown message from spawner\" type=%u", h->type);
    }
    close_fds(fds, nfds);
}

static void stop_now(struct nb_spawner *sp);

static void on_poll(uv_poll_t *handle, int status, int events)
{
    struct nb_spawner *sp = handle->data;
    sp->dispatching = true;
    if (status < 0) {
        spawner_died(sp, uv_strerror(status));
        goto out;
    }
    if (events & UV_WRITABLE) {
        int r = out_flush(sp);
        if (r < 0) {
            spawner_died(sp, strerror(-r));
            goto out;
        }
    }
    if (events & UV_READABLE) {
        /* Bounded, so one busy spawner cannot starve the rest of the loop. */
        for (int i = 0; i < 256 && !sp->dead && !sp->stop_requested; i++) {
            char buf[sizeof(struct msg_hdr) + ERROR_TEXT_MAX + 16];
            int fds[MSG_FDS_MAX];
            size_t nfds = 0;
            int mflags = 0;
            ssize_t n = recv_msg(sp->fd, buf, sizeof(buf), fds, &nfds, &mflags);
            if (n == -EAGAIN)
                break;
            if (n <= 0) {
                close_fds(fds, nfds);
                spawner_died(sp, n == 0 ? "connection closed" : strerror((int)-n));
                break;
            }
            if ((size_t)n < sizeof(struct msg_hdr)) {
                close_fds(fds, nfds);
                log_warn("msg=\"short message from spawner\" len=%zd", n);
                continue;
            }
            struct msg_hdr h;
            memcpy(&h, buf, sizeof(h));
            dispatch(sp, &h, buf + sizeof(h), (size_t)n - sizeof(h), fds, nfds, mflags);
        }
    }
out:
    sp->dispatching = false;
    if (sp->stop_requested)
        stop_now(sp);
}

static int count_threads(void)
{
    _cleanup_free_ char *stat = NULL;
    if (read_file("/proc/self/stat", &stat, NULL) < 0)
        return -1;
    char *p = strrchr(stat, ')');
    for (int field = 3; p && field <= 20; field++) {
        p = strchr(p, ' ');
        if (!p)
            break;
        p++;
        if (field == 20)
            return atoi(p);
    }
    return -1;
}

/* Waits for the READY message: the spawner could initialise (seccomp, root dir) or says why not. */
static int wait_ready(struct nb_spawner *sp, struct nb_err *err)
{
    struct pollfd pfd = {.fd = sp->fd, .events = POLLIN};
    int r;
    do
        r = poll(&pfd, 1, READY_WAIT_MS);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return err_set(err, ETIMEDOUT, "spawner did not start within %d ms", READY_WAIT_MS);
    char buf[sizeof(struct msg_hdr) + ERROR_TEXT_MAX + 16];
    int fds[MSG_FDS_MAX];
    size_t nfds = 0;
    int mflags = 0;
    ssize_t n = recv_msg(sp->fd, buf, sizeof(buf), fds, &nfds, &mflags);
    close_fds(fds, nfds);
    struct msg_hdr h;
    if (n < (ssize_t)sizeof(h))
        return err_set(err, EPIPE, "spawner exited during start-up");
    memcpy(&h, buf, sizeof(h));
    if (h.type != MSG_READY)
        return err_set(err, EPROTO, "unexpected first message from spawner (%u)", h.type);
    if (h.arg)
        return err_set(err, h.arg, "%.*s", (int)((size_t)n - sizeof(h)), buf + sizeof(h));
    return 0;
}

static void wait_spawner(struct nb_spawner *sp)
{
    if (sp->pid <= 0)
        return;
    for (int waited = 0; waited < STOP_WAIT_MS; waited++) {
        pid_t r = waitpid(sp->pid, NULL, WNOHANG);
        if (r == sp->pid || (r < 0 && errno == ECHILD)) {
            sp->pid = 0;
            return;
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    log_err("msg=\"spawner did not exit; killing it\" pid=%d", (int)sp->pid);
    kill(sp->pid, SIGKILL);
    while (waitpid(sp->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    sp->pid = 0;
}

struct nb_spawner *spawner_start(struct nb_err *err)
{
    int threads = count_threads();
    if (threads > 1) {
        err_set(err, EBUSY, "spawner_start must run before any thread exists (%d threads)",
                threads);
        return NULL;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        err_set(err, errno, "cannot create spawner socket: %s", strerror(errno));
        return NULL;
    }
    pid_t daemon_pid = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        err_set(err, e, "cannot fork the spawner: %s", strerror(e));
        return NULL;
    }
    if (pid == 0) {
        close(sv[0]);
        proc_main(sv[1], daemon_pid);
    }
    close(sv[1]);
    struct nb_spawner *sp = xcalloc(1, sizeof(*sp));
    sp->fd = sv[0];
    sp->pid = pid;
    sp->next_id = 1;
    int r = wait_ready(sp, err);
    int fl = fcntl(sp->fd, F_GETFL);
    if (r == 0 && (fl < 0 || fcntl(sp->fd, F_SETFL, fl | O_NONBLOCK) < 0))
        r = err_set(err, errno, "cannot make the spawner socket non-blocking: %s", strerror(errno));
    if (r < 0) {
        close(sp->fd);
        wait_spawner(sp);
        free(sp);
        return NULL;
    }
    return sp;
}

int spawner_attach(struct nb_spawner *sp, uv_loop_t *loop, struct nb_err *err)
{
    if (sp->attached)
        return err_set(err, EALREADY, "spawner is already attached to a loop");
    int r = uv_poll_init(loop, &sp->poll, sp->fd);
    if (r < 0)
        return err_set(err, r, "cannot poll the spawner socket: %s", uv_strerror(r));
    sp->poll.data = sp;
    sp->attached = true;
    r = uv_poll_start(&sp->poll, UV_READABLE | (sp->out_head ? UV_WRITABLE : 0), on_poll);
    if (r < 0)
        return err_set(err, r, "cannot poll the spawner socket: %s", uv_strerror(r));
    return 0;
}

static int submit(struct nb_spawner *sp, struct sp_req *rq, uint32_t type, int32_t arg,
                  const void *payload, size_t len, int fd, struct nb_err *err)
{
    if (sp->dead || sp->stop_requested) {
        free(rq);
        return err_set(err, EPIPE, "spawner has exited");
    }
    rq->id = sp->next_id++;
    req_insert(sp, rq);
    int r = send_or_queue(sp, type, arg, rq->id, payload, len, fd, err);
    if (r < 0) {
        req_take(sp, rq->id);
        free(rq);
    }
    return r;
}

/* Hands deep-parked kid pk (taken out of the table) its spec and a clone of the code dir's mount
 * straight from here, one wake-up sooner than through the spawner, then tells the spawner with a
 * TAKE. A kid that cannot be reached (it died) is unparked and the spawn fails. */
static int take_parked(struct nb_spawner *sp, struct sp_req *pk, const struct nb_sandbox_spec *spec,
                       const struct nb_buf *b, struct sp_req *rq, struct nb_err *err)
{
    uint64_t park_id = pk->id;
    int tree = -1, r = 0;
    if (sp->dead || sp->stop_requested)
        r = err_set(err, EPIPE, "spawner has exited");
    else if (spec->netns_fd >= 0)
        r = err_set(err, EINVAL, "a deep-parked sandbox keeps its own network namespace");
    else if ((r = sandbox_open_tree(spec->code_dir, &tree, err)) == 0)
        r = sandbox_send_spec(pk->spec_fd, b->data, b->len, &tree, 1, err);
    if (tree >= 0)
        close(tree); /* the kid has its own copy now (or none: it is unparked below) */
    close(pk->spec_fd);
    free(pk);
    if (r < 0) {
        spawner_unpark(sp, park_id);
        free(rq);
        return r;
    }
    return submit(sp, rq, MSG_TAKE, 0, &park_id, sizeof(park_id), -1, err);
}

int spawner_spawn(struct nb_spawner *sp, const struct nb_sandbox_spec *spec, nb_spawn_cb on_spawn,
                  nb_exit_cb on_exit, void *data, struct nb_err *err)
{
    ASSERT(on_spawn);
    struct nb_buf b = NB_BUF_INIT;
    int r = sandbox_spec_encode(spec, &b, err);
    if (r < 0) {
        buf_release(&b);
        return r;
    }
    struct sp_req *rq = xcalloc(1, sizeof(*rq));
    rq->kind = REQ_SPAWN;
    rq->on_spawn = on_spawn;
    rq->on_exit = on_exit;
    rq->data = data;
    struct sp_req *pk = spec->park_id ? req_find(sp, spec->park_id) : NULL;
    if (pk && pk->kind == REQ_PARKED)
        r = take_parked(sp, req_take(sp, spec->park_id), spec, &b, rq, err);
    else
        r = submit(sp, rq, MSG_SPAWN, 0, b.data, b.len, spec->netns_fd, err);
    buf_release(&b);
    return r;
}

int spawner_park(struct nb_spawner *sp, const struct nb_park_spec *ps, nb_park_cb cb, void *data,
                 struct nb_err *err)
{
    ASSERT(cb);
    struct nb_buf b = NB_BUF_INIT;
    int r = sandbox_park_encode(ps, &b, err);
    if (r == 0) {
        struct sp_req *rq = xcalloc(1, sizeof(*rq));
        rq->kind = REQ_PARK;
        rq->deep = ps->netns_fd >= 0;
        rq->on_park = cb;
        rq->data = data;
        r = submit(sp, rq, MSG_PARK, 0, b.data, b.len, ps->netns_fd, err);
    }
    buf_release(&b);
    return r;
}

int spawner_park_zygote(struct nb_spawner *sp, const char *const *zygote_argv,
                        const char *const *zygote_envp, const char *const *cgroup_dirs,
                        nb_park_cb cb, void *data, struct nb_err *err)
{
    ASSERT(cb);
    struct nb_buf b = NB_BUF_INIT;
    int r = zygote_park_encode(zygote_argv, zygote_envp, cgroup_dirs, &b, err);
    if (r == 0) {
        struct sp_req *rq = xcalloc(1, sizeof(*rq));
        rq->kind = REQ_PARK;
        rq->on_park = cb;
        rq->data = data;
        r = submit(sp, rq, MSG_PARK_ZYGOTE, 0, b.data, b.len, -1, err);
    }
    buf_release(&b);
    return r;
}

void spawner_unpark(struct nb_spawner *sp, uint64_t park_id)
{
    if (!sp || !park_id)
        return;
    struct sp_req *pk = req_find(sp, park_id);
    if (pk && pk->kind == REQ_PARKED) {
        close(pk->spec_fd); /* the kid sees end-of-file and exits */
        free(req_take(sp, park_id));
    }
    if (!sp->stop_requested)
        (void)send_or_queue(sp, MSG_KILL, SIGKILL, park_id, NULL, 0, -1, NULL);
}

int spawner_make_netns(struct nb_spawner *sp, int port, nb_netns_cb cb, void *data,
                       struct nb_err *err)
{
    ASSERT(cb);
    if (port < 1 || port > 65535)
        return err_set(err, EINVAL, "invalid runtime API port %d", port);
    struct sp_req *rq = xcalloc(1, sizeof(*rq));
    rq->kind = REQ_NETNS;
    rq->on_netns = cb;
    rq->data = data;
    return submit(sp, rq, MSG_MAKE_NETNS, port, NULL, 0, -1, err);
}

int spawner_kill(int pidfd, int sig)
{
    if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
        return -errno;
    return 0;
}

static void on_close(uv_handle_t *h)
{
    free(h->data);
}

static void stop_now(struct nb_spawner *sp)
{
    if (sp->attached && !sp->dead)
        uv_poll_stop(&sp->poll);
    close(sp->fd); /* the spawner sees end-of-file: kills its sandboxes and exits */
    sp->fd = -1;
    wait_spawner(sp);
    for (struct sp_req *r = req_take_all(sp), *nx; r; r = nx) {
        nx = r->next;
        if (r->kind == REQ_PARKED)
            close(r->spec_fd);
        free(r);
    }
    free(sp->buckets);
    out_free_all(sp);
    if (sp->attached)
        uv_close((uv_handle_t *)&sp->poll, on_close);
    else
        free(sp);
}

void spawner_stop(struct nb_spawner *sp)
{
    if (!sp)
        return;
    if (sp->dispatching) {
        sp->stop_requested = true; /* finished when the callback returns to on_poll */
        return;
    }
    stop_now(sp);
}

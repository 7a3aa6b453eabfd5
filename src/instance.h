/*
 * instance.h - one execution environment of a function (a sandboxed runtime process), the
 * invocations it serves, and the pool operations over a function's instances.
 *
 * Life: instance_start() builds the sandbox (netns from the pool, cgroups, spawner) -> STARTING;
 * the runtime's first `GET next` ends init (Init Duration) and receives the invocation the instance
 * was started for -> BUSY; its response/error completes that invocation; its next `GET next` makes
 * it IDLE (most recently used first in the pool) until reused or reaped after keep_warm_s. A crash,
 * timeout, OOM, init error, config change or delete stops it -> DEAD; it is freed once its process
 * was reaped and every handle closed.
 *
 * Invocations (struct nb_invocation) are created by api_invoke.c and owned by the invoke module
 * (invoke.c) until completed exactly once by invoke_complete(); the instance only points at its
 * current one. Loop thread only.
 */
#ifndef NIMBUS_INSTANCE_H
#define NIMBUS_INSTANCE_H

#include <uv.h>

#include "cgroup.h"
#include "http.h"
#include "registry.h"

struct nb_daemon;
struct nb_netns;

/* CPU like Lambda: one vCPU per 1,769 MB once init is done (runtime_api.c), in a short CFS period
 * so a throttled invocation never stalls for long. */
#define NB_CPU_PERIOD_US 10000u
#define NB_MB_PER_VCPU 1769u

enum nb_inst_state { INST_STARTING, INST_IDLE, INST_BUSY, INST_DEAD };

/* The platform's default environment ("K=V", NULL-terminated): an instance gets each one its
 * function does not set (NODE_PATH only for nodejs); the Python zygote starts with them. */
extern const char *const instance_default_env[];

struct nb_invocation {
    struct nb_daemon *d;
    struct nb_fn *fn;        /* ref */
    struct nb_function *cfg; /* ref: the snapshot this invocation runs */
    char request_id[37];
    struct nb_http_req *client; /* pending client request; NULL once answered or gone */
    char *payload;              /* owned */
    size_t payload_len;
    char *client_context; /* decoded JSON text, owned, or NULL */
    char trace_id[96];
    bool tail; /* X-Amz-Log-Type: Tail */
    uint64_t admitted_ns;
    uint64_t deadline_ms;     /* wall clock, Lambda-Runtime-Deadline-Ms */
    uint64_t start_ns;        /* delivered to the runtime; 0 before */
    double init_ms;           /* > 0 when this invocation paid a cold start */
    struct nb_instance *inst; /* the instance running (or starting for) it */
    uv_timer_t timer;         /* the function's timeout */
    struct nb_buf log;        /* this invocation's log lines, trimmed to the last 4 KB+ */
    bool done;
};

struct nb_instance {
    struct nb_daemon *d;
    struct nb_fn *fn;        /* ref */
    struct nb_function *cfg; /* ref: the snapshot the sandbox was built from */
    uint64_t id;
    char log_stream[80]; /* YYYY/MM/DD/[$LATEST]<32 hex> */
    enum nb_inst_state state;
    bool retire; /* stop instead of going idle */
    struct nb_netns *ns;
    struct nb_cgroup cg;
    char cg_name[48];
    uint32_t uid;
    pid_t pid;
    int pidfd;
    bool spawned, exited, killed;
    bool zygote; /* started from the Python zygote */
    int wstatus;
    uv_poll_t out_poll, err_poll;
    int out_fd, err_fd;
    struct nb_buf out_line, err_line;
    int open_handles;             /* uv handles still to close before free */
    struct nb_http_req *next_req; /* held `next` long poll */
    struct nb_invocation *inv;    /* current invocation */
    bool init_done;
    uint64_t started_ns;
    uint64_t idle_since_ns;
    uint64_t invocations;
    struct nb_instance *idle_next, *idle_prev;
    struct nb_instance *all_next, *all_prev;
    struct nb_instance *g_next, *g_prev; /* every live instance of the daemon */
};

/* Starts a new instance for inv (cold start); inv->inst is set. On failure inv is completed with
 * a platform error by this call. */
void instance_start(struct nb_daemon *d, struct nb_invocation *inv);
/* Hands inv to an idle instance (pops it from the idle list). */
void instance_assign(struct nb_instance *inst, struct nb_invocation *inv);
/* Stops the instance (SIGKILL to its sandbox); the rest happens when the exit is reported. */
void instance_kill(struct nb_instance *inst, const char *why);
/* Reads whatever the runtime wrote to stdout/stderr so far (before a reply is sent). */
void instance_drain_output(struct nb_instance *inst);
/* The Runtime API request handler for requests arriving on inst's listener. */
void runtime_api_handle(struct nb_instance *inst, struct nb_http_req *req);
/* The http layer refused a request of inst's runtime for its size (over the listener's
 * max_body, never seen by runtime_api_handle): the current invocation fails with
 * Function.ResponseSizeTooLarge. */
void runtime_api_too_large(struct nb_instance *inst);
/* Runtime API request on a listener with no live instance. */
void runtime_api_orphan(struct nb_http_req *req);

/* Pool (pool.c). */
/* Admission with Lambda's rules: reserved concurrency 0 refuses everything; a reservation caps
 * the function; the account limit caps everything, and functions without a reservation share
 * what reservations leave. NULL when admitted (counters taken; give them back with
 * pool_release with the same cfg), else the TooManyRequestsException Reason. */
const char *pool_admit(struct nb_daemon *d, struct nb_fn *fn, const struct nb_function *cfg);
void pool_release(struct nb_daemon *d, struct nb_fn *fn, const struct nb_function *cfg);
/* Most recently used idle instance running exactly cfg (a snapshot of fn), removed from the idle
 * list; or NULL. */
struct nb_instance *pool_take_idle(struct nb_fn *fn, const struct nb_function *cfg);
void pool_push_idle(struct nb_instance *inst);
void pool_unlink_idle(struct nb_instance *inst);
void pool_link(struct nb_instance *inst);
void pool_unlink(struct nb_instance *inst);
/* Marks every instance of fn to stop: idle now, busy/starting after their invocation. */
void pool_retire_all(struct nb_daemon *d, struct nb_fn *fn);
/* The snapshot changed in ways instances do not see (e.g. concurrency): keep them. */
void pool_adopt_config(struct nb_fn *fn, struct nb_function *cfg);
/* Stops idle instances idle for longer than keep_warm_s (all of them when force). */
void pool_reap(struct nb_daemon *d, bool force);
/* Kills every instance of every function (shutdown). */
void pool_kill_all(struct nb_daemon *d);

/* Invocations (invoke.c). */
/* Outcome of an invocation as seen by the caller. */
enum nb_outcome { NB_OK, NB_FN_ERROR, NB_TIMEOUT };
/* Starts inv's timeout timer (inv->timer must be initialised). */
void invoke_arm_timeout(struct nb_invocation *inv);
/* Delivers inv's event as the answer to inst's held `next` request. */
void invoke_deliver(struct nb_instance *inst, struct nb_invocation *inv);
/* Completes inv exactly once: writes END/REPORT, answers the client (status 200) with body
 * (consumed, malloc'd; may be NULL for an empty body) and X-Amz-Function-Error when outcome is
 * not NB_OK, releases admission, and frees inv. */
void invoke_complete(struct nb_invocation *inv, enum nb_outcome outcome, char *body, size_t len);
/* Completes inv with a platform error reply (AWS error shape) instead of a function result. */
void invoke_fail(struct nb_invocation *inv, int status, const char *type, const char *msg);
/* Builds Lambda's error JSON {"errorType":..,"errorMessage":..} (malloc'd). */
char *invoke_error_json(const char *type, const char *msg, size_t *len);
/* Appends one line (without newline) to inv's log and to the function's log file. */
void invoke_log_line(struct nb_invocation *inv, const char *line, size_t len);

#endif

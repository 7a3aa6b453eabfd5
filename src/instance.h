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
 * A provisioned instance (instance_start_provisioned; pc_id != 0) is started without an
 * invocation: STARTING -> (first `GET next`: init done, no Init Duration is ever reported) IDLE,
 * then the same life as any other, except that keep-warm never reaps it, warm reuse prefers it,
 * and its end is reported to provisioned.c, which replaces it (or, when it died during init,
 * marks its configuration FAILED).
 *
 * A parked instance (instance_start_parked; prewarm.h) is started the same way for on-demand
 * capacity: IDLE at its first `next`, taken after warm instances, reaped keep_warm_s after its
 * function's last invocation, replaced by prewarm.c's refill timer.
 *
 * Invocations (struct nb_invocation) are created with invoke_new() (by api_invoke.c for a client,
 * by async.c for a queued event) and owned by the invoke module (invoke.c) until completed exactly
 * once by invoke_complete() or invoke_fail(); the instance only points at its current one. The
 * completion goes to exactly one receiver: the HTTP client (inv->client) or the callback
 * (inv->on_done); see invoke.c. Loop thread only.
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

struct nb_invocation;
/* How an invocation ended, for an invocation without an HTTP client (on_done). status is 200 when
 * the function ran to a result (outcome says how), else the platform error's HTTP status (e.g.
 * 500 ServiceException when the instance could not start) and error_type its AWS type. body/len:
 * the function's result or error JSON, or the platform error message; borrowed during the call. */
struct nb_inv_result {
    int status;
    int outcome; /* enum nb_outcome, when status == 200 */
    const char *error_type;
    const char *body;
    size_t len;
};
typedef void (*nb_invoke_done_cb)(struct nb_invocation *inv, const struct nb_inv_result *res);
/* The platform's default environment ("K=V", NULL-terminated): an instance gets each one its
 * function does not set (NODE_PATH only for nodejs); the Python zygote starts with them. */
extern const char *const instance_default_env[];

struct nb_invocation {
    struct nb_daemon *d;
    struct nb_fn *fn;        /* ref */
    struct nb_function *cfg; /* ref: the snapshot this invocation runs */
    char request_id[37];
    struct nb_http_req *client; /* pending client request; NULL once answered or gone */
    nb_invoke_done_cb on_done;  /* set instead of client: called once at completion */
    void *done_data;
    char *payload; /* owned */
    size_t payload_len;
    char *client_context; /* decoded JSON text, owned, or NULL */
    char *invoked_arn;    /* the ARN the caller used when not cfg->arn (alias, :$LATEST), or NULL */
    char trace_id[96];
    bool tail; /* X-Amz-Log-Type: Tail */
    uint64_t admitted_ns;
    uint64_t deadline_ms;     /* wall clock, Lambda-Runtime-Deadline-Ms */
    uint64_t start_ns;        /* delivered to the runtime; 0 before */
    double init_ms;           /* > 0 when this invocation paid a cold start */
    bool cold_path;           /* found no warm instance: counted as demand (prewarm.h) */
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
    uint64_t
        pc_id; /* provisioned concurrency config it belongs to (provisioned.h), 0 = on demand */
    struct nb_netns *ns;
    struct nb_cgroup cg;
    char cg_name[48];
    uint32_t uid;
    pid_t pid;
    int pidfd;
    bool spawned, exited, killed;
    bool zygote; /* started from the Python zygote */
    bool placed; /* its groups (and park slot, if any) are chosen; park_id below */
    bool deep;   /* from a deep-parked slot: ns came with it and is not in the spec */
    uint64_t park_id;
    bool parked; /* started ahead of demand and not yet taken (prewarm.h) */
    int wstatus;
    uv_poll_t out_poll, err_poll;
    int out_fd, err_fd;
    struct nb_buf out_line, err_line;
    int open_handles;             /* uv handles still to close before free */
    struct nb_http_req *next_req; /* held `next` long poll */
    struct nb_invocation *inv;    /* current invocation */
    bool init_done;
    bool init_failed; /* the runtime reported /init/error */
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
/* Starts an instance of cfg (a published version of fn) with no invocation, for provisioned
 * concurrency config pc_id: it runs with AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency
 * and goes IDLE once its runtime asks for the first event. */
void instance_start_provisioned(struct nb_daemon *d, struct nb_fn *fn, struct nb_function *cfg,
                                uint64_t pc_id);
/* Starts a parked instance of cfg ($LATEST of fn) with no invocation (prewarm.h): it goes IDLE
 * once its runtime asks for the first event; the first invocation that takes it is served
 * without Init Duration. */
void instance_start_parked(struct nb_daemon *d, struct nb_fn *fn, struct nb_function *cfg);
/* Hands inv to an idle instance (pops it from the idle list). */
void instance_assign(struct nb_instance *inst, struct nb_invocation *inv);
/* The next instance uid (round-robin over cfg.uid_base .. + uid_count) and the hostname that goes
 * with it ("nimbus-<uid>", into host[len]): given to an instance when it is placed, or to a deep
 * park slot ahead of time (park_pool.c), whose taker then uses the slot's. */
uint32_t instance_next_uid(struct nb_daemon *d);
void instance_hostname(uint32_t uid, char *host, size_t len);
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
 * what reservations and their provisioned concurrency leave (an invocation that an idle
 * provisioned instance of a function without a reservation will serve uses that capacity). The
 * reservation is the function's (fn->cfg), whichever snapshot cfg (a version) runs. NULL when
 * admitted (counters taken; give them back with pool_release), else the TooManyRequestsException
 * Reason. */
const char *pool_admit(struct nb_daemon *d, struct nb_fn *fn, const struct nb_function *cfg);
void pool_release(struct nb_daemon *d, struct nb_fn *fn, const struct nb_function *cfg);
/* Most recently used idle instance running exactly cfg (a snapshot of fn), provisioned ones first,
 * parked ones (prewarm.h) only when no other is idle, removed from the idle list; or NULL. */
struct nb_instance *pool_take_idle(struct nb_fn *fn, const struct nb_function *cfg);
/* True when an idle provisioned instance of cfg is ready (the next pool_take_idle takes it). */
bool pool_has_idle_provisioned(struct nb_fn *fn, const struct nb_function *cfg);
void pool_push_idle(struct nb_instance *inst);
void pool_unlink_idle(struct nb_instance *inst);
void pool_link(struct nb_instance *inst);
void pool_unlink(struct nb_instance *inst);
/* Marks every instance of fn to stop: idle now, busy/starting after their invocation. */
void pool_retire_all(struct nb_daemon *d, struct nb_fn *fn);
/* Like pool_retire_all, for the instances running snapshot cfg only (one version). */
void pool_retire_snapshot(struct nb_daemon *d, struct nb_fn *fn, const struct nb_function *cfg);
/* $LATEST changed from old to cfg in ways instances do not see (e.g. concurrency): its instances
 * now run cfg; instances of published versions keep theirs. */
void pool_adopt_config(struct nb_fn *fn, const struct nb_function *old, struct nb_function *cfg);
/* Stops idle instances idle for longer than keep_warm_s (parked ones: keep_warm_s after their
 * function's last invocation), except provisioned ones (all of them when force). Returns the
 * earliest keep-warm expiry (mono_ns) of the non-provisioned idle instances left, UINT64_MAX when
 * none is. */
uint64_t pool_reap(struct nb_daemon *d, bool force);
/* The keep-warm reaper: one timer (d->reaper), armed only while some instance is idle, for the
 * earliest expiry (never sooner than reap_interval_ms after it last fired, which coalesces
 * expiries): an idle daemon has no periodic wake-up. pool_push_idle arms it. _start after the
 * loop exists; _close on shutdown; _reschedule after keep_warm_s changed (config reload). */
void pool_reaper_start(struct nb_daemon *d);
void pool_reaper_close(struct nb_daemon *d);
void pool_reaper_reschedule(struct nb_daemon *d);
/* Kills every instance of every function (shutdown). */
void pool_kill_all(struct nb_daemon *d);

/* Invocations (invoke.c). */
/* Outcome of an invocation as seen by the caller. */
enum nb_outcome { NB_OK, NB_FN_ERROR, NB_TIMEOUT };
/* Creates an invocation of fn running cfg (a snapshot of fn; both referenced), admitted by the
 * caller with pool_admit (invoke.c releases it). Consumes payload (malloc'd; NULL = "{}").
 * request_id NULL = a new one; trace NULL or not a Root= header = a new trace id. The caller
 * sets client or on_done (and the optional fields), then calls invoke_start. */
struct nb_invocation *invoke_new(struct nb_daemon *d, struct nb_fn *fn, struct nb_function *cfg,
                                 const char *request_id, char *payload, size_t payload_len,
                                 const char *trace);
/* Arms the timeout and hands inv to the warmest idle instance, or starts a cold one. */
void invoke_start(struct nb_invocation *inv);
/* Starts inv's timeout timer (inv->timer must be initialised). */
void invoke_arm_timeout(struct nb_invocation *inv);
/* Delivers inv's event as the answer to inst's held `next` request. */
void invoke_deliver(struct nb_instance *inst, struct nb_invocation *inv);
/* Completes inv exactly once: writes END/REPORT, answers the client (status 200) with body
 * (consumed, malloc'd; may be NULL for an empty body) and X-Amz-Function-Error when outcome is
 * not NB_OK -- or calls on_done with them --, releases admission, and frees inv. */
void invoke_complete(struct nb_invocation *inv, enum nb_outcome outcome, char *body, size_t len);
/* Completes inv with a platform error reply (AWS error shape) instead of a function result (or
 * calls on_done with status and type). */
void invoke_fail(struct nb_invocation *inv, int status, const char *type, const char *msg);
/* Builds Lambda's error JSON {"errorType":..,"errorMessage":..} (malloc'd). */
char *invoke_error_json(const char *type, const char *msg, size_t *len);
/* Appends one line (without newline) to inv's log and to the function's log file. */
void invoke_log_line(struct nb_invocation *inv, const char *line, size_t len);

#endif

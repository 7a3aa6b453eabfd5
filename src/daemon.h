/*
 * daemon.h - the state of one running `nimbus serve`: the loop and everything hanging off it.
 * Exactly one struct nb_daemon exists per process; every loop-thread module receives it.
 * Fields are owned by the daemon and released in daemon_release; modules borrow them.
 */
#ifndef NIMBUS_DAEMON_H
#define NIMBUS_DAEMON_H

#include <uv.h>

#include "config.h"
#include "function.h"
#include "registry.h"
#include "serial_work.h"

struct nb_store;
struct nb_spawner;
struct nb_router;
struct nb_http_server;
struct nb_netns_pool;
struct nb_park_pool;
struct nb_logs;
struct nb_instance;
struct nb_metrics;
struct nb_audit;
struct nb_keys;
struct nb_async;
struct nb_eic_table;
struct nb_sqs;
struct nb_triggers;
struct nb_scheduler;
struct nb_esm_table; /* esm */

struct nb_daemon {
    uv_loop_t *loop;
    struct nb_config cfg;
    struct nb_function_ctx fnctx; /* region + account from cfg */
    struct nb_store *store;
    struct nb_spawner *spawner;
    struct nb_router *router;
    struct nb_http_server *api;
    struct nb_netns_pool *netns;
    struct nb_park_pool *park; /* parked sandboxes (park_pool.c) */
    struct nb_logs *logs;
    struct nb_audit *audit; /* DATA_DIR/audit.log (audit.c) */
    struct nb_keys *keys;   /* auth: access keys (keys.c), loaded at start */
    struct nb_sqs *sqs;     /* the queue service, DATA_DIR/sqs.db (sqs.c) */
    /* registry */
    struct nb_fn **fn_table;
    size_t fn_table_size, fn_count;
    /* admission */
    int64_t inflight;              /* admitted invocations, all functions */
    int64_t reserved_total;        /* sum of reserved concurrency (registry.c) */
    int64_t inflight_unreserved;   /* admitted invocations of functions without reservation */
    int64_t inflight_pc;           /* admitted on provisioned capacity (pool_admit) */
    int64_t pc_unreserved_total;   /* provisioned concurrency of functions without reservation */
    struct nb_pc_state *pc;        /* provisioned concurrency upkeep (provisioned.c) */
    int64_t instances;             /* live instances, all functions */
    struct nb_instance *inst_head; /* every live instance (instance.c) */
    uint32_t next_uid;             /* round-robin over cfg.uid_base..+uid_count */
    uint64_t instance_seq;         /* instance ids */
    bool draining;                 /* SIGTERM received: no new invocations */
    bool cgroups_ready;            /* cgroup_setup_at succeeded (the parent exists) */
    /* parked instances' refill timer (prewarm.c) */
    struct nb_prewarm_state *prewarm;
    /* the keep-warm reaper (pool.c): armed only while an instance is idle */
    uv_timer_t reaper;
    bool reaper_on;         /* started and not closed */
    uint64_t reaper_due_ns; /* mono_ns when it fires; 0 = not armed */
    struct {
        uint64_t invocations, function_errors, timeouts, throttles, cold_starts, parked_hits;
    } stats;                      /* daemon-wide totals for /metrics; updated only by metrics.c */
    struct nb_async *async;       /* asynchronous invocations (async.c) */
    struct nb_eic_table *eic;     /* event invoke configs (async_config.c) */
    struct nb_triggers *triggers; /* function URLs, HTTP routes, public listener (triggers.h) */
    struct nb_scheduler *sched;   /* schedule rules and their timer (scheduler.c) */
    struct nb_esm_table *esm;     /* esm: event source mappings (esm.c, api_esm.c) */
    /* control-plane store writes whose reply waits for them, one at a time (serial_work.h) */
    struct nb_serial_work store_writes;
    uint64_t started_ms;
    char runtime_dir_abs[4096];
    char zygote_module[4096]; /* the _nimbus_zygote extension; "" = no Python zygote */
    bool zygote_wanted;       /* a Python instance was started: keep zygote slots (park_pool.c) */
};

/* Runs `nimbus serve` with cfg (consumed) until SIGTERM/SIGINT and the drain are done. Starts
 * the spawner first, before any thread exists. Returns 0 or negative with err. */
int daemon_run(struct nb_config *cfg, struct nb_err *err);
/* Registers /healthz, /metrics and nimbus' own endpoints (api_nimbus.c). */
struct nb_router;
void api_nimbus_routes(struct nb_router *r, struct nb_daemon *d);

#endif

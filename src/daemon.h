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

struct nb_store;
struct nb_spawner;
struct nb_router;
struct nb_http_server;
struct nb_netns_pool;
struct nb_logs;

struct nb_daemon {
    uv_loop_t *loop;
    struct nb_config cfg;
    struct nb_function_ctx fnctx; /* region + account from cfg */
    struct nb_store *store;
    struct nb_spawner *spawner;
    struct nb_router *router;
    struct nb_http_server *api;
    struct nb_netns_pool *netns;
    struct nb_logs *logs;
    /* registry */
    struct nb_fn **fn_table;
    size_t fn_table_size, fn_count;
    /* admission */
    int64_t inflight;       /* admitted invocations, all functions */
    int64_t instances;      /* live instances, all functions */
    uint32_t next_uid;      /* round-robin over cfg.uid_base..+uid_count */
    uint64_t instance_seq;  /* instance ids */
    bool draining;          /* SIGTERM received: no new invocations */
    char runtime_dir_abs[4096];
};

#endif

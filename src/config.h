/*
 * config.h - the daemon's settings. One table (config.c) drives defaults, the INI config file
 * (inih; errors cite file:line), the command-line flags (--name-with-dashes VALUE), `nimbus config
 * show` and docs/CONFIG.md. Precedence: defaults < file < flags. SIGHUP re-reads the file and
 * applies the keys marked reloadable; others keep their start-up value (with a warning).
 */
#ifndef NIMBUS_CONFIG_H
#define NIMBUS_CONFIG_H

#include "err.h"

struct nb_config {
    char *config_file;   /* --config; NULL = none */
    char *listen;        /* host:port of the AWS API listener */
    char *public_listen; /* host:port of the function URL / HTTP route listener; "" = off */
    char *data_dir;
    char *region;
    char *account_id; /* 12 digits */
    int64_t account_concurrency;
    int64_t keep_warm_s;     /* idle instance lifetime */
    int64_t drain_timeout_s; /* SIGTERM: wait this long for in-flight invocations */
    char *log_level;
    char *runtime_dir; /* host dir with python/ node/ bootstraps, mounted at /var/runtime */
    char *python;      /* interpreter for python3.x runtimes (path under /usr) */
    char *node;        /* interpreter for nodejs* runtimes (path under /usr) */
    int64_t uid_base;  /* first uid/gid of the per-instance range */
    int64_t uid_count;
    int64_t pids_max;         /* per instance */
    int64_t netns_pool;       /* network namespaces kept ready */
    int64_t park_pool;        /* parked sandboxes kept ready (park_pool.c) */
    char *python_zygote;      /* "auto", "off" or the _nimbus_zygote extension's path */
    int64_t node_park_max;    /* parked instances per Node.js function (prewarm.h) */
    int64_t zygote_pool;      /* sandboxes kept parked in the Python zygote */
    char *cgroup_parent;      /* instances' cgroups live under <controller>/<cgroup_parent>/ */
    int64_t reap_interval_ms; /* least time between two keep-warm reaper runs (pool.c) */
    /* BEGIN auth settings */
    bool insecure;         /* no authentication (loopback listeners only) */
    char *master_key_file; /* "auto" = DATA_DIR/master.key */
    /* END auth settings */
    /* asynchronous invocations (async.c) */
    int64_t async_concurrency;     /* async attempts running (or about to) at once */
    int64_t async_queue_max;       /* events held (accepted, not finished) before 429 */
    int64_t async_queue_max_bytes; /* their payload bytes (held in memory) before 429 */
    int64_t async_retry_delay_ms;  /* n-th retry after a function error waits n x this */
    int64_t async_backoff_min_ms;  /* first wait after a throttle or platform error */
    int64_t async_backoff_max_ms;  /* cap of that wait's doubling */
    int64_t async_age_unit_ms;     /* one second of MaximumEventAgeInSeconds (tests shrink it) */
    /* schedules (scheduler.c) */
    char *schedule_catch_up;         /* "one" or "skip" */
    int64_t schedule_clock_offset_s; /* added to the wall clock (tests) */
    /* derived from listen */
    char listen_host[256];
    int listen_port;
    /* derived from public_listen (empty host: off) */
    char public_host[256];
    int public_port;
};

/* Fills defaults, then the file named by --config (if any), then flags from argv (argv[0] is the
 * subcommand name; parsing starts at argv[1]). -EINVAL with a message on a bad key, value or
 * flag; -ENOENT when --help was given (the caller prints config_usage). */
int config_load(struct nb_config *cfg, int argc, char **argv, struct nb_err *err);
/* SIGHUP: re-reads the file over a copy; on success applies reloadable keys into cfg. */
int config_reload(struct nb_config *cfg, struct nb_err *err);
void config_show(const struct nb_config *cfg, FILE *out);
void config_usage(FILE *out);
void config_release(struct nb_config *cfg);

#endif

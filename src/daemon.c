/*
 * daemon.c - `nimbus serve`: start-up order, signals and the bounded drain.
 *
 * Start-up order matters: the spawner is forked first, while the process is single-threaded;
 * then the data dir, cgroups, the store, the audit log (its syncer is a thread, so after the
 * spawner), the functions loaded into the registry, the loop's listeners and the
 * network-namespace pool. SIGTERM/SIGINT: stop admitting, wait up to
 * drain_timeout_s for in-flight invocations, kill every instance, wait (bounded) for their exit
 * reports, close everything. A second SIGTERM skips the wait. SIGHUP reloads the config file.
 * The keep-warm reaper lives in pool.c. While nothing happens, no timer of the daemon is armed.
 */
#include "daemon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>

#include "api.h"
#include "api_target.h"
#include "async.h"
#include "audit.h"
#include "cgroup.h"
#include "codepkg.h"
#include "esm.h" /* esm */
#include "http.h"
#include "instance.h"
#include "keys.h"
#include "log.h"
#include "logs.h"
#include "netns_pool.h"
#include "park_pool.h"
#include "policy.h"
#include "prewarm.h"
#include "provisioned.h"
#include "router.h"
#include "scheduler.h"
#include "spawner.h"
#include "sqs.h"
#include "store.h"
#include "triggers.h"

#define API_MAX_BODY (75u * 1024 * 1024)
#define KILL_WAIT_MS 5000
#define FINAL_GRACE_MS 2000

struct runtime {
    struct nb_daemon d;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t drain;
    uint64_t drain_deadline_ns, kill_deadline_ns;
    bool killed, closing, grace_expired;
};

static int load_function(void *data, const char *name, const char *doc)
{
    struct nb_daemon *d = data;
    struct nb_err err = {0};
    struct nb_function *fn = function_from_record(&d->fnctx, doc, &err);
    if (!fn) {
        log_err("skipping unreadable function record name=%s err=\"%s\"", name, err.msg);
        return 0;
    }
    registry_add(d, fn);
    return 0;
}

static int load_version(void *data, const char *name, int64_t version, const char *doc)
{
    struct nb_daemon *d = data;
    struct nb_fn *fn = registry_find(d, name);
    if (!fn)
        return 0;
    if (version > 0 && (uint64_t)version > fn->last_version)
        fn->last_version = (uint64_t)version; /* deleted numbers stay used */
    if (!doc)
        return 0;
    struct nb_err err = {0};
    struct nb_function *cfg = function_from_record(&d->fnctx, doc, &err);
    if (cfg && (strcmp(cfg->name, name) || cfg->version[0] == '$' ||
                strtoll(cfg->version, NULL, 10) != version)) {
        err_set(&err, EINVAL, "record names another function or version");
        function_unref(cfg);
        cfg = NULL;
    }
    if (!cfg) {
        log_err("skipping unreadable version record name=%s version=%lld err=\"%s\"", name,
                (long long)version, err.msg);
        return 0;
    }
    registry_add_version(fn, cfg);
    return 0;
}

static int load_alias(void *data, const char *name, const char *key, const char *doc)
{
    struct nb_daemon *d = data;
    struct nb_fn *fn = registry_find(d, name);
    if (!fn)
        return 0;
    struct nb_err err = {0};
    struct nb_alias *a = alias_from_record(fn->cfg->arn, doc, &err);
    if (a && strcmp(a->name, key)) {
        alias_free(a);
        a = NULL;
        err_set(&err, EINVAL, "record names another alias");
    }
    if (!a) {
        log_err("skipping unreadable alias record name=%s alias=%s err=\"%s\"", name, key, err.msg);
        return 0;
    }
    registry_put_alias(fn, a);
    return 0;
}

static int load_url(void *data, const char *name, const char *key, const char *doc)
{
    struct nb_daemon *d = data;
    struct nb_fn *fn = registry_find(d, name);
    if (!fn)
        return 0;
    struct nb_url_cfg *u = url_cfg_from_record(fn, key, doc);
    if (!u) {
        log_err("skipping unreadable function url record name=%s key=%s", name, key);
        return 0;
    }
    triggers_url_put(d, u);
    return 0;
}

static int load_route(void *data, const char *name, const char *key, const char *doc)
{
    struct nb_daemon *d = data;
    struct nb_fn *fn = registry_find(d, name);
    if (!fn)
        return 0;
    struct nb_http_route *r = route_from_record(fn, key, doc);
    if (!r || triggers_route_by_key(d, key)) {
        log_err("skipping unreadable or duplicate route record name=%s key=%s", name, key);
        route_free(r);
        return 0;
    }
    triggers_route_add(d, r);
    return 0;
}

static int load_provisioned(void *data, const char *name, const char *key, const char *doc)
{
    struct nb_daemon *d = data;
    struct nb_fn *fn = registry_find(d, name);
    if (!fn)
        return 0;
    struct nb_err err = {0};
    struct nb_provisioned *pc = provisioned_from_record(key, doc, &err);
    if (!pc) {
        log_err("skipping unreadable provisioned concurrency record name=%s qualifier=%s "
                "err=\"%s\"",
                name, key, err.msg);
        return 0;
    }
    fn->pcs = xrealloc(fn->pcs, (fn->n_pcs + 1) * sizeof(*fn->pcs));
    fn->pcs[fn->n_pcs++] = pc;
    registry_set_pc_total(d, fn, fn->pc_total + pc->requested);
    return 0;
}

static void on_final_grace(uv_timer_t *t)
{
    struct runtime *rt = t->data;
    log_warn("handles still open after stopping: leaving the loop");
    rt->grace_expired = true;
    uv_stop(rt->d.loop);
}

static void collect_code(struct nb_daemon *d)
{
    struct nb_fn **fns;
    size_t n = registry_list(d, &fns);
    size_t total = n;
    for (size_t i = 0; i < n; i++)
        total += fns[i]->n_versions;
    const char **live = xmalloc((total ? total : 1) * sizeof(*live));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        live[k++] = fns[i]->cfg->code_hex;
        for (size_t v = 0; v < fns[i]->n_versions; v++) /* published versions keep their code */
            live[k++] = fns[i]->versions[v]->code_hex;
    }
    codepkg_gc(d->cfg.data_dir, live, k);
    free(live);
    free(fns);
}

static void close_all(struct runtime *rt)
{
    struct nb_daemon *d = &rt->d;
    if (rt->closing)
        return;
    rt->closing = true;
    log_info("stopping instances=%lld", (long long)d->instances);
    uv_timer_stop(&rt->drain);
    scheduler_stop(d);
    async_stop(d);
    esm_stop(d); /* esm */
    pool_reaper_close(d);
    uv_close((uv_handle_t *)&rt->sig_term, NULL);
    uv_close((uv_handle_t *)&rt->sig_int, NULL);
    uv_close((uv_handle_t *)&rt->sig_hup, NULL);
    provisioned_release(d);
    prewarm_release(d);
    http_server_close(d->api, NULL, NULL);
    d->api = NULL;
    sqs_close(d->sqs);
    d->sqs = NULL;
    public_close(d);
    netns_pool_release(d);
    park_pool_release(d); /* before spawner_stop: unparks, removes the groups */
    logs_free(d->logs);
    d->logs = NULL;
    /* The spawner's socket would keep the loop running for ever: closing it also makes the
     * spawner kill whatever sandbox is left, and exit. */
    spawner_stop(d->spawner);
    d->spawner = NULL;
    if (strcmp(d->cfg.cgroup_parent, "nimbus"))
        cgroup_remove_parent(); /* a private parent (e2e daemons): leave no empty groups */
    /* Past the kill deadline an instance may still hold handles (or an invocation its timer):
     * they must not keep the daemon alive, so the loop is stopped after a grace period. The
     * timer is unreferenced: when everything closed in time, the loop simply ends. */
    uv_timer_start(&rt->drain, on_final_grace, FINAL_GRACE_MS, 0);
    uv_unref((uv_handle_t *)&rt->drain);
}

static void on_drain_tick(uv_timer_t *t)
{
    struct runtime *rt = t->data;
    struct nb_daemon *d = &rt->d;
    uint64_t now = mono_ns();
    if (!rt->killed && (d->inflight == 0 || now >= rt->drain_deadline_ns)) {
        if (d->inflight)
            log_warn("drain timeout: stopping with invocations in flight inflight=%lld",
                     (long long)d->inflight);
        rt->killed = true;
        rt->kill_deadline_ns = now + KILL_WAIT_MS * 1000000ull;
        pool_kill_all(d);
    }
    if (rt->killed && (d->instances == 0 || now >= rt->kill_deadline_ns))
        close_all(rt);
}

static void begin_drain(struct runtime *rt, bool fast)
{
    struct nb_daemon *d = &rt->d;
    if (!d->draining) {
        d->draining = true;
        log_info("draining inflight=%lld timeout_s=%lld", (long long)d->inflight,
                 (long long)d->cfg.drain_timeout_s);
        rt->drain_deadline_ns = mono_ns() + (uint64_t)d->cfg.drain_timeout_s * 1000000000ull;
        pool_reap(d, true);
        uv_timer_start(&rt->drain, on_drain_tick, 0, 20);
    } else if (fast) {
        rt->drain_deadline_ns = 0;
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct runtime *rt = s->data;
    if (signum == SIGHUP) {
        struct nb_err err = {0};
        if (config_reload(&rt->d.cfg, &err) < 0) {
            log_err("config reload failed err=\"%s\"", err.msg);
            return;
        }
        log_parse_level(rt->d.cfg.log_level, &nb_log_level);
        netns_pool_fill(&rt->d);
        park_pool_fill(&rt->d);
        pool_reaper_reschedule(&rt->d); /* keep_warm_s may have changed */
        log_info("config reloaded file=%s", rt->d.cfg.config_file ? rt->d.cfg.config_file : "-");
        return;
    }
    begin_drain(rt, true);
}

/* runtimes/ beside the binary: <src>/<build dir>/src/nimbus -> <src>/runtimes; installed:
 * PREFIX/bin/nimbus -> PREFIX/share/nimbus/runtimes. */
static char *find_runtime_dir(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        const char *rel[] = {"../../runtimes", "../share/nimbus/runtimes"};
        for (size_t i = 0; i < ARRAY_SIZE(rel); i++) {
            _cleanup_free_ char *dir = xasprintf("%s/%s", exe, rel[i]);
            _cleanup_free_ char *probe = xasprintf("%s/python/bootstrap.py", dir);
            if (access(probe, R_OK) == 0)
                return steal_ptr(dir);
        }
    }
    return xstrdup(NIMBUS_SOURCE_ROOT "/runtimes");
}

/* BEGIN auth */
static bool is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return !strcmp(host, "localhost");
}

/* Loads the access keys (creating the master key, root key and credentials file at first
 * start) and checks --insecure against the listen address. */
static int setup_auth(struct nb_daemon *d, struct nb_err *err)
{
    if (d->cfg.insecure && !is_loopback(d->cfg.listen_host))
        return err_set(err, EINVAL,
                       "--insecure needs a loopback listen address (127.0.0.0/8 or ::1), not "
                       "'%s': an unauthenticated API must not be reachable from the network",
                       d->cfg.listen_host);
    if (d->cfg.insecure && d->cfg.public_host[0] && !is_loopback(d->cfg.public_host))
        return err_set(err, EINVAL,
                       "--insecure needs a loopback public_listen address too, not '%s': "
                       "AWS_IAM function URLs would be open to the network",
                       d->cfg.public_host);
    _cleanup_free_ char *master = !strcmp(d->cfg.master_key_file, "auto")
                                      ? xasprintf("%s/master.key", d->cfg.data_dir)
                                      : xstrdup(d->cfg.master_key_file);
    d->keys = keys_open(d->store, d->cfg.data_dir, master, d->cfg.region, err);
    if (!d->keys)
        return -err->code;
    if (d->cfg.insecure)
        log_warn("INSECURE MODE: authentication is OFF; every request on %s is served with root "
                 "powers. Use only for local development",
                 d->cfg.listen);
    return 0;
}
/* END auth */

/* The Python zygote's extension: beside the binary in a build tree (<build>/src/), else where
 * `meson install` puts it. "" (no zygote) when off or not found. */
static void find_zygote_module(struct nb_daemon *d)
{
    const char *v = d->cfg.python_zygote;
    d->zygote_module[0] = '\0';
    if (!strcmp(v, "off"))
        return;
    if (strcmp(v, "auto")) {
        snprintf(d->zygote_module, sizeof(d->zygote_module), "%s", v);
        return;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        _cleanup_free_ char *p = xasprintf("%s/_nimbus_zygote.so", exe);
        if (access(p, R_OK) == 0) {
            snprintf(d->zygote_module, sizeof(d->zygote_module), "%s", p);
            return;
        }
    }
    if (access(NIMBUS_ZYGOTE_INSTALLED, R_OK) == 0)
        snprintf(d->zygote_module, sizeof(d->zygote_module), "%s", NIMBUS_ZYGOTE_INSTALLED);
    else
        log_info("no python zygote module found: python functions start the plain way");
}

static int setup(struct runtime *rt, struct nb_err *err)
{
    struct nb_daemon *d = &rt->d;
    int rc = mkdir_p(d->cfg.data_dir, 0750);
    if (rc < 0)
        return err_set(err, rc, "cannot create data dir '%s': %s", d->cfg.data_dir, strerror(-rc));
    char abs[PATH_MAX];
    if (!realpath(d->cfg.data_dir, abs))
        return err_set(err, errno, "cannot resolve data dir '%s': %s", d->cfg.data_dir,
                       strerror(errno));
    free(d->cfg.data_dir);
    d->cfg.data_dir = xstrdup(abs);
    if (!strcmp(d->cfg.runtime_dir, "auto")) {
        free(d->cfg.runtime_dir);
        d->cfg.runtime_dir = find_runtime_dir();
    }
    if (!realpath(d->cfg.runtime_dir, d->runtime_dir_abs))
        return err_set(err, errno, "cannot resolve runtime dir '%s': %s", d->cfg.runtime_dir,
                       strerror(errno));
    find_zygote_module(d);
    if ((rc = cgroup_setup_at(d->cfg.cgroup_parent, err)) < 0)
        return rc;
    d->cgroups_ready = true;
    d->store = store_open(d->cfg.data_dir, err);
    if (!d->store)
        return -err->code;
    d->audit = audit_open(d->cfg.data_dir, err);
    if (!d->audit)
        return -err->code;
    if ((rc = setup_auth(d, err)) < 0) /* auth */
        return rc;
    registry_init(d);
    if ((rc = store_function_each(d->store, load_function, d, err)) < 0 ||
        (rc = store_version_each(d->store, load_version, d, err)) < 0 ||
        (rc = store_object_each(d->store, "alias", load_alias, d, err)) < 0 ||
        (rc = store_object_each(d->store, "provisioned", load_provisioned, d, err)) < 0)
        return rc;
    triggers_init(d);
    if ((rc = store_object_each(d->store, "url", load_url, d, err)) < 0 ||
        (rc = store_object_each(d->store, "route", load_route, d, err)) < 0)
        return rc;
    collect_code(d); /* packages no function uses any more (updates, deletes) */
    d->loop = uv_default_loop();
    serial_work_init(&d->store_writes, d->loop);
    d->logs = logs_new(d->loop, d->cfg.data_dir, err);
    if (!d->logs)
        return -err->code;
    if ((rc = spawner_attach(d->spawner, d->loop, err)) < 0)
        return rc;
    d->router = router_new();
    api_lambda_routes(d->router, d);
    api_invoke_routes(d->router, d);
    api_async_routes(d->router, d);
    api_versions_routes(d->router, d);
    api_urls_routes(d->router, d);
    api_nimbus_routes(d->router, d);
    api_keys_routes(d->router, d);   /* auth */
    api_esm_routes(d->router, d);    /* esm */
    api_target_routes(d->router, d); /* POST /: EventBridge and SQS by X-Amz-Target */
    api_sqs_routes(d->router, d);    /* last: its POST /{Account}/{Queue} is a catch-all */
    struct nb_http_limits lim;
    http_limits_default(&lim);
    lim.max_body = API_MAX_BODY;
    lim.too_large_type = "RequestTooLargeException";
    lim.too_large_body = "{\"Type\":\"User\",\"message\":\"Request must be smaller than "
                         "78643200 bytes\",\"Message\":\"Request must be smaller than 78643200 "
                         "bytes\"}";
    d->api = http_server_new(d->loop, &lim, api_handle, d);
    if ((rc = http_server_listen(d->api, d->cfg.listen_host, d->cfg.listen_port, err)) < 0)
        return rc;             /* "cannot listen on 'host:port': why" */
    d->sqs = sqs_open(d, err); /* its commit thread starts after the spawner */
    if (!d->sqs)
        return -err->code;
    if ((rc = public_listen(d, err)) < 0)
        return rc;
    netns_pool_init(d);
    netns_pool_fill(d);
    park_pool_init(d);
    park_pool_fill(d);
    provisioned_init(d);
    prewarm_init(d);
    provisioned_sync_all(d);          /* provisioned instances come back at start */
    if ((rc = esm_start(d, err)) < 0) /* esm: polls once the loop runs */
        return rc;
    /* last: pending events are delivered once the loop runs (everything above is ready) */
    if ((rc = async_start(d, err)) < 0)
        return rc;
    /* after async: catch-up ticks are submitted as asynchronous events */
    if ((rc = scheduler_start(d, err)) < 0)
        return rc;
    return 0;
}

int daemon_run(struct nb_config *cfg, struct nb_err *err)
{
    struct runtime *rt = xcalloc(1, sizeof(*rt));
    struct nb_daemon *d = &rt->d;
    d->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    d->fnctx.region = d->cfg.region;
    d->fnctx.account_id = d->cfg.account_id;
    d->started_ms = now_ms();
    log_parse_level(d->cfg.log_level, &nb_log_level);
    signal(SIGPIPE, SIG_IGN);
    int rc = 0;
    d->spawner = spawner_start(err); /* first: no thread may exist yet */
    if (!d->spawner) {
        rc = -err->code;
        goto out;
    }
    if ((rc = setup(rt, err)) < 0)
        goto out;
    uv_signal_init(d->loop, &rt->sig_term);
    uv_signal_init(d->loop, &rt->sig_int);
    uv_signal_init(d->loop, &rt->sig_hup);
    rt->sig_term.data = rt->sig_int.data = rt->sig_hup.data = rt;
    uv_signal_start(&rt->sig_term, on_signal, SIGTERM);
    uv_signal_start(&rt->sig_int, on_signal, SIGINT);
    uv_signal_start(&rt->sig_hup, on_signal, SIGHUP);
    uv_timer_init(d->loop, &rt->drain);
    rt->drain.data = rt;
    pool_reaper_start(d);
    log_info("listening addr=%s:%d data_dir=%s functions=%zu pid=%d", d->cfg.listen_host,
             http_server_port(d->api), d->cfg.data_dir, d->fn_count, (int)getpid());
    uv_run(d->loop, UV_RUN_DEFAULT);
    if (rt->closing && !rt->grace_expired) {
        uv_close((uv_handle_t *)&rt->drain, NULL);
        uv_run(d->loop, UV_RUN_NOWAIT);
    }
    log_info("stopped");
out:
    scheduler_stop(d);
    async_stop(d); /* when setup failed after async_start (no-op after close_all) */
    esm_stop(d);   /* esm */
    if (d->sqs) {
        sqs_close(d->sqs);
        d->sqs = NULL;
    }
    if (d->loop && !rt->closing && d->api) {
        provisioned_release(d);
        prewarm_release(d);
        http_server_close(d->api, NULL, NULL);
        public_close(d);
        netns_pool_release(d);
        park_pool_release(d); /* before spawner_stop: unparks, removes the groups */
        uv_run(d->loop, UV_RUN_NOWAIT);
    }
    if (d->loop && !rt->closing) {
        logs_free(d->logs); /* its flush timer (a failed start; close_all frees it otherwise) */
        d->logs = NULL;
    }
    if (d->spawner)
        spawner_stop(d->spawner);
    if (d->loop) {
        uv_run(d->loop, UV_RUN_NOWAIT); /* close callbacks free the spawner and servers */
        if (uv_loop_close(d->loop) == UV_EBUSY)
            log_warn("event loop closed with handles still open");
    }
    if (rc < 0 && d->cgroups_ready && strcmp(d->cfg.cgroup_parent, "nimbus"))
        cgroup_remove_parent(); /* a failed start leaves no private parent behind either */
    scheduler_free(d);
    async_free(d); /* before the registry: events may hold function references */
    triggers_release(d);
    esm_free(d); /* esm */
    if (d->fn_table)
        registry_release(d);
    if (d->router)
        router_free(d->router);
    if (d->store)
        store_close(d->store);
    keys_free(d->keys);    /* auth */
    audit_close(d->audit); /* after the loop: no request can append any more */
    policy_cache_clear();
    free(d->netns);
    config_release(&d->cfg);
    free(rt);
    return rc;
}

/*
 * instance.c - building, observing and tearing down one function instance.
 *
 * Start: a parked sandbox (park_pool.h: a Python zygote slot, or a deep-parked slot that brings
 * its network namespace) or fresh cgroups -> network namespace if none yet (pool or on demand)
 * -> spawner request. The sandbox's stdout/stderr are read here line by line (uv_poll on the
 * pipes) and attributed to the current invocation. The end of an instance is always its exit
 * report from the spawner (or a failed start): teardown() then completes any invocation still
 * attached with Runtime.ExitError, releases the cgroups and the namespace, and frees the struct
 * after the last uv handle closed.
 *
 * Invariant: inst->inv != NULL iff an invocation is attached and not yet completed; the instance
 * holds a reference on its fn and cfg until freed.
 */
#include "instance.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "codepkg.h"
#include "daemon.h"
#include "log.h"
#include "logs.h"
#include "netns_pool.h"
#include "park_pool.h"
#include "prewarm.h"
#include "provisioned.h"
#include "spawner.h"

#define LINE_MAX_BYTES (256 * 1024)
#define MB (1024ull * 1024ull)

static void teardown(struct nb_instance *inst);

static void global_link(struct nb_instance *inst)
{
    struct nb_daemon *d = inst->d;
    inst->g_prev = NULL;
    inst->g_next = d->inst_head;
    if (d->inst_head)
        d->inst_head->g_prev = inst;
    d->inst_head = inst;
    d->instances++;
}

static void global_unlink(struct nb_instance *inst)
{
    struct nb_daemon *d = inst->d;
    if (inst->g_prev)
        inst->g_prev->g_next = inst->g_next;
    else
        d->inst_head = inst->g_next;
    if (inst->g_next)
        inst->g_next->g_prev = inst->g_prev;
    d->instances--;
}

static void maybe_free(struct nb_instance *inst)
{
    if (inst->open_handles > 0 || inst->state != INST_DEAD)
        return;
    buf_release(&inst->out_line);
    buf_release(&inst->err_line);
    function_unref(inst->cfg);
    fn_unref(inst->fn);
    free(inst);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct nb_instance *inst = h->data;
    inst->open_handles--;
    maybe_free(inst);
}

/* One complete line of function output. */
static void emit_line(struct nb_instance *inst, const char *line, size_t len)
{
    if (len && line[len - 1] == '\r')
        len--;
    if (inst->inv)
        invoke_log_line(inst->inv, line, len);
    else
        logs_write(inst->d->logs, inst->fn->name, inst->log_stream, now_ms(), line, len);
}

static void feed(struct nb_instance *inst, struct nb_buf *pending, const char *data, size_t n)
{
    while (n) {
        const char *nl = memchr(data, '\n', n);
        size_t take = nl ? (size_t)(nl - data) : n;
        if (pending->len + take > LINE_MAX_BYTES)
            take = LINE_MAX_BYTES - pending->len;
        if (pending->len == 0 && nl && take == (size_t)(nl - data)) {
            emit_line(inst, data, take); /* common case: no copy */
        } else {
            buf_append(pending, data, take);
            if (nl || pending->len >= LINE_MAX_BYTES) {
                emit_line(inst, pending->data, pending->len);
                buf_reset(pending);
            }
        }
        if (nl && take == (size_t)(nl - data))
            take++;
        data += take;
        n -= take;
    }
}

/* Reads fd until EAGAIN/EOF; returns false on EOF or error. */
static bool read_fd(struct nb_instance *inst, int fd, struct nb_buf *pending)
{
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n > 0) {
            feed(inst, pending, chunk, (size_t)n);
            if ((size_t)n < sizeof(chunk))
                return true; /* a short read emptied the pipe: no read just to see EAGAIN */
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        return false;
    }
}

static void close_output(struct nb_instance *inst, uv_poll_t *poll, int *fd)
{
    if (*fd < 0)
        return;
    uv_poll_stop(poll);
    uv_close((uv_handle_t *)poll, on_handle_closed);
    close(*fd);
    *fd = -1;
}

static void on_output(uv_poll_t *poll, int status, int events)
{
    struct nb_instance *inst = poll->data;
    bool is_out = poll == &inst->out_poll;
    int *fd = is_out ? &inst->out_fd : &inst->err_fd;
    struct nb_buf *pending = is_out ? &inst->out_line : &inst->err_line;
    if (status < 0 || !read_fd(inst, *fd, pending))
        close_output(inst, poll, fd);
}

/* On the warm path (once per invocation): one poll(2) for both pipes, and a read only of a pipe
 * that has something (usually neither), instead of a read per pipe that fails with EAGAIN. */
void instance_drain_output(struct nb_instance *inst)
{
    struct pollfd p[2] = {{.fd = inst->out_fd, .events = POLLIN},
                          {.fd = inst->err_fd, .events = POLLIN}};
    if (p[0].fd < 0 && p[1].fd < 0)
        return;
    while (poll(p, 2, 0) < 0) { /* negative fds are ignored */
        if (errno != EINTR)
            return;
    }
    if (p[0].revents && !read_fd(inst, inst->out_fd, &inst->out_line))
        close_output(inst, &inst->out_poll, &inst->out_fd);
    if (p[1].revents && !read_fd(inst, inst->err_fd, &inst->err_line))
        close_output(inst, &inst->err_poll, &inst->err_fd);
}

static void flush_partial(struct nb_instance *inst)
{
    if (inst->out_line.len)
        emit_line(inst, inst->out_line.data, inst->out_line.len);
    if (inst->err_line.len)
        emit_line(inst, inst->err_line.data, inst->err_line.len);
    buf_reset(&inst->out_line);
    buf_reset(&inst->err_line);
}

static void exit_message(int wstatus, bool oom, char *out, size_t outlen)
{
    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) < 128) {
        snprintf(out, outlen, "Runtime exited with error: exit status %d", WEXITSTATUS(wstatus));
        return;
    }
    int sig = WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : WEXITSTATUS(wstatus) - 128;
    const char *name = sig == SIGKILL ? "killed" : sigabbrev_np(sig);
    snprintf(out, outlen, "Runtime exited with error: signal: %s%s", name ? name : "unknown",
             oom ? " (out of memory)" : "");
}

/* The process is gone (or never started): complete what is attached and release everything. */
static void teardown(struct nb_instance *inst)
{
    struct nb_daemon *d = inst->d;
    if (inst->state == INST_DEAD)
        return;
    if (inst->state == INST_IDLE) {
        pool_unlink_idle(inst);
        inst->state = INST_BUSY;
    }
    instance_drain_output(inst);
    flush_partial(inst);
    if (inst->inv) {
        struct nb_invocation *inv = inst->inv;
        char msg[256], full[400];
        uint64_t ooms = 0;
        if (inst->cg.dirs[0])
            cgroup_oom_kills(&inst->cg, &ooms, NULL);
        if (inst->spawned)
            exit_message(inst->wstatus, ooms > 0, msg, sizeof(msg));
        else
            snprintf(msg, sizeof(msg), "Runtime failed to start");
        snprintf(full, sizeof(full), "RequestId: %s Error: %s", inv->request_id, msg);
        invoke_log_line(inv, full, strlen(full));
        size_t len;
        char *body = invoke_error_json("Runtime.ExitError", full, &len);
        invoke_complete(inv, NB_FN_ERROR, body, len);
    }
    if (inst->next_req) {
        struct nb_http_req *r = steal_ptr(inst->next_req);
        r->on_abort = NULL;
        http_reply(r, 500, NULL, 0, NULL, 0);
    }
    close_output(inst, &inst->out_poll, &inst->out_fd);
    close_output(inst, &inst->err_poll, &inst->err_fd);
    if (inst->pidfd >= 0) {
        close(inst->pidfd);
        inst->pidfd = -1;
    }
    cgroup_destroy(&inst->cg);
    if (inst->ns) {
        netns_pool_put(inst->ns);
        inst->ns = NULL;
    }
    pool_unlink(inst);
    global_unlink(inst);
    inst->state = INST_DEAD;
    if (inst->pc_id)
        provisioned_instance_gone(inst); /* record an init failure; a replacement comes later */
    else if (inst->parked)
        prewarm_instance_gone(inst); /* likewise */
    log_debug("instance stopped function=%s instance=%llu invocations=%llu", inst->fn->name,
              (unsigned long long)inst->id, (unsigned long long)inst->invocations);
    maybe_free(inst);
    (void)d;
}

static void on_exit_report(void *data, int wstatus)
{
    struct nb_instance *inst = data;
    inst->exited = true;
    inst->wstatus = wstatus;
    teardown(inst);
}

static void fail_start(struct nb_instance *inst, const char *msg)
{
    log_err("instance start failed function=%s err=\"%s\"", inst->fn->name, msg);
    if (inst->inv) {
        struct nb_invocation *inv = steal_ptr(inst->inv);
        inv->inst = NULL;
        invoke_fail(inv, 500, "ServiceException", msg);
    }
    teardown(inst);
}

static void on_spawned(void *data, int rc, const struct nb_spawned *res, const struct nb_err *err)
{
    struct nb_instance *inst = data;
    if (rc < 0) {
        fail_start(inst, err ? err->msg : "sandbox start failed");
        return;
    }
    inst->spawned = true;
    inst->pid = res->pid;
    inst->pidfd = res->pidfd;
    inst->out_fd = res->stdout_fd;
    inst->err_fd = res->stderr_fd;
    uv_poll_init(inst->d->loop, &inst->out_poll, inst->out_fd);
    uv_poll_init(inst->d->loop, &inst->err_poll, inst->err_fd);
    inst->out_poll.data = inst->err_poll.data = inst;
    inst->open_handles += 2;
    uv_poll_start(&inst->out_poll, UV_READABLE | UV_DISCONNECT, on_output);
    uv_poll_start(&inst->err_poll, UV_READABLE | UV_DISCONNECT, on_output);
    if (inst->killed)
        spawner_kill(inst->pidfd, SIGKILL);
    else if (inst->next_req && inst->inv && inst->state != INST_BUSY)
        invoke_deliver(inst, inst->inv); /* the runtime asked before its pipes were here */
}

static const char *const *build_argv(struct nb_instance *inst, const char *code_dir,
                                     struct nb_arena *a, char *why, size_t whylen)
{
    const struct nb_config *c = &inst->d->cfg;
    const char **argv = arena_alloc(a, 4 * sizeof(*argv));
    switch (inst->cfg->kind) {
    case NB_RT_PYTHON:
        argv[0] = c->python, argv[1] = "/var/runtime/python/bootstrap.py", argv[2] = NULL;
        return argv;
    case NB_RT_NODE:
        argv[0] = c->node, argv[1] = "/var/runtime/node/bootstrap.js", argv[2] = NULL;
        return argv;
    case NB_RT_PROVIDED:
        break;
    }
    _cleanup_free_ char *host = xasprintf("%s/bootstrap", code_dir);
    struct stat st;
    if (stat(host, &st) < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
        snprintf(why, whylen,
                 "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]");
        return NULL;
    }
    argv[0] = "/var/task/bootstrap", argv[1] = NULL;
    return argv;
}

const char *const instance_default_env[] = {
    "PATH=/usr/local/bin:/usr/bin:/bin:/opt/bin",
    "LANG=en_US.UTF-8",
    "TZ=:UTC",
    "LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:"
    "/var/task:/var/task/lib:/opt/lib",
    "NODE_PATH=/opt/nodejs/node20/node_modules:/opt/nodejs/node_modules:"
    "/var/runtime/node_modules",
    NULL,
};

/* Whether a Python instance may come from the zygote: the daemon has one, and the function neither
 * opts out (NIMBUS_ZYGOTE=0) nor sets a variable the interpreter or the dynamic loader only read
 * at process start (the zygote started with the platform's defaults). Such functions start the
 * plain way, which always behaves as documented. */
static bool zygote_fits(struct nb_instance *inst)
{
    const struct nb_function *f = inst->cfg;
    struct nb_daemon *d = inst->d;
    if (f->kind != NB_RT_PYTHON || !d->zygote_module[0] || d->cfg.zygote_pool <= 0)
        return false;
    const char *k;
    json_t *v;
    json_object_foreach (f->env, k, v) {
        if (!strcmp(k, "NIMBUS_ZYGOTE") && !strcmp(json_string_value(v), "0"))
            return false;
        if (!strncmp(k, "PYTHON", 6) || !strncmp(k, "LC_", 3) || !strncmp(k, "LD_", 3) ||
            !strncmp(k, "MALLOC_", 7) || !strcmp(k, "LANG") || !strcmp(k, "LANGUAGE") ||
            !strcmp(k, "GLIBC_TUNABLES"))
            return false;
    }
    if (!d->zygote_wanted) {
        d->zygote_wanted = true; /* from now on the pool keeps zygote slots */
        park_pool_fill(d);
    }
    return true;
}

static const char *const *build_env(struct nb_instance *inst, struct nb_arena *a)
{
    const struct nb_function *f = inst->cfg;
    const struct nb_config *c = &inst->d->cfg;
    size_t n_user = json_object_size(f->env);
    const char **env = arena_alloc(a, (n_user + 32) * sizeof(*env));
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach (f->env, k, v)
        env[n++] = arena_printf(a, "%s=%s", k, json_string_value(v));
    /* Unreserved platform variables are defaults the function's own may replace (Lambda lets
     * users set PATH, LANG, TZ, LD_LIBRARY_PATH, NODE_PATH...). Each key appears once: with a
     * duplicate, libc's getenv, Python and sh would each pick a different one. Reserved keys
     * never come from the user (function.c refuses them). */
    const char *const *unreserved = instance_default_env;
    for (size_t i = 0; unreserved[i]; i++) {
        const char *eq = strchr(unreserved[i], '=');
        char key[32];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - unreserved[i]), unreserved[i]);
        if (!strcmp(key, "NODE_PATH") && f->kind != NB_RT_NODE)
            continue;
        if (!json_object_get(f->env, key))
            env[n++] = unreserved[i];
    }
    env[n++] = "LAMBDA_TASK_ROOT=/var/task";
    env[n++] = "LAMBDA_RUNTIME_DIR=/var/runtime";
    env[n++] = arena_printf(a, "AWS_LAMBDA_RUNTIME_API=127.0.0.1:%d", NB_RUNTIME_API_PORT);
    /* the same Runtime API on an abstract Unix socket ('@' for the leading NUL): nimbus' C
     * runtime prefers it; every other client uses the TCP endpoint above */
    env[n++] = "NIMBUS_RUNTIME_API_SOCKET=@" NB_RUNTIME_API_SOCKET;
    env[n++] = arena_printf(a, "_HANDLER=%s", f->handler);
    env[n++] = arena_printf(a, "AWS_LAMBDA_FUNCTION_NAME=%s", f->name);
    env[n++] = arena_printf(a, "AWS_LAMBDA_FUNCTION_VERSION=%s", f->version);
    env[n++] = arena_printf(a, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%d", f->memory_mb);
    env[n++] = arena_printf(a, "AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/%s", f->name);
    env[n++] = arena_printf(a, "AWS_LAMBDA_LOG_STREAM_NAME=%s", inst->log_stream);
    env[n++] = arena_printf(a, "AWS_REGION=%s", c->region);
    env[n++] = arena_printf(a, "AWS_DEFAULT_REGION=%s", c->region);
    env[n++] = inst->pc_id ? "AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency"
                           : "AWS_LAMBDA_INITIALIZATION_TYPE=on-demand";
    if (f->kind != NB_RT_PROVIDED)
        env[n++] = arena_printf(a, "AWS_EXECUTION_ENV=AWS_Lambda_%s", f->runtime);
    env[n] = NULL;
    return env;
}

static void on_ns_ready(void *data, int rc, struct nb_netns *ns, const struct nb_err *err);

/* Builds the sandbox: chooses its groups (once), gets a namespace if it has none yet (this
 * returns and on_ns_ready calls it again when none is pooled), asks the spawner. */
static void spawn_now(struct nb_instance *inst)
{
    struct nb_daemon *d = inst->d;
    const struct nb_function *f = inst->cfg;
    struct nb_err err = {0};
    struct nb_arena a;
    arena_init(&a);
    _cleanup_free_ char *code_dir = codepkg_dir(d->cfg.data_dir, f->code_hex);
    char why[256] = "";
    const char *const *argv = build_argv(inst, code_dir, &a, why, sizeof(why));
    if (!argv) {
        struct nb_invocation *inv = steal_ptr(inst->inv);
        if (inv) {
            inv->inst = NULL;
            char full[400];
            snprintf(full, sizeof(full), "RequestId: %s Error: %s", inv->request_id, why);
            invoke_log_line(inv, full, strlen(full));
            size_t len;
            char *body = invoke_error_json("Runtime.InvalidEntrypoint", full, &len);
            invoke_complete(inv, NB_FN_ERROR, body, len);
        }
        arena_release(&a);
        teardown(inst);
        return;
    }
    snprintf(inst->cg_name, sizeof(inst->cg_name), "i%llu-%d", (unsigned long long)inst->id,
             (int)getpid());
    struct nb_cgroup_limits lim = {
        .memory_bytes = (uint64_t)f->memory_mb * MB,
        .pids_max = d->cfg.pids_max,
        .cpu_period_us = NB_CPU_PERIOD_US,
        .cpu_quota_us = 0, /* full CPU during init; the share is applied at the first `next` */
    };
    /* A parked sandbox is already in its (fresh) groups: no cgroup attach on this path. A
     * Python function takes one parked in the zygote if it may and one is ready; a deep-parked
     * one comes with its network namespace. */
    if (!inst->placed) {
        inst->placed = true;
        inst->park_id = zygote_fits(inst) ? park_pool_take_zygote(d, &lim, &inst->cg) : 0;
        inst->zygote = inst->park_id != 0;
        struct nb_netns *ns = NULL;
        if (!inst->park_id &&
            (inst->park_id = park_pool_take(d, &lim, (uint64_t)f->ephemeral_mb * MB, &inst->cg, &ns,
                                            &inst->uid))) {
            inst->deep = true; /* with the slot's uid (and hostname): its /etc is written */
            inst->ns = ns;
            ns->inst = inst;
        } else {
            inst->uid = instance_next_uid(d);
        }
        log_debug("instance spawn function=%s instance=%llu zygote=%d parked=%d uid=%u",
                  inst->fn->name, (unsigned long long)inst->id, inst->zygote, inst->park_id != 0,
                  inst->uid);
        if (!inst->park_id && cgroup_create(&inst->cg, inst->cg_name, &lim, &err) < 0) {
            arena_release(&a);
            fail_start(inst, err.msg);
            return;
        }
    }
    if (!inst->ns) {
        struct nb_netns *ns = netns_pool_take(d);
        if (!ns) {
            arena_release(&a);
            if (netns_pool_request(d, on_ns_ready, inst, &err) < 0)
                fail_start(inst, err.msg);
            return;
        }
        inst->ns = ns;
        ns->inst = inst;
    }
    char hostname[64];
    instance_hostname(inst->uid, hostname, sizeof(hostname));
    struct nb_sandbox_spec spec = {
        .code_dir = code_dir,
        .runtime_dir = d->runtime_dir_abs,
        .argv = argv,
        .envp = build_env(inst, &a),
        .netns_fd = inst->deep ? -1 : inst->ns->fd,
        .cgroup_dirs = (const char *const *)inst->cg.dirs,
        .uid = inst->uid,
        .gid = inst->uid,
        .tmp_bytes = (uint64_t)f->ephemeral_mb * MB,
        .hostname = hostname,
        .park_id = inst->park_id,
    };
    int rc = spawner_spawn(d->spawner, &spec, on_spawned, on_exit_report, inst, &err);
    arena_release(&a);
    if (rc < 0)
        fail_start(inst, err.msg);
}

static void on_ns_ready(void *data, int rc, struct nb_netns *ns, const struct nb_err *err)
{
    struct nb_instance *inst = data;
    if (rc < 0) {
        fail_start(inst, err ? err->msg : "cannot make network namespace");
        return;
    }
    inst->ns = ns;
    ns->inst = inst;
    if (inst->killed) {
        teardown(inst);
        return;
    }
    spawn_now(inst);
}

/* A new STARTING instance of cfg (a snapshot of fn), linked into the pools; not launched yet. */
static struct nb_instance *instance_new(struct nb_daemon *d, struct nb_fn *fn,
                                        struct nb_function *cfg)
{
    struct nb_instance *inst = xcalloc(1, sizeof(*inst));
    inst->d = d;
    fn_ref(fn);
    inst->fn = fn;
    inst->cfg = function_ref(cfg);
    inst->id = ++d->instance_seq;
    inst->pidfd = inst->out_fd = inst->err_fd = -1;
    inst->state = INST_STARTING;
    inst->started_ns = mono_ns();
    /* Lambda's stream suffix is 32 random hex digits: a v4 UUID's digits without the dashes
     * (hex-encoding the UUID's text would give 32 digits with far less randomness) */
    char day[40], hex[33], uuid[37];
    uuid_v4(uuid);
    size_t nhex = 0;
    for (const char *u = uuid; *u && nhex < 32; u++)
        if (*u != '-')
            hex[nhex++] = *u;
    hex[nhex] = '\0';
    fmt_iso8601_ms(now_ms(), day, sizeof(day));
    snprintf(inst->log_stream, sizeof(inst->log_stream), "%.4s/%.2s/%.2s/[%s]%s", day, day + 5,
             day + 8, inst->cfg->version, hex);
    return inst;
}

/* Links inst and builds its sandbox (spawn_now). */
static void launch(struct nb_instance *inst)
{
    pool_link(inst);
    global_link(inst);
    log_debug("instance starting function=%s instance=%llu provisioned=%llu", inst->fn->name,
              (unsigned long long)inst->id, (unsigned long long)inst->pc_id);
    spawn_now(inst);
}

void instance_start(struct nb_daemon *d, struct nb_invocation *inv)
{
    struct nb_instance *inst = instance_new(d, inv->fn, inv->cfg);
    inst->inv = inv;
    inv->inst = inst;
    launch(inst);
}

void instance_start_provisioned(struct nb_daemon *d, struct nb_fn *fn, struct nb_function *cfg,
                                uint64_t pc_id)
{
    ASSERT(pc_id != 0);
    struct nb_instance *inst = instance_new(d, fn, cfg);
    inst->pc_id = pc_id;
    launch(inst);
}

void instance_start_parked(struct nb_daemon *d, struct nb_fn *fn, struct nb_function *cfg)
{
    struct nb_instance *inst = instance_new(d, fn, cfg);
    inst->parked = true;
    launch(inst);
}

void instance_assign(struct nb_instance *inst, struct nb_invocation *inv)
{
    inst->inv = inv;
    inv->inst = inst;
    invoke_deliver(inst, inv);
}

void instance_kill(struct nb_instance *inst, const char *why)
{
    if (inst->state == INST_DEAD || inst->killed)
        return;
    log_debug("instance kill function=%s instance=%llu why=%s", inst->fn->name,
              (unsigned long long)inst->id, why);
    inst->killed = true;
    if (inst->state == INST_IDLE) {
        pool_unlink_idle(inst);
        inst->state = INST_BUSY;
    }
    if (inst->spawned && !inst->exited)
        spawner_kill(inst->pidfd, SIGKILL);
}

uint32_t instance_next_uid(struct nb_daemon *d)
{
    return (uint32_t)(d->cfg.uid_base + (d->next_uid++ % (uint64_t)d->cfg.uid_count));
}

void instance_hostname(uint32_t uid, char *host, size_t len)
{
    snprintf(host, len, "nimbus-%u", (unsigned)uid);
}

/*
 * park_pool.c - the ready list of parked sandboxes and the park requests that refill it
 * (park_pool.h).
 *
 * Invariants: a slot is on exactly one of the ready list (park_id != 0, its child parked in its
 * groups) or the pending list (park requested; its groups exist, the child may not be attached
 * yet); a pending slot at release is freed there, since the spawner stops right after and never
 * answers it. A ready slot leaves the pool only through a take (the groups move to the
 * instance) or a discard (unpark + cgroup_destroy, which also kills the child). Failed parks are
 * logged and not retried until the next fill, so a broken host costs one attempt per cold start,
 * never a loop.
 *
 * Plain slots are deep-parked (spawner.h): each holds a network namespace taken from the netns
 * pool (or requested for it when none is free: the slot then waits on the pending list with
 * ns == NULL), which goes to the instance on a take and back to the pool on a discard. New slots
 * get the limits (and /tmp size) of the last take, so a steady stream of one function's cold
 * starts writes no cgroup file on the request path, and the next instance uid (instance_next_uid),
 * for which the child writes /etc and sets the hostname before it waits; the taker uses that uid.
 *
 * Two lists: plain slots (cloned by the spawner, for any runtime) and zygote slots (cloned by the
 * Python zygote, for python3.x functions; cfg.zygote_pool of them, filled only once a Python
 * instance was started, so daemons without Python functions never start a zygote). A zygote that
 * cannot park (it does not start, or died) is retried after a back-off of 1 s doubling to 60 s, so
 * a broken interpreter costs one start attempt per back-off, not one per cold start.
 *
 * A take schedules the refill REFILL_DELAY_MS later instead of doing it at once: the spawner
 * serves requests in order and the host has few CPUs, so a park (clone + attach) issued next to
 * the spawn would slow the very start it replaces. After a zygote take the wait is longer
 * (ZYGOTE_REFILL_DELAY_MS): a zygote-born Python instance needs ~6 ms to its first `next`, and a
 * refill (cgroup mkdirs on the loop, a clone of the interpreter in the zygote) in the middle of it
 * measurably delayed that (Init Duration 6 -> 14 ms p50 here). The timer is never restarted while
 * pending, so a steady stream of takes cannot starve the refill.
 */
#include "park_pool.h"

#include "cgroup.h"
#include "daemon.h"
#include "instance.h"
#include "log.h"
#include "netns_pool.h"
#include "spawner.h"
#include "zygote.h"

#define ZYGOTE_SOCK_FD_ARG ZYGOTE_SOCK_FD

#define MB (1024ull * 1024ull)
#define PARK_MEMORY_BYTES (128 * MB) /* until the taker sets the function's limits */
#define PARK_TMP_BYTES (512 * MB)    /* Lambda's default ephemeral storage */
#define REFILL_DELAY_MS 10
#define ZYGOTE_REFILL_DELAY_MS 25
#define ZYGOTE_BACKOFF_MIN_MS 1000
#define ZYGOTE_BACKOFF_MAX_MS 60000

enum kind { PLAIN, ZYGOTE, N_KINDS };

struct slot {
    struct slot *next;
    struct nb_daemon *d;
    struct nb_cgroup cg;
    struct nb_cgroup_limits lim; /* set on cg */
    struct nb_netns *ns;         /* plain slots: the namespace the child parked in (NULL while
                                    waiting for one) */
    uint64_t park_id;            /* 0 while pending */
    uint32_t uid;                /* plain slots: the instance uid (and gid) /etc was written for */
    enum kind kind;
    bool released; /* waiting for a netns when the pool was released: its callback frees it */
};

struct list {
    struct slot *ready, *pending;
    size_t n_ready, n_pending;
};

struct nb_park_pool {
    uv_timer_t refill; /* data: the daemon; the pool is freed in its close callback */
    struct list lists[N_KINDS];
    struct nb_cgroup_limits lim[N_KINDS]; /* for new slots: those of the last take */
    uint64_t tmp_bytes;                   /* /tmp size for new plain slots: the last take's */
    uint64_t seq;                         /* names p<seq>-<pid> */
    uint64_t zygote_retry_ns;             /* no zygote parks before (mono) */
    uint64_t zygote_backoff_ms;           /* next back-off */
};

static size_t want(struct nb_daemon *d, enum kind k)
{
    if (k == PLAIN)
        return (size_t)d->cfg.park_pool;
    return d->zygote_wanted && d->zygote_module[0] ? (size_t)d->cfg.zygote_pool : 0;
}

static void discard(struct nb_daemon *d, struct slot *s)
{
    spawner_unpark(d->spawner, s->park_id);
    cgroup_destroy(&s->cg); /* kills the child if it is attached already */
    if (s->ns)
        netns_pool_put(s->ns); /* the child never ran code there */
    free(s);
}

static void unlink_pending(struct list *l, struct slot *s)
{
    for (struct slot **pp = &l->pending; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            l->n_pending--;
            return;
        }
}

static void on_parked(void *data, int rc, uint64_t park_id, const struct nb_err *err)
{
    struct slot *s = data;
    struct nb_daemon *d = s->d;
    s->park_id = rc == 0 ? park_id : 0;
    struct nb_park_pool *p = d->park;
    struct list *l = &p->lists[s->kind];
    unlink_pending(l, s);
    if (rc < 0) {
        if (s->kind == ZYGOTE) {
            p->zygote_retry_ns = mono_ns() + p->zygote_backoff_ms * 1000000ull;
            log_err("cannot park a sandbox in the python zygote err=\"%s\" retry_ms=%llu",
                    err ? err->msg : "?", (unsigned long long)p->zygote_backoff_ms);
            p->zygote_backoff_ms = p->zygote_backoff_ms * 2 > ZYGOTE_BACKOFF_MAX_MS
                                       ? ZYGOTE_BACKOFF_MAX_MS
                                       : p->zygote_backoff_ms * 2;
        } else {
            log_err("cannot park a sandbox err=\"%s\"", err ? err->msg : "?");
        }
        discard(d, s);
        return;
    }
    if (s->kind == ZYGOTE)
        p->zygote_backoff_ms = ZYGOTE_BACKOFF_MIN_MS;
    s->next = l->ready;
    l->ready = s;
    l->n_ready++;
    if (l->n_ready > want(d, s->kind))
        park_pool_fill(d); /* lowered by a reload meanwhile */
}

static void on_refill(uv_timer_t *t)
{
    park_pool_fill(t->data);
}

void park_pool_init(struct nb_daemon *d)
{
    d->park = xcalloc(1, sizeof(*d->park));
    d->park->zygote_backoff_ms = ZYGOTE_BACKOFF_MIN_MS;
    d->park->tmp_bytes = PARK_TMP_BYTES;
    for (enum kind k = PLAIN; k < N_KINDS; k++)
        d->park->lim[k] = (struct nb_cgroup_limits){.memory_bytes = PARK_MEMORY_BYTES,
                                                    .cpu_period_us = NB_CPU_PERIOD_US};
    uv_timer_init(d->loop, &d->park->refill);
    d->park->refill.data = d;
}

/* The zygote's command line and environment: the interpreter Python functions run, the
 * platform's default environment (what an instance gets unless its function sets otherwise). */
static int park_zygote(struct nb_daemon *d, struct slot *s, struct nb_err *err)
{
    _cleanup_free_ char *script = xasprintf("%s/python/zygote.py", d->runtime_dir_abs);
    char fd[16];
    snprintf(fd, sizeof(fd), "%d", ZYGOTE_SOCK_FD_ARG);
    const char *argv[] = {d->cfg.python, "-s", script, d->zygote_module, fd, NULL};
    const char *envp[16];
    size_t n = 0;
    for (size_t i = 0; instance_default_env[i] && n < ARRAY_SIZE(envp) - 2; i++)
        if (strncmp(instance_default_env[i], "NODE_PATH=", 10))
            envp[n++] = instance_default_env[i];
    /* Room for an instance's environment in the process' own environment area, for
     * /proc/self/environ when PR_SET_MM is not allowed (sandbox.c). Lambda caps a function's
     * variables at 4 KB; the platform's add about 1 KB. */
    static char pad[sizeof("_NIMBUS_ZYGOTE_PAD=") + 16384];
    if (!pad[0]) {
        memset(pad, 'x', sizeof(pad) - 1);
        memcpy(pad, "_NIMBUS_ZYGOTE_PAD=", strlen("_NIMBUS_ZYGOTE_PAD="));
    }
    envp[n++] = pad;
    envp[n] = NULL;
    return spawner_park_zygote(d->spawner, argv, envp, (const char *const *)s->cg.dirs, on_parked,
                               s, err);
}

/* A plain slot's park: deep, in s->ns, with the runtime dir and the last take's /tmp size. */
static int send_plain(struct nb_daemon *d, struct slot *s, struct nb_err *err)
{
    char host[64];
    s->uid = instance_next_uid(d);
    instance_hostname(s->uid, host, sizeof(host));
    struct nb_park_spec ps = {.cgroup_dirs = (const char *const *)s->cg.dirs,
                              .netns_fd = s->ns->fd,
                              .runtime_dir = d->runtime_dir_abs,
                              .tmp_bytes = d->park->tmp_bytes,
                              .uid = s->uid,
                              .gid = s->uid,
                              .hostname = host};
    return spawner_park(d->spawner, &ps, on_parked, s, err);
}

/* A plain slot's namespace is here: park the child in it. */
static void on_slot_ns(void *data, int rc, struct nb_netns *ns, const struct nb_err *err)
{
    struct slot *s = data;
    struct nb_daemon *d = s->d;
    if (s->released) {
        if (ns)
            netns_pool_put(ns);
        free(s);
        return;
    }
    struct nb_err e = {0};
    if (rc == 0) {
        s->ns = ns;
        if (send_plain(d, s, &e) == 0)
            return;
        err = &e;
    }
    unlink_pending(&d->park->lists[s->kind], s);
    if (rc != -ECANCELED) /* -ECANCELED: shutting down */
        log_err("cannot park a sandbox err=\"%s\"", err ? err->msg : "?");
    discard(d, s);
}

/* Sends the park of a new plain slot: deep, in a pooled namespace (or one made for it). */
static int park_plain(struct nb_daemon *d, struct slot *s, struct nb_err *err)
{
    s->ns = netns_pool_take(d);
    if (!s->ns)
        return netns_pool_request(d, on_slot_ns, s, err);
    int r = send_plain(d, s, err);
    if (r < 0) {
        netns_pool_put(s->ns);
        s->ns = NULL;
    }
    return r;
}

/* One park request; false when it could not even be sent (logged). */
static bool request(struct nb_daemon *d, enum kind k)
{
    struct nb_park_pool *p = d->park;
    struct slot *s = xcalloc(1, sizeof(*s));
    s->d = d;
    s->kind = k;
    char name[48];
    snprintf(name, sizeof(name), "p%llu-%d", (unsigned long long)++p->seq, (int)getpid());
    s->lim = p->lim[k];
    s->lim.pids_max = d->cfg.pids_max;
    struct nb_err err = {0};
    if (cgroup_create(&s->cg, name, &s->lim, &err) < 0 ||
        (k == PLAIN ? park_plain(d, s, &err) : park_zygote(d, s, &err)) < 0) {
        log_err("cannot park a sandbox err=\"%s\"", err.msg);
        cgroup_destroy(&s->cg);
        free(s);
        return false;
    }
    struct list *l = &p->lists[k];
    s->next = l->pending;
    l->pending = s;
    l->n_pending++;
    return true;
}

void park_pool_fill(struct nb_daemon *d)
{
    struct nb_park_pool *p = d->park;
    if (!p)
        return;
    for (enum kind k = PLAIN; k < N_KINDS; k++) {
        struct list *l = &p->lists[k];
        size_t w = want(d, k);
        while (l->n_ready > w) {
            struct slot *s = l->ready;
            l->ready = s->next;
            l->n_ready--;
            discard(d, s);
        }
        if (k == ZYGOTE && mono_ns() < p->zygote_retry_ns)
            continue;
        while (l->n_ready + l->n_pending < w && request(d, k))
            ;
    }
}

static bool same_limits(const struct nb_cgroup_limits *a, const struct nb_cgroup_limits *b)
{
    return a->memory_bytes == b->memory_bytes && a->pids_max == b->pids_max &&
           a->cpu_period_us == b->cpu_period_us && a->cpu_quota_us == b->cpu_quota_us;
}

static uint64_t take(struct nb_daemon *d, enum kind k, const struct nb_cgroup_limits *lim,
                     struct nb_cgroup *cg, struct nb_netns **ns, uint32_t *uid)
{
    struct nb_park_pool *p = d->park;
    if (!p)
        return 0;
    p->lim[k] = *lim; /* the next slots are made for the likes of this one */
    if (!uv_is_active((uv_handle_t *)&p->refill))
        uv_timer_start(&p->refill, on_refill,
                       k == ZYGOTE ? ZYGOTE_REFILL_DELAY_MS : REFILL_DELAY_MS, 0);
    struct list *l = &p->lists[k];
    if (!l->ready)
        return 0;
    struct slot *s = l->ready;
    l->ready = s->next;
    l->n_ready--;
    struct nb_err err = {0};
    /* Slots are made with the last take's limits: in a steady state no cgroup write is left for
     * the request path. */
    if (!same_limits(&s->lim, lim) && cgroup_set_limits(&s->cg, lim, &err) < 0) {
        log_err("cannot use a parked sandbox err=\"%s\"", err.msg);
        discard(d, s);
        return 0;
    }
    uint64_t id = s->park_id;
    *cg = s->cg;
    if (ns)
        *ns = s->ns;
    if (uid)
        *uid = s->uid;
    free(s);
    return id;
}

uint64_t park_pool_take(struct nb_daemon *d, const struct nb_cgroup_limits *lim, uint64_t tmp_bytes,
                        struct nb_cgroup *cg, struct nb_netns **ns, uint32_t *uid)
{
    if (d->park)
        d->park->tmp_bytes = tmp_bytes;
    return take(d, PLAIN, lim, cg, ns, uid);
}

uint64_t park_pool_take_zygote(struct nb_daemon *d, const struct nb_cgroup_limits *lim,
                               struct nb_cgroup *cg)
{
    return take(d, ZYGOTE, lim, cg, NULL, NULL);
}

static void on_closed(uv_handle_t *h)
{
    free(h->data); /* the pool */
}

void park_pool_release(struct nb_daemon *d)
{
    struct nb_park_pool *p = d->park;
    if (!p)
        return;
    for (enum kind k = PLAIN; k < N_KINDS; k++) {
        struct list *l = &p->lists[k];
        while (l->ready) {
            struct slot *s = l->ready;
            l->ready = s->next;
            discard(d, s);
        }
        while (l->pending) {
            /* spawner_stop follows in the same loop turn and drops pending callbacks, so nobody
             * else will free it; its child dies with the spawner. One still waiting for its
             * netns is freed by that callback (netns_pool_release answers it). */
            struct slot *s = l->pending;
            l->pending = s->next;
            cgroup_destroy(&s->cg); /* kills the child if it is attached already */
            if (s->kind == PLAIN && !s->ns) {
                s->released = true;
                continue;
            }
            if (s->ns)
                netns_pool_put(s->ns);
            free(s);
        }
    }
    p->refill.data = p;
    uv_close((uv_handle_t *)&p->refill, on_closed);
    d->park = NULL;
}

size_t park_pool_n_ready(struct nb_daemon *d)
{
    return d->park ? d->park->lists[PLAIN].n_ready + d->park->lists[ZYGOTE].n_ready : 0;
}

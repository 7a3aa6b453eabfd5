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
 * A take schedules the refill REFILL_DELAY_MS later instead of doing it at once: the spawner
 * serves requests in order and the host has few CPUs, so a park (clone + attach) issued next to
 * the spawn would slow the very start it replaces. The timer is never restarted while pending,
 * so a steady stream of takes cannot starve the refill.
 */
#include "park_pool.h"

#include "cgroup.h"
#include "daemon.h"
#include "log.h"
#include "spawner.h"

#define MB (1024ull * 1024ull)
#define PARK_MEMORY_BYTES (128 * MB) /* until the taker sets the function's limits */
#define REFILL_DELAY_MS 10

struct slot {
    struct slot *next;
    struct nb_daemon *d;
    struct nb_cgroup cg;
    uint64_t park_id; /* 0 while pending */
};

struct nb_park_pool {
    uv_timer_t refill; /* data: the daemon; the pool is freed in its close callback */
    struct slot *ready, *pending;
    size_t n_ready, n_pending;
    uint64_t seq; /* names p<seq>-<pid> */
};

static void discard(struct nb_daemon *d, struct slot *s)
{
    spawner_unpark(d->spawner, s->park_id);
    cgroup_destroy(&s->cg);
    free(s);
}

static void on_parked(void *data, int rc, uint64_t park_id, const struct nb_err *err)
{
    struct slot *s = data;
    struct nb_daemon *d = s->d;
    s->park_id = rc == 0 ? park_id : 0;
    struct nb_park_pool *p = d->park;
    for (struct slot **pp = &p->pending; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    p->n_pending--;
    if (rc < 0) {
        log_err("cannot park a sandbox err=\"%s\"", err ? err->msg : "?");
        discard(d, s);
        return;
    }
    s->next = p->ready;
    p->ready = s;
    p->n_ready++;
    if (p->n_ready > (size_t)d->cfg.park_pool)
        park_pool_fill(d); /* lowered by a reload meanwhile */
}

static void on_refill(uv_timer_t *t)
{
    park_pool_fill(t->data);
}

void park_pool_init(struct nb_daemon *d)
{
    d->park = xcalloc(1, sizeof(*d->park));
    uv_timer_init(d->loop, &d->park->refill);
    d->park->refill.data = d;
}

/* One park request; false when it could not even be sent (logged). */
static bool request(struct nb_daemon *d)
{
    struct nb_park_pool *p = d->park;
    struct slot *s = xcalloc(1, sizeof(*s));
    s->d = d;
    char name[48];
    snprintf(name, sizeof(name), "p%llu-%d", (unsigned long long)++p->seq, (int)getpid());
    struct nb_cgroup_limits lim = {.memory_bytes = PARK_MEMORY_BYTES, .pids_max = d->cfg.pids_max};
    struct nb_err err = {0};
    if (cgroup_create(&s->cg, name, &lim, &err) < 0 ||
        spawner_park(d->spawner, (const char *const *)s->cg.dirs, on_parked, s, &err) < 0) {
        log_err("cannot park a sandbox err=\"%s\"", err.msg);
        cgroup_destroy(&s->cg);
        free(s);
        return false;
    }
    s->next = p->pending;
    p->pending = s;
    p->n_pending++;
    return true;
}

void park_pool_fill(struct nb_daemon *d)
{
    struct nb_park_pool *p = d->park;
    if (!p)
        return;
    size_t want = (size_t)d->cfg.park_pool;
    while (p->n_ready > want) {
        struct slot *s = p->ready;
        p->ready = s->next;
        p->n_ready--;
        discard(d, s);
    }
    while (p->n_ready + p->n_pending < want && request(d))
        ;
}

uint64_t park_pool_take(struct nb_daemon *d, const struct nb_cgroup_limits *lim,
                        struct nb_cgroup *cg)
{
    struct nb_park_pool *p = d->park;
    if (!p)
        return 0;
    if (!uv_is_active((uv_handle_t *)&p->refill))
        uv_timer_start(&p->refill, on_refill, REFILL_DELAY_MS, 0);
    if (!p->ready)
        return 0;
    struct slot *s = p->ready;
    p->ready = s->next;
    p->n_ready--;
    struct nb_err err = {0};
    if (cgroup_set_limits(&s->cg, lim, &err) < 0) {
        log_err("cannot use a parked sandbox err=\"%s\"", err.msg);
        discard(d, s);
        return 0;
    }
    uint64_t id = s->park_id;
    *cg = s->cg;
    free(s);
    return id;
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
    while (p->ready) {
        struct slot *s = p->ready;
        p->ready = s->next;
        discard(d, s);
    }
    while (p->pending) {
        /* spawner_stop follows in the same loop turn and drops pending callbacks, so nobody
         * else will free it; its child dies with the spawner */
        struct slot *s = p->pending;
        p->pending = s->next;
        cgroup_destroy(&s->cg); /* kills the child if it is attached already */
        free(s);
    }
    p->refill.data = p;
    uv_close((uv_handle_t *)&p->refill, on_closed);
    d->park = NULL;
}

size_t park_pool_n_ready(struct nb_daemon *d)
{
    return d->park ? d->park->n_ready : 0;
}

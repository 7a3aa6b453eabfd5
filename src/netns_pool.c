/*
 * netns_pool.c - the free list of ready network namespaces and the requests that refill it.
 *
 * Each namespace's Runtime API is one http server with two listeners made inside it by the spawner:
 * TCP 127.0.0.1:9001 (AWS_LAMBDA_RUNTIME_API, for every runtime) and the abstract Unix socket
 * @nimbus-runtime-api (NIMBUS_RUNTIME_API_SOCKET, used by the bundled C runtime: no TCP handshake
 * or loopback TCP stack per exchange). Both reach the same instance's state machine.
 *
 * Invariant: a namespace is either on the free list (ns->inst == NULL), or owned by exactly one
 * instance, or being destroyed. A spawner reply first satisfies a waiting caller (struct waiter),
 * otherwise it joins the free list. Namespaces beyond the target size are destroyed on put.
 */
#include "netns_pool.h"

#include <errno.h>

#include "daemon.h"
#include "http.h"
#include "instance.h"
#include "log.h"
#include "spawner.h"

/* A take refills this much later, not at once: the spawner serves requests in order, so a
 * namespace made right then (~0.5 ms) would delay the sandbox being started (park_pool.c too). */
#define REFILL_DELAY_MS 10

struct nb_netns_pool {
    uv_timer_t refill; /* data: the daemon; closed by netns_pool_release */
    struct nb_netns *free;
    size_t n_free;
    size_t pending_fill; /* requests in flight for the free list */
    bool closing;
    struct waiter *waiters; /* every request in flight (fill or caller) */
};

struct waiter {
    struct nb_daemon *d;
    nb_netns_ready_cb cb; /* NULL: a fill request */
    void *data;
    struct waiter *next, *prev;
};

static void unlink_waiter(struct nb_netns_pool *p, struct waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        p->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
}

static void on_rapi_request(struct nb_http_req *req, void *data)
{
    struct nb_netns *ns = data;
    if (ns->inst)
        runtime_api_handle(ns->inst, req);
    else
        runtime_api_orphan(req);
}

static void on_rapi_too_large(void *data)
{
    struct nb_netns *ns = data;
    if (ns->inst)
        runtime_api_too_large(ns->inst);
}

static struct nb_netns *wrap(struct nb_daemon *d, int netns_fd, int listen_fd, int unix_fd,
                             struct nb_err *err)
{
    struct nb_http_limits lim;
    http_limits_default(&lim);
    lim.idle_timeout_ms = 0; /* `next` long polls may wait for hours */
    lim.header_timeout_ms = 60 * 1000;
    lim.max_body = 16 * 1024 * 1024; /* > 6 MiB + 100 B is refused by runtime_api.c */
    lim.max_conns = 64;
    lim.on_too_large = on_rapi_too_large;
    lim.hold_pipelined_replies = true; /* our runtimes send POST response + GET next in one write */
    lim.too_large_type = NULL;
    lim.too_large_body = "{\"errorMessage\":\"Exceeded maximum allowed payload size\","
                         "\"errorType\":\"RequestEntityTooLarge\"}";
    struct nb_netns *ns = xcalloc(1, sizeof(*ns));
    ns->d = d;
    ns->fd = netns_fd;
    ns->rapi = http_server_new(d->loop, &lim, on_rapi_request, ns);
    int r = http_server_open(ns->rapi, listen_fd, err); /* the primary: port 9001 */
    if (r < 0)
        close(unix_fd);
    else
        r = http_server_open(ns->rapi, unix_fd, err);
    if (r < 0) {
        http_server_close(ns->rapi, NULL, NULL);
        close(netns_fd);
        free(ns);
        return NULL;
    }
    return ns;
}

static void destroy(struct nb_netns *ns)
{
    http_server_close(ns->rapi, NULL, NULL);
    close(ns->fd);
    free(ns);
}

static void on_netns(void *data, int rc, int netns_fd, int listen_fd, int unix_fd,
                     const struct nb_err *err)
{
    struct waiter *w = data;
    struct nb_daemon *d = w->d;
    struct nb_netns_pool *p = d->netns;
    unlink_waiter(p, w);
    struct nb_err err2 = {0};
    struct nb_netns *ns = NULL;
    if (rc == 0) {
        ns = wrap(d, netns_fd, listen_fd, unix_fd, &err2);
        if (!ns)
            err = &err2, rc = -err2.code;
    }
    if (w->cb) {
        w->cb(w->data, rc, ns, err);
    } else {
        p->pending_fill--;
        if (rc < 0)
            log_err("cannot make network namespace err=\"%s\"", err ? err->msg : "?");
        else if (p->closing)
            destroy(ns);
        else {
            ns->next = p->free;
            p->free = ns;
            p->n_free++;
        }
    }
    free(w);
}

void netns_pool_init(struct nb_daemon *d)
{
    d->netns = xcalloc(1, sizeof(*d->netns));
    uv_timer_init(d->loop, &d->netns->refill);
    d->netns->refill.data = d;
}

static void on_refill(uv_timer_t *t)
{
    netns_pool_fill(t->data);
}

static int request(struct nb_daemon *d, nb_netns_ready_cb cb, void *data, struct nb_err *err)
{
    struct nb_netns_pool *p = d->netns;
    struct waiter *w = xmalloc(sizeof(*w));
    *w = (struct waiter){d, cb, data, p->waiters, NULL};
    int rc = spawner_make_netns(d->spawner, NB_RUNTIME_API_PORT, on_netns, w, err);
    if (rc < 0) {
        free(w);
        return rc;
    }
    if (p->waiters)
        p->waiters->prev = w;
    p->waiters = w;
    return rc;
}

void netns_pool_fill(struct nb_daemon *d)
{
    struct nb_netns_pool *p = d->netns;
    while (!p->closing && p->n_free + p->pending_fill < (size_t)d->cfg.netns_pool) {
        struct nb_err err = {0};
        if (request(d, NULL, NULL, &err) < 0) {
            log_err("cannot request network namespace err=\"%s\"", err.msg);
            return;
        }
        p->pending_fill++;
    }
}

struct nb_netns *netns_pool_take(struct nb_daemon *d)
{
    struct nb_netns_pool *p = d->netns;
    struct nb_netns *ns = p->free;
    if (ns) {
        p->free = ns->next;
        p->n_free--;
        ns->next = NULL;
    }
    if (!uv_is_active((uv_handle_t *)&p->refill)) /* never postponed by later takes */
        uv_timer_start(&p->refill, on_refill, REFILL_DELAY_MS, 0);
    return ns;
}

int netns_pool_request(struct nb_daemon *d, nb_netns_ready_cb cb, void *data, struct nb_err *err)
{
    return request(d, cb, data, err);
}

void netns_pool_put(struct nb_netns *ns)
{
    struct nb_daemon *d = ns->d;
    struct nb_netns_pool *p = d->netns;
    ns->inst = NULL;
    http_server_drop_connections(ns->rapi);
    if (p->closing || p->n_free >= (size_t)d->cfg.netns_pool) {
        destroy(ns);
        return;
    }
    ns->next = p->free;
    p->free = ns;
    p->n_free++;
}

void netns_pool_release(struct nb_daemon *d)
{
    struct nb_netns_pool *p = d->netns;
    if (!p)
        return;
    p->closing = true;
    uv_close((uv_handle_t *)&p->refill, NULL); /* d->netns is freed after the loop's last run */
    while (p->free) {
        struct nb_netns *ns = p->free;
        p->free = ns->next;
        destroy(ns);
    }
    p->n_free = 0;
    /* spawner_stop follows in this loop turn and drops the replies: answer the callers now */
    struct nb_err err = {0};
    err_set(&err, ECANCELED, "nimbus is shutting down");
    while (p->waiters) {
        struct waiter *w = p->waiters;
        unlink_waiter(p, w);
        if (w->cb)
            w->cb(w->data, -ECANCELED, NULL, &err);
        free(w);
    }
    p->pending_fill = 0;
}

size_t netns_pool_n_free(struct nb_daemon *d)
{
    return d->netns ? d->netns->n_free : 0;
}

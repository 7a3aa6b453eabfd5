/*
 * netns_pool.h - network namespaces for instances, made ahead of time by the spawner (creating one
 * costs ~0.5 ms and freeing one is slow and asynchronous in the kernel, so they are pooled and
 * reused). Each holds Runtime API listeners inside it (127.0.0.1:9001 and the abstract Unix socket
 * @nimbus-runtime-api, spawner.h), served by one http server on the daemon's loop; a request on
 * either belongs to the namespace's current instance, so no token is needed. Loop thread only.
 */
#ifndef NIMBUS_NETNS_POOL_H
#define NIMBUS_NETNS_POOL_H

#include "err.h"

struct nb_daemon;
struct nb_instance;
struct nb_http_server;

#define NB_RUNTIME_API_PORT 9001

struct nb_netns {
    struct nb_daemon *d;
    int fd;                      /* the namespace */
    struct nb_http_server *rapi; /* Runtime API listeners (TCP and Unix) inside it */
    struct nb_instance *inst;    /* current user, or NULL while pooled */
    struct nb_netns *next;       /* free list */
};

/* rc 0 with ns, or negative with err. */
typedef void (*nb_netns_ready_cb)(void *data, int rc, struct nb_netns *ns,
                                  const struct nb_err *err);

void netns_pool_init(struct nb_daemon *d);
/* Requests namespaces until free + pending reaches cfg.netns_pool. */
void netns_pool_fill(struct nb_daemon *d);
/* A pooled namespace (removed from the pool) or NULL when none is ready. Schedules a refill a
 * few ms later (off the start that is using the spawner now). */
struct nb_netns *netns_pool_take(struct nb_daemon *d);
/* Asks the spawner for a new namespace for one caller; cb runs later on the loop. */
int netns_pool_request(struct nb_daemon *d, nb_netns_ready_cb cb, void *data, struct nb_err *err);
/* Gives a namespace back after its instance is gone (its connections are dropped first). */
void netns_pool_put(struct nb_netns *ns);
/* Shutdown, right before spawner_stop in the same loop turn: closes every pooled namespace (those
 * in use are closed by their put) and fails every request in flight with -ECANCELED (their
 * replies would never come). */
void netns_pool_release(struct nb_daemon *d);
/* Pooled namespaces ready now (0 without a pool); for /metrics. */
size_t netns_pool_n_free(struct nb_daemon *d);

#endif

/*
 * authn.h - authentication of API requests: the SigV4 signature (sigv4.c) of a request checked
 * against the access-key table (keys.c), on the loop thread, without touching the disk.
 *
 * Accepted: header auth and presigned URLs signed for the configured region and the route's
 * service (the action's prefix: "lambda" for lambda:*, and "lambda" or "nimbus" for nimbus:*).
 * Every refusal replies with Lambda's 403 error shape and is audited (authz_refused).
 */
#ifndef NIMBUS_AUTHN_H
#define NIMBUS_AUTHN_H

#include "http.h"
#include "router.h"

struct nb_daemon;
struct nb_key;

/* Authenticates req for the routed m (m->action non-NULL). Returns the caller's key (borrowed
 * from d->keys, valid during this callback), or NULL after replying the error (req ended). */
const struct nb_key *authn_request(struct nb_daemon *d, struct nb_http_req *req,
                                   const struct nb_route_match *m);

#endif

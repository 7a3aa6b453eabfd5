/*
 * router.h - maps (method, path) to a handler for the AWS API listener.
 *
 * Patterns are literal segments and `{Name}` labels matching one non-empty segment
 * (e.g. "/2015-03-31/functions/{FunctionName}/invocations"); a trailing slash in a pattern is
 * significant, as in botocore's models. Labels are percent-decoded into the request arena.
 * Method "*" matches any method. Routes are tried in the order added. A path that matches some
 * route but not its method yields NB_ROUTE_BAD_METHOD.
 * The path is split on raw '/' before decoding, so a label may decode to a value containing '/'
 * (from %2F); ':' arrives as %3A in ARNs. Literal segments compare with the decoded segment.
 * Extension: a last segment `{Name+}` is a greedy label matching the non-empty rest of the path,
 * slashes included (botocore's S3 keys). Methods are compared exactly (HEAD does not match GET).
 */
#ifndef NIMBUS_ROUTER_H
#define NIMBUS_ROUTER_H

#include "http.h"

#define NB_ROUTE_MAX_PARAMS 4

struct nb_route_match {
    const char *names[NB_ROUTE_MAX_PARAMS];
    const char *values[NB_ROUTE_MAX_PARAMS]; /* decoded, arena-allocated */
    size_t n;
    const char *action; /* the route's IAM-style action ("lambda:InvokeFunction"), or NULL for
                           public routes (/healthz, /metrics) that need no credentials */
    const char *key_id; /* auth: the authenticated caller's access key id (set by api_handle after
                           authentication; NULL for public routes and under --insecure) */
};

typedef void (*nb_route_cb)(struct nb_http_req *req, const struct nb_route_match *m, void *data);

struct nb_router;

enum nb_route_result {
    NB_ROUTE_OK = 0,
    NB_ROUTE_NOT_FOUND,
    NB_ROUTE_BAD_METHOD,
    NB_ROUTE_BAD_PATH
};

struct nb_router *router_new(void);
void router_free(struct nb_router *r);
/* pattern, method and action are borrowed (must outlive the router; use literals). action names
 * the operation for authorization and the audit log ("service:Operation"); NULL marks a public
 * route that needs no credentials. A bad pattern (not
 * starting with '/', a label not a whole segment, more than NB_ROUTE_MAX_PARAMS labels) is a BUG.
 */
void router_add(struct nb_router *r, const char *method, const char *pattern, const char *action,
                nb_route_cb cb, void *data);
/* Finds the route for req; on NB_ROUTE_OK fills *cb, *data and *m (values in req's arena).
 * NB_ROUTE_BAD_PATH: the path has a malformed percent escape. */
enum nb_route_result router_match(const struct nb_router *r, struct nb_http_req *req,
                                  nb_route_cb *cb, void **data, struct nb_route_match *m);
/* Value of label name in m, or NULL. */
const char *route_param(const struct nb_route_match *m, const char *name);

#endif

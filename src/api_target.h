/*
 * api_target.h - `POST /` on the AWS API listener, shared by the services whose operation is named
 * in the request rather than the path: the JSON protocols name it in X-Amz-Target
 * ("AWSEvents.PutRule" = JSON 1.1, "AmazonSQS.SendMessage" = JSON 1.0), SQS's query protocol in
 * the form body (Action=...).
 *
 * One table maps an X-Amz-Target prefix to a service: the IAM action prefix used to authenticate
 * ("events:*": SigV4 service "events") and the handler. api.c looks the service up before it
 * authenticates (api_target_select), so a signature scoped to one service cannot reach another;
 * the handler authorizes with api_authorize once it knows the operation. A request with no
 * X-Amz-Target goes to the table's entry with prefix NULL (the query protocol), if any.
 */
#ifndef NIMBUS_API_TARGET_H
#define NIMBUS_API_TARGET_H

#include <jansson.h>

#include "http.h"
#include "router.h"

struct nb_daemon;

/* The action POST / is registered with; api.c resolves it per request through the table. */
#define API_TARGET_ACTION "target:*"

struct nb_api_target {
    const char *prefix; /* "AWSEvents." (the operation follows it); NULL = no X-Amz-Target */
    const char *action; /* "events:*": authentication's service and the audit's action */
    nb_route_cb cb;     /* the service's handler; m->values[0] is the operation name ("" for the
                           query protocol) under the label "Operation" */
};

/* Registers POST / (the dispatcher) on r. */
void api_target_routes(struct nb_router *r, struct nb_daemon *d);
/* For a route registered with API_TARGET_ACTION: finds req's service in the table, sets
 * m->action to its action and m's "Operation" label, and returns its handler. NULL after replying
 * the error (unknown or missing X-Amz-Target: 400 UnknownOperationException, JSON shape). */
nb_route_cb api_target_select(struct nb_http_req *req, struct nb_route_match *m);

/* Replies with an error in the JSON protocols' shape: status, body {"__type":type,"message":..}
 * (and x-amzn-ErrorType: type). Ends req. */
void api_target_error(struct nb_http_req *req, int status, const char *type, const char *fmt, ...)
    PRINTF_LIKE(4, 5);
/* Replies 200 with json (consumed) as application/x-amz-json-1.1. Ends req. */
void api_target_json(struct nb_http_req *req, json_t *json);

/* The services behind it. */
void api_events_handle(struct nb_http_req *req, const struct nb_route_match *m, void *data);
void api_sqs_handle(struct nb_http_req *req, const struct nb_route_match *m, void *data);

#endif

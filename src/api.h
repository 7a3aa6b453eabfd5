/*
 * api.h - the AWS API listener: routes requests to services (Lambda control plane in
 * api_lambda.c, Invoke in api_invoke.c, nimbus' own endpoints) and owns the AWS error shape.
 *
 * Every reply carries x-amzn-RequestId. Errors are JSON in Lambda's rest-json shape:
 * status, header x-amzn-ErrorType: <Type>, body
 * {"Type":"User"|"Service","message":..,"Message":..}. Request bodies and replies are owned as in
 * http.h; helpers here end the request.
 */
#ifndef NIMBUS_API_H
#define NIMBUS_API_H

#include <jansson.h>

#include "http.h"
#include "router.h"

struct nb_daemon;

/* Registers every route of the API listener on r. */
void api_lambda_routes(struct nb_router *r, struct nb_daemon *d);
void api_invoke_routes(struct nb_router *r, struct nb_daemon *d);
void api_keys_routes(struct nb_router *r, struct nb_daemon *d); /* auth: api_keys.c */
/* SQS (api_sqs.c): POST /<account>/<queue> (POST / comes through api_target.c); register after
 * every other service. */
void api_sqs_routes(struct nb_router *r, struct nb_daemon *d);
void api_esm_routes(struct nb_router *r, struct nb_daemon *d); /* esm: api_esm.c */

/* For routes registered with a "service:*" action (the operation is named in the body, as in
 * SQS's protocols): authorizes m's caller for action on resource once the handler knows them.
 * 0 when allowed; -EACCES with IAM's AccessDenied message in err when not (audited); the handler
 * replies in its own protocol's error shape. */
int api_authorize(struct nb_daemon *d, struct nb_http_req *req, const struct nb_route_match *m,
                  const char *action, const char *resource, struct nb_err *err);
/* Function URL configs and HTTP routes (api_urls.c). */
void api_urls_routes(struct nb_router *r, struct nb_daemon *d);
/* Versions and aliases (api_versions.c). */
void api_versions_routes(struct nb_router *r, struct nb_daemon *d);

struct nb_fn;
struct nb_function;
/* Finds the function {FunctionName} (+ ?Qualifier=) of m names, and the snapshot its qualifier
 * selects ($LATEST, a version, an alias' primary version) in *snap (borrowed; snap may be NULL).
 * *qual: the qualifier (malloc'd) or NULL. Replies 400/404 and returns NULL on failure. */
struct nb_fn *api_lambda_resolve(struct nb_http_req *req, struct nb_daemon *d,
                                 const struct nb_route_match *m, char **qual,
                                 struct nb_function **snap);
/* DeleteFunction with a qualifier: deletes that published version (api_versions.c). Ends req. */
void api_versions_delete(struct nb_http_req *req, struct nb_daemon *d, struct nb_fn *fn,
                         const char *qual);

/* Handles one request of the API listener (the http handler; data = struct nb_daemon *). */
void api_handle(struct nb_http_req *req, void *data);

/* Replies with an AWS error; status and type as in LAMBDA.md §3.10. Ends req. */
void api_error(struct nb_http_req *req, int status, const char *type, const char *fmt, ...)
    PRINTF_LIKE(4, 5);
/* Replies with the AWS error matching err->code (see err.h for the mapping). Ends req. */
void api_error_from(struct nb_http_req *req, const struct nb_err *err);
/* Replies status with body = json (serialised compactly; json is consumed: decref'd). Ends req. */
void api_json(struct nb_http_req *req, int status, json_t *json);
/* Replies with an empty body (e.g. 204). Ends req. */
void api_empty(struct nb_http_req *req, int status);
/* Parses the {FunctionName} label of m (name, name:qualifier, partial or full ARN) into *name and
 * *qualifier (malloc'd; qualifier NULL when absent). On a malformed ref replies 400 and returns
 * false (req ended). */
bool api_function_ref(struct nb_http_req *req, const struct nb_route_match *m, char **name,
                      char **qualifier);
/* Parses req's body as a JSON object; on failure replies 400 InvalidRequestContentException and
 * returns NULL (req ended). An empty body yields an empty object. New reference. */
json_t *api_body_json(struct nb_http_req *req);
/* For the after-work callback of a job run off the loop (uv_queue_work), e.g. a store write
 * before its reply: returns the job's result, rc as the work left it, or -EIO with err set to
 * "work cancelled: ..." when the work was cancelled (status < 0) before it set one. */
int api_work_result(int status, int rc, struct nb_err *err);

#endif

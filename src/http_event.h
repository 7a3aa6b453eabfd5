/*
 * http_event.h - HTTP triggers as data: builds the payload format 2.0 event (API Gateway HTTP APIs
 * and function URLs, LAMBDA.md §4.1) from an HTTP request, and maps a function's output back to
 * an HTTP response as API Gateway does. Pure: no loop, no daemon, no I/O (unit-tested and fuzzed).
 *
 * Event rules: header names lower-cased, repeated headers joined with ","; Cookie headers go to
 * cookies[] (split on ";", trimmed) and not to headers; queryStringParameters percent-decoded with
 * repeated keys joined with ","; pathParameters only when the route has labels; a body that is not
 * text (by Content-Type, or not valid UTF-8) is base64 with isBase64Encoded true.
 *
 * Response rules: a JSON object with "statusCode" is a structured response (headers, cookies ->
 * one Set-Cookie each, body, isBase64Encoded); any other valid JSON is the body of a 200 with
 * content-type application/json; output that is not JSON, or a structured response with a bad
 * member, is an error (the caller replies 502 like API Gateway).
 */
#ifndef NIMBUS_HTTP_EVENT_H
#define NIMBUS_HTTP_EVENT_H

#include <stdint.h>

#include "arena.h"
#include "err.h"
#include "http.h"

struct nb_http_event_in {
    const char *method;
    const char *raw_path; /* as received (percent-encoded), without any /_url/<id> prefix */
    const char *query;    /* raw, "" when absent */
    const struct nb_http_header *headers;
    size_t n_headers;
    const char *body;
    size_t body_len;
    const char *route_key;          /* "$default" or "GET /users/{id}" */
    const char *const *param_names; /* path parameters (decoded values); n_params may be 0 */
    const char *const *param_values;
    size_t n_params;
    const char *api_id;      /* url-id for function URLs, "nimbus" for routes */
    const char *domain_name; /* the Host header (or a made-up one) */
    const char *account_id;
    const char *request_id;
    const char *source_ip;
    uint64_t time_ms; /* wall clock */
    /* AWS_IAM function URLs: the caller's access key (requestContext.authorizer.iam), else NULL */
    const char *iam_key_id;
};

/* Returns the event JSON text (malloc'd, caller frees) and its length in *len. */
char *http_event_build(const struct nb_http_event_in *in, size_t *len);

/* True when a body of this Content-Type (NULL = none) is text and goes to the function as is
 * (when it is valid UTF-8); else it is base64-encoded. */
bool http_event_is_text(const char *content_type);

struct nb_http_event_out {
    int status;
    struct nb_http_header *headers; /* in the arena; Set-Cookie ones included */
    size_t n_headers;
    char *body; /* in the arena (may hold NULs) */
    size_t body_len;
};

/* Maps the function's output (len bytes) to a response, allocating in a. 0, or -EINVAL with a
 * message in err when the output is not a valid response (the caller replies 502). */
int http_event_response(struct nb_arena *a, const char *out, size_t len,
                        struct nb_http_event_out *res, struct nb_err *err);

#endif

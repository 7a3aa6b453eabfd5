/*
 * triggers.h - HTTP triggers in memory: function URL configs (LAMBDA.md §3.8) and HTTP routes
 * (API Gateway HTTP API route keys such as "GET /users/{id}", "ANY /{proxy+}", "$default"),
 * their stored records, and route matching. The public listener (public.c) serves them; the
 * control plane (api_urls.c) changes them. Loop thread only.
 *
 * Ownership: d->triggers owns every entry; an entry holds a reference on its function entry.
 * Entries of a deleted function (fn->removed; the store dropped their rows with the function's),
 * and URLs of a deleted alias (their row went with the alias's), are dropped lazily by
 * triggers_purge and by lookups that meet them.
 *
 * Route precedence (API Gateway's): a route without a greedy label beats one with; then more
 * literal segments win, then more segments, then a method route beats ANY; $default is the last
 * resort. A route key is unique across functions.
 */
#ifndef NIMBUS_TRIGGERS_H
#define NIMBUS_TRIGGERS_H

#include <jansson.h>

#include "http.h"

struct nb_daemon;
struct nb_fn;

#define NB_URL_ID_LEN 32
#define NB_ROUTE_PARAMS_MAX 16

struct nb_url_cfg {
    struct nb_fn *fn;               /* ref */
    char *qualifier;                /* alias or "$LATEST"; NULL = unqualified */
    char id[NB_URL_ID_LEN + 1];     /* 32 lowercase alphanumerics */
    char auth_type[16];             /* "NONE" | "AWS_IAM" */
    char invoke_mode[16];           /* "BUFFERED" | "RESPONSE_STREAM" (served buffered) */
    json_t *cors;                   /* the Cors object, or NULL */
    char created[40], modified[40]; /* ISO-8601 */
};

struct nb_http_route {
    struct nb_fn *fn; /* ref */
    char *qualifier;  /* NULL = unqualified */
    char *key;        /* "GET /users/{id}" or "$default" */
    char *method;     /* "GET", "ANY"; NULL for $default */
    char *path;       /* "/users/{id}"; NULL for $default */
    char created[40];
    bool pending; /* added, its store write not committed yet: not served nor listed */
};

struct nb_triggers {
    struct nb_url_cfg **urls;
    size_t n_urls;
    struct nb_http_route **routes;
    size_t n_routes;
    struct nb_http_server *srv; /* the public listener, or NULL when off */
    uint64_t replies[2][5];     /* [url, route][1xx..5xx]: public listener replies (metrics) */
};

void triggers_init(struct nb_daemon *d);
void triggers_release(struct nb_daemon *d);
/* Drops entries whose function was deleted. */
void triggers_purge(struct nb_daemon *d);

/* Function URL configs. Lookups return borrowed entries (NULL when absent). */
struct nb_url_cfg *triggers_url_by_id(struct nb_daemon *d, const char *id);
struct nb_url_cfg *triggers_url_of(struct nb_daemon *d, struct nb_fn *fn, const char *qualifier);
/* Adds u, replacing the entry of the same (function, qualifier); consumes u. */
void triggers_url_put(struct nb_daemon *d, struct nb_url_cfg *u);
void triggers_url_remove(struct nb_daemon *d, struct nb_url_cfg *u);
void url_cfg_free(struct nb_url_cfg *u);
/* A new config for fn (ref taken) with a fresh random id. */
struct nb_url_cfg *url_cfg_new(struct nb_fn *fn, const char *qualifier);
/* The store key of a config: its qualifier, or "$none" (not a valid alias) when unqualified. */
const char *url_cfg_key(const struct nb_url_cfg *u);
/* The stored record (malloc'd JSON text) and back (NULL when malformed; fn ref taken). */
char *url_cfg_record(const struct nb_url_cfg *u);
struct nb_url_cfg *url_cfg_from_record(struct nb_fn *fn, const char *key, const char *doc);
/* The FunctionUrlConfig shape: {FunctionUrl, FunctionArn, AuthType, Cors?, CreationTime,
 * LastModifiedTime, InvokeMode}. New reference. */
json_t *url_cfg_json(struct nb_daemon *d, const struct nb_url_cfg *u);
/* http://<id>.lambda-url.<region>.localhost:<port>/ (malloc'd). */
char *url_cfg_url(struct nb_daemon *d, const struct nb_url_cfg *u);

/* Routes. */
/* Parses a route key into method and path (malloc'd; both NULL for "$default"). -EINVAL with a
 * message when the key is malformed. */
int route_key_parse(const char *key, char **method, char **path, struct nb_err *err);
/* Matches a route path pattern against a request path (percent-encoded, split on raw '/'); on a
 * match returns true, fills names/values (labels; values decoded into a) and *score (higher =
 * more specific, see above). */
bool route_path_match(const char *pattern, const char *path, struct nb_arena *a, const char **names,
                      const char **values, size_t *n, long *score);
struct nb_http_route *triggers_route_by_key(struct nb_daemon *d, const char *key);
/* The route serving (method, path), or NULL; labels as in route_path_match. */
struct nb_http_route *triggers_route_match(struct nb_daemon *d, const char *method,
                                           const char *path, struct nb_arena *a, const char **names,
                                           const char **values, size_t *n);
/* Adds r (consumes it); BUG when its key exists. */
void triggers_route_add(struct nb_daemon *d, struct nb_http_route *r);
void triggers_route_remove(struct nb_daemon *d, struct nb_http_route *r);
void route_free(struct nb_http_route *r);
char *route_record(const struct nb_http_route *r);
struct nb_http_route *route_from_record(struct nb_fn *fn, const char *key, const char *doc);
/* {RouteKey, FunctionName, Qualifier?, CreatedAt}. New reference. */
json_t *route_json(const struct nb_http_route *r);

/* The public listener (public.c): listens on cfg.public_listen unless it is empty. */
int public_listen(struct nb_daemon *d, struct nb_err *err);
void public_close(struct nb_daemon *d);
/* Appends nimbus_http_* families (Prometheus text) to b: replies of the public listener by
 * trigger kind and status class, URL configs and routes configured. */
void public_metrics_render(struct nb_daemon *d, struct nb_buf *b);

#endif

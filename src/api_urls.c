/*
 * api_urls.c - HTTP triggers on the API listener: Create/Get/Update/Delete/ListFunctionUrlConfig(s)
 * (/2021-10-31/functions/{FunctionName}/url[s], LAMBDA.md §3.8) and nimbus' HTTP routes
 * (POST|GET /nimbus/v1/routes, DELETE /nimbus/v1/routes?RouteKey=KEY).
 *
 * Like api_versions.c: validate on the loop, write the store on a worker through the daemon's
 * serial store-write queue (serial_work.h; durable before the reply; a write that fails or could
 * not be queued is answered 500 ServiceException), then change the in-memory table (triggers.h)
 * and reply: loop -> worker -> loop. At most one write per function is in flight (fn->updating;
 * others get 409); a job holds a reference on its function entry and owns what it commits, and
 * its done callback frees it on every path. Stored as objects of the function (store.h): kind
 * "url" keyed by qualifier ("$none" unqualified), kind "route" keyed by the route key, so deleting
 * the function deletes them in the same transaction.
 */
#include <errno.h>

#include "api.h"
#include "daemon.h"
#include "log.h"
#include "store.h"
#include "triggers.h"

enum uop { U_PUT_URL, U_DELETE_URL, U_ADD_ROUTE, U_DELETE_ROUTE };

struct ujob {
    struct nb_serial_job sj;
    struct nb_daemon *d;
    struct nb_http_req *req;
    enum uop op;
    int ok_status;
    struct nb_fn *fn;            /* ref; fn->updating while the job lives */
    struct nb_url_cfg *url;      /* U_PUT_URL: owned until committed */
    struct nb_http_route *route; /* U_ADD_ROUTE: owned until committed */
    char *kind, *key, *doc;
    int rc;
    struct nb_err err;
};

static void ujob_free(struct ujob *j)
{
    j->fn->updating = false;
    fn_unref(j->fn);
    url_cfg_free(j->url);
    free(j->kind);
    free(j->key);
    free(j->doc);
    free(j);
}

static void ujob_work(void *data)
{
    struct ujob *j = data;
    if (j->doc)
        j->rc = store_object_put(j->d->store, j->kind, j->fn->name, j->key, j->doc, &j->err);
    else
        j->rc = store_object_delete(j->d->store, j->kind, j->fn->name, j->key, &j->err);
    if (j->rc == -ENOENT) /* already gone (e.g. with its alias): fine for a delete */
        j->rc = 0;
}

/* Answers the request and frees the job, on every path. */
static void ujob_done(void *data, int status)
{
    struct ujob *j = data;
    struct nb_daemon *d = j->d;
    j->rc = api_work_result(status, j->rc, &j->err);
    if (j->rc < 0) {
        log_err("store write failed function=%s key=%s msg=\"%s\"", j->fn->name, j->key,
                j->err.msg);
        if (j->route)
            triggers_route_remove(d, j->route);
        api_error(j->req, 500, "ServiceException", "%s", j->err.msg);
        ujob_free(j);
        return;
    }
    switch (j->op) {
    case U_PUT_URL: {
        struct nb_url_cfg *u = steal_ptr(j->url);
        log_info("function url set function=%s qualifier=%s id=%s auth=%s", j->fn->name,
                 url_cfg_key(u), u->id, u->auth_type);
        triggers_url_put(d, u);
        api_json(j->req, j->ok_status, url_cfg_json(d, u));
        break;
    }
    case U_DELETE_URL: {
        struct nb_url_cfg *u = triggers_url_of(d, j->fn, strcmp(j->key, "$none") ? j->key : NULL);
        if (u)
            triggers_url_remove(d, u);
        log_info("function url deleted function=%s key=%s", j->fn->name, j->key);
        api_empty(j->req, 204);
        break;
    }
    case U_ADD_ROUTE: {
        struct nb_http_route *r = j->route;
        log_info("route added key=\"%s\" function=%s", r->key, j->fn->name);
        r->pending = false;
        api_json(j->req, 201, route_json(r));
        break;
    }
    case U_DELETE_ROUTE: {
        struct nb_http_route *r = triggers_route_by_key(d, j->key);
        if (r && r->fn == j->fn)
            triggers_route_remove(d, r);
        log_info("route deleted key=\"%s\" function=%s", j->key, j->fn->name);
        api_empty(j->req, 204);
        break;
    }
    }
    ujob_free(j);
}

/* A store-write job for fn, to queue with ujob_queue (busy: replies 409, NULL). Consumes doc
 * (NULL = delete). */
static struct ujob *ujob_start(struct nb_daemon *d, struct nb_http_req *req, struct nb_fn *fn,
                               enum uop op, const char *kind, const char *key, char *doc)
{
    if (fn->updating) {
        free(doc);
        api_error(req, 409, "ResourceConflictException",
                  "An update is in progress for resource: %s", fn->cfg->arn);
        return NULL;
    }
    struct ujob *j = xcalloc(1, sizeof(*j));
    j->d = d;
    j->req = req;
    j->op = op;
    fn_ref(fn);
    fn->updating = true;
    j->fn = fn;
    j->kind = xstrdup(kind);
    j->key = xstrdup(key);
    j->doc = doc;
    return j;
}

static void ujob_queue(struct ujob *j)
{
    serial_work_submit(&j->d->store_writes, &j->sj, j, ujob_work, ujob_done);
}

/* ---- function URL configs ---------------------------------------------------------------- */

static bool is_number(const char *s)
{
    return *s && strspn(s, "0123456789") == strlen(s);
}

/* Resolves {FunctionName} (+ Qualifier) for a URL operation; replies and returns NULL on error. */
static struct nb_fn *url_target(struct nb_http_req *req, struct nb_daemon *d,
                                const struct nb_route_match *m, char **qual)
{
    struct nb_fn *fn = api_lambda_resolve(req, d, m, qual, NULL);
    if (!fn)
        return NULL;
    if (*qual && is_number(*qual)) {
        api_error(req, 400, "InvalidParameterValueException",
                  "1 validation error detected: Value '%s' at 'qualifier' failed to satisfy "
                  "constraint: Member must satisfy regular expression pattern: "
                  "((?!^\\d+$)^[0-9a-zA-Z-_]+$)",
                  *qual);
        free(*qual);
        *qual = NULL;
        return NULL;
    }
    triggers_purge(d);
    return fn;
}

static bool str_array(json_t *v, size_t max_items)
{
    if (!json_is_array(v) || json_array_size(v) > max_items)
        return false;
    size_t i;
    json_t *e;
    json_array_foreach (v, i, e)
        if (!json_is_string(e) || json_string_length(e) == 0 || json_string_length(e) > 1024)
            return false;
    return true;
}

/* Validates a Cors member; replies 400 and returns false when bad. */
static bool check_cors(struct nb_http_req *req, json_t *c)
{
    const char *k;
    json_t *v;
    if (!json_is_object(c))
        goto bad;
    json_object_foreach (c, k, v) {
        if (!strcmp(k, "AllowCredentials")) {
            if (!json_is_boolean(v))
                goto bad;
        } else if (!strcmp(k, "MaxAge")) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 86400)
                goto bad;
        } else if (!strcmp(k, "AllowHeaders") || !strcmp(k, "AllowMethods") ||
                   !strcmp(k, "AllowOrigins") || !strcmp(k, "ExposeHeaders")) {
            if (!str_array(v, 100))
                goto bad;
        } else {
            goto bad;
        }
    }
    return true;
bad:
    api_error(req, 400, "InvalidParameterValueException",
              "Cors must be {AllowCredentials, AllowHeaders[], AllowMethods[], AllowOrigins[], "
              "ExposeHeaders[], MaxAge (0-86400)}");
    return false;
}

/* Applies the members of body to u; replies 400 and returns false when one is bad. */
static bool apply_body(struct nb_http_req *req, json_t *body, struct nb_url_cfg *u, bool create)
{
    json_t *at = json_object_get(body, "AuthType");
    if (create && !at) {
        api_error(req, 400, "InvalidParameterValueException",
                  "1 validation error detected: Value null at 'authType' failed to satisfy "
                  "constraint: Member must not be null");
        return false;
    }
    if (at) {
        const char *s = json_string_value(at);
        if (!s || (strcmp(s, "NONE") && strcmp(s, "AWS_IAM"))) {
            api_error(req, 400, "InvalidParameterValueException",
                      "1 validation error detected: Value at 'authType' failed to satisfy "
                      "constraint: Member must satisfy enum value set: [NONE, AWS_IAM]");
            return false;
        }
        snprintf(u->auth_type, sizeof(u->auth_type), "%s", s);
    }
    json_t *im = json_object_get(body, "InvokeMode");
    if (im) {
        const char *s = json_string_value(im);
        if (!s || (strcmp(s, "BUFFERED") && strcmp(s, "RESPONSE_STREAM"))) {
            api_error(req, 400, "InvalidParameterValueException",
                      "1 validation error detected: Value at 'invokeMode' failed to satisfy "
                      "constraint: Member must satisfy enum value set: [BUFFERED, "
                      "RESPONSE_STREAM]");
            return false;
        }
        snprintf(u->invoke_mode, sizeof(u->invoke_mode), "%s", s);
    }
    json_t *c = json_object_get(body, "Cors");
    if (c && !json_is_null(c)) {
        if (!check_cors(req, c))
            return false;
        json_decref(u->cors);
        u->cors = json_deep_copy(c);
    }
    return true;
}

/* Writes u (consumed) as fn's url config, then replies ok_status with it (busy: 409). */
static void put_url(struct nb_daemon *d, struct nb_http_req *req, struct nb_fn *fn,
                    struct nb_url_cfg *u, int ok_status)
{
    struct ujob *j = ujob_start(d, req, fn, U_PUT_URL, "url", url_cfg_key(u), url_cfg_record(u));
    if (!j) {
        url_cfg_free(u);
        return;
    }
    j->url = u;
    j->ok_status = ok_status;
    ujob_queue(j);
}

static void handle_create_url(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    _cleanup_free_ char *qual = NULL;
    struct nb_fn *fn = url_target(req, d, m, &qual);
    if (!fn)
        return;
    json_t *body = api_body_json(req);
    if (!body)
        return;
    if (triggers_url_of(d, fn, qual)) {
        json_decref(body);
        api_error(req, 409, "ResourceConflictException",
                  "Failed to create function url config for [functionArn = %s%s%s]. Error "
                  "message:  FunctionUrlConfig exists for this Lambda function",
                  fn->cfg->arn, qual ? ":" : "", qual ? qual : "");
        return;
    }
    struct nb_url_cfg *u = url_cfg_new(fn, qual);
    if (!apply_body(req, body, u, true)) {
        json_decref(body);
        url_cfg_free(u);
        return;
    }
    json_decref(body);
    put_url(d, req, fn, u, 201);
}

static struct nb_url_cfg *existing_url(struct nb_http_req *req, struct nb_daemon *d,
                                       struct nb_fn *fn, const char *qual)
{
    struct nb_url_cfg *u = triggers_url_of(d, fn, qual);
    if (!u)
        api_error(req, 404, "ResourceNotFoundException",
                  "The resource you requested does not exist.");
    return u;
}

static void handle_get_url(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    _cleanup_free_ char *qual = NULL;
    struct nb_fn *fn = url_target(req, d, m, &qual);
    if (!fn)
        return;
    struct nb_url_cfg *u = existing_url(req, d, fn, qual);
    if (u)
        api_json(req, 200, url_cfg_json(d, u));
}

static void handle_update_url(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    _cleanup_free_ char *qual = NULL;
    struct nb_fn *fn = url_target(req, d, m, &qual);
    if (!fn)
        return;
    json_t *body = api_body_json(req);
    if (!body)
        return;
    struct nb_url_cfg *cur = existing_url(req, d, fn, qual);
    if (!cur) {
        json_decref(body);
        return;
    }
    /* a copy with the same id, changed by the body */
    struct nb_url_cfg *u = url_cfg_new(fn, qual);
    memcpy(u->id, cur->id, sizeof(u->id));
    memcpy(u->auth_type, cur->auth_type, sizeof(u->auth_type));
    memcpy(u->invoke_mode, cur->invoke_mode, sizeof(u->invoke_mode));
    memcpy(u->created, cur->created, sizeof(u->created));
    u->cors = cur->cors ? json_deep_copy(cur->cors) : NULL;
    bool ok = apply_body(req, body, u, false);
    json_decref(body);
    if (!ok) {
        url_cfg_free(u);
        return;
    }
    put_url(d, req, fn, u, 200);
}

static void handle_delete_url(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    _cleanup_free_ char *qual = NULL;
    struct nb_fn *fn = url_target(req, d, m, &qual);
    if (!fn)
        return;
    struct nb_url_cfg *u = existing_url(req, d, fn, qual);
    if (!u)
        return;
    struct ujob *j = ujob_start(d, req, fn, U_DELETE_URL, "url", url_cfg_key(u), NULL);
    if (j)
        ujob_queue(j);
}

static void handle_list_urls(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    _cleanup_free_ char *qual = NULL;
    struct nb_fn *fn = url_target(req, d, m, &qual);
    if (!fn)
        return;
    json_t *arr = json_array();
    struct nb_triggers *t = d->triggers;
    for (size_t i = 0; i < t->n_urls; i++)
        if (t->urls[i]->fn == fn)
            json_array_append_new(arr, url_cfg_json(d, t->urls[i]));
    api_json(req, 200, json_pack("{s:o}", "FunctionUrlConfigs", arr));
}

/* ---- routes ------------------------------------------------------------------------------ */

static void handle_add_route(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    (void)m;
    struct nb_daemon *d = data;
    json_t *body = api_body_json(req);
    if (!body)
        return;
    const char *key = json_string_value(json_object_get(body, "RouteKey"));
    const char *name = json_string_value(json_object_get(body, "FunctionName"));
    const char *qual = json_string_value(json_object_get(body, "Qualifier"));
    struct nb_err err = {0};
    char *method = NULL, *path = NULL;
    if (!key || !name) {
        api_error(req, 400, "InvalidParameterValueException",
                  "RouteKey and FunctionName are "
                  "required");
        goto out;
    }
    if (route_key_parse(key, &method, &path, &err) < 0) {
        api_error(req, 400, "InvalidParameterValueException", "%s", err.msg);
        goto out;
    }
    struct nb_fn *fn = registry_find(d, name);
    struct nb_function *cfg = fn ? registry_resolve_primary(d, fn, qual, &err) : NULL;
    if (!cfg) {
        api_error(req, 404, "ResourceNotFoundException",
                  "Function not found: arn:aws:lambda:%s:%s:function:%s%s%s", d->cfg.region,
                  d->cfg.account_id, name, qual ? ":" : "", qual ? qual : "");
        goto out;
    }
    triggers_purge(d);
    struct nb_http_route *old = triggers_route_by_key(d, key);
    if (old) {
        api_error(req, 409, "ResourceConflictException", "route '%s' exists (function %s)", key,
                  old->fn->name);
        goto out;
    }
    struct nb_http_route *r = xcalloc(1, sizeof(*r));
    fn_ref(fn);
    r->fn = fn;
    r->key = xstrdup(key);
    r->method = steal_ptr(method);
    r->path = steal_ptr(path);
    r->qualifier = qual ? xstrdup(qual) : NULL;
    fmt_iso8601_ms(now_ms(), r->created, sizeof(r->created));
    struct ujob *j = ujob_start(d, req, fn, U_ADD_ROUTE, "route", key, route_record(r));
    if (!j) {
        route_free(r);
        goto out;
    }
    /* in the table at once (pending: not served, not listed), so a second add of the same key
     * for another function gets its 409 before this one commits */
    r->pending = true;
    triggers_route_add(d, r);
    j->route = r;
    ujob_queue(j);
out:
    free(method);
    free(path);
    json_decref(body);
}

static void handle_list_routes(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    (void)m;
    struct nb_daemon *d = data;
    triggers_purge(d);
    json_t *arr = json_array();
    struct nb_triggers *t = d->triggers;
    for (size_t i = 0; i < t->n_routes; i++)
        if (!t->routes[i]->pending)
            json_array_append_new(arr, route_json(t->routes[i]));
    int port = t->srv ? http_server_port(t->srv) : 0;
    api_json(req, 200, json_pack("{s:o,s:i}", "Routes", arr, "PublicPort", port));
}

static void handle_delete_route(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    (void)m;
    struct nb_daemon *d = data;
    const char *key = http_req_query(req, "RouteKey");
    if (!key || !*key) {
        api_error(req, 400, "InvalidParameterValueException", "RouteKey is required");
        return;
    }
    struct nb_http_route *r = triggers_route_by_key(d, key);
    if (!r || r->pending) {
        api_error(req, 404, "ResourceNotFoundException", "route '%s' not found", key);
        return;
    }
    struct ujob *j = ujob_start(d, req, r->fn, U_DELETE_ROUTE, "route", key, NULL);
    if (j)
        ujob_queue(j);
}

void api_urls_routes(struct nb_router *r, struct nb_daemon *d)
{
    router_add(r, "POST", "/2021-10-31/functions/{FunctionName}/url",
               "lambda:CreateFunctionUrlConfig", handle_create_url, d);
    router_add(r, "GET", "/2021-10-31/functions/{FunctionName}/url", "lambda:GetFunctionUrlConfig",
               handle_get_url, d);
    router_add(r, "PUT", "/2021-10-31/functions/{FunctionName}/url",
               "lambda:UpdateFunctionUrlConfig", handle_update_url, d);
    router_add(r, "DELETE", "/2021-10-31/functions/{FunctionName}/url",
               "lambda:DeleteFunctionUrlConfig", handle_delete_url, d);
    router_add(r, "GET", "/2021-10-31/functions/{FunctionName}/urls",
               "lambda:ListFunctionUrlConfigs", handle_list_urls, d);
    router_add(r, "POST", "/nimbus/v1/routes", "nimbus:CreateRoute", handle_add_route, d);
    router_add(r, "GET", "/nimbus/v1/routes", "nimbus:ListRoutes", handle_list_routes, d);
    router_add(r, "DELETE", "/nimbus/v1/routes", "nimbus:DeleteRoute", handle_delete_route, d);
}

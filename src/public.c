/*
 * public.c - the public listener (cfg.public_listen, default 127.0.0.1:8080): function URLs and
 * HTTP routes, invoked with payload format 2.0 events (http_event.h).
 *
 * Dispatch, in order:
 *   1. Host <url-id>.lambda-url.<region>.localhost[:port]  -> that function URL, path as sent;
 *   2. path /_url/<url-id>[/rest]                          -> that function URL, rawPath /rest
 *      (for clients that cannot set Host: curl without --resolve, browsers on plain localhost);
 *   3. anything else                                      -> the HTTP routes (API Gateway rules).
 * A URL's CORS preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered here
 * without invoking; AWS_IAM URLs check SigV4 (service lambda) and lambda:InvokeFunctionUrl.
 *
 * Outcomes like API Gateway: function error 502 {"message":"Internal Server Error"}, timeout 504,
 * throttle 429, unknown URL 403 {"Message":"Forbidden"}, no route 404 {"message":"Not Found"}.
 * Every request handed to an invocation is answered from its on_done callback (a request whose
 * client left is answered too: http.c drops the bytes). Loop thread only.
 */
#include <ctype.h>
#include <errno.h>

#include "api.h"
#include "authn.h"
#include "authz.h"
#include "daemon.h"
#include "http_event.h"
#include "instance.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "triggers.h"

#define PUBLIC_MAX_BODY (6u * 1024 * 1024)
#define URL_PREFIX "/_url/"

/* What the completion needs, in the request's arena (valid until the reply). */
struct pending {
    struct nb_http_req *req;
    bool route;
    const char *allow_origin; /* CORS headers to add, or NULL */
    const char *expose;
    bool credentials;
};

static void reply_json_msg(struct nb_http_req *req, int status, const char *body,
                           const char *request_id)
{
    struct nb_http_header h[] = {{"Content-Type", "application/json"},
                                 {"x-amzn-RequestId", request_id ? request_id : ""}};
    http_reply(req, status, h, request_id ? 2 : 1, body, strlen(body));
}

static void add_cors(struct nb_buf *hb, const struct pending *p)
{
    if (!p->allow_origin)
        return;
    struct nb_http_header h = {"Access-Control-Allow-Origin", p->allow_origin};
    buf_append(hb, &h, sizeof(h));
    if (p->expose) {
        h = (struct nb_http_header){"Access-Control-Expose-Headers", p->expose};
        buf_append(hb, &h, sizeof(h));
    }
    if (p->credentials) {
        h = (struct nb_http_header){"Access-Control-Allow-Credentials", "true"};
        buf_append(hb, &h, sizeof(h));
    }
    h = (struct nb_http_header){"Vary", "Origin"};
    buf_append(hb, &h, sizeof(h));
}

static bool is_cors_header(const char *name)
{
    return !strncasecmp(name, "access-control-", 15);
}

static void on_done(struct nb_invocation *inv, const struct nb_inv_result *res)
{
    struct pending *p = inv->done_data;
    struct nb_http_req *req = p->req;
    const char *rid_name = p->route ? "Apigw-Requestid" : "x-amzn-RequestId";
    struct nb_buf hb = {0};
    struct nb_http_header rid = {rid_name, arena_strdup(&req->arena, inv->request_id)};
    int status;
    const char *body;
    size_t len;
    struct nb_http_event_out out;
    if (res->status == 200 && res->outcome == NB_OK) {
        struct nb_err err = {0};
        if (http_event_response(&req->arena, res->body, res->len, &out, &err) == 0) {
            status = out.status;
            for (size_t i = 0; i < out.n_headers; i++)
                if (!(p->allow_origin && is_cors_header(out.headers[i].name)))
                    buf_append(&hb, &out.headers[i], sizeof(out.headers[i]));
            body = out.body;
            len = out.body_len;
        } else {
            log_info("http trigger bad function response request_id=%s err=\"%s\"", inv->request_id,
                     err.msg);
            status = 502;
            body = "{\"message\":\"Internal Server Error\"}";
            len = strlen(body);
        }
    } else if (res->status == 200 && res->outcome == NB_TIMEOUT) {
        status = 504;
        body = "{\"message\":\"Endpoint request timed out\"}";
        len = strlen(body);
    } else if (res->status == 429) {
        status = 429;
        body = "{\"message\":\"Too Many Requests\"}";
        len = strlen(body);
    } else { /* function error, or the platform could not run it */
        status = 502;
        body = "{\"message\":\"Internal Server Error\"}";
        len = strlen(body);
    }
    if (status >= 429 && !hb.len) {
        struct nb_http_header ct = {"Content-Type", "application/json"};
        buf_append(&hb, &ct, sizeof(ct));
    }
    buf_append(&hb, &rid, sizeof(rid));
    add_cors(&hb, p);
    http_reply(req, status, (const struct nb_http_header *)hb.data,
               hb.len / sizeof(struct nb_http_header), body, len);
    buf_release(&hb);
}

/* Adds what AWS' front end adds to the event's headers: X-Forwarded-For (the client, appended
 * to any the client sent), X-Forwarded-Proto and X-Forwarded-Port, unless present. */
static void with_forwarded(struct nb_daemon *d, struct nb_http_req *req,
                           struct nb_http_event_in *in, const char *peer)
{
    size_t n = in->n_headers;
    struct nb_http_header *h = arena_alloc(&req->arena, (n + 3) * sizeof(*h));
    bool proto = false, port = false, xff = false;
    for (size_t i = 0; i < n; i++) {
        h[i] = in->headers[i];
        if (!strcasecmp(h[i].name, "X-Forwarded-Proto"))
            proto = true;
        else if (!strcasecmp(h[i].name, "X-Forwarded-Port"))
            port = true;
        else if (!strcasecmp(h[i].name, "X-Forwarded-For") && !xff) {
            h[i].value = arena_printf(&req->arena, "%s, %s", h[i].value, peer);
            xff = true;
        }
    }
    if (!xff)
        h[n++] = (struct nb_http_header){"X-Forwarded-For", peer};
    if (!proto)
        h[n++] = (struct nb_http_header){"X-Forwarded-Proto", "http"};
    if (!port)
        h[n++] = (struct nb_http_header){
            "X-Forwarded-Port",
            arena_printf(&req->arena, "%d",
                         d->triggers->srv ? http_server_port(d->triggers->srv) : 0)};
    in->headers = h;
    in->n_headers = n;
}

/* Admits and starts the invocation of fn/qualifier for req with the event built from in. */
static void invoke(struct nb_daemon *d, struct nb_http_req *req, struct nb_fn *fn,
                   const char *qualifier, struct nb_http_event_in *in, struct pending *p)
{
    if (d->draining) {
        reply_json_msg(req, 503, "{\"message\":\"Service Unavailable\"}", NULL);
        return;
    }
    struct nb_err err = {0};
    struct nb_function *cfg = registry_resolve(d, fn, qualifier, &err);
    if (!cfg) {
        reply_json_msg(req, 404, "{\"message\":\"Not Found\"}", NULL);
        return;
    }
    if (pool_admit(d, fn, cfg)) {
        metrics_throttle(d, fn, cfg);
        reply_json_msg(req, 429, "{\"message\":\"Too Many Requests\"}", NULL);
        return;
    }
    char rid[37];
    uuid_v4(rid);
    char peer[64];
    http_req_peer(req, peer, sizeof(peer));
    char *colon = strrchr(peer, ':');
    if (colon && peer[0] != '[')
        *colon = '\0';
    in->request_id = rid;
    in->source_ip = peer;
    with_forwarded(d, req, in, peer);
    in->account_id = d->cfg.account_id;
    in->time_ms = now_ms();
    size_t len;
    char *event = http_event_build(in, &len);
    struct nb_invocation *inv =
        invoke_new(d, fn, cfg, rid, event, len, http_req_header(req, "X-Amzn-Trace-Id"));
    if (qualifier && (strcmp(qualifier, cfg->version) != 0 || !strcmp(qualifier, "$LATEST")))
        inv->invoked_arn = xasprintf("%s:%s", fn->cfg->arn, qualifier);
    p->req = req;
    inv->on_done = on_done;
    inv->done_data = p;
    invoke_start(inv);
}

/* ---- function URLs ----------------------------------------------------------------------- */

/* Joins the strings of a JSON array with ","; NULL when empty or absent. */
static const char *join_array(struct nb_arena *a, json_t *arr)
{
    struct nb_buf b = {0};
    size_t i;
    json_t *v;
    json_array_foreach (arr, i, v) {
        if (!json_is_string(v))
            continue;
        if (b.len)
            buf_appends(&b, ",");
        buf_appends(&b, json_string_value(v));
    }
    const char *s = b.len ? arena_strndup(a, b.data, b.len) : NULL;
    buf_release(&b);
    return s;
}

static bool list_has(json_t *arr, const char *v, bool nocase)
{
    size_t i;
    json_t *e;
    json_array_foreach (arr, i, e) {
        const char *s = json_string_value(e);
        if (s && (!strcmp(s, "*") || (nocase ? !strcasecmp(s, v) : !strcmp(s, v))))
            return true;
    }
    return false;
}

/* The Access-Control-Allow-Origin for origin under cors, or NULL when not allowed. */
static const char *allowed_origin(json_t *cors, const char *origin)
{
    json_t *origins = json_object_get(cors, "AllowOrigins");
    if (!origin || !list_has(origins, origin, true))
        return NULL;
    /* "*" answers "*" unless credentials are allowed (browsers refuse "*" with them) */
    size_t i;
    json_t *e;
    json_array_foreach (origins, i, e)
        if (json_string_value(e) && !strcasecmp(json_string_value(e), origin))
            return origin;
    return json_is_true(json_object_get(cors, "AllowCredentials")) ? origin : "*";
}

static void preflight(struct nb_http_req *req, json_t *cors, const char *origin)
{
    const char *allow = allowed_origin(cors, origin);
    const char *want = http_req_header(req, "Access-Control-Request-Method");
    json_t *methods = json_object_get(cors, "AllowMethods");
    struct nb_buf hb = {0};
    struct nb_http_header h;
    if (allow && want && list_has(methods, want, false)) {
        h = (struct nb_http_header){"Access-Control-Allow-Origin", allow};
        buf_append(&hb, &h, sizeof(h));
        h = (struct nb_http_header){"Access-Control-Allow-Methods",
                                    join_array(&req->arena, methods)};
        buf_append(&hb, &h, sizeof(h));
        const char *hdrs = join_array(&req->arena, json_object_get(cors, "AllowHeaders"));
        if (hdrs) {
            h = (struct nb_http_header){"Access-Control-Allow-Headers", hdrs};
            buf_append(&hb, &h, sizeof(h));
        }
        json_t *age = json_object_get(cors, "MaxAge");
        if (json_is_integer(age)) {
            h = (struct nb_http_header){
                "Access-Control-Max-Age",
                arena_printf(&req->arena, "%lld", (long long)json_integer_value(age))};
            buf_append(&hb, &h, sizeof(h));
        }
        if (json_is_true(json_object_get(cors, "AllowCredentials"))) {
            h = (struct nb_http_header){"Access-Control-Allow-Credentials", "true"};
            buf_append(&hb, &h, sizeof(h));
        }
        h = (struct nb_http_header){"Vary", "Origin"};
        buf_append(&hb, &h, sizeof(h));
    }
    http_reply(req, 200, (const struct nb_http_header *)hb.data,
               hb.len / sizeof(struct nb_http_header), NULL, 0);
    buf_release(&hb);
}

/* AWS_IAM: SigV4 (service lambda) by a key allowed lambda:InvokeFunctionUrl on the function.
 * Returns the key id, or NULL after replying 403. */
static const char *check_iam(struct nb_daemon *d, struct nb_http_req *req, struct nb_url_cfg *u)
{
    struct nb_route_match m = {0};
    m.names[0] = "FunctionName";
    m.values[0] =
        u->qualifier ? arena_printf(&req->arena, "%s:%s", u->fn->name, u->qualifier) : u->fn->name;
    m.n = 1;
    m.action = "lambda:InvokeFunctionUrl";
    const struct nb_key *key = d->cfg.insecure ? keys_root(d->keys) : authn_request(d, req, &m);
    if (!key)
        return NULL;
    if (!authz_check(d, req, key->id, key->root, key->policy, m.action, authz_resource(d, req, &m)))
        return NULL;
    return arena_strdup(&req->arena, key->id);
}

/* The url-id of a Host header "<id>.lambda-url.<region>.localhost[:port]", or NULL. */
static const char *host_url_id(struct nb_daemon *d, struct nb_http_req *req)
{
    const char *host = http_req_header(req, "Host");
    if (!host)
        return NULL;
    size_t hn = strcspn(host, ":");
    _cleanup_free_ char *suffix = xasprintf(".lambda-url.%s.localhost", d->cfg.region);
    size_t sn = strlen(suffix);
    if (hn != NB_URL_ID_LEN + sn || strncasecmp(host + NB_URL_ID_LEN, suffix, sn))
        return NULL;
    char *id = arena_strndup(&req->arena, host, NB_URL_ID_LEN);
    for (char *c = id; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return id;
}

static void serve_url(struct nb_daemon *d, struct nb_http_req *req, const char *id,
                      const char *raw_path)
{
    struct nb_url_cfg *u = triggers_url_by_id(d, id);
    if (!u) {
        reply_json_msg(req, 403, "{\"Message\":\"Forbidden\"}", NULL);
        return;
    }
    struct pending *p = arena_alloc(&req->arena, sizeof(*p));
    memset(p, 0, sizeof(*p));
    const char *origin = http_req_header(req, "Origin");
    if (u->cors) {
        if (!strcmp(req->method, "OPTIONS") && origin &&
            http_req_header(req, "Access-Control-Request-Method")) {
            preflight(req, u->cors, origin);
            return;
        }
        const char *allow = allowed_origin(u->cors, origin);
        if (allow) {
            p->allow_origin = arena_strdup(&req->arena, allow);
            p->expose = join_array(&req->arena, json_object_get(u->cors, "ExposeHeaders"));
            p->credentials = json_is_true(json_object_get(u->cors, "AllowCredentials"));
        }
    }
    const char *key_id = NULL;
    if (!strcmp(u->auth_type, "AWS_IAM") && !(key_id = check_iam(d, req, u)))
        return;
    const char *host = http_req_header(req, "Host");
    struct nb_http_event_in in = {
        .method = req->method,
        .raw_path = raw_path,
        .query = req->query,
        .headers = req->headers,
        .n_headers = req->n_headers,
        .body = req->body,
        .body_len = req->body_len,
        .route_key = "$default",
        .api_id = u->id,
        .domain_name = host_url_id(d, req) ? host
                                           : arena_printf(&req->arena, "%s.lambda-url.%s.localhost",
                                                          u->id, d->cfg.region),
        .iam_key_id = key_id,
    };
    invoke(d, req, u->fn, u->qualifier, &in, p);
}

/* ---- routes ------------------------------------------------------------------------------ */

static void serve_route(struct nb_daemon *d, struct nb_http_req *req)
{
    const char *names[NB_ROUTE_PARAMS_MAX], *values[NB_ROUTE_PARAMS_MAX];
    size_t n = 0;
    struct nb_http_route *r =
        triggers_route_match(d, req->method, req->path, &req->arena, names, values, &n);
    if (!r) {
        reply_json_msg(req, 404, "{\"message\":\"Not Found\"}", NULL);
        return;
    }
    struct pending *p = arena_alloc(&req->arena, sizeof(*p));
    memset(p, 0, sizeof(*p));
    p->route = true;
    const char *host = http_req_header(req, "Host");
    struct nb_http_event_in in = {
        .method = req->method,
        .raw_path = req->path,
        .query = req->query,
        .headers = req->headers,
        .n_headers = req->n_headers,
        .body = req->body,
        .body_len = req->body_len,
        .route_key = r->key,
        .param_names = names,
        .param_values = values,
        .n_params = n,
        .api_id = "nimbus",
        .domain_name = host ? host : "localhost",
    };
    invoke(d, req, r->fn, r->qualifier, &in, p);
}

static void count_reply(struct nb_http_req *req, int status, const struct nb_http_header *hdrs,
                        size_t n_hdrs, void *data)
{
    (void)hdrs;
    (void)n_hdrs;
    uint64_t *row = data; /* replies[url or route] */
    (void)req;
    if (status >= 100 && status <= 599)
        row[status / 100 - 1]++;
}

static void handle(struct nb_http_req *req, void *data)
{
    struct nb_daemon *d = data;
    const char *id = host_url_id(d, req);
    bool url = id || !strncmp(req->path, URL_PREFIX, strlen(URL_PREFIX));
    http_req_on_reply(req, count_reply, d->triggers->replies[url ? 0 : 1]);
    if (id) {
        serve_url(d, req, id, req->path);
        return;
    }
    size_t pn = strlen(URL_PREFIX);
    if (!strncmp(req->path, URL_PREFIX, pn)) {
        const char *s = req->path + pn;
        size_t n = strcspn(s, "/");
        if (n != NB_URL_ID_LEN) {
            reply_json_msg(req, 403, "{\"Message\":\"Forbidden\"}", NULL);
            return;
        }
        const char *rest = s[n] ? s + n : "/";
        serve_url(d, req, arena_strndup(&req->arena, s, n), rest);
        return;
    }
    serve_route(d, req);
}

int public_listen(struct nb_daemon *d, struct nb_err *err)
{
    if (!d->cfg.public_host[0])
        return 0;
    struct nb_http_limits lim;
    http_limits_default(&lim);
    lim.max_body = PUBLIC_MAX_BODY;
    lim.too_large_body = "{\"message\":\"Request Entity Too Large\"}";
    struct nb_http_server *srv = http_server_new(d->loop, &lim, handle, d);
    int rc = http_server_listen(srv, d->cfg.public_host, d->cfg.public_port, err);
    if (rc < 0) {
        http_server_close(srv, NULL, NULL);
        return err_prefix(err, "cannot listen on %s", d->cfg.public_listen);
    }
    d->triggers->srv = srv;
    log_info("public listener addr=%s:%d", d->cfg.public_host, http_server_port(srv));
    return 0;
}

void public_close(struct nb_daemon *d)
{
    if (d->triggers && d->triggers->srv) {
        http_server_close(d->triggers->srv, NULL, NULL);
        d->triggers->srv = NULL;
    }
}

void public_metrics_render(struct nb_daemon *d, struct nb_buf *b)
{
    struct nb_triggers *t = d->triggers;
    if (!t)
        return;
    metrics_family(b, "nimbus_http_replies_total", "counter",
                   "Replies of the public listener by trigger (url, route) and status class.");
    static const char *const kind[] = {"url", "route"};
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < 5; c++)
            buf_appendf(b, "nimbus_http_replies_total{trigger=\"%s\",code=\"%dxx\"} %llu\n",
                        kind[k], c + 1, (unsigned long long)t->replies[k][c]);
    metrics_gauge(b, "nimbus_http_function_urls", "Function URL configs.", (double)t->n_urls);
    metrics_gauge(b, "nimbus_http_routes", "HTTP routes.", (double)t->n_routes);
}

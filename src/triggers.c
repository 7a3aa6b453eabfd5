/*
 * triggers.c - the in-memory tables of function URL configs and HTTP routes (triggers.h): their
 * records, their JSON shapes and API Gateway's route matching.
 *
 * Tables are small arrays scanned linearly (a handful of URLs and routes per daemon); a lookup
 * that meets an entry of a deleted function drops it. Loop thread only.
 */
#include "triggers.h"

#include <errno.h>

#include "daemon.h"
#include "util.h"

void triggers_init(struct nb_daemon *d)
{
    d->triggers = xcalloc(1, sizeof(*d->triggers));
}

void triggers_release(struct nb_daemon *d)
{
    struct nb_triggers *t = d->triggers;
    if (!t)
        return;
    for (size_t i = 0; i < t->n_urls; i++)
        url_cfg_free(t->urls[i]);
    for (size_t i = 0; i < t->n_routes; i++)
        route_free(t->routes[i]);
    free(t->urls);
    free(t->routes);
    free(t);
    d->triggers = NULL;
}

/* A URL whose function was deleted, or whose alias was (the store dropped its row with the
 * alias's: store_object_delete with kind NULL). */
static bool url_stale(const struct nb_url_cfg *u)
{
    return u->fn->removed || (u->qualifier && strcmp(u->qualifier, "$LATEST") &&
                              !registry_alias(u->fn, u->qualifier));
}

void triggers_purge(struct nb_daemon *d)
{
    struct nb_triggers *t = d->triggers;
    for (size_t i = t->n_urls; i-- > 0;)
        if (url_stale(t->urls[i]))
            triggers_url_remove(d, t->urls[i]);
    for (size_t i = t->n_routes; i-- > 0;)
        if (t->routes[i]->fn->removed)
            triggers_route_remove(d, t->routes[i]);
}

/* ---- function URL configs ---------------------------------------------------------------- */

void url_cfg_free(struct nb_url_cfg *u)
{
    if (!u)
        return;
    fn_unref(u->fn);
    free(u->qualifier);
    json_decref(u->cors);
    free(u);
}

struct nb_url_cfg *url_cfg_new(struct nb_fn *fn, const char *qualifier)
{
    struct nb_url_cfg *u = xcalloc(1, sizeof(*u));
    fn_ref(fn);
    u->fn = fn;
    u->qualifier = qualifier ? xstrdup(qualifier) : NULL;
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    for (int i = 0; i < NB_URL_ID_LEN; i++)
        u->id[i] = alnum[random_u64() % (sizeof(alnum) - 1)];
    u->id[NB_URL_ID_LEN] = '\0';
    snprintf(u->auth_type, sizeof(u->auth_type), "NONE");
    snprintf(u->invoke_mode, sizeof(u->invoke_mode), "BUFFERED");
    fmt_iso8601_ms(now_ms(), u->created, sizeof(u->created));
    snprintf(u->modified, sizeof(u->modified), "%s", u->created);
    return u;
}

const char *url_cfg_key(const struct nb_url_cfg *u)
{
    return u->qualifier ? u->qualifier : "$none";
}

struct nb_url_cfg *triggers_url_by_id(struct nb_daemon *d, const char *id)
{
    struct nb_triggers *t = d->triggers;
    for (size_t i = 0; i < t->n_urls; i++) {
        struct nb_url_cfg *u = t->urls[i];
        if (strcmp(u->id, id))
            continue;
        if (url_stale(u)) {
            triggers_url_remove(d, u);
            return NULL;
        }
        return u;
    }
    return NULL;
}

static bool same_qual(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

struct nb_url_cfg *triggers_url_of(struct nb_daemon *d, struct nb_fn *fn, const char *qualifier)
{
    struct nb_triggers *t = d->triggers;
    for (size_t i = 0; i < t->n_urls; i++)
        if (t->urls[i]->fn == fn && same_qual(t->urls[i]->qualifier, qualifier))
            return t->urls[i];
    return NULL;
}

void triggers_url_put(struct nb_daemon *d, struct nb_url_cfg *u)
{
    struct nb_triggers *t = d->triggers;
    struct nb_url_cfg *old = triggers_url_of(d, u->fn, u->qualifier);
    if (old) {
        for (size_t i = 0; i < t->n_urls; i++)
            if (t->urls[i] == old)
                t->urls[i] = u;
        url_cfg_free(old);
        return;
    }
    t->urls = xrealloc(t->urls, (t->n_urls + 1) * sizeof(*t->urls));
    t->urls[t->n_urls++] = u;
}

void triggers_url_remove(struct nb_daemon *d, struct nb_url_cfg *u)
{
    struct nb_triggers *t = d->triggers;
    for (size_t i = 0; i < t->n_urls; i++) {
        if (t->urls[i] != u)
            continue;
        memmove(&t->urls[i], &t->urls[i + 1], (t->n_urls - i - 1) * sizeof(*t->urls));
        t->n_urls--;
        url_cfg_free(u);
        return;
    }
}

char *url_cfg_record(const struct nb_url_cfg *u)
{
    json_t *o =
        json_pack("{s:s,s:s,s:s,s:s,s:s}", "UrlId", u->id, "AuthType", u->auth_type, "InvokeMode",
                  u->invoke_mode, "CreationTime", u->created, "LastModifiedTime", u->modified);
    if (u->cors)
        json_object_set(o, "Cors", u->cors);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static bool copy_str(json_t *o, const char *k, char *out, size_t len)
{
    const char *v = json_string_value(json_object_get(o, k));
    if (!v || strlen(v) >= len)
        return false;
    snprintf(out, len, "%s", v);
    return true;
}

struct nb_url_cfg *url_cfg_from_record(struct nb_fn *fn, const char *key, const char *doc)
{
    json_t *o = json_loads(doc, 0, NULL);
    if (!o)
        return NULL;
    struct nb_url_cfg *u = url_cfg_new(fn, strcmp(key, "$none") ? key : NULL);
    bool ok = copy_str(o, "UrlId", u->id, sizeof(u->id)) && strlen(u->id) == NB_URL_ID_LEN &&
              copy_str(o, "AuthType", u->auth_type, sizeof(u->auth_type)) &&
              copy_str(o, "InvokeMode", u->invoke_mode, sizeof(u->invoke_mode)) &&
              copy_str(o, "CreationTime", u->created, sizeof(u->created)) &&
              copy_str(o, "LastModifiedTime", u->modified, sizeof(u->modified));
    json_t *c = json_object_get(o, "Cors");
    if (json_is_object(c))
        u->cors = json_incref(c);
    json_decref(o);
    if (!ok) {
        url_cfg_free(u);
        return NULL;
    }
    return u;
}

char *url_cfg_url(struct nb_daemon *d, const struct nb_url_cfg *u)
{
    int port = d->triggers->srv ? http_server_port(d->triggers->srv) : d->cfg.public_port;
    return xasprintf("http://%s.lambda-url.%s.localhost:%d/", u->id, d->cfg.region, port);
}

json_t *url_cfg_json(struct nb_daemon *d, const struct nb_url_cfg *u)
{
    _cleanup_free_ char *url = url_cfg_url(d, u);
    _cleanup_free_ char *arn =
        u->qualifier ? xasprintf("%s:%s", u->fn->cfg->arn, u->qualifier) : xstrdup(u->fn->cfg->arn);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "FunctionUrl", url, "FunctionArn", arn,
                          "AuthType", u->auth_type, "CreationTime", u->created, "LastModifiedTime",
                          u->modified, "InvokeMode", u->invoke_mode);
    if (u->cors)
        json_object_set(o, "Cors", u->cors);
    return o;
}

/* ---- routes ------------------------------------------------------------------------------ */

void route_free(struct nb_http_route *r)
{
    if (!r)
        return;
    fn_unref(r->fn);
    free(r->qualifier);
    free(r->key);
    free(r->method);
    free(r->path);
    free(r);
}

static bool valid_method(const char *m)
{
    static const char *const ms[] = {"ANY",    "GET",   "POST", "PUT",
                                     "DELETE", "PATCH", "HEAD", "OPTIONS"};
    for (size_t i = 0; i < ARRAY_SIZE(ms); i++)
        if (!strcmp(m, ms[i]))
            return true;
    return false;
}

int route_key_parse(const char *key, char **method, char **path, struct nb_err *err)
{
    *method = *path = NULL;
    if (!strcmp(key, "$default"))
        return 0;
    const char *sp = strchr(key, ' ');
    if (!sp)
        return err_set(err, EINVAL, "invalid route key '%s': expected 'METHOD /path' or $default",
                       key);
    _cleanup_free_ char *m = xstrndup(key, (size_t)(sp - key));
    const char *p = sp + 1;
    if (!valid_method(m))
        return err_set(err, EINVAL, "invalid route key '%s': unknown method '%s'", key, m);
    if (p[0] != '/' || strlen(p) > 512 || strpbrk(p, " ?#%\t"))
        return err_set(err, EINVAL, "invalid route key '%s': the path must start with '/'", key);
    /* segments: literals or whole {label} / {label+} (greedy: last only); no empty segments */
    size_t n_labels = 0;
    const char *s = p + 1;
    while (*s || s == p + 1) {
        size_t n = strcspn(s, "/");
        if (n == 0 && !(s == p + 1 && !*s))
            return err_set(err, EINVAL, "invalid route key '%s': empty path segment", key);
        bool open = memchr(s, '{', n) != NULL, close = memchr(s, '}', n) != NULL;
        if (open || close) {
            bool greedy = n >= 4 && s[n - 2] == '+';
            if (s[0] != '{' || s[n - 1] != '}' || n < 3 || (greedy && s[n] != '\0') ||
                memchr(s + 1, '{', n - 1) || memchr(s, '}', n - 1))
                return err_set(err, EINVAL,
                               "invalid route key '%s': a label must be a whole segment "
                               "({name}, or {name+} last)",
                               key);
            if (++n_labels > NB_ROUTE_PARAMS_MAX)
                return err_set(err, EINVAL, "invalid route key '%s': too many labels", key);
        }
        s += n;
        if (*s == '/')
            s++;
        else
            break;
    }
    *method = steal_ptr(m);
    *path = xstrdup(p);
    return 0;
}

bool route_path_match(const char *pattern, const char *path, struct nb_arena *a, const char **names,
                      const char **values, size_t *n, long *score)
{
    *n = 0;
    long literals = 0, segs = 0;
    bool greedy = false;
    const char *pp = pattern, *rp = path;
    if (*pp != '/' || *rp != '/')
        return false;
    if (!strcmp(pattern, "/")) {
        *score = 1000000;
        return !strcmp(path, "/");
    }
    for (;;) {
        pp++;
        rp++;
        size_t pn = strcspn(pp, "/"), rn = strcspn(rp, "/");
        segs++;
        if (pp[0] == '{' && pn >= 4 && pp[pn - 2] == '+') { /* greedy: the non-empty rest */
            if (!*rp)
                return false;
            names[*n] = arena_strndup(a, pp + 1, pn - 3);
            const char *v = http_pct_decode(a, rp, strlen(rp));
            values[*n] = v ? v : arena_strdup(a, rp);
            (*n)++;
            greedy = true;
            break;
        }
        if (pp[0] == '{') {
            if (!rn)
                return false;
            names[*n] = arena_strndup(a, pp + 1, pn - 2);
            const char *v = http_pct_decode(a, rp, rn);
            values[*n] = v ? v : arena_strndup(a, rp, rn);
            (*n)++;
        } else {
            const char *v = http_pct_decode(a, rp, rn);
            if (!v || strlen(v) != pn || strncmp(v, pp, pn))
                return false;
            literals++;
        }
        pp += pn;
        rp += rn;
        if (!*pp || !*rp) {
            if (*pp || *rp)
                return false;
            break;
        }
    }
    *score = (greedy ? 0 : 1000000) + literals * 1000 + segs * 10;
    return true;
}

struct nb_http_route *triggers_route_by_key(struct nb_daemon *d, const char *key)
{
    struct nb_triggers *t = d->triggers;
    for (size_t i = 0; i < t->n_routes; i++) {
        struct nb_http_route *r = t->routes[i];
        if (strcmp(r->key, key))
            continue;
        if (r->fn->removed) {
            triggers_route_remove(d, r);
            return NULL;
        }
        return r;
    }
    return NULL;
}

struct nb_http_route *triggers_route_match(struct nb_daemon *d, const char *method,
                                           const char *path, struct nb_arena *a, const char **names,
                                           const char **values, size_t *n)
{
    struct nb_triggers *t = d->triggers;
    struct nb_http_route *best = NULL, *dflt = NULL;
    long best_score = -1;
    const char *tn[NB_ROUTE_PARAMS_MAX], *tv[NB_ROUTE_PARAMS_MAX];
    *n = 0;
    for (size_t i = 0; i < t->n_routes; i++) {
        struct nb_http_route *r = t->routes[i];
        if (r->fn->removed || r->pending)
            continue;
        if (!r->method) {
            dflt = r;
            continue;
        }
        bool any = !strcmp(r->method, "ANY");
        if (!any && strcmp(r->method, method))
            continue;
        size_t tnn;
        long score;
        if (!route_path_match(r->path, path, a, tn, tv, &tnn, &score))
            continue;
        score += any ? 0 : 1;
        if (score > best_score) {
            best = r;
            best_score = score;
            memcpy(names, tn, tnn * sizeof(*tn));
            memcpy(values, tv, tnn * sizeof(*tv));
            *n = tnn;
        }
    }
    return best ? best : dflt;
}

void triggers_route_add(struct nb_daemon *d, struct nb_http_route *r)
{
    struct nb_triggers *t = d->triggers;
    if (triggers_route_by_key(d, r->key))
        BUG("route '%s' added twice", r->key);
    t->routes = xrealloc(t->routes, (t->n_routes + 1) * sizeof(*t->routes));
    t->routes[t->n_routes++] = r;
}

void triggers_route_remove(struct nb_daemon *d, struct nb_http_route *r)
{
    struct nb_triggers *t = d->triggers;
    for (size_t i = 0; i < t->n_routes; i++) {
        if (t->routes[i] != r)
            continue;
        memmove(&t->routes[i], &t->routes[i + 1], (t->n_routes - i - 1) * sizeof(*t->routes));
        t->n_routes--;
        route_free(r);
        return;
    }
}

char *route_record(const struct nb_http_route *r)
{
    json_t *o = json_pack("{s:s}", "CreatedAt", r->created);
    if (r->qualifier)
        json_object_set_new(o, "Qualifier", json_string(r->qualifier));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

struct nb_http_route *route_from_record(struct nb_fn *fn, const char *key, const char *doc)
{
    struct nb_err err = {0};
    char *m, *p;
    if (route_key_parse(key, &m, &p, &err) < 0)
        return NULL;
    json_t *o = json_loads(doc, 0, NULL);
    struct nb_http_route *r = xcalloc(1, sizeof(*r));
    fn_ref(fn);
    r->fn = fn;
    r->key = xstrdup(key);
    r->method = m;
    r->path = p;
    const char *q = json_string_value(json_object_get(o, "Qualifier"));
    r->qualifier = q ? xstrdup(q) : NULL;
    if (!copy_str(o, "CreatedAt", r->created, sizeof(r->created)))
        fmt_iso8601_ms(now_ms(), r->created, sizeof(r->created));
    json_decref(o);
    return r;
}

json_t *route_json(const struct nb_http_route *r)
{
    json_t *o = json_pack("{s:s,s:s,s:s}", "RouteKey", r->key, "FunctionName", r->fn->name,
                          "CreatedAt", r->created);
    if (r->qualifier)
        json_object_set_new(o, "Qualifier", json_string(r->qualifier));
    return o;
}

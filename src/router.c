/*
 * router.c - (method, path) -> handler for the AWS API listener.
 *
 * Each route keeps its pattern split into segments at router_add time: a literal, a `{Name}`
 * label (one non-empty segment) or, last only, a greedy `{Name+}` label (the rest of the path,
 * slashes included, as in botocore's S3 models). Matching splits the request path on raw '/'
 * (so an encoded %2F stays inside its segment), percent-decodes every segment once into the
 * request arena, then tries the routes in the order added.
 *
 * Invariants: a route never has more than NB_ROUTE_MAX_PARAMS labels (router_add BUGs);
 * patterns and methods are borrowed; a match's names point into the router, its values into the
 * request arena. The router is built at start-up and read-only afterwards.
 */
#include "router.h"

enum seg_kind { SEG_LITERAL, SEG_LABEL, SEG_GREEDY };

struct seg {
    enum seg_kind kind;
    char *text; /* literal text, or the label's name; malloc'd */
    size_t len;
};

struct route {
    const char *method;
    const char *pattern;
    const char *action;
    nb_route_cb cb;
    void *data;
    struct seg *segs;
    size_t n_segs;
};

struct nb_router {
    struct route *routes;
    size_t n, cap;
};

struct nb_router *router_new(void)
{
    return xcalloc(1, sizeof(struct nb_router));
}

void router_free(struct nb_router *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        for (size_t j = 0; j < r->routes[i].n_segs; j++)
            free(r->routes[i].segs[j].text);
        free(r->routes[i].segs);
    }
    free(r->routes);
    free(r);
}

/* Splits the raw path after its leading '/' into n segments (n >= 1; "/" is one empty one). */
static size_t count_segments(const char *p)
{
    size_t n = 1;
    for (; *p; p++)
        n += *p == '/';
    return n;
}

void router_add(struct nb_router *r, const char *method, const char *pattern, const char *action,
                nb_route_cb cb, void *data)
{
    if (pattern[0] != '/')
        BUG("route pattern '%s' does not start with '/'", pattern);
    struct route rt = {
        .method = method, .pattern = pattern, .action = action, .cb = cb, .data = data};
    rt.segs = xcalloc(count_segments(pattern + 1), sizeof(*rt.segs));
    size_t labels = 0;
    const char *p = pattern + 1;
    for (;;) {
        size_t len = strcspn(p, "/");
        struct seg *s = &rt.segs[rt.n_segs++];
        if (len >= 2 && p[0] == '{' && p[len - 1] == '}') {
            bool greedy = len >= 3 && p[len - 2] == '+';
            size_t nlen = len - 2 - greedy;
            if (nlen == 0 || memchr(p + 1, '{', nlen) || memchr(p + 1, '}', nlen))
                BUG("bad label in route pattern '%s'", pattern);
            if (greedy && p[len])
                BUG("greedy label not last in route pattern '%s'", pattern);
            if (++labels > NB_ROUTE_MAX_PARAMS)
                BUG("too many labels in route pattern '%s'", pattern);
            s->kind = greedy ? SEG_GREEDY : SEG_LABEL;
            s->text = xstrndup(p + 1, nlen);
            s->len = nlen;
        } else {
            if (memchr(p, '{', len) || memchr(p, '}', len))
                BUG("label not a whole segment in route pattern '%s'", pattern);
            s->kind = SEG_LITERAL;
            s->text = xstrndup(p, len);
            s->len = len;
        }
        if (!p[len])
            break;
        p += len + 1;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->routes = xrealloc(r->routes, r->cap * sizeof(*r->routes));
    }
    r->routes[r->n++] = rt;
}

/* The request path split on raw '/' and decoded. raw[i] is where segment i starts in the path. */
struct split {
    const char **dec;
    size_t *dec_len;
    const char **raw;
    size_t n;
};

static bool split_path(struct nb_http_req *req, struct split *sp)
{
    const char *p = req->path + 1;
    size_t n = count_segments(p);
    sp->dec = arena_alloc(&req->arena, n * sizeof(*sp->dec));
    sp->dec_len = arena_alloc(&req->arena, n * sizeof(*sp->dec_len));
    sp->raw = arena_alloc(&req->arena, n * sizeof(*sp->raw));
    sp->n = 0;
    for (;;) {
        size_t len = strcspn(p, "/");
        char *d = http_pct_decode(&req->arena, p, len);
        if (!d)
            return false;
        sp->raw[sp->n] = p;
        sp->dec[sp->n] = d;
        sp->dec_len[sp->n] = strlen(d);
        sp->n++;
        if (!p[len])
            return true;
        p += len + 1;
    }
}

static bool route_matches(const struct route *rt, const struct split *sp, struct nb_http_req *req,
                          struct nb_route_match *m)
{
    m->n = 0;
    for (size_t i = 0; i < rt->n_segs; i++) {
        const struct seg *s = &rt->segs[i];
        if (i >= sp->n)
            return false;
        switch (s->kind) {
        case SEG_LITERAL:
            if (sp->dec_len[i] != s->len || memcmp(sp->dec[i], s->text, s->len) != 0)
                return false;
            break;
        case SEG_LABEL:
            if (!sp->dec_len[i])
                return false;
            m->names[m->n] = s->text;
            m->values[m->n++] = sp->dec[i];
            break;
        case SEG_GREEDY: {
            const char *rest = sp->raw[i];
            if (!*rest) /* the rest must not be empty */
                return false;
            m->names[m->n] = s->text;
            m->values[m->n++] = http_pct_decode(&req->arena, rest, strlen(rest));
            return true; /* escapes were checked by split_path */
        }
        }
    }
    return rt->n_segs == sp->n;
}

enum nb_route_result router_match(const struct nb_router *r, struct nb_http_req *req,
                                  nb_route_cb *cb, void **data, struct nb_route_match *m)
{
    if (req->path[0] != '/')
        return NB_ROUTE_NOT_FOUND;
    struct split sp;
    if (!split_path(req, &sp))
        return NB_ROUTE_BAD_PATH;
    bool path_matched = false;
    struct nb_route_match tmp;
    for (size_t i = 0; i < r->n; i++) {
        const struct route *rt = &r->routes[i];
        if (!route_matches(rt, &sp, req, &tmp))
            continue;
        if (strcmp(rt->method, "*") != 0 && strcmp(rt->method, req->method) != 0) {
            path_matched = true;
            continue;
        }
        *cb = rt->cb;
        *data = rt->data;
        *m = tmp;
        m->action = rt->action;
        m->caller = NULL;
        return NB_ROUTE_OK;
    }
    return path_matched ? NB_ROUTE_BAD_METHOD : NB_ROUTE_NOT_FOUND;
}

const char *route_param(const struct nb_route_match *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->names[i], name))
            return m->values[i];
    return NULL;
}

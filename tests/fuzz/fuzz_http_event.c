/*
 * fuzz_http_event.c - libFuzzer target for http_event.c's untrusted inputs: the bytes as a
 * function's output mapped to an HTTP response (http_event_response), and as the pieces of an
 * HTTP request (a route key and path for route_key_parse/route_path_match, header values, query
 * string and body for http_event_build).
 *
 * Invariants checked: no crash, no leak (ASan); an accepted response has a status in 100..599 and
 * headers with non-empty names; every built event is valid JSON; a parsed route key's path matches
 * itself when it has no labels.
 */
#include <errno.h>
#include <jansson.h>

#include "http_event.h"
#include "triggers.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void response(const uint8_t *data, size_t size)
{
    struct nb_arena a;
    arena_init(&a);
    struct nb_http_event_out r;
    struct nb_err err = {0};
    if (http_event_response(&a, (const char *)data, size, &r, &err) == 0) {
        if (r.status < 100 || r.status > 599)
            BUG("status %d accepted", r.status);
        for (size_t i = 0; i < r.n_headers; i++)
            if (!r.headers[i].name[0])
                BUG("empty header name");
    }
    arena_release(&a);
}

static void request(const uint8_t *data, size_t size)
{
    /* split into four NUL-terminated pieces on '\n': route key, path, query, header value */
    char *s = xmalloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    char *piece[4] = {s, "", "", ""};
    char *p = s;
    for (int i = 1; i < 4 && (p = strchr(p, '\n')); i++) {
        *p++ = '\0';
        piece[i] = p;
    }
    size_t body_len = strlen(piece[3]);
    struct nb_err err = {0};
    char *method = NULL, *path = NULL;
    struct nb_arena a;
    arena_init(&a);
    const char *names[NB_ROUTE_PARAMS_MAX], *values[NB_ROUTE_PARAMS_MAX];
    size_t n = 0;
    long score;
    if (route_key_parse(piece[0], &method, &path, &err) == 0 && path) {
        if (!strchr(path, '{') && !route_path_match(path, path, &a, names, values, &n, &score))
            BUG("route path '%s' does not match itself", path);
        route_path_match(path, piece[1][0] == '/' ? piece[1] : "/", &a, names, values, &n, &score);
    }
    struct nb_http_header h[] = {
        {"Cookie", piece[3]}, {"X-Value", piece[3]}, {"Content-Type", piece[2]}};
    struct nb_http_event_in in = {
        .method = "POST",
        .raw_path = piece[1],
        .query = piece[2],
        .headers = h,
        .n_headers = 3,
        .body = piece[3],
        .body_len = body_len,
        .route_key = piece[0],
        .param_names = names,
        .param_values = values,
        .n_params = n,
        .domain_name = piece[1],
    };
    size_t len;
    char *ev = http_event_build(&in, &len);
    json_t *j = json_loadb(ev, len, 0, NULL);
    if (!j)
        BUG("event is not JSON");
    json_decref(j);
    free(ev);
    arena_release(&a);
    free(method);
    free(path);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    response(data, size);
    request(data, size);
    return 0;
}

/*
 * fuzz_sigv4.c - libFuzzer target for sigv4.c's untrusted inputs: the Authorization header, the
 * presigned query (X-Amz-* parameters), the path and the body of a request.
 *
 * Input layout: line 1 = Authorization value (empty: none), line 2 = query, line 3 = path,
 * line 4 = X-Amz-Date value, rest = body. Every parse is followed, when it succeeds, by a full
 * verification (canonical request, string to sign, HMAC) at the request's own time, and the
 * canonical request is built for the raw path/query both as lambda and as s3.
 * Invariants checked: no crash, no leak (ASan); a request signed by sigv4_sign over the fuzzed
 * path/query/body always verifies.
 */
#include <errno.h>

#include "sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *take_line(const char **p, const char *end)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    const char *e = nl ? nl : end;
    char *s = xstrndup(*p, (size_t)(e - *p));
    *p = nl ? nl + 1 : end;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    char *authz = take_line(&p, end), *query = take_line(&p, end), *path = take_line(&p, end),
         *date = take_line(&p, end);
    if (strlen(authz) + strlen(query) + strlen(path) + strlen(date) + 4 > size + 4)
        BUG("line split");
    const char *body = p;
    size_t body_len = (size_t)(end - p);
    struct nb_http_header h[3] = {{"host", "127.0.0.1:9000"}, {"x-amz-date", date}, {NULL, NULL}};
    size_t nh = 2;
    if (*authz)
        h[nh++] = (struct nb_http_header){"authorization", authz};
    struct nb_sigv4_request r = {"POST", path, query, h, nh, body, body_len};
    struct nb_arena a;
    arena_init(&a);
    struct nb_sigv4_auth auth;
    struct nb_err err = {0};
    if (sigv4_parse(&r, &a, &auth, &err) == NB_SIGV4_OK)
        sigv4_verify(&r, &auth, "secret", auth.time, NULL, &err);
    struct nb_buf b = NB_BUF_INIT;
    int rc = sigv4_canonical_request(&b, &r, "lambda", "host;x-amz-date", "x", NULL);
    buf_reset(&b);
    sigv4_canonical_request(&b, &r, "s3", "host;x-amz-date", "x", "X-Amz-Signature");
    buf_release(&b);
    /* what we sign, we accept */
    int64_t t = 1764160000;
    char amz[17];
    sigv4_amz_date(t, amz);
    h[1].value = amz;
    r.n_headers = 2;
    if (rc == 0) {
        char *sig =
            sigv4_sign(&r, "host;x-amz-date", NULL, "AK", "secret", "us-east-1", "lambda", t);
        h[2] = (struct nb_http_header){"authorization", sig};
        r.n_headers = 3;
        struct nb_arena a2;
        arena_init(&a2);
        if (sigv4_parse(&r, &a2, &auth, &err) != NB_SIGV4_OK ||
            sigv4_verify(&r, &auth, "secret", t, NULL, &err) != NB_SIGV4_OK)
            BUG("a request signed by sigv4_sign does not verify: %s", err.msg);
        arena_release(&a2);
        free(sig);
    }
    arena_release(&a);
    free(authz);
    free(query);
    free(path);
    free(date);
    return 0;
}

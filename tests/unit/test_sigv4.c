/*
 * test_sigv4.c - unit tests for sigv4.c: the AWS SigV4 test-suite vectors (tests/unit/data/
 * aws4_testsuite: canonical request, string to sign, signature, verification), then every
 * refusal with its result type: wrong key, wrong signature, skew beyond ±15 min, tampered body
 * and header, UNSIGNED-PAYLOAD outside s3, presigned URLs after expiry or tampered, unsigned and
 * malformed requests; Lambda's double-encoded ARN paths; the signing-key cache.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>

#include "sigv4.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define MAX_H 16

/* A request read from a .req file (or built by a test), with storage. */
struct treq {
    struct nb_arena a;
    char method[16];
    char *path, *query;
    struct nb_http_header h[MAX_H];
    size_t nh;
    char *body;
    size_t body_len;
    struct nb_sigv4_request r;
};

static void treq_finish(struct treq *t)
{
    t->r =
        (struct nb_sigv4_request){t->method, t->path, t->query, t->h, t->nh, t->body, t->body_len};
}

static void treq_header(struct treq *t, const char *name, const char *value)
{
    ASSERT(t->nh < MAX_H);
    t->h[t->nh].name = arena_strdup(&t->a, name);
    t->h[t->nh].value = arena_strdup(&t->a, value);
    t->nh++;
    treq_finish(t);
}

static void treq_init(struct treq *t, const char *method, const char *target, const char *body)
{
    memset(t, 0, sizeof(*t));
    arena_init(&t->a);
    snprintf(t->method, sizeof(t->method), "%s", method);
    const char *q = strchr(target, '?');
    t->path = arena_strndup(&t->a, target, q ? (size_t)(q - target) : strlen(target));
    t->query = arena_strdup(&t->a, q ? q + 1 : "");
    t->body = arena_strdup(&t->a, body ? body : "");
    t->body_len = strlen(t->body);
    treq_finish(t);
}

static char *data_file(const char *name, const char *ext)
{
    _cleanup_free_ char *path = xasprintf("%s/aws4_testsuite/%s.%s", NB_TEST_DATA, name, ext);
    char *text = NULL;
    size_t len;
    if (read_file(path, &text, &len) < 0)
        return NULL;
    return text;
}

/* Reads NAME.req: request line, "Name:value" header lines, a blank line, the body. */
static void treq_load(struct treq *t, const char *name)
{
    _cleanup_free_ char *text = data_file(name, "req");
    assert_non_null(text);
    char *headers = strchr(text, '\n');
    assert_non_null(headers);
    *headers++ = '\0';
    char *blank = strstr(headers, "\n\n");
    const char *body = "";
    if (blank) {
        blank[1] = '\0';
        body = blank + 2;
    }
    char method[16], target[512];
    assert_int_equal(sscanf(text, "%15s %511s", method, target), 2);
    treq_init(t, method, target, body);
    for (char *p = headers; *p;) {
        char *e = strchr(p, '\n');
        if (!e)
            e = p + strlen(p);
        char *colon = memchr(p, ':', (size_t)(e - p));
        assert_non_null(colon);
        _cleanup_free_ char *n = xstrndup(p, (size_t)(colon - p));
        _cleanup_free_ char *v = xstrndup(colon + 1, (size_t)(e - colon - 1));
        treq_header(t, n, v);
        p = *e ? e + 1 : e;
    }
}

static const char *const vectors[] = {"get-space", "get-utf8", "get-vanilla", "post-vanilla",
                                      "get-vanilla-query-order-key-case"};

static void test_suite_vectors(void **state)
{
    for (size_t i = 0; i < ARRAY_SIZE(vectors); i++) {
        const char *name = vectors[i];
        struct treq t;
        treq_load(&t, name);
        _cleanup_free_ char *authz = data_file(name, "authz");
        assert_non_null(authz);
        treq_header(&t, "Authorization", authz);
        struct nb_sigv4_auth auth;
        struct nb_err err = {0};
        assert_int_equal(sigv4_parse(&t.r, &t.a, &auth, &err), NB_SIGV4_OK);
        assert_string_equal(auth.key_id, "AKIDEXAMPLE");
        /* canonical request and string to sign, where the suite gives them */
        _cleanup_free_ char *creq = data_file(name, "creq");
        if (creq) {
            struct nb_buf b = NB_BUF_INIT;
            char ph[65];
            sigv4_sha256_hex(t.body, t.body_len, ph);
            assert_int_equal(
                sigv4_canonical_request(&b, &t.r, auth.service, auth.signed_headers, ph, NULL), 0);
            assert_string_equal(b.data, creq);
            buf_release(&b);
        }
        /* verification at the request's own time; also 15 min either side */
        assert_int_equal(sigv4_verify(&t.r, &auth, SECRET, auth.time, NULL, &err), NB_SIGV4_OK);
        assert_int_equal(sigv4_verify(&t.r, &auth, SECRET, auth.time + 900, NULL, &err),
                         NB_SIGV4_OK);
        assert_int_equal(sigv4_verify(&t.r, &auth, SECRET, auth.time - 900, NULL, &err),
                         NB_SIGV4_OK);
        /* signing the same request reproduces the suite's Authorization header */
        t.nh--; /* drop Authorization */
        treq_finish(&t);
        _cleanup_free_ char *mine = sigv4_sign(&t.r, auth.signed_headers, NULL, "AKIDEXAMPLE",
                                               SECRET, auth.region, auth.service, auth.time);
        assert_string_equal(mine, authz);
        arena_release(&t.a);
    }
}

/* A Lambda request signed now-ish with key AKID/secret s. */
static void signed_request(struct treq *t, const char *method, const char *target, const char *body,
                           const char *secret, int64_t now, bool content_sha)
{
    treq_init(t, method, target, body);
    char amz[17], ph[65];
    sigv4_amz_date(now, amz);
    treq_header(t, "Host", "127.0.0.1:9000");
    treq_header(t, "X-Amz-Date", amz);
    treq_header(t, "Content-Type", "application/json");
    const char *sh = "content-type;host;x-amz-date";
    if (content_sha) {
        sigv4_sha256_hex(t->body, t->body_len, ph);
        treq_header(t, "X-Amz-Content-Sha256", ph);
        sh = "content-type;host;x-amz-content-sha256;x-amz-date";
    }
    _cleanup_free_ char *a =
        sigv4_sign(&t->r, sh, NULL, "NKIATEST", secret, "us-east-1", "lambda", now);
    treq_header(t, "Authorization", a);
}

static enum nb_sigv4_result check(struct treq *t, const char *secret, int64_t now,
                                  struct nb_err *err)
{
    struct nb_sigv4_auth auth;
    enum nb_sigv4_result r = sigv4_parse(&t->r, &t->a, &auth, err);
    if (r != NB_SIGV4_OK)
        return r;
    return sigv4_verify(&t->r, &auth, secret, now, NULL, err);
}

#define NOW 1764160000 /* 2025-11-26 */

static void test_refusals(void **state)
{
    struct nb_err err = {0};
    struct treq t;
    const char *path = "/2015-03-31/functions/f/invocations";

    signed_request(&t, "POST", path, "{\"a\":1}", "s3cr3t", NOW, false);
    assert_int_equal(check(&t, "s3cr3t", NOW, &err), NB_SIGV4_OK);
    /* wrong key */
    assert_int_equal(check(&t, "other", NOW, &err), NB_SIGV4_BAD_SIGNATURE);
    assert_non_null(strstr(err.msg, "The request signature we calculated does not match"));
    assert_string_equal(sigv4_error_type(NB_SIGV4_BAD_SIGNATURE), "InvalidSignatureException");
    /* skew: 15 min is fine, beyond is not, both ways, with AWS's words */
    assert_int_equal(check(&t, "s3cr3t", NOW + 900, &err), NB_SIGV4_OK);
    assert_int_equal(check(&t, "s3cr3t", NOW - 900, &err), NB_SIGV4_OK);
    assert_int_equal(check(&t, "s3cr3t", NOW + 901, &err), NB_SIGV4_SKEWED);
    assert_non_null(strstr(err.msg, "Signature expired: "));
    assert_non_null(strstr(err.msg, " is now earlier than "));
    assert_non_null(strstr(err.msg, " - 15 min.)"));
    assert_int_equal(check(&t, "s3cr3t", NOW - 901, &err), NB_SIGV4_SKEWED);
    assert_non_null(strstr(err.msg, "Signature not yet current: "));
    assert_non_null(strstr(err.msg, " + 15 min.)"));
    /* tampered body (no x-amz-content-sha256: the signature breaks) */
    t.body[5] = '2';
    assert_int_equal(check(&t, "s3cr3t", NOW, &err), NB_SIGV4_BAD_SIGNATURE);
    arena_release(&t.a);
    /* tampered body with x-amz-content-sha256: the hash check catches it */
    signed_request(&t, "POST", path, "{\"a\":1}", "s3cr3t", NOW, true);
    assert_int_equal(check(&t, "s3cr3t", NOW, &err), NB_SIGV4_OK);
    t.body[5] = '2';
    assert_int_equal(check(&t, "s3cr3t", NOW, &err), NB_SIGV4_BAD_PAYLOAD);
    assert_string_equal(sigv4_error_type(NB_SIGV4_BAD_PAYLOAD), "InvalidSignatureException");
    t.body[5] = '1';
    /* tampered signed header */
    t.h[2].value = "text/plain";
    assert_int_equal(check(&t, "s3cr3t", NOW, &err), NB_SIGV4_BAD_SIGNATURE);
    t.h[2].value = "application/json";
    assert_int_equal(check(&t, "s3cr3t", NOW, &err), NB_SIGV4_OK);
    /* tampered path and query */
    t.path = "/2015-03-31/functions/g/invocations";
    treq_finish(&t);
    assert_int_equal(check(&t, "s3cr3t", NOW, &err), NB_SIGV4_BAD_SIGNATURE);
    arena_release(&t.a);

    /* a wrong signature of the right shape */
    signed_request(&t, "GET", "/2015-03-31/functions/", "", "s3cr3t", NOW, false);
    char *a = (char *)t.h[t.nh - 1].value;
    char *sig = strstr(a, "Signature=") + 10;
    sig[0] = sig[0] == '0' ? '1' : '0';
    assert_int_equal(check(&t, "s3cr3t", NOW, &err), NB_SIGV4_BAD_SIGNATURE);
    arena_release(&t.a);

    /* unsigned */
    treq_init(&t, "GET", "/2015-03-31/functions/", NULL);
    treq_header(&t, "Host", "x");
    assert_int_equal(check(&t, "s3cr3t", NOW, &err), NB_SIGV4_MISSING);
    assert_string_equal(sigv4_error_type(NB_SIGV4_MISSING), "MissingAuthenticationTokenException");
    assert_int_equal(sigv4_error_status(NB_SIGV4_MISSING), 403);
    arena_release(&t.a);
}

static void test_malformed(void **state)
{
    static const char *const bad[] = {
        "AWS4-HMAC-SHA256 Credential=AK/20250101/us-east-1/lambda/aws4_request, "
        "SignedHeaders=host",
        "AWS4-HMAC-SHA256 Credential=AK/20250101/us-east-1/lambda, SignedHeaders=host, "
        "Signature=" /* 64 hex */ "000000000000000000000000000000000000000000000000000000000000000"
        "0",
        "AWS4-HMAC-SHA256 Credential=AK/20250101/us-east-1/lambda/aws4_request, "
        "SignedHeaders=x-amz-date, "
        "Signature=0000000000000000000000000000000000000000000000000000000000000000",
        "AWS4-HMAC-SHA256 Credential=AK/20250101/us-east-1/lambda/aws4_request, "
        "SignedHeaders=host, Signature=xyz",
        "AWS4-HMAC-SHA1 Credential=AK/20250101/us-east-1/lambda/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AK/2025/us-east-1/lambda/aws4_request, SignedHeaders=host, "
        "Signature=0000000000000000000000000000000000000000000000000000000000000000",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct treq t;
        struct nb_err err = {0};
        treq_init(&t, "GET", "/", NULL);
        treq_header(&t, "Host", "x");
        treq_header(&t, "X-Amz-Date", "20250101T000000Z");
        treq_header(&t, "Authorization", bad[i]);
        struct nb_sigv4_auth auth;
        assert_int_equal(sigv4_parse(&t.r, &t.a, &auth, &err), NB_SIGV4_MALFORMED);
        assert_true(err.msg[0]);
        arena_release(&t.a);
    }
    /* no date at all */
    struct treq t;
    struct nb_err err = {0};
    struct nb_sigv4_auth auth;
    treq_init(&t, "GET", "/", NULL);
    treq_header(&t, "Authorization",
                "AWS4-HMAC-SHA256 Credential=AK/20250101/us-east-1/lambda/aws4_request, "
                "SignedHeaders=host, "
                "Signature=0000000000000000000000000000000000000000000000000000000000000000");
    assert_int_equal(sigv4_parse(&t.r, &t.a, &auth, &err), NB_SIGV4_MALFORMED);
    assert_string_equal(sigv4_error_type(NB_SIGV4_MALFORMED), "IncompleteSignatureException");
    arena_release(&t.a);
}

static void test_unsigned_payload_only_for_s3(void **state)
{
    struct nb_err err = {0};
    for (int s3 = 0; s3 < 2; s3++) {
        struct treq t;
        treq_init(&t, "PUT", "/bucket/key", "data");
        char amz[17];
        sigv4_amz_date(NOW, amz);
        treq_header(&t, "Host", "h");
        treq_header(&t, "X-Amz-Date", amz);
        treq_header(&t, "X-Amz-Content-Sha256", SIGV4_UNSIGNED_PAYLOAD);
        _cleanup_free_ char *a =
            sigv4_sign(&t.r, "host;x-amz-content-sha256;x-amz-date", SIGV4_UNSIGNED_PAYLOAD, "AK",
                       "sec", "us-east-1", s3 ? "s3" : "lambda", NOW);
        treq_header(&t, "Authorization", a);
        assert_int_equal(check(&t, "sec", NOW, &err), s3 ? NB_SIGV4_OK : NB_SIGV4_BAD_PAYLOAD);
        arena_release(&t.a);
    }
}

static void test_presigned(void **state)
{
    struct nb_err err = {0};
    const char *path = "/nimbus/v1/functions/f/code";
    _cleanup_free_ char *q = sigv4_presign("GET", path, NULL, "127.0.0.1:9000", "AK", "sec",
                                           "us-east-1", "lambda", NOW, 600);
    _cleanup_free_ char *target = xasprintf("%s?%s", path, q);
    struct treq t;
    treq_init(&t, "GET", target, NULL);
    treq_header(&t, "Host", "127.0.0.1:9000");
    struct nb_sigv4_auth auth;
    assert_int_equal(sigv4_parse(&t.r, &t.a, &auth, &err), NB_SIGV4_OK);
    assert_true(auth.presigned);
    assert_int_equal(auth.expires, 600);
    assert_int_equal(sigv4_verify(&t.r, &auth, "sec", NOW + 600, NULL, &err), NB_SIGV4_OK);
    /* replayed after expiry */
    assert_int_equal(sigv4_verify(&t.r, &auth, "sec", NOW + 601, NULL, &err), NB_SIGV4_EXPIRED);
    assert_string_equal(err.msg, "Request has expired");
    assert_string_equal(sigv4_error_type(NB_SIGV4_EXPIRED), "AccessDeniedException");
    /* dated in the future beyond the skew */
    assert_int_equal(sigv4_verify(&t.r, &auth, "sec", NOW - 901, NULL, &err), NB_SIGV4_SKEWED);
    /* wrong secret; another host */
    assert_int_equal(sigv4_verify(&t.r, &auth, "sed", NOW, NULL, &err), NB_SIGV4_BAD_SIGNATURE);
    t.h[0].value = "127.0.0.1:9001";
    assert_int_equal(sigv4_verify(&t.r, &auth, "sec", NOW, NULL, &err), NB_SIGV4_BAD_SIGNATURE);
    arena_release(&t.a);
    /* a longer expiry than the URL was signed for */
    char *bad = xstrdup(target);
    char *e = strstr(bad, "X-Amz-Expires=600");
    e[15] = '9';
    treq_init(&t, "GET", bad, NULL);
    treq_header(&t, "Host", "127.0.0.1:9000");
    assert_int_equal(check(&t, "sec", NOW, &err), NB_SIGV4_BAD_SIGNATURE);
    arena_release(&t.a);
    free(bad);
}

static void test_lambda_double_encoding(void **state)
{
    struct nb_sigv4_request r = {
        "GET",
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A0%3Afunction%3Af/./x/../"
        "configuration",
        "Qualifier=%24LATEST&A=b%20c",
        NULL,
        0,
        "",
        0};
    struct nb_buf b = NB_BUF_INIT;
    assert_int_equal(sigv4_canonical_request(&b, &r, "lambda", "", "h", NULL), 0);
    assert_string_equal(b.data, "GET\n/2015-03-31/functions/"
                                "arn%253Aaws%253Alambda%253Aus-east-1%253A0%253Afunction%253Af/"
                                "configuration\nA=b%20c&Qualifier=%24LATEST\n\n\nh");
    buf_reset(&b);
    /* s3: the wire path as is */
    r.path = "/b/a%3Ab/./c";
    r.query = "";
    assert_int_equal(sigv4_canonical_request(&b, &r, "s3", "", "h", NULL), 0);
    assert_string_equal(b.data, "GET\n/b/a%3Ab/./c\n\n\n\nh");
    buf_reset(&b);
    /* trailing slash kept, empty path is "/", malformed escapes refused */
    r.path = "/2015-03-31/functions/";
    assert_int_equal(sigv4_canonical_request(&b, &r, "lambda", "", "h", NULL), 0);
    assert_true(!strncmp(b.data, "GET\n/2015-03-31/functions/\n", 27));
    buf_reset(&b);
    r.path = "";
    assert_int_equal(sigv4_canonical_request(&b, &r, "lambda", "", "h", NULL), 0);
    assert_true(!strncmp(b.data, "GET\n/\n", 6));
    buf_reset(&b);
    r.query = "a=%zz";
    assert_int_equal(sigv4_canonical_request(&b, &r, "lambda", "", "h", NULL), -EINVAL);
    buf_release(&b);
}

static void test_signing_key_cache(void **state)
{
    struct nb_sigv4_cache *c = xcalloc(1, sizeof(*c));
    unsigned char k1[32], k2[32], k3[32];
    sigv4_signing_key("sec", "20250101", "us-east-1", "lambda", c, k1);
    sigv4_signing_key("sec", "20250101", "us-east-1", "lambda", c, k2);
    sigv4_signing_key("sec", "20250101", "us-east-1", "lambda", NULL, k3);
    assert_memory_equal(k1, k2, 32);
    assert_memory_equal(k1, k3, 32);
    assert_int_equal(c->hits, 1);
    assert_int_equal(c->misses, 1);
    sigv4_signing_key("sec", "20250102", "us-east-1", "lambda", c, k2);
    assert_memory_not_equal(k1, k2, 32);
    free(c);
}

static void test_amz_date(void **state)
{
    char s[17];
    sigv4_amz_date(1440938160, s);
    assert_string_equal(s, "20150830T123600Z");
    int64_t t;
    assert_int_equal(sigv4_parse_amz_date("20150830T123600Z", &t), 0);
    assert_int_equal(t, 1440938160);
    assert_int_equal(sigv4_parse_amz_date("2015-08-30T12:36:00Z", &t), -EINVAL);
    assert_int_equal(sigv4_parse_amz_date("20150830T123600", &t), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suite_vectors),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_unsigned_payload_only_for_s3),
        cmocka_unit_test(test_presigned),
        cmocka_unit_test(test_lambda_double_encoding),
        cmocka_unit_test(test_signing_key_cache),
        cmocka_unit_test(test_amz_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

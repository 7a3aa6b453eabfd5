/*
 * test_http_event.c - unit tests for http_event.c (payload format 2.0 events, API Gateway's
 * response mapping) and for the pure parts of triggers.c (route keys, route path matching).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include "http_event.h"
#include "triggers.h"

static json_t *build(const struct nb_http_event_in *in)
{
    size_t len;
    char *s = http_event_build(in, &len);
    json_t *j = json_loadb(s, len, 0, NULL);
    free(s);
    assert_non_null(j);
    return j;
}

static const char *jstr(json_t *j, const char *path)
{
    /* dotted path lookup */
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *cur = j;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
        cur = json_object_get(cur, k);
    return json_string_value(cur);
}

static void test_event_headers_cookies_query(void **state)
{
    (void)state;
    struct nb_http_header h[] = {{"Host", "abc.lambda-url.us-east-1.localhost:8080"},
                                 {"X-Dup", "one"},
                                 {"Cookie", "a=1; b=2"},
                                 {"x-dup", "two"},
                                 {"Cookie", "c=3"},
                                 {"User-Agent", "ua/1"},
                                 {"Content-Type", "application/json"}};
    struct nb_http_event_in in = {
        .method = "POST",
        .raw_path = "/p/q%20r",
        .query = "x=1&x=2&y=a%20b&z",
        .headers = h,
        .n_headers = 7,
        .body = "{\"k\":1}",
        .body_len = 7,
        .route_key = "$default",
        .api_id = "abc",
        .domain_name = "abc.lambda-url.us-east-1.localhost",
        .account_id = "000000000000",
        .request_id = "rid",
        .source_ip = "127.0.0.1",
        .time_ms = 1583348638390ULL,
    };
    json_t *j = build(&in);
    assert_string_equal(jstr(j, "version"), "2.0");
    assert_string_equal(jstr(j, "headers.x-dup"), "one,two");
    assert_null(json_object_get(json_object_get(j, "headers"), "cookie"));
    json_t *c = json_object_get(j, "cookies");
    assert_int_equal(json_array_size(c), 3);
    assert_string_equal(json_string_value(json_array_get(c, 0)), "a=1");
    assert_string_equal(json_string_value(json_array_get(c, 2)), "c=3");
    assert_string_equal(jstr(j, "queryStringParameters.x"), "1,2");
    assert_string_equal(jstr(j, "queryStringParameters.y"), "a b");
    assert_string_equal(jstr(j, "queryStringParameters.z"), "");
    assert_string_equal(jstr(j, "rawQueryString"), "x=1&x=2&y=a%20b&z");
    assert_string_equal(jstr(j, "requestContext.http.userAgent"), "ua/1");
    assert_string_equal(jstr(j, "requestContext.domainPrefix"), "abc");
    assert_string_equal(jstr(j, "requestContext.time"), "04/Mar/2020:19:03:58 +0000");
    assert_string_equal(jstr(j, "body"), "{\"k\":1}");
    assert_true(json_is_false(json_object_get(j, "isBase64Encoded")));
    assert_null(json_object_get(j, "pathParameters"));
    json_decref(j);
}

static void test_event_binary_and_params(void **state)
{
    (void)state;
    struct nb_http_header h[] = {{"content-type", "application/octet-stream"}};
    const char *names[] = {"id"}, *values[] = {"42"};
    struct nb_http_event_in in = {
        .method = "PUT",
        .raw_path = "/u/42",
        .query = "",
        .headers = h,
        .n_headers = 1,
        .body = "\x00\x01\xff",
        .body_len = 3,
        .route_key = "PUT /u/{id}",
        .param_names = names,
        .param_values = values,
        .n_params = 1,
        .iam_key_id = "NKIATEST",
        .account_id = "000000000000",
    };
    json_t *j = build(&in);
    assert_true(json_is_true(json_object_get(j, "isBase64Encoded")));
    assert_string_equal(jstr(j, "body"), "AAH/");
    assert_string_equal(jstr(j, "pathParameters.id"), "42");
    assert_string_equal(jstr(j, "routeKey"), "PUT /u/{id}");
    assert_string_equal(jstr(j, "requestContext.authorizer.iam.accessKey"), "NKIATEST");
    assert_null(json_object_get(j, "queryStringParameters"));
    json_decref(j);
    /* text content type but not UTF-8: base64 too */
    h[0].value = "text/plain; charset=utf-8";
    in.body = "\xc3\x28";
    in.body_len = 2;
    j = build(&in);
    assert_true(json_is_true(json_object_get(j, "isBase64Encoded")));
    json_decref(j);
    assert_true(http_event_is_text("application/vnd.api+json"));
    assert_true(http_event_is_text("TEXT/html"));
    assert_false(http_event_is_text("image/png"));
    assert_false(http_event_is_text("application/octet-stream"));
}

static int map(const char *out, struct nb_arena *a, struct nb_http_event_out *res)
{
    struct nb_err err = {0};
    return http_event_response(a, out, strlen(out), res, &err);
}

static const char *hdr(const struct nb_http_event_out *r, const char *name, int nth)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (!strcasecmp(r->headers[i].name, name) && nth-- == 0)
            return r->headers[i].value;
    return NULL;
}

static void test_response_mapping(void **state)
{
    (void)state;
    struct nb_arena a;
    arena_init(&a);
    struct nb_http_event_out r;
    assert_int_equal(map("{\"statusCode\":201,\"headers\":{\"X-A\":\"1\",\"X-N\":5},"
                         "\"cookies\":[\"a=b\",\"c=d; Path=/\"],\"body\":\"hi\"}",
                         &a, &r),
                     0);
    assert_int_equal(r.status, 201);
    assert_string_equal(hdr(&r, "x-a", 0), "1");
    assert_string_equal(hdr(&r, "x-n", 0), "5");
    assert_string_equal(hdr(&r, "set-cookie", 0), "a=b");
    assert_string_equal(hdr(&r, "set-cookie", 1), "c=d; Path=/");
    assert_string_equal(hdr(&r, "content-type", 0), "application/json");
    assert_int_equal(r.body_len, 2);
    assert_memory_equal(r.body, "hi", 2);
    /* base64 */
    assert_int_equal(map("{\"statusCode\":200,\"body\":\"AAH/\",\"isBase64Encoded\":true}", &a, &r),
                     0);
    assert_int_equal(r.body_len, 3);
    assert_memory_equal(r.body, "\x00\x01\xff", 3);
    /* bare values: 200 application/json, the JSON text as the body */
    assert_int_equal(map("{\"a\":1}", &a, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 7); /* body is (pointer, length), not NUL-terminated */
    assert_memory_equal(r.body, "{\"a\":1}", 7);
    assert_string_equal(hdr(&r, "content-type", 0), "application/json");
    assert_int_equal(map("\"hi\"", &a, &r), 0);
    assert_int_equal(r.body_len, 4);
    assert_memory_equal(r.body, "\"hi\"", 4);
    assert_int_equal(map("null", &a, &r), 0);
    /* errors -> the caller's 502 */
    assert_int_equal(map("not json", &a, &r), -EINVAL);
    assert_int_equal(map("{\"statusCode\":\"200\"}", &a, &r), -EINVAL);
    assert_int_equal(map("{\"statusCode\":99}", &a, &r), -EINVAL);
    assert_int_equal(map("{\"statusCode\":200,\"headers\":[]}", &a, &r), -EINVAL);
    assert_int_equal(map("{\"statusCode\":200,\"headers\":{\"a b\":\"x\"}}", &a, &r), -EINVAL);
    assert_int_equal(map("{\"statusCode\":200,\"cookies\":[1]}", &a, &r), -EINVAL);
    assert_int_equal(map("{\"statusCode\":200,\"body\":\"%%%\",\"isBase64Encoded\":true}", &a, &r),
                     -EINVAL);
    /* a non-string body is sent as its JSON text */
    assert_int_equal(map("{\"statusCode\":200,\"body\":{\"x\":[1]}}", &a, &r), 0);
    assert_string_equal(r.body, "{\"x\":[1]}");
    arena_release(&a);
}

static void test_route_keys(void **state)
{
    (void)state;
    struct nb_err err = {0};
    char *m, *p;
    assert_int_equal(route_key_parse("$default", &m, &p, &err), 0);
    assert_null(m);
    assert_null(p);
    assert_int_equal(route_key_parse("GET /users/{id}", &m, &p, &err), 0);
    assert_string_equal(m, "GET");
    assert_string_equal(p, "/users/{id}");
    free(m);
    free(p);
    assert_int_equal(route_key_parse("ANY /{proxy+}", &m, &p, &err), 0);
    free(m);
    free(p);
    assert_int_equal(route_key_parse("GET /", &m, &p, &err), 0);
    free(m);
    free(p);
    const char *bad[] = {"GET",       "FETCH /x", "GET x",  "GET /a//b", "GET /{p+}/x", "GET /a{b}",
                         "GET /{a}}", "GET /a?b", "get /x", "GET /{}",   "GET /a b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        err_clear(&err);
        assert_int_equal(route_key_parse(bad[i], &m, &p, &err), -EINVAL);
    }
}

static void test_route_match(void **state)
{
    (void)state;
    struct nb_arena a;
    arena_init(&a);
    const char *names[NB_ROUTE_PARAMS_MAX], *values[NB_ROUTE_PARAMS_MAX];
    size_t n;
    long s1, s2, s3;
    assert_true(route_path_match("/users/{id}", "/users/4%202", &a, names, values, &n, &s1));
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "id");
    assert_string_equal(values[0], "4 2");
    assert_false(route_path_match("/users/{id}", "/users/", &a, names, values, &n, &s1));
    assert_false(route_path_match("/users/{id}", "/users/1/x", &a, names, values, &n, &s1));
    assert_true(route_path_match("/users/me", "/users/me", &a, names, values, &n, &s2));
    assert_true(route_path_match("/{proxy+}", "/users/me", &a, names, values, &n, &s3));
    assert_string_equal(values[0], "users/me");
    assert_true(s2 > s1 && s1 > s3); /* literal > label > greedy */
    assert_false(route_path_match("/{proxy+}", "/", &a, names, values, &n, &s3));
    assert_true(route_path_match("/", "/", &a, names, values, &n, &s3));
    assert_false(route_path_match("/", "/x", &a, names, values, &n, &s3));
    assert_true(route_path_match("/api/{rest+}", "/api/a/b", &a, names, values, &n, &s3));
    assert_false(route_path_match("/api/{rest+}", "/api", &a, names, values, &n, &s3));
    arena_release(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_headers_cookies_query),
        cmocka_unit_test(test_event_binary_and_params),
        cmocka_unit_test(test_response_mapping),
        cmocka_unit_test(test_route_keys),
        cmocka_unit_test(test_route_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

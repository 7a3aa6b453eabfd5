/*
 * test_router.c - route matching: literals and labels, percent-decoding into the request arena,
 * trailing-slash significance, NOT_FOUND vs BAD_METHOD, malformed escapes, greedy labels, order.
 *
 * Requests are plain structs with an arena (no server needed); a bad pattern is a BUG, checked
 * in a forked child that must die by SIGABRT.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <signal.h>
#include <sys/wait.h>

#include "router.h"

static int tags[16];

static void cb_a(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
}

static void cb_b(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
}

static struct nb_router *make_router(void)
{
    struct nb_router *r = router_new();
    router_add(r, "GET", "/2015-03-31/functions/", "test:Op", cb_a, &tags[0]);
    router_add(r, "POST", "/2015-03-31/functions", "test:Op", cb_a, &tags[1]);
    router_add(r, "GET", "/2015-03-31/functions/{FunctionName}", "test:Op", cb_a, &tags[2]);
    router_add(r, "DELETE", "/2015-03-31/functions/{FunctionName}", "test:Op", cb_b, &tags[3]);
    router_add(r, "POST", "/2015-03-31/functions/{FunctionName}/invocations", "test:Invoke", cb_b,
               &tags[4]);
    router_add(r, "GET", "/2018-06-01/runtime/invocation/next", "test:Op", cb_a, &tags[5]);
    router_add(r, "POST", "/2018-06-01/runtime/invocation/{AwsRequestId}/response", "test:Op", cb_b,
               &tags[6]);
    router_add(r, "*", "/healthz", NULL, cb_a, &tags[7]);
    router_add(r, "GET", "/a/{X}/b/{Y}", "test:Op", cb_a, &tags[8]);
    router_add(r, "GET", "/buckets/{Bucket}/{Key+}", "test:Op", cb_b, &tags[9]);
    router_add(r, "GET", "/dup/{A}", "test:Op", cb_a, &tags[10]);
    router_add(r, "GET", "/dup/{B}", "test:Op", cb_b, &tags[11]);
    router_add(r, "GET", "/", "test:Op", cb_a, &tags[12]);
    return r;
}

struct fixture {
    struct nb_router *r;
    struct nb_http_req req;
    nb_route_cb cb;
    void *data;
    struct nb_route_match m;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    f->r = make_router();
    arena_init(&f->req.arena);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    arena_release(&f->req.arena);
    router_free(f->r);
    free(f);
    return 0;
}

static enum nb_route_result match(struct fixture *f, const char *method, const char *path)
{
    f->req.method = method;
    f->req.path = path;
    f->cb = NULL;
    f->data = NULL;
    memset(&f->m, 0, sizeof(f->m));
    return router_match(f->r, &f->req, &f->cb, &f->data, &f->m);
}

static void test_literal_and_label(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(match(f, "GET", "/2015-03-31/functions/my-fn"), NB_ROUTE_OK);
    assert_ptr_equal(f->data, &tags[2]);
    assert_ptr_equal(f->cb, cb_a);
    assert_int_equal(f->m.n, 1);
    assert_string_equal(f->m.names[0], "FunctionName");
    assert_string_equal(route_param(&f->m, "FunctionName"), "my-fn");
    assert_null(route_param(&f->m, "Qualifier"));

    assert_int_equal(match(f, "DELETE", "/2015-03-31/functions/my-fn"), NB_ROUTE_OK);
    assert_ptr_equal(f->data, &tags[3]); /* same path, the method picks the route */
    assert_ptr_equal(f->cb, cb_b);

    assert_int_equal(match(f, "GET", "/a/1/b/2"), NB_ROUTE_OK);
    assert_int_equal(f->m.n, 2);
    assert_string_equal(route_param(&f->m, "X"), "1");
    assert_string_equal(route_param(&f->m, "Y"), "2");
    assert_int_equal(match(f, "GET", "/a/1/c/2"), NB_ROUTE_NOT_FOUND);
    assert_int_equal(match(f, "GET", "/a/1/b"), NB_ROUTE_NOT_FOUND);
    assert_int_equal(match(f, "GET", "/a/1/b/2/3"), NB_ROUTE_NOT_FOUND);

    assert_int_equal(match(f, "GET", "/2018-06-01/runtime/invocation/next"), NB_ROUTE_OK);
    assert_ptr_equal(f->data, &tags[5]);
    assert_int_equal(f->m.n, 0);
    assert_int_equal(match(f, "GET", "/2018-06-01/runtime/invocation/nex"), NB_ROUTE_NOT_FOUND);
    assert_int_equal(match(f, "GET", "/2018-06-01/runtime/invocation/nextt"), NB_ROUTE_NOT_FOUND);
    assert_int_equal(match(f, "GET", "/"), NB_ROUTE_OK);
    assert_ptr_equal(f->data, &tags[12]);
}

static void test_labels_decoded(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(match(f, "POST",
                           "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012"
                           "%3Afunction%3Amy-fn%3Aprod/invocations"),
                     NB_ROUTE_OK);
    assert_ptr_equal(f->data, &tags[4]);
    assert_string_equal(f->m.action, "test:Invoke");
    assert_string_equal(route_param(&f->m, "FunctionName"),
                        "arn:aws:lambda:us-east-1:123456789012:function:my-fn:prod");
    /* %2F stays inside its segment and decodes to '/' */
    assert_int_equal(match(f, "GET", "/2015-03-31/functions/a%2Fb"), NB_ROUTE_OK);
    assert_string_equal(route_param(&f->m, "FunctionName"), "a/b");
    /* '+' is not a space in a path */
    assert_int_equal(match(f, "GET", "/2015-03-31/functions/a+b%20c"), NB_ROUTE_OK);
    assert_string_equal(route_param(&f->m, "FunctionName"), "a+b c");
    /* literal segments compare decoded */
    assert_int_equal(match(f, "GET", "/2015-03-31/%66unctions/x"), NB_ROUTE_OK);
    assert_ptr_equal(f->data, &tags[2]);
    /* an encoded slash does not split a literal either */
    assert_int_equal(match(f, "GET", "/2018-06-01%2Fruntime/invocation/next"), NB_ROUTE_NOT_FOUND);
}

static void test_trailing_slash(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(match(f, "GET", "/2015-03-31/functions/"), NB_ROUTE_OK);
    assert_ptr_equal(f->data, &tags[0]);
    assert_int_equal(match(f, "POST", "/2015-03-31/functions"), NB_ROUTE_OK);
    assert_ptr_equal(f->data, &tags[1]);
    /* the slash-less path exists for POST only, the slashed one for GET only */
    assert_int_equal(match(f, "GET", "/2015-03-31/functions"), NB_ROUTE_BAD_METHOD);
    assert_int_equal(match(f, "POST", "/2015-03-31/functions/"), NB_ROUTE_BAD_METHOD);
    /* a label never matches an empty segment */
    assert_int_equal(match(f, "GET", "/2015-03-31/functions/my-fn/"), NB_ROUTE_NOT_FOUND);
    assert_int_equal(match(f, "POST", "/2015-03-31/functions//invocations"), NB_ROUTE_NOT_FOUND);
    assert_int_equal(match(f, "GET", "/healthz/"), NB_ROUTE_NOT_FOUND);
    assert_int_equal(match(f, "GET", "//healthz"), NB_ROUTE_NOT_FOUND);
}

static void test_methods(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(match(f, "PUT", "/2015-03-31/functions/my-fn"), NB_ROUTE_BAD_METHOD);
    assert_int_equal(match(f, "HEAD", "/2015-03-31/functions/my-fn"), NB_ROUTE_BAD_METHOD);
    assert_null(f->cb);
    assert_int_equal(match(f, "GET", "/2015-03-31/functions/my-fn/invocations"),
                     NB_ROUTE_BAD_METHOD);
    assert_int_equal(match(f, "POST", "/nope"), NB_ROUTE_NOT_FOUND);
    assert_int_equal(match(f, "GET", "/healthz"), NB_ROUTE_OK);
    assert_int_equal(match(f, "PATCH", "/healthz"), NB_ROUTE_OK);
    assert_ptr_equal(f->data, &tags[7]);
    assert_null(f->m.action);
    /* not origin-form */
    assert_int_equal(match(f, "OPTIONS", "*"), NB_ROUTE_NOT_FOUND);
    assert_int_equal(match(f, "GET", "http://h/healthz"), NB_ROUTE_NOT_FOUND);
    assert_int_equal(match(f, "GET", ""), NB_ROUTE_NOT_FOUND);
}

static void test_bad_escapes(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(match(f, "GET", "/2015-03-31/functions/a%ZZ"), NB_ROUTE_BAD_PATH);
    assert_int_equal(match(f, "GET", "/2015-03-31/functions/a%4"), NB_ROUTE_BAD_PATH);
    assert_int_equal(match(f, "GET", "/2015-03-31/functions/a%"), NB_ROUTE_BAD_PATH);
    assert_int_equal(match(f, "GET", "/2015-03-31/functions/a%00b"), NB_ROUTE_BAD_PATH);
    /* anywhere in the path, even where no route could match */
    assert_int_equal(match(f, "GET", "/x%zz/y"), NB_ROUTE_BAD_PATH);
    assert_int_equal(match(f, "GET", "/2015-03-31/functions/ok%2f"), NB_ROUTE_OK);
    assert_string_equal(route_param(&f->m, "FunctionName"), "ok/");
}

static void test_greedy_and_order(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(match(f, "GET", "/buckets/b1/a/b%20c/d"), NB_ROUTE_OK);
    assert_ptr_equal(f->data, &tags[9]);
    assert_string_equal(route_param(&f->m, "Bucket"), "b1");
    assert_string_equal(route_param(&f->m, "Key"), "a/b c/d");
    assert_int_equal(match(f, "GET", "/buckets/b1/k"), NB_ROUTE_OK);
    assert_string_equal(route_param(&f->m, "Key"), "k");
    assert_int_equal(match(f, "GET", "/buckets/b1/"), NB_ROUTE_NOT_FOUND);
    assert_int_equal(match(f, "GET", "/buckets/b1"), NB_ROUTE_NOT_FOUND);
    assert_int_equal(match(f, "GET", "/buckets//k"), NB_ROUTE_NOT_FOUND);
    /* the first route added wins */
    assert_int_equal(match(f, "GET", "/dup/v"), NB_ROUTE_OK);
    assert_ptr_equal(f->data, &tags[10]);
    assert_string_equal(route_param(&f->m, "A"), "v");
    assert_null(route_param(&f->m, "B"));
}

static bool add_dies(const char *pattern)
{
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        struct nb_router *r = router_new();
        router_add(r, "GET", pattern, NULL, cb_a, NULL);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void test_bad_patterns(void **state)
{
    assert_true(add_dies("no-slash"));
    assert_true(add_dies("/a/x{B}"));
    assert_true(add_dies("/a/{}"));
    assert_true(add_dies("/{A}/{B}/{C}/{D}/{E}"));
    assert_true(add_dies("/{A+}/b"));
    assert_false(add_dies("/{A}/{B}/{C}/{D}"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_literal_and_label, setup, teardown),
        cmocka_unit_test_setup_teardown(test_labels_decoded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trailing_slash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_greedy_and_order, setup, teardown),
        cmocka_unit_test(test_bad_patterns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

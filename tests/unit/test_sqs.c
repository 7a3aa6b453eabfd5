/*
 * test_sqs.c - unit tests for the queue service without HTTP: operations through sqs_call (the
 * JSON shape both protocols decode to), the internal API for event source mappings (sqs_send with
 * its after-fsync callback, sqs_watch, sqs_receive_internal, sqs_delete_internal), the message
 * index under many sends, receives and deletes (hash with backward-shift deletion, heap), and
 * reopening the database: acknowledged messages and deletes survive, in-flight ones come back;
 * and authorization of a non-root caller through api_sqs.c's routes on real HTTP requests
 * (a socketpair served by http.c), with AccessDenied in each protocol's shape.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>

#include <poll.h>
#include <sys/socket.h>

#include "api.h"
#include "api_target.h"
#include "authz.h"
#include "daemon_fixture.h"
#include "http_internal.h"
#include "policy.h"
#include "router.h"
#include "sqs.h"

struct reply {
    bool done;
    json_t *out;
    struct nb_sqs_error e;
    bool failed;
};

static void on_reply(struct nb_sqs_call *c, json_t *out, const struct nb_sqs_error *e)
{
    struct reply *r = c->data;
    r->done = true;
    if (e) {
        r->failed = true;
        r->e = *e;
    } else {
        r->out = json_incref(out);
    }
}

/* Runs op with input in (consumed) until it replied; returns the output (new ref) or NULL. */
static json_t *call(struct nb_daemon *d, const char *op, json_t *in, struct nb_sqs_error *e)
{
    struct reply r = {0};
    struct nb_sqs_call c = {
        .op = op, .in = in, .url_base = "http://h:1", .reply = on_reply, .data = &r};
    sqs_call(d->sqs, &c);
    while (!r.done)
        uv_run(d->loop, UV_RUN_ONCE);
    json_decref(in);
    if (e)
        *e = r.e;
    return r.out;
}

static int sent, watched;
static char last_id[64];

static void on_sent(void *data, int status, const char *id)
{
    assert_int_equal(status, 0);
    snprintf(last_id, sizeof(last_id), "%s", id);
    sent++;
}

static void on_watch(void *data, const char *arn)
{
    assert_string_equal(arn, "arn:aws:sqs:us-east-1:000000000000:q");
    watched++;
}

static int deleted;
static void on_deleted(void *data, int status)
{
    assert_int_equal(status, 0);
    deleted++;
}

static void open_sqs(struct nb_daemon *d)
{
    struct nb_err err = {0};
    d->sqs = sqs_open(d, &err);
    if (!d->sqs)
        fail_msg("sqs_open: %s", err.msg);
}

static void close_sqs(struct nb_daemon *d)
{
    sqs_close(d->sqs);
    d->sqs = NULL;
    uv_run(d->loop, UV_RUN_DEFAULT); /* close callbacks */
}

/* d on its own loop with a fresh data folder (dir: a mkdtemp template) and the queue service open.
 */
static void sqs_setup(struct nb_daemon *d, uv_loop_t *loop, char *dir)
{
    fixture_daemon_init(d);
    uv_loop_init(loop);
    d->loop = loop;
    assert_non_null(mkdtemp(dir));
    free(d->cfg.data_dir);
    d->cfg.data_dir = xstrdup(dir);
    open_sqs(d);
}

/* Undoes sqs_setup: closes the queue service and the loop, removes dir. */
static void sqs_teardown(struct nb_daemon *d, uv_loop_t *loop, const char *dir)
{
    close_sqs(d);
    assert_int_equal(uv_loop_close(loop), 0);
    d->loop = NULL;
    rm_rf(dir);
    fixture_daemon_release(d);
}

static void test_internal_api_and_reopen(void **state)
{
    struct nb_daemon d;
    uv_loop_t loop;
    char dir[] = "/tmp/nimbus-test-sqs-XXXXXX";
    sqs_setup(&d, &loop, dir);

    const char *arn = "arn:aws:sqs:us-east-1:000000000000:q";
    struct nb_sqs_error e;
    json_t *out = call(&d, "CreateQueue", json_pack("{s:s}", "QueueName", "q"), NULL);
    assert_string_equal(json_string_value(json_object_get(out, "QueueUrl")),
                        "http://h:1/000000000000/q");
    json_decref(out);
    assert_null(call(&d, "GetQueueUrl", json_pack("{s:s}", "QueueName", "nope"), &e));
    assert_string_equal(e.code, "AWS.SimpleQueueService.NonExistentQueue");
    assert_string_equal(e.type, "QueueDoesNotExist");
    assert_int_equal(e.status, 400);
    assert_null(call(&d, "Nope", json_object(), &e));
    assert_string_equal(e.code, "InvalidAction");

    assert_int_equal(
        sqs_send(d.sqs, "arn:aws:sqs:us-east-1:000000000000:nope", "x", NULL, on_sent, NULL),
        -ENOENT);
    assert_int_equal(sqs_send(d.sqs, arn, "\x01", NULL, on_sent, NULL), -EINVAL);
    assert_int_equal(sqs_watch(d.sqs, arn, on_watch, NULL), 0);
    /* many messages: the hash grows, the heap takes in-flight ones */
    enum { N = 1000 };
    for (int i = 0; i < N; i++) {
        char body[32];
        snprintf(body, sizeof(body), "m%04d", i);
        assert_int_equal(sqs_send(d.sqs, arn, body, NULL, on_sent, NULL), 0);
    }
    while (sent < N)
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(watched >= 1); /* "the queue became non-empty" */
    assert_int_equal(strlen(last_id), 36);

    /* receive everything in tens; delete the even ones, leave the odd ones in flight */
    int got = 0, dels = 0;
    for (;;) {
        json_t *msgs = sqs_receive_internal(d.sqs, arn, 10, 300);
        assert_non_null(msgs);
        size_t n = json_array_size(msgs);
        for (size_t i = 0; i < n; i++) {
            json_t *m = json_array_get(msgs, i);
            const char *body = json_string_value(json_object_get(m, "Body"));
            int idx = atoi(body + 1);
            if (idx % 2 == 0) {
                assert_int_equal(
                    sqs_delete_internal(d.sqs, arn,
                                        json_string_value(json_object_get(m, "ReceiptHandle")),
                                        on_deleted, NULL),
                    0);
                dels++;
            }
        }
        got += (int)n;
        json_decref(msgs);
        if (!n)
            break;
    }
    assert_int_equal(got, N);
    while (deleted < dels)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(sqs_delete_internal(d.sqs, arn, "garbage", on_deleted, NULL), -EINVAL);
    out = call(&d, "GetQueueAttributes",
               json_pack("{s:s, s:[s]}", "QueueUrl", "q", "AttributeNames", "All"), NULL);
    json_t *a = json_object_get(out, "Attributes");
    assert_string_equal(json_string_value(json_object_get(a, "ApproximateNumberOfMessages")), "0");
    assert_string_equal(
        json_string_value(json_object_get(a, "ApproximateNumberOfMessagesNotVisible")), "500");
    json_decref(out);
    close_sqs(&d);

    /* reopen: the deletes held, the in-flight odd ones are still invisible (300 s) */
    open_sqs(&d);
    json_t *msgs = sqs_receive_internal(d.sqs, arn, 10, 300);
    assert_int_equal(json_array_size(msgs), 0);
    json_decref(msgs);
    out = call(&d, "GetQueueAttributes",
               json_pack("{s:s, s:[s]}", "QueueUrl", "q", "AttributeNames",
                         "ApproximateNumberOfMessagesNotVisible"),
               NULL);
    a = json_object_get(out, "Attributes");
    assert_string_equal(
        json_string_value(json_object_get(a, "ApproximateNumberOfMessagesNotVisible")), "500");
    json_decref(out);
    json_decref(call(&d, "PurgeQueue", json_pack("{s:s}", "QueueUrl", "q"), NULL));
    json_decref(call(&d, "DeleteQueue", json_pack("{s:s}", "QueueUrl", "q"), NULL));
    close_sqs(&d);
    open_sqs(&d);
    assert_null(sqs_receive_internal(d.sqs, arn, 1, -1));
    sqs_teardown(&d, &loop, dir);
}

static struct nb_router *router;
static const struct nb_caller *caller;

/* Like api_handle, with the test's caller instead of the root key. */
static void handler(struct nb_http_req *req, void *data)
{
    nb_route_cb cb;
    void *cb_data;
    struct nb_route_match m;
    assert_int_equal(router_match(router, req, &cb, &cb_data, &m), NB_ROUTE_OK);
    if (!strcmp(m.action, API_TARGET_ACTION)) /* POST /: by X-Amz-Target, as api.c does */
        assert_non_null(cb = api_target_select(req, &m));
    m.caller = caller;
    cb(req, &m, cb_data);
}

/* One request over a fresh socketpair; the reply's status, and head + body into out. */
static int http_call(struct nb_http_server *srv, uv_loop_t *loop, const char *headers,
                     const char *body, struct nb_buf *out)
{
    int sv[2];
    struct nb_err err = {0};
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(http__serve_fd(srv, sv[0], &err), 0);
    _cleanup_free_ char *req =
        xasprintf("POST / HTTP/1.1\r\nHost: h:1\r\nConnection: close\r\n%sContent-Length: "
                  "%zu\r\n\r\n%s",
                  headers, strlen(body), body);
    assert_int_equal(write(sv[1], req, strlen(req)), (ssize_t)strlen(req));
    uint64_t deadline = mono_ns() + 5000000000ull;
    for (;;) {
        uv_run(loop, UV_RUN_NOWAIT);
        char chunk[4096];
        ssize_t n = read(sv[1], chunk, sizeof(chunk));
        if (n > 0)
            buf_append(out, chunk, (size_t)n);
        if (n == 0)
            break;
        assert_true(mono_ns() < deadline);
        if (n < 0)
            poll(NULL, 0, 1);
    }
    close(sv[1]);
    for (int i = 0; i < 10; i++)
        uv_run(loop, UV_RUN_NOWAIT);
    int status = 0;
    assert_int_equal(sscanf(out->data, "HTTP/1.1 %d", &status), 1);
    return status;
}

static void on_closed(void *data)
{
    *(bool *)data = true;
}

static void test_access_denied_both_protocols(void **state)
{
    struct nb_daemon d;
    uv_loop_t loop;
    char dir[] = "/tmp/nimbus-test-sqs-XXXXXX";
    sqs_setup(&d, &loop, dir);
    json_decref(call(&d, "CreateQueue", json_pack("{s:s}", "QueueName", "q"), NULL));
    router = router_new();
    api_target_routes(router, &d);
    api_sqs_routes(router, &d);
    struct nb_http_limits lim;
    http_limits_default(&lim);
    struct nb_http_server *srv = http_server_new(&loop, &lim, handler, &d);
    static const struct nb_caller sender = {
        .key_id = "AKIASENDER",
        .policy = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
                  "\"Action\":\"sqs:SendMessage\",\"Resource\":"
                  "\"arn:aws:sqs:us-east-1:000000000000:q\"}]}",
    };
    caller = &sender;
    const char *form = "Content-Type: application/x-www-form-urlencoded\r\n";
    struct nb_buf b = NB_BUF_INIT;
    /* allowed: SendMessage on q */
    assert_int_equal(http_call(srv, &loop, form,
                               "Action=SendMessage&QueueUrl=http%3A%2F%2Fh%3A1%2F000000000000%2Fq"
                               "&MessageBody=hi",
                               &b),
                     200);
    assert_non_null(strstr(b.data, "<MD5OfMessageBody>49f68a5c8493ec2c0bf489821c21fc3b<"));
    buf_reset(&b);
    /* denied: ReceiveMessage (query: 403 XML AccessDenied) */
    assert_int_equal(http_call(srv, &loop, form, "Action=ReceiveMessage&QueueUrl=q", &b), 403);
    assert_non_null(strstr(b.data, "<Code>AccessDenied</Code>"));
    assert_non_null(strstr(b.data, "sqs:ReceiveMessage"));
    buf_reset(&b);
    /* denied: SendMessage to another queue (JSON: __type AccessDeniedException) */
    assert_int_equal(http_call(srv, &loop,
                               "Content-Type: application/x-amz-json-1.0\r\nX-Amz-Target: "
                               "AmazonSQS.SendMessage\r\n",
                               "{\"QueueUrl\":\"http://h:1/000000000000/other\","
                               "\"MessageBody\":\"x\"}",
                               &b),
                     403);
    assert_non_null(strstr(b.data, "\"__type\":\"AccessDeniedException\""));
    assert_non_null(strcasestr(b.data, "x-amzn-query-error: AccessDenied;Sender"));
    buf_reset(&b);
    /* a malformed body is refused before authorization, in SQS's shape */
    assert_int_equal(http_call(srv, &loop, form, "Action=SendMessage&QueueUrl=%zz", &b), 400);
    assert_non_null(strstr(b.data, "<Code>InvalidParameterValue</Code>"));
    buf_release(&b);
    json_t *msgs = sqs_receive_internal(d.sqs, "arn:aws:sqs:us-east-1:000000000000:q", 10, 30);
    assert_int_equal(json_array_size(msgs), 1);
    json_decref(msgs);

    bool closed = false;
    http_server_close(srv, on_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    router_free(router);
    policy_cache_clear();
    sqs_teardown(&d, &loop, dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_internal_api_and_reopen),
        cmocka_unit_test(test_access_denied_both_protocols),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

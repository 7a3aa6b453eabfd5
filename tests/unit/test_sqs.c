/*
 * test_sqs.c - unit tests for the queue service without HTTP: operations through sqs_call (the
 * JSON shape both protocols decode to), the internal API for event source mappings (sqs_send with
 * its after-fsync callback, sqs_watch, sqs_receive_internal, sqs_delete_internal), the message
 * index under many sends, receives and deletes (hash with backward-shift deletion, heap), and
 * reopening the database: acknowledged messages and deletes survive, in-flight ones come back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>

#include "daemon_fixture.h"
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

static void test_internal_api_and_reopen(void **state)
{
    struct nb_daemon d;
    fixture_daemon_init(&d);
    uv_loop_t loop;
    uv_loop_init(&loop);
    d.loop = &loop;
    char dir[] = "/tmp/nimbus-test-sqs-XXXXXX";
    assert_non_null(mkdtemp(dir));
    free(d.cfg.data_dir);
    d.cfg.data_dir = xstrdup(dir);
    open_sqs(&d);

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
    close_sqs(&d);

    assert_int_equal(uv_loop_close(&loop), 0);
    d.loop = NULL;
    rm_rf(dir);
    fixture_daemon_release(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_internal_api_and_reopen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

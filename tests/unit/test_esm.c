/*
 * test_esm.c - esm.c's pure parts: the ReportBatchItemFailures response rules (Lambda's success
 * and failure conditions: empty/null response or list = success; not JSON, a list that is not a
 * list, an itemIdentifier null, empty or unknown = the whole batch failed) and the stored
 * mapping record round trip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "esm.h"
#include "util.h"

static json_t *batch(void)
{
    return json_pack("[{s:s}, {s:s}, {s:s}]", "MessageId", "a", "MessageId", "b", "MessageId", "c");
}

/* Returns 1 + number of failed ids when accepted, 0 when malformed. */
static int parse(const char *s)
{
    json_t *msgs = batch(), *failed = NULL;
    bool ok = esm_batch_failures(s, strlen(s), msgs, &failed);
    int n = ok ? 1 + (int)json_array_size(failed) : 0;
    json_decref(failed);
    json_decref(msgs);
    return n;
}

static void test_success_shapes(void **state)
{
    (void)state;
    assert_int_equal(parse(""), 1);
    assert_int_equal(parse("null"), 1);
    assert_int_equal(parse("{}"), 1);
    assert_int_equal(parse("{\"batchItemFailures\":null}"), 1);
    assert_int_equal(parse("{\"batchItemFailures\":[]}"), 1);
}

static void test_partial(void **state)
{
    (void)state;
    assert_int_equal(parse("{\"batchItemFailures\":[{\"itemIdentifier\":\"b\"}]}"), 2);
    assert_int_equal(parse("{\"batchItemFailures\":[{\"itemIdentifier\":\"a\"},"
                           "{\"itemIdentifier\":\"c\"}]}"),
                     3);
}

static void test_malformed_fails_whole_batch(void **state)
{
    (void)state;
    assert_int_equal(parse("not json"), 0);
    assert_int_equal(parse("\"ok\""), 0);
    assert_int_equal(parse("{\"batchItemFailures\":\"b\"}"), 0);
    assert_int_equal(parse("{\"batchItemFailures\":[{\"itemIdentifier\":\"\"}]}"), 0);
    assert_int_equal(parse("{\"batchItemFailures\":[{\"itemIdentifier\":null}]}"), 0);
    assert_int_equal(parse("{\"batchItemFailures\":[{\"itemIdentifier\":\"zz\"}]}"), 0);
    assert_int_equal(parse("{\"batchItemFailures\":[{\"id\":\"a\"}]}"), 0);
}

static void test_record_round_trip(void **state)
{
    (void)state;
    struct nb_esm m = {.batch_size = 100,
                       .window_s = 5,
                       .max_conc = 7,
                       .report_failures = true,
                       .enabled = false,
                       .last_modified = 1700000000.25};
    snprintf(m.uuid, sizeof(m.uuid), "%s", "11111111-2222-4333-8444-555555555555");
    m.queue_arn = "arn:aws:sqs:us-east-1:000000000000:q";
    m.function = "f";
    m.qualifier = "live";
    json_t *rec = esm_record(&m);
    char *s = json_dumps(rec, JSON_COMPACT);
    struct nb_esm *r = esm_from_record("f", m.uuid, s);
    assert_non_null(r);
    assert_string_equal(r->queue_arn, m.queue_arn);
    assert_string_equal(r->qualifier, "live");
    assert_int_equal(r->batch_size, 100);
    assert_int_equal(r->window_s, 5);
    assert_int_equal(r->max_conc, 7);
    assert_true(r->report_failures);
    assert_false(r->enabled);
    assert_true(r->last_modified == m.last_modified);
    esm_release(r);
    free(s);
    json_decref(rec);
    assert_null(esm_from_record("f", m.uuid, "{}"));
    assert_null(esm_from_record("f", m.uuid, "not json"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success_shapes),
        cmocka_unit_test(test_partial),
        cmocka_unit_test(test_malformed_fails_whole_batch),
        cmocka_unit_test(test_record_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

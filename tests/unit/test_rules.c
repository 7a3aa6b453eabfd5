/*
 * test_rules.c - unit tests for rules.c (PutRule and PutTargets validation, the since/anchor
 * rules, the stored record, the JSON shapes) and the pure parts of scheduler.c (the Scheduled
 * Event, deterministic event ids). Times are fixed: no clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>

#include "rules.h"
#include "scheduler.h"

#define REGION "us-east-1"
#define ACCOUNT "000000000000"
#define NOW 1795711373 /* Thursday 2026-11-26 16:42:53 UTC */
#define MINUTE 1795711320

static int put(const char *json, const struct nb_rule *cur, int64_t now, struct nb_rule **out,
               struct nb_err *err)
{
    json_t *body = json_loads(json, 0, NULL);
    assert_non_null(body);
    int rc = rules_parse_put(body, cur, now, out, err);
    json_decref(body);
    return rc;
}

static void test_names(void **state)
{
    (void)state;
    assert_true(rules_name_valid("a"));
    assert_true(rules_name_valid("My.rule-1_x"));
    assert_false(rules_name_valid(""));
    assert_false(rules_name_valid("has space"));
    assert_false(rules_name_valid("slash/no"));
    char long_name[66];
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    assert_false(rules_name_valid(long_name));
    long_name[64] = '\0';
    assert_true(rules_name_valid(long_name));
    char *arn = rules_arn(REGION, ACCOUNT, "r");
    assert_string_equal(arn, "arn:aws:events:us-east-1:000000000000:rule/r");
    free(arn);
}

static void test_put_rule(void **state)
{
    (void)state;
    struct nb_err err = {0};
    struct nb_rule *r = NULL;
    assert_int_equal(put("{\"Name\":\"r\",\"ScheduleExpression\":\"rate(5 minutes)\","
                         "\"Description\":\"d\"}",
                         NULL, NOW, &r, &err),
                     0);
    assert_true(r->enabled);
    assert_int_equal(r->since_s, MINUTE);
    assert_int_equal(r->sched.anchor_s, MINUTE);
    assert_int_equal(r->created_s, NOW);
    assert_string_equal(r->description, "d");
    /* same expression later: the phase is kept */
    struct nb_rule *r2 = NULL;
    assert_int_equal(put("{\"Name\":\"r\",\"ScheduleExpression\":\"rate(5 minutes)\"}", r,
                         NOW + 1000, &r2, &err),
                     0);
    assert_int_equal(r2->since_s, MINUTE);
    assert_int_equal(r2->created_s, NOW);
    assert_null(r2->description);
    rule_free(r2);
    /* a new expression restarts at the minute of the change */
    assert_int_equal(put("{\"Name\":\"r\",\"ScheduleExpression\":\"rate(10 minutes)\"}", r,
                         NOW + 1000, &r2, &err),
                     0);
    assert_int_equal(r2->since_s, (NOW + 1000) / 60 * 60);
    rule_free(r2);
    /* disabled, then enabled by a PutRule: restarts */
    struct nb_rule *dis = NULL;
    assert_int_equal(put("{\"Name\":\"r\",\"ScheduleExpression\":\"rate(5 minutes)\","
                         "\"State\":\"DISABLED\"}",
                         r, NOW, &dis, &err),
                     0);
    assert_false(dis->enabled);
    assert_int_equal(put("{\"Name\":\"r\",\"ScheduleExpression\":\"rate(5 minutes)\"}", dis,
                         NOW + 600, &r2, &err),
                     0);
    assert_true(r2->enabled);
    assert_int_equal(r2->since_s, (NOW + 600) / 60 * 60);
    rule_free(r2);
    rule_free(dis);
    rule_free(r);
}

static void test_put_rule_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{}",
        "{\"Name\":\"r\"}",
        "{\"Name\":\"bad name\",\"ScheduleExpression\":\"rate(1 day)\"}",
        "{\"Name\":\"r\",\"ScheduleExpression\":\"rate(1 days)\"}",
        "{\"Name\":\"r\",\"ScheduleExpression\":\"cron(0 12 * * * *)\"}",
        "{\"Name\":\"r\",\"ScheduleExpression\":5}",
        "{\"Name\":\"r\",\"ScheduleExpression\":\"rate(1 day)\",\"State\":\"ON\"}",
        "{\"Name\":\"r\",\"EventPattern\":\"{}\"}",
        "{\"Name\":\"r\",\"ScheduleExpression\":\"rate(1 day)\",\"EventBusName\":\"other\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct nb_err err = {0};
        struct nb_rule *r = NULL;
        assert_int_equal(put(bad[i], NULL, NOW, &r, &err), -EINVAL);
        assert_null(r);
    }
    struct nb_err err = {0};
    struct nb_rule *r = NULL;
    assert_int_equal(
        put("{\"Name\":\"r\",\"ScheduleExpression\":\"rate(0 minutes)\"}", NULL, NOW, &r, &err),
        -EINVAL);
    assert_string_equal(err.msg, "Parameter ScheduleExpression is not valid.");
}

static int target(const char *json, struct nb_rule_target *t, const char **code, struct nb_err *err)
{
    json_t *e = json_loads(json, 0, NULL);
    assert_non_null(e);
    int rc = rules_parse_target(e, REGION, ACCOUNT, NOW, t, code, err);
    json_decref(e);
    return rc;
}

static void test_targets(void **state)
{
    (void)state;
    struct nb_err err = {0};
    struct nb_rule_target t;
    const char *code;
    assert_int_equal(target("{\"Id\":\"a\",\"Arn\":\"arn:aws:lambda:us-east-1:000000000000:"
                            "function:f:live\",\"Input\":\"{\\\"k\\\":1}\"}",
                            &t, &code, &err),
                     0);
    assert_string_equal(t.function, "f");
    assert_string_equal(t.qualifier, "live");
    assert_string_equal(t.input, "{\"k\":1}");
    assert_int_equal(t.added_s, NOW);
    rule_target_release(&t);
    /* entry-level failures (FailedEntries) */
    static const char *const failed[] = {
        "{\"Id\":\"a\",\"Arn\":\"arn:aws:sqs:us-east-1:000000000000:q\"}",
        "{\"Id\":\"a\",\"Arn\":\"arn:aws:lambda:eu-west-1:000000000000:function:f\"}",
        "{\"Id\":\"a\",\"Arn\":\"arn:aws:lambda:us-east-1:000000000000:function:f\","
        "\"InputPath\":\"$.detail\"}",
        "{\"Id\":\"a\",\"Arn\":\"arn:aws:lambda:us-east-1:000000000000:function:f\","
        "\"Input\":\"{nope\"}",
    };
    for (size_t i = 0; i < sizeof(failed) / sizeof(failed[0]); i++) {
        assert_int_equal(target(failed[i], &t, &code, &err), -EINVAL);
        assert_string_equal(code, "ValidationException");
    }
    /* request-level failures */
    assert_int_equal(target("{\"Id\":\"bad id\",\"Arn\":\"x\"}", &t, &code, &err), -E2BIG);
    assert_int_equal(target("{\"Id\":\"a\"}", &t, &code, &err), -E2BIG);
    assert_int_equal(target("{\"Id\":7,\"Arn\":\"x\"}", &t, &code, &err), -E2BIG);
}

static void test_record_round_trip(void **state)
{
    (void)state;
    struct nb_err err = {0};
    struct nb_rule *r = NULL;
    assert_int_equal(put("{\"Name\":\"r\",\"ScheduleExpression\":\"cron(0 12 * * ? *)\","
                         "\"Description\":\"noon\",\"State\":\"DISABLED\"}",
                         NULL, NOW, &r, &err),
                     0);
    const char *code;
    r->targets = calloc(1, sizeof(*r->targets));
    assert_int_equal(target("{\"Id\":\"a\",\"Arn\":\"arn:aws:lambda:us-east-1:000000000000:"
                            "function:f\",\"Input\":\"[1]\"}",
                            &r->targets[0], &code, &err),
                     0);
    r->n_targets = 1;
    char *doc = rule_record(r);
    struct nb_rule *back = rule_from_record("r", doc, &err);
    assert_non_null(back);
    assert_string_equal(back->expr, r->expr);
    assert_string_equal(back->description, "noon");
    assert_false(back->enabled);
    assert_int_equal(back->since_s, r->since_s);
    assert_int_equal(back->created_s, r->created_s);
    assert_int_equal(back->n_targets, 1);
    assert_string_equal(back->targets[0].function, "f");
    assert_null(back->targets[0].qualifier);
    assert_string_equal(back->targets[0].input, "[1]");
    assert_int_equal(back->targets[0].added_s, NOW);
    json_t *j = rule_json(back, REGION, ACCOUNT, true);
    assert_string_equal(json_string_value(json_object_get(j, "State")), "DISABLED");
    assert_string_equal(json_string_value(json_object_get(j, "Arn")),
                        "arn:aws:events:us-east-1:000000000000:rule/r");
    json_decref(j);
    free(doc);
    rule_free(back);
    rule_free(r);
    assert_null(rule_from_record("r", "{\"ScheduleExpression\":1}", &err));
    assert_null(rule_from_record("r", "not json", &err));
}

static void test_table(void **state)
{
    (void)state;
    struct nb_rules t = {0};
    const char *names[] = {"m", "a", "z", "b"};
    for (size_t i = 0; i < 4; i++) {
        struct nb_rule *r = calloc(1, sizeof(*r));
        r->name = strdup(names[i]);
        r->expr = strdup("rate(1 day)");
        rules_insert(&t, r);
    }
    const char *want[] = {"a", "b", "m", "z"};
    size_t i = 0;
    for (struct nb_rule *r = t.head; r; r = r->next)
        assert_string_equal(r->name, want[i++]);
    assert_non_null(rules_find(&t, "m"));
    rules_remove(&t, "m");
    assert_null(rules_find(&t, "m"));
    assert_int_equal(t.n, 3);
    rules_release(&t);
    assert_null(t.head);
}

static void test_scheduled_event(void **state)
{
    (void)state;
    char id[37], id2[37];
    const char *arn = "arn:aws:events:us-east-1:000000000000:rule/r";
    scheduler_event_id(arn, "t", MINUTE, id);
    scheduler_event_id(arn, "t", MINUTE, id2);
    assert_string_equal(id, id2);
    assert_int_equal(strlen(id), 36);
    assert_int_equal(id[14], '5');
    scheduler_event_id(arn, "t", MINUTE + 60, id2);
    assert_string_not_equal(id, id2);
    scheduler_event_id(arn, "u", MINUTE, id2);
    assert_string_not_equal(id, id2);
    char *ev = scheduler_event_json(REGION, ACCOUNT, arn, id, MINUTE);
    json_t *j = json_loads(ev, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "time")), "2026-11-26T16:42:00Z");
    assert_string_equal(json_string_value(json_object_get(j, "detail-type")), "Scheduled Event");
    assert_string_equal(json_string_value(json_object_get(j, "source")), "aws.events");
    assert_string_equal(json_string_value(json_object_get(j, "version")), "0");
    assert_string_equal(json_string_value(json_object_get(j, "id")), id);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "resources"), 0)), arn);
    assert_int_equal(json_object_size(json_object_get(j, "detail")), 0);
    assert_int_equal(json_object_size(j), 9);
    json_decref(j);
    free(ev);
}

/* The tick logic on a fake clock: a new rule, a target added later, after a fire, downtime. */
static void test_due(void **state)
{
    (void)state;
    struct nb_err err = {0};
    struct nb_rule *r = NULL;
    /* created 16:42:53 -> since 16:42:00; rate(5 minutes) ticks at 16:47, 16:52, ... */
    assert_int_equal(
        put("{\"Name\":\"r\",\"ScheduleExpression\":\"rate(5 minutes)\"}", NULL, NOW, &r, &err), 0);
    struct nb_rule_target t = {.added_s = NOW};
    int64_t latest = 0;
    assert_int_equal(scheduler_due(r, &t, NOW, &latest), 0);
    assert_int_equal(scheduler_due(r, &t, MINUTE + 299, &latest), 0);
    assert_int_equal(scheduler_due(r, &t, MINUTE + 300, &latest), 1);
    assert_int_equal(latest, MINUTE + 300);
    t.last_s = latest; /* fired */
    assert_int_equal(scheduler_due(r, &t, MINUTE + 300, &latest), 0);
    assert_int_equal(scheduler_due(r, &t, MINUTE + 599, &latest), 0);
    /* down for an hour: 12 ticks missed, the latest is the one to fire */
    assert_int_equal(scheduler_due(r, &t, MINUTE + 300 + 3600 + 30, &latest), 12);
    assert_int_equal(latest, MINUTE + 300 + 3600);
    /* a target added after a tick never fires that tick */
    struct nb_rule_target late = {.added_s = MINUTE + 301};
    assert_int_equal(scheduler_due(r, &late, MINUTE + 301, &latest), 0);
    assert_int_equal(scheduler_due(r, &late, MINUTE + 600, &latest), 1);
    assert_int_equal(latest, MINUTE + 600);
    rule_free(r);
    /* cron every minute: the creation minute itself does not fire */
    assert_int_equal(put("{\"Name\":\"c\",\"ScheduleExpression\":\"cron(* * * * ? *)\"}", NULL,
                         MINUTE, &r, &err),
                     0);
    struct nb_rule_target c = {.added_s = MINUTE};
    assert_int_equal(scheduler_due(r, &c, MINUTE + 59, &latest), 0);
    assert_int_equal(scheduler_due(r, &c, MINUTE + 60, &latest), 1);
    rule_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_put_rule),
        cmocka_unit_test(test_put_rule_errors),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_record_round_trip),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_scheduled_event),
        cmocka_unit_test(test_due),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

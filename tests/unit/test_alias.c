/*
 * test_alias.c - unit tests for alias.c (validation, routing, rollback history, records, the
 * weighted choice) and for function.c's version snapshots (function_publish,
 * function_same_content, version records, qualified FunctionArn).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <math.h>

#include "alias.h"
#include "function.h"

#define FN_ARN "arn:aws:lambda:us-east-1:000000000000:function:f"

/* Versions 1..3 and $LATEST exist. */
static bool exists(void *data, const char *v)
{
    (void)data;
    return !strcmp(v, "$LATEST") || !strcmp(v, "1") || !strcmp(v, "2") || !strcmp(v, "3");
}

static struct nb_alias *create(const char *json, struct nb_err *err)
{
    json_t *req = json_loads(json, 0, NULL);
    assert_non_null(req);
    struct nb_alias *a = alias_create(FN_ARN, req, exists, NULL, err);
    json_decref(req);
    return a;
}

static struct nb_alias *update(const struct nb_alias *cur, const char *json, struct nb_err *err)
{
    json_t *req = json_loads(json, 0, NULL);
    assert_non_null(req);
    struct nb_alias *a = alias_update(cur, req, exists, NULL, err);
    json_decref(req);
    return a;
}

static void test_names(void **state)
{
    (void)state;
    assert_true(alias_name_valid("prod"));
    assert_true(alias_name_valid("v2-canary_1"));
    assert_true(alias_name_valid("1a"));
    assert_false(alias_name_valid("123"));
    assert_false(alias_name_valid(""));
    assert_false(alias_name_valid("$LATEST"));
    assert_false(alias_name_valid("a:b"));
    char long_name[130];
    memset(long_name, 'a', 129);
    long_name[129] = '\0';
    assert_false(alias_name_valid(long_name));
    long_name[128] = '\0';
    assert_true(alias_name_valid(long_name));
}

static void test_create_and_errors(void **state)
{
    (void)state;
    struct nb_err err = {0};
    struct nb_alias *a =
        create("{\"Name\":\"live\",\"FunctionVersion\":\"1\",\"Description\":\"d\","
               "\"RoutingConfig\":{\"AdditionalVersionWeights\":{\"2\":0.25}}}",
               &err);
    assert_non_null(a);
    assert_string_equal(a->arn, FN_ARN ":live");
    assert_string_equal(a->to.version, "1");
    assert_string_equal(a->to.extra, "2");
    assert_true(a->to.weight == 0.25);
    assert_false(a->has_prev);
    json_t *j = alias_json(a);
    assert_true(json_real_value(json_object_get(json_object_get(json_object_get(j, "RoutingConfig"),
                                                                "AdditionalVersionWeights"),
                                                "2")) == 0.25);
    json_decref(j);
    alias_free(a);

    struct {
        const char *json;
        int code;
    } bad[] = {
        {"{\"FunctionVersion\":\"1\"}", EINVAL},
        {"{\"Name\":\"x\"}", EINVAL},
        {"{\"Name\":\"12\",\"FunctionVersion\":\"1\"}", EINVAL},
        {"{\"Name\":\"x\",\"FunctionVersion\":\"01\"}", EINVAL},
        {"{\"Name\":\"x\",\"FunctionVersion\":\"9\"}", ENOENT},
        {"{\"Name\":\"x\",\"FunctionVersion\":\"1\",\"RoutingConfig\":"
         "{\"AdditionalVersionWeights\":{\"1\":0.5}}}",
         EINVAL},
        {"{\"Name\":\"x\",\"FunctionVersion\":\"$LATEST\",\"RoutingConfig\":"
         "{\"AdditionalVersionWeights\":{\"1\":0.5}}}",
         EINVAL},
        {"{\"Name\":\"x\",\"FunctionVersion\":\"1\",\"RoutingConfig\":"
         "{\"AdditionalVersionWeights\":{\"2\":1.01}}}",
         EINVAL},
        {"{\"Name\":\"x\",\"FunctionVersion\":\"1\",\"RoutingConfig\":"
         "{\"AdditionalVersionWeights\":{\"2\":0.1,\"3\":0.1}}}",
         EINVAL},
        {"{\"Name\":\"x\",\"FunctionVersion\":\"1\",\"RoutingConfig\":"
         "{\"AdditionalVersionWeights\":{\"8\":0.1}}}",
         ENOENT},
        {"{\"Name\":\"x\",\"FunctionVersion\":1}", EINVAL},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        err_clear(&err);
        a = create(bad[i].json, &err);
        if (a)
            fail_msg("accepted %s", bad[i].json);
        assert_int_equal(err.code, bad[i].code);
    }
}

static void test_update_and_rollback(void **state)
{
    (void)state;
    struct nb_err err = {0};
    struct nb_alias *a = create("{\"Name\":\"live\",\"FunctionVersion\":\"1\"}", &err);
    assert_null(alias_rollback(a, exists, NULL, &err)); /* no history */
    assert_int_equal(err.code, EEXIST);

    /* a description-only change is not a change of target */
    struct nb_alias *b = update(a, "{\"Description\":\"x\"}", &err);
    assert_false(b->has_prev);
    assert_string_not_equal(a->revision_id, b->revision_id);

    /* canary on version 1, then roll it back: all traffic to 1 again */
    struct nb_alias *c =
        update(b, "{\"RoutingConfig\":{\"AdditionalVersionWeights\":{\"2\":0.1}}}", &err);
    assert_non_null(c);
    assert_true(c->has_prev);
    assert_string_equal(c->prev.version, "1");
    assert_null(c->prev.extra);
    assert_string_equal(c->description, "x");
    struct nb_alias *d = alias_rollback(c, exists, NULL, &err);
    assert_non_null(d);
    assert_string_equal(d->to.version, "1");
    assert_null(d->to.extra);
    /* a second rollback restores the canary */
    struct nb_alias *e = alias_rollback(d, exists, NULL, &err);
    assert_string_equal(e->to.extra, "2");

    /* promotion to 2 keeps no routing that names 2; an empty map clears routing */
    struct nb_alias *f = update(e, "{\"FunctionVersion\":\"2\"}", &err);
    assert_non_null(f);
    assert_string_equal(f->to.version, "2");
    assert_null(f->to.extra);
    struct nb_alias *g = update(
        f, "{\"FunctionVersion\":\"3\",\"RoutingConfig\":{\"AdditionalVersionWeights\":{}}}", &err);
    assert_null(g->to.extra);
    assert_true(alias_uses_version(g, "3"));
    assert_false(alias_uses_version(g, "2"));
    assert_null(update(g,
                       "{\"FunctionVersion\":\"$LATEST\",\"RoutingConfig\":"
                       "{\"AdditionalVersionWeights\":{\"1\":0.5}}}",
                       &err));

    struct nb_alias *all[] = {a, b, c, d, e, f, g};
    for (size_t i = 0; i < ARRAY_SIZE(all); i++)
        alias_free(all[i]);
}

static void test_record_round_trip(void **state)
{
    (void)state;
    struct nb_err err = {0};
    struct nb_alias *a = create("{\"Name\":\"live\",\"FunctionVersion\":\"1\",\"RoutingConfig\":"
                                "{\"AdditionalVersionWeights\":{\"2\":0.3}}}",
                                &err);
    struct nb_alias *b = update(a, "{\"FunctionVersion\":\"3\",\"Description\":\"d\"}", &err);
    char *rec = alias_to_record(b);
    struct nb_alias *back = alias_from_record(FN_ARN, rec, &err);
    assert_non_null(back);
    char *rec2 = alias_to_record(back);
    assert_string_equal(rec, rec2);
    assert_string_equal(back->arn, FN_ARN ":live");
    assert_true(back->has_prev);
    assert_string_equal(back->prev.extra, "2");
    assert_null(alias_from_record(FN_ARN, "{\"name\":\"x\"}", &err));
    assert_null(alias_from_record(FN_ARN, "not json", &err));
    free(rec);
    free(rec2);
    alias_free(a);
    alias_free(b);
    alias_free(back);
}

static void test_pick(void **state)
{
    (void)state;
    struct nb_err err = {0};
    struct nb_alias *a = create("{\"Name\":\"c\",\"FunctionVersion\":\"1\",\"RoutingConfig\":"
                                "{\"AdditionalVersionWeights\":{\"2\":0.1}}}",
                                &err);
    assert_string_equal(alias_pick(a, 0.0), "2");
    assert_string_equal(alias_pick(a, 0.0999), "2");
    assert_string_equal(alias_pick(a, 0.1), "1");
    assert_string_equal(alias_pick(a, 0.999), "1");
    /* the random source: uniform in [0,1), the split within 5 sigma over 100,000 draws */
    int n = 100000, hits = 0;
    for (int i = 0; i < n; i++) {
        double u = alias_random();
        assert_true(u >= 0.0 && u < 1.0);
        hits += !strcmp(alias_pick(a, u), "2");
    }
    double sigma = sqrt(n * 0.1 * 0.9);
    assert_true(fabs(hits - n * 0.1) < 5 * sigma);
    alias_free(a);
}

static void test_function_versions(void **state)
{
    (void)state;
    struct nb_function_ctx ctx = {"us-east-1", "000000000000"};
    const char *hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const char *b64 = "ASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4mrze8=";
    json_t *req = json_loads("{\"FunctionName\":\"f\",\"Runtime\":\"python3.11\",\"Handler\":"
                             "\"a.h\",\"Role\":\"arn:aws:iam::000000000000:role/r\","
                             "\"Description\":\"latest\"}",
                             0, NULL);
    struct nb_err err = {0};
    struct nb_function *latest = function_new(&ctx, req, hex, b64, 10, &err);
    assert_non_null(latest);
    struct nb_function *v7 = function_publish(latest, 7, NULL);
    assert_string_equal(v7->version, "7");
    assert_string_equal(v7->arn, FN_ARN ":7");
    assert_string_equal(v7->description, "latest");
    assert_string_not_equal(v7->revision_id, latest->revision_id);
    assert_true(function_same_content(latest, v7));
    struct nb_function *v8 = function_publish(latest, 8, "eight");
    assert_string_equal(v8->description, "eight");

    json_t *j = function_config_json(v7);
    assert_string_equal(json_string_value(json_object_get(j, "FunctionArn")), FN_ARN ":7");
    json_decref(j);
    j = function_config_json_qualified(v7, "live");
    assert_string_equal(json_string_value(json_object_get(j, "FunctionArn")), FN_ARN ":live");
    assert_string_equal(json_string_value(json_object_get(j, "Version")), "7");
    json_decref(j);

    char *rec = function_to_record(v7);
    struct nb_function *back = function_from_record(&ctx, rec, &err);
    assert_non_null(back);
    assert_string_equal(back->arn, FN_ARN ":7");
    free(rec);

    json_t *up = json_loads("{\"MemorySize\":256}", 0, NULL);
    struct nb_function *changed = function_update_config(latest, up, &err);
    assert_false(function_same_content(changed, v7));

    json_decref(up);
    json_decref(req);
    function_unref(changed);
    function_unref(back);
    function_unref(v8);
    function_unref(v7);
    function_unref(latest);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_create_and_errors),
        cmocka_unit_test(test_update_and_rollback),
        cmocka_unit_test(test_record_round_trip),
        cmocka_unit_test(test_pick),
        cmocka_unit_test(test_function_versions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

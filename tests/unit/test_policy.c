/*
 * test_policy.c - IAM-style policies: parsing (strings vs arrays, malformed documents and their
 * messages, Condition/Principal refused), wildcard matching of actions (case-insensitive) and
 * resources (ArnLike segments, qualifiers), NotAction/NotResource, deny over allow, the cache.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>

#include "policy.h"

#define FN "arn:aws:lambda:us-east-1:000000000000:function:"

static enum nb_policy_decision eval(const char *json, const char *action, const char *resource)
{
    struct nb_err err = {0};
    struct nb_policy *p = policy_parse(json, &err);
    if (!p)
        fail_msg("policy did not parse: %s\n%s", err.msg, json);
    enum nb_policy_decision d = policy_evaluate(p, action, resource);
    policy_free(p);
    return d;
}

/* Asserts json is refused and the message contains want. */
static void refused(const char *json, const char *want)
{
    struct nb_err err = {0};
    assert_null(policy_parse(json, &err));
    assert_int_equal(err.code, EINVAL);
    if (!strstr(err.msg, want))
        fail_msg("message '%s' lacks '%s'", err.msg, want);
    assert_int_equal(policy_validate(json, NULL), -EINVAL);
}

static void test_glob(void **state)
{
    assert_true(policy_glob("*", "", false));
    assert_true(policy_glob("*", "anything:at/all", false));
    assert_true(policy_glob("lambda:Invoke*", "lambda:InvokeFunction", false));
    assert_true(policy_glob("lambda:Invoke*", "lambda:Invoke", false));
    assert_false(policy_glob("lambda:Invoke*", "lambda:GetFunction", false));
    assert_true(policy_glob("a?c", "abc", false));
    assert_false(policy_glob("a?c", "ac", false));
    assert_true(policy_glob("*a*b*c", "xxaxxbxxc", false));
    assert_false(policy_glob("*a*b*c", "xxaxxbxx", false));
    assert_true(policy_glob("LAMBDA:get*", "lambda:GetFunction", true));
    assert_false(policy_glob("LAMBDA:get*", "lambda:GetFunction", false));
    assert_true(policy_glob("a**b", "ab", false));
    assert_false(policy_glob("", "a", false));
    assert_true(policy_glob("", "", false));
}

static void test_statement_object_and_strings(void **state)
{
    const char *p = "{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\","
                    "\"Action\":\"lambda:InvokeFunction\",\"Resource\":\"" FN "app\"}}";
    assert_int_equal(eval(p, "lambda:InvokeFunction", FN "app"), POLICY_ALLOW);
    assert_int_equal(eval(p, "lambda:InvokeFunction", FN "other"), POLICY_IMPLICIT_DENY);
    assert_int_equal(eval(p, "lambda:DeleteFunction", FN "app"), POLICY_IMPLICIT_DENY);
}

static void test_arrays(void **state)
{
    const char *p =
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"A\",\"Effect\":\"Allow\","
        "\"Action\":[\"lambda:GetFunction\",\"lambda:ListFunctions\"],"
        "\"Resource\":[\"" FN "a\",\"*\"]}]}";
    assert_int_equal(eval(p, "lambda:GetFunction", FN "zzz"), POLICY_ALLOW);
    assert_int_equal(eval(p, "lambda:ListFunctions", "*"), POLICY_ALLOW);
    assert_int_equal(eval(p, "lambda:CreateFunction", "*"), POLICY_IMPLICIT_DENY);
}

static void test_action_wildcards_and_case(void **state)
{
    const char *p = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"LAMBDA:invoke*\","
                    "\"Resource\":\"*\"}}";
    assert_int_equal(eval(p, "lambda:InvokeFunction", FN "x"), POLICY_ALLOW);
    assert_int_equal(eval(p, "lambda:GetFunction", FN "x"), POLICY_IMPLICIT_DENY);
    p = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"lambda:*\",\"Resource\":\"*\"}}";
    assert_int_equal(eval(p, "lambda:CreateFunction", "*"), POLICY_ALLOW);
    assert_int_equal(eval(p, "nimbus:ReadAudit", "*"), POLICY_IMPLICIT_DENY);
    p = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}";
    assert_int_equal(eval(p, "nimbus:ReadAudit", "*"), POLICY_ALLOW);
    p = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"lambda:?etFunction\","
        "\"Resource\":\"*\"}}";
    assert_int_equal(eval(p, "lambda:GetFunction", "*"), POLICY_ALLOW);
    assert_int_equal(eval(p, "lambda:GetFunctionConfiguration", "*"), POLICY_IMPLICIT_DENY);
}

static void test_resource_matching(void **state)
{
    const char *p = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"lambda:*\","
                    "\"Resource\":\"" FN "app\"}}";
    /* unqualified pattern: only the unqualified function, like IAM */
    assert_int_equal(eval(p, "lambda:InvokeFunction", FN "app"), POLICY_ALLOW);
    assert_int_equal(eval(p, "lambda:InvokeFunction", FN "app:prod"), POLICY_IMPLICIT_DENY);
    assert_int_equal(eval(p, "lambda:InvokeFunction", FN "app2"), POLICY_IMPLICIT_DENY);
    /* resources are case-sensitive */
    assert_int_equal(eval(p, "lambda:InvokeFunction", FN "APP"), POLICY_IMPLICIT_DENY);
    /* the request resource "*" (ListFunctions) is not covered by a function pattern */
    assert_int_equal(eval(p, "lambda:ListFunctions", "*"), POLICY_IMPLICIT_DENY);

    p = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"lambda:*\","
        "\"Resource\":\"" FN "app:*\"}}";
    assert_int_equal(eval(p, "lambda:InvokeFunction", FN "app:prod"), POLICY_ALLOW);
    assert_int_equal(eval(p, "lambda:InvokeFunction", FN "app:7"), POLICY_ALLOW);
    assert_int_equal(eval(p, "lambda:InvokeFunction", FN "app"), POLICY_IMPLICIT_DENY);

    p = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"lambda:*\","
        "\"Resource\":\"" FN "app-*\"}}";
    assert_int_equal(eval(p, "lambda:InvokeFunction", FN "app-web"), POLICY_ALLOW);
    /* in the resource part '*' spans ':' (ArnLike), so qualified ARNs match too */
    assert_int_equal(eval(p, "lambda:InvokeFunction", FN "app-web:prod"), POLICY_ALLOW);
    assert_int_equal(eval(p, "lambda:InvokeFunction", FN "web"), POLICY_IMPLICIT_DENY);

    /* wildcards in the fixed segments do not span ':' */
    p = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"lambda:*\","
        "\"Resource\":\"arn:aws:lambda:*:*:function:x\"}}";
    assert_int_equal(eval(p, "lambda:GetFunction", "arn:aws:lambda:eu-west-1:123:function:x"),
                     POLICY_ALLOW);
    assert_int_equal(eval(p, "lambda:GetFunction", "arn:aws:lambda:eu-west-1:123:function:y"),
                     POLICY_IMPLICIT_DENY);
    p = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"lambda:*\","
        "\"Resource\":\"arn:aws:lambda:us-east-1:000000000000:*\"}}";
    assert_int_equal(eval(p, "lambda:GetFunction", FN "any:thing"), POLICY_ALLOW);
    assert_int_equal(eval(p, "lambda:GetFunction", "arn:aws:lambda:us-east-2:000000000000:x"),
                     POLICY_IMPLICIT_DENY);
    p = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"lambda:*\","
        "\"Resource\":\"arn:aws:lambda:us-east-?:000000000000:function:f\"}}";
    assert_int_equal(
        eval(p, "lambda:GetFunction", "arn:aws:lambda:us-east-2:000000000000:function:f"),
        POLICY_ALLOW);
}

static void test_not_action_not_resource(void **state)
{
    const char *p = "{\"Statement\":{\"Effect\":\"Allow\",\"NotAction\":[\"lambda:Delete*\","
                    "\"lambda:Update*\"],\"Resource\":\"*\"}}";
    assert_int_equal(eval(p, "lambda:GetFunction", FN "a"), POLICY_ALLOW);
    assert_int_equal(eval(p, "lambda:DeleteFunction", FN "a"), POLICY_IMPLICIT_DENY);
    assert_int_equal(eval(p, "lambda:updatefunctioncode", FN "a"), POLICY_IMPLICIT_DENY);

    p = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"lambda:*\","
        "\"NotResource\":\"" FN "secret*\"}}";
    assert_int_equal(eval(p, "lambda:InvokeFunction", FN "app"), POLICY_ALLOW);
    assert_int_equal(eval(p, "lambda:ListFunctions", "*"), POLICY_ALLOW);
    assert_int_equal(eval(p, "lambda:InvokeFunction", FN "secret-db"), POLICY_IMPLICIT_DENY);
}

static void test_deny_wins(void **state)
{
    const char *p =
        "{\"Version\":\"2012-10-17\",\"Statement\":["
        "{\"Effect\":\"Deny\",\"Action\":\"lambda:DeleteFunction\",\"Resource\":\"" FN "prod-*\"},"
        "{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}";
    assert_int_equal(eval(p, "lambda:DeleteFunction", FN "prod-api"), POLICY_EXPLICIT_DENY);
    assert_int_equal(eval(p, "lambda:DeleteFunction", FN "dev-api"), POLICY_ALLOW);
    assert_int_equal(eval(p, "lambda:InvokeFunction", FN "prod-api"), POLICY_ALLOW);
    /* order does not matter */
    p = "{\"Statement\":["
        "{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"},"
        "{\"Effect\":\"Deny\",\"NotAction\":\"lambda:Get*\",\"Resource\":\"*\"}]}";
    assert_int_equal(eval(p, "lambda:GetFunction", FN "x"), POLICY_ALLOW);
    assert_int_equal(eval(p, "lambda:CreateFunction", "*"), POLICY_EXPLICIT_DENY);
    /* a Deny alone is still no Allow */
    p = "{\"Statement\":{\"Effect\":\"Deny\",\"Action\":\"lambda:Delete*\",\"Resource\":\"*\"}}";
    assert_int_equal(eval(p, "lambda:GetFunction", FN "x"), POLICY_IMPLICIT_DENY);
}

static void test_malformed(void **state)
{
    refused("", "not valid JSON");
    refused("{\"Statement\":", "not valid JSON");
    refused("[]", "must be a JSON object");
    refused("{}", "Statement is missing");
    refused("{\"Statement\":[]}", "must not be an empty array");
    refused("{\"Statement\":\"x\"}", "Statement must be an object or an array");
    refused("{\"Statement\":[1]}", "statement 1: a statement must be a JSON object");
    refused("{\"Version\":\"2020-01-01\",\"Statement\":{}}", "Version must be");
    refused("{\"Statements\":[]}", "unknown member 'Statements'");
    refused("{\"Statement\":{\"Action\":\"*\",\"Resource\":\"*\"}}",
            "statement 1: Effect is missing");
    refused("{\"Statement\":{\"Effect\":\"allow\",\"Action\":\"*\",\"Resource\":\"*\"}}",
            "Effect 'allow' is not");
    refused("{\"Statement\":{\"Effect\":\"Allow\",\"Resource\":\"*\"}}",
            "Action or NotAction is missing");
    refused("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\"}}",
            "Resource or NotResource is missing");
    refused("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"NotAction\":\"*\","
            "\"Resource\":\"*\"}}",
            "Action and NotAction cannot be combined");
    refused("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\","
            "\"NotResource\":\"*\"}}",
            "Resource and NotResource cannot be combined");
    refused("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":[],\"Resource\":\"*\"}}",
            "Action must not be an empty array");
    refused("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":7,\"Resource\":\"*\"}}",
            "Action must be a string or an array of strings");
    refused("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":[\"lambda:Get*\",7],"
            "\"Resource\":\"*\"}}",
            "Action must be a string or an array of strings");
    refused("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"InvokeFunction\","
            "\"Resource\":\"*\"}}",
            "Action 'InvokeFunction' is not");
    refused("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"lamb*:Invoke\","
            "\"Resource\":\"*\"}}",
            "Action 'lamb*:Invoke' is not");
    refused("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"app\"}}",
            "Resource 'app' is not \"*\" or an ARN");
    refused("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\","
            "\"Resource\":\"arn:aws:lambda:*\"}}",
            "is not \"*\" or an ARN");
    refused("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"},"
            "{\"Sid\":\"Two\",\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\","
            "\"Extra\":1}]}",
            "statement 2 (Sid 'Two'): unknown member 'Extra'");
    /* duplicate members would hide one of two Effects: refused */
    refused("{\"Statement\":{\"Effect\":\"Deny\",\"Effect\":\"Allow\",\"Action\":\"*\","
            "\"Resource\":\"*\"}}",
            "duplicate");
    refused("{\"Statement\":{\"Sid\":1,\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}",
            "Sid must be a string");
}

static void test_condition_and_principal_refused(void **state)
{
    refused("{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Deny\",\"Action\":\"*\","
            "\"Resource\":\"*\",\"Condition\":{\"Bool\":{\"aws:SecureTransport\":\"false\"}}}}",
            "statement 1: Condition is not supported");
    refused("{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\","
            "\"Resource\":\"*\"}}",
            "Principal is not allowed in an identity-based policy");
    refused("{\"Statement\":{\"Effect\":\"Allow\",\"NotPrincipal\":\"*\",\"Action\":\"*\","
            "\"Resource\":\"*\"}}",
            "NotPrincipal is not allowed");
}

static void test_size_limit(void **state)
{
    struct nb_buf b = NB_BUF_INIT;
    buf_appends(&b, "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":[");
    for (int i = 0; i < 400; i++)
        buf_appendf(&b, "%s\"lambda:GetFunction\"", i ? "," : "");
    buf_appends(&b, "],\"Resource\":\"*\"}}");
    refused(b.data, "over the 6144 allowed");
    buf_release(&b);
    /* whitespace does not count (up to the raw cap) */
    buf_appends(&b, "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}");
    for (int i = 0; i < 20000; i++)
        buf_appends(&b, " ");
    assert_int_equal(policy_validate(b.data, NULL), 0);
    for (int i = 0; i < 50000; i++)
        buf_appends(&b, " ");
    refused(b.data, "over 65536 bytes");
    buf_release(&b);
}

static void test_validate_ok(void **state)
{
    struct nb_err err = {0};
    const char *p = "{\"Version\":\"2012-10-17\",\"Id\":\"x\",\"Statement\":[{\"Sid\":\"Read\","
                    "\"Effect\":\"Allow\",\"Action\":[\"lambda:Get*\",\"lambda:List*\"],"
                    "\"Resource\":\"*\"}]}";
    assert_int_equal(policy_validate(p, &err), 0);
    assert_int_equal(err.code, 0);
    struct nb_policy *pp = policy_parse(p, &err);
    assert_int_equal(policy_statement_count(pp), 1);
    policy_free(pp);
}

static void test_cache(void **state)
{
    policy_cache_clear();
    const char *p = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"lambda:Get*\","
                    "\"Resource\":\"*\"}}";
    uint64_t before = policy_cache_parses();
    struct nb_err err = {0};
    const struct nb_policy *a = policy_cached(p, &err);
    assert_non_null(a);
    char *copy = xstrdup(p); /* the same text at another address: still one parse */
    const struct nb_policy *b = policy_cached(copy, &err);
    free(copy);
    assert_ptr_equal(a, b);
    assert_int_equal(policy_cache_parses(), before + 1);
    assert_int_equal(policy_evaluate(b, "lambda:GetFunction", "*"), POLICY_ALLOW);
    /* failures are cached with their message */
    assert_null(policy_cached("{nope", &err));
    assert_int_equal(err.code, EINVAL);
    err_clear(&err);
    assert_null(policy_cached("{nope", &err));
    assert_true(strstr(err.msg, "not valid JSON") != NULL);
    assert_int_equal(policy_cache_parses(), before + 2);
    /* many distinct texts: the cache starts over instead of growing without bound */
    for (int i = 0; i < POLICY_CACHE_MAX + 10; i++) {
        char *t = xasprintf("{\"Id\":\"%d\",\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\","
                            "\"Resource\":\"*\"}}",
                            i);
        assert_non_null(policy_cached(t, NULL));
        free(t);
    }
    policy_cache_clear();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_statement_object_and_strings),
        cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_action_wildcards_and_case),
        cmocka_unit_test(test_resource_matching),
        cmocka_unit_test(test_not_action_not_resource),
        cmocka_unit_test(test_deny_wins),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_condition_and_principal_refused),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_validate_ok),
        cmocka_unit_test(test_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

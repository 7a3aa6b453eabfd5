/*
 * test_function.c - unit tests of function.c: CreateFunction/UpdateFunctionConfiguration
 * validation (accepted and refused members, with Lambda's messages), the FunctionConfiguration
 * JSON shape, the store record round trip, and FunctionName reference parsing.
 *
 * Pure: no loop, no disk. Every refused case checks -EINVAL and a distinctive part of the message.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "function.h"
#include "util.h"

static const struct nb_function_ctx ctx = {"us-east-1", "123456789012"};
static const char *hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static const char *b64 = "ASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4mrze8=";

#define ROLE "arn:aws:iam::123456789012:role/lambda-role"

/* Parses a JSON literal (test bug if it does not parse). */
static json_t *js(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j)
        fail_msg("bad test JSON: %s: %s", text, e.text);
    return j;
}

/* Creates from a body; returns the snapshot or NULL with err. */
static struct nb_function *create(const char *body, struct nb_err *err)
{
    json_t *req = js(body);
    struct nb_function *fn = function_new(&ctx, req, hex, b64, 1234, err);
    json_decref(req);
    return fn;
}

static void assert_refused(const char *body, const char *msg_part)
{
    struct nb_err err = {0};
    struct nb_function *fn = create(body, &err);
    if (fn)
        fail_msg("accepted: %s", body);
    assert_int_equal(err.code, EINVAL);
    if (!strstr(err.msg, msg_part))
        fail_msg("message '%s' lacks '%s'", err.msg, msg_part);
}

static struct nb_function *assert_accepted(const char *body)
{
    struct nb_err err = {0};
    struct nb_function *fn = create(body, &err);
    if (!fn)
        fail_msg("refused: %s: %s", body, err.msg);
    return fn;
}

#define BASE "\"FunctionName\":\"fn\",\"Role\":\"" ROLE "\""

static void test_create_defaults(void **state)
{
    struct nb_function *fn =
        assert_accepted("{" BASE ",\"Runtime\":\"python3.12\",\"Handler\":\"app.handler\"}");
    assert_string_equal(fn->name, "fn");
    assert_string_equal(fn->arn, "arn:aws:lambda:us-east-1:123456789012:function:fn");
    assert_string_equal(fn->version, "$LATEST");
    assert_int_equal(fn->kind, NB_RT_PYTHON);
    assert_int_equal(fn->memory_mb, 128);
    assert_int_equal(fn->timeout_s, 3);
    assert_int_equal(fn->ephemeral_mb, 512);
    assert_int_equal(fn->reserved_concurrency, -1);
    assert_string_equal(fn->description, "");
    assert_string_equal(fn->architecture, "x86_64");
    assert_string_equal(fn->code_hex, hex);
    assert_string_equal(fn->code_b64, b64);
    assert_int_equal(fn->code_size, 1234);
    assert_int_equal(strlen(fn->revision_id), 36);
    assert_int_equal(json_object_size(fn->env), 0);
    assert_int_equal(fn->refs, 1);
    function_unref(fn);
}

static void test_create_all_members(void **state)
{
    struct nb_function *fn = assert_accepted(
        "{\"FunctionName\":\"arn:aws:lambda:us-east-1:123456789012:function:full-Name_1\","
        "\"Role\":\"arn:aws:iam::123456789012:role/service-role/x+=,.@-_\","
        "\"Runtime\":\"nodejs20.x\",\"Handler\":\"index.handler\",\"MemorySize\":10240,"
        "\"Timeout\":900,\"Description\":\"d\",\"EphemeralStorage\":{\"Size\":10240},"
        "\"Environment\":{\"Variables\":{\"AB\":\"1\",\"x_9\":\"\"}},\"Publish\":false,"
        "\"PackageType\":\"Zip\",\"Architectures\":[\"x86_64\"],\"Layers\":[],"
        "\"Tags\":{\"team\":\"a\"},\"VpcConfig\":{\"SubnetIds\":[]},\"Unknown\":{\"x\":1},"
        "\"TracingConfig\":{\"Mode\":\"Active\"},\"KMSKeyArn\":null}");
    assert_string_equal(fn->name, "full-Name_1");
    assert_int_equal(fn->kind, NB_RT_NODE);
    assert_int_equal(fn->memory_mb, 10240);
    assert_int_equal(fn->timeout_s, 900);
    assert_int_equal(fn->ephemeral_mb, 10240);
    assert_string_equal(json_string_value(json_object_get(fn->env, "AB")), "1");
    assert_string_equal(json_string_value(json_object_get(fn->tags, "team")), "a");
    function_unref(fn);

    /* Limits inclusive at the low end too; provided needs no handler. */
    fn = assert_accepted("{" BASE ",\"Runtime\":\"provided.al2023\",\"MemorySize\":128,"
                         "\"Timeout\":1,\"EphemeralStorage\":{\"Size\":512}}");
    assert_int_equal(fn->kind, NB_RT_PROVIDED);
    assert_string_equal(fn->handler, "");
    function_unref(fn);
}

static void test_runtimes(void **state)
{
    const char *ok[] = {"provided",   "provided.al2", "provided.al2023", "python3.8",
                        "python3.9",  "python3.10",   "python3.11",      "python3.12",
                        "python3.13", "nodejs18.x",   "nodejs20.x",      "nodejs22.x"};
    for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
        char *body = xasprintf("{" BASE ",\"Runtime\":\"%s\",\"Handler\":\"h\"}", ok[i]);
        function_unref(assert_accepted(body));
        free(body);
    }
    const char *bad[] = {"java17", "python2.7", "nodejs16.x", "go1.x", "", "PYTHON3.12"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        char *body = xasprintf("{" BASE ",\"Runtime\":\"%s\",\"Handler\":\"h\"}", bad[i]);
        char *msg = xasprintf("Value %s at 'runtime' failed to satisfy constraint: Member must "
                              "satisfy enum value set: [",
                              bad[i]);
        assert_refused(body, msg);
        free(body);
        free(msg);
    }
    assert_refused("{" BASE ",\"Runtime\":\"ruby3.2\"}", "python3.13");
}

static void test_refuse_name(void **state)
{
    const char *tail = ",\"Role\":\"" ROLE "\",\"Runtime\":\"provided\"}";
    char *b = xasprintf("{\"FunctionName\":\"bad name!\"%s", tail);
    assert_refused(b, "at 'functionName' failed to satisfy constraint: Member must satisfy "
                      "regular expression pattern");
    free(b);
    char long_name[66];
    memset(long_name, 'a', 65);
    long_name[65] = 0;
    b = xasprintf("{\"FunctionName\":\"%s\"%s", long_name, tail);
    assert_refused(b, "Member must have length less than or equal to 64");
    free(b);
    long_name[64] = 0;
    b = xasprintf("{\"FunctionName\":\"%s\"%s", long_name, tail);
    function_unref(assert_accepted(b));
    free(b);
    b = xasprintf("{\"FunctionName\":\"fn:$LATEST\"%s", tail);
    assert_refused(b, "regular expression pattern");
    free(b);
    assert_refused("{\"Role\":\"" ROLE "\",\"Runtime\":\"provided\"}",
                   "Value null at 'functionName'");
    b = xasprintf("{\"FunctionName\":7%s", tail);
    assert_refused(b, "'functionName' failed to satisfy constraint: Member must be of type string");
    free(b);
}

static void test_refuse_role(void **state)
{
    assert_refused("{\"FunctionName\":\"fn\",\"Runtime\":\"provided\"}", "Value null at 'role'");
    const char *bad[] = {"role", "arn:aws:iam::12345678901:role/x",
                         "arn:aws:iam::123456789012:user/x", "arn:aws:iam::123456789012:role",
                         "arn:aws:iam::123456789012:role/a b"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        char *body =
            xasprintf("{\"FunctionName\":\"fn\",\"Role\":\"%s\",\"Runtime\":\"provided\"}", bad[i]);
        assert_refused(body, "at 'role' failed to satisfy constraint: Member must satisfy regular "
                             "expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?");
        free(body);
    }
    function_unref(
        assert_accepted("{\"FunctionName\":\"fn\",\"Role\":\"arn:aws-cn:iam::000000000000:role/\","
                        "\"Runtime\":\"provided\"}"));
}

static void test_refuse_handler(void **state)
{
    assert_refused("{" BASE ",\"Runtime\":\"python3.12\"}",
                   "Runtime and Handler are mandatory parameters");
    assert_refused("{" BASE ",\"Runtime\":\"nodejs22.x\",\"Handler\":\"\"}",
                   "Runtime and Handler are mandatory parameters");
    assert_refused("{" BASE ",\"Handler\":\"h\"}", "Runtime and Handler are mandatory parameters");
    assert_refused("{" BASE ",\"Runtime\":\"python3.12\",\"Handler\":\"a b\"}",
                   "at 'handler' failed to satisfy constraint: Member must satisfy regular "
                   "expression pattern: [^\\s]+");
    char h[130];
    memset(h, 'h', 129);
    h[129] = 0;
    char *b = xasprintf("{" BASE ",\"Runtime\":\"python3.12\",\"Handler\":\"%s\"}", h);
    assert_refused(b, "at 'handler' failed to satisfy constraint: Member must have length less "
                      "than or equal to 128");
    free(b);
    h[128] = 0;
    b = xasprintf("{" BASE ",\"Runtime\":\"python3.12\",\"Handler\":\"%s\"}", h);
    function_unref(assert_accepted(b));
    free(b);
}

static void test_refuse_numbers(void **state)
{
    assert_refused("{" BASE ",\"Runtime\":\"provided\",\"MemorySize\":127}",
                   "Value '127' at 'memorySize' failed to satisfy constraint: Member must have "
                   "value greater than or equal to 128");
    assert_refused("{" BASE ",\"Runtime\":\"provided\",\"MemorySize\":10241}",
                   "Member must have value less than or equal to 10240");
    assert_refused("{" BASE ",\"Runtime\":\"provided\",\"Timeout\":0}",
                   "Value '0' at 'timeout' failed to satisfy constraint: Member must have value "
                   "greater than or equal to 1");
    assert_refused("{" BASE ",\"Runtime\":\"provided\",\"Timeout\":901}",
                   "Value '901' at 'timeout' failed to satisfy constraint: Member must have value "
                   "less than or equal to 900");
    assert_refused("{" BASE ",\"Runtime\":\"provided\",\"EphemeralStorage\":{\"Size\":511}}",
                   "at 'ephemeralStorage.size'");
    assert_refused("{" BASE ",\"Runtime\":\"provided\",\"EphemeralStorage\":{\"Size\":10241}}",
                   "less than or equal to 10240");
    assert_refused("{" BASE ",\"Runtime\":\"provided\",\"EphemeralStorage\":{}}",
                   "Value null at 'ephemeralStorage.size'");
    /* Wrong JSON types. */
    assert_refused("{" BASE ",\"Runtime\":\"provided\",\"MemorySize\":\"256\"}",
                   "'memorySize' failed to satisfy constraint: Member must be of type integer");
    assert_refused("{" BASE ",\"Runtime\":\"provided\",\"Timeout\":3.5}", "'timeout'");
    assert_refused("{" BASE ",\"Runtime\":\"provided\",\"MemorySize\":99999999999999999}",
                   "less than or equal to 10240");
    assert_refused("{" BASE ",\"Runtime\":\"provided\",\"EphemeralStorage\":512}",
                   "'ephemeralStorage'");
    assert_refused("{" BASE ",\"Runtime\":[\"provided\"]}", "'runtime'");
}

static void test_refuse_description_arch_package(void **state)
{
    char d[258];
    memset(d, 'd', 257);
    d[257] = 0;
    char *b = xasprintf("{" BASE ",\"Runtime\":\"provided\",\"Description\":\"%s\"}", d);
    assert_refused(b, "at 'description' failed to satisfy constraint: Member must have length "
                      "less than or equal to 256");
    free(b);
    assert_refused("{" BASE ",\"Runtime\":\"provided\",\"Architectures\":[\"arm64\"]}", "arm64");
    assert_refused("{" BASE ",\"Runtime\":\"provided\",\"Architectures\":[\"sparc\"]}",
                   "Member must satisfy enum value set: [x86_64, arm64]");
    assert_refused("{" BASE ",\"Runtime\":\"provided\",\"Architectures\":[\"x86_64\",\"x86_64\"]}",
                   "Member must have length less than or equal to 1");
    assert_refused("{" BASE ",\"Runtime\":\"provided\",\"PackageType\":\"Image\"}", "Image");
    assert_refused("{" BASE ",\"Runtime\":\"provided\",\"PackageType\":\"Tar\"}",
                   "at 'packageType' failed to satisfy constraint");
    assert_refused("{" BASE ",\"Runtime\":\"provided\",\"Layers\":[\"arn:aws:lambda:x\"]}",
                   "Layers are not supported");
    assert_refused("{" BASE ",\"Runtime\":\"provided\",\"Tags\":{\"a\":1}}", "'tags'");
}

static void test_environment(void **state)
{
    assert_refused("{" BASE ",\"Runtime\":\"provided\",\"Environment\":{\"Variables\":"
                   "{\"AWS_REGION\":\"x\",\"OK_KEY\":\"y\",\"_HANDLER\":\"z\"}}}",
                   "Lambda was unable to configure your environment variables because the "
                   "environment variables you have provided contains reserved keys that are "
                   "currently not supported for modification. Reserved keys used in this "
                   "request: AWS_REGION, _HANDLER");
    const char *reserved[] = {"_X_AMZN_TRACE_ID",
                              "AWS_DEFAULT_REGION",
                              "AWS_EXECUTION_ENV",
                              "AWS_LAMBDA_FUNCTION_NAME",
                              "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                              "AWS_LAMBDA_FUNCTION_VERSION",
                              "AWS_LAMBDA_INITIALIZATION_TYPE",
                              "AWS_LAMBDA_LOG_GROUP_NAME",
                              "AWS_LAMBDA_LOG_STREAM_NAME",
                              "AWS_ACCESS_KEY",
                              "AWS_ACCESS_KEY_ID",
                              "AWS_SECRET_ACCESS_KEY",
                              "AWS_SESSION_TOKEN",
                              "AWS_LAMBDA_RUNTIME_API",
                              "LAMBDA_TASK_ROOT",
                              "LAMBDA_RUNTIME_DIR"};
    for (size_t i = 0; i < ARRAY_SIZE(reserved); i++) {
        char *b = xasprintf("{" BASE ",\"Runtime\":\"provided\",\"Environment\":{\"Variables\":"
                            "{\"%s\":\"v\"}}}",
                            reserved[i]);
        assert_refused(b, reserved[i]);
        free(b);
    }
    const char *bad_keys[] = {"1ABC", "A-B", "A", "A B", "_X"};
    for (size_t i = 0; i < ARRAY_SIZE(bad_keys); i++) {
        char *b = xasprintf("{" BASE ",\"Runtime\":\"provided\",\"Environment\":{\"Variables\":"
                            "{\"%s\":\"v\"}}}",
                            bad_keys[i]);
        assert_refused(b, "Map keys must satisfy constraint: [Member must satisfy regular "
                          "expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]");
        free(b);
    }
    assert_refused("{" BASE ",\"Runtime\":\"provided\",\"Environment\":{\"Variables\":"
                   "{\"AB\":1}}}",
                   "'environment.variables'");
    /* 4 KB: the compact JSON {"K":"v..."} measured; 4096 bytes pass, 4097 fail. */
    size_t vlen = 4096 - strlen("{\"KEY\":\"\"}");
    char *v = xmalloc(vlen + 2);
    memset(v, 'v', vlen + 1);
    v[vlen] = 0;
    char *b = xasprintf("{" BASE ",\"Runtime\":\"provided\",\"Environment\":{\"Variables\":"
                        "{\"KEY\":\"%s\"}}}",
                        v);
    function_unref(assert_accepted(b));
    free(b);
    v[vlen] = 'v';
    v[vlen + 1] = 0;
    b = xasprintf("{" BASE ",\"Runtime\":\"provided\",\"Environment\":{\"Variables\":"
                  "{\"KEY\":\"%s\"}}}",
                  v);
    assert_refused(b, "Lambda was unable to configure your environment variables because the "
                      "environment variables you have provided exceeded the 4KB limit. String "
                      "measured: {\"KEY\":\"vvv");
    free(b);
    free(v);
}

static void test_update_config(void **state)
{
    struct nb_function *cur = assert_accepted(
        "{" BASE ",\"Runtime\":\"python3.12\",\"Handler\":\"a.b\",\"Environment\":"
        "{\"Variables\":{\"AB\":\"1\"}},\"Tags\":{\"t\":\"v\"},\"Description\":\"old\"}");
    function_unref(cur);
    cur = assert_accepted("{" BASE ",\"Runtime\":\"python3.12\",\"Handler\":\"a.b\","
                          "\"Environment\":{\"Variables\":{\"AB\":\"1\"}}}");
    struct nb_function *c2 = function_with_concurrency(cur, 7);
    assert_int_equal(c2->reserved_concurrency, 7);
    assert_string_equal(c2->revision_id, cur->revision_id);

    struct nb_err err = {0};
    json_t *req = js("{\"MemorySize\":512,\"Timeout\":30,\"Description\":\"new\"}");
    struct nb_function *u = function_update_config(c2, req, &err);
    json_decref(req);
    assert_non_null(u);
    assert_int_equal(u->memory_mb, 512);
    assert_int_equal(u->timeout_s, 30);
    assert_string_equal(u->description, "new");
    assert_string_equal(u->handler, "a.b");
    assert_int_equal(u->reserved_concurrency, 7);
    assert_string_equal(json_string_value(json_object_get(u->env, "AB")), "1");
    assert_string_not_equal(u->revision_id, c2->revision_id);
    assert_true(u->env != c2->env); /* never shared between snapshots */

    /* Environment replaces the whole map; {} clears it. */
    req = js("{\"Environment\":{}}");
    struct nb_function *u2 = function_update_config(u, req, &err);
    json_decref(req);
    assert_non_null(u2);
    assert_int_equal(json_object_size(u2->env), 0);

    /* Switching to a runtime that needs a handler with none set fails; provided does not. */
    req = js("{\"Runtime\":\"provided.al2\"}");
    struct nb_function *u3 = function_update_config(u2, req, &err);
    json_decref(req);
    assert_non_null(u3);
    assert_int_equal(u3->kind, NB_RT_PROVIDED);

    req = js("{\"Timeout\":0}");
    assert_null(function_update_config(u3, req, &err));
    assert_true(strstr(err.msg, "'timeout'") != NULL);
    json_decref(req);
    req = js("{\"Environment\":{\"Variables\":{\"AWS_REGION\":\"x\"}}}");
    assert_null(function_update_config(u3, req, &err));
    assert_true(strstr(err.msg, "reserved keys") != NULL);
    json_decref(req);
    req = js("[]");
    assert_null(function_update_config(u3, req, &err));
    json_decref(req);

    struct nb_function *c3 = function_update_code(u3, "ff" /* shape not checked */, "x", 9);
    assert_string_equal(c3->code_hex, "ff");
    assert_int_equal(c3->code_size, 9);
    assert_string_not_equal(c3->revision_id, u3->revision_id);

    json_t *tags = js("{\"k\":\"v\"}");
    struct nb_function *t = function_with_tags(c3, tags);
    json_decref(tags);
    assert_string_equal(json_string_value(json_object_get(t->tags, "k")), "v");

    struct nb_function *fns[] = {cur, c2, u, u2, u3, c3, t};
    for (size_t i = 0; i < ARRAY_SIZE(fns); i++)
        function_unref(fns[i]);
}

static void test_config_json(void **state)
{
    struct nb_function *fn = assert_accepted(
        "{" BASE ",\"Runtime\":\"python3.11\",\"Handler\":\"app.h\",\"Description\":\"x\","
        "\"Environment\":{\"Variables\":{\"AB\":\"1\"}}}");
    json_t *o = function_config_json(fn);
    const char *keys[] = {"FunctionName",     "FunctionArn",   "Runtime",       "Role",
                          "Handler",          "CodeSize",      "Description",   "Timeout",
                          "MemorySize",       "LastModified",  "CodeSha256",    "Version",
                          "Environment",      "TracingConfig", "RevisionId",    "State",
                          "LastUpdateStatus", "PackageType",   "Architectures", "EphemeralStorage",
                          "SnapStart",        "LoggingConfig"};
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
        if (!json_object_get(o, keys[i]))
            fail_msg("missing %s", keys[i]);
    assert_int_equal(json_object_size(o), ARRAY_SIZE(keys));
    assert_null(json_object_get(o, "RuntimeVersionConfig"));
    assert_string_equal(json_string_value(json_object_get(o, "FunctionArn")),
                        "arn:aws:lambda:us-east-1:123456789012:function:fn");
    assert_string_equal(json_string_value(json_object_get(o, "Version")), "$LATEST");
    assert_string_equal(json_string_value(json_object_get(o, "State")), "Active");
    assert_string_equal(json_string_value(json_object_get(o, "LastUpdateStatus")), "Successful");
    assert_string_equal(json_string_value(json_object_get(o, "PackageType")), "Zip");
    assert_string_equal(json_string_value(json_object_get(o, "CodeSha256")), b64);
    assert_int_equal(json_integer_value(json_object_get(o, "CodeSize")), 1234);
    assert_int_equal(json_integer_value(json_object_get(o, "MemorySize")), 128);
    assert_int_equal(json_integer_value(json_object_get(o, "Timeout")), 3);
    char *s = json_dumps(json_object_get(o, "Environment"), JSON_COMPACT);
    assert_string_equal(s, "{\"Variables\":{\"AB\":\"1\"}}");
    free(s);
    s = json_dumps(json_object_get(o, "TracingConfig"), JSON_COMPACT);
    assert_string_equal(s, "{\"Mode\":\"PassThrough\"}");
    free(s);
    s = json_dumps(json_object_get(o, "Architectures"), JSON_COMPACT);
    assert_string_equal(s, "[\"x86_64\"]");
    free(s);
    s = json_dumps(json_object_get(o, "EphemeralStorage"), JSON_COMPACT);
    assert_string_equal(s, "{\"Size\":512}");
    free(s);
    s = json_dumps(json_object_get(o, "SnapStart"), JSON_COMPACT);
    assert_string_equal(s, "{\"ApplyOn\":\"None\",\"OptimizationStatus\":\"Off\"}");
    free(s);
    s = json_dumps(json_object_get(o, "LoggingConfig"), JSON_COMPACT);
    assert_string_equal(s, "{\"LogFormat\":\"Text\",\"LogGroup\":\"/aws/lambda/fn\"}");
    free(s);
    /* LastModified: 2026-11-26T14:06:14.123+0000 */
    const char *lm = json_string_value(json_object_get(o, "LastModified"));
    assert_int_equal(strlen(lm), 28);
    assert_int_equal(lm[10], 'T');
    assert_int_equal(lm[19], '.');
    assert_string_equal(lm + 23, "+0000");
    json_decref(o);

    o = function_config_json_qualified(fn, "$LATEST");
    assert_string_equal(json_string_value(json_object_get(o, "FunctionArn")),
                        "arn:aws:lambda:us-east-1:123456789012:function:fn:$LATEST");
    json_decref(o);
    function_unref(fn);

    /* No Environment when empty; no Handler for a custom runtime without one. */
    fn = assert_accepted("{" BASE ",\"Runtime\":\"provided\"}");
    o = function_config_json(fn);
    assert_null(json_object_get(o, "Environment"));
    assert_null(json_object_get(o, "Handler"));
    json_decref(o);
    function_unref(fn);
}

static void test_record_round_trip(void **state)
{
    struct nb_function *fn = assert_accepted(
        "{" BASE ",\"Runtime\":\"nodejs22.x\",\"Handler\":\"i.h\",\"MemorySize\":1024,"
        "\"Timeout\":60,\"Description\":\"d \\\"q\\\" \\u00e9\",\"EphemeralStorage\":"
        "{\"Size\":2048},\"Environment\":{\"Variables\":{\"AB\":\"1\",\"CD\":\"=x\"}},"
        "\"Tags\":{\"team\":\"core\",\"e\":\"\"}}");
    struct nb_function *c = function_with_concurrency(fn, 250);
    char *rec = function_to_record(c);
    struct nb_err err = {0};
    struct nb_function *back = function_from_record(&ctx, rec, &err);
    if (!back)
        fail_msg("from_record: %s", err.msg);
    assert_string_equal(back->name, c->name);
    assert_string_equal(back->arn, c->arn);
    assert_string_equal(back->version, c->version);
    assert_string_equal(back->runtime, c->runtime);
    assert_int_equal(back->kind, c->kind);
    assert_string_equal(back->handler, c->handler);
    assert_string_equal(back->role, c->role);
    assert_string_equal(back->description, c->description);
    assert_int_equal(back->memory_mb, c->memory_mb);
    assert_int_equal(back->timeout_s, c->timeout_s);
    assert_int_equal(back->ephemeral_mb, c->ephemeral_mb);
    assert_true(json_equal(back->env, c->env));
    assert_true(json_equal(back->tags, c->tags));
    assert_string_equal(back->code_hex, c->code_hex);
    assert_string_equal(back->code_b64, c->code_b64);
    assert_int_equal(back->code_size, c->code_size);
    assert_string_equal(back->revision_id, c->revision_id);
    assert_int_equal(back->last_modified_ms, c->last_modified_ms);
    assert_int_equal(back->reserved_concurrency, 250);
    assert_string_equal(back->architecture, c->architecture);
    char *rec2 = function_to_record(back);
    assert_string_equal(rec, rec2);
    /* A record made in another region gets that region's ARN on load. */
    struct nb_function_ctx other = {"eu-west-1", "000000000000"};
    struct nb_function *moved = function_from_record(&other, rec, &err);
    assert_non_null(moved);
    assert_string_equal(moved->arn, "arn:aws:lambda:eu-west-1:000000000000:function:fn");
    function_unref(moved);
    free(rec);
    free(rec2);
    function_unref(back);
    function_unref(c);
    function_unref(fn);

    /* Corrupt records are refused, not trusted. */
    const char *bad[] = {"", "[]", "{}", "{\"format\":1}", "{\"format\":2,\"name\":\"x\"}"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        err_clear(&err);
        assert_null(function_from_record(&ctx, bad[i], &err));
        assert_int_equal(err.code, EINVAL);
    }
}

static void check_ref(const char *ref, const char *name, const char *qual, const char *region,
                      const char *account)
{
    char *n = NULL, *q = NULL, *r = NULL, *a = NULL;
    struct nb_err err = {0};
    if (function_parse_ref_arn(ref, &n, &q, &r, &a, &err) < 0)
        fail_msg("'%s' refused: %s", ref, err.msg);
    assert_string_equal(n, name);
    if (qual)
        assert_string_equal(q, qual);
    else
        assert_null(q);
    if (region)
        assert_string_equal(r, region);
    else
        assert_null(r);
    if (account)
        assert_string_equal(a, account);
    else
        assert_null(a);
    free(n), free(q), free(r), free(a);
}

static void test_parse_ref(void **state)
{
    check_ref("fn", "fn", NULL, NULL, NULL);
    check_ref("My-fn_1", "My-fn_1", NULL, NULL, NULL);
    check_ref("fn:$LATEST", "fn", "$LATEST", NULL, NULL);
    check_ref("fn:prod", "fn", "prod", NULL, NULL);
    check_ref("fn:12", "fn", "12", NULL, NULL);
    check_ref("function:fn", "fn", NULL, NULL, NULL);
    check_ref("function", "function", NULL, NULL, NULL);
    check_ref("123456789012:function:fn", "fn", NULL, NULL, "123456789012");
    check_ref("123456789012:function:fn:$LATEST", "fn", "$LATEST", NULL, "123456789012");
    check_ref("123456789012", "123456789012", NULL, NULL, NULL);
    check_ref("arn:aws:lambda:us-east-1:123456789012:function:fn", "fn", NULL, "us-east-1",
              "123456789012");
    check_ref("arn:aws:lambda:us-east-1:123456789012:function:fn:$LATEST", "fn", "$LATEST",
              "us-east-1", "123456789012");
    check_ref("arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:fn:v2", "fn", "v2",
              "us-gov-west-1", "123456789012");
    check_ref("arn::lambda:eu-central-1:000000000000:function:x", "x", NULL, "eu-central-1",
              "000000000000");
    check_ref("us-east-1:fn", "fn", NULL, "us-east-1", NULL);

    const char *bad[] = {"",
                         "fn name",
                         "fn:",
                         "fn:$latest",
                         "fn:$LATESTX",
                         "fn:a:b",
                         ":fn",
                         "fn/x",
                         "arn:aws:lambda:us-east-1:123456789012:function:",
                         "arn:aws:s3:::bucket",
                         "fn.js",
                         "f\xc3\xa9"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        char *n = NULL, *q = NULL;
        struct nb_err err = {0};
        if (function_parse_ref(bad[i], &n, &q, &err) == 0)
            fail_msg("'%s' accepted as name '%s'", bad[i], n);
        assert_int_equal(err.code, EINVAL);
        assert_true(strstr(err.msg, "'functionName'") != NULL);
    }

    /* Lengths: a bare name up to 64, any form up to 140. */
    char s[200];
    memset(s, 'a', sizeof(s));
    s[65] = 0;
    char *n = NULL, *q = NULL;
    struct nb_err err = {0};
    assert_int_equal(function_parse_ref(s, &n, &q, &err), -EINVAL);
    assert_true(strstr(err.msg, "less than or equal to 64") != NULL);
    s[64] = 0;
    assert_int_equal(function_parse_ref(s, &n, &q, &err), 0);
    free(n), free(q);
    char *longref =
        xasprintf("arn:aws:lambda:us-east-1:123456789012:function:%.*s:%.*s", 64, s, 60, s);
    assert_true(strlen(longref) > 140);
    assert_int_equal(function_parse_ref(longref, &n, &q, &err), -EINVAL);
    assert_true(strstr(err.msg, "less than or equal to 140") != NULL);
    free(longref);

    assert_true(function_name_valid("a"));
    assert_true(function_name_valid("A-b_9"));
    assert_false(function_name_valid(""));
    assert_false(function_name_valid("a.b"));
    assert_true(function_name_valid(s)); /* 64 'a' */
    s[64] = 'a';
    assert_false(function_name_valid(s));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_defaults),
        cmocka_unit_test(test_create_all_members),
        cmocka_unit_test(test_runtimes),
        cmocka_unit_test(test_refuse_name),
        cmocka_unit_test(test_refuse_role),
        cmocka_unit_test(test_refuse_handler),
        cmocka_unit_test(test_refuse_numbers),
        cmocka_unit_test(test_refuse_description_arch_package),
        cmocka_unit_test(test_environment),
        cmocka_unit_test(test_update_config),
        cmocka_unit_test(test_config_json),
        cmocka_unit_test(test_record_round_trip),
        cmocka_unit_test(test_parse_ref),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

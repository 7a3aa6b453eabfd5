/*
 * test_authz.c - authz_check / authz_refused on real requests, and the audit log they write.
 *
 * Each test serves one end of a socketpair with a real HTTP server on its own uv loop (the same
 * read/parse/reply path as TCP connections) whose handler calls authz_check with the case's key,
 * policy, action and resource, then replies like a route would. The other end sends the request
 * and reads the reply. The audit log lives in a fresh temporary data dir; its lines are read back
 * with audit_read. Covers: root, allow/deny by policy (implicit and explicit, NULL and unparsable
 * policies) with IAM's AccessDeniedException messages, which requests are audited (changes and
 * denials, not reads), refusals, statuses of failed changes, the request id matching the reply,
 * the file's mode and append-only reopen, paging, and authz_resource.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "api.h"
#include "audit.h"
#include "authz.h"
#include "daemon_fixture.h"
#include "http_internal.h"
#include "policy.h"
#include "router.h"

#define FN "arn:aws:lambda:us-east-1:000000000000:function:"

/* cases are written positionally, leaving the trailing fields (refuse, allowed) zero */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

struct tcase {
    const char *key_id;
    bool root;
    const char *policy;
    const char *action, *resource;
    int ok_status;      /* the route's reply when allowed: 2xx, or an error status */
    const char *refuse; /* call authz_refused with this type and reply 403 instead */
    bool allowed;       /* out */
};

static struct nb_daemon D;
static uv_loop_t loop;
static struct nb_http_server *srv;
static char tmpdir[64];
static struct tcase *cur;

static void handler(struct nb_http_req *req, void *data)
{
    struct nb_daemon *d = data;
    if (cur->refuse) {
        authz_refused(d, req, cur->key_id, cur->action, cur->resource, cur->refuse);
        api_error(req, 403, cur->refuse, "the request signature does not match");
        return;
    }
    cur->allowed =
        authz_check(d, req, cur->key_id, cur->root, cur->policy, cur->action, cur->resource);
    if (!cur->allowed)
        return;
    if (cur->ok_status >= 400)
        api_error(req, cur->ok_status, "ResourceNotFoundException", "Function not found");
    else
        api_json(req, cur->ok_status, json_pack("{s:b}", "ok", 1));
}

static int setup(void **state)
{
    fixture_daemon_init(&D);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/nimbus-authz-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    struct nb_err err = {0};
    D.audit = audit_open(tmpdir, &err);
    assert_non_null(D.audit);
    assert_int_equal(uv_loop_init(&loop), 0);
    D.loop = &loop;
    struct nb_http_limits lim;
    http_limits_default(&lim);
    srv = http_server_new(&loop, &lim, handler, &D);
    return 0;
}

static void on_closed(void *data)
{
    *(bool *)data = true;
}

static int teardown(void **state)
{
    bool closed = false;
    http_server_close(srv, on_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(uv_loop_close(&loop), 0);
    audit_close(D.audit);
    D.audit = NULL;
    fixture_daemon_release(&D);
    policy_cache_clear();
    rm_rf(tmpdir);
    return 0;
}

struct reply {
    int status;
    char request_id[64];
    char error_type[64];
    char body[4096];
};

/* Sends one GET over a fresh socketpair connection and pumps the loop until the whole reply is
 * read. */
static void run(struct tcase *tc, struct reply *out)
{
    int sv[2];
    struct nb_err err = {0};
    cur = tc;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(http__serve_fd(srv, sv[0], &err), 0);
    const char *reqs = "GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    assert_int_equal(write(sv[1], reqs, strlen(reqs)), (ssize_t)strlen(reqs));
    struct nb_buf b = NB_BUF_INIT;
    uint64_t deadline = mono_ns() + 5000000000ull;
    for (;;) {
        uv_run(&loop, UV_RUN_NOWAIT);
        char chunk[4096];
        ssize_t n = read(sv[1], chunk, sizeof(chunk));
        if (n > 0)
            buf_append(&b, chunk, (size_t)n);
        if (n == 0)
            break; /* Connection: close: the server closed after the reply */
        assert_true(mono_ns() < deadline);
        if (n < 0)
            poll(NULL, 0, 1);
    }
    close(sv[1]);
    for (int i = 0; i < 10; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    memset(out, 0, sizeof(*out));
    assert_int_equal(sscanf(b.data, "HTTP/1.1 %d", &out->status), 1);
    char *p = strcasestr(b.data, "x-amzn-RequestId: ");
    if (p)
        sscanf(p + 18, "%63[^\r]", out->request_id);
    p = strcasestr(b.data, "x-amzn-ErrorType: ");
    if (p)
        sscanf(p + 18, "%63[^\r]", out->error_type);
    p = strstr(b.data, "\r\n\r\n");
    assert_non_null(p);
    snprintf(out->body, sizeof(out->body), "%s", p + 4);
    buf_release(&b);
}

/* Every record in the log, asserting there are n of them. New reference. */
static json_t *records(size_t n)
{
    json_t *ev;
    char *next;
    struct nb_err err = {0};
    assert_int_equal(audit_read(audit_path(D.audit), 0, NULL, 1000, &ev, &next, &err), 0);
    free(next);
    assert_int_equal(json_array_size(ev), n);
    return ev;
}

static const char *rs(json_t *rec, const char *key)
{
    const char *s = json_string_value(json_object_get(rec, key));
    return s ? s : "(none)";
}

static void test_root_change_audited(void **state)
{
    struct tcase tc = {"root", true, NULL, "lambda:CreateFunction", FN "app", 201};
    struct reply r;
    run(&tc, &r);
    assert_true(tc.allowed);
    assert_int_equal(r.status, 201);
    json_t *ev = records(1);
    json_t *rec = json_array_get(ev, 0);
    assert_string_equal(rs(rec, "keyId"), "root");
    assert_string_equal(rs(rec, "action"), "lambda:CreateFunction");
    assert_string_equal(rs(rec, "resource"), FN "app");
    assert_string_equal(rs(rec, "result"), "allowed");
    assert_int_equal(json_integer_value(json_object_get(rec, "status")), 201);
    assert_null(json_object_get(rec, "error"));
    assert_string_equal(rs(rec, "requestId"), r.request_id);
    assert_string_equal(rs(rec, "source"), "local");
    uint64_t t;
    assert_int_equal(audit_parse_time(rs(rec, "time"), &t), 0);
    assert_true(t <= now_ms() && t + 60000 > now_ms());
    json_decref(ev);
}

static void test_reads_not_audited(void **state)
{
    const char *reads[] = {"lambda:GetFunction",    "lambda:ListFunctions", "lambda:ListTags",
                           "lambda:InvokeFunction", "nimbus:GetLogs",       "nimbus:ReadAudit"};
    for (size_t i = 0; i < ARRAY_SIZE(reads); i++) {
        struct tcase tc = {"root", true, NULL, reads[i], "*", 200};
        struct reply r;
        run(&tc, &r);
        assert_true(tc.allowed);
        assert_int_equal(r.status, 200);
    }
    json_t *ev = records(0);
    json_decref(ev);
}

static void test_failed_change_keeps_status(void **state)
{
    struct tcase tc = {"root", true, NULL, "lambda:DeleteFunction", FN "nope", 404};
    struct reply r;
    run(&tc, &r);
    assert_int_equal(r.status, 404);
    json_t *ev = records(1);
    json_t *rec = json_array_get(ev, 0);
    assert_string_equal(rs(rec, "result"), "allowed");
    assert_int_equal(json_integer_value(json_object_get(rec, "status")), 404);
    assert_string_equal(rs(rec, "error"), "ResourceNotFoundException");
    json_decref(ev);
}

static void test_no_policy_denies(void **state)
{
    struct tcase tc = {"AKIDEXAMPLE", false, NULL, "lambda:GetFunction", FN "app", 200};
    struct reply r;
    run(&tc, &r);
    assert_false(tc.allowed);
    assert_int_equal(r.status, 403);
    assert_string_equal(r.error_type, "AccessDeniedException");
    assert_non_null(strstr(r.body, "User: arn:aws:iam::000000000000:user/AKIDEXAMPLE is not "
                                   "authorized to perform: lambda:GetFunction on resource: " FN
                                   "app because no identity-based policy allows the "
                                   "lambda:GetFunction action"));
    /* a denied read is audited too */
    json_t *ev = records(1);
    json_t *rec = json_array_get(ev, 0);
    assert_string_equal(rs(rec, "keyId"), "AKIDEXAMPLE");
    assert_string_equal(rs(rec, "result"), "denied");
    assert_string_equal(rs(rec, "error"), "AccessDeniedException");
    assert_int_equal(json_integer_value(json_object_get(rec, "status")), 403);
    assert_string_equal(rs(rec, "requestId"), r.request_id);
    json_decref(ev);
}

static void test_policy_allows_and_denies(void **state)
{
    const char *pol =
        "{\"Version\":\"2012-10-17\",\"Statement\":["
        "{\"Effect\":\"Allow\",\"Action\":[\"lambda:Get*\",\"lambda:InvokeFunction\","
        "\"lambda:UpdateFunctionCode\"],\"Resource\":\"" FN "app*\"},"
        "{\"Effect\":\"Deny\",\"Action\":\"lambda:UpdateFunctionCode\",\"Resource\":\"" FN
        "app-prod\"}]}";
    struct reply r;
    struct tcase get = {"AKIDDEV", false, pol, "lambda:GetFunction", FN "app-dev", 200};
    run(&get, &r);
    assert_true(get.allowed);
    assert_int_equal(r.status, 200);
    struct tcase upd = {"AKIDDEV", false, pol, "lambda:UpdateFunctionCode", FN "app-dev", 200};
    run(&upd, &r);
    assert_true(upd.allowed);
    struct tcase other = {"AKIDDEV", false, pol, "lambda:GetFunction", FN "billing", 200};
    run(&other, &r);
    assert_false(other.allowed);
    assert_int_equal(r.status, 403);
    struct tcase prod = {"AKIDDEV", false, pol, "lambda:UpdateFunctionCode", FN "app-prod", 200};
    run(&prod, &r);
    assert_false(prod.allowed);
    assert_int_equal(r.status, 403);
    assert_non_null(strstr(r.body, "is not authorized to perform: lambda:UpdateFunctionCode on "
                                   "resource: " FN "app-prod with an explicit deny in an "
                                   "identity-based policy"));
    /* audited: the allowed change and both denials; not the allowed read */
    json_t *ev = records(3);
    assert_string_equal(rs(json_array_get(ev, 0), "result"), "allowed");
    assert_string_equal(rs(json_array_get(ev, 0), "action"), "lambda:UpdateFunctionCode");
    assert_string_equal(rs(json_array_get(ev, 1), "result"), "denied");
    assert_string_equal(rs(json_array_get(ev, 1), "resource"), FN "billing");
    assert_string_equal(rs(json_array_get(ev, 2), "result"), "denied");
    assert_string_equal(rs(json_array_get(ev, 2), "resource"), FN "app-prod");
    json_decref(ev);
}

static void test_bad_policy_denies(void **state)
{
    const char *pols[] = {
        "{not json",
        "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\","
        "\"Condition\":{\"Bool\":{\"aws:SecureTransport\":\"true\"}}}}",
    };
    for (size_t i = 0; i < ARRAY_SIZE(pols); i++) {
        struct tcase tc = {"AKIDBAD", false, pols[i], "lambda:ListFunctions", "*", 200};
        struct reply r;
        run(&tc, &r);
        assert_false(tc.allowed);
        assert_int_equal(r.status, 403);
        assert_string_equal(r.error_type, "AccessDeniedException");
    }
}

static void test_refused_audited(void **state)
{
    struct tcase tc = {"AKIDSTOLEN",
                       false,
                       NULL,
                       "lambda:DeleteFunction",
                       FN "app",
                       0,
                       "InvalidSignatureException"};
    struct reply r;
    run(&tc, &r);
    assert_int_equal(r.status, 403);
    struct tcase unknown = {
        NULL, false, NULL, "lambda:ListFunctions", "*", 0, "UnrecognizedClientException"};
    run(&unknown, &r);
    json_t *ev = records(2);
    json_t *rec = json_array_get(ev, 0);
    assert_string_equal(rs(rec, "result"), "refused");
    assert_string_equal(rs(rec, "error"), "InvalidSignatureException");
    assert_string_equal(rs(rec, "keyId"), "AKIDSTOLEN");
    assert_int_equal(json_integer_value(json_object_get(rec, "status")), 403);
    assert_string_equal(rs(json_array_get(ev, 1), "keyId"), "-");
    assert_string_equal(rs(json_array_get(ev, 1), "error"), "UnrecognizedClientException");
    json_decref(ev);
}

static void test_file_mode_append_reopen_paging(void **state)
{
    struct reply r;
    for (int i = 0; i < 5; i++) {
        struct tcase tc = {"root", true, NULL, "lambda:TagResource", FN "t", 204};
        run(&tc, &r);
    }
    audit_sync(D.audit);
    struct stat st;
    assert_int_equal(stat(audit_path(D.audit), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    off_t size = st.st_size;
    /* reopen (a restart): the old lines stay, new ones go after them */
    audit_close(D.audit);
    chmod(tmpdir, 0700);
    struct nb_err err = {0};
    D.audit = audit_open(tmpdir, &err);
    assert_non_null(D.audit);
    struct tcase tc = {"root", true, NULL, "lambda:UntagResource", FN "t", 204};
    run(&tc, &r);
    assert_int_equal(stat(audit_path(D.audit), &st), 0);
    assert_true(st.st_size > size);
    /* paging: 2 at a time, tokens move forward, nothing lost or repeated */
    char *token = NULL;
    size_t total = 0;
    for (int page = 0; page < 10; page++) {
        json_t *ev;
        char *next;
        assert_int_equal(audit_read(audit_path(D.audit), 0, token, 2, &ev, &next, &err), 0);
        total += json_array_size(ev);
        assert_true(json_array_size(ev) <= 2);
        bool moved = !token || strcmp(next, token);
        json_decref(ev);
        free(token);
        token = next;
        if (!moved)
            break;
    }
    free(token);
    assert_int_equal(total, 6);
    /* since filters by time */
    json_t *ev;
    char *next;
    assert_int_equal(audit_read(audit_path(D.audit), now_ms() + 60000, NULL, 100, &ev, &next, &err),
                     0);
    assert_int_equal(json_array_size(ev), 0);
    json_decref(ev);
    free(next);
    assert_int_equal(audit_read(audit_path(D.audit), 0, "999999999", 100, &ev, &next, &err),
                     -EINVAL);
    assert_int_equal(audit_read(audit_path(D.audit), 0, "x", 100, &ev, &next, &err), -EINVAL);
}

static void test_open_fixes_mode(void **state)
{
    audit_close(D.audit);
    _cleanup_free_ char *path = xasprintf("%s/%s", tmpdir, AUDIT_FILE);
    assert_int_equal(chmod(path, 0644), 0);
    struct nb_err err = {0};
    D.audit = audit_open(tmpdir, &err);
    assert_non_null(D.audit);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    /* the writer's descriptor is O_APPEND: a write lands at the end whatever the offset */
    int fl = -1;
    char fdpath[64];
    for (int fd = 3; fd < 1024 && fl < 0; fd++) {
        char target[4096];
        snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(fdpath, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = '\0';
            if (!strcmp(target, path) && (fcntl(fd, F_GETFL) & O_ACCMODE) == O_WRONLY)
                fl = fcntl(fd, F_GETFL);
        }
    }
    assert_true(fl >= 0);
    assert_true(fl & O_APPEND);
}

static void test_is_change(void **state)
{
    assert_true(authz_is_change("lambda:CreateFunction"));
    assert_true(authz_is_change("lambda:DeleteFunction"));
    assert_true(authz_is_change("lambda:TagResource"));
    assert_true(authz_is_change("lambda:PutFunctionConcurrency"));
    assert_false(authz_is_change("lambda:GetFunction"));
    assert_false(authz_is_change("lambda:ListFunctions"));
    assert_false(authz_is_change("lambda:InvokeFunction"));
    assert_false(authz_is_change("lambda:InvokeFunctionUrl"));
    assert_false(authz_is_change("nimbus:ReadAudit"));
    assert_false(authz_is_change("nimbus:GetLogs"));
    assert_false(authz_is_change("sqs:SendMessage"));
    assert_false(authz_is_change("sqs:ReceiveMessage"));
    assert_false(authz_is_change("sqs:DeleteMessageBatch"));
    assert_true(authz_is_change("sqs:CreateQueue"));
    assert_true(authz_is_change("sqs:PurgeQueue"));
}

static const char *resource_of(const char *label, const char *value, const char *query)
{
    static char out[512];
    struct nb_http_req req = {0};
    arena_init(&req.arena);
    req.query = query;
    struct nb_route_match m = {0};
    if (label) {
        m.names[0] = label;
        m.values[0] = value;
        m.n = 1;
    }
    snprintf(out, sizeof(out), "%s", authz_resource(&D, &req, &m));
    arena_release(&req.arena);
    return out;
}

static void test_resource(void **state)
{
    assert_string_equal(resource_of("FunctionName", "app", ""), FN "app");
    assert_string_equal(resource_of("FunctionName", "app:prod", ""), FN "app:prod");
    assert_string_equal(resource_of("FunctionName", "app", "Qualifier=7"), FN "app:7");
    assert_string_equal(resource_of("FunctionName", "000000000000:function:app", ""), FN "app");
    /* a foreign region or account in the label cannot dodge a statement about the local
     * function: the handlers act on (or refuse) the local one */
    assert_string_equal(
        resource_of("FunctionName", "arn:aws:lambda:eu-west-1:123456789012:function:x:1", ""),
        FN "x:1");
    assert_string_equal(resource_of("FunctionName", "bad name!", ""), "*");
    assert_string_equal(resource_of("ARN", FN "tagged", ""), FN "tagged");
    assert_string_equal(resource_of("ARN", "arn:aws:lambda:eu-west-1:123456789012:function:t", ""),
                        FN "t");
    assert_string_equal(resource_of("ARN", "arn:nope", ""), "arn:nope");
    assert_string_equal(resource_of(NULL, NULL, ""), "*");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_root_change_audited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads_not_audited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_change_keeps_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_policy_denies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_allows_and_denies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_policy_denies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_audited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_mode_append_reopen_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_fixes_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_is_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resource, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

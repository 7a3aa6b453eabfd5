/*
 * authz_bench.c - per-request cost of authorization and auditing, in-process (no HTTP):
 * policy_cached lookup + policy_evaluate for a three-statement policy, authz_resource for a
 * FunctionName label, and audit_append of one record (write(2) to a temporary data dir; the
 * fdatasync runs on the syncer thread and is not on this path). Run by hand:
 *     ./build/bench/authz_bench [ITERATIONS]      (default 200000)
 */
#include <stdio.h>

#include "audit.h"
#include "authz.h"
#include "daemon.h"
#include "policy.h"
#include "router.h"

static const char *policy =
    "{\"Version\":\"2012-10-17\",\"Statement\":["
    "{\"Effect\":\"Allow\",\"Action\":[\"lambda:InvokeFunction\",\"lambda:Get*\"],"
    "\"Resource\":\"arn:aws:lambda:us-east-1:000000000000:function:app-*\"},"
    "{\"Effect\":\"Allow\",\"Action\":\"lambda:ListFunctions\",\"Resource\":\"*\"},"
    "{\"Effect\":\"Deny\",\"NotAction\":\"lambda:Get*\","
    "\"Resource\":\"arn:aws:lambda:*:*:function:app-prod*\"}]}";

static double per_op_ns(uint64_t t0, long n)
{
    return (double)(mono_ns() - t0) / (double)n;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    const char *res = "arn:aws:lambda:us-east-1:000000000000:function:app-web";
    uint64_t t0 = mono_ns();
    long allowed = 0;
    for (long i = 0; i < n; i++) {
        const struct nb_policy *p = policy_cached(policy, NULL);
        allowed += policy_evaluate(p, "lambda:InvokeFunction", res) == POLICY_ALLOW;
    }
    printf("policy_cached + policy_evaluate: %.0f ns/op (%ld allowed)\n", per_op_ns(t0, n),
           allowed);

    struct nb_daemon d = {0};
    d.cfg.region = "us-east-1";
    d.cfg.account_id = "000000000000";
    struct nb_route_match m = {.names = {"FunctionName"}, .values = {"app-web"}, .n = 1};
    struct nb_http_req req = {0};
    req.query = "";
    t0 = mono_ns();
    for (long i = 0; i < n; i++) {
        arena_init(&req.arena);
        if (!authz_resource(&d, &req, &m))
            return 1;
        arena_release(&req.arena);
    }
    printf("authz_resource (FunctionName label): %.0f ns/op\n", per_op_ns(t0, n));

    char dir[] = "/tmp/nimbus-authz-bench-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    struct nb_err err = {0};
    struct nb_audit *a = audit_open(dir, &err);
    if (!a)
        return 1;
    struct nb_audit_record r = {0,
                                "AKIAEXAMPLE",
                                "lambda:UpdateFunctionCode",
                                res,
                                "allowed",
                                200,
                                NULL,
                                "5d0c7e8e-2d6b-4c1e-9f7a-0123456789ab",
                                "127.0.0.1:53312"};
    long na = n / 10 ? n / 10 : 1;
    t0 = mono_ns();
    for (long i = 0; i < na; i++)
        audit_append(a, &r);
    printf("audit_append (loop-thread part): %.0f ns/op\n", per_op_ns(t0, na));
    audit_close(a);
    rm_rf(dir);
    policy_cache_clear();
    return 0;
}

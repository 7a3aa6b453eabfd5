/*
 * fuzz_policy.c - libFuzzer target for policy.c (key policies are outside input: they come with
 * `nimbus keys create --policy FILE`) and for the audit log's time parser.
 *
 * Input: "ACTION\nRESOURCE\nPOLICY-JSON". The policy text is parsed (policy_parse, and through the
 * cache), and when it parses, evaluated for the action and resource and for a few fixed ones.
 * Invariants checked: no crash, no leak (ASan); policy_validate agrees with policy_parse; the
 * cached policy decides like a fresh parse; a document that parses has statements; a decision is
 * one of the three values; the glob matcher agrees with itself on a '*'-prefixed pattern.
 */
#include "audit.h"
#include "policy.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *fixed[][2] = {
    {"lambda:InvokeFunction", "arn:aws:lambda:us-east-1:000000000000:function:app"},
    {"lambda:InvokeFunction", "arn:aws:lambda:us-east-1:000000000000:function:app:prod"},
    {"lambda:ListFunctions", "*"},
    {"nimbus:ReadAudit", "*"},
};

static void check(const struct nb_policy *p, const struct nb_policy *c, const char *a,
                  const char *r)
{
    enum nb_policy_decision d1 = policy_evaluate(p, a, r), d2 = policy_evaluate(c, a, r);
    if (d1 != d2)
        BUG("cached policy decides %d, fresh one %d", d2, d1);
    if (d1 != POLICY_ALLOW && d1 != POLICY_IMPLICIT_DENY && d1 != POLICY_EXPLICIT_DENY)
        BUG("decision %d", d1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = xstrndup((const char *)data, size); /* stops at a NUL, like a C string would */
    char *action = s, *resource = strchr(s, '\n'), *json;
    if (resource) {
        *resource++ = '\0';
        json = strchr(resource, '\n');
        if (json)
            *json++ = '\0';
        else
            json = resource;
    } else {
        resource = json = s;
    }

    struct nb_err err = {0};
    struct nb_policy *p = policy_parse(json, &err);
    int v = policy_validate(json, NULL);
    if ((p != NULL) != (v == 0))
        BUG("policy_validate (%d) disagrees with policy_parse (%p)", v, (void *)p);
    const struct nb_policy *c = policy_cached(json, NULL);
    if ((p != NULL) != (c != NULL))
        BUG("policy_cached disagrees with policy_parse");
    if (p) {
        if (policy_statement_count(p) == 0)
            BUG("a parsed policy without statements");
        check(p, c, action, resource);
        for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
            check(p, c, fixed[i][0], fixed[i][1]);
        policy_free(p);
    }
    if (policy_glob(action, resource, false) && !policy_glob(action, resource, true))
        BUG("a case-sensitive match that fails case-insensitively");
    uint64_t ms;
    audit_parse_time(action, &ms);
    free(s);
    return 0;
}

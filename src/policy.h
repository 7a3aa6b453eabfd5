/*
 * policy.h - IAM-style identity policies: parse a JSON policy document once, then answer "may
 * this key perform action on resource?".
 *
 * Supported (see docs/SECURITY.md): Version, Id, Statement (one object or an array), Sid, Effect
 * Allow|Deny, Action/NotAction and Resource/NotResource (one string or an array of strings) with
 * the wildcards '*' (any run of characters, also empty) and '?' (one character). Actions match
 * case-insensitively ("lambda:invoke*" matches "lambda:InvokeFunction"); resources match
 * case-sensitively and, like IAM's ArnLike, colon segment by colon segment for the first five
 * ("arn", partition, service, region, account) while the sixth, the resource part, is matched as
 * a whole (so '*' there also spans ':' and '/'). A function ARN without a qualifier therefore
 * names only unqualified requests; "function:app:*" covers its versions and aliases.
 * Refused at parse time, never ignored (fail closed): Condition, Principal and NotPrincipal,
 * unknown members, duplicate members, a statement without Effect, without exactly one of
 * Action/NotAction or of Resource/NotResource, actions that are not "*" or "service:Operation",
 * resources that are not "*" or an ARN with six segments, documents over 6,144 non-blank
 * characters (IAM's managed-policy limit).
 * Evaluation: an explicit Deny wins over an Allow, which wins over the implicit deny.
 * Pure (no I/O). The cache (policy_cached) is loop-thread only; the rest is thread-safe.
 */
#ifndef NIMBUS_POLICY_H
#define NIMBUS_POLICY_H

#include "err.h"

#define POLICY_MAX_CHARS 6144 /* non-whitespace characters, as IAM counts them */

struct nb_policy;

enum nb_policy_decision {
    POLICY_IMPLICIT_DENY = 0, /* no statement allows */
    POLICY_ALLOW,             /* some Allow statement applies and no Deny does */
    POLICY_EXPLICIT_DENY,     /* a Deny statement applies */
};

/* Parses json into a new policy (caller frees with policy_free), or NULL with err set (-EINVAL,
 * message says what is wrong and where, e.g. "statement 2: Condition is not supported"). */
struct nb_policy *policy_parse(const char *json, struct nb_err *err);
void policy_free(struct nb_policy *p);
/* 0 when json is a policy nimbus can enforce, else -EINVAL with the message of policy_parse. For
 * refusing a bad policy when a key is created. */
int policy_validate(const char *json, struct nb_err *err);
/* The decision of p for action ("service:Operation") on resource (an ARN or "*"). */
enum nb_policy_decision policy_evaluate(const struct nb_policy *p, const char *action,
                                        const char *resource);
/* Statements in p (for tests and diagnostics). */
size_t policy_statement_count(const struct nb_policy *p);

/* The parsed form of json from a process-wide cache: each distinct text is parsed once (a text
 * that fails to parse is remembered too and fails again with the same message). The result is
 * borrowed from the cache and valid until the next policy_cached or policy_cache_clear call.
 * Loop thread only. At most POLICY_CACHE_MAX texts are kept; past that the cache starts over. */
#define POLICY_CACHE_MAX 1024
const struct nb_policy *policy_cached(const char *json, struct nb_err *err);
/* Frees every cached policy (daemon stop, tests). */
void policy_cache_clear(void);
/* How many texts policy_cached parsed since the process started (for tests of the cache). */
uint64_t policy_cache_parses(void);

/* IAM wildcard match of pattern against s: '*' any run (also empty), '?' one character; with
 * nocase, ASCII letters compare case-insensitively. Exposed for tests. */
bool policy_glob(const char *pattern, const char *s, bool nocase);

#endif

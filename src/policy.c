/*
 * policy.c - IAM-style policy documents: parsing with clear refusals, wildcard matching,
 * evaluation, and the parse-once cache (contract in policy.h).
 *
 * A parsed policy is an immutable array of statements, each holding its patterns as strings;
 * evaluation is a loop over statements with an early exit on the first applicable Deny.
 * Invariant: every pattern kept by a parsed policy passed check_action / check_resource, so an
 * ARN pattern always has at least six colon-separated segments. The cache is a fixed-size hash
 * table of texts (loop thread only); failed parses are cached with their message.
 */
#include "policy.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>

#define POLICY_MAX_BYTES (64 * 1024) /* raw text, whitespace included */
#define ARN_FIXED_SEGMENTS 5         /* arn:partition:service:region:account: then the resource */

struct stmt {
    bool deny, not_action, not_resource;
    char **actions;
    size_t n_actions;
    char **resources;
    size_t n_resources;
};

struct nb_policy {
    struct stmt *st;
    size_t n;
};

/* ---- matching ---- */

static bool chr_eq(char a, char b, bool nocase)
{
    if (nocase)
        return tolower((unsigned char)a) == tolower((unsigned char)b);
    return a == b;
}

/* Iterative wildcard match with one backtrack point (the last '*'): O(|p| * |s|) at worst. */
static bool glob_n(const char *p, size_t plen, const char *s, size_t slen, bool nocase)
{
    size_t pi = 0, si = 0, star = SIZE_MAX, mark = 0;
    while (si < slen) {
        if (pi < plen && p[pi] == '*') {
            star = pi++;
            mark = si;
        } else if (pi < plen && (p[pi] == '?' || chr_eq(p[pi], s[si], nocase))) {
            pi++;
            si++;
        } else if (star != SIZE_MAX) {
            pi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (pi < plen && p[pi] == '*')
        pi++;
    return pi == plen;
}

bool policy_glob(const char *pattern, const char *s, bool nocase)
{
    return glob_n(pattern, strlen(pattern), s, strlen(s), nocase);
}

/* ArnLike: the five fixed segments one by one (a wildcard cannot span ':' there), then the
 * resource part as a whole. "*" matches everything, including the request resource "*". */
static bool resource_match(const char *pat, const char *res)
{
    if (!strcmp(pat, "*"))
        return true;
    for (int i = 0; i < ARN_FIXED_SEGMENTS; i++) {
        const char *pc = strchr(pat, ':'), *rc = strchr(res, ':');
        if (!pc || !rc)
            return false;
        if (!glob_n(pat, (size_t)(pc - pat), res, (size_t)(rc - res), false))
            return false;
        pat = pc + 1;
        res = rc + 1;
    }
    return policy_glob(pat, res, false);
}

static bool any_match(char **pats, size_t n, const char *s, bool is_action)
{
    for (size_t i = 0; i < n; i++)
        if (is_action ? policy_glob(pats[i], s, true) : resource_match(pats[i], s))
            return true;
    return false;
}

enum nb_policy_decision policy_evaluate(const struct nb_policy *p, const char *action,
                                        const char *resource)
{
    bool allowed = false;
    for (size_t i = 0; i < p->n; i++) {
        const struct stmt *s = &p->st[i];
        if (any_match(s->actions, s->n_actions, action, true) == s->not_action)
            continue;
        if (any_match(s->resources, s->n_resources, resource, false) == s->not_resource)
            continue;
        if (s->deny)
            return POLICY_EXPLICIT_DENY;
        allowed = true;
    }
    return allowed ? POLICY_ALLOW : POLICY_IMPLICIT_DENY;
}

size_t policy_statement_count(const struct nb_policy *p)
{
    return p->n;
}

/* ---- parsing ---- */

static void stmt_release(struct stmt *s)
{
    for (size_t i = 0; i < s->n_actions; i++)
        free(s->actions[i]);
    for (size_t i = 0; i < s->n_resources; i++)
        free(s->resources[i]);
    free(s->actions);
    free(s->resources);
}

void policy_free(struct nb_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        stmt_release(&p->st[i]);
    free(p->st);
    free(p);
}

/* "*" or service:Operation: the service is [A-Za-z0-9-]+ without wildcards, the operation
 * [A-Za-z0-9_*?-]+. */
static bool check_action(const char *a)
{
    if (!strcmp(a, "*"))
        return true;
    const char *colon = strchr(a, ':');
    if (!colon || colon == a || !colon[1])
        return false;
    for (const char *c = a; c < colon; c++)
        if (!isalnum((unsigned char)*c) && *c != '-')
            return false;
    for (const char *c = colon + 1; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("_*?-", *c))
            return false;
    return true;
}

/* "*" or "arn:" with at least six colon-separated segments and no control characters. */
static bool check_resource(const char *r)
{
    if (!strcmp(r, "*"))
        return true;
    if (strncmp(r, "arn:", 4) != 0)
        return false;
    int colons = 0;
    for (const char *c = r; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return false;
        colons += *c == ':';
    }
    return colons >= ARN_FIXED_SEGMENTS;
}

/* Reads a string-or-array-of-strings member into *out. what: "Action", "Resource", ... */
static int parse_patterns(json_t *v, const char *what, const char *where, bool is_action,
                          char ***out, size_t *n, struct nb_err *err)
{
    size_t count = json_is_array(v) ? json_array_size(v) : 1;
    if (!json_is_string(v) && !json_is_array(v))
        return err_set(err, EINVAL, "%s: %s must be a string or an array of strings", where, what);
    if (count == 0)
        return err_set(err, EINVAL, "%s: %s must not be an empty array", where, what);
    char **list = xcalloc(count, sizeof(*list));
    for (size_t i = 0; i < count; i++) {
        json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        const char *s = json_string_value(e);
        bool ok = s && strlen(s) == json_string_length(e);
        if (ok)
            ok = is_action ? check_action(s) : check_resource(s);
        if (!ok) {
            for (size_t k = 0; k < i; k++)
                free(list[k]);
            free(list);
            if (!s)
                return err_set(err, EINVAL, "%s: %s must be a string or an array of strings", where,
                               what);
            if (is_action)
                return err_set(err, EINVAL,
                               "%s: %s '%s' is not \"*\" or \"service:Operation\" (e.g. "
                               "lambda:InvokeFunction, lambda:Get*)",
                               where, what, s);
            return err_set(err, EINVAL,
                           "%s: %s '%s' is not \"*\" or an ARN "
                           "(arn:partition:service:region:account:resource)",
                           where, what, s);
        }
        list[i] = xstrdup(s);
    }
    *out = list;
    *n = count;
    return 0;
}

static int parse_statement(json_t *o, size_t idx, struct stmt *s, struct nb_err *err)
{
    char where[160];
    json_t *sid = json_object_get(o, "Sid");
    if (json_is_string(sid))
        snprintf(where, sizeof(where), "statement %zu (Sid '%.64s')", idx + 1,
                 json_string_value(sid));
    else
        snprintf(where, sizeof(where), "statement %zu", idx + 1);
    if (!json_is_object(o))
        return err_set(err, EINVAL, "%s: a statement must be a JSON object", where);

    const char *key;
    json_t *v;
    json_object_foreach (o, key, v) {
        if (!strcmp(key, "Condition"))
            return err_set(err, EINVAL,
                           "%s: Condition is not supported by nimbus (refused rather than "
                           "ignored; remove it or express the rule with Action and Resource)",
                           where);
        if (!strcmp(key, "Principal") || !strcmp(key, "NotPrincipal"))
            return err_set(err, EINVAL,
                           "%s: %s is not allowed in an identity-based policy (the key the "
                           "policy is attached to is the principal)",
                           where, key);
        if (strcmp(key, "Sid") && strcmp(key, "Effect") && strcmp(key, "Action") &&
            strcmp(key, "NotAction") && strcmp(key, "Resource") && strcmp(key, "NotResource"))
            return err_set(err, EINVAL, "%s: unknown member '%s'", where, key);
    }
    if (sid && !json_is_string(sid))
        return err_set(err, EINVAL, "%s: Sid must be a string", where);
    const char *effect = json_string_value(json_object_get(o, "Effect"));
    if (!effect)
        return err_set(err, EINVAL, "%s: Effect is missing (\"Allow\" or \"Deny\")", where);
    if (strcmp(effect, "Allow") && strcmp(effect, "Deny"))
        return err_set(err, EINVAL, "%s: Effect '%s' is not \"Allow\" or \"Deny\"", where, effect);
    s->deny = !strcmp(effect, "Deny");

    json_t *act = json_object_get(o, "Action"), *nact = json_object_get(o, "NotAction");
    json_t *res = json_object_get(o, "Resource"), *nres = json_object_get(o, "NotResource");
    if (!!act == !!nact)
        return err_set(err, EINVAL, "%s: %s", where,
                       act ? "Action and NotAction cannot be combined"
                           : "Action or NotAction is missing");
    if (!!res == !!nres)
        return err_set(err, EINVAL, "%s: %s", where,
                       res ? "Resource and NotResource cannot be combined"
                           : "Resource or NotResource is missing");
    s->not_action = !act;
    s->not_resource = !res;
    int rc = parse_patterns(act ? act : nact, act ? "Action" : "NotAction", where, true,
                            &s->actions, &s->n_actions, err);
    if (rc < 0)
        return rc;
    return parse_patterns(res ? res : nres, res ? "Resource" : "NotResource", where, false,
                          &s->resources, &s->n_resources, err);
}

static int check_size(const char *json, struct nb_err *err)
{
    size_t bytes = 0, chars = 0;
    for (const char *c = json; *c; c++, bytes++) {
        if (bytes >= POLICY_MAX_BYTES)
            return err_set(err, EINVAL, "policy document is over %d bytes", POLICY_MAX_BYTES);
        chars += !isspace((unsigned char)*c);
    }
    if (chars > POLICY_MAX_CHARS)
        return err_set(err, EINVAL,
                       "policy document has %zu characters (whitespace not counted), over the "
                       "%d allowed",
                       chars, POLICY_MAX_CHARS);
    return 0;
}

static int parse_doc(json_t *doc, struct nb_policy *p, struct nb_err *err)
{
    if (!json_is_object(doc))
        return err_set(err, EINVAL, "policy document must be a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach (doc, key, v) {
        if (strcmp(key, "Version") && strcmp(key, "Id") && strcmp(key, "Statement"))
            return err_set(err, EINVAL,
                           "policy document: unknown member '%s' (expected Version, Id, "
                           "Statement)",
                           key);
    }
    json_t *ver = json_object_get(doc, "Version");
    if (ver && (!json_is_string(ver) || (strcmp(json_string_value(ver), "2012-10-17") &&
                                         strcmp(json_string_value(ver), "2008-10-17"))))
        return err_set(err, EINVAL,
                       "policy document: Version must be \"2012-10-17\" or "
                       "\"2008-10-17\"");
    json_t *id = json_object_get(doc, "Id");
    if (id && !json_is_string(id))
        return err_set(err, EINVAL, "policy document: Id must be a string");
    json_t *st = json_object_get(doc, "Statement");
    if (!st)
        return err_set(err, EINVAL, "policy document: Statement is missing");
    if (!json_is_object(st) && !json_is_array(st))
        return err_set(err, EINVAL,
                       "policy document: Statement must be an object or an array of objects");
    size_t n = json_is_array(st) ? json_array_size(st) : 1;
    if (n == 0)
        return err_set(err, EINVAL, "policy document: Statement must not be an empty array");
    p->st = xcalloc(n, sizeof(*p->st));
    for (size_t i = 0; i < n; i++) {
        int rc = parse_statement(json_is_array(st) ? json_array_get(st, i) : st, i, &p->st[i], err);
        p->n = i + 1; /* the failed one too: policy_free releases what it got */
        if (rc < 0)
            return rc;
    }
    return 0;
}

struct nb_policy *policy_parse(const char *json, struct nb_err *err)
{
    if (check_size(json, err) < 0)
        return NULL;
    json_error_t jerr;
    json_t *doc = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        err_set(err, EINVAL, "policy document is not valid JSON: %s (line %d, column %d)",
                jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    struct nb_policy *p = xcalloc(1, sizeof(*p));
    int rc = parse_doc(doc, p, err);
    json_decref(doc);
    if (rc < 0) {
        policy_free(p);
        return NULL;
    }
    return p;
}

int policy_validate(const char *json, struct nb_err *err)
{
    struct nb_policy *p = policy_parse(json, err);
    if (!p)
        return -EINVAL;
    policy_free(p);
    return 0;
}

/* ---- the cache ---- */

#define CACHE_BUCKETS 256

struct cache_entry {
    struct cache_entry *next;
    uint64_t hash;
    char *text;
    struct nb_policy *policy; /* NULL when the text failed to parse */
    char *error;              /* the parse error then */
};

static struct cache_entry *cache[CACHE_BUCKETS];
static size_t cache_count;
static uint64_t cache_parses;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

void policy_cache_clear(void)
{
    for (size_t i = 0; i < CACHE_BUCKETS; i++) {
        struct cache_entry *e = cache[i];
        while (e) {
            struct cache_entry *next = e->next;
            policy_free(e->policy);
            free(e->text);
            free(e->error);
            free(e);
            e = next;
        }
        cache[i] = NULL;
    }
    cache_count = 0;
}

uint64_t policy_cache_parses(void)
{
    return cache_parses;
}

const struct nb_policy *policy_cached(const char *json, struct nb_err *err)
{
    uint64_t h = fnv1a(json);
    struct cache_entry *e;
    for (e = cache[h % CACHE_BUCKETS]; e; e = e->next)
        if (e->hash == h && !strcmp(e->text, json))
            break;
    if (!e) {
        if (cache_count >= POLICY_CACHE_MAX)
            policy_cache_clear();
        struct nb_err perr = {0};
        e = xcalloc(1, sizeof(*e));
        e->hash = h;
        e->text = xstrdup(json);
        e->policy = policy_parse(json, &perr);
        if (!e->policy)
            e->error = xstrdup(perr.msg);
        e->next = cache[h % CACHE_BUCKETS];
        cache[h % CACHE_BUCKETS] = e;
        cache_count++;
        cache_parses++;
    }
    if (!e->policy)
        err_set(err, EINVAL, "%s", e->error);
    return e->policy;
}

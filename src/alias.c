/*
 * alias.c - aliases: validation with Lambda's rules and messages, AliasConfiguration JSON, the
 * store record, the weighted choice of a version, and the previous target kept for rollback.
 *
 * Invariants: an alias' target version is "$LATEST" or a decimal version; an additional version
 * is decimal, differs from the target version, and exists only when the target is a published
 * version; weights are within [0,1]. Nothing here touches the loop, the registry or the disk.
 */
#include "alias.h"

#include <errno.h>
#include <math.h>

#include "util.h"

#define ALIAS_NAME_MAX 128
#define DESCRIPTION_MAX_LEN 256
#define RECORD_FORMAT 1

bool alias_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > ALIAS_NAME_MAX)
        return false;
    bool all_digits = true;
    for (const char *p = name; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok)
            return false;
        if (c < '0' || c > '9')
            all_digits = false;
    }
    return !all_digits;
}

/* A published version number as Lambda writes it: decimal, no sign, no leading zero. */
static bool version_number_valid(const char *v)
{
    int64_t n;
    return v[0] >= '1' && v[0] <= '9' && parse_i64(v, 1, INT64_MAX, &n) == 0;
}

static bool version_valid(const char *v)
{
    return !strcmp(v, "$LATEST") || version_number_valid(v);
}

static void target_release(struct nb_alias_target *t)
{
    free(t->version);
    free(t->extra);
    t->version = t->extra = NULL;
}

static void target_copy(struct nb_alias_target *dst, const struct nb_alias_target *src)
{
    dst->version = src->version ? xstrdup(src->version) : NULL;
    dst->extra = src->extra ? xstrdup(src->extra) : NULL;
    dst->weight = src->weight;
}

static bool target_equal(const struct nb_alias_target *a, const struct nb_alias_target *b)
{
    if (strcmp(a->version, b->version))
        return false;
    if (!a->extra || !b->extra)
        return !a->extra && !b->extra;
    return !strcmp(a->extra, b->extra) && a->weight == b->weight;
}

void alias_free(struct nb_alias *a)
{
    if (!a)
        return;
    free(a->name);
    free(a->arn);
    target_release(&a->to);
    target_release(&a->prev);
    free(a->description);
    free(a->revision_id);
    free(a);
}

static void alias_freep(struct nb_alias **a)
{
    alias_free(*a);
}
#define _cleanup_alias_ _cleanup_(alias_freep)

static struct nb_alias *alias_dup(const struct nb_alias *cur)
{
    struct nb_alias *a = xcalloc(1, sizeof(*a));
    a->name = xstrdup(cur->name);
    a->arn = xstrdup(cur->arn);
    target_copy(&a->to, &cur->to);
    a->description = xstrdup(cur->description);
    a->revision_id = xstrdup(cur->revision_id);
    a->has_prev = cur->has_prev;
    if (cur->has_prev)
        target_copy(&a->prev, &cur->prev);
    return a;
}

static void new_revision(struct nb_alias *a)
{
    char rev[37];
    uuid_v4(rev);
    free(a->revision_id);
    a->revision_id = xstrdup(rev);
}

static int null_error(struct nb_err *err, const char *member)
{
    return err_set(err, EINVAL,
                   "1 validation error detected: Value null at '%s' failed to satisfy "
                   "constraint: Member must not be null",
                   member);
}

static int type_error(struct nb_err *err, const char *member, const char *type)
{
    return err_set(err, EINVAL,
                   "1 validation error detected: Value at '%s' failed to satisfy constraint: "
                   "Member must be of type %s",
                   member, type);
}

static json_t *member(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

static int get_string(json_t *req, const char *key, const char *wire, const char **out,
                      struct nb_err *err)
{
    json_t *v = member(req, key);
    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return type_error(err, wire, "string");
    *out = json_string_value(v);
    return 0;
}

static int check_version(const char *v, nb_alias_version_exists_cb exists, void *data,
                         const char *fn_arn, struct nb_err *err)
{
    if (!version_valid(v) || strlen(v) > 1024)
        return err_set(err, EINVAL,
                       "1 validation error detected: Value '%s' at 'functionVersion' failed to "
                       "satisfy constraint: Member must satisfy regular expression pattern: "
                       "(\\$LATEST|[0-9]+)",
                       v);
    if (!exists(data, v))
        return err_set(err, ENOENT, "Function not found: %s:%s", fn_arn, v);
    return 0;
}

/* Parses RoutingConfig into t->extra/t->weight (t->version already set and checked). An absent
 * RoutingConfig leaves t alone; an empty weights map clears it. */
static int parse_routing(json_t *req, struct nb_alias_target *t, nb_alias_version_exists_cb exists,
                         void *data, const char *fn_arn, struct nb_err *err)
{
    json_t *rc = member(req, "RoutingConfig");
    if (!rc)
        return 0;
    if (!json_is_object(rc))
        return type_error(err, "routingConfig", "structure");
    json_t *w = member(rc, "AdditionalVersionWeights");
    free(t->extra);
    t->extra = NULL;
    t->weight = 0;
    if (!w)
        return 0;
    if (!json_is_object(w))
        return type_error(err, "routingConfig.additionalVersionWeights", "map");
    if (json_object_size(w) == 0)
        return 0;
    if (json_object_size(w) > 1)
        return err_set(err, EINVAL,
                       "1 validation error detected: Value at "
                       "'routingConfig.additionalVersionWeights' failed to satisfy constraint: "
                       "Member must have length less than or equal to 1");
    const char *k = json_object_iter_key(json_object_iter(w));
    json_t *v = json_object_iter_value(json_object_iter(w));
    if (!version_number_valid(k))
        return err_set(err, EINVAL,
                       "1 validation error detected: Value '%s' at "
                       "'routingConfig.additionalVersionWeights' failed to satisfy constraint: "
                       "Map keys must satisfy constraint: [Member must satisfy regular expression "
                       "pattern: [0-9]+]",
                       k);
    if (!json_is_number(v))
        return type_error(err, "routingConfig.additionalVersionWeights", "double");
    double weight = json_number_value(v);
    if (!(weight >= 0.0 && weight <= 1.0))
        return err_set(err, EINVAL,
                       "1 validation error detected: Value '%g' at "
                       "'routingConfig.additionalVersionWeights' failed to satisfy constraint: "
                       "Map value must satisfy constraint: [Member must have value less than or "
                       "equal to 1.0, Member must have value greater than or equal to 0.0]",
                       weight);
    if (!strcmp(t->version, "$LATEST"))
        return err_set(err, EINVAL,
                       "Invalid function version $LATEST. Function version $LATEST is not "
                       "supported for alias routing: point the alias at a published version");
    if (!strcmp(k, t->version))
        return err_set(err, EINVAL,
                       "Invalid function version %s. Function version %s is already included in "
                       "routing configuration.",
                       k, k);
    if (!exists(data, k))
        return err_set(err, ENOENT, "Function not found: %s:%s", fn_arn, k);
    t->extra = xstrdup(k);
    t->weight = weight;
    return 0;
}

static int parse_description(json_t *req, char **out, struct nb_err *err)
{
    const char *s;
    if (get_string(req, "Description", "description", &s, err) < 0)
        return -EINVAL;
    if (!s)
        return 0;
    if (strlen(s) > DESCRIPTION_MAX_LEN)
        return err_set(err, EINVAL,
                       "1 validation error detected: Value '%s' at 'description' failed to "
                       "satisfy constraint: Member must have length less than or equal to %d",
                       s, DESCRIPTION_MAX_LEN);
    free(*out);
    *out = xstrdup(s);
    return 0;
}

struct nb_alias *alias_create(const char *fn_arn, json_t *req, nb_alias_version_exists_cb exists,
                              void *data, struct nb_err *err)
{
    const char *name, *version;
    if (get_string(req, "Name", "name", &name, err) < 0 ||
        get_string(req, "FunctionVersion", "functionVersion", &version, err) < 0)
        return NULL;
    if (!name) {
        null_error(err, "name");
        return NULL;
    }
    if (!alias_name_valid(name)) {
        err_set(err, EINVAL,
                "1 validation error detected: Value '%s' at 'name' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern: "
                "(?!^[0-9]+$)([a-zA-Z0-9-_]+)",
                name);
        return NULL;
    }
    if (!version) {
        null_error(err, "functionVersion");
        return NULL;
    }
    if (check_version(version, exists, data, fn_arn, err) < 0)
        return NULL;
    _cleanup_alias_ struct nb_alias *a = xcalloc(1, sizeof(*a));
    a->name = xstrdup(name);
    a->arn = xasprintf("%s:%s", fn_arn, name);
    a->to.version = xstrdup(version);
    a->description = xstrdup("");
    if (parse_description(req, &a->description, err) < 0 ||
        parse_routing(req, &a->to, exists, data, fn_arn, err) < 0)
        return NULL;
    new_revision(a);
    return steal_ptr(a);
}

/* The unqualified function ARN an alias belongs to (its ARN minus ":name"). */
static char *function_arn_of(const struct nb_alias *a)
{
    return xstrndup(a->arn, strlen(a->arn) - strlen(a->name) - 1);
}

struct nb_alias *alias_update(const struct nb_alias *cur, json_t *req,
                              nb_alias_version_exists_cb exists, void *data, struct nb_err *err)
{
    _cleanup_free_ char *fn_arn = function_arn_of(cur);
    const char *version;
    if (get_string(req, "FunctionVersion", "functionVersion", &version, err) < 0)
        return NULL;
    _cleanup_alias_ struct nb_alias *a = alias_dup(cur);
    if (version) {
        if (check_version(version, exists, data, fn_arn, err) < 0)
            return NULL;
        free(a->to.version);
        a->to.version = xstrdup(version);
        /* routing stays as it was unless given; it cannot name the new primary version */
        if (!member(req, "RoutingConfig") && a->to.extra && !strcmp(a->to.extra, version)) {
            free(a->to.extra);
            a->to.extra = NULL;
            a->to.weight = 0;
        }
    }
    if (parse_description(req, &a->description, err) < 0 ||
        parse_routing(req, &a->to, exists, data, fn_arn, err) < 0)
        return NULL;
    if (a->to.extra && !strcmp(a->to.version, "$LATEST")) {
        err_set(err, EINVAL,
                "Invalid function version $LATEST. Function version $LATEST is not supported "
                "for alias routing: point the alias at a published version");
        return NULL;
    }
    if (!target_equal(&a->to, &cur->to)) {
        target_release(&a->prev);
        target_copy(&a->prev, &cur->to);
        a->has_prev = true;
    }
    new_revision(a);
    return steal_ptr(a);
}

struct nb_alias *alias_rollback(const struct nb_alias *cur, nb_alias_version_exists_cb exists,
                                void *data, struct nb_err *err)
{
    if (!cur->has_prev) {
        err_set(err, EEXIST,
                "alias '%s' has no previous version to roll back to: it was not changed since it "
                "was created",
                cur->name);
        return NULL;
    }
    if (!exists(data, cur->prev.version) || (cur->prev.extra && !exists(data, cur->prev.extra))) {
        err_set(err, EEXIST, "cannot roll back alias '%s': its previous version %s was deleted",
                cur->name, exists(data, cur->prev.version) ? cur->prev.extra : cur->prev.version);
        return NULL;
    }
    struct nb_alias *a = alias_dup(cur);
    target_release(&a->to);
    target_release(&a->prev);
    target_copy(&a->to, &cur->prev);
    target_copy(&a->prev, &cur->to);
    new_revision(a);
    return a;
}

bool alias_uses_version(const struct nb_alias *a, const char *version)
{
    return !strcmp(a->to.version, version) || (a->to.extra && !strcmp(a->to.extra, version));
}

const char *alias_pick(const struct nb_alias *a, double u)
{
    if (a->to.extra && u < a->to.weight)
        return a->to.extra;
    return a->to.version;
}

double alias_random(void)
{
    return (double)(random_u64() >> 11) * 0x1.0p-53;
}

json_t *alias_json(const struct nb_alias *a)
{
    json_t *o =
        json_pack("{s:s,s:s,s:s,s:s,s:s}", "AliasArn", a->arn, "Name", a->name, "FunctionVersion",
                  a->to.version, "Description", a->description, "RevisionId", a->revision_id);
    if (a->to.extra)
        json_object_set_new(
            o, "RoutingConfig",
            json_pack("{s:{s:f}}", "AdditionalVersionWeights", a->to.extra, a->to.weight));
    return o;
}

static json_t *target_json(const struct nb_alias_target *t)
{
    json_t *o = json_pack("{s:s}", "version", t->version);
    if (t->extra) {
        json_object_set_new(o, "extra", json_string(t->extra));
        json_object_set_new(o, "weight", json_real(t->weight));
    }
    return o;
}

char *alias_to_record(const struct nb_alias *a)
{
    json_t *o = json_pack("{s:i,s:s,s:o,s:s,s:s}", "format", RECORD_FORMAT, "name", a->name, "to",
                          target_json(&a->to), "description", a->description, "revision_id",
                          a->revision_id);
    if (a->has_prev)
        json_object_set_new(o, "prev", target_json(&a->prev));
    char *s = json_dumps(o, JSON_COMPACT);
    ASSERT(s);
    json_decref(o);
    return s;
}

static int target_from(json_t *o, struct nb_alias_target *t, struct nb_err *err)
{
    json_t *v = json_object_get(o, "version"), *x = json_object_get(o, "extra"),
           *w = json_object_get(o, "weight");
    if (!json_is_string(v) || !version_valid(json_string_value(v)))
        return err_set(err, EINVAL, "alias record: invalid version");
    t->version = xstrdup(json_string_value(v));
    if (!x)
        return 0;
    if (!json_is_string(x) || !version_number_valid(json_string_value(x)) || !json_is_number(w) ||
        json_number_value(w) < 0 || json_number_value(w) > 1)
        return err_set(err, EINVAL, "alias record: invalid routing");
    t->extra = xstrdup(json_string_value(x));
    t->weight = json_number_value(w);
    return 0;
}

struct nb_alias *alias_from_record(const char *fn_arn, const char *doc, struct nb_err *err)
{
    json_error_t jerr;
    json_t *o = json_loads(doc, 0, &jerr);
    if (!o) {
        err_set(err, EINVAL, "alias record: invalid JSON: %s", jerr.text);
        return NULL;
    }
    _cleanup_alias_ struct nb_alias *a = xcalloc(1, sizeof(*a));
    json_t *name = json_object_get(o, "name"), *desc = json_object_get(o, "description"),
           *rev = json_object_get(o, "revision_id"), *to = json_object_get(o, "to"),
           *prev = json_object_get(o, "prev");
    int rc = 0;
    if (!json_is_string(name) || !alias_name_valid(json_string_value(name)) ||
        !json_is_string(desc) || !json_is_string(rev) || !json_is_object(to)) {
        rc = err_set(err, EINVAL, "alias record: missing or invalid members");
        goto out;
    }
    a->name = xstrdup(json_string_value(name));
    a->arn = xasprintf("%s:%s", fn_arn, a->name);
    a->description = xstrdup(json_string_value(desc));
    a->revision_id = xstrdup(json_string_value(rev));
    if ((rc = target_from(to, &a->to, err)) < 0)
        goto out;
    if (json_is_object(prev)) {
        a->has_prev = true;
        rc = target_from(prev, &a->prev, err);
    }
out:
    json_decref(o);
    return rc < 0 ? NULL : steal_ptr(a);
}

/*
 * alias.h - a Lambda alias (LAMBDA.md §3.5): a name that points at a published version or $LATEST,
 * optionally sending a share of invocations to one additional version (RoutingConfig's
 * AdditionalVersionWeights), validated from CreateAlias / UpdateAlias bodies, serialised to
 * Lambda's AliasConfiguration and to the store's record.
 *
 * nimbus also keeps the alias' previous target (version and routing before its last change) so
 * `nimbus rollback` can restore it in one step; Lambda has no such field, it is not in the JSON.
 *
 * Ownership: a struct nb_alias is immutable once built; the registry owns the current one of each
 * name (registry.h) and a change replaces it whole. Every call here is pure and thread-safe.
 */
#ifndef NIMBUS_ALIAS_H
#define NIMBUS_ALIAS_H

#include <jansson.h>

#include "err.h"

/* Where an alias sends invocations: version, and extra (or NULL) with probability weight. */
struct nb_alias_target {
    char *version; /* "$LATEST" or "N" */
    char *extra;   /* additional version "N", or NULL */
    double weight; /* 0..1: share of invocations that run extra */
};

struct nb_alias {
    char *name;
    char *arn; /* function ARN + ":" + name */
    struct nb_alias_target to;
    char *description;
    char *revision_id; /* UUID, new on every change */
    bool has_prev;
    struct nb_alias_target prev; /* the target before the last change (when has_prev) */
};

/* Versions that exist, for validation: returns true when version ("$LATEST" or "N") names one. */
typedef bool (*nb_alias_version_exists_cb)(void *data, const char *version);

/* Name rules: (?!^[0-9]+$)([a-zA-Z0-9-_]+), 1..128. */
bool alias_name_valid(const char *name);

/* A new alias from a CreateAlias body (Name, FunctionVersion, Description, RoutingConfig). fn_arn
 * is the unqualified function ARN. -EINVAL with Lambda's message for invalid members, -ENOENT when
 * a version does not exist. Free with alias_free. */
struct nb_alias *alias_create(const char *fn_arn, json_t *req, nb_alias_version_exists_cb exists,
                              void *data, struct nb_err *err);
/* A new alias = cur with the members of an UpdateAlias body applied (RevisionId is checked by the
 * caller). The previous target is remembered when the target changes. */
struct nb_alias *alias_update(const struct nb_alias *cur, json_t *req,
                              nb_alias_version_exists_cb exists, void *data, struct nb_err *err);
/* cur pointed back at its previous target (and that target remembered as the previous one);
 * -ENOENT-style NULL with err when it has no previous target or a version of it is gone. */
struct nb_alias *alias_rollback(const struct nb_alias *cur, nb_alias_version_exists_cb exists,
                                void *data, struct nb_err *err);
void alias_free(struct nb_alias *a);

/* True when a's target (current, or previous while it is kept) uses version. */
bool alias_uses_version(const struct nb_alias *a, const char *version);

/* The version an invocation runs: u is uniform in [0,1). Borrowed from a. */
const char *alias_pick(const struct nb_alias *a, double u);
/* A uniform double in [0,1) (53 bits from getrandom(2), util.h random_u64). */
double alias_random(void);

/* Lambda's AliasConfiguration (new reference). */
json_t *alias_json(const struct nb_alias *a);
/* The store record (malloc'd JSON) and back (fn_arn as for alias_create). */
char *alias_to_record(const struct nb_alias *a);
struct nb_alias *alias_from_record(const char *fn_arn, const char *doc, struct nb_err *err);

#endif

/*
 * function.h - a function's configuration: one immutable snapshot per change (today only $LATEST;
 * published versions come later), validated from CreateFunction / UpdateFunctionConfiguration
 * requests, serialised to Lambda's FunctionConfiguration JSON and to the store's record.
 *
 * Ownership: a struct nb_function is immutable after function_new/_update returned it and is
 * reference counted (function_ref/function_unref): the registry holds one reference for the current
 * snapshot ($LATEST) and one for each published version (function_publish: version "N", ARN
 * qualified with ":N"), every in-flight invocation and every instance holds one for the snapshot it
 * runs.
 * Updating a function creates a new snapshot; old ones die with their last user.
 */
#ifndef NIMBUS_FUNCTION_H
#define NIMBUS_FUNCTION_H

#include <jansson.h>

#include "err.h"

enum nb_runtime_kind { NB_RT_PROVIDED, NB_RT_PYTHON, NB_RT_NODE };

struct nb_function {
    int refs;
    char *name;
    char *arn;     /* arn:aws:lambda:REGION:ACCOUNT:function:NAME, plus ":N" for version N */
    char *version; /* "$LATEST", or "N" (decimal, no leading zero) for a published version */
    char *runtime; /* as given, e.g. "python3.11", "provided.al2023" */
    enum nb_runtime_kind kind;
    char *handler; /* may be "" for provided* */
    char *role;
    char *description;
    int memory_mb;     /* 128..10240 */
    int timeout_s;     /* 1..900 */
    int ephemeral_mb;  /* 512..10240: size of /tmp */
    json_t *env;       /* object name -> string value; never NULL */
    json_t *tags;      /* object; never NULL */
    char code_hex[65]; /* content address of the package */
    char code_b64[45]; /* CodeSha256 */
    int64_t code_size;
    char *revision_id; /* UUID, new on every change */
    uint64_t last_modified_ms;
    int reserved_concurrency; /* -1 = none */
    char *architecture;       /* "x86_64" */
    char *dlq_arn;            /* esm: DeadLetterConfig.TargetArn (an SQS queue ARN) or NULL */
};

/* What the platform adds to every function (from the daemon config). */
struct nb_function_ctx {
    const char *region;
    const char *account_id;
};

/* Validates a CreateFunction request body (already parsed JSON, minus Code which the caller
 * imported into pkg_hex/pkg_b64/pkg_size) and returns a new snapshot with refs = 1.
 * -EINVAL with Lambda's message on any invalid member. */
struct nb_function *function_new(const struct nb_function_ctx *ctx, json_t *req,
                                 const char *pkg_hex, const char *pkg_b64, int64_t pkg_size,
                                 struct nb_err *err);
/* A new snapshot = cur with the members of an UpdateFunctionConfiguration body applied. */
struct nb_function *function_update_config(const struct nb_function *cur, json_t *req,
                                           struct nb_err *err);
/* A new snapshot = cur with new code. */
struct nb_function *function_update_code(const struct nb_function *cur, const char *pkg_hex,
                                         const char *pkg_b64, int64_t pkg_size);
/* A new snapshot = cur with reserved concurrency set (-1 clears). */
struct nb_function *function_with_concurrency(const struct nb_function *cur, int reserved);

/* Published version number of cur ($LATEST): a new snapshot with version "N", a qualified ARN,
 * a new RevisionId, and description when not NULL (else $LATEST's). refs = 1. */
struct nb_function *function_publish(const struct nb_function *cur, uint64_t number,
                                     const char *description);
/* True when a and b run the same code with the same configuration (what PublishVersion compares:
 * nothing changed since the last published version). */
bool function_same_content(const struct nb_function *a, const struct nb_function *b);

/* Lambda's FunctionConfiguration object (new reference). */
json_t *function_config_json(const struct nb_function *fn);
/* The store record (serialised JSON; malloc'd) and back. */
char *function_to_record(const struct nb_function *fn);
struct nb_function *function_from_record(const struct nb_function_ctx *ctx, const char *doc,
                                         struct nb_err *err);

struct nb_function *function_ref(struct nb_function *fn);
void function_unref(struct nb_function *fn);

/* Name validation: [a-zA-Z0-9-_]{1,64}. */
bool function_name_valid(const char *name);
/* Parses a FunctionName path label (name, name:qualifier, partial or full ARN) into name and
 * qualifier (qualifier NULL when absent); strings are malloc'd into *name / *qualifier.
 * -EINVAL when it does not match Lambda's pattern. */
int function_parse_ref(const char *ref, char **name, char **qualifier, struct nb_err *err);

/* Added by the control plane (api_lambda.c); additive to the contract above. */

/* Like function_parse_ref, also returning the region and account id of an ARN form (malloc'd into
 * *region / *account, NULL when the ref does not name them; either pointer may be NULL). */
int function_parse_ref_arn(const char *ref, char **name, char **qualifier, char **region,
                           char **account, struct nb_err *err);
/* Maps a Runtime value to its kind; -EINVAL when nimbus does not run it. */
int function_runtime_kind(const char *runtime, enum nb_runtime_kind *kind);
/* FunctionConfiguration with FunctionArn qualified by qualifier (NULL: the snapshot's own ARN,
 * as function_config_json; for a version, an alias qualifier replaces ":N"). New reference. */
json_t *function_config_json_qualified(const struct nb_function *fn, const char *qualifier);
/* A new snapshot = cur with its tags replaced by a copy of tags (already validated). */
struct nb_function *function_with_tags(const struct nb_function *cur, json_t *tags);
/* Validates a Tags map (TagResource, CreateFunction) and returns a copy (new reference), or NULL
 * with -EINVAL in err. */
json_t *function_tags_validate(json_t *tags, struct nb_err *err);

#endif

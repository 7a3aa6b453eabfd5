/*
 * api_versions.c - versions and aliases on the API listener (LAMBDA.md §3.5): PublishVersion,
 * ListVersionsByFunction, DeleteFunction with a version qualifier, Create/Get/Update/Delete/
 * ListAliases, nimbus' alias rollback (POST /nimbus/v1/functions/{F}/aliases/{Name}/rollback), and
 * Put/Get/Delete/ListProvisionedConcurrencyConfig(s) on a version or alias (provisioned.h keeps
 * the instances).
 *
 * Bodies here are small, so a write is validated on the loop against the registry, then its store
 * write runs on a worker through the daemon's serial store-write queue (serial_work.h; durable
 * before the reply; a write that fails or could not be queued is answered 500 ServiceException),
 * then the registry changes and the client gets its reply: loop -> worker -> loop. Like
 * api_lambda.c, at most one write per function is in flight (fn->updating; others get 409), a job
 * holds a reference on its function entry and owns what it commits, and the request stays valid
 * until the job replies even if the client left.
 *
 * Invariants: a version number is taken only when its store row is committed, and rows of deleted
 * versions stay, so numbers are never reused; a version an alias points to cannot be deleted.
 */
#include <errno.h>

#include "api.h"
#include "async.h"
#include "daemon.h"
#include "instance.h"
#include "log.h"
#include "provisioned.h"
#include "store.h"

#define LIST_DEFAULT_ITEMS 50
#define LIST_MAX_ITEMS 10000
#define DESCRIPTION_MAX_LEN 256
#define PC_LIST_MAX_ITEMS 50
#define MIN_UNRESERVED 100

/* Provisioned concurrency of functions without reservation admitted but not yet committed. */
static int64_t pending_pc;

enum vop { V_PUBLISH, V_DELETE_VERSION, V_PUT_ALIAS, V_DELETE_ALIAS, V_PUT_PC, V_DELETE_PC };

struct vjob {
    struct nb_serial_job sj;
    struct nb_daemon *d;
    struct nb_http_req *req;
    enum vop op;
    int ok_status;             /* reply status on success */
    struct nb_fn *fn;          /* ref; fn->updating is set while the job lives */
    struct nb_function *snap;  /* ref: the version published or deleted */
    struct nb_alias *alias;    /* owned until committed: the alias to put */
    struct nb_provisioned *pc; /* owned until committed: the config to put */
    int64_t pending;           /* counted in pending_pc */
    char *key;                 /* alias name or version number */
    char *doc;                 /* the record to write */
    int rc;
    struct nb_err err;
};

static void vjob_free(struct vjob *j)
{
    j->fn->updating = false;
    fn_unref(j->fn);
    function_unref(j->snap);
    alias_free(j->alias);
    provisioned_free(j->pc);
    pending_pc -= j->pending;
    free(j->key);
    free(j->doc);
    free(j);
}

static void vjob_work(void *data)
{
    struct vjob *j = data;
    struct nb_store *st = j->d->store;
    int64_t n = 0;
    switch (j->op) {
    case V_PUBLISH:
        parse_i64(j->key, 1, INT64_MAX, &n);
        j->rc = store_version_insert(st, j->fn->name, n, j->doc, &j->err);
        break;
    case V_DELETE_VERSION:
        parse_i64(j->key, 1, INT64_MAX, &n);
        j->rc = store_version_delete(st, j->fn->name, n, &j->err);
        break;
    case V_PUT_ALIAS:
        j->rc = store_object_put(st, "alias", j->fn->name, j->key, j->doc, &j->err);
        break;
    case V_DELETE_ALIAS:
        j->rc = store_object_delete(st, NULL, j->fn->name, j->key, &j->err);
        break;
    case V_PUT_PC:
        j->rc = store_object_put(st, "provisioned", j->fn->name, j->key, j->doc, &j->err);
        break;
    case V_DELETE_PC:
        j->rc = store_object_delete(st, "provisioned", j->fn->name, j->key, &j->err);
        break;
    }
}

/* Answers the request and frees the job, on every path. */
static void vjob_done(void *data, int status)
{
    struct vjob *j = data;
    struct nb_daemon *d = j->d;
    j->rc = api_work_result(status, j->rc, &j->err);
    if (j->rc < 0) {
        log_err("store write failed function=%s key=%s msg=\"%s\"", j->fn->name, j->key,
                j->err.msg);
        api_error(j->req, 500, "ServiceException", "%s", j->err.msg);
        vjob_free(j);
        return;
    }
    /* The registry changes first, so the reply never announces what a next request can't see. */
    switch (j->op) {
    case V_PUBLISH:
        log_info("version published function=%s version=%s code=%s", j->fn->name, j->key,
                 j->snap->code_hex);
        registry_add_version(j->fn, function_ref(j->snap));
        api_json(j->req, j->ok_status, function_config_json(j->snap));
        break;
    case V_DELETE_VERSION:
        log_info("version deleted function=%s version=%s", j->fn->name, j->key);
        provisioned_remove(d, j->fn, j->key); /* its rows went with the version's */
        async_config_forget_qualifier(d, j->fn->name, j->key);
        registry_remove_version(d, j->fn, j->snap);
        api_empty(j->req, j->ok_status);
        break;
    case V_PUT_ALIAS: {
        struct nb_alias *a = steal_ptr(j->alias);
        log_info("alias set function=%s alias=%s version=%s extra=%s weight=%g", j->fn->name,
                 a->name, a->to.version, a->to.extra ? a->to.extra : "-", a->to.weight);
        registry_put_alias(j->fn, a);
        provisioned_sync(d, j->fn); /* its provisioned instances follow the alias */
        api_json(j->req, j->ok_status, alias_json(a));
        break;
    }
    case V_PUT_PC: {
        struct nb_provisioned *pc = steal_ptr(j->pc);
        log_info("provisioned concurrency set function=%s qualifier=%s requested=%d", j->fn->name,
                 pc->qualifier, pc->requested);
        provisioned_put(d, j->fn, pc);
        api_json(j->req, j->ok_status, provisioned_json(j->fn, pc, NULL));
        break;
    }
    case V_DELETE_PC:
        log_info("provisioned concurrency deleted function=%s qualifier=%s", j->fn->name, j->key);
        provisioned_remove(d, j->fn, j->key);
        api_empty(j->req, j->ok_status);
        break;
    case V_DELETE_ALIAS:
        log_info("alias deleted function=%s alias=%s", j->fn->name, j->key);
        registry_remove_alias(j->fn, j->key);
        provisioned_remove(d, j->fn, j->key); /* its rows went with the alias' */
        async_config_forget_qualifier(d, j->fn->name, j->key);
        api_empty(j->req, j->ok_status);
        break;
    }
    vjob_free(j);
}

/* Queues a write; the job takes fn->updating (the caller checked it is free). */
static void vjob_start(struct nb_http_req *req, struct nb_daemon *d, struct nb_fn *fn, enum vop op,
                       int ok_status, struct vjob *j)
{
    j->d = d;
    j->req = req;
    j->op = op;
    j->ok_status = ok_status;
    fn_ref(fn);
    j->fn = fn;
    fn->updating = true;
    serial_work_submit(&d->store_writes, &j->sj, j, vjob_work, vjob_done);
}

static bool busy(struct nb_http_req *req, struct nb_fn *fn)
{
    if (!fn->updating)
        return false;
    api_error(req, 409, "ResourceConflictException",
              "The operation cannot be performed at this time. An update is in progress for "
              "resource: %s",
              fn->cfg->arn);
    return true;
}

/* The function of a {FunctionName} that must not carry a qualifier (versions, aliases). */
static struct nb_fn *unqualified(struct nb_http_req *req, struct nb_daemon *d,
                                 const struct nb_route_match *m)
{
    _cleanup_free_ char *qual = NULL;
    struct nb_fn *fn = api_lambda_resolve(req, d, m, &qual, NULL);
    if (fn && qual) {
        api_error(req, 400, "InvalidParameterValueException",
                  "Unsupported qualifier '%s': this operation takes the unqualified function "
                  "name",
                  qual);
        return NULL;
    }
    return fn;
}

static const char *body_string(json_t *body, const char *key)
{
    json_t *v = json_object_get(body, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Members that must be strings when present; replies 400 and returns false otherwise. */
static bool strings_only(struct nb_http_req *req, json_t *body, const char *const *keys, size_t n,
                         const char *const *wire)
{
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(body, keys[i]);
        if (v && !json_is_null(v) && !json_is_string(v)) {
            api_error(req, 400, "InvalidParameterValueException",
                      "1 validation error detected: Value at '%s' failed to satisfy constraint: "
                      "Member must be of type string",
                      wire[i]);
            return false;
        }
    }
    return true;
}

/* RevisionId rev (NULL: not given) against the current revision cur; replies 412 and returns false
 * when they differ. */
static bool revision_matches(struct nb_http_req *req, const char *rev, const char *cur)
{
    if (!rev || !strcmp(rev, cur))
        return true;
    api_error(req, 412, "PreconditionFailedException",
              "The Revision Id provided does not match the latest Revision Id. Call the "
              "GetFunction/GetAlias API to retrieve the latest Revision Id");
    return false;
}

/* ?MaxItems of a list: *max = def when absent; replies 400 and returns -1 when it is not an
 * integer from 1 to limit. */
static int list_max_items(struct nb_http_req *req, int64_t def, int64_t limit, int64_t *max)
{
    *max = def;
    const char *s = http_req_query(req, "MaxItems");
    if (!s)
        return 0;
    if (parse_i64(s, 1, limit, max) < 0) {
        api_error(req, 400, "InvalidParameterValueException",
                  "1 validation error detected: Value '%s' at 'maxItems' failed to satisfy "
                  "constraint: Member must have value between 1 and %lld",
                  s, (long long)limit);
        return -1;
    }
    return 0;
}

/* ---- versions ---- */

static void h_publish(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    struct nb_fn *fn = unqualified(req, d, m);
    if (!fn)
        return;
    json_t *body = api_body_json(req);
    if (!body)
        return;
    static const char *const keys[] = {"CodeSha256", "Description", "RevisionId"};
    static const char *const wire[] = {"codeSha256", "description", "revisionId"};
    if (!strings_only(req, body, keys, ARRAY_SIZE(keys), wire) || busy(req, fn))
        goto out;
    const char *sha = body_string(body, "CodeSha256");
    const char *desc = body_string(body, "Description");
    const char *rev = body_string(body, "RevisionId");
    struct nb_function *cur = fn->cfg;
    if (sha && strcmp(sha, cur->code_b64) != 0) {
        api_error(req, 400, "InvalidParameterValueException",
                  "CodeSHA256 (%s) is different from current CodeSHA256 in $LATEST (%s). Please "
                  "try publishing again with the CodeSHA256 of $LATEST.",
                  sha, cur->code_b64);
        goto out;
    }
    if (!revision_matches(req, rev, cur->revision_id))
        goto out;
    if (desc && strlen(desc) > DESCRIPTION_MAX_LEN) {
        api_error(req, 400, "InvalidParameterValueException",
                  "1 validation error detected: Value '%s' at 'description' failed to satisfy "
                  "constraint: Member must have length less than or equal to %d",
                  desc, DESCRIPTION_MAX_LEN);
        goto out;
    }
    /* Nothing changed since the last published version: Lambda returns that version. */
    if (fn->n_versions) {
        struct nb_function *last = fn->versions[fn->n_versions - 1];
        if (function_same_content(last, cur)) {
            api_json(req, 201, function_config_json(last));
            goto out;
        }
    }
    struct vjob *j = xcalloc(1, sizeof(*j));
    j->snap = function_publish(cur, fn->last_version + 1, desc);
    j->key = xstrdup(j->snap->version);
    j->doc = function_to_record(j->snap);
    vjob_start(req, d, fn, V_PUBLISH, 201, j);
out:
    json_decref(body);
}

/* Lists pages of items identified by key: starts after marker (a key from the previous page). */
static void h_list_versions(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    struct nb_fn *fn = unqualified(req, d, m);
    int64_t max;
    if (!fn || list_max_items(req, LIST_DEFAULT_ITEMS, LIST_MAX_ITEMS, &max) < 0)
        return;
    /* order: $LATEST, then versions ascending; the marker is the last version of a page */
    const char *marker = http_req_query(req, "Marker");
    size_t total = fn->n_versions + 1, i = 0;
    if (marker && *marker) {
        if (!strcmp(marker, "$LATEST")) {
            i = 1;
        } else {
            int64_t mk = 0;
            parse_i64(marker, 0, INT64_MAX, &mk);
            i = 1;
            while (i < total) {
                int64_t v = 0;
                parse_i64(fn->versions[i - 1]->version, 1, INT64_MAX, &v);
                if (v > mk)
                    break;
                i++;
            }
        }
    }
    json_t *items = json_array();
    const char *last = NULL;
    for (; i < total && (int64_t)json_array_size(items) < max; i++) {
        struct nb_function *v = i == 0 ? fn->cfg : fn->versions[i - 1];
        json_t *o = function_config_json_qualified(v, v->version);
        json_object_del(o, "State");
        json_object_del(o, "LastUpdateStatus");
        json_array_append_new(items, o);
        last = v->version;
    }
    json_t *o = json_pack("{s:o}", "Versions", items);
    if (i < total && last)
        json_object_set_new(o, "NextMarker", json_string(last));
    api_json(req, 200, o);
}

void api_versions_delete(struct nb_http_req *req, struct nb_daemon *d, struct nb_fn *fn,
                         const char *qual)
{
    if (!strcmp(qual, "$LATEST")) {
        api_error(req, 400, "InvalidParameterValueException",
                  "$LATEST version cannot be deleted without deleting the function.");
        return;
    }
    struct nb_function *v = registry_version(fn, qual);
    if (!v) { /* an alias (resolve found it) */
        api_error(req, 400, "InvalidParameterValueException",
                  "Deletion of aliases is not supported by DeleteFunction: use DeleteAlias for "
                  "alias '%s'",
                  qual);
        return;
    }
    struct nb_buf users = NB_BUF_INIT;
    for (size_t i = 0; i < fn->n_aliases; i++)
        if (alias_uses_version(fn->aliases[i], qual))
            buf_appendf(&users, "%s%s", users.len ? ", " : "", fn->aliases[i]->name);
    if (users.len) {
        api_error(req, 409, "ResourceConflictException",
                  "Unable to delete version because the following aliases reference it: [%s]",
                  users.data);
        buf_release(&users);
        return;
    }
    buf_release(&users);
    if (busy(req, fn))
        return;
    struct vjob *j = xcalloc(1, sizeof(*j));
    j->snap = function_ref(v);
    j->key = xstrdup(qual);
    vjob_start(req, d, fn, V_DELETE_VERSION, 204, j);
}

/* ---- aliases ---- */

static bool version_exists(void *data, const char *version)
{
    return registry_version_exists(data, version);
}

static void alias_not_found(struct nb_http_req *req, struct nb_fn *fn, const char *name)
{
    api_error(req, 404, "ResourceNotFoundException", "Alias not found: %s:%s", fn->cfg->arn, name);
}

/* Writes alias a (owned; NULL: replies err, as alias_create/update/rollback filled it) and replies
 * status, unless another write to fn is in flight (409). */
static void put_alias(struct nb_http_req *req, struct nb_daemon *d, struct nb_fn *fn,
                      struct nb_alias *a, const struct nb_err *err, int status)
{
    if (!a) {
        api_error_from(req, err);
        return;
    }
    if (busy(req, fn)) {
        alias_free(a);
        return;
    }
    struct vjob *j = xcalloc(1, sizeof(*j));
    j->key = xstrdup(a->name);
    j->doc = alias_to_record(a);
    j->alias = a;
    vjob_start(req, d, fn, V_PUT_ALIAS, status, j);
}

static void h_create_alias(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    struct nb_fn *fn = unqualified(req, d, m);
    if (!fn)
        return;
    json_t *body = api_body_json(req);
    if (!body)
        return;
    struct nb_err err = {0};
    struct nb_alias *a = alias_create(fn->cfg->arn, body, version_exists, fn, &err);
    json_decref(body);
    if (a && registry_alias(fn, a->name)) {
        api_error(req, 409, "ResourceConflictException", "Alias already exists: %s", a->arn);
        alias_free(a);
        return;
    }
    put_alias(req, d, fn, a, &err, 201);
}

/* The function and alias of /aliases/{Name}; replies and returns NULL when either is missing. */
static struct nb_alias *find_alias(struct nb_http_req *req, struct nb_daemon *d,
                                   const struct nb_route_match *m, struct nb_fn **fn)
{
    *fn = unqualified(req, d, m);
    if (!*fn)
        return NULL;
    const char *name = route_param(m, "Name");
    struct nb_alias *a = registry_alias(*fn, name);
    if (!a)
        alias_not_found(req, *fn, name);
    return a;
}

static void h_get_alias(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_fn *fn;
    struct nb_alias *a = find_alias(req, data, m, &fn);
    if (a)
        api_json(req, 200, alias_json(a));
}

static void h_update_alias(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    struct nb_fn *fn;
    struct nb_alias *cur = find_alias(req, d, m, &fn);
    if (!cur)
        return;
    json_t *body = api_body_json(req);
    if (!body)
        return;
    static const char *const keys[] = {"RevisionId"};
    static const char *const wire[] = {"revisionId"};
    if (!strings_only(req, body, keys, 1, wire)) {
        json_decref(body);
        return;
    }
    if (!revision_matches(req, body_string(body, "RevisionId"), cur->revision_id)) {
        json_decref(body);
        return;
    }
    struct nb_err err = {0};
    struct nb_alias *a = alias_update(cur, body, version_exists, fn, &err);
    json_decref(body);
    put_alias(req, d, fn, a, &err, 200);
}

static void h_rollback_alias(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    struct nb_fn *fn;
    struct nb_alias *cur = find_alias(req, d, m, &fn);
    if (!cur)
        return;
    struct nb_err err = {0};
    /* alias_rollback fails with EEXIST: 409 ResourceConflictException */
    struct nb_alias *a = alias_rollback(cur, version_exists, fn, &err);
    put_alias(req, d, fn, a, &err, 200);
}

static void h_delete_alias(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    struct nb_fn *fn;
    struct nb_alias *a = find_alias(req, d, m, &fn);
    if (!a || busy(req, fn))
        return;
    struct vjob *j = xcalloc(1, sizeof(*j));
    j->key = xstrdup(a->name);
    vjob_start(req, d, fn, V_DELETE_ALIAS, 204, j);
}

static void h_list_aliases(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    struct nb_fn *fn = unqualified(req, d, m);
    int64_t max;
    if (!fn || list_max_items(req, LIST_DEFAULT_ITEMS, LIST_MAX_ITEMS, &max) < 0)
        return;
    const char *version = http_req_query(req, "FunctionVersion");
    const char *marker = http_req_query(req, "Marker");
    json_t *items = json_array();
    const char *last = NULL;
    size_t i = 0;
    if (marker && *marker)
        while (i < fn->n_aliases && strcmp(fn->aliases[i]->name, marker) <= 0)
            i++;
    for (; i < fn->n_aliases && (int64_t)json_array_size(items) < max; i++) {
        struct nb_alias *a = fn->aliases[i];
        if (version && *version && !alias_uses_version(a, version))
            continue;
        json_array_append_new(items, alias_json(a));
        last = a->name;
    }
    json_t *o = json_pack("{s:o}", "Aliases", items);
    if (i < fn->n_aliases && last)
        json_object_set_new(o, "NextMarker", json_string(last));
    api_json(req, 200, o);
}

/* ---- provisioned concurrency ---- */

/* The function and the Qualifier (required: a version or an alias, not $LATEST) of a
 * provisioned-concurrency request. Replies and returns NULL on failure. */
static struct nb_fn *pc_target(struct nb_http_req *req, struct nb_daemon *d,
                               const struct nb_route_match *m, char **qual)
{
    struct nb_fn *fn = api_lambda_resolve(req, d, m, qual, NULL);
    if (!fn)
        return NULL;
    if (!*qual) {
        api_error(req, 400, "InvalidParameterValueException",
                  "1 validation error detected: Value null at 'qualifier' failed to satisfy "
                  "constraint: Member must not be null");
        return NULL;
    }
    struct nb_function *snap = registry_resolve_primary(d, fn, *qual, NULL);
    if (!strcmp(*qual, "$LATEST") || (snap && !strcmp(snap->version, "$LATEST"))) {
        api_error(req, 400, "InvalidParameterValueException",
                  "Provisioned Concurrency Configs cannot be applied to unpublished function "
                  "versions.");
        return NULL;
    }
    return fn;
}

static void pc_not_found(struct nb_http_req *req)
{
    api_error(req, 404, "ProvisionedConcurrencyConfigNotFoundException",
              "No Provisioned Concurrency Config found for this function");
}

static void h_put_pc(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    _cleanup_free_ char *qual = NULL;
    struct nb_fn *fn = pc_target(req, d, m, &qual);
    if (!fn)
        return;
    json_t *body = api_body_json(req);
    if (!body)
        return;
    json_t *v = json_object_get(body, "ProvisionedConcurrentExecutions");
    bool absent = !v || json_is_null(v), integer = json_is_integer(v);
    json_int_t n = integer ? json_integer_value(v) : 0;
    json_decref(body);
    if (absent) {
        api_error(req, 400, "InvalidParameterValueException",
                  "1 validation error detected: Value null at 'provisionedConcurrentExecutions' "
                  "failed to satisfy constraint: Member must not be null");
        return;
    }
    if (!integer || n < 1 || n > INT32_MAX) {
        api_error(req, 400, "InvalidParameterValueException",
                  "1 validation error detected: Value at 'provisionedConcurrentExecutions' "
                  "failed to satisfy constraint: Member must have value greater than or equal "
                  "to 1");
        return;
    }
    struct nb_provisioned *old = provisioned_find(fn, qual);
    int64_t fn_total = fn->pc_total - (old ? old->requested : 0) + n;
    int reserved = fn->cfg->reserved_concurrency;
    int64_t pending = 0;
    if (reserved >= 0 && fn_total > reserved) {
        api_error(req, 400, "InvalidParameterValueException",
                  "Requested Provisioned Concurrency should not be greater than the "
                  "reservedConcurrentExecution for function");
        return;
    }
    if (reserved < 0) {
        pending = fn_total - fn->pc_total;
        int64_t unreserved = d->cfg.account_concurrency - registry_reserved_total(d) -
                             d->pc_unreserved_total - pending_pc - pending;
        if (unreserved < MIN_UNRESERVED) {
            api_error(req, 400, "InvalidParameterValueException",
                      "Specified ConcurrentExecutions for function is greater than account's "
                      "unreserved concurrency [%lld].",
                      (long long)(d->cfg.account_concurrency - registry_reserved_total(d) -
                                  d->pc_unreserved_total - pending_pc - MIN_UNRESERVED));
            return;
        }
    }
    if (busy(req, fn))
        return;
    struct vjob *j = xcalloc(1, sizeof(*j));
    j->pc = provisioned_new(qual, (int)n, now_ms());
    j->key = xstrdup(qual);
    j->doc = provisioned_to_record(j->pc);
    j->pending = pending > 0 ? pending : 0;
    pending_pc += j->pending;
    vjob_start(req, d, fn, V_PUT_PC, 202, j);
}

static void h_get_pc(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    const char *list = http_req_query(req, "List");
    if (list) { /* ListProvisionedConcurrencyConfigs: ?List=ALL */
        struct nb_fn *fn = unqualified(req, d, m);
        int64_t max;
        if (!fn || list_max_items(req, PC_LIST_MAX_ITEMS, PC_LIST_MAX_ITEMS, &max) < 0)
            return;
        const char *marker = http_req_query(req, "Marker");
        json_t *items = json_array();
        size_t i = 0;
        if (marker && *marker) /* the index of the next item, as decimal */
            i = (size_t)strtoull(marker, NULL, 10);
        for (; i < fn->n_pcs && (int64_t)json_array_size(items) < max; i++)
            json_array_append_new(items, provisioned_json(fn, fn->pcs[i], fn->cfg->arn));
        json_t *o = json_pack("{s:o}", "ProvisionedConcurrencyConfigs", items);
        if (i < fn->n_pcs)
            json_object_set_new(o, "NextMarker", json_sprintf("%zu", i));
        api_json(req, 200, o);
        return;
    }
    _cleanup_free_ char *qual = NULL;
    struct nb_fn *fn = pc_target(req, d, m, &qual);
    if (!fn)
        return;
    struct nb_provisioned *pc = provisioned_find(fn, qual);
    if (!pc)
        pc_not_found(req);
    else
        api_json(req, 200, provisioned_json(fn, pc, NULL));
}

static void h_delete_pc(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    _cleanup_free_ char *qual = NULL;
    struct nb_fn *fn = pc_target(req, d, m, &qual);
    if (!fn)
        return;
    if (!provisioned_find(fn, qual)) {
        pc_not_found(req);
        return;
    }
    if (busy(req, fn))
        return;
    struct vjob *j = xcalloc(1, sizeof(*j));
    j->key = xstrdup(qual);
    vjob_start(req, d, fn, V_DELETE_PC, 204, j);
}

void api_versions_routes(struct nb_router *r, struct nb_daemon *d)
{
    router_add(r, "PUT", "/2019-09-30/functions/{FunctionName}/provisioned-concurrency",
               "lambda:PutProvisionedConcurrencyConfig", h_put_pc, d);
    /* GetProvisionedConcurrencyConfig, and ListProvisionedConcurrencyConfigs with ?List=ALL; the
     * authorizer sees the Get action for both */
    router_add(r, "GET", "/2019-09-30/functions/{FunctionName}/provisioned-concurrency",
               "lambda:GetProvisionedConcurrencyConfig", h_get_pc, d);
    router_add(r, "DELETE", "/2019-09-30/functions/{FunctionName}/provisioned-concurrency",
               "lambda:DeleteProvisionedConcurrencyConfig", h_delete_pc, d);
    router_add(r, "POST", "/2015-03-31/functions/{FunctionName}/versions", "lambda:PublishVersion",
               h_publish, d);
    router_add(r, "GET", "/2015-03-31/functions/{FunctionName}/versions",
               "lambda:ListVersionsByFunction", h_list_versions, d);
    router_add(r, "POST", "/2015-03-31/functions/{FunctionName}/aliases", "lambda:CreateAlias",
               h_create_alias, d);
    router_add(r, "GET", "/2015-03-31/functions/{FunctionName}/aliases", "lambda:ListAliases",
               h_list_aliases, d);
    router_add(r, "GET", "/2015-03-31/functions/{FunctionName}/aliases/{Name}", "lambda:GetAlias",
               h_get_alias, d);
    router_add(r, "PUT", "/2015-03-31/functions/{FunctionName}/aliases/{Name}",
               "lambda:UpdateAlias", h_update_alias, d);
    router_add(r, "DELETE", "/2015-03-31/functions/{FunctionName}/aliases/{Name}",
               "lambda:DeleteAlias", h_delete_alias, d);
    /* nimbus' own: UpdateAlias back to the alias' previous target, in one step */
    router_add(r, "POST", "/nimbus/v1/functions/{FunctionName}/aliases/{Name}/rollback",
               "lambda:UpdateAlias", h_rollback_alias, d);
}

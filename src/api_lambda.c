/*
 * api_lambda.c - the Lambda control plane on the API listener (LAMBDA.md §3): Create/Get/List/
 * Update/Delete functions, account settings, reserved concurrency, tags, and nimbus' code download
 * (GET /nimbus/v1/functions/{FunctionName}/code, where GetFunction's Code.Location points).
 *
 * Reads are answered on the loop from the registry. A write is a job that hops loop -> worker ->
 * loop (-> worker -> loop): the body is parsed and validated on a worker (it may be ~70 MB of
 * base64), admission checks that need the registry run on the loop, then the code import and the
 * store write run on a worker, and only then the registry changes and the client gets its reply:
 * a reply means durable, and a function whose store write failed never enters the registry.
 *
 * Invariants: at most one write per function is in flight (fn->updating, plus the pending-create
 * list for names not yet in the registry); other writes get 409. A job owns its body, its JSON,
 * and references on the function entry and snapshots it uses; the request may vanish (client
 * gone) while the job runs, and the write still completes. Loop thread except the *_work
 * functions, which touch only their job and the thread-safe store/codepkg/function calls.
 */
#include <errno.h>

#include "api.h"
#include "async.h"
#include "authz.h"
#include "codec.h"
#include "codepkg.h"
#include "daemon.h"
#include "keys.h" /* auth: presigned Code.Location */
#include "log.h"
#include "sigv4.h" /* auth */
#include "store.h"

#define ZIPPED_MAX 52428800ll    /* direct upload limit, Lambda's CodeSizeZipped */
#define UNZIPPED_MAX 262144000ll /* Lambda's CodeSizeUnzipped */
#define TOTAL_CODE_MAX 80530636800ll
#define MIN_UNRESERVED 100
#define LIST_DEFAULT_ITEMS 50
#define LIST_MAX_ITEMS 10000

#define BAD_ZIP_MSG                                                                                \
    "Could not unzip uploaded file. Please check your file, then try to upload again."

enum op {
    OP_CREATE,
    OP_UPDATE_CODE,
    OP_UPDATE_CONFIG,
    OP_DELETE,
    OP_PUT_CONCURRENCY,
    OP_DELETE_CONCURRENCY,
    OP_TAG,
    OP_UNTAG,
};

struct job {
    uv_work_t work;
    struct nb_daemon *d;
    struct nb_http_req *req; /* NULL once the client went away */
    enum op op;
    char *name;
    char *body; /* owned; parsed on a worker */
    size_t body_len;
    json_t *doc;                  /* the parsed body */
    json_t *tag_keys;             /* UntagResource: array of keys */
    struct nb_fn *fn;             /* ref; NULL for create */
    struct nb_function *cur;      /* ref: fn's snapshot when the job started */
    struct nb_function *next;     /* ref: the snapshot to commit */
    int reserved;                 /* PutFunctionConcurrency's value */
    struct nb_function *last_pub; /* ref: the last published version when the job was admitted */
    struct nb_function *pub;      /* ref: Publish: the version published with the change */
    uint64_t pub_number;          /* Publish: the number a new version takes */
    bool publish;                 /* Publish: true (CreateFunction, UpdateFunctionCode) */
    bool pub_new;                 /* pub is a new version (not last_pub again) */
    bool committed;               /* the change itself is durable (a publish may still fail) */
    bool dry_run;
    bool pending_create; /* holds a pending-create entry for name */
    bool holds_reserved; /* counted in pending_reserved */
    bool failed;
    int status; /* explicit error reply; 0 = map err.code */
    const char *type;
    struct nb_err err;
};

/* Names whose CreateFunction is between admission and commit. One daemon per process. */
struct pending_name {
    char *name;
    struct pending_name *next;
};
static struct pending_name *pending_creates;
/* Reserved concurrency of PutFunctionConcurrency jobs admitted but not yet committed. */
static int64_t pending_reserved;

/* ---- replies ---- */

static void fn_arn(struct nb_daemon *d, const char *name, const char *qual, char *out, size_t n)
{
    snprintf(out, n, "arn:aws:lambda:%s:%s:function:%s%s%s", d->cfg.region, d->cfg.account_id, name,
             qual ? ":" : "", qual ? qual : "");
}

static void not_found(struct nb_http_req *req, struct nb_daemon *d, const char *name,
                      const char *qual)
{
    char arn[512];
    fn_arn(d, name, qual, arn, sizeof(arn));
    api_error(req, 404, "ResourceNotFoundException", "Function not found: %s", arn);
}

static void update_in_progress(struct nb_http_req *req, struct nb_fn *fn)
{
    api_error(req, 409, "ResourceConflictException",
              "The operation cannot be performed at this time. An update is in progress for "
              "resource: %s",
              fn->cfg->arn);
}

/* FunctionConfiguration without the members ListFunctions leaves out. */
static json_t *list_item(const struct nb_function *cfg, const char *qual)
{
    json_t *o = function_config_json_qualified(cfg, qual);
    json_object_del(o, "State");
    json_object_del(o, "LastUpdateStatus");
    return o;
}

/* ---- resolving {FunctionName} ---- */

/* Parses a FunctionName label plus ?Qualifier= into name and qualifier; replies and returns -1
 * on a malformed or foreign reference. */
static int parse_ref(struct nb_http_req *req, struct nb_daemon *d, const char *ref, char **name,
                     char **qual)
{
    struct nb_err err = {0};
    _cleanup_free_ char *region = NULL, *account = NULL;
    if (function_parse_ref_arn(ref, name, qual, &region, &account, &err) < 0) {
        api_error_from(req, &err);
        return -1;
    }
    if (region && strcmp(region, d->cfg.region) != 0) {
        api_error(req, 404, "ResourceNotFoundException",
                  "Functions from '%s' are not reachable in this region ('%s')", region,
                  d->cfg.region);
        goto fail;
    }
    if (account && strcmp(account, d->cfg.account_id) != 0) {
        api_error(req, 404, "ResourceNotFoundException",
                  "Function not found: arn:aws:lambda:%s:%s:function:%s", d->cfg.region, account,
                  *name);
        goto fail;
    }
    const char *q = http_req_query(req, "Qualifier");
    if (q && *q) {
        bool ok = strlen(q) <= 128;
        for (const char *p = q; ok && *p; p++)
            ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                 *p == '$' || *p == '_' || *p == '-';
        if (!ok) {
            api_error(req, 400, "InvalidParameterValueException",
                      "1 validation error detected: Value '%s' at 'qualifier' failed to satisfy "
                      "constraint: Member must satisfy regular expression pattern: "
                      "(|[a-zA-Z0-9$_-]+)",
                      q);
            goto fail;
        }
        if (*qual && strcmp(*qual, q) != 0) {
            api_error(req, 400, "InvalidParameterValueException",
                      "The derived qualifier from the function name does not match the specified "
                      "qualifier.");
            goto fail;
        }
        if (!*qual)
            *qual = xstrdup(q);
    }
    return 0;
fail:
    free(*name), free(*qual);
    *name = *qual = NULL;
    return -1;
}

/* Finds the function a request names and the snapshot its qualifier selects (an alias: its primary
 * version). Replies and returns NULL on failure; *qual stays owned by the caller (NULL when
 * unqualified); *snap (may be NULL) is borrowed. */
static struct nb_fn *resolve_snapshot(struct nb_http_req *req, struct nb_daemon *d,
                                      const struct nb_route_match *m, char **qual,
                                      struct nb_function **snap)
{
    _cleanup_free_ char *name = NULL;
    *qual = NULL;
    if (parse_ref(req, d, route_param(m, "FunctionName"), &name, qual) < 0)
        return NULL;
    struct nb_fn *fn = registry_find(d, name);
    struct nb_err err = {0};
    struct nb_function *cfg = fn ? registry_resolve_primary(d, fn, *qual, &err) : NULL;
    if (!cfg) {
        not_found(req, d, name, *qual);
        free(*qual);
        *qual = NULL;
        return NULL;
    }
    if (snap)
        *snap = cfg;
    return fn;
}

static struct nb_fn *resolve(struct nb_http_req *req, struct nb_daemon *d,
                             const struct nb_route_match *m, char **qual)
{
    return resolve_snapshot(req, d, m, qual, NULL);
}

struct nb_fn *api_lambda_resolve(struct nb_http_req *req, struct nb_daemon *d,
                                 const struct nb_route_match *m, char **qual,
                                 struct nb_function **snap)
{
    return resolve_snapshot(req, d, m, qual, snap);
}

/* ---- jobs ---- */

static void job_free(struct job *j)
{
    if (j->req) {
        j->req->on_abort = NULL;
        j->req->abort_data = NULL;
    }
    if (j->pending_create) {
        for (struct pending_name **pp = &pending_creates; *pp; pp = &(*pp)->next) {
            if (!strcmp((*pp)->name, j->name)) {
                struct pending_name *p = *pp;
                *pp = p->next;
                free(p->name);
                free(p);
                break;
            }
        }
    }
    if (j->holds_reserved)
        pending_reserved -= j->reserved;
    if (j->fn) {
        j->fn->updating = false;
        fn_unref(j->fn);
    }
    function_unref(j->cur);
    function_unref(j->next);
    function_unref(j->last_pub);
    function_unref(j->pub);
    json_decref(j->doc);
    json_decref(j->tag_keys);
    free(j->body);
    free(j->name);
    free(j);
}

/* Records a failure to reply with later; returns -1. */
static int job_fail(struct job *j, int status, const char *type, const char *fmt, ...)
    PRINTF_LIKE(4, 5);
static int job_fail(struct job *j, int status, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->err.msg, sizeof(j->err.msg), fmt, ap);
    va_end(ap);
    j->err.code = EINVAL;
    j->failed = true;
    j->status = status;
    j->type = type;
    return -1;
}

/* Records err (mapped by api_error_from); returns -1. */
static int job_fail_err(struct job *j, const struct nb_err *err)
{
    j->err = *err;
    j->failed = true;
    j->status = 0;
    return -1;
}

static void job_reply_error(struct job *j)
{
    if (!j->req)
        return;
    if (j->status)
        api_error(j->req, j->status, j->type, "%s", j->err.msg);
    else
        api_error_from(j->req, &j->err);
    j->req = NULL;
}

static bool doc_bool(json_t *doc, const char *key)
{
    return json_is_true(json_object_get(doc, key));
}

static int check_revision(struct job *j)
{
    json_t *rev = json_object_get(j->doc, "RevisionId");
    if (!rev || json_is_null(rev))
        return 0;
    if (!json_is_string(rev))
        return job_fail(j, 400, "InvalidParameterValueException",
                        "1 validation error detected: Value at 'revisionId' failed to satisfy "
                        "constraint: Member must be of type string");
    if (strcmp(json_string_value(rev), j->cur->revision_id) != 0)
        return job_fail(j, 412, "PreconditionFailedException",
                        "The Revision Id provided does not match the latest Revision Id. Call the "
                        "GetFunction/GetAlias API to retrieve the latest Revision Id");
    return 0;
}

/* Zip code members shared by CreateFunction's Code and UpdateFunctionCode's body. */
static int check_code_source(struct job *j, json_t *code)
{
    json_t *v;
    if ((v = json_object_get(code, "ImageUri")) && !json_is_null(v))
        return job_fail(j, 400, "InvalidParameterValueException",
                        "Container images (ImageUri) are not supported by nimbus: deploy the "
                        "function as a Zip package with ZipFile");
    if ((v = json_object_get(code, "S3Bucket")) && !json_is_null(v))
        return job_fail(j, 400, "InvalidParameterValueException",
                        "Code from S3 (S3Bucket/S3Key) is not supported by nimbus: upload the "
                        "package with ZipFile");
    v = json_object_get(code, "ZipFile");
    if (!v || json_is_null(v))
        return job_fail(j, 400, "InvalidParameterValueException",
                        "Please provide a source for function code: nimbus accepts ZipFile");
    if (!json_is_string(v))
        return job_fail(j, 400, "InvalidParameterValueException", BAD_ZIP_MSG);
    /* base64: 4 chars per 3 bytes; refuse clearly oversized uploads before decoding. */
    if (json_string_length(v) / 4 * 3 > (size_t)ZIPPED_MAX + 2)
        return job_fail(j, 413, "RequestTooLargeException",
                        "Zipped size must be smaller than %lld bytes", ZIPPED_MAX);
    return 0;
}

static int check_architectures(struct job *j)
{
    json_t *a = json_object_get(j->doc, "Architectures");
    if (!a || json_is_null(a))
        return 0;
    if (json_is_array(a) && json_array_size(a) == 1 && json_is_string(json_array_get(a, 0)) &&
        !strcmp(json_string_value(json_array_get(a, 0)), "x86_64"))
        return 0;
    return job_fail(j, 400, "InvalidParameterValueException",
                    "Architectures must be [\"x86_64\"]: nimbus runs x86_64 functions only");
}

/* Worker: parse the body and build what can be built without the registry. */
static int parse_work(struct job *j)
{
    struct nb_daemon *d = j->d;
    struct nb_err err = {0};
    if (j->op == OP_DELETE || j->op == OP_DELETE_CONCURRENCY || j->op == OP_UNTAG)
        goto build;
    if (j->body_len == 0) {
        j->doc = json_object();
    } else {
        json_error_t jerr;
        j->doc = json_loadb(j->body, j->body_len, 0, &jerr);
        if (!j->doc || !json_is_object(j->doc))
            return job_fail(j, 400, "InvalidRequestContentException",
                            "Could not parse request body into json: %s",
                            j->doc ? "not a JSON object" : jerr.text);
    }
    free(j->body);
    j->body = NULL;

build:
    switch (j->op) {
    case OP_CREATE: {
        json_t *code = json_object_get(j->doc, "Code");
        if (!code || json_is_null(code))
            return job_fail(j, 400, "InvalidParameterValueException",
                            "1 validation error detected: Value null at 'code' failed to satisfy "
                            "constraint: Member must not be null");
        if (!json_is_object(code))
            return job_fail(j, 400, "InvalidParameterValueException",
                            "1 validation error detected: Value at 'code' failed to satisfy "
                            "constraint: Member must be of type structure");
        /* The code comes in the commit step; validate everything else first. */
        j->next = function_new(&d->fnctx, j->doc, "", "", 0, &err);
        if (!j->next)
            return job_fail_err(j, &err);
        j->name = xstrdup(j->next->name);
        j->publish = doc_bool(j->doc, "Publish");
        return check_code_source(j, code);
    }
    case OP_UPDATE_CODE:
        if (check_revision(j) < 0 || check_architectures(j) < 0)
            return -1;
        j->dry_run = doc_bool(j->doc, "DryRun");
        j->publish = doc_bool(j->doc, "Publish");
        return check_code_source(j, j->doc);
    case OP_UPDATE_CONFIG:
        if (check_revision(j) < 0)
            return -1;
        j->next = function_update_config(j->cur, j->doc, &err);
        return j->next ? 0 : job_fail_err(j, &err);
    case OP_PUT_CONCURRENCY: {
        json_t *v = json_object_get(j->doc, "ReservedConcurrentExecutions");
        if (!v || json_is_null(v))
            return job_fail(j, 400, "InvalidParameterValueException",
                            "1 validation error detected: Value null at "
                            "'reservedConcurrentExecutions' failed to satisfy constraint: Member "
                            "must not be null");
        if (!json_is_integer(v))
            return job_fail(j, 400, "InvalidParameterValueException",
                            "1 validation error detected: Value at 'reservedConcurrentExecutions' "
                            "failed to satisfy constraint: Member must be of type integer");
        json_int_t n = json_integer_value(v);
        if (n < 0)
            return job_fail(j, 400, "InvalidParameterValueException",
                            "1 validation error detected: Value '%lld' at "
                            "'reservedConcurrentExecutions' failed to satisfy constraint: Member "
                            "must have value greater than or equal to 0",
                            (long long)n);
        if (n > INT32_MAX)
            n = INT32_MAX; /* fails the unreserved minimum below anyway */
        j->reserved = (int)n;
        j->next = function_with_concurrency(j->cur, j->reserved);
        return 0;
    }
    case OP_DELETE_CONCURRENCY:
        j->next = function_with_concurrency(j->cur, -1);
        return 0;
    case OP_TAG: {
        json_t *tags = json_object_get(j->doc, "Tags");
        if (!tags || json_is_null(tags))
            return job_fail(j, 400, "InvalidParameterValueException",
                            "1 validation error detected: Value null at 'tags' failed to satisfy "
                            "constraint: Member must not be null");
        json_t *merged = json_deep_copy(j->cur->tags);
        json_t *valid = function_tags_validate(tags, &err);
        if (!valid) {
            json_decref(merged);
            return job_fail_err(j, &err);
        }
        json_object_update(merged, valid);
        json_decref(valid);
        json_t *check = function_tags_validate(merged, &err); /* the limit counts all tags */
        if (!check) {
            json_decref(merged);
            return job_fail_err(j, &err);
        }
        json_decref(check);
        j->next = function_with_tags(j->cur, merged);
        json_decref(merged);
        return 0;
    }
    case OP_UNTAG: {
        json_t *tags = json_deep_copy(j->cur->tags);
        for (size_t i = 0; i < json_array_size(j->tag_keys); i++)
            json_object_del(tags, json_string_value(json_array_get(j->tag_keys, i)));
        j->next = function_with_tags(j->cur, tags);
        json_decref(tags);
        return 0;
    }
    case OP_DELETE:
        return 0;
    }
    BUG("unknown op %d", j->op);
}

/* Worker: decode and import a ZipFile; fills pkg. */
static int import_zip(struct job *j, json_t *zipfile, struct nb_codepkg *pkg)
{
    struct nb_err err = {0};
    unsigned char *zip;
    size_t len;
    if (b64_decode(json_string_value(zipfile), json_string_length(zipfile), &zip, &len, &err) < 0)
        return job_fail(j, 400, "InvalidParameterValueException", BAD_ZIP_MSG);
    /* The JSON text is no longer needed: drop the (large) base64 string early. */
    json_object_del(j->op == OP_CREATE ? json_object_get(j->doc, "Code") : j->doc, "ZipFile");
    if ((long long)len > ZIPPED_MAX) {
        free(zip);
        return job_fail(j, 413, "RequestTooLargeException",
                        "Zipped size must be smaller than %lld bytes", ZIPPED_MAX);
    }
    struct nb_codepkg_limits lim = NB_CODEPKG_LIMITS_DEFAULT;
    int rc = codepkg_import(j->d->cfg.data_dir, zip, len, &lim, pkg, &err);
    free(zip);
    if (rc < 0 && (err.code == EINVAL || err.code == E2BIG))
        return job_fail_err(j, &err); /* the package's fault, in Lambda's words */
    if (rc < 0) {
        log_err("code import failed function=%s msg=\"%s\"", j->name, err.msg);
        return job_fail(j, 500, "ServiceException", "%s", err.msg);
    }
    return 0;
}

/* A store failure: conflicts and absences keep their meaning, anything else is ours (500). */
static int store_fail(struct job *j, const struct nb_err *err)
{
    if (err->code == EEXIST)
        return job_fail(j, 409, "ResourceConflictException", "Function already exist: %s", j->name);
    if (err->code == ENOENT)
        return job_fail(j, 404, "ResourceNotFoundException", "Function not found: %s",
                        j->cur ? j->cur->arn : j->name);
    log_err("store write failed function=%s msg=\"%s\"", j->name, err->msg);
    return job_fail(j, 500, "ServiceException", "%s", err->msg);
}

/* Worker: Publish: true publishes the new $LATEST as a version, like PublishVersion: unchanged
 * since the last published version, that version is the answer. The change itself is already
 * durable; a failure here is a 500 that leaves $LATEST changed and no version published (the
 * client can call PublishVersion). */
static int publish_work(struct job *j)
{
    struct nb_err err = {0};
    if (j->last_pub && function_same_content(j->last_pub, j->next)) {
        j->pub = function_ref(j->last_pub);
        return 0;
    }
    j->pub = function_publish(j->next, j->pub_number, NULL);
    _cleanup_free_ char *rec = function_to_record(j->pub);
    if (store_version_insert(j->d->store, j->name, (int64_t)j->pub_number, rec, &err) < 0) {
        log_err("publish failed function=%s version=%llu msg=\"%s\"", j->name,
                (unsigned long long)j->pub_number, err.msg);
        return job_fail(j, 500, "ServiceException",
                        "the function was %s but version %llu could not be published: %s",
                        j->op == OP_CREATE ? "created" : "updated",
                        (unsigned long long)j->pub_number, err.msg);
    }
    j->pub_new = true;
    return 0;
}

/* Worker: import code if any, then make the change durable. */
static int commit_work(struct job *j)
{
    struct nb_err err = {0};
    struct nb_codepkg pkg;
    if (j->op == OP_CREATE || j->op == OP_UPDATE_CODE) {
        json_t *src = j->op == OP_CREATE ? json_object_get(j->doc, "Code") : j->doc;
        if (import_zip(j, json_object_get(src, "ZipFile"), &pkg) < 0)
            return -1;
        struct nb_function *base = j->op == OP_CREATE ? j->next : j->cur;
        /* j->next (create's validated snapshot) is private to this job: free it here. */
        struct nb_function *fresh =
            function_update_code(base, pkg.sha256_hex, pkg.sha256_b64, (int64_t)pkg.zip_size);
        function_unref(j->next);
        j->next = fresh;
    }
    if (j->op == OP_DELETE) {
        if (store_function_delete(j->d->store, j->name, &err) < 0)
            return store_fail(j, &err);
        return 0;
    }
    _cleanup_free_ char *rec = function_to_record(j->next);
    int rc = j->op == OP_CREATE ? store_function_insert(j->d->store, j->name, rec, &err)
                                : store_function_update(j->d->store, j->name, rec, &err);
    if (rc < 0)
        return store_fail(j, &err);
    j->committed = true;
    return j->publish ? publish_work(j) : 0;
}

static void parse_work_cb(uv_work_t *w);
static void parse_done_cb(uv_work_t *w, int status);
static void commit_work_cb(uv_work_t *w);
static void commit_done_cb(uv_work_t *w, int status);

static void parse_work_cb(uv_work_t *w)
{
    parse_work(w->data);
}

static void commit_work_cb(uv_work_t *w)
{
    commit_work(w->data);
}

static void queue(struct job *j, uv_work_cb work, uv_after_work_cb done)
{
    j->work.data = j;
    int rc = uv_queue_work(j->d->loop, &j->work, work, done);
    if (rc < 0) {
        job_fail(j, 500, "ServiceException", "cannot queue work: %s", uv_strerror(rc));
        job_reply_error(j);
        job_free(j);
    }
}

/* Loop: admission between validation and commit. Returns -1 with the failure recorded. */
static int admit(struct job *j)
{
    struct nb_daemon *d = j->d;
    if (j->op == OP_CREATE) {
        bool pending = false;
        for (struct pending_name *p = pending_creates; p && !pending; p = p->next)
            pending = !strcmp(p->name, j->name);
        if (pending || registry_find(d, j->name))
            return job_fail(j, 409, "ResourceConflictException", "Function already exist: %s",
                            j->name);
        struct pending_name *p = xcalloc(1, sizeof(*p));
        p->name = xstrdup(j->name);
        p->next = pending_creates;
        pending_creates = p;
        j->pending_create = true;
        j->pub_number = 1;
    } else if (j->op == OP_UPDATE_CODE) {
        /* fn->updating is held: no other publish can take a number until this job ends */
        j->pub_number = j->fn->last_version + 1;
        if (j->fn->n_versions)
            j->last_pub = function_ref(j->fn->versions[j->fn->n_versions - 1]);
    } else if (j->op == OP_PUT_CONCURRENCY) {
        if (j->reserved < j->fn->pc_total) /* provisioned instances live inside a reservation */
            return job_fail(j, 400, "InvalidParameterValueException",
                            "Specified ReservedConcurrentExecutions for function is less than "
                            "the function's provisioned concurrency [%lld].",
                            (long long)j->fn->pc_total);
        int64_t mine = j->cur->reserved_concurrency > 0 ? j->cur->reserved_concurrency : 0;
        /* provisioned concurrency of other functions without a reservation is set aside too;
         * this function's moves inside its reservation */
        int64_t reserved = registry_reserved_total(d) - mine + pending_reserved + j->reserved +
                           d->pc_unreserved_total -
                           (j->cur->reserved_concurrency < 0 ? j->fn->pc_total : 0);
        if (d->cfg.account_concurrency - reserved < MIN_UNRESERVED)
            return job_fail(j, 400, "InvalidParameterValueException",
                            "Specified ReservedConcurrentExecutions for function decreases "
                            "account's UnreservedConcurrentExecution below its minimum value of "
                            "[%d].",
                            MIN_UNRESERVED);
        pending_reserved += j->reserved;
        j->holds_reserved = true;
    }
    return 0;
}

static void parse_done_cb(uv_work_t *w, int status)
{
    struct job *j = w->data;
    if (status < 0)
        job_fail(j, 500, "ServiceException", "work cancelled: %s", uv_strerror(status));
    if (!j->failed && j->dry_run) {
        if (j->req)
            api_json(j->req, 200, function_config_json(j->cur));
        j->req = NULL;
        job_free(j);
        return;
    }
    if (j->failed || admit(j) < 0) {
        job_reply_error(j);
        job_free(j);
        return;
    }
    queue(j, commit_work_cb, commit_done_cb);
}

/* Loop, after a committed create or code update with Publish: installs the version and replies
 * (or replies the publish failure); false when the job did not publish. The reply is the
 * version's configuration, as Lambda's: Version "N", with the unqualified ARN for CreateFunction
 * and the version's ARN for UpdateFunctionCode. */
static bool published(struct job *j, struct nb_fn *fn, struct nb_http_req *req)
{
    if (!j->publish)
        return false;
    if (j->failed) { /* the change committed, the version did not */
        j->req = req;
        job_reply_error(j);
        return true;
    }
    if (j->pub_new) {
        log_info("version published function=%s version=%s code=%s", j->name, j->pub->version,
                 j->pub->code_hex);
        registry_add_version(fn, function_ref(j->pub));
    }
    if (req) {
        json_t *o = function_config_json(j->pub);
        if (j->op == OP_CREATE)
            json_object_set_new(o, "FunctionArn", json_string(j->next->arn));
        api_json(req, j->op == OP_CREATE ? 201 : 200, o);
    }
    return true;
}

static void commit_done_cb(uv_work_t *w, int status)
{
    struct job *j = w->data;
    struct nb_daemon *d = j->d;
    if (status < 0)
        job_fail(j, 500, "ServiceException", "work cancelled: %s", uv_strerror(status));
    if (j->failed && !j->committed) {
        job_reply_error(j);
        job_free(j);
        return;
    }
    struct nb_http_req *req = j->req;
    j->req = NULL;
    if (req) {
        req->on_abort = NULL;
        req->abort_data = NULL;
    }
    /* The registry changes first, so the reply never announces what a next request can't see. */
    switch (j->op) {
    case OP_CREATE: {
        log_info("function created name=%s code=%s size=%lld", j->name, j->next->code_hex,
                 (long long)j->next->code_size);
        struct nb_fn *fn = registry_add(d, function_ref(j->next));
        if (published(j, fn, req))
            break;
        if (req)
            api_json(req, 201, function_config_json(j->next));
        break;
    }
    case OP_UPDATE_CODE:
    case OP_UPDATE_CONFIG:
        log_info("function updated name=%s what=%s revision=%s", j->name,
                 j->op == OP_UPDATE_CODE ? "code" : "configuration", j->next->revision_id);
        registry_set_config(d, j->fn, function_ref(j->next));
        if (published(j, j->fn, req))
            break;
        if (req)
            api_json(req, 200, function_config_json(j->next));
        break;
    case OP_PUT_CONCURRENCY:
        log_info("function concurrency name=%s reserved=%d", j->name, j->reserved);
        registry_set_config(d, j->fn, function_ref(j->next));
        if (req)
            api_json(req, 200, json_pack("{s:i}", "ReservedConcurrentExecutions", j->reserved));
        break;
    case OP_DELETE_CONCURRENCY:
    case OP_TAG:
    case OP_UNTAG:
        registry_set_config(d, j->fn, function_ref(j->next));
        if (req)
            api_empty(req, 204);
        break;
    case OP_DELETE:
        log_info("function deleted name=%s", j->name);
        async_config_forget(d, j->name); /* the store deleted them with the function */
        registry_remove(d, j->fn);
        if (req)
            api_empty(req, 204);
        break;
    }
    job_free(j);
}

static struct job *job_new(struct nb_http_req *req, struct nb_daemon *d, enum op op)
{
    struct job *j = xcalloc(1, sizeof(*j));
    j->d = d;
    j->req = req;
    j->op = op;
    j->body = http_req_steal_body(req, &j->body_len);
    /* No abort callback: a request whose client went away stays valid (http.h) until the job
     * replies, which then only frees it; the write itself always completes. */
    return j;
}

/* Starts a write to an existing function: 409 if another write is in flight. */
static void start_update(struct nb_http_req *req, struct nb_daemon *d, struct nb_fn *fn, enum op op,
                         json_t *tag_keys)
{
    if (fn->updating) {
        json_decref(tag_keys);
        update_in_progress(req, fn);
        return;
    }
    struct job *j = job_new(req, d, op);
    fn->updating = true;
    fn_ref(fn);
    j->fn = fn;
    j->cur = function_ref(fn->cfg);
    j->name = xstrdup(fn->name);
    j->tag_keys = tag_keys;
    queue(j, parse_work_cb, parse_done_cb);
}

/* ---- handlers ---- */

static void h_create(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct job *j = job_new(req, data, OP_CREATE);
    queue(j, parse_work_cb, parse_done_cb);
}

/* Writes to a function by {FunctionName}: only the unqualified function or $LATEST. */
static void h_write(struct nb_http_req *req, const struct nb_route_match *m, struct nb_daemon *d,
                    enum op op)
{
    _cleanup_free_ char *qual = NULL;
    struct nb_fn *fn = resolve(req, d, m, &qual);
    if (!fn)
        return;
    if (op == OP_DELETE && qual) {
        api_versions_delete(req, d, fn, qual);
        return;
    }
    if (qual && strcmp(qual, "$LATEST") != 0) {
        api_error(req, 400, "InvalidParameterValueException",
                  "Only $LATEST can be changed: published versions are immutable, and this "
                  "operation does not take an alias (use the unqualified function name)");
        return;
    }
    start_update(req, d, fn, op, NULL);
}

static void h_update_code(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    h_write(req, m, data, OP_UPDATE_CODE);
}

static void h_update_config(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    h_write(req, m, data, OP_UPDATE_CONFIG);
}

static void h_delete(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    h_write(req, m, data, OP_DELETE);
}

static void h_put_concurrency(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    h_write(req, m, data, OP_PUT_CONCURRENCY);
}

static void h_delete_concurrency(struct nb_http_req *req, const struct nb_route_match *m,
                                 void *data)
{
    h_write(req, m, data, OP_DELETE_CONCURRENCY);
}

/* auth: Code.Location is a presigned URL (SigV4 query auth, signed with the caller's key, valid
 * CODE_URL_EXPIRES_S like Lambda's) so curl or urllib can fetch it without credentials. */
#define CODE_URL_EXPIRES_S 600
static void code_location(struct nb_http_req *req, struct nb_daemon *d,
                          const struct nb_route_match *m, const char *name, const char *qual,
                          char *out, size_t n)
{
    /* The address the client used reaches us; fall back to the listen address. */
    const char *host = http_req_header(req, "Host");
    char hostbuf[300];
    if (!host || !*host || strlen(host) > 255 || strpbrk(host, " /\\\"'<>?#@")) {
        snprintf(hostbuf, sizeof(hostbuf), "%s:%d", d->cfg.listen_host,
                 d->api ? http_server_port(d->api) : d->cfg.listen_port);
        host = hostbuf;
    }
    _cleanup_free_ char *path = xasprintf("/nimbus/v1/functions/%s/code", name);
    const struct nb_key *key = m->caller ? keys_find(d->keys, m->caller->key_id) : NULL;
    if (!key)
        key = keys_root(d->keys);
    char query[160] = "";
    if (qual) /* a qualifier is [a-zA-Z0-9$_-]: '$' is the only character to encode */
        snprintf(query, sizeof(query), "Qualifier=%s%s", qual[0] == '$' ? "%24" : "",
                 qual[0] == '$' ? qual + 1 : qual);
    _cleanup_free_ char *q =
        sigv4_presign("GET", path, qual ? query : NULL, host, key->id, key->secret, d->cfg.region,
                      "lambda", (int64_t)time(NULL), CODE_URL_EXPIRES_S);
    snprintf(out, n, "http://%s%s?%s", host, path, q);
}

static void h_get(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    _cleanup_free_ char *qual = NULL;
    struct nb_function *snap;
    struct nb_fn *fn = resolve_snapshot(req, d, m, &qual, &snap);
    if (!fn)
        return;
    char loc[2048];
    code_location(req, d, m, fn->name, qual, loc, sizeof(loc));
    json_t *o = json_object();
    json_object_set_new(o, "Configuration", function_config_json_qualified(snap, qual));
    json_object_set_new(o, "Code", json_pack("{s:s,s:s}", "RepositoryType", "S3", "Location", loc));
    if (json_object_size(fn->cfg->tags))
        json_object_set_new(o, "Tags", json_deep_copy(fn->cfg->tags));
    if (fn->cfg->reserved_concurrency >= 0)
        json_object_set_new(
            o, "Concurrency",
            json_pack("{s:i}", "ReservedConcurrentExecutions", fn->cfg->reserved_concurrency));
    api_json(req, 200, o);
}

static void h_get_config(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    _cleanup_free_ char *qual = NULL;
    struct nb_function *snap;
    struct nb_fn *fn = resolve_snapshot(req, data, m, &qual, &snap);
    if (fn)
        api_json(req, 200, function_config_json_qualified(snap, qual));
}

static void h_get_concurrency(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    _cleanup_free_ char *qual = NULL;
    struct nb_fn *fn = resolve(req, data, m, &qual);
    if (!fn)
        return;
    json_t *o = json_object();
    if (fn->cfg->reserved_concurrency >= 0)
        json_object_set_new(o, "ReservedConcurrentExecutions",
                            json_integer(fn->cfg->reserved_concurrency));
    api_json(req, 200, o);
}

static int list_query_int(struct nb_http_req *req, const char *key, const char *wire, int64_t min,
                          int64_t max, int64_t *out)
{
    const char *s = http_req_query(req, key);
    if (!s)
        return 0;
    int rc = parse_i64(s, INT64_MIN, INT64_MAX, out);
    if (rc == 0 && *out < min)
        api_error(req, 400, "InvalidParameterValueException",
                  "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: "
                  "Member must have value greater than or equal to %lld",
                  s, wire, (long long)min);
    else if (rc == 0 && *out > max)
        api_error(req, 400, "InvalidParameterValueException",
                  "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: "
                  "Member must have value less than or equal to %lld",
                  s, wire, (long long)max);
    else if (rc < 0)
        api_error(req, 400, "InvalidParameterValueException",
                  "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: "
                  "Member must be of type integer",
                  s, wire);
    else
        return 0;
    return -1;
}

static void h_list(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    int64_t max = LIST_DEFAULT_ITEMS;
    if (list_query_int(req, "MaxItems", "maxItems", 1, LIST_MAX_ITEMS, &max) < 0)
        return;
    const char *version = http_req_query(req, "FunctionVersion");
    if (version && strcmp(version, "ALL") != 0) {
        api_error(req, 400, "InvalidParameterValueException",
                  "1 validation error detected: Value '%s' at 'functionVersion' failed to satisfy "
                  "constraint: Member must satisfy enum value set: [ALL]",
                  version);
        return;
    }
    /* The marker names the last item of the previous page: "NAME" (its $LATEST), or "NAME:N"
     * for a published version with FunctionVersion=ALL (every version of every function, in
     * name then version order). The list is in name order, so it stays correct when functions
     * come and go between pages. */
    const char *marker = http_req_query(req, "Marker");
    _cleanup_free_ char *mname = NULL;
    int64_t mver = 0; /* 0: the marker is a function's $LATEST */
    if (marker && *marker) {
        const char *colon = strchr(marker, ':');
        mname = colon ? xstrndup(marker, (size_t)(colon - marker)) : xstrdup(marker);
        if (colon && parse_i64(colon + 1, 1, INT64_MAX, &mver) < 0)
            mver = 0;
    }
    struct nb_fn **fns;
    size_t n = registry_list(d, &fns);
    size_t i = 0, v = 0; /* v: 0 = $LATEST, k = fns[i]->versions[k - 1] */
    if (mname) {
        while (i < n && strcmp(fns[i]->name, mname) < 0)
            i++;
        if (i < n && !strcmp(fns[i]->name, mname)) {
            /* resume after the marker inside this function */
            v = 1;
            while (version && v <= fns[i]->n_versions && mver &&
                   strtoll(fns[i]->versions[v - 1]->version, NULL, 10) <= mver)
                v++;
        }
    }
    json_t *items = json_array();
    char last[200] = "";
    bool more = false;
    for (; i < n; i++, v = 0) {
        size_t nv = version ? fns[i]->n_versions : 0;
        for (; v <= nv; v++) {
            if ((int64_t)json_array_size(items) >= max) {
                more = true;
                break;
            }
            if (v == 0) {
                json_array_append_new(items, list_item(fns[i]->cfg, version ? "$LATEST" : NULL));
                snprintf(last, sizeof(last), "%s", fns[i]->name);
            } else {
                const struct nb_function *ver = fns[i]->versions[v - 1];
                json_array_append_new(items, list_item(ver, NULL));
                snprintf(last, sizeof(last), "%s:%s", fns[i]->name, ver->version);
            }
        }
        if (more)
            break;
    }
    json_t *o = json_pack("{s:o}", "Functions", items);
    if (more && *last)
        json_object_set_new(o, "NextMarker", json_string(last));
    free(fns);
    api_json(req, 200, o);
}

static void h_account(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    struct nb_fn **fns;
    size_t n = registry_list(d, &fns);
    int64_t code = 0;
    for (size_t i = 0; i < n; i++)
        code += fns[i]->cfg->code_size;
    free(fns);
    int64_t total = d->cfg.account_concurrency;
    api_json(req, 200,
             json_pack("{s:{s:I,s:I,s:I,s:I,s:I},s:{s:I,s:I}}", "AccountLimit", "TotalCodeSize",
                       (json_int_t)TOTAL_CODE_MAX, "CodeSizeUnzipped", (json_int_t)UNZIPPED_MAX,
                       "CodeSizeZipped", (json_int_t)ZIPPED_MAX, "ConcurrentExecutions",
                       (json_int_t)total, "UnreservedConcurrentExecutions",
                       (json_int_t)(total - registry_reserved_total(d) - d->pc_unreserved_total),
                       "AccountUsage", "TotalCodeSize", (json_int_t)code, "FunctionCount",
                       (json_int_t)n));
}

/* Resolves a tags resource ARN: only an unqualified function ARN is taggable here. */
static struct nb_fn *resolve_tag_arn(struct nb_http_req *req, struct nb_daemon *d,
                                     const struct nb_route_match *m)
{
    const char *arn = route_param(m, "ARN");
    _cleanup_free_ char *name = NULL, *qual = NULL;
    if (strncmp(arn, "arn:", 4) != 0 || !strstr(arn, ":function:")) {
        api_error(req, 400, "InvalidParameterValueException",
                  "1 validation error detected: Value '%s' at 'resource' failed to satisfy "
                  "constraint: Member must satisfy regular expression pattern: "
                  "arn:(aws[a-zA-Z-]*):lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:"
                  "\\d{12}:function:[a-zA-Z0-9-_]+(:(\\$LATEST|[a-zA-Z0-9-_]+))?",
                  arn);
        return NULL;
    }
    if (parse_ref(req, d, arn, &name, &qual) < 0)
        return NULL;
    if (qual) {
        api_error(req, 400, "InvalidParameterValueException",
                  "Tags are supported on functions only, not on versions or aliases: use the "
                  "unqualified function ARN");
        return NULL;
    }
    struct nb_fn *fn = registry_find(d, name);
    if (!fn)
        not_found(req, d, name, NULL);
    return fn;
}

static void h_list_tags(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_fn *fn = resolve_tag_arn(req, data, m);
    if (fn)
        api_json(req, 200, json_pack("{s:o}", "Tags", json_deep_copy(fn->cfg->tags)));
}

static void h_tag(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_fn *fn = resolve_tag_arn(req, data, m);
    if (fn)
        start_update(req, data, fn, OP_TAG, NULL);
}

/* Every value of a repeated query parameter (tagKeys=a&tagKeys=b), decoded. */
static json_t *query_all(struct nb_http_req *req, const char *key)
{
    json_t *out = json_array();
    size_t klen = strlen(key);
    for (const char *p = req->query; p && *p;) {
        const char *end = strchr(p, '&');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > klen && !strncmp(p, key, klen) && p[klen] == '=') {
            char *raw = arena_strndup(&req->arena, p + klen + 1, n - klen - 1);
            for (char *c = raw; *c; c++)
                if (*c == '+')
                    *c = ' ';
            char *v = http_pct_decode(&req->arena, raw, strlen(raw));
            if (!v) {
                json_decref(out);
                return NULL;
            }
            json_array_append_new(out, json_string(v));
        }
        p = end ? end + 1 : p + n;
    }
    return out;
}

static void h_untag(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_fn *fn = resolve_tag_arn(req, data, m);
    if (!fn)
        return;
    json_t *keys = query_all(req, "tagKeys");
    if (!keys || !json_array_size(keys)) {
        json_decref(keys);
        api_error(req, 400, "InvalidParameterValueException",
                  "1 validation error detected: Value null at 'tagKeys' failed to satisfy "
                  "constraint: Member must not be null");
        return;
    }
    start_update(req, data, fn, OP_UNTAG, keys);
}

/* ---- code download ---- */

struct code_read {
    uv_work_t work;
    struct nb_http_req *req; /* NULL once the client went away */
    char *path;
    char *data;
    size_t len;
    int rc;
};

static void code_read_work(uv_work_t *w)
{
    struct code_read *c = w->data;
    c->rc = read_file(c->path, &c->data, &c->len);
}

static void code_read_done(uv_work_t *w, int status)
{
    struct code_read *c = w->data;
    if (c->req) {
        c->req->on_abort = NULL;
        if (status == 0 && c->rc == 0) {
            struct nb_http_header h[] = {{"Content-Type", "application/zip"}};
            http_reply_owned(c->req, 200, h, ARRAY_SIZE(h), c->data, c->len);
            c->data = NULL;
        } else if (c->rc == -ENOENT) {
            api_error(c->req, 404, "ResourceNotFoundException", "The code package is gone");
        } else {
            api_error(c->req, 500, "ServiceException", "cannot read the code package: %s",
                      strerror(c->rc < 0 ? -c->rc : EIO));
        }
    }
    free(c->data);
    free(c->path);
    free(c);
}

static void h_code(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    _cleanup_free_ char *qual = NULL;
    struct nb_function *snap;
    struct nb_fn *fn = resolve_snapshot(req, d, m, &qual, &snap);
    if (!fn)
        return;
    struct code_read *c = xcalloc(1, sizeof(*c));
    c->req = req;
    c->path = codepkg_zip_path(d->cfg.data_dir, snap->code_hex);
    c->work.data = c;
    int rc = uv_queue_work(d->loop, &c->work, code_read_work, code_read_done);
    if (rc < 0) {
        api_error(req, 500, "ServiceException", "cannot queue work: %s", uv_strerror(rc));
        free(c->path);
        free(c);
    }
}

void api_lambda_routes(struct nb_router *r, struct nb_daemon *d)
{
    router_add(r, "POST", "/2015-03-31/functions", "lambda:CreateFunction", h_create, d);
    router_add(r, "POST", "/2015-03-31/functions/", "lambda:CreateFunction", h_create, d);
    router_add(r, "GET", "/2015-03-31/functions/", "lambda:ListFunctions", h_list, d);
    router_add(r, "GET", "/2015-03-31/functions", "lambda:ListFunctions", h_list, d);
    router_add(r, "GET", "/2015-03-31/functions/{FunctionName}", "lambda:GetFunction", h_get, d);
    router_add(r, "DELETE", "/2015-03-31/functions/{FunctionName}", "lambda:DeleteFunction",
               h_delete, d);
    router_add(r, "GET", "/2015-03-31/functions/{FunctionName}/configuration",
               "lambda:GetFunctionConfiguration", h_get_config, d);
    router_add(r, "PUT", "/2015-03-31/functions/{FunctionName}/configuration",
               "lambda:UpdateFunctionConfiguration", h_update_config, d);
    router_add(r, "PUT", "/2015-03-31/functions/{FunctionName}/code", "lambda:UpdateFunctionCode",
               h_update_code, d);
    router_add(r, "GET", "/2016-08-19/account-settings/", "lambda:GetAccountSettings", h_account,
               d);
    router_add(r, "GET", "/2016-08-19/account-settings", "lambda:GetAccountSettings", h_account, d);
    router_add(r, "PUT", "/2017-10-31/functions/{FunctionName}/concurrency",
               "lambda:PutFunctionConcurrency", h_put_concurrency, d);
    router_add(r, "DELETE", "/2017-10-31/functions/{FunctionName}/concurrency",
               "lambda:DeleteFunctionConcurrency", h_delete_concurrency, d);
    router_add(r, "GET", "/2019-09-30/functions/{FunctionName}/concurrency",
               "lambda:GetFunctionConcurrency", h_get_concurrency, d);
    router_add(r, "GET", "/2017-03-31/tags/{ARN}", "lambda:ListTags", h_list_tags, d);
    router_add(r, "POST", "/2017-03-31/tags/{ARN}", "lambda:TagResource", h_tag, d);
    router_add(r, "DELETE", "/2017-03-31/tags/{ARN}", "lambda:UntagResource", h_untag, d);
    router_add(r, "GET", "/nimbus/v1/functions/{FunctionName}/code", "nimbus:GetFunctionCode",
               h_code, d);
}

/*
 * function.c - a function's configuration snapshot: validation of CreateFunction and
 * UpdateFunctionConfiguration bodies with Lambda's rules and messages, Lambda's
 * FunctionConfiguration JSON, the store record, and the FunctionName reference parser.
 *
 * Invariants: a snapshot is immutable once returned; every string member is non-NULL; env and
 * tags are objects of strings that belong to this snapshot alone (deep copies, never shared with
 * another snapshot), so a worker thread may build a new snapshot from one the loop thread holds
 * while the loop keeps reading it. Only `refs` changes after creation, and only on the loop.
 * Nothing here touches the loop, the registry or the disk: every call is pure and thread-safe.
 *
 * Validation messages follow Lambda's ("1 validation error detected: Value '…' at 'memorySize'
 * failed to satisfy constraint: …") and all fail with -EINVAL (InvalidParameterValueException).
 */
#include "function.h"

#include <ctype.h>
#include <errno.h>

#include "util.h"

#define NAME_MAX_LEN 64
#define REF_MAX_LEN 140
#define HANDLER_MAX_LEN 128
#define DESCRIPTION_MAX_LEN 256
#define ENV_MAX_BYTES 4096
#define TAGS_MAX 50
#define TAG_KEY_MAX_LEN 128
#define TAG_VALUE_MAX_LEN 256
#define RECORD_FORMAT 1

#define ROLE_PATTERN "arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+"
#define REF_PATTERN                                                                                \
    "(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?"      \
    "([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"
#define ENV_KEY_PATTERN "[a-zA-Z]([a-zA-Z0-9_])+"

static const struct {
    const char *name;
    enum nb_runtime_kind kind;
} runtimes[] = {
    {"nodejs18.x", NB_RT_NODE},       {"nodejs20.x", NB_RT_NODE},
    {"nodejs22.x", NB_RT_NODE},       {"provided", NB_RT_PROVIDED},
    {"provided.al2", NB_RT_PROVIDED}, {"provided.al2023", NB_RT_PROVIDED},
    {"python3.8", NB_RT_PYTHON},      {"python3.9", NB_RT_PYTHON},
    {"python3.10", NB_RT_PYTHON},     {"python3.11", NB_RT_PYTHON},
    {"python3.12", NB_RT_PYTHON},     {"python3.13", NB_RT_PYTHON},
};

static const char *const reserved_env_keys[] = {
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "NIMBUS_RUNTIME_API_SOCKET",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
};

/* ---- small JSON accessors: absent and null are the same; a wrong type is EINVAL ---- */

static int type_error(struct nb_err *err, const char *member, const char *type)
{
    return err_set(err, EINVAL,
                   "1 validation error detected: Value at '%s' failed to satisfy constraint: "
                   "Member must be of type %s",
                   member, type);
}

static int null_error(struct nb_err *err, const char *member)
{
    return err_set(err, EINVAL,
                   "1 validation error detected: Value null at '%s' failed to satisfy "
                   "constraint: Member must not be null",
                   member);
}

static json_t *member(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

/* *out borrowed from the JSON value; NULL when absent. Strings with NUL bytes are refused. */
static int get_string(json_t *obj, const char *key, const char *wire, const char **out,
                      struct nb_err *err)
{
    json_t *v = member(obj, key);
    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_string(v))
        return type_error(err, wire, "string");
    if (strlen(json_string_value(v)) != json_string_length(v))
        return err_set(err, EINVAL,
                       "1 validation error detected: Value at '%s' failed to satisfy "
                       "constraint: Member must not contain NUL characters",
                       wire);
    *out = json_string_value(v);
    return 0;
}

/* Integer member within [min,max]; *present says whether it was given. */
static int get_int(json_t *obj, const char *key, const char *wire, int64_t min, int64_t max,
                   int64_t *out, bool *present, struct nb_err *err)
{
    json_t *v = member(obj, key);
    *present = v != NULL;
    if (!v)
        return 0;
    if (!json_is_integer(v))
        return type_error(err, wire, "integer");
    json_int_t n = json_integer_value(v);
    if (n < min)
        return err_set(err, EINVAL,
                       "1 validation error detected: Value '%lld' at '%s' failed to satisfy "
                       "constraint: Member must have value greater than or equal to %lld",
                       (long long)n, wire, (long long)min);
    if (n > max)
        return err_set(err, EINVAL,
                       "1 validation error detected: Value '%lld' at '%s' failed to satisfy "
                       "constraint: Member must have value less than or equal to %lld",
                       (long long)n, wire, (long long)max);
    *out = n;
    return 0;
}

static int length_error(struct nb_err *err, const char *value, const char *wire, size_t max)
{
    return err_set(err, EINVAL,
                   "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: "
                   "Member must have length less than or equal to %zu",
                   value, wire, max);
}

/* ---- patterns ---- */

static bool name_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_';
}

bool function_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(name[i]))
            return false;
    return true;
}

/* arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+ (whole string). */
static bool role_valid(const char *s)
{
    if (strncmp(s, "arn:", 4) != 0)
        return false;
    s += 4;
    if (strncmp(s, "aws", 3) == 0) {
        s += 3;
        while (isalpha((unsigned char)*s) || *s == '-')
            s++;
    }
    if (strncmp(s, ":iam::", 6) != 0)
        return false;
    s += 6;
    for (int i = 0; i < 12; i++, s++)
        if (!isdigit((unsigned char)*s))
            return false;
    if (strncmp(s, ":role", 5) != 0)
        return false;
    s += 5;
    /* "/?" followed by one or more of a set that itself contains '/': any non-empty run. */
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("_+=,.@-/", *s))
            return false;
    return true;
}

/* ARN prefix "arn:(aws[a-zA-Z-]*)?:lambda:"; returns its length or 0. */
static size_t match_arn_prefix(const char *s)
{
    const char *p = s;
    if (strncmp(p, "arn:", 4) != 0)
        return 0;
    p += 4;
    if (strncmp(p, "aws", 3) == 0) {
        p += 3;
        while (isalpha((unsigned char)*p) || *p == '-')
            p++;
    }
    if (strncmp(p, ":lambda:", 8) != 0)
        return 0;
    return (size_t)(p + 8 - s);
}

/* "[a-z]{2}(-gov)?-[a-z]+-\d{1}:"; returns its length or 0. */
static size_t match_region_with(const char *s, bool gov)
{
    const char *p = s;
    if (!islower((unsigned char)p[0]) || !islower((unsigned char)p[1]))
        return 0;
    p += 2;
    if (gov) {
        if (strncmp(p, "-gov", 4) != 0)
            return 0;
        p += 4;
    }
    if (*p++ != '-' || !islower((unsigned char)*p))
        return 0;
    while (islower((unsigned char)*p))
        p++;
    if (*p++ != '-' || !isdigit((unsigned char)*p))
        return 0;
    p++;
    if (*p != ':')
        return 0;
    return (size_t)(p + 1 - s);
}

static size_t match_region(const char *s)
{
    size_t n = match_region_with(s, true);
    return n ? n : match_region_with(s, false);
}

static size_t match_account(const char *s)
{
    for (int i = 0; i < 12; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return s[12] == ':' ? 13 : 0;
}

static size_t match_function_kw(const char *s)
{
    return strncmp(s, "function:", 9) == 0 ? 9 : 0;
}

/* "([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?" to the end of s. */
static bool match_tail(const char *s, size_t *name_len, const char **qual)
{
    size_t n = 0;
    while (name_char(s[n]))
        n++;
    if (n == 0)
        return false;
    *name_len = n;
    *qual = NULL;
    if (!s[n])
        return true;
    if (s[n] != ':')
        return false;
    const char *q = s + n + 1;
    if (strcmp(q, "$LATEST") == 0) {
        *qual = q;
        return true;
    }
    if (!*q)
        return false;
    for (const char *p = q; *p; p++)
        if (!name_char(*p))
            return false;
    *qual = q;
    return true;
}

int function_parse_ref_arn(const char *ref, char **name, char **qualifier, char **region,
                           char **account, struct nb_err *err)
{
    size_t len = strlen(ref);
    if (len == 0)
        return err_set(err, EINVAL,
                       "1 validation error detected: Value '' at 'functionName' failed to "
                       "satisfy constraint: Member must have length greater than or equal to 1");
    if (len > REF_MAX_LEN)
        return err_set(err, EINVAL,
                       "1 validation error detected: Value '%.*s...' at 'functionName' failed to "
                       "satisfy constraint: Member must have length less than or equal to %d",
                       REF_MAX_LEN, ref, REF_MAX_LEN);
    /* Each optional prefix group matches in at most one way, so trying the 16 combinations in
     * the order a backtracking regex engine would (greedy, outermost first) gives the same
     * groups as matching the model's pattern. */
    for (int combo = 15; combo >= 0; combo--) {
        const char *p = ref;
        size_t n, rg_len = 0, ac_len = 0;
        const char *rg = NULL, *ac = NULL;
        if (combo & 8) {
            if (!(n = match_arn_prefix(p)))
                continue;
            p += n;
        }
        if (combo & 4) {
            if (!(n = match_region(p)))
                continue;
            rg = p, rg_len = n - 1;
            p += n;
        }
        if (combo & 2) {
            if (!(n = match_account(p)))
                continue;
            ac = p, ac_len = n - 1;
            p += n;
        }
        if (combo & 1) {
            if (!(n = match_function_kw(p)))
                continue;
            p += n;
        }
        size_t name_len;
        const char *qual;
        if (!match_tail(p, &name_len, &qual))
            continue;
        if (p == ref && !qual && name_len > NAME_MAX_LEN)
            return length_error(err, ref, "functionName", NAME_MAX_LEN);
        if (name_len > NAME_MAX_LEN)
            return err_set(err, EINVAL,
                           "1 validation error detected: Value '%.*s' at 'functionName' failed "
                           "to satisfy constraint: Member must have length less than or equal "
                           "to %d",
                           (int)name_len, p, NAME_MAX_LEN);
        *name = xstrndup(p, name_len);
        *qualifier = qual ? xstrdup(qual) : NULL;
        if (region)
            *region = rg ? xstrndup(rg, rg_len) : NULL;
        if (account)
            *account = ac ? xstrndup(ac, ac_len) : NULL;
        return 0;
    }
    return err_set(err, EINVAL,
                   "1 validation error detected: Value '%s' at 'functionName' failed to satisfy "
                   "constraint: Member must satisfy regular expression pattern: " REF_PATTERN,
                   ref);
}

int function_parse_ref(const char *ref, char **name, char **qualifier, struct nb_err *err)
{
    return function_parse_ref_arn(ref, name, qualifier, NULL, NULL, err);
}

/* ---- runtimes ---- */

int function_runtime_kind(const char *runtime, enum nb_runtime_kind *kind)
{
    for (size_t i = 0; i < ARRAY_SIZE(runtimes); i++) {
        if (strcmp(runtimes[i].name, runtime) == 0) {
            *kind = runtimes[i].kind;
            return 0;
        }
    }
    return -EINVAL;
}

static int runtime_error(const char *runtime, struct nb_err *err)
{
    struct nb_buf b = NB_BUF_INIT;
    for (size_t i = 0; i < ARRAY_SIZE(runtimes); i++)
        buf_appendf(&b, "%s%s", i ? ", " : "", runtimes[i].name);
    int rc = err_set(err, EINVAL,
                     "Value %s at 'runtime' failed to satisfy constraint: Member must satisfy enum "
                     "value set: [%s] or be a valid ARN",
                     runtime, b.data);
    buf_release(&b);
    return rc;
}

/* ---- members shared by create and update ---- */

static int check_handler(const char *handler, struct nb_err *err)
{
    size_t n = strlen(handler);
    if (n > HANDLER_MAX_LEN)
        return length_error(err, handler, "handler", HANDLER_MAX_LEN);
    for (size_t i = 0; i < n; i++)
        if (isspace((unsigned char)handler[i]))
            return err_set(err, EINVAL,
                           "1 validation error detected: Value '%s' at 'handler' failed to "
                           "satisfy constraint: Member must satisfy regular expression pattern: "
                           "[^\\s]+",
                           handler);
    return 0;
}

static int check_role(const char *role, struct nb_err *err)
{
    if (!role_valid(role))
        return err_set(err, EINVAL,
                       "1 validation error detected: Value '%s' at 'role' failed to satisfy "
                       "constraint: Member must satisfy regular expression pattern: " ROLE_PATTERN,
                       role);
    return 0;
}

static bool env_key_valid(const char *k)
{
    if (!isalpha((unsigned char)k[0]) || !k[1])
        return false;
    for (const char *p = k + 1; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return false;
    return true;
}

/* Validates Environment (the member's value) and returns a new object of its Variables. */
static json_t *parse_environment(json_t *env, struct nb_err *err)
{
    if (!json_is_object(env)) {
        type_error(err, "environment", "structure");
        return NULL;
    }
    json_t *vars = member(env, "Variables");
    if (!vars)
        return json_object();
    if (!json_is_object(vars)) {
        type_error(err, "environment.variables", "map");
        return NULL;
    }
    struct nb_buf reserved = NB_BUF_INIT;
    /* Reserved keys first: some (_HANDLER) would fail the key pattern too, and Lambda names them
     * as reserved. */
    for (void *it = json_object_iter(vars); it; it = json_object_iter_next(vars, it)) {
        const char *k = json_object_iter_key(it);
        for (size_t i = 0; i < ARRAY_SIZE(reserved_env_keys); i++)
            if (strcmp(k, reserved_env_keys[i]) == 0)
                buf_appendf(&reserved, "%s%s", reserved.len ? ", " : "", k);
    }
    if (reserved.len) {
        err_set(err, EINVAL,
                "Lambda was unable to configure your environment variables because the "
                "environment variables you have provided contains reserved keys that are "
                "currently not supported for modification. Reserved keys used in this request: %s",
                reserved.data);
        buf_release(&reserved);
        return NULL;
    }
    for (void *it = json_object_iter(vars); it; it = json_object_iter_next(vars, it)) {
        const char *k = json_object_iter_key(it);
        json_t *v = json_object_iter_value(it);
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
            type_error(err, "environment.variables", "map of strings");
            return NULL;
        }
        if (!env_key_valid(k)) {
            err_set(err, EINVAL,
                    "1 validation error detected: Value at 'environment.variables' failed to "
                    "satisfy constraint: Map keys must satisfy constraint: [Member must satisfy "
                    "regular expression pattern: " ENV_KEY_PATTERN "]");
            return NULL;
        }
    }
    /* Lambda measures the compact JSON of the variables, as its message shows. */
    char *measured = json_dumps(vars, JSON_COMPACT);
    ASSERT(measured);
    if (strlen(measured) > ENV_MAX_BYTES) {
        err_set(err, EINVAL,
                "Lambda was unable to configure your environment variables because the "
                "environment variables you have provided exceeded the 4KB limit. String "
                "measured: %s",
                measured);
        free(measured);
        return NULL;
    }
    free(measured);
    return json_deep_copy(vars);
}

static json_t *parse_tags(json_t *tags, struct nb_err *err)
{
    if (!json_is_object(tags)) {
        type_error(err, "tags", "map");
        return NULL;
    }
    if (json_object_size(tags) > TAGS_MAX) {
        err_set(err, EINVAL, "Number of tags exceeds resource tag limit.");
        return NULL;
    }
    for (void *it = json_object_iter(tags); it; it = json_object_iter_next(tags, it)) {
        const char *k = json_object_iter_key(it);
        json_t *v = json_object_iter_value(it);
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
            type_error(err, "tags", "map of strings");
            return NULL;
        }
        if (!*k || strlen(k) > TAG_KEY_MAX_LEN) {
            err_set(err, EINVAL,
                    "1 validation error detected: Value at 'tags' failed to satisfy constraint: "
                    "Map keys must satisfy constraint: [Member must have length less than or "
                    "equal to %d, Member must have length greater than or equal to 1]",
                    TAG_KEY_MAX_LEN);
            return NULL;
        }
        if (json_string_length(v) > TAG_VALUE_MAX_LEN) {
            err_set(err, EINVAL,
                    "1 validation error detected: Value at 'tags' failed to satisfy constraint: "
                    "Map value must satisfy constraint: [Member must have length less than or "
                    "equal to %d]",
                    TAG_VALUE_MAX_LEN);
            return NULL;
        }
    }
    return json_deep_copy(tags);
}

json_t *function_tags_validate(json_t *tags, struct nb_err *err)
{
    return parse_tags(tags, err);
}

static int check_architectures(json_t *req, struct nb_err *err)
{
    json_t *a = member(req, "Architectures");
    if (!a)
        return 0;
    if (!json_is_array(a))
        return type_error(err, "architectures", "list");
    struct nb_buf list = NB_BUF_INIT;
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_string(v)) {
            buf_release(&list);
            return type_error(err, "architectures", "list of strings");
        }
        buf_appendf(&list, "%s%s", i ? ", " : "", json_string_value(v));
    }
    int rc = 0;
    if (json_array_size(a) != 1)
        rc = err_set(err, EINVAL,
                     "1 validation error detected: Value '[%s]' at 'architectures' failed to "
                     "satisfy constraint: Member must have length %s",
                     list.data ? list.data : "",
                     json_array_size(a) ? "less than or equal to 1" : "greater than or equal to 1");
    else if (strcmp(json_string_value(json_array_get(a, 0)), "arm64") == 0)
        rc = err_set(err, EINVAL,
                     "Architecture arm64 is not supported by this host: nimbus runs x86_64 "
                     "functions only");
    else if (strcmp(json_string_value(json_array_get(a, 0)), "x86_64") != 0)
        rc = err_set(err, EINVAL,
                     "1 validation error detected: Value '[%s]' at 'architectures' failed to "
                     "satisfy constraint: Member must satisfy constraint: [Member must satisfy "
                     "enum value set: [x86_64, arm64], Member must not be null]",
                     list.data);
    buf_release(&list);
    return rc;
}

static int check_layers(json_t *req, struct nb_err *err)
{
    json_t *l = member(req, "Layers");
    if (!l)
        return 0;
    if (!json_is_array(l))
        return type_error(err, "layers", "list");
    if (json_array_size(l))
        return err_set(err, EINVAL,
                       "Layers are not supported by nimbus: include the layer's "
                       "files in the function's deployment package");
    return 0;
}

static int check_package_type(json_t *req, struct nb_err *err)
{
    const char *pt;
    int rc = get_string(req, "PackageType", "packageType", &pt, err);
    if (rc < 0 || !pt || strcmp(pt, "Zip") == 0)
        return rc;
    if (strcmp(pt, "Image") == 0)
        return err_set(err, EINVAL,
                       "PackageType Image is not supported by nimbus: deploy the "
                       "function as a Zip package");
    return err_set(err, EINVAL,
                   "1 validation error detected: Value '%s' at 'packageType' failed to satisfy "
                   "constraint: Member must satisfy enum value set: [Image, Zip]",
                   pt);
}

/* ---- snapshots ---- */

static void set_str(char **dst, const char *s)
{
    free(*dst);
    *dst = xstrdup(s);
}

static void touch(struct nb_function *fn)
{
    char rev[37];
    uuid_v4(rev);
    set_str(&fn->revision_id, rev);
    fn->last_modified_ms = now_ms();
}

static bool is_latest(const struct nb_function *fn)
{
    return !strcmp(fn->version, "$LATEST");
}

/* $LATEST's ARN is unqualified; a published version's carries ":N". */
static void set_arn(struct nb_function *fn, const struct nb_function_ctx *ctx)
{
    free(fn->arn);
    if (is_latest(fn))
        fn->arn =
            xasprintf("arn:aws:lambda:%s:%s:function:%s", ctx->region, ctx->account_id, fn->name);
    else
        fn->arn = xasprintf("arn:aws:lambda:%s:%s:function:%s:%s", ctx->region, ctx->account_id,
                            fn->name, fn->version);
}

static struct nb_function *fn_alloc(void)
{
    struct nb_function *fn = xcalloc(1, sizeof(*fn));
    fn->refs = 1;
    fn->reserved_concurrency = -1;
    return fn;
}

static void fn_free(struct nb_function *fn)
{
    free(fn->name);
    free(fn->arn);
    free(fn->version);
    free(fn->runtime);
    free(fn->handler);
    free(fn->role);
    free(fn->description);
    json_decref(fn->env);
    json_decref(fn->tags);
    free(fn->revision_id);
    free(fn->architecture);
    free(fn->dlq_arn); /* esm */
    free(fn);
}

static void fn_freep(struct nb_function **fn)
{
    if (*fn)
        fn_free(*fn);
}
#define _cleanup_fn_ _cleanup_(fn_freep)

/* Hands a _cleanup_fn_ snapshot out (steal_ptr without the statement expression). */
static struct nb_function *take(struct nb_function **fn)
{
    struct nb_function *out = *fn;
    *fn = NULL;
    return out;
}

static struct nb_function *fn_dup(const struct nb_function *cur)
{
    struct nb_function *fn = fn_alloc();
    fn->name = xstrdup(cur->name);
    fn->arn = xstrdup(cur->arn);
    fn->version = xstrdup(cur->version);
    fn->runtime = xstrdup(cur->runtime);
    fn->kind = cur->kind;
    fn->handler = xstrdup(cur->handler);
    fn->role = xstrdup(cur->role);
    fn->description = xstrdup(cur->description);
    fn->memory_mb = cur->memory_mb;
    fn->timeout_s = cur->timeout_s;
    fn->ephemeral_mb = cur->ephemeral_mb;
    fn->dlq_arn = cur->dlq_arn ? xstrdup(cur->dlq_arn) : NULL; /* esm */
    fn->env = json_deep_copy(cur->env);
    fn->tags = json_deep_copy(cur->tags);
    memcpy(fn->code_hex, cur->code_hex, sizeof(fn->code_hex));
    memcpy(fn->code_b64, cur->code_b64, sizeof(fn->code_b64));
    fn->code_size = cur->code_size;
    fn->revision_id = xstrdup(cur->revision_id);
    fn->last_modified_ms = cur->last_modified_ms;
    fn->reserved_concurrency = cur->reserved_concurrency;
    fn->architecture = xstrdup(cur->architecture);
    return fn;
}

static void set_code(struct nb_function *fn, const char *hex, const char *b64, int64_t size)
{
    snprintf(fn->code_hex, sizeof(fn->code_hex), "%s", hex);
    snprintf(fn->code_b64, sizeof(fn->code_b64), "%s", b64);
    fn->code_size = size;
}

/* Applies the members that CreateFunction and UpdateFunctionConfiguration share. Members absent
 * from req keep fn's values. */
static int apply_config(struct nb_function *fn, json_t *req, struct nb_err *err)
{
    const char *s;
    int64_t n;
    bool present;
    int rc;

    if ((rc = get_string(req, "Role", "role", &s, err)) < 0)
        return rc;
    if (s) {
        if ((rc = check_role(s, err)) < 0)
            return rc;
        set_str(&fn->role, s);
    }
    if ((rc = get_string(req, "Runtime", "runtime", &s, err)) < 0)
        return rc;
    if (s) {
        if (function_runtime_kind(s, &fn->kind) < 0)
            return runtime_error(s, err);
        set_str(&fn->runtime, s);
    }
    if ((rc = get_string(req, "Handler", "handler", &s, err)) < 0)
        return rc;
    if (s) {
        if ((rc = check_handler(s, err)) < 0)
            return rc;
        set_str(&fn->handler, s);
    }
    if ((rc = get_string(req, "Description", "description", &s, err)) < 0)
        return rc;
    if (s) {
        if (strlen(s) > DESCRIPTION_MAX_LEN)
            return length_error(err, s, "description", DESCRIPTION_MAX_LEN);
        set_str(&fn->description, s);
    }
    if ((rc = get_int(req, "MemorySize", "memorySize", 128, 10240, &n, &present, err)) < 0)
        return rc;
    if (present)
        fn->memory_mb = (int)n;
    if ((rc = get_int(req, "Timeout", "timeout", 1, 900, &n, &present, err)) < 0)
        return rc;
    if (present)
        fn->timeout_s = (int)n;
    json_t *es = member(req, "EphemeralStorage");
    if (es) {
        if (!json_is_object(es))
            return type_error(err, "ephemeralStorage", "structure");
        rc = get_int(es, "Size", "ephemeralStorage.size", 512, 10240, &n, &present, err);
        if (rc < 0)
            return rc;
        if (!present)
            return null_error(err, "ephemeralStorage.size");
        fn->ephemeral_mb = (int)n;
    }
    /* esm: DeadLetterConfig {TargetArn}: an SQS queue ARN (SNS topics do not exist here); an
     * empty TargetArn or an empty object removes it */
    json_t *dlc = member(req, "DeadLetterConfig");
    if (dlc) {
        if (!json_is_object(dlc))
            return type_error(err, "deadLetterConfig", "structure");
        if ((rc = get_string(dlc, "TargetArn", "deadLetterConfig.targetArn", &s, err)) < 0)
            return rc;
        if (s && *s && (strncmp(s, "arn:aws:sqs:", 12) || strlen(s) > 256))
            return err_set(err, EINVAL,
                           "The dead-letter target %s is invalid: nimbus sends dead letters to "
                           "SQS queues of this server only",
                           s);
        free(fn->dlq_arn);
        fn->dlq_arn = s && *s ? xstrdup(s) : NULL;
    }
    json_t *env = member(req, "Environment");
    if (env) {
        json_t *vars = parse_environment(env, err);
        if (!vars)
            return -EINVAL;
        json_decref(fn->env);
        fn->env = vars;
    }
    if ((rc = check_layers(req, err)) < 0)
        return rc;
    /* A zip function's runtime needs a handler, except custom runtimes (bootstrap). */
    if (fn->kind != NB_RT_PROVIDED && !*fn->handler)
        return err_set(err, EINVAL,
                       "Runtime and Handler are mandatory parameters for functions "
                       "created with deployment packages.");
    return 0;
}

struct nb_function *function_new(const struct nb_function_ctx *ctx, json_t *req,
                                 const char *pkg_hex, const char *pkg_b64, int64_t pkg_size,
                                 struct nb_err *err)
{
    if (!json_is_object(req)) {
        err_set(err, EINVAL, "the request body must be a JSON object");
        return NULL;
    }
    const char *ref, *s;
    if (get_string(req, "FunctionName", "functionName", &ref, err) < 0)
        return NULL;
    if (!ref) {
        null_error(err, "functionName");
        return NULL;
    }
    _cleanup_free_ char *name = NULL, *qual = NULL;
    if (function_parse_ref(ref, &name, &qual, err) < 0)
        return NULL;
    if (qual) {
        err_set(err, EINVAL,
                "1 validation error detected: Value '%s' at 'functionName' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern: "
                "(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?"
                "(function:)?([a-zA-Z0-9-_]+)",
                ref);
        return NULL;
    }
    if (get_string(req, "Role", "role", &s, err) < 0)
        return NULL;
    if (!s) {
        null_error(err, "role");
        return NULL;
    }
    if (check_package_type(req, err) < 0)
        return NULL;
    if (get_string(req, "Runtime", "runtime", &s, err) < 0)
        return NULL;
    if (!s) {
        err_set(err, EINVAL,
                "Runtime and Handler are mandatory parameters for functions "
                "created with deployment packages.");
        return NULL;
    }
    if (check_architectures(req, err) < 0)
        return NULL;

    _cleanup_fn_ struct nb_function *fn = fn_alloc();
    fn->name = name;
    name = NULL;
    fn->version = xstrdup("$LATEST");
    fn->runtime = xstrdup("");
    fn->handler = xstrdup("");
    fn->role = xstrdup("");
    fn->description = xstrdup("");
    fn->memory_mb = 128;
    fn->timeout_s = 3;
    fn->ephemeral_mb = 512;
    fn->env = json_object();
    fn->tags = json_object();
    fn->architecture = xstrdup("x86_64");
    set_arn(fn, ctx);
    if (apply_config(fn, req, err) < 0)
        return NULL;
    json_t *tags = member(req, "Tags");
    if (tags) {
        json_t *t = parse_tags(tags, err);
        if (!t)
            return NULL;
        json_decref(fn->tags);
        fn->tags = t;
    }
    set_code(fn, pkg_hex, pkg_b64, pkg_size);
    touch(fn);
    return take(&fn);
}

struct nb_function *function_update_config(const struct nb_function *cur, json_t *req,
                                           struct nb_err *err)
{
    if (!json_is_object(req)) {
        err_set(err, EINVAL, "the request body must be a JSON object");
        return NULL;
    }
    _cleanup_fn_ struct nb_function *fn = fn_dup(cur);
    if (apply_config(fn, req, err) < 0)
        return NULL;
    touch(fn);
    return take(&fn);
}

struct nb_function *function_update_code(const struct nb_function *cur, const char *pkg_hex,
                                         const char *pkg_b64, int64_t pkg_size)
{
    struct nb_function *fn = fn_dup(cur);
    set_code(fn, pkg_hex, pkg_b64, pkg_size);
    touch(fn);
    return fn;
}

struct nb_function *function_with_concurrency(const struct nb_function *cur, int reserved)
{
    struct nb_function *fn = fn_dup(cur);
    fn->reserved_concurrency = reserved < 0 ? -1 : reserved;
    return fn;
}

struct nb_function *function_with_tags(const struct nb_function *cur, json_t *tags)
{
    struct nb_function *fn = fn_dup(cur);
    json_decref(fn->tags);
    fn->tags = json_deep_copy(tags);
    return fn;
}

struct nb_function *function_publish(const struct nb_function *cur, uint64_t number,
                                     const char *description)
{
    ASSERT(is_latest(cur) && number > 0);
    struct nb_function *fn = fn_dup(cur);
    free(fn->version);
    fn->version = xasprintf("%llu", (unsigned long long)number);
    free(fn->arn);
    fn->arn = xasprintf("%s:%s", cur->arn, fn->version);
    if (description)
        set_str(&fn->description, description);
    touch(fn);
    return fn;
}

bool function_same_content(const struct nb_function *a, const struct nb_function *b)
{
    return !strcmp(a->code_hex, b->code_hex) && !strcmp(a->runtime, b->runtime) &&
           !strcmp(a->handler, b->handler) && !strcmp(a->role, b->role) &&
           a->memory_mb == b->memory_mb && a->timeout_s == b->timeout_s &&
           a->ephemeral_mb == b->ephemeral_mb && !strcmp(a->architecture, b->architecture) &&
           !strcmp(a->dlq_arn ? a->dlq_arn : "", b->dlq_arn ? b->dlq_arn : "") && /* esm */
           json_equal(a->env, b->env);
}

struct nb_function *function_ref(struct nb_function *fn)
{
    ASSERT(fn->refs > 0);
    fn->refs++;
    return fn;
}

void function_unref(struct nb_function *fn)
{
    if (!fn)
        return;
    ASSERT(fn->refs > 0);
    if (--fn->refs == 0)
        fn_free(fn);
}

/* ---- Lambda's FunctionConfiguration ---- */

json_t *function_config_json_qualified(const struct nb_function *fn, const char *qualifier)
{
    char lm[40];
    fmt_lambda_time(fn->last_modified_ms, lm, sizeof(lm));
    json_t *o = json_object();
    json_object_set_new(o, "FunctionName", json_string(fn->name));
    /* a version's own ARN already carries ":N"; another qualifier (an alias) replaces it */
    size_t base = strlen(fn->arn) - (is_latest(fn) ? 0 : strlen(fn->version) + 1);
    json_object_set_new(o, "FunctionArn",
                        qualifier ? json_sprintf("%.*s:%s", (int)base, fn->arn, qualifier)
                                  : json_string(fn->arn));
    json_object_set_new(o, "Runtime", json_string(fn->runtime));
    json_object_set_new(o, "Role", json_string(fn->role));
    if (*fn->handler)
        json_object_set_new(o, "Handler", json_string(fn->handler));
    json_object_set_new(o, "CodeSize", json_integer(fn->code_size));
    json_object_set_new(o, "Description", json_string(fn->description));
    json_object_set_new(o, "Timeout", json_integer(fn->timeout_s));
    json_object_set_new(o, "MemorySize", json_integer(fn->memory_mb));
    json_object_set_new(o, "LastModified", json_string(lm));
    json_object_set_new(o, "CodeSha256", json_string(fn->code_b64));
    json_object_set_new(o, "Version", json_string(fn->version));
    if (json_object_size(fn->env))
        json_object_set_new(o, "Environment",
                            json_pack("{s:o}", "Variables", json_deep_copy(fn->env)));
    json_object_set_new(o, "TracingConfig", json_pack("{s:s}", "Mode", "PassThrough"));
    json_object_set_new(o, "RevisionId", json_string(fn->revision_id));
    json_object_set_new(o, "State", json_string("Active"));
    json_object_set_new(o, "LastUpdateStatus", json_string("Successful"));
    json_object_set_new(o, "PackageType", json_string("Zip"));
    json_object_set_new(o, "Architectures", json_pack("[s]", fn->architecture));
    json_object_set_new(o, "EphemeralStorage", json_pack("{s:i}", "Size", fn->ephemeral_mb));
    if (fn->dlq_arn) /* esm */
        json_object_set_new(o, "DeadLetterConfig", json_pack("{s:s}", "TargetArn", fn->dlq_arn));
    json_object_set_new(o, "SnapStart",
                        json_pack("{s:s,s:s}", "ApplyOn", "None", "OptimizationStatus", "Off"));
    json_object_set_new(
        o, "LoggingConfig",
        json_pack("{s:s,s:s+}", "LogFormat", "Text", "LogGroup", "/aws/lambda/", fn->name));
    return o;
}

json_t *function_config_json(const struct nb_function *fn)
{
    return function_config_json_qualified(fn, NULL);
}

/* ---- the store record ---- */

char *function_to_record(const struct nb_function *fn)
{
    json_t *o = json_pack(
        "{s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:i,s:i,s:O,s:O,s:s,s:s,s:I,s:s,s:I,s:i,s:s}", "format",
        RECORD_FORMAT, "name", fn->name, "version", fn->version, "runtime", fn->runtime, "handler",
        fn->handler, "role", fn->role, "description", fn->description, "memory_mb", fn->memory_mb,
        "timeout_s", fn->timeout_s, "ephemeral_mb", fn->ephemeral_mb, "env", fn->env, "tags",
        fn->tags, "code_hex", fn->code_hex, "code_b64", fn->code_b64, "code_size",
        (json_int_t)fn->code_size, "revision_id", fn->revision_id, "last_modified_ms",
        (json_int_t)fn->last_modified_ms, "reserved_concurrency", fn->reserved_concurrency,
        "architecture", fn->architecture);
    ASSERT(o);
    if (fn->dlq_arn) /* esm */
        json_object_set_new(o, "dlq_arn", json_string(fn->dlq_arn));
    char *s = json_dumps(o, JSON_COMPACT);
    ASSERT(s);
    json_decref(o);
    return s;
}

static int rec_str(json_t *o, const char *key, char **out, struct nb_err *err)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return err_set(err, EINVAL, "function record: '%s' is missing or not a string", key);
    *out = xstrdup(json_string_value(v));
    return 0;
}

static int rec_int(json_t *o, const char *key, int64_t min, int64_t max, int64_t *out,
                   struct nb_err *err)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return err_set(err, EINVAL, "function record: '%s' is missing or out of range", key);
    *out = json_integer_value(v);
    return 0;
}

static bool is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s) && !(*s >= 'a' && *s <= 'f'))
            return false;
    return true;
}

static bool string_map(json_t *o)
{
    if (!json_is_object(o))
        return false;
    for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it))
        if (!json_is_string(json_object_iter_value(it)))
            return false;
    return true;
}

struct nb_function *function_from_record(const struct nb_function_ctx *ctx, const char *doc,
                                         struct nb_err *err)
{
    json_error_t jerr;
    json_t *o = json_loads(doc, 0, &jerr);
    if (!o) {
        err_set(err, EINVAL, "function record: invalid JSON: %s", jerr.text);
        return NULL;
    }
    _cleanup_fn_ struct nb_function *fn = fn_alloc();
    int64_t n;
    char *code_hex = NULL, *code_b64 = NULL;
    int rc;
    if ((rc = rec_int(o, "format", RECORD_FORMAT, RECORD_FORMAT, &n, err)) < 0 ||
        (rc = rec_str(o, "name", &fn->name, err)) < 0 ||
        (rc = rec_str(o, "version", &fn->version, err)) < 0 ||
        (rc = rec_str(o, "runtime", &fn->runtime, err)) < 0 ||
        (rc = rec_str(o, "handler", &fn->handler, err)) < 0 ||
        (rc = rec_str(o, "role", &fn->role, err)) < 0 ||
        (rc = rec_str(o, "description", &fn->description, err)) < 0 ||
        (rc = rec_str(o, "revision_id", &fn->revision_id, err)) < 0 ||
        (rc = rec_str(o, "architecture", &fn->architecture, err)) < 0 ||
        (rc = rec_str(o, "code_hex", &code_hex, err)) < 0 ||
        (rc = rec_str(o, "code_b64", &code_b64, err)) < 0)
        goto out;
    if (!function_name_valid(fn->name)) {
        rc = err_set(err, EINVAL, "function record: invalid name '%s'", fn->name);
        goto out;
    }
    if (!is_latest(fn) && (parse_i64(fn->version, 1, INT64_MAX, &n) < 0 || fn->version[0] == '0')) {
        rc = err_set(err, EINVAL, "function record '%s': invalid version '%s'", fn->name,
                     fn->version);
        goto out;
    }
    if (function_runtime_kind(fn->runtime, &fn->kind) < 0) {
        rc = err_set(err, EINVAL, "function record '%s': unknown runtime '%s'", fn->name,
                     fn->runtime);
        goto out;
    }
    if (!is_hex64(code_hex) || strlen(code_b64) != 44) {
        rc = err_set(err, EINVAL, "function record '%s': invalid code address", fn->name);
        goto out;
    }
    set_code(fn, code_hex, code_b64, 0);
    if ((rc = rec_int(o, "memory_mb", 128, 10240, &n, err)) < 0)
        goto out;
    fn->memory_mb = (int)n;
    if ((rc = rec_int(o, "timeout_s", 1, 900, &n, err)) < 0)
        goto out;
    fn->timeout_s = (int)n;
    if ((rc = rec_int(o, "ephemeral_mb", 512, 10240, &n, err)) < 0)
        goto out;
    fn->ephemeral_mb = (int)n;
    if ((rc = rec_int(o, "code_size", 0, INT64_MAX, &n, err)) < 0)
        goto out;
    fn->code_size = n;
    if ((rc = rec_int(o, "last_modified_ms", 0, INT64_MAX, &n, err)) < 0)
        goto out;
    fn->last_modified_ms = (uint64_t)n;
    if ((rc = rec_int(o, "reserved_concurrency", -1, INT32_MAX, &n, err)) < 0)
        goto out;
    fn->reserved_concurrency = (int)n;
    const char *dlq = json_string_value(json_object_get(o, "dlq_arn")); /* esm */
    fn->dlq_arn = dlq ? xstrdup(dlq) : NULL;
    json_t *env = json_object_get(o, "env"), *tags = json_object_get(o, "tags");
    if (!string_map(env) || !string_map(tags)) {
        rc = err_set(err, EINVAL, "function record '%s': 'env' and 'tags' must be maps of strings",
                     fn->name);
        goto out;
    }
    fn->env = json_deep_copy(env);
    fn->tags = json_deep_copy(tags);
    set_arn(fn, ctx);
out:
    free(code_hex);
    free(code_b64);
    json_decref(o);
    return rc < 0 ? NULL : take(&fn);
}

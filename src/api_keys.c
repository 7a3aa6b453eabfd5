/*
 * api_keys.c - access-key management on the API listener (behind `nimbus keys`):
 *   POST   /nimbus/v1/keys           nimbus:CreateKey  {"Description"?, "Policy"?} -> the key and
 *                                                      its secret (shown this once)
 *   GET    /nimbus/v1/keys           nimbus:ListKeys   {"Keys": [...]} (never secrets)
 *   DELETE /nimbus/v1/keys/{KeyId}   nimbus:DeleteKey  204; the root key cannot be deleted
 *
 * The store write runs on a worker thread; the in-memory table (keys.c) changes on the loop
 * thread only after the write committed, so a key works exactly when it is durable, and a
 * deleted key stops working as soon as its delete is acknowledged.
 */
#include <errno.h>

#include "api.h"
#include "daemon.h"
#include "keys.h"
#include "log.h"
#include "policy.h"
#include "store.h"

#define MAX_DESCRIPTION 256
#define MAX_POLICY 20480

struct key_job {
    uv_work_t work;
    struct nb_daemon *d;
    struct nb_http_req *req;
    struct nb_key *key; /* create: the new key, until handed to the table */
    char *sealed;
    char *id; /* delete */
    int rc;
    struct nb_err err;
};

static json_t *key_json(const struct nb_key *k, bool with_secret)
{
    char created[40];
    fmt_iso8601_ms((uint64_t)k->created_ms, created, sizeof(created));
    json_t *o = json_pack("{s:s, s:s, s:b, s:s}", "AccessKeyId", k->id, "Description",
                          k->description, "Root", k->root, "CreatedDate", created);
    json_object_set_new(o, "Policy", k->policy ? json_string(k->policy) : json_null());
    if (with_secret)
        json_object_set_new(o, "SecretAccessKey", json_string(k->secret));
    return o;
}

static void job_free(struct key_job *j)
{
    keys_key_free(j->key);
    free(j->sealed);
    free(j->id);
    free(j);
}

static void create_work(uv_work_t *w)
{
    struct key_job *j = w->data;
    struct nb_store_key sk = {j->key->id,          j->sealed,    j->key->policy,
                              j->key->description, j->key->root, j->key->created_ms};
    j->rc = store_key_insert(j->d->store, &sk, &j->err);
}

static void create_done(uv_work_t *w, int status)
{
    struct key_job *j = w->data;
    if (status < 0 || j->rc < 0) {
        if (status < 0)
            err_set(&j->err, EIO, "key creation cancelled");
        api_error_from(j->req, &j->err);
    } else {
        log_info("access key created id=%s", j->key->id);
        api_json(j->req, 200, key_json(j->key, true));
        keys_add(j->d->keys, steal_ptr(j->key));
    }
    job_free(j);
}

static void delete_work(uv_work_t *w)
{
    struct key_job *j = w->data;
    j->rc = store_key_delete(j->d->store, j->id, &j->err);
}

static void delete_done(uv_work_t *w, int status)
{
    struct key_job *j = w->data;
    if (status < 0 || j->rc < 0) {
        if (status < 0)
            err_set(&j->err, EIO, "key deletion cancelled");
        api_error_from(j->req, &j->err);
    } else {
        keys_remove(j->d->keys, j->id);
        log_info("access key deleted id=%s", j->id);
        api_empty(j->req, 204);
    }
    job_free(j);
}

static void queue(struct key_job *j, uv_work_cb work, uv_after_work_cb done)
{
    j->work.data = j;
    int rc = uv_queue_work(j->d->loop, &j->work, work, done);
    if (rc < 0) {
        api_error(j->req, 500, "ServiceException", "cannot queue work: %s", uv_strerror(rc));
        job_free(j);
    }
}

/* The Policy member: a JSON string holding the document, or the document itself. */
static int policy_text(json_t *body, char **out, struct nb_err *err)
{
    json_t *p = json_object_get(body, "Policy");
    *out = NULL;
    if (!p || json_is_null(p))
        return 0;
    char *text = json_is_string(p) ? xstrdup(json_string_value(p))
                                   : json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return err_set(err, EINVAL, "Policy must be a JSON object");
    if (strlen(text) > MAX_POLICY) {
        free(text);
        return err_set(err, EINVAL, "Policy is longer than %d bytes", MAX_POLICY);
    }
    int rc = policy_validate(text, err);
    if (rc < 0) {
        free(text);
        return rc;
    }
    *out = text;
    return 0;
}

static void h_create(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    struct nb_err err = {0};
    json_t *body = api_body_json(req);
    if (!body)
        return;
    json_t *desc = json_object_get(body, "Description");
    _cleanup_free_ char *policy = NULL;
    if (desc && (!json_is_string(desc) || strlen(json_string_value(desc)) > MAX_DESCRIPTION)) {
        json_decref(body);
        api_error(req, 400, "InvalidParameterValueException",
                  "Description must be a string of at most %d bytes", MAX_DESCRIPTION);
        return;
    }
    if (policy_text(body, &policy, &err) < 0) {
        json_decref(body);
        api_error_from(req, &err);
        return;
    }
    struct key_job *j = xcalloc(1, sizeof(*j));
    j->d = d;
    j->req = req;
    j->key = keys_generate(policy, desc ? json_string_value(desc) : "", false);
    j->sealed = keys_seal(d->keys, j->key);
    json_decref(body);
    queue(j, create_work, create_done);
}

static void h_list(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    const struct nb_key **v;
    size_t n = keys_list(d->keys, &v);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, key_json(v[i], false));
    free(v);
    api_json(req, 200, json_pack("{s:o}", "Keys", arr));
}

static void h_delete(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    const char *id = route_param(m, "KeyId");
    const struct nb_key *key = keys_find(d->keys, id);
    if (!key) {
        api_error(req, 404, "ResourceNotFoundException", "Access key not found: %s", id);
        return;
    }
    if (key->root) {
        api_error(req, 400, "InvalidParameterValueException", "The root key cannot be deleted");
        return;
    }
    struct key_job *j = xcalloc(1, sizeof(*j));
    j->d = d;
    j->req = req;
    j->id = xstrdup(id);
    queue(j, delete_work, delete_done);
}

void api_keys_routes(struct nb_router *r, struct nb_daemon *d)
{
    router_add(r, "POST", "/nimbus/v1/keys", "nimbus:CreateKey", h_create, d);
    router_add(r, "GET", "/nimbus/v1/keys", "nimbus:ListKeys", h_list, d);
    router_add(r, "DELETE", "/nimbus/v1/keys/{KeyId}", "nimbus:DeleteKey", h_delete, d);
}

/*
 * client.c - the CLI's HTTP client (see client.h): endpoint resolution, one libcurl easy handle
 * per run (connections reused), request/response plumbing, AWS error parsing and botocore-style
 * percent-encoding.
 *
 * Every request goes through sign_request() just before it is sent: SigV4 with sigv4.c, signing
 * host, x-amz-content-sha256 and x-amz-date (the Host header is set explicitly so the signed value
 * is the one sent). curl is told not to send "Expect: 100-continue" (a round trip for
 * nothing against nimbus) nor its default form Content-Type. Only the headers of the final
 * response are kept (a 100 Continue's are dropped).
 */
#include "cli/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <ini.h>
#include <strings.h>

#include "sigv4.h"

#ifndef NIMBUS_VERSION
#define NIMBUS_VERSION "unknown"
#endif

static bool has_http_scheme(const char *url)
{
    return !strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8);
}

int client_init(struct nb_client *c, const char *endpoint, struct nb_err *err)
{
    static bool curl_ready;

    memset(c, 0, sizeof(*c));
    if (!endpoint || !*endpoint)
        endpoint = getenv("NIMBUS_ENDPOINT");
    if (!endpoint || !*endpoint)
        endpoint = CLIENT_DEFAULT_ENDPOINT;
    if (!has_http_scheme(endpoint))
        return err_set(err, EINVAL, "invalid endpoint '%s': expected http://HOST:PORT", endpoint);
    size_t n = strlen(endpoint);
    while (n > 0 && endpoint[n - 1] == '/')
        n--;
    c->endpoint = xstrndup(endpoint, n);
    const char *h = strstr(c->endpoint, "://") + 3;
    c->host = xstrndup(h, strcspn(h, "/?#"));
    client_find_credentials(&c->key_id, &c->secret, &c->region);
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return err_set(err, EIO, "cannot initialise libcurl");
        curl_ready = true;
    }
    c->curl = curl_easy_init();
    if (!c->curl)
        return err_set(err, EIO, "cannot initialise libcurl");
    return 0;
}

void client_release(struct nb_client *c)
{
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->endpoint);
    free(c->host);
    free(c->key_id);
    if (c->secret)
        memset(c->secret, 0, strlen(c->secret));
    free(c->secret);
    free(c->region);
    c->curl = NULL;
    c->endpoint = NULL;
    c->host = c->key_id = c->secret = c->region = NULL;
}

struct profile_ctx {
    const char *profile;
    char *key_id, *secret, *region;
};

static int on_profile_entry(void *user, const char *section, const char *name, const char *value)
{
    struct profile_ctx *p = user;
    if (strcmp(section, p->profile))
        return 1;
    char **dst = !strcmp(name, "aws_access_key_id")       ? &p->key_id
                 : !strcmp(name, "aws_secret_access_key") ? &p->secret
                 : !strcmp(name, "region")                ? &p->region
                                                          : NULL;
    if (dst) {
        free(*dst);
        *dst = xstrdup(value);
    }
    return 1;
}

/* Reads profile from an INI credentials file; true when it has both key id and secret. */
static bool read_profile(const char *path, const char *profile, char **key_id, char **secret,
                         char **region)
{
    struct profile_ctx p = {profile, NULL, NULL, NULL};
    if (ini_parse(path, on_profile_entry, &p) < 0 || !p.key_id || !p.secret) {
        free(p.key_id);
        free(p.secret);
        free(p.region);
        return false;
    }
    *key_id = p.key_id;
    *secret = p.secret;
    if (p.region && !*region)
        *region = p.region;
    else
        free(p.region);
    return true;
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

void client_find_credentials(char **key_id, char **secret, char **region)
{
    *key_id = *secret = *region = NULL;
    const char *r = env("AWS_REGION") ? env("AWS_REGION") : env("AWS_DEFAULT_REGION");
    if (r)
        *region = xstrdup(r);
    if (env("AWS_ACCESS_KEY_ID") && env("AWS_SECRET_ACCESS_KEY")) {
        *key_id = xstrdup(env("AWS_ACCESS_KEY_ID"));
        *secret = xstrdup(env("AWS_SECRET_ACCESS_KEY"));
    } else {
        const char *profile = env("AWS_PROFILE") ? env("AWS_PROFILE") : "nimbus";
        _cleanup_free_ char *shared = env("AWS_SHARED_CREDENTIALS_FILE")
                                          ? xstrdup(env("AWS_SHARED_CREDENTIALS_FILE"))
                                      : env("HOME") ? xasprintf("%s/.aws/credentials", env("HOME"))
                                                    : NULL;
        _cleanup_free_ char *own = xasprintf(
            "%s/credentials", env("NIMBUS_DATA_DIR") ? env("NIMBUS_DATA_DIR") : "./.nimbus");
        if (!(shared && read_profile(shared, profile, key_id, secret, region)))
            read_profile(own, profile, key_id, secret, region);
    }
    if (!*region)
        *region = xstrdup("us-east-1");
}

void client_resp_release(struct nb_client_resp *resp)
{
    buf_release(&resp->body);
    for (size_t i = 0; i < resp->nheaders; i++) {
        free(resp->headers[i].name);
        free(resp->headers[i].value);
    }
    free(resp->headers);
    resp->headers = NULL;
    resp->nheaders = 0;
    resp->status = 0;
}

static void drop_headers(struct nb_client_resp *resp)
{
    for (size_t i = 0; i < resp->nheaders; i++) {
        free(resp->headers[i].name);
        free(resp->headers[i].value);
    }
    resp->nheaders = 0;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct nb_client_resp *resp = userdata;
    size_t len = size * nmemb;
    const char *end = data + len;

    /* A status line starts a new response (after 100 Continue): forget the previous headers. */
    if (len >= 5 && !memcmp(data, "HTTP/", 5)) {
        drop_headers(resp);
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (!colon || colon == data)
        return len;
    const char *v = colon + 1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    const char *ve = end;
    while (ve > v && (ve[-1] == '\r' || ve[-1] == '\n' || ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    /* The capacity is 8, then doubles: grow when nheaders reaches it. */
    size_t n = resp->nheaders;
    if (n == 0 || (n >= 8 && (n & (n - 1)) == 0))
        resp->headers = xrealloc(resp->headers, (n ? 2 * n : 8) * sizeof(*resp->headers));
    resp->headers[resp->nheaders].name = xstrndup(data, (size_t)(colon - data));
    resp->headers[resp->nheaders].value = xstrndup(v, (size_t)(ve - v));
    resp->nheaders++;
    return len;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct nb_client_resp *resp = userdata;
    buf_append(&resp->body, data, size * nmemb);
    return size * nmemb;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct nb_client *c = userdata;
    return c->cancel && *c->cancel ? 1 : 0;
}

static struct curl_slist *append_header(struct curl_slist *list, const char *h);

/* Signs the request (when credentials were found): adds Host, X-Amz-Date, X-Amz-Content-Sha256
 * and Authorization to *headers. */
static int sign_request(struct nb_client *c, const struct nb_client_req *req,
                        struct curl_slist **headers, struct nb_err *err)
{
    char amz[17], hash[65];
    int64_t now = (int64_t)time(NULL);
    sigv4_amz_date(now, amz);
    sigv4_sha256_hex(req->body ? req->body : "", req->body_len, hash);
    _cleanup_free_ char *hh = xasprintf("Host: %s", c->host);
    *headers = append_header(*headers, hh);
    if (!c->key_id)
        return 0;
    struct nb_http_header h[] = {
        {"host", c->host}, {"x-amz-content-sha256", hash}, {"x-amz-date", amz}};
    struct nb_sigv4_request sr = {
        req->method, req->path,    req->query ? req->query : "", h, ARRAY_SIZE(h),
        req->body,   req->body_len};
    _cleanup_free_ char *authz =
        sigv4_sign(&sr, "host;x-amz-content-sha256;x-amz-date", hash, c->key_id, c->secret,
                   c->region, req->service ? req->service : "lambda", now);
    _cleanup_free_ char *l1 = xasprintf("X-Amz-Date: %s", amz);
    _cleanup_free_ char *l2 = xasprintf("X-Amz-Content-Sha256: %s", hash);
    _cleanup_free_ char *l3 = xasprintf("Authorization: %s", authz);
    *headers = append_header(*headers, l1);
    *headers = append_header(*headers, l2);
    *headers = append_header(*headers, l3);
    return 0;
}

static struct curl_slist *append_header(struct curl_slist *list, const char *h)
{
    struct curl_slist *l = curl_slist_append(list, h);
    if (!l) {
        fprintf(stderr, "fatal: out of memory\n");
        abort();
    }
    return l;
}

static void free_slist(struct curl_slist **l)
{
    curl_slist_free_all(*l);
}

int client_request(struct nb_client *c, const struct nb_client_req *req,
                   struct nb_client_resp *resp, struct nb_err *err)
{
    CURL *h = c->curl;
    char errbuf[CURL_ERROR_SIZE] = "";
    _cleanup_(free_slist) struct curl_slist *headers = NULL;
    _cleanup_free_ char *url =
        xasprintf("%s%s%s%s", c->endpoint, req->path, req->query && *req->query ? "?" : "",
                  req->query ? req->query : "");

    client_resp_release(resp);
    curl_easy_reset(h); /* keeps the connection cache */
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "nimbus-cli/" NIMBUS_VERSION);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    if (c->cancel) {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
    }

    if (!strcmp(req->method, "GET")) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
        if (req->body_len || strcmp(req->method, "DELETE") != 0) {
            /* POSTFIELDS with an explicit size is binary-safe; an empty body still sends
             * Content-Length: 0, which servers expect on POST/PUT. */
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body_len ? req->body : "");
        }
    }

    headers = append_header(headers, "Expect:");
    if (req->content_type) {
        _cleanup_free_ char *ct = xasprintf("Content-Type: %s", req->content_type);
        headers = append_header(headers, ct);
    } else {
        headers = append_header(headers, "Content-Type:");
    }
    for (const char *const *x = req->headers; x && *x; x++)
        headers = append_header(headers, *x);
    int r = sign_request(c, req, &headers, err);
    if (r < 0)
        return r;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);

    CURLcode cc = curl_easy_perform(h);
    if (cc == CURLE_ABORTED_BY_CALLBACK)
        return err_set(err, ECANCELED, "interrupted");
    if (cc != CURLE_OK)
        return err_set(err, EHOSTUNREACH, "cannot reach nimbus at %s: %s", c->endpoint,
                       errbuf[0] ? errbuf : curl_easy_strerror(cc));
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    return 0;
}

const char *client_resp_header(const struct nb_client_resp *resp, const char *name)
{
    for (size_t i = 0; i < resp->nheaders; i++)
        if (!strcasecmp(resp->headers[i].name, name))
            return resp->headers[i].value;
    return NULL;
}

static char *json_str_member(json_t *obj, const char *const *keys)
{
    for (; *keys; keys++) {
        const char *s = json_string_value(json_object_get(obj, *keys));
        if (s && *s)
            return xstrdup(s);
    }
    return NULL;
}

void client_aws_error(const struct nb_client_resp *resp, char **type, char **message)
{
    static const char *const code_keys[] = {"code", "Code", NULL};
    static const char *const msg_keys[] = {"message", "Message", NULL};
    json_t *body = NULL;

    *type = NULL;
    *message = NULL;
    if (resp->body.len)
        body = json_loadb(resp->body.data, resp->body.len, 0, NULL);
    if (body && !json_is_object(body)) {
        json_decref(body);
        body = NULL;
    }
    const char *hdr = client_resp_header(resp, "x-amzn-ErrorType");
    if (hdr && *hdr) {
        *type = xstrndup(hdr, strcspn(hdr, ":"));
    } else if (body) {
        *type = json_str_member(body, code_keys);
        const char *t = json_string_value(json_object_get(body, "__type"));
        if (!*type && t && *t) {
            const char *hash = strrchr(t, '#');
            *type = xstrdup(hash ? hash + 1 : t);
        }
    }
    if (body)
        *message = json_str_member(body, msg_keys);
    json_decref(body);
}

int client_check(const struct nb_client_resp *resp, struct nb_err *err)
{
    if (resp->status >= 200 && resp->status < 300)
        return 0;
    _cleanup_free_ char *type = NULL;
    _cleanup_free_ char *message = NULL;
    client_aws_error(resp, &type, &message);
    if (type)
        return err_set(err, EREMOTEIO, "%s: %s", type, message ? message : "(no message)");
    /* Not an AWS error: show the start of the body, on one line. */
    char snippet[160];
    size_t n = resp->body.len < sizeof(snippet) - 1 ? resp->body.len : sizeof(snippet) - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)resp->body.data[i];
        snippet[i] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
    }
    snippet[n] = '\0';
    return err_set(err, EREMOTEIO, "HTTP %ld%s%s", resp->status, n ? ": " : "", snippet);
}

json_t *client_resp_json(const struct nb_client_resp *resp, struct nb_err *err)
{
    json_error_t je;
    json_t *j = json_loadb(resp->body.data ? resp->body.data : "", resp->body.len, 0, &je);
    if (!j) {
        err_set(err, EPROTO, "invalid JSON from nimbus: %s", je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        err_set(err, EPROTO, "invalid JSON from nimbus: expected an object");
        return NULL;
    }
    return j;
}

int client_json(struct nb_client *c, const char *method, const char *path, const char *query,
                json_t *body, struct nb_client_resp *resp, json_t **out, struct nb_err *err)
{
    _cleanup_free_ char *text = NULL;
    struct nb_client_req req = {.method = method, .path = path, .query = query};

    if (out)
        *out = NULL;
    if (body) {
        text = json_dumps(body, JSON_COMPACT);
        if (!text)
            BUG("cannot serialise a request body");
        req.content_type = "application/json";
        req.body = text;
        req.body_len = strlen(text);
    }
    int r = client_request(c, &req, resp, err);
    if (r < 0)
        return r;
    r = client_check(resp, err);
    if (r < 0)
        return r;
    if (out && resp->body.len) {
        *out = client_resp_json(resp, err);
        if (!*out)
            return -EPROTO;
    }
    return 0;
}

int client_target(struct nb_client *c, const char *service, const char *target, json_t *body,
                  struct nb_client_resp *resp, json_t **out, struct nb_err *err)
{
    _cleanup_free_ char *text = body ? json_dumps(body, JSON_COMPACT) : xstrdup("{}");
    if (!text)
        BUG("cannot serialise a request body");
    _cleanup_free_ char *th = xasprintf("X-Amz-Target: %s", target);
    const char *headers[] = {th, NULL};
    struct nb_client_req req = {.method = "POST",
                                .path = "/",
                                .content_type = "application/x-amz-json-1.1",
                                .headers = headers,
                                .body = text,
                                .body_len = strlen(text),
                                .service = service};
    if (out)
        *out = NULL;
    int r = client_request(c, &req, resp, err);
    if (r < 0)
        return r;
    r = client_check(resp, err);
    if (r < 0)
        return r;
    if (out && resp->body.len) {
        *out = client_resp_json(resp, err);
        if (!*out)
            return -EPROTO;
    }
    return 0;
}

int client_call(struct nb_client *c, const char *method, const char *path, const char *query,
                json_t *body, json_t **out, struct nb_err *err)
{
    struct nb_client_resp resp = NB_CLIENT_RESP_INIT;
    int r = client_json(c, method, path, query, body, &resp, out, err);
    client_resp_release(&resp);
    return r;
}

char *client_page_query(const char *base, const char *param, const char *token)
{
    if (!token)
        return base ? xstrdup(base) : NULL;
    _cleanup_free_ char *t = client_escape(token);
    return base ? xasprintf("%s&%s=%s", base, param, t) : xasprintf("%s=%s", param, t);
}

bool client_next_token(char **token, const char *next)
{
    if (!next || !*next || (*token && !strcmp(next, *token)))
        return false;
    free(*token);
    *token = xstrdup(next);
    return true;
}

char *client_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    struct nb_buf b = NB_BUF_INIT;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char ch = *p;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            buf_append(&b, p, 1);
        } else {
            char enc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            buf_append(&b, enc, 3);
        }
    }
    return buf_detach(&b, NULL);
}

/*
 * http_event.c - payload format 2.0 events and API Gateway's response mapping (http_event.h).
 *
 * Builds with jansson (no hand-written JSON). Everything the event needs comes in struct
 * nb_http_event_in; everything the response produces goes to the caller's arena. Pure functions:
 * safe to fuzz, no global state.
 */
#include "http_event.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <time.h>

#include "codec.h"
#include "util.h"

bool http_event_is_text(const char *ct)
{
    if (!ct)
        return true; /* no Content-Type: sent as is when it is valid UTF-8 */
    size_t n = strcspn(ct, ";");
    while (n && isspace((unsigned char)ct[n - 1]))
        n--;
    static const char *const text[] = {"application/json",   "application/javascript",
                                       "application/xml",    "application/x-www-form-urlencoded",
                                       "application/x-yaml", "application/yaml",
                                       "application/graphql"};
    if (n >= 5 && !strncasecmp(ct, "text/", 5))
        return true;
    for (size_t i = 0; i < ARRAY_SIZE(text); i++)
        if (strlen(text[i]) == n && !strncasecmp(ct, text[i], n))
            return true;
    /* structured syntax suffixes: application/vnd.x+json, image/svg+xml */
    if (n >= 5 && (!strncasecmp(ct + n - 5, "+json", 5) || !strncasecmp(ct + n - 4, "+xml", 4)))
        return true;
    return false;
}

static bool valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            if (c == 0)
                return false; /* jansson strings cannot hold NUL without a flag: base64 it */
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

/* Appends value to key in obj, joining with "," when the key is there already. */
static void join_set(json_t *obj, const char *key, const char *value)
{
    json_t *cur = json_object_get(obj, key);
    if (!cur) {
        json_object_set_new(obj, key, json_string(value));
        return;
    }
    _cleanup_free_ char *v = xasprintf("%s,%s", json_string_value(cur), value);
    json_object_set_new(obj, key, json_string(v));
}

/* A json string of n bytes, or NULL when not valid UTF-8. */
static json_t *str_n(const char *s, size_t n)
{
    return json_stringn(s, n);
}

static void add_cookies(json_t *cookies, const char *v)
{
    const char *p = v;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        size_t n = strcspn(p, ";");
        size_t m = n;
        while (m && (p[m - 1] == ' ' || p[m - 1] == '\t'))
            m--;
        if (m) {
            json_t *s = str_n(p, m);
            if (s)
                json_array_append_new(cookies, s);
        }
        p += n;
    }
}

static json_t *query_params(struct nb_arena *a, const char *q)
{
    json_t *o = json_object();
    const char *p = q;
    while (*p) {
        size_t n = strcspn(p, "&");
        if (n) {
            const char *eq = memchr(p, '=', n);
            size_t kn = eq ? (size_t)(eq - p) : n;
            const char *v = eq ? eq + 1 : p + n;
            size_t vn = eq ? n - kn - 1 : 0;
            char *k = http_pct_decode(a, p, kn);
            char *val = http_pct_decode(a, v, vn);
            if (!k)
                k = arena_strndup(a, p, kn);
            if (!val)
                val = arena_strndup(a, v, vn);
            if (*k && valid_utf8((const unsigned char *)k, strlen(k)) &&
                valid_utf8((const unsigned char *)val, strlen(val)))
                join_set(o, k, val);
        }
        p += n;
        if (*p == '&')
            p++;
    }
    return o;
}

static void fmt_clf_time(uint64_t ms, char *out, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    snprintf(out, len, "%02d/%s/%04d:%02d:%02d:%02d +0000", tm.tm_mday, mon[tm.tm_mon % 12],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* A string member only when s is valid UTF-8 (event strings come from the network). */
static void set_str(json_t *o, const char *k, const char *s)
{
    json_t *v = s ? json_string(s) : NULL;
    json_object_set_new(o, k, v ? v : json_string(""));
}

char *http_event_build(const struct nb_http_event_in *in, size_t *len)
{
    struct nb_arena a;
    arena_init(&a);
    json_t *ev = json_object();
    set_str(ev, "version", "2.0");
    set_str(ev, "routeKey", in->route_key);
    set_str(ev, "rawPath", in->raw_path);
    set_str(ev, "rawQueryString", in->query);
    json_t *headers = json_object(), *cookies = json_array();
    const char *ua = "";
    for (size_t i = 0; i < in->n_headers; i++) {
        char *name = arena_strdup(&a, in->headers[i].name);
        for (char *c = name; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        const char *v = in->headers[i].value;
        if (!valid_utf8((const unsigned char *)name, strlen(name)) ||
            !valid_utf8((const unsigned char *)v, strlen(v)))
            continue; /* names and values that are not UTF-8 cannot be JSON strings */
        if (!strcmp(name, "cookie")) {
            add_cookies(cookies, v);
            continue;
        }
        if (!strcmp(name, "user-agent"))
            ua = v;
        join_set(headers, name, v);
    }
    if (json_array_size(cookies))
        json_object_set_new(ev, "cookies", cookies);
    else
        json_decref(cookies);
    json_object_set_new(ev, "headers", headers);
    if (in->query && *in->query) {
        json_t *qp = query_params(&a, in->query);
        if (json_object_size(qp))
            json_object_set_new(ev, "queryStringParameters", qp);
        else
            json_decref(qp);
    }
    if (in->n_params) {
        json_t *pp = json_object();
        for (size_t i = 0; i < in->n_params; i++) {
            json_t *v = json_string(in->param_values[i]);
            if (v)
                json_object_set_new(pp, in->param_names[i], v);
        }
        json_object_set_new(ev, "pathParameters", pp);
    }
    json_t *rc = json_object();
    set_str(rc, "accountId", in->account_id);
    set_str(rc, "apiId", in->api_id);
    if (in->iam_key_id)
        json_object_set_new(
            rc, "authorizer",
            json_pack("{s:{s:s,s:s,s:s,s:s,s:s}}", "iam", "accessKey", in->iam_key_id, "accountId",
                      in->account_id, "callerId", in->iam_key_id, "userArn",
                      arena_printf(&a, "arn:aws:iam::%s:user/%s", in->account_id, in->iam_key_id),
                      "userId", in->iam_key_id));
    set_str(rc, "domainName", in->domain_name);
    const char *dn = in->domain_name ? in->domain_name : "";
    set_str(rc, "domainPrefix", arena_strndup(&a, dn, strcspn(dn, ".")));
    json_t *http = json_object();
    set_str(http, "method", in->method);
    set_str(http, "path", in->raw_path);
    set_str(http, "protocol", "HTTP/1.1");
    set_str(http, "sourceIp", in->source_ip);
    set_str(http, "userAgent", ua);
    json_object_set_new(rc, "http", http);
    set_str(rc, "requestId", in->request_id);
    set_str(rc, "routeKey", in->route_key);
    set_str(rc, "stage", "$default");
    char t[64];
    fmt_clf_time(in->time_ms, t, sizeof(t));
    set_str(rc, "time", t);
    json_object_set_new(rc, "timeEpoch", json_integer((json_int_t)in->time_ms));
    json_object_set_new(ev, "requestContext", rc);
    if (in->body_len) {
        const char *ct = NULL;
        for (size_t i = 0; i < in->n_headers; i++)
            if (!strcasecmp(in->headers[i].name, "content-type"))
                ct = in->headers[i].value;
        bool text =
            http_event_is_text(ct) && valid_utf8((const unsigned char *)in->body, in->body_len);
        if (text) {
            json_object_set_new(ev, "body", str_n(in->body, in->body_len));
        } else {
            char *b = b64_encode(in->body, in->body_len);
            json_object_set_new(ev, "body", json_string(b));
            free(b);
        }
        json_object_set_new(ev, "isBase64Encoded", json_boolean(!text));
    } else {
        json_object_set_new(ev, "isBase64Encoded", json_false());
    }
    char *s = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    arena_release(&a);
    if (!s)
        BUG("cannot serialise an HTTP event");
    *len = strlen(s);
    return s;
}

/* ---- responses --------------------------------------------------------------------------- */

static void add_header(struct nb_arena *a, struct nb_buf *hb, const char *name, const char *value)
{
    struct nb_http_header h = {arena_strdup(a, name), arena_strdup(a, value)};
    buf_append(hb, &h, sizeof(h));
}

static bool has_header(const struct nb_buf *hb, const char *name)
{
    const struct nb_http_header *h = (const void *)hb->data;
    for (size_t i = 0; i < hb->len / sizeof(*h); i++)
        if (!strcasecmp(h[i].name, name))
            return true;
    return false;
}

/* A header value from a JSON scalar, or NULL for arrays, objects and null. */
static const char *scalar_text(struct nb_arena *a, json_t *v)
{
    if (json_is_string(v))
        return arena_strdup(a, json_string_value(v));
    if (json_is_integer(v))
        return arena_printf(a, "%lld", (long long)json_integer_value(v));
    if (json_is_real(v))
        return arena_printf(a, "%g", json_real_value(v));
    if (json_is_boolean(v))
        return json_is_true(v) ? "true" : "false";
    return NULL;
}

static bool header_name_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= 32 || (unsigned char)*s >= 127 ||
            strchr("()<>@,;:\\\"/[]?={}", *s))
            return false;
    return true;
}

static int structured(struct nb_arena *a, json_t *o, struct nb_http_event_out *res,
                      struct nb_err *err)
{
    json_t *sc = json_object_get(o, "statusCode");
    if (!json_is_integer(sc) || json_integer_value(sc) < 100 || json_integer_value(sc) > 599)
        return err_set(err, EINVAL, "statusCode is not an HTTP status");
    res->status = (int)json_integer_value(sc);
    struct nb_buf hb = {0};
    json_t *hs = json_object_get(o, "headers");
    if (hs && !json_is_null(hs)) {
        if (!json_is_object(hs)) {
            buf_release(&hb);
            return err_set(err, EINVAL, "headers is not an object");
        }
        const char *k;
        json_t *v;
        json_object_foreach (hs, k, v) {
            const char *t = scalar_text(a, v);
            if (!t || !header_name_ok(k)) {
                buf_release(&hb);
                return err_set(err, EINVAL, "bad header '%s'", k);
            }
            add_header(a, &hb, k, t);
        }
    }
    json_t *cs = json_object_get(o, "cookies");
    if (cs && !json_is_null(cs)) {
        if (!json_is_array(cs)) {
            buf_release(&hb);
            return err_set(err, EINVAL, "cookies is not an array");
        }
        size_t i;
        json_t *c;
        json_array_foreach (cs, i, c) {
            if (!json_is_string(c)) {
                buf_release(&hb);
                return err_set(err, EINVAL, "a cookie is not a string");
            }
            add_header(a, &hb, "Set-Cookie", json_string_value(c));
        }
    }
    if (!has_header(&hb, "content-type"))
        add_header(a, &hb, "Content-Type", "application/json");
    json_t *b = json_object_get(o, "body");
    json_t *b64 = json_object_get(o, "isBase64Encoded");
    if (b64 && !json_is_boolean(b64) && !json_is_null(b64)) {
        buf_release(&hb);
        return err_set(err, EINVAL, "isBase64Encoded is not a boolean");
    }
    if (json_is_string(b)) {
        const char *s = json_string_value(b);
        size_t n = json_string_length(b);
        if (json_is_true(b64)) {
            unsigned char *raw = NULL;
            size_t rn = 0;
            if (b64_decode(s, n, &raw, &rn, err) < 0) {
                buf_release(&hb);
                return err_prefix(err, "body");
            }
            res->body = arena_alloc(a, rn + 1);
            memcpy(res->body, raw, rn);
            res->body_len = rn;
            free(raw);
        } else {
            res->body = arena_alloc(a, n + 1);
            memcpy(res->body, s, n);
            res->body_len = n;
        }
    } else if (b && !json_is_null(b)) {
        /* not a string: API Gateway sends its JSON text */
        char *s = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY);
        res->body = arena_strdup(a, s ? s : "");
        res->body_len = strlen(res->body);
        free(s);
    } else {
        res->body = arena_strdup(a, "");
        res->body_len = 0;
    }
    res->n_headers = hb.len / sizeof(struct nb_http_header);
    res->headers = arena_alloc(a, hb.len ? hb.len : 1);
    if (hb.len)
        memcpy(res->headers, hb.data, hb.len);
    buf_release(&hb);
    return 0;
}

int http_event_response(struct nb_arena *a, const char *out, size_t len,
                        struct nb_http_event_out *res, struct nb_err *err)
{
    memset(res, 0, sizeof(*res));
    json_error_t jerr;
    json_t *j = json_loadb(out, len, JSON_DECODE_ANY, &jerr);
    if (!j)
        return err_set(err, EINVAL, "function output is not JSON: %s", jerr.text);
    int rc = 0;
    if (json_is_object(j) && json_object_get(j, "statusCode")) {
        rc = structured(a, j, res, err);
    } else {
        res->status = 200;
        res->n_headers = 1;
        res->headers = arena_alloc(a, sizeof(*res->headers));
        res->headers[0] = (struct nb_http_header){"Content-Type", "application/json"};
        res->body = arena_alloc(a, len + 1);
        memcpy(res->body, out, len);
        res->body_len = len;
    }
    json_decref(j);
    return rc;
}

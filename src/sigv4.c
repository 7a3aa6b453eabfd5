/*
 * sigv4.c - AWS Signature Version 4 parsing, canonicalisation, verification and signing (see
 * sigv4.h; the wire rules are LAMBDA.md §7).
 *
 * Structure: parse (header form or presigned query form) -> canonical request -> string to sign
 * -> HMAC with the derived signing key (cached) -> constant-time comparison. The same canonical
 * request code signs for the CLI and for presigned URLs, so what nimbus signs it also accepts.
 * Each thread hashes with its own SHA-256 and HMAC contexts, made once and reused (freed when
 * the thread exits).
 * Invariant: nothing here reads the clock or the key store; every failure carries AWS's message.
 */
#include "sigv4.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <strings.h>

#define SKEW_MIN (SIGV4_MAX_SKEW_S / 60)

const char *sigv4_error_type(enum nb_sigv4_result r)
{
    switch (r) {
    case NB_SIGV4_OK:
        return NULL;
    case NB_SIGV4_MISSING:
        return "MissingAuthenticationTokenException";
    case NB_SIGV4_MALFORMED:
        return "IncompleteSignatureException";
    case NB_SIGV4_UNKNOWN_KEY:
        return "UnrecognizedClientException";
    case NB_SIGV4_EXPIRED:
        return "AccessDeniedException";
    case NB_SIGV4_BAD_SIGNATURE:
    case NB_SIGV4_SKEWED:
    case NB_SIGV4_BAD_PAYLOAD:
        break;
    }
    return "InvalidSignatureException";
}

int sigv4_error_status(enum nb_sigv4_result r)
{
    return r == NB_SIGV4_OK ? 200 : 403;
}

/* SHA-256 and HMAC implementations fetched once: OpenSSL 3's one-shot SHA256()/HMAC() fetch
 * them on every call (a lock and a lookup, a third of the verification cost). */
static EVP_MD *sha256_md;
static EVP_MAC *hmac_mac;
static pthread_key_t ctx_key; /* each thread's struct crypto_ctx */
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

/* A thread's digest and HMAC contexts, reused by every hash it computes: a fresh context per
 * hash (and fetching "SHA256" by name for each HMAC) was a measurable part of verifying each
 * request. */
struct crypto_ctx {
    EVP_MD_CTX *md;
    EVP_MAC_CTX *mac;
};

static void free_crypto_ctx(void *p)
{
    struct crypto_ctx *c = p;
    EVP_MD_CTX_free(c->md);
    EVP_MAC_CTX_free(c->mac);
    free(c);
}

static void fetch_algorithms(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    hmac_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!sha256_md || !hmac_mac)
        BUG("libcrypto has no SHA256/HMAC");
    if (pthread_key_create(&ctx_key, free_crypto_ctx))
        BUG("pthread_key_create failed");
}

static struct crypto_ctx *crypto_ctx(void)
{
    pthread_once(&fetch_once, fetch_algorithms);
    struct crypto_ctx *c = pthread_getspecific(ctx_key);
    if (c)
        return c;
    static char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                           OSSL_PARAM_construct_end()};
    c = xcalloc(1, sizeof(*c));
    c->md = EVP_MD_CTX_new();
    c->mac = EVP_MAC_CTX_new(hmac_mac);
    if (!c->md || !c->mac || EVP_MAC_CTX_set_params(c->mac, params) != 1 ||
        pthread_setspecific(ctx_key, c))
        BUG("cannot set up SHA-256/HMAC contexts");
    return c;
}

static void sha256_raw(const void *data, size_t len, unsigned char out[32])
{
    EVP_MD_CTX *md = crypto_ctx()->md;
    unsigned int n = 32;
    if (EVP_DigestInit_ex2(md, sha256_md, NULL) != 1 || EVP_DigestUpdate(md, data, len) != 1 ||
        EVP_DigestFinal_ex(md, out, &n) != 1 || n != 32)
        BUG("SHA-256 failed");
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    sha256_raw(data, len, md);
    hex_encode(md, 32, out);
}

static void hmac(const void *key, size_t klen, const void *data, size_t len, unsigned char out[32])
{
    EVP_MAC_CTX *c = crypto_ctx()->mac;
    size_t olen = 0;
    /* init with a new key restarts the context; the digest set once stays */
    if (EVP_MAC_init(c, key, klen, NULL) != 1 || EVP_MAC_update(c, data, len) != 1 ||
        EVP_MAC_final(c, out, &olen, 32) != 1 || olen != 32)
        BUG("HMAC-SHA256 failed");
}

void sigv4_signing_key(const char *secret, const char *date, const char *region,
                       const char *service, struct nb_sigv4_cache *cache, unsigned char out[32])
{
    unsigned char digest[32];
    unsigned slot = 0;
    if (cache) {
        struct nb_buf id = NB_BUF_INIT;
        buf_append(&id, secret, strlen(secret) + 1);
        buf_append(&id, date, strlen(date) + 1);
        buf_append(&id, region, strlen(region) + 1);
        buf_append(&id, service, strlen(service) + 1);
        sha256_raw(id.data, id.len, digest);
        OPENSSL_cleanse(id.data, id.len);
        buf_release(&id);
        slot = digest[0] % SIGV4_CACHE_SLOTS;
        if (cache->slot[slot].used && !memcmp(cache->slot[slot].digest, digest, 32)) {
            memcpy(out, cache->slot[slot].key, 32);
            cache->hits++;
            return;
        }
        cache->misses++;
    }
    _cleanup_free_ char *k = xasprintf("AWS4%s", secret);
    unsigned char k1[32], k2[32], k3[32];
    hmac(k, strlen(k), date, strlen(date), k1);
    hmac(k1, 32, region, strlen(region), k2);
    hmac(k2, 32, service, strlen(service), k3);
    hmac(k3, 32, "aws4_request", 12, out);
    OPENSSL_cleanse(k, strlen(k));
    if (cache) {
        memcpy(cache->slot[slot].digest, digest, 32);
        memcpy(cache->slot[slot].key, out, 32);
        cache->slot[slot].used = true;
    }
}

/* ---- time ---- */

void sigv4_amz_date(int64_t t, char out[17])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

int sigv4_parse_amz_date(const char *s, int64_t *t)
{
    if (strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z' || strspn(s, "0123456789") != 8 ||
        strspn(s + 9, "0123456789") != 6)
        return -EINVAL;
    struct tm tm = {0};
    const char *end = strptime(s, "%Y%m%dT%H%M%SZ", &tm);
    if (!end || *end)
        return -EINVAL;
    *t = (int64_t)timegm(&tm);
    return 0;
}

/* RFC 1123 Date header ("Mon, 09 Sep 2011 23:36:00 GMT"). */
static int parse_http_date(const char *s, int64_t *t)
{
    struct tm tm = {0};
    const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return -EINVAL;
    *t = (int64_t)timegm(&tm);
    return 0;
}

/* ---- encoding ---- */

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

static void append_encoded(struct nb_buf *b, const char *s, size_t n, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t run = 0; /* start of the current run of characters kept as they are */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/'))
            continue;
        buf_append(b, s + run, i - run);
        char e[3] = {'%', hex[c >> 4], hex[c & 15]};
        buf_append(b, e, 3);
        run = i + 1;
    }
    buf_append(b, s + run, n - run);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into b (no '+' rule: SigV4 clients encode spaces as %20). */
static int pct_decode(struct nb_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            buf_append(b, &s[i], 1);
            continue;
        }
        int hi, lo;
        if (i + 2 >= n || (hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0)
            return -EINVAL;
        char c = (char)(hi << 4 | lo);
        buf_append(b, &c, 1);
        i += 2;
    }
    return 0;
}

/* ---- canonical request ---- */

/* botocore's remove_dot_segments (also drops empty segments), then encoded again with '/'
 * kept: the wire path's escapes become %25XX (LAMBDA.md §7.2). */
static void canonical_uri(struct nb_buf *out, const char *path, const char *service)
{
    size_t n = strlen(path);
    if (n == 0) {
        buf_appends(out, "/");
        return;
    }
    if (!strcmp(service, "s3")) {
        buf_appends(out, path);
        return;
    }
    /* segments as (start, len) */
    size_t cap = 8, cnt = 0;
    struct seg {
        const char *s;
        size_t n;
    } *segs = xmalloc(cap * sizeof(*segs));
    const char *p = path, *end = path + n;
    while (p <= end) {
        const char *q = memchr(p, '/', (size_t)(end - p));
        if (!q)
            q = end;
        size_t len = (size_t)(q - p);
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (cnt)
                cnt--;
        } else if (len > 0 && !(len == 1 && p[0] == '.')) {
            if (cnt == cap)
                segs = xrealloc(segs, (cap *= 2) * sizeof(*segs));
            segs[cnt++] = (struct seg){p, len};
        }
        p = q + 1;
    }
    if (path[0] == '/')
        buf_appends(out, "/");
    for (size_t i = 0; i < cnt; i++) {
        if (i)
            buf_appends(out, "/");
        append_encoded(out, segs[i].s, segs[i].n, false);
    }
    if (path[n - 1] == '/' && cnt)
        buf_appends(out, "/");
    if (path[0] != '/' && cnt == 0)
        buf_appends(out, "/");
    free(segs);
}

struct qpair {
    char *name; /* canonically encoded */
    char *value;
};

static int qpair_cmp(const void *a, const void *b)
{
    const struct qpair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* Re-encodes one raw query component canonically into a malloc'd string. */
static char *canon_component(const char *s, size_t n, int *rc)
{
    struct nb_buf dec = NB_BUF_INIT, enc = NB_BUF_INIT;
    if (pct_decode(&dec, s, n) < 0)
        *rc = -EINVAL;
    append_encoded(&enc, dec.data ? dec.data : "", dec.len, false);
    buf_release(&dec);
    return buf_detach(&enc, NULL);
}

static int canonical_query(struct nb_buf *out, const char *query, const char *skip)
{
    size_t cap = 8, cnt = 0;
    struct qpair *pairs = xmalloc(cap * sizeof(*pairs));
    int rc = 0;
    const char *p = query ? query : "";
    while (*p) {
        size_t len = strcspn(p, "&");
        if (len) {
            const char *eq = memchr(p, '=', len);
            size_t nlen = eq ? (size_t)(eq - p) : len;
            char *name = canon_component(p, nlen, &rc);
            char *value = eq ? canon_component(eq + 1, len - nlen - 1, &rc) : xstrdup("");
            if (skip && !strcmp(name, skip)) {
                free(name);
                free(value);
            } else {
                if (cnt == cap)
                    pairs = xrealloc(pairs, (cap *= 2) * sizeof(*pairs));
                pairs[cnt++] = (struct qpair){name, value};
            }
        }
        p += len;
        if (*p == '&')
            p++;
    }
    qsort(pairs, cnt, sizeof(*pairs), qpair_cmp);
    for (size_t i = 0; i < cnt; i++) {
        buf_appendf(out, "%s%s=%s", i ? "&" : "", pairs[i].name, pairs[i].value);
        free(pairs[i].name);
        free(pairs[i].value);
    }
    free(pairs);
    return rc;
}

/* "name:v1,v2\n" for one signed header: every instance, whitespace runs collapsed. */
static void canonical_header(struct nb_buf *out, const struct nb_sigv4_request *req,
                             const char *name, size_t nlen)
{
    buf_append(out, name, nlen);
    buf_appends(out, ":");
    bool first = true;
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *hn = req->headers[i].name;
        if (strlen(hn) != nlen || strncasecmp(hn, name, nlen))
            continue;
        if (!first)
            buf_appends(out, ",");
        first = false;
        const char *v = req->headers[i].value;
        bool sep = false;
        while (*v) {
            size_t ws = strspn(v, " \t\r\n");
            v += ws;
            if (!*v)
                break;
            size_t word = strcspn(v, " \t\r\n");
            if (sep)
                buf_appends(out, " ");
            buf_append(out, v, word);
            sep = true;
            v += word;
        }
    }
    buf_appends(out, "\n");
}

int sigv4_canonical_request(struct nb_buf *out, const struct nb_sigv4_request *req,
                            const char *service, const char *signed_headers,
                            const char *payload_hash, const char *skip_param)
{
    buf_appends(out, req->method);
    buf_appends(out, "\n");
    canonical_uri(out, req->path, service);
    buf_appends(out, "\n");
    int rc = canonical_query(out, req->query, skip_param);
    buf_appends(out, "\n");
    for (const char *p = signed_headers; *p;) {
        size_t len = strcspn(p, ";");
        if (len)
            canonical_header(out, req, p, len);
        p += len;
        if (*p == ';')
            p++;
    }
    buf_appends(out, "\n");
    buf_appends(out, signed_headers);
    buf_appends(out, "\n");
    buf_appends(out, payload_hash);
    return rc;
}

static void string_to_sign(struct nb_buf *out, const char *amz_date, const char *date,
                           const char *region, const char *service, const struct nb_buf *creq)
{
    char h[65];
    sigv4_sha256_hex(creq->data ? creq->data : "", creq->len, h);
    /* appends, not printf: this runs for every signed request */
    const char *parts[] = {SIGV4_ALGORITHM "\n", amz_date, "\n", date, "/", region, "/", service,
                           "/aws4_request\n",    h};
    for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
        buf_appends(out, parts[i]);
}

static void signature_hex(const unsigned char key[32], const struct nb_buf *sts, char out[65])
{
    unsigned char sig[32];
    hmac(key, 32, sts->data, sts->len, sig);
    hex_encode(sig, 32, out);
}

/* ---- parsing ---- */

static const char *header(const struct nb_sigv4_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (!strcasecmp(req->headers[i].name, name))
            return req->headers[i].value;
    return NULL;
}

/* Decoded value of query parameter name (exact case), or NULL. */
static char *query_param(const char *query, const char *name, struct nb_arena *a)
{
    size_t nl = strlen(name);
    for (const char *p = query ? query : ""; *p;) {
        size_t len = strcspn(p, "&");
        if (len > nl && p[nl] == '=' && !strncmp(p, name, nl)) {
            struct nb_buf b = NB_BUF_INIT;
            int rc = pct_decode(&b, p + nl + 1, len - nl - 1);
            char *v = rc < 0 ? NULL : arena_strndup(a, b.data ? b.data : "", b.len);
            buf_release(&b);
            return v;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return NULL;
}

static bool is_lower_hex64(const char *s)
{
    return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* Splits "AKID/yyyymmdd/region/service/aws4_request" into auth. */
static enum nb_sigv4_result parse_credential(const char *cred, struct nb_arena *a,
                                             struct nb_sigv4_auth *auth, struct nb_err *err)
{
    const char *parts[5];
    size_t lens[5];
    const char *p = cred;
    for (int i = 0; i < 5; i++) {
        size_t len = strcspn(p, "/");
        parts[i] = p;
        lens[i] = len;
        if ((i < 4 && p[len] != '/') || (i == 4 && p[len] != '\0') || len == 0) {
            err_set(err, EINVAL,
                    "Credential should be scoped to a valid region, not '%s'. Credential should "
                    "be of the form <AccessKeyId>/<yyyymmdd>/<region>/<service>/aws4_request",
                    cred);
            return NB_SIGV4_MALFORMED;
        }
        p += len + (i < 4);
    }
    if (lens[4] != 12 || strncmp(parts[4], "aws4_request", 12)) {
        err_set(err, EINVAL, "Credential should be scoped with a valid terminator: 'aws4_request'");
        return NB_SIGV4_MALFORMED;
    }
    if (lens[1] != 8 || strspn(parts[1], "0123456789") < 8) {
        err_set(err, EINVAL, "Credential should be scoped to a valid date, not '%.*s'",
                (int)lens[1], parts[1]);
        return NB_SIGV4_MALFORMED;
    }
    auth->key_id = arena_strndup(a, parts[0], lens[0]);
    auth->date = arena_strndup(a, parts[1], lens[1]);
    auth->region = arena_strndup(a, parts[2], lens[2]);
    auth->service = arena_strndup(a, parts[3], lens[3]);
    return NB_SIGV4_OK;
}

static enum nb_sigv4_result check_signed_headers(const char *sh, struct nb_err *err)
{
    if (!*sh || strspn(sh, "abcdefghijklmnopqrstuvwxyz0123456789-_;.") != strlen(sh)) {
        err_set(err, EINVAL, "Invalid SignedHeaders '%s': lowercase names joined by ';'", sh);
        return NB_SIGV4_MALFORMED;
    }
    /* host must be signed (AWS refuses otherwise) */
    for (const char *p = sh; *p;) {
        size_t len = strcspn(p, ";");
        if (len == 4 && !strncmp(p, "host", 4))
            return NB_SIGV4_OK;
        p += len + (p[len] == ';');
    }
    err_set(err, EINVAL,
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
    return NB_SIGV4_MALFORMED;
}

static enum nb_sigv4_result parse_header_auth(const struct nb_sigv4_request *req, const char *authz,
                                              struct nb_arena *a, struct nb_sigv4_auth *auth,
                                              struct nb_err *err)
{
    size_t alen = strlen(SIGV4_ALGORITHM);
    if (strncmp(authz, SIGV4_ALGORITHM, alen) || (authz[alen] != ' ' && authz[alen] != '\t')) {
        err_set(err, EINVAL, "Authorization header algorithm must be " SIGV4_ALGORITHM);
        return NB_SIGV4_MALFORMED;
    }
    const char *cred = NULL, *sh = NULL, *sig = NULL;
    for (const char *p = authz + alen; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t len = strcspn(p, ",");
        size_t tl = len;
        while (tl > 0 && (p[tl - 1] == ' ' || p[tl - 1] == '\t'))
            tl--;
        const char *eq = memchr(p, '=', tl);
        if (eq) {
            size_t kl = (size_t)(eq - p);
            char *v = arena_strndup(a, eq + 1, tl - kl - 1);
            if (kl == 10 && !strncmp(p, "Credential", 10))
                cred = v;
            else if (kl == 13 && !strncmp(p, "SignedHeaders", 13))
                sh = v;
            else if (kl == 9 && !strncmp(p, "Signature", 9))
                sig = v;
        }
        p += len;
    }
    if (!cred || !sh || !sig) {
        err_set(err, EINVAL, "%s%s%sAuthorization=%s",
                cred ? "" : "Authorization header requires 'Credential' parameter. ",
                sh ? "" : "Authorization header requires 'SignedHeaders' parameter. ",
                sig ? "" : "Authorization header requires 'Signature' parameter. ", authz);
        return NB_SIGV4_MALFORMED;
    }
    enum nb_sigv4_result r = parse_credential(cred, a, auth, err);
    if (r != NB_SIGV4_OK)
        return r;
    if ((r = check_signed_headers(sh, err)) != NB_SIGV4_OK)
        return r;
    if (!is_lower_hex64(sig)) {
        err_set(err, EINVAL, "Signature must be 64 lowercase hex digits");
        return NB_SIGV4_MALFORMED;
    }
    auth->signed_headers = sh;
    auth->signature = sig;
    const char *xd = header(req, "x-amz-date");
    if (xd) {
        if (sigv4_parse_amz_date(xd, &auth->time) < 0) {
            err_set(err, EINVAL, "X-Amz-Date '%s' is not of the form yyyyMMdd'T'HHmmss'Z'", xd);
            return NB_SIGV4_MALFORMED;
        }
        auth->amz_date = arena_strdup(a, xd);
    } else {
        const char *dh = header(req, "date");
        if (!dh || parse_http_date(dh, &auth->time) < 0) {
            err_set(err, EINVAL,
                    "Authorization header requires existence of either a 'X-Amz-Date' or a "
                    "'Date' header. Authorization=%s",
                    authz);
            return NB_SIGV4_MALFORMED;
        }
        char buf[17];
        sigv4_amz_date(auth->time, buf);
        auth->amz_date = arena_strdup(a, buf);
    }
    return NB_SIGV4_OK;
}

static enum nb_sigv4_result parse_query_auth(const struct nb_sigv4_request *req, struct nb_arena *a,
                                             struct nb_sigv4_auth *auth, struct nb_err *err)
{
    static const char *const need[] = {"X-Amz-Algorithm", "X-Amz-Credential",    "X-Amz-Date",
                                       "X-Amz-Expires",   "X-Amz-SignedHeaders", "X-Amz-Signature"};
    char *v[ARRAY_SIZE(need)];
    for (size_t i = 0; i < ARRAY_SIZE(need); i++) {
        v[i] = query_param(req->query, need[i], a);
        if (!v[i]) {
            err_set(err, EINVAL,
                    "AWS query-string parameters must include '%s'. Re-examine the "
                    "query-string parameters.",
                    need[i]);
            return NB_SIGV4_MALFORMED;
        }
    }
    if (strcmp(v[0], SIGV4_ALGORITHM)) {
        err_set(err, EINVAL, "X-Amz-Algorithm only supports '" SIGV4_ALGORITHM "'");
        return NB_SIGV4_MALFORMED;
    }
    enum nb_sigv4_result r = parse_credential(v[1], a, auth, err);
    if (r != NB_SIGV4_OK)
        return r;
    if (sigv4_parse_amz_date(v[2], &auth->time) < 0) {
        err_set(err, EINVAL, "X-Amz-Date '%s' is not of the form yyyyMMdd'T'HHmmss'Z'", v[2]);
        return NB_SIGV4_MALFORMED;
    }
    if (parse_i64(v[3], 1, SIGV4_MAX_EXPIRES_S, &auth->expires) < 0) {
        err_set(err, EINVAL, "X-Amz-Expires must be an integer between 1 and %d, not '%s'",
                SIGV4_MAX_EXPIRES_S, v[3]);
        return NB_SIGV4_MALFORMED;
    }
    if ((r = check_signed_headers(v[4], err)) != NB_SIGV4_OK)
        return r;
    if (!is_lower_hex64(v[5])) {
        err_set(err, EINVAL, "X-Amz-Signature must be 64 lowercase hex digits");
        return NB_SIGV4_MALFORMED;
    }
    auth->presigned = true;
    auth->amz_date = v[2];
    auth->signed_headers = v[4];
    auth->signature = v[5];
    return NB_SIGV4_OK;
}

enum nb_sigv4_result sigv4_parse(const struct nb_sigv4_request *req, struct nb_arena *a,
                                 struct nb_sigv4_auth *auth, struct nb_err *err)
{
    memset(auth, 0, sizeof(*auth));
    const char *authz = header(req, "authorization");
    if (authz)
        return parse_header_auth(req, authz, a, auth, err);
    if (query_param(req->query, "X-Amz-Algorithm", a))
        return parse_query_auth(req, a, auth, err);
    return NB_SIGV4_MISSING;
}

/* ---- verification ---- */

static enum nb_sigv4_result check_clock(const struct nb_sigv4_auth *auth, int64_t now,
                                        struct nb_err *err)
{
    char t1[17], t2[17];
    if (auth->time > now + SIGV4_MAX_SKEW_S) {
        sigv4_amz_date(now + SIGV4_MAX_SKEW_S, t1);
        sigv4_amz_date(now, t2);
        err_set(err, EACCES, "Signature not yet current: %s is still later than %s (%s + %d min.)",
                auth->amz_date, t1, t2, SKEW_MIN);
        return NB_SIGV4_SKEWED;
    }
    if (auth->presigned) {
        if (now > auth->time + auth->expires) {
            err_set(err, EACCES, "Request has expired");
            return NB_SIGV4_EXPIRED;
        }
        return NB_SIGV4_OK;
    }
    if (auth->time < now - SIGV4_MAX_SKEW_S) {
        sigv4_amz_date(now - SIGV4_MAX_SKEW_S, t1);
        sigv4_amz_date(now, t2);
        err_set(err, EACCES, "Signature expired: %s is now earlier than %s (%s - %d min.)",
                auth->amz_date, t1, t2, SKEW_MIN);
        return NB_SIGV4_SKEWED;
    }
    return NB_SIGV4_OK;
}

/* The payload hash to sign with; NULL (err set) when x-amz-content-sha256 is not acceptable. */
static const char *payload_hash(const struct nb_sigv4_request *req,
                                const struct nb_sigv4_auth *auth, char body_hash[65],
                                struct nb_err *err)
{
    bool s3 = !strcmp(auth->service, "s3");
    const char *h = header(req, "x-amz-content-sha256");
    if (auth->presigned && s3)
        return SIGV4_UNSIGNED_PAYLOAD;
    if (h && !strcmp(h, SIGV4_UNSIGNED_PAYLOAD)) {
        if (!s3) {
            err_set(err, EACCES, "UNSIGNED-PAYLOAD is not accepted for service '%s'",
                    auth->service);
            return NULL;
        }
        return h;
    }
    sigv4_sha256_hex(req->body ? req->body : "", req->body_len, body_hash);
    if (!h)
        return body_hash;
    if (strcasecmp(h, body_hash)) {
        if (!strncmp(h, "STREAMING-", 10))
            err_set(err, EACCES, "x-amz-content-sha256 '%s' (chunked signing) is not supported", h);
        else
            err_set(err, EACCES,
                    "The provided 'x-amz-content-sha256' header does not match what "
                    "was computed.");
        return NULL;
    }
    return h; /* the literal value is what the client signed */
}

enum nb_sigv4_result sigv4_verify(const struct nb_sigv4_request *req,
                                  const struct nb_sigv4_auth *auth, const char *secret, int64_t now,
                                  struct nb_sigv4_cache *cache, struct nb_err *err)
{
    enum nb_sigv4_result r = check_clock(auth, now, err);
    if (r != NB_SIGV4_OK)
        return r;
    if (strncmp(auth->amz_date, auth->date, 8)) {
        err_set(err, EACCES,
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                "from HTTP: '%s' != '%.8s', from '%s'.",
                auth->date, auth->amz_date, auth->amz_date);
        return NB_SIGV4_BAD_SIGNATURE;
    }
    char body_hash[65];
    const char *ph = payload_hash(req, auth, body_hash, err);
    if (!ph)
        return NB_SIGV4_BAD_PAYLOAD;
    struct nb_buf creq = NB_BUF_INIT, sts = NB_BUF_INIT;
    int rc = sigv4_canonical_request(&creq, req, auth->service, auth->signed_headers, ph,
                                     auth->presigned ? "X-Amz-Signature" : NULL);
    if (rc < 0) {
        buf_release(&creq);
        err_set(err, EINVAL, "malformed percent-encoding in the request target");
        return NB_SIGV4_MALFORMED;
    }
    string_to_sign(&sts, auth->amz_date, auth->date, auth->region, auth->service, &creq);
    unsigned char key[32];
    sigv4_signing_key(secret, auth->date, auth->region, auth->service, cache, key);
    char want[65];
    signature_hex(key, &sts, want);
    OPENSSL_cleanse(key, sizeof(key));
    buf_release(&creq);
    buf_release(&sts);
    if (CRYPTO_memcmp(want, auth->signature, 64) != 0) {
        err_set(err, EACCES,
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method. Consult the service "
                "documentation for details.");
        return NB_SIGV4_BAD_SIGNATURE;
    }
    return NB_SIGV4_OK;
}

/* ---- signing ---- */

static void sign_into(char out[65], const struct nb_sigv4_request *req, const char *signed_headers,
                      const char *ph, const char *skip, const char *secret, const char *region,
                      const char *service, const char *amz_date)
{
    char date[9];
    memcpy(date, amz_date, 8);
    date[8] = '\0';
    struct nb_buf creq = NB_BUF_INIT, sts = NB_BUF_INIT;
    if (sigv4_canonical_request(&creq, req, service, signed_headers, ph, skip) < 0)
        BUG("signing a request with a malformed target");
    string_to_sign(&sts, amz_date, date, region, service, &creq);
    unsigned char key[32];
    sigv4_signing_key(secret, date, region, service, NULL, key);
    signature_hex(key, &sts, out);
    buf_release(&creq);
    buf_release(&sts);
}

char *sigv4_sign(const struct nb_sigv4_request *req, const char *signed_headers,
                 const char *payload_hash_hex, const char *key_id, const char *secret,
                 const char *region, const char *service, int64_t now)
{
    char amz[17], body_hash[65], sig[65];
    sigv4_amz_date(now, amz);
    if (!payload_hash_hex) {
        sigv4_sha256_hex(req->body ? req->body : "", req->body_len, body_hash);
        payload_hash_hex = body_hash;
    }
    sign_into(sig, req, signed_headers, payload_hash_hex, NULL, secret, region, service, amz);
    return xasprintf(SIGV4_ALGORITHM " Credential=%s/%.8s/%s/%s/aws4_request, SignedHeaders=%s, "
                                     "Signature=%s",
                     key_id, amz, region, service, signed_headers, sig);
}

char *sigv4_presign(const char *method, const char *path, const char *query, const char *host,
                    const char *key_id, const char *secret, const char *region, const char *service,
                    int64_t now, int64_t expires)
{
    char amz[17], ph[65], sig[65];
    sigv4_amz_date(now, amz);
    struct nb_buf q = NB_BUF_INIT;
    if (query && *query)
        buf_appendf(&q, "%s&", query);
    _cleanup_free_ char *cred =
        xasprintf("%s/%.8s/%s/%s/aws4_request", key_id, amz, region, service);
    buf_appends(&q, "X-Amz-Algorithm=" SIGV4_ALGORITHM "&X-Amz-Credential=");
    append_encoded(&q, cred, strlen(cred), false);
    buf_appendf(&q, "&X-Amz-Date=%s&X-Amz-Expires=%lld&X-Amz-SignedHeaders=host", amz,
                (long long)expires);
    if (!strcmp(service, "s3"))
        snprintf(ph, sizeof(ph), "%s", SIGV4_UNSIGNED_PAYLOAD);
    else
        sigv4_sha256_hex("", 0, ph);
    struct nb_http_header h = {"host", host};
    struct nb_sigv4_request req = {method, path, q.data, &h, 1, NULL, 0};
    sign_into(sig, &req, "host", ph, "X-Amz-Signature", secret, region, service, amz);
    buf_appendf(&q, "&X-Amz-Signature=%s", sig);
    return buf_detach(&q, NULL);
}

/*
 * sigv4.h - AWS Signature Version 4 (LAMBDA.md §7): parsing the Authorization header and the
 * presigned query form, canonical requests, verification, and signing (the CLI, presigned
 * Code.Location URLs).
 *
 * Pure: no I/O, no clock (callers pass `now` in epoch seconds), no key lookup (the caller parses,
 * looks the key id up, then verifies with the secret). Canonicalisation follows botocore: for
 * every service but s3 the wire path is dot-segment-normalised and percent-encoded once more
 * (Lambda's "double encoding": %3A in an ARN becomes %253A); for s3 the wire path is used as is.
 * The query is split on '&', decoded and re-encoded with the unreserved set, sorted.
 *
 * Ownership: parsed strings (struct nb_sigv4_auth) point into the caller's arena; sign/presign
 * results are malloc'd and belong to the caller. Signatures are compared in constant time.
 */
#ifndef NIMBUS_SIGV4_H
#define NIMBUS_SIGV4_H

#include "arena.h"
#include "err.h"
#include "http.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define SIGV4_MAX_SKEW_S (15 * 60) /* |server - X-Amz-Date| allowed for header auth */
#define SIGV4_MAX_EXPIRES_S 604800 /* presigned X-Amz-Expires upper bound (7 days, as AWS) */

/* Outcome of parsing or verifying; each maps to one AWS error (sigv4_error_type/status). */
enum nb_sigv4_result {
    NB_SIGV4_OK = 0,
    NB_SIGV4_MISSING,       /* no Authorization header and no X-Amz-Algorithm: unsigned */
    NB_SIGV4_MALFORMED,     /* IncompleteSignatureException: unparsable auth parameters */
    NB_SIGV4_UNKNOWN_KEY,   /* UnrecognizedClientException (set by the caller's key lookup) */
    NB_SIGV4_BAD_SIGNATURE, /* InvalidSignatureException: signature mismatch */
    NB_SIGV4_SKEWED,        /* InvalidSignatureException: "Signature expired/not yet current" */
    NB_SIGV4_EXPIRED,       /* AccessDeniedException: presigned URL past X-Amz-Expires */
    NB_SIGV4_BAD_PAYLOAD,   /* InvalidSignatureException: x-amz-content-sha256 not the body's */
};

/* The AWS error type and HTTP status replied for r (r != NB_SIGV4_OK). */
const char *sigv4_error_type(enum nb_sigv4_result r);
int sigv4_error_status(enum nb_sigv4_result r);

/* One request as received (or about to be sent). path and query are raw wire strings (path
 * percent-encoded as sent, query without '?'). headers as in http.h (names any case). */
struct nb_sigv4_request {
    const char *method;
    const char *path;
    const char *query;
    const struct nb_http_header *headers;
    size_t n_headers;
    const void *body;
    size_t body_len;
};

/* The parsed authentication of a request (header or presigned form). */
struct nb_sigv4_auth {
    bool presigned;
    const char *key_id;
    const char *date;           /* scope date yyyymmdd */
    const char *region;         /* scope region */
    const char *service;        /* scope service (lambda, s3, sqs, events, ...) */
    const char *signed_headers; /* "host;x-amz-date" (lowercase, ';'-joined, as sent) */
    const char *signature;      /* 64 lowercase hex */
    const char *amz_date;       /* yyyymmddThhmmssZ (from X-Amz-Date, or the Date header) */
    int64_t time;               /* amz_date in epoch seconds */
    int64_t expires;            /* presigned: X-Amz-Expires seconds; 0 for header auth */
};

/* Parses req's authentication into *auth (strings in arena a). Returns NB_SIGV4_OK,
 * NB_SIGV4_MISSING (unsigned: err untouched) or NB_SIGV4_MALFORMED (err says what). Never
 * looks at keys or the clock. */
enum nb_sigv4_result sigv4_parse(const struct nb_sigv4_request *req, struct nb_arena *a,
                                 struct nb_sigv4_auth *auth, struct nb_err *err);

/* A small cache of derived signing keys, keyed by (secret, date, region, service). Owned by
 * its user; not thread-safe. */
#define SIGV4_CACHE_SLOTS 64
struct nb_sigv4_cache {
    struct {
        unsigned char digest[32]; /* SHA-256 of secret '\0' date '\0' region '\0' service */
        unsigned char key[32];
        bool used;
    } slot[SIGV4_CACHE_SLOTS];
    uint64_t hits, misses;
};

/* kSigning = HMAC chain of LAMBDA.md §7.3 into out; through cache when not NULL. */
void sigv4_signing_key(const char *secret, const char *date, const char *region,
                       const char *service, struct nb_sigv4_cache *cache, unsigned char out[32]);

/*
 * Verifies req against auth (from sigv4_parse) with the key's secret at time now (epoch s).
 * Checks the clock (header: |now - time| <= SIGV4_MAX_SKEW_S; presigned: time <= now + skew and
 * now <= time + expires), the scope date, the payload hash (x-amz-content-sha256 must match the
 * body; UNSIGNED-PAYLOAD only for service s3) and the signature. Returns NB_SIGV4_OK or the
 * failure with err set (AWS's message).
 */
enum nb_sigv4_result sigv4_verify(const struct nb_sigv4_request *req,
                                  const struct nb_sigv4_auth *auth, const char *secret, int64_t now,
                                  struct nb_sigv4_cache *cache, struct nb_err *err);

/* The canonical request (LAMBDA.md §7.2) for req with signed_headers (lowercase, ';'-joined) and
 * payload_hash; skip_param: a query parameter left out (presigned: "X-Amz-Signature") or NULL.
 * Appended to out. Returns 0, or -EINVAL when the path or query has a malformed escape. */
int sigv4_canonical_request(struct nb_buf *out, const struct nb_sigv4_request *req,
                            const char *service, const char *signed_headers,
                            const char *payload_hash, const char *skip_param);

/* Formats epoch seconds as yyyymmddThhmmssZ (out >= 17 bytes). */
void sigv4_amz_date(int64_t t, char out[17]);
/* Parses yyyymmddThhmmssZ; returns 0 or -EINVAL. */
int sigv4_parse_amz_date(const char *s, int64_t *t);

/*
 * Signs req for header auth at time now: returns the value of the Authorization header
 * (malloc'd). req's headers must already hold every header in signed_headers (host, x-amz-date
 * = sigv4_amz_date(now), x-amz-content-sha256 if signed). payload_hash NULL: SHA-256 of body.
 */
char *sigv4_sign(const struct nb_sigv4_request *req, const char *signed_headers,
                 const char *payload_hash, const char *key_id, const char *secret,
                 const char *region, const char *service, int64_t now);

/* Presigns method+path (wire form) for Host host, valid expires seconds from now: returns the
 * query string (existing query + X-Amz-* parameters, ending with X-Amz-Signature; malloc'd).
 * Only host is signed; the payload hash is that of an empty body (UNSIGNED-PAYLOAD for s3). */
char *sigv4_presign(const char *method, const char *path, const char *query, const char *host,
                    const char *key_id, const char *secret, const char *region, const char *service,
                    int64_t now, int64_t expires);

/* Lowercase hex SHA-256 of data (out >= 65 bytes). */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);

#endif

/*
 * client.h - the CLI's HTTP client for nimbus' API (Lambda REST-JSON and /nimbus/v1), on libcurl.
 *
 * One struct nb_client per run: it resolves the endpoint (--endpoint, else $NIMBUS_ENDPOINT, else
 * http://127.0.0.1:9000) and keeps one curl handle so a run's requests reuse the connection.
 * client_request() performs one request and fills a struct nb_client_resp whatever the status;
 * it fails only when no HTTP answer arrived ("cannot reach nimbus at URL: ..."). Callers then use
 * client_check() to turn an unexpected status into the AWS error ("<Type>: <message>").
 * Every request is signed with SigV4 (sigv4.c, service "lambda") when credentials are found,
 * in this order: $AWS_ACCESS_KEY_ID + $AWS_SECRET_ACCESS_KEY; else profile $AWS_PROFILE (default
 * "nimbus"; the global --profile sets it) in $AWS_SHARED_CREDENTIALS_FILE (else
 * ~/.aws/credentials); else that profile in DATA_DIR/credentials, the file the daemon writes
 * (DATA_DIR = $NIMBUS_DATA_DIR, else the default ./.nimbus). Without credentials requests go
 * unsigned (enough for a daemon run with --insecure). Region: $AWS_REGION, $AWS_DEFAULT_REGION,
 * the profile's region, else us-east-1.
 *
 * Error codes (see cli_report): EHOSTUNREACH no answer, EREMOTEIO an error answer, EPROTO an
 * answer that cannot be parsed, EINVAL a bad endpoint URL.
 */
#ifndef NIMBUS_CLI_CLIENT_H
#define NIMBUS_CLI_CLIENT_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>

#include "err.h"

#define CLIENT_DEFAULT_ENDPOINT "http://127.0.0.1:9000"

struct nb_client {
    char *endpoint;                 /* owned; no trailing '/' */
    void *curl;                     /* CURL *, owned */
    volatile sig_atomic_t *cancel;  /* when set and *cancel != 0, a running request is aborted */
    char *host;                     /* host[:port] of endpoint, sent as Host and signed */
    char *key_id, *secret, *region; /* credentials (owned; key_id NULL: unsigned) */
};

/* Finds credentials as described above into *key_id, *secret, *region (malloc'd; key_id and
 * secret NULL when none are found). */
void client_find_credentials(char **key_id, char **secret, char **region);

struct nb_client_req {
    const char *method;         /* "GET", "POST", "PUT", "DELETE" */
    const char *path;           /* already encoded (client_escape each label), starts with '/' */
    const char *query;          /* already encoded "a=1&b=2", without '?', or NULL */
    const char *content_type;   /* for the body, or NULL to send none */
    const char *const *headers; /* extra "Name: value" lines, NULL-terminated, or NULL */
    const void *body;           /* borrowed; may be NULL when body_len == 0 */
    size_t body_len;
    const char *service; /* SigV4 service of the credential scope; NULL = "lambda" */
};

struct nb_client_header {
    char *name;  /* owned */
    char *value; /* owned, surrounding whitespace trimmed */
};

struct nb_client_resp {
    long status;
    struct nb_buf body;
    struct nb_client_header *headers; /* owned, nheaders entries, of the final response only */
    size_t nheaders;
};
/* clang-format off */
#define NB_CLIENT_RESP_INIT {0, NB_BUF_INIT, NULL, 0}
/* clang-format on */

/* Sets up c for endpoint (NULL: $NIMBUS_ENDPOINT, else the default). Returns 0 or -EINVAL when the
 * URL is not http:// or https://. Release with client_release() even on failure. */
int client_init(struct nb_client *c, const char *endpoint, struct nb_err *err);
void client_release(struct nb_client *c);

/* Performs req; resp (initialised with NB_CLIENT_RESP_INIT, or released) receives the answer,
 * whatever its status. Returns 0, -EHOSTUNREACH when no answer arrived, -ECANCELED when
 * *c->cancel was raised. Release resp with client_resp_release(). */
int client_request(struct nb_client *c, const struct nb_client_req *req,
                   struct nb_client_resp *resp, struct nb_err *err);
void client_resp_release(struct nb_client_resp *resp);

/* The value of header name (case-insensitive) in resp, or NULL. Borrowed from resp. */
const char *client_resp_header(const struct nb_client_resp *resp, const char *name);

/* The AWS error of an answer, as botocore reads it: type from x-amzn-ErrorType up to ':', else
 * body code/Code/__type (after '#'); message from body message/Message. Either may come back
 * NULL. Both malloc'd, the caller frees. */
void client_aws_error(const struct nb_client_resp *resp, char **type, char **message);

/* Returns 0 when resp->status is 2xx; else fills err (EREMOTEIO) with "<Type>: <message>", or
 * "HTTP <status>: <body start>" when the answer carries no AWS error, and returns -EREMOTEIO. */
int client_check(const struct nb_client_resp *resp, struct nb_err *err);

/* Parses resp's body as a JSON object. New reference, or NULL with err set (EPROTO). */
json_t *client_resp_json(const struct nb_client_resp *resp, struct nb_err *err);

/*
 * One JSON call: sends body (borrowed; NULL for none) as application/json, checks the status
 * (client_check) and, when out is not NULL and the answer has a body, parses it (new reference in
 * *out, else *out = NULL). resp receives the answer whatever the outcome, so a caller can look at
 * an error's type. Returns 0, or a negative code with err set.
 */
int client_json(struct nb_client *c, const char *method, const char *path, const char *query,
                json_t *body, struct nb_client_resp *resp, json_t **out, struct nb_err *err);

/*
 * One call of a JSON 1.1 service on `POST /` (EventBridge): X-Amz-Target: target (e.g.
 * "AWSEvents.PutRule"), body (borrowed; NULL = {}) as application/x-amz-json-1.1, signed for
 * service ("events"). Otherwise as client_json.
 */
int client_target(struct nb_client *c, const char *service, const char *target, json_t *body,
                  struct nb_client_resp *resp, json_t **out, struct nb_err *err);

/* client_json() for a caller that needs only the outcome and the parsed answer (out may be NULL),
 * not the response itself. */
int client_call(struct nb_client *c, const char *method, const char *path, const char *query,
                json_t *body, json_t **out, struct nb_err *err);

/*
 * Paged listings (a continuation token or marker sent back until the answer has none):
 * client_page_query() returns the query of a page, base ("a=1&b=2", or NULL for none) followed by
 * "param=<token, escaped>" when token is not NULL (malloc'd; NULL when both are NULL).
 * client_next_token() takes the answer's next token (borrowed; NULL or "" at the end): when it is
 * set and differs from *token, it replaces *token (malloc'd or NULL) with a copy and returns true;
 * otherwise it leaves *token alone and returns false (the end, or a server repeating itself).
 */
char *client_page_query(const char *base, const char *param, const char *token);
bool client_next_token(char **token, const char *next);

/* Percent-encodes s as botocore does for path labels and query values: everything but ALPHA,
 * DIGIT and "-._~". malloc'd. */
char *client_escape(const char *s);

#endif

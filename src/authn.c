/*
 * authn.c - request authentication (authn.h): parse the SigV4 parameters, look the key up,
 * check scope (region, service), verify, and shape refusals as Lambda does.
 *
 * Messages follow AWS: unknown key -> UnrecognizedClientException "The security token included
 * in the request is invalid."; unsigned -> MissingAuthenticationTokenException; the rest as
 * sigv4.c words them. The scope's service must match the route so a signature made for one
 * service cannot be replayed against another on the shared listener.
 */
#include "authn.h"

#include <errno.h>

#include "api.h"
#include "authz.h"
#include "daemon.h"
#include "keys.h"
#include "log.h"
#include "sigv4.h"

static const struct nb_key *refuse(struct nb_daemon *d, struct nb_http_req *req,
                                   const struct nb_route_match *m, const char *key_id,
                                   enum nb_sigv4_result r, const char *msg)
{
    const char *type = sigv4_error_type(r);
    authz_refused(d, req, key_id, m->action, authz_resource(d, req, m), type);
    api_error(req, sigv4_error_status(r), type, "%s", msg);
    return NULL;
}

/* The route's service: the action's prefix ("lambda:GetFunction" -> "lambda"). */
static bool service_matches(const char *action, const char *service)
{
    size_t n = strcspn(action, ":");
    if (strlen(service) == n && !strncmp(action, service, n))
        return true;
    return n == 6 && !strncmp(action, "nimbus", 6) && !strcmp(service, "lambda");
}

const struct nb_key *authn_request(struct nb_daemon *d, struct nb_http_req *req,
                                   const struct nb_route_match *m)
{
    struct nb_err err = {0};
    struct nb_sigv4_request sr = {req->method,    req->path, req->query,   req->headers,
                                  req->n_headers, req->body, req->body_len};
    struct nb_sigv4_auth auth;
    enum nb_sigv4_result r = sigv4_parse(&sr, &req->arena, &auth, &err);
    if (r == NB_SIGV4_MISSING)
        return refuse(d, req, m, NULL, r, "Missing Authentication Token");
    if (r != NB_SIGV4_OK)
        return refuse(d, req, m, NULL, r, err.msg);
    const struct nb_key *key = keys_find(d->keys, auth.key_id);
    if (!key)
        return refuse(d, req, m, auth.key_id, NB_SIGV4_UNKNOWN_KEY,
                      "The security token included in the request is invalid.");
    if (strcmp(auth.region, d->cfg.region)) {
        _cleanup_free_ char *msg =
            xasprintf("Credential should be scoped to a valid region, not '%s'. ", auth.region);
        return refuse(d, req, m, key->id, NB_SIGV4_BAD_SIGNATURE, msg);
    }
    if (!service_matches(m->action, auth.service)) {
        _cleanup_free_ char *msg = xasprintf("Credential should be scoped to correct service: "
                                             "'%.*s'. ",
                                             (int)strcspn(m->action, ":"), m->action);
        return refuse(d, req, m, key->id, NB_SIGV4_BAD_SIGNATURE, msg);
    }
    r = sigv4_verify(&sr, &auth, key->secret, (int64_t)time(NULL), keys_cache(d->keys), &err);
    if (r != NB_SIGV4_OK)
        return refuse(d, req, m, key->id, r, err.msg);
    return key;
}

/*
 * authz.c - placeholder authorization (authz.h): allows every authenticated key (root and
 * others) and logs refusals at debug level. The policy engine and audit log replace this file.
 */
#include "authz.h"

#include "daemon.h"
#include "function.h"
#include "http.h"
#include "log.h"
#include "router.h"

bool authz_check(struct nb_daemon *d, struct nb_http_req *req, const char *key_id, bool root,
                 const char *policy, const char *action, const char *resource)
{
    return true;
}

void authz_refused(struct nb_daemon *d, struct nb_http_req *req, const char *key_id,
                   const char *action, const char *resource, const char *type)
{
    log_debug("request refused type=%s key=%s action=%s resource=%s method=%s path=%s", type,
              key_id ? key_id : "-", action ? action : "-", resource ? resource : "-", req->method,
              req->path);
}

const char *authz_resource(struct nb_daemon *d, struct nb_http_req *req,
                           const struct nb_route_match *m)
{
    const char *arn = route_param(m, "ARN");
    if (arn)
        return arn;
    const char *ref = route_param(m, "FunctionName");
    if (!ref)
        return "*";
    _cleanup_free_ char *name = NULL, *qual = NULL, *region = NULL, *account = NULL;
    if (function_parse_ref_arn(ref, &name, &qual, &region, &account, NULL) < 0)
        return "*";
    return arena_printf(&req->arena, "arn:aws:lambda:%s:%s:function:%s%s%s",
                        region ? region : d->cfg.region, account ? account : d->cfg.account_id,
                        name, qual ? ":" : "", qual ? qual : "");
}

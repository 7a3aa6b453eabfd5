/*
 * daemon_fixture.c - see daemon_fixture.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon_fixture.h"

void fixture_daemon_init(struct nb_daemon *d)
{
    memset(d, 0, sizeof(*d));
    char *argv[] = {"serve"};
    struct nb_err err = {0};
    assert_int_equal(config_load(&d->cfg, 1, argv, &err), 0);
    d->fnctx.region = d->cfg.region;
    d->fnctx.account_id = d->cfg.account_id;
    registry_init(d);
}

void fixture_daemon_release(struct nb_daemon *d)
{
    registry_release(d);
    config_release(&d->cfg);
}

struct nb_fn *fixture_add_fn(struct nb_daemon *d, const char *name)
{
    struct nb_err err = {0};
    json_t *req =
        json_pack("{s:s, s:s, s:s, s:s}", "FunctionName", name, "Runtime", "provided.al2023",
                  "Role", "arn:aws:iam::000000000000:role/x", "Handler", "h");
    char hex[65];
    memset(hex, 'a', 64);
    hex[64] = '\0';
    struct nb_function *f = function_new(&d->fnctx, req, hex, "qqqq", 4, &err);
    json_decref(req);
    assert_non_null(f);
    return registry_add(d, f);
}

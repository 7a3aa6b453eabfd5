/*
 * fuzz_function_ref.c - libFuzzer target for function.c's untrusted inputs: the bytes as a
 * FunctionName reference (function_parse_ref_arn), as a CreateFunction body (function_new), and,
 * when that succeeds, as an UpdateFunctionConfiguration body over the result; accepted snapshots
 * are rendered (function_config_json) and taken through the store record and back.
 *
 * Invariants checked: no crash, no leak (ASan), a parsed reference names a valid function name,
 * and a record always reloads to an identical record.
 */
#include <errno.h>

#include "function.h"
#include "util.h"

static const struct nb_function_ctx ctx = {"us-east-1", "123456789012"};
static const char *hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static const char *b64 = "ASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4mrze8=";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_snapshot(struct nb_function *fn)
{
    json_t *o = function_config_json(fn);
    char *text = json_dumps(o, JSON_COMPACT);
    if (!text)
        BUG("config JSON does not serialise");
    free(text);
    json_decref(o);

    char *rec = function_to_record(fn);
    struct nb_err err = {0};
    struct nb_function *back = function_from_record(&ctx, rec, &err);
    if (!back)
        BUG("record does not reload: %s: %s", err.msg, rec);
    char *rec2 = function_to_record(back);
    if (strcmp(rec, rec2) != 0)
        BUG("record round trip differs:\n%s\n%s", rec, rec2);
    free(rec2);
    free(rec);
    function_unref(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = xstrndup((const char *)data, size);

    char *name = NULL, *qual = NULL, *region = NULL, *account = NULL;
    struct nb_err err = {0};
    if (function_parse_ref_arn(s, &name, &qual, &region, &account, &err) == 0) {
        if (!function_name_valid(name))
            BUG("ref '%s' parsed to invalid name '%s'", s, name);
    } else if (err.code != EINVAL) {
        BUG("ref failure with code %d", err.code);
    }
    free(name), free(qual), free(region), free(account);

    json_t *req = json_loadb((const char *)data, size, 0, NULL);
    if (req) {
        struct nb_function *fn = function_new(&ctx, req, hex, b64, (int64_t)size, &err);
        if (fn) {
            check_snapshot(fn);
            struct nb_function *up = function_update_config(fn, req, &err);
            if (up) {
                check_snapshot(up);
                function_unref(up);
            }
            function_unref(fn);
        }
        json_decref(req);
    }
    free(s);
    return 0;
}

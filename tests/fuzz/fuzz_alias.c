/*
 * fuzz_alias.c - libFuzzer target for alias.c's untrusted inputs: the bytes as a CreateAlias body
 * (alias_create), and, when that succeeds, as an UpdateAlias body over the result (alias_update);
 * accepted aliases are rendered (alias_json), rolled back, and taken through the store record and
 * back. The bytes are also read as a stored record (alias_from_record).
 *
 * Invariants checked: no crash, no leak (ASan); an accepted alias has a valid name, never routes
 * to its own version nor from $LATEST, weights stay in [0,1]; a record reloads identically.
 */
#include <errno.h>

#include "alias.h"
#include "util.h"

#define FN_ARN "arn:aws:lambda:us-east-1:123456789012:function:f"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool exists(void *data, const char *v)
{
    (void)data;
    return !strcmp(v, "$LATEST") || !strcmp(v, "1") || !strcmp(v, "2") || !strcmp(v, "10");
}

static void check(const struct nb_alias *a)
{
    if (!alias_name_valid(a->name))
        BUG("accepted invalid alias name '%s'", a->name);
    if (a->to.extra && (!strcmp(a->to.extra, a->to.version) || !strcmp(a->to.version, "$LATEST")))
        BUG("invalid routing %s -> %s", a->to.version, a->to.extra);
    if (!(a->to.weight >= 0 && a->to.weight <= 1))
        BUG("weight %g out of range", a->to.weight);
    json_t *j = alias_json(a);
    char *text = json_dumps(j, JSON_COMPACT);
    if (!text)
        BUG("alias JSON does not serialise");
    free(text);
    json_decref(j);
    char *rec = alias_to_record(a);
    struct nb_err err = {0};
    struct nb_alias *back = alias_from_record(FN_ARN, rec, &err);
    if (!back)
        BUG("record does not reload: %s: %s", err.msg, rec);
    char *rec2 = alias_to_record(back);
    if (strcmp(rec, rec2) != 0)
        BUG("record round trip differs:\n%s\n%s", rec, rec2);
    free(rec2);
    free(rec);
    alias_free(back);
    (void)alias_pick(a, 0.5);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = xstrndup((const char *)data, size);
    struct nb_err err = {0};
    struct nb_alias *stored = alias_from_record(FN_ARN, s, &err);
    alias_free(stored);
    json_t *req = json_loadb((const char *)data, size, 0, NULL);
    if (req) {
        struct nb_alias *a = alias_create(FN_ARN, req, exists, NULL, &err);
        if (a) {
            check(a);
            struct nb_alias *up = alias_update(a, req, exists, NULL, &err);
            if (up) {
                check(up);
                struct nb_alias *rb = alias_rollback(up, exists, NULL, &err);
                if (rb) {
                    check(rb);
                    alias_free(rb);
                }
                alias_free(up);
            }
            alias_free(a);
        } else if (err.code != EINVAL && err.code != ENOENT) {
            BUG("alias_create failure with code %d", err.code);
        }
        json_decref(req);
    }
    free(s);
    return 0;
}

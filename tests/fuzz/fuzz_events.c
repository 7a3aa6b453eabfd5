/*
 * fuzz_events.c - libFuzzer target for the EventBridge requests nimbus parses (rules.c): the bytes
 * as a PutRule body (rules_parse_put, new and over an existing rule), as each entry of a
 * PutTargets Targets list (rules_parse_target), and as a stored rule record (rule_from_record).
 *
 * Invariants checked: no crash, no leak (ASan); an accepted rule has a valid name, a since on a
 * whole minute, at most its predecessor's targets, and its record reloads to the same record; an
 * accepted target names a function.
 */
#include <errno.h>

#include "rules.h"
#include "util.h"

#define NOW 1795711373

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct nb_rule *r)
{
    if (!rules_name_valid(r->name))
        BUG("accepted invalid rule name '%s'", r->name);
    if (r->since_s % 60)
        BUG("since %lld is not on a minute", (long long)r->since_s);
    char *rec = rule_record(r);
    struct nb_err err = {0};
    struct nb_rule *back = rule_from_record(r->name, rec, &err);
    if (!back)
        BUG("record does not reload: %s: %s", err.msg, rec);
    char *rec2 = rule_record(back);
    if (strcmp(rec, rec2))
        BUG("record round trip differs:\n%s\n%s", rec, rec2);
    json_t *j = rule_json(back, "us-east-1", "000000000000", true);
    json_decref(j);
    free(rec2);
    free(rec);
    rule_free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xmalloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    json_t *body = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    struct nb_err err = {0};
    if (json_is_object(body)) {
        struct nb_rule *r = NULL;
        if (rules_parse_put(body, NULL, NOW, &r, &err) == 0) {
            check(r);
            struct nb_rule *r2 = NULL;
            if (rules_parse_put(body, r, NOW + 3600, &r2, &err) == 0) {
                check(r2);
                rule_free(r2);
            }
            rule_free(r);
        }
    }
    json_t *list = json_is_array(body) ? body : json_object_get(body, "Targets");
    size_t i;
    json_t *e;
    json_array_foreach (list, i, e) {
        struct nb_rule_target t;
        const char *code = NULL;
        err_clear(&err);
        int rc = rules_parse_target(e, "us-east-1", "000000000000", NOW, &t, &code, &err);
        if (rc == 0) {
            if (!t.function || !*t.function || !rules_name_valid(t.id))
                BUG("accepted target without a function or a valid id");
            json_decref(rule_target_json(&t));
            rule_target_release(&t);
        }
    }
    err_clear(&err);
    struct nb_rule *r = rule_from_record("r", text, &err);
    rule_free(r);
    json_decref(body);
    free(text);
    return 0;
}

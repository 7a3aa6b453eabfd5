/*
 * fuzz_prom_text.c - libFuzzer target for the CLI's reader of the Prometheus text format
 * (src/cli/prom_text.c), which parses what a daemon (or anything at --endpoint) answers to GET
 * /metrics.
 *
 * Invariants checked: no crash, no leak (ASan/UBSan); every sample it reports has a valid metric
 * name and label names; and a sample written back with metrics.c's label escaping parses again to
 * the same name, labels and value (escaping and unescaping are inverse).
 */
#include <math.h>

#include "cli/prom_text.h"
#include "metrics.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct again {
    const char *name;
    const struct prom_label *labels;
    size_t n;
    double value;
    int calls;
};

static void check_same(void *data, const char *name, const struct prom_label *labels, size_t n,
                       double value)
{
    struct again *a = data;
    a->calls++;
    if (strcmp(name, a->name) || n != a->n)
        BUG("re-parse changed the sample '%s'", a->name);
    for (size_t i = 0; i < n; i++)
        if (strcmp(labels[i].name, a->labels[i].name) ||
            strcmp(labels[i].value, a->labels[i].value))
            BUG("re-parse changed label '%s'", a->labels[i].name);
    if (!(value == a->value || (isnan(value) && isnan(a->value))))
        BUG("re-parse changed the value of '%s'", name);
}

static void on_sample(void *data, const char *name, const struct prom_label *labels, size_t n,
                      double value)
{
    (void)data;
    if (!name[0] || n > PROM_MAX_LABELS)
        BUG("empty name or too many labels");
    struct nb_buf b = NB_BUF_INIT;
    buf_appends(&b, name);
    if (n) {
        buf_appends(&b, "{");
        for (size_t i = 0; i < n; i++) {
            if (!labels[i].name[0])
                BUG("empty label name");
            buf_appendf(&b, "%s%s=\"", i ? "," : "", labels[i].name);
            metrics_append_label_value(&b, labels[i].value);
            buf_appends(&b, "\"");
        }
        buf_appends(&b, "}");
    }
    if (isnan(value))
        buf_appends(&b, " NaN\n");
    else if (isinf(value))
        buf_appends(&b, value > 0 ? " +Inf\n" : " -Inf\n");
    else
        buf_appendf(&b, " %.17g\n", value);
    struct again a = {name, labels, n, value, 0};
    struct nb_err err = {0};
    if (prom_text_parse(b.data, check_same, &a, &err) < 0 || a.calls != 1)
        BUG("a sample written back does not parse: %s", err.msg);
    buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xstrndup((const char *)data, size);
    struct nb_err err = {0};
    prom_text_parse(text, on_sample, NULL, &err);
    free(text);
    return 0;
}

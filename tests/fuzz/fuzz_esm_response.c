/*
 * fuzz_esm_response.c - libFuzzer target for esm.c's untrusted inputs: the bytes as a function's
 * ReportBatchItemFailures response to a batch of three messages (esm_batch_failures), and as a
 * stored mapping record (esm_from_record, then esm_record and back).
 *
 * Invariants checked: no crash, no leak (ASan); an accepted response names only message ids of the
 * batch; a record that loads reloads with the same settings.
 */
#include <errno.h>

#include "esm.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *msgs =
        json_pack("[{s:s}, {s:s}, {s:s}]", "MessageId", "a", "MessageId", "b", "MessageId", "c");
    json_t *failed = NULL;
    if (esm_batch_failures((const char *)data, size, msgs, &failed)) {
        size_t i;
        json_t *v;
        json_array_foreach (failed, i, v) {
            const char *id = json_string_value(v);
            if (!id || (strcmp(id, "a") && strcmp(id, "b") && strcmp(id, "c")))
                BUG("accepted a failure outside the batch");
        }
    }
    json_decref(failed);
    json_decref(msgs);

    char *doc = xmalloc(size + 1);
    memcpy(doc, data, size);
    doc[size] = '\0';
    struct nb_esm *m = esm_from_record("f", "00000000-0000-4000-8000-000000000000", doc);
    if (m) {
        json_t *rec = esm_record(m);
        char *s = json_dumps(rec, JSON_COMPACT);
        struct nb_esm *m2 = s ? esm_from_record("f", m->uuid, s) : NULL;
        if (!m2 || m2->batch_size != m->batch_size || m2->window_s != m->window_s ||
            m2->max_conc != m->max_conc || m2->enabled != m->enabled ||
            strcmp(m2->queue_arn, m->queue_arn))
            BUG("record does not reload");
        esm_release(m2);
        free(s);
        json_decref(rec);
        esm_release(m);
    }
    free(doc);
    return 0;
}

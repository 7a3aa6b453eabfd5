/*
 * prom_text.h - a reader of the Prometheus text exposition format 0.0.4 for the CLI (`nimbus
 * stats` reads the daemon's GET /metrics with it): one callback per sample line with its metric
 * name, unescaped labels and value. Comment lines (HELP, TYPE, others) and empty lines are
 * skipped; a trailing timestamp is ignored.
 *
 * It parses in place: text is modified (NUL terminators, unescaped label values) and the names
 * and values handed to the callback point into it, valid only during the callback. A malformed
 * sample line stops the parse with -EPROTO and the line number in err. It does not check the
 * rules across lines (families, histograms): the daemon's own tests do that.
 */
#ifndef NIMBUS_PROM_TEXT_H
#define NIMBUS_PROM_TEXT_H

#include <stddef.h>

#include "err.h"

#define PROM_MAX_LABELS 16

struct prom_label {
    const char *name, *value;
};

typedef void (*prom_sample_cb)(void *data, const char *name, const struct prom_label *labels,
                               size_t n_labels, double value);

/* Calls cb for each sample of text (NUL-terminated, modified). 0, or -EPROTO with err set. */
int prom_text_parse(char *text, prom_sample_cb cb, void *data, struct nb_err *err);
/* The value of label name among labels, or "" when absent. Borrowed. */
const char *prom_label(const struct prom_label *labels, size_t n, const char *name);

#endif

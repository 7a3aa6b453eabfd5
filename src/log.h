/*
 * log.h - the daemon's own log: one line per event on stderr, "ts=... level=... msg" with the rest
 * of the line in key=value form, journald-friendly. Function output never goes here (see logs.h).
 * Below the configured level the arguments are not evaluated.
 */
#ifndef NIMBUS_LOG_H
#define NIMBUS_LOG_H

#include "util.h"

enum nb_log_level { NB_LOG_ERR = 0, NB_LOG_WARN, NB_LOG_INFO, NB_LOG_DEBUG };

extern enum nb_log_level nb_log_level;

/* Parses "error"/"warn"/"info"/"debug"; returns 0 or -EINVAL. */
int log_parse_level(const char *s, enum nb_log_level *out);
void nb__log(enum nb_log_level lvl, const char *fmt, ...) PRINTF_LIKE(2, 3);

#define nb__log_at(lvl, ...)                                                                       \
    do {                                                                                           \
        if ((lvl) <= nb_log_level)                                                                 \
            nb__log((lvl), __VA_ARGS__);                                                           \
    } while (0)
#define log_err(...) nb__log_at(NB_LOG_ERR, __VA_ARGS__)
#define log_warn(...) nb__log_at(NB_LOG_WARN, __VA_ARGS__)
#define log_info(...) nb__log_at(NB_LOG_INFO, __VA_ARGS__)
#define log_debug(...) nb__log_at(NB_LOG_DEBUG, __VA_ARGS__)

#endif

/*
 * log.c - formatting of daemon log lines. Writes each line with a single write(2) so concurrent
 * writers (worker threads, the spawner) never interleave within a line.
 */
#include "log.h"

#include <errno.h>
#include <string.h>

enum nb_log_level nb_log_level = NB_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_parse_level(const char *s, enum nb_log_level *out)
{
    for (size_t i = 0; i < ARRAY_SIZE(level_names); i++) {
        if (!strcmp(s, level_names[i])) {
            *out = (enum nb_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void nb__log(enum nb_log_level lvl, const char *fmt, ...)
{
    char line[2048];
    char ts[40];
    fmt_iso8601_ms(now_ms(), ts, sizeof(ts));
    int n = snprintf(line, sizeof(line), "ts=%s level=%s ", ts, level_names[lvl]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    (void)write_all(STDERR_FILENO, line, len);
}

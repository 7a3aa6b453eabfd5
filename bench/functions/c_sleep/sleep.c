/*
 * sleep.c - benchmark function (runtime provided.al2023, C runtime library): sleeps for the
 * event's "ms" field (a plain text match, 0 when absent) and answers {"slept":ms}. With ms = 0 it
 * is the trivial function of the warm-path benchmark.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nimbus_runtime.h"

static long asked_ms(const char *json)
{
    const char *p = strstr(json, "\"ms\"");
    if (!p)
        return 0;
    p = strchr(p + 4, ':');
    return p ? strtol(p + 1, NULL, 10) : 0;
}

static int handler(const struct nb_invocation *inv, struct nb_response *out)
{
    long ms = asked_ms(inv->payload);
    if (ms > 0) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return nb_response_printf(out, "{\"slept\":%ld}", ms);
}

int main(void)
{
    return nb_runtime_run(handler);
}

/*
 * hello.c - the C "hello" example: a `provided.al2023` function built on nimbus' C runtime library.
 * It logs one line, answers a JSON document that echoes the event and a few invocation fields, and
 * fails with errorType "HelloError" when the event contains "fail": true. (It does not parse JSON:
 * asked_to_fail() is a plain text match, good enough for an example.)
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "nimbus_runtime.h"

/* true if the text contains "fail" followed by optional blanks, ':', optional blanks and true */
static bool asked_to_fail(const char *json)
{
    for (const char *p = strstr(json, "\"fail\""); p; p = strstr(p + 1, "\"fail\"")) {
        const char *q = p + strlen("\"fail\"");
        q += strspn(q, " \t\r\n");
        if (*q != ':')
            continue;
        q++;
        q += strspn(q, " \t\r\n");
        if (strncmp(q, "true", 4) == 0)
            return true;
    }
    return false;
}

static int handler(const struct nb_invocation *inv, struct nb_response *out)
{
    printf("hello from C: request %s, %" PRId64 " ms left\n", inv->request_id,
           nb_remaining_ms(inv));
    if (asked_to_fail(inv->payload))
        return nb_response_error(out, "HelloError", "the event asked me to fail");
    return nb_response_printf(out,
                              "{\"message\":\"hello from C\",\"request_id\":\"%s\","
                              "\"invoked_function_arn\":\"%s\",\"remaining_ms\":%" PRId64
                              ",\"event\":%s}",
                              inv->request_id, inv->invoked_arn, nb_remaining_ms(inv),
                              inv->payload_len ? inv->payload : "null");
}

int main(void)
{
    return nb_runtime_run(handler);
}

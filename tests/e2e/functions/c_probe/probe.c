/*
 * probe.c - the C function of the invocation e2e tests: a `provided.al2023` bootstrap built on
 * nimbus' C runtime library (runtimes/c). It answers one JSON line built from the invocation
 * (request id, invoked ARN, remaining time, client context, a few environment variables and the
 * event verbatim); an event containing "fail" fails with errorType "ProbeError", one containing
 * "crash" ends the runtime with exit status 3.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nimbus_runtime.h"

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v ? v : dflt;
}

static int handler(const struct nb_invocation *inv, struct nb_response *out)
{
    printf("c probe: request %s\n", inv->request_id);
    if (strstr(inv->payload, "crash")) {
        fflush(stdout);
        _exit(3); /* not exit(): under ASan, LeakSanitizer's atexit check cannot run in a
                   * sandbox (no ptrace) and would turn the status into 1 */
    }
    if (strstr(inv->payload, "fail"))
        return nb_response_error(out, "ProbeError", "c probe was asked to fail");
    return nb_response_printf(
        out,
        "{\"request_id\":\"%s\",\"invoked_arn\":\"%s\",\"remaining_ms\":%" PRId64
        ",\"client_context\":%s,\"function_name\":\"%s\",\"memory\":\"%s\",\"handler\":\"%s\","
        "\"execution_env\":\"%s\",\"event\":%s}",
        inv->request_id, inv->invoked_arn, nb_remaining_ms(inv),
        inv->client_context ? inv->client_context : "null", env_or("AWS_LAMBDA_FUNCTION_NAME", ""),
        env_or("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", ""), env_or("_HANDLER", ""),
        env_or("AWS_EXECUTION_ENV", "<unset>"), inv->payload_len ? inv->payload : "null");
}

int main(void)
{
    return nb_runtime_run(handler);
}

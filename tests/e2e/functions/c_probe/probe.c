/*
 * probe.c - the C function of the invocation e2e tests: a `provided.al2023` bootstrap built on
 * nimbus' C runtime library (runtimes/c). It answers one JSON line built from the invocation
 * (request id, invoked ARN, remaining time, client context, a few environment variables and the
 * event verbatim); an event containing "fail" fails with errorType "ProbeError", one containing
 * "crash" ends the runtime with exit status 3, one containing "transport" is answered with the
 * kind of socket the runtime library talks to the Runtime API on ("unix" or "tcp": a socket fd of
 * this process found in /proc/self/net/unix or /proc/self/net/tcp). With PROBE_TCP set, main()
 * removes NIMBUS_RUNTIME_API_SOCKET first, so the library falls back to AWS_LAMBDA_RUNTIME_API.
 */
#include <dirent.h>
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

/* Whether /proc/self/net/<table> lists a socket inode among inodes[0..n). */
static int listed(const char *table, const unsigned long *inodes, size_t n)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/self/net/%s", table);
    FILE *f = fopen(path, "re");
    int found = 0;
    while (f && !found && fgets(line, sizeof(line), f)) {
        unsigned long ino = 0;
        /* unix: Num RefCount Protocol Flags Type St Inode; tcp: inode is the 10th column */
        int ok = strcmp(table, "unix") == 0
                     ? sscanf(line, "%*s %*s %*s %*s %*s %*s %lu", &ino) == 1
                     : sscanf(line, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %lu", &ino) == 1;
        for (size_t i = 0; ok && i < n; i++)
            found |= inodes[i] == ino;
    }
    if (f)
        fclose(f);
    return found;
}

static const char *transport(void)
{
    unsigned long inodes[64];
    size_t n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d)) && n < 64) {
        char path[300], target[64] = {0};
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        if (readlink(path, target, sizeof(target) - 1) > 0 &&
            sscanf(target, "socket:[%lu]", &inodes[n]) == 1)
            n++;
    }
    if (d)
        closedir(d);
    return listed("unix", inodes, n) ? "unix" : listed("tcp", inodes, n) ? "tcp" : "none";
}

static int handler(const struct nb_invocation *inv, struct nb_response *out)
{
    printf("c probe: request %s\n", inv->request_id);
    if (strstr(inv->payload, "crash")) {
        fflush(stdout);
        _exit(3); /* not exit(): under ASan, LeakSanitizer's atexit check cannot run in a
                   * sandbox (no ptrace) and would turn the status into 1 */
    }
    if (strstr(inv->payload, "transport"))
        return nb_response_printf(out, "{\"transport\":\"%s\",\"socket_env\":\"%s\"}", transport(),
                                  env_or("NIMBUS_RUNTIME_API_SOCKET", "<unset>"));
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
    if (getenv("PROBE_TCP"))
        unsetenv("NIMBUS_RUNTIME_API_SOCKET");
    return nb_runtime_run(handler);
}

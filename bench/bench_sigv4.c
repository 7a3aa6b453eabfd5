/*
 * bench_sigv4.c - CPU cost of verifying one SigV4-signed Invoke request (sigv4_parse +
 * sigv4_verify), as the daemon does it on the loop thread: with the signing-key cache (the
 * steady state) and without it (first request of a key on a new day), for a small and a 256 KiB
 * payload. Prints microseconds per verification.
 *
 * usage: build/bench/bench_sigv4 [ITERATIONS]
 */
#include <time.h>

#include "sigv4.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void run(const char *label, size_t body_len, bool cached, long iters)
{
    char *body = xmalloc(body_len + 1);
    memset(body, 'x', body_len);
    body[body_len] = '\0';
    int64_t t = (int64_t)time(NULL);
    char amz[17];
    sigv4_amz_date(t, amz);
    char clen[32];
    snprintf(clen, sizeof(clen), "%zu", body_len);
    struct nb_http_header h[7] = {
        {"Host", "127.0.0.1:9000"},
        {"User-Agent", "Boto3/1.26.27 Python/3.11.2 Linux/6.1.0 Botocore/1.29.27"},
        {"Content-Type", "application/json"},
        {"X-Amz-Date", amz},
        {"Content-Length", clen},
        {"Accept-Encoding", "identity"},
    };
    const char *path = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3A"
                       "function%3Awarm-c/invocations";
    struct nb_sigv4_request r = {"POST", path, "", h, 6, body, body_len};
    char *authz = sigv4_sign(&r, "content-type;host;x-amz-date", NULL, "NKIABENCHBENCHBENCH",
                             "secretsecretsecretsecretsecretsecret1234", "us-east-1", "lambda", t);
    h[6] = (struct nb_http_header){"Authorization", authz};
    r.n_headers = 7;
    struct nb_sigv4_cache *cache = xcalloc(1, sizeof(*cache));
    double t0 = now_s();
    for (long i = 0; i < iters; i++) {
        struct nb_arena a;
        arena_init(&a);
        struct nb_sigv4_auth auth;
        struct nb_err err = {0};
        if (sigv4_parse(&r, &a, &auth, &err) != NB_SIGV4_OK ||
            sigv4_verify(&r, &auth, "secretsecretsecretsecretsecretsecret1234", t,
                         cached ? cache : NULL, &err) != NB_SIGV4_OK)
            BUG("verification failed: %s", err.msg);
        arena_release(&a);
    }
    double dt = now_s() - t0;
    printf("  %-44s %8.2f us/request\n", label, dt / (double)iters * 1e6);
    free(cache);
    free(authz);
    free(body);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    printf("## SigV4 verification (parse + verify), %ld iterations\n", n);
    run("Invoke, 9-byte body, signing key cached", 9, true, n);
    run("Invoke, 9-byte body, no cache (HMAC chain)", 9, false, n);
    run("Invoke, 256 KiB body, signing key cached", 256 * 1024, true, n / 100 + 1);
    return 0;
}

/*
 * invoke.c - one invocation from admission to its completion: delivery to the runtime, the
 * timeout, the START/END/REPORT lines, the Tail log and the reply headers.
 *
 * Ownership: an invocation is created by invoke_new() for a caller that admitted it (counters in
 * the daemon and the function's pool): api_invoke.c for a synchronous client, async.c for a
 * queued event. It is completed exactly once, by invoke_complete() or invoke_fail(), which
 * release the admission, detach it from its instance and free it once its timer handle closed.
 *
 * One completion path: every end of an invocation goes through invoke_complete (a function
 * result, error or timeout) or invoke_fail (a platform error), which hand the outcome to exactly
 * one receiver: the HTTP client if there is one (inv->client), else inv->on_done (asynchronous
 * invocations, called before the invocation is freed and its admission released). The sync path
 * does no extra work. Loop thread only.
 */
#include <errno.h>
#include <math.h>

#include "api.h"
#include "codec.h"
#include "daemon.h"
#include "instance.h"
#include "log.h"
#include "logs.h"
#include "prewarm.h"

#define TAIL_BYTES 4096
#define MB (1024.0 * 1024.0)

char *invoke_error_json(const char *type, const char *msg, size_t *len)
{
    json_t *o = json_pack("{s:s, s:s}", "errorType", type, "errorMessage", msg);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        BUG("json_dumps failed");
    *len = strlen(s);
    return s;
}

void invoke_log_line(struct nb_invocation *inv, const char *line, size_t len)
{
    const char *stream = inv->inst ? inv->inst->log_stream : "platform";
    logs_write(inv->d->logs, inv->fn->name, stream, now_ms(), line, len);
    if (!inv->tail)
        return;
    buf_append(&inv->log, line, len);
    buf_append(&inv->log, "\n", 1);
    if (inv->log.len > 4 * TAIL_BYTES) {
        size_t drop = inv->log.len - TAIL_BYTES;
        memmove(inv->log.data, inv->log.data + drop, TAIL_BYTES);
        inv->log.len = TAIL_BYTES;
        inv->log.data[inv->log.len] = '\0';
    }
}

static void log_linef(struct nb_invocation *inv, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void log_linef(struct nb_invocation *inv, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    invoke_log_line(inv, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* A log line made of up to four strings, without printf: START and END, once per invocation each
 * (cut at the buffer like log_linef). */
static void log_concat(struct nb_invocation *inv, const char *a, const char *b, const char *c,
                       const char *d)
{
    char line[512];
    size_t n = 0;
    const char *parts[] = {a, b, c, d};
    for (size_t i = 0; i < ARRAY_SIZE(parts) && parts[i]; i++) {
        size_t k = strlen(parts[i]);
        if (k > sizeof(line) - 1 - n)
            k = sizeof(line) - 1 - n;
        memcpy(line + n, parts[i], k);
        n += k;
    }
    invoke_log_line(inv, line, n);
}

static void log_start(struct nb_invocation *inv)
{
    log_concat(inv, "START RequestId: ", inv->request_id, " Version: ", inv->cfg->version);
}

static void on_timeout(uv_timer_t *t)
{
    struct nb_invocation *inv = t->data;
    struct nb_instance *inst = inv->inst;
    char ts[40], msg[160];
    fmt_iso8601_ms(now_ms(), ts, sizeof(ts));
    double secs = (double)(mono_ns() - inv->admitted_ns) / 1e9;
    if (!inv->start_ns) {
        /* timed out before delivery (a slow init): START still opens the invocation's lines */
        log_start(inv);
        inv->start_ns = mono_ns();
    }
    log_linef(inv, "%s %s Task timed out after %.2f seconds", ts, inv->request_id, secs);
    snprintf(msg, sizeof(msg), "RequestId: %s Error: Task timed out after %d.00 seconds",
             inv->request_id, inv->cfg->timeout_s);
    size_t len;
    char *body = invoke_error_json("Sandbox.Timedout", msg, &len);
    invoke_complete(inv, NB_TIMEOUT, body, len);
    if (inst)
        instance_kill(inst, "timeout");
}

/* Appends v in lowercase hex, exactly `digits` digits (the low ones), at p; returns the end. */
static char *put_hex(char *p, uint64_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--) {
        p[i] = hex[v & 15];
        v >>= 4;
    }
    return p + digits;
}

/* Appends v in decimal at p; returns the end. */
static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* Appends ms with two decimals (rounded to the nearest hundredth) at p; returns the end. */
static char *put_ms(char *p, double ms)
{
    uint64_t c = ms > 0 ? (uint64_t)(ms * 100.0 + 0.5) : 0;
    p = put_u64(p, c / 100);
    *p++ = '.';
    *p++ = (char)('0' + c / 10 % 10);
    *p++ = (char)('0' + c % 10);
    return p;
}

static void make_trace_id(struct nb_invocation *inv, const char *given)
{
    if (given && strlen(given) < sizeof(inv->trace_id) && strncmp(given, "Root=", 5) == 0) {
        snprintf(inv->trace_id, sizeof(inv->trace_id), "%s", given);
        return;
    }
    /* Root=1-<8 hex epoch secs>-<24 hex>;Parent=<16 hex>;Sampled=0, without printf: once per
     * invocation (82 bytes with the NUL; trace_id holds more) */
    char *p = inv->trace_id;
    memcpy(p, "Root=1-", 7);
    p = put_hex(p + 7, now_ms() / 1000, 8);
    *p++ = '-';
    p = put_hex(p, random_u64(), 16);
    p = put_hex(p, random_u64(), 8);
    memcpy(p, ";Parent=", 8);
    p = put_hex(p + 8, random_u64(), 16);
    memcpy(p, ";Sampled=0", 11);
}

struct nb_invocation *invoke_new(struct nb_daemon *d, struct nb_fn *fn, struct nb_function *cfg,
                                 const char *request_id, char *payload, size_t payload_len,
                                 const char *trace)
{
    struct nb_invocation *inv = xcalloc(1, sizeof(*inv));
    inv->d = d;
    fn_ref(fn);
    inv->fn = fn;
    inv->cfg = function_ref(cfg);
    if (request_id)
        snprintf(inv->request_id, sizeof(inv->request_id), "%s", request_id);
    else
        uuid_v4(inv->request_id);
    make_trace_id(inv, trace);
    if (payload) {
        inv->payload = payload;
        inv->payload_len = payload_len;
    } else {
        inv->payload = xstrdup("{}");
        inv->payload_len = 2;
    }
    uv_timer_init(d->loop, &inv->timer);
    inv->timer.data = inv;
    return inv;
}

void invoke_start(struct nb_invocation *inv)
{
    inv->admitted_ns = mono_ns();
    inv->deadline_ms = now_ms() + (uint64_t)inv->cfg->timeout_s * 1000;
    invoke_arm_timeout(inv);
    bool attached;
    struct nb_instance *inst = prewarm_route(inv, pool_take_idle(inv->fn, inv->cfg), &attached);
    if (inst)
        instance_assign(inst, inv);
    else if (!attached)
        instance_start(inv->d, inv);
}

void invoke_arm_timeout(struct nb_invocation *inv)
{
    uv_timer_start(&inv->timer, on_timeout, (uint64_t)inv->cfg->timeout_s * 1000, 0);
}

void invoke_deliver(struct nb_instance *inst, struct nb_invocation *inv)
{
    struct nb_http_req *next = steal_ptr(inst->next_req);
    ASSERT(next);
    next->on_abort = NULL;
    inst->state = INST_BUSY;
    inst->invocations++;
    inv->start_ns = mono_ns();
    log_start(inv);
    char deadline[24];
    *put_u64(deadline, inv->deadline_ms) = '\0';
    struct nb_http_header h[8];
    size_t n = 0;
    h[n++] = (struct nb_http_header){"Content-Type", "application/json"};
    h[n++] = (struct nb_http_header){"Lambda-Runtime-Aws-Request-Id", inv->request_id};
    h[n++] = (struct nb_http_header){"Lambda-Runtime-Deadline-Ms", deadline};
    h[n++] = (struct nb_http_header){"Lambda-Runtime-Invoked-Function-Arn",
                                     inv->invoked_arn ? inv->invoked_arn : inv->cfg->arn};
    h[n++] = (struct nb_http_header){"Lambda-Runtime-Trace-Id", inv->trace_id};
    if (inv->client_context)
        h[n++] = (struct nb_http_header){"Lambda-Runtime-Client-Context", inv->client_context};
    http_reply_owned(next, 200, h, n, steal_ptr(inv->payload), inv->payload_len);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct nb_invocation *inv = h->data;
    free(inv->payload);
    free(inv->client_context);
    free(inv->invoked_arn);
    buf_release(&inv->log);
    function_unref(inv->cfg);
    fn_unref(inv->fn);
    free(inv);
}

/* Releases admission and the instance link; frees inv (after its timer closed). */
static void finish(struct nb_invocation *inv)
{
    struct nb_daemon *d = inv->d;
    inv->done = true;
    pool_release(d, inv->fn, inv->cfg);
    if (inv->cold_path)
        prewarm_cold_done(inv);
    if (inv->inst && inv->inst->inv == inv)
        inv->inst->inv = NULL;
    inv->inst = NULL;
    if (inv->client) {
        inv->client->on_abort = NULL;
        inv->client = NULL;
    }
    uv_timer_stop(&inv->timer);
    uv_close((uv_handle_t *)&inv->timer, on_timer_closed);
}

static uint64_t max_memory_mb(struct nb_invocation *inv)
{
    uint64_t bytes = 0;
    if (inv->inst && inv->inst->cg.dirs[0])
        cgroup_max_usage(&inv->inst->cg, &bytes, NULL);
    return (uint64_t)ceil((double)bytes / MB);
}

/* "REPORT RequestId: <id>\tDuration: <ms> ms\tBilled Duration: <n> ms\tMemory Size: <n> MB\t
 * Max Memory Used: <n> MB\t[Init Duration: <ms> ms\t]", without printf (once per invocation). */
static void log_report(struct nb_invocation *inv, double ms, uint64_t billed)
{
    char line[320], *p = line; /* 36-byte id, 20-digit numbers: under 300 */
#define PUT(lit) (memcpy(p, lit, sizeof(lit) - 1), p += sizeof(lit) - 1)
    PUT("REPORT RequestId: ");
    size_t idlen = strlen(inv->request_id);
    memcpy(p, inv->request_id, idlen);
    p += idlen;
    PUT("\tDuration: ");
    p = put_ms(p, ms);
    PUT(" ms\tBilled Duration: ");
    p = put_u64(p, billed);
    PUT(" ms\tMemory Size: ");
    p = put_u64(p, (uint64_t)inv->cfg->memory_mb);
    PUT(" MB\tMax Memory Used: ");
    p = put_u64(p, max_memory_mb(inv));
    PUT(" MB\t");
    if (inv->init_ms > 0) {
        PUT("Init Duration: ");
        p = put_ms(p, inv->init_ms);
        PUT(" ms\t");
    }
#undef PUT
    invoke_log_line(inv, line, (size_t)(p - line));
}

void invoke_complete(struct nb_invocation *inv, enum nb_outcome outcome, char *body, size_t len)
{
    ASSERT(!inv->done);
    double ms = inv->start_ns ? (double)(mono_ns() - inv->start_ns) / 1e6 : 0.0;
    if (outcome == NB_TIMEOUT && ms > inv->cfg->timeout_s * 1000.0)
        ms = inv->cfg->timeout_s * 1000.0;
    metrics_invocation(inv->d, inv->fn, inv->cfg, outcome, ms);
    uint64_t billed = (uint64_t)ceil(ms);
    if (billed == 0)
        billed = 1;
    /* Never delivered (init failed or timed out, no bootstrap): Lambda still prints START, after
     * whatever the failed init wrote. */
    if (!inv->start_ns)
        log_start(inv);
    log_concat(inv, "END RequestId: ", inv->request_id, NULL, NULL);
    log_report(inv, ms, billed);
    if (!inv->client && inv->on_done) {
        struct nb_inv_result res = {200, outcome, NULL, body ? body : "", body ? len : 0};
        inv->on_done(inv, &res);
        free(body);
    } else if (inv->client) {
        struct nb_http_header h[6];
        size_t n = 0;
        h[n++] = (struct nb_http_header){"Content-Type", "application/json"};
        h[n++] = (struct nb_http_header){"x-amzn-RequestId", inv->request_id};
        h[n++] = (struct nb_http_header){"X-Amz-Executed-Version", inv->cfg->version};
        if (outcome != NB_OK)
            h[n++] = (struct nb_http_header){"X-Amz-Function-Error", "Unhandled"};
        _cleanup_free_ char *tail = NULL;
        if (inv->tail) {
            size_t off = inv->log.len > TAIL_BYTES ? inv->log.len - TAIL_BYTES : 0;
            tail = b64_encode(inv->log.data ? inv->log.data + off : "", inv->log.len - off);
            h[n++] = (struct nb_http_header){"X-Amz-Log-Result", tail};
        }
        struct nb_http_req *client = inv->client;
        client->on_abort = NULL;
        inv->client = NULL;
        http_reply_owned(client, 200, h, n, body ? body : xstrdup(""), body ? len : 0);
    } else {
        free(body);
    }
    finish(inv);
}

void invoke_fail(struct nb_invocation *inv, int status, const char *type, const char *msg)
{
    ASSERT(!inv->done);
    if (inv->client) {
        struct nb_http_req *client = inv->client;
        client->on_abort = NULL;
        inv->client = NULL;
        api_error(client, status, type, "%s", msg);
    } else if (inv->on_done) {
        struct nb_inv_result res = {status, NB_OK, type, msg, strlen(msg)};
        inv->on_done(inv, &res);
    }
    finish(inv);
}

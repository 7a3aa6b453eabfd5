/*
 * nimbus_runtime.h - the public API of nimbus' C runtime library for Lambda functions written in C.
 *
 * A C function is an executable named `bootstrap` (runtime `provided*`) whose main() hands a
 * handler to nb_runtime_run():
 *
 *     static int handler(const struct nb_invocation *inv, struct nb_response *out)
 *     {
 *         return nb_response_printf(out, "{\"echo\":%.*s}", (int)inv->payload_len, inv->payload);
 *     }
 *     int main(void) { return nb_runtime_run(handler); }
 *
 * The library speaks the Lambda Runtime API (GET next, POST response/error, POST init/error)
 * over one keep-alive HTTP/1.1 connection to $AWS_LAMBDA_RUNTIME_API (on nimbus: to the Unix socket
 * $NIMBUS_RUNTIME_API_SOCKET, the same API without loopback TCP); it works unchanged on AWS
 * Lambda, on the AWS Runtime Interface Emulator and on nimbus. It depends on libc and llhttp only
 * (linked statically into libnimbus_runtime.a), so a function starts in well under a millisecond.
 *
 * Ownership: everything in struct nb_invocation is owned by the runtime and valid only until the
 * handler returns (copy what you keep). struct nb_response is owned by the runtime; the
 * nb_response_* setters copy their arguments. The library is not thread-safe: call it from one
 * thread.
 */
#ifndef NIMBUS_RUNTIME_H
#define NIMBUS_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NB_RUNTIME_VERSION "0.1.0"

/* One invocation, as delivered by GET /runtime/invocation/next. Optional fields are NULL when the
 * platform did not send them. */
struct nb_invocation {
    const char *request_id;       /* Lambda-Runtime-Aws-Request-Id; never NULL */
    int64_t deadline_ms;          /* Lambda-Runtime-Deadline-Ms: Unix epoch milliseconds */
    const char *invoked_arn;      /* Lambda-Runtime-Invoked-Function-Arn ("" if absent) */
    const char *trace_id;         /* Lambda-Runtime-Trace-Id; also set as _X_AMZN_TRACE_ID */
    const char *client_context;   /* Lambda-Runtime-Client-Context: raw JSON text */
    const char *cognito_identity; /* Lambda-Runtime-Cognito-Identity: raw JSON text */
    const char *tenant_id;        /* Lambda-Runtime-Aws-Tenant-Id */
    const char *content_type;     /* of the payload; "application/json" if absent */
    const char *payload;          /* event bytes, NUL-terminated for convenience (never NULL) */
    size_t payload_len;           /* excluding that NUL */
};

/* What the handler answers. Use the setters below; the fields are private to the library. */
struct nb_response {
    char *body;
    size_t body_len;
    char *content_type; /* NULL = "application/json" */
    char *error_type;   /* non-NULL = the invocation failed */
    char *error_message;
};

/* The handler: fill `out` and return 0 for success. A non-zero return, or an error set with
 * nb_response_error(), fails the invocation; a non-zero return without an error set is reported as
 * errorType "HandlerError". A success without a body answers the JSON text `null`. */
typedef int (*nb_handler_cb)(const struct nb_invocation *inv, struct nb_response *out);

/*
 * Runs the Runtime API loop for ever: next -> handler -> response/error. Returns only when the
 * Runtime API cannot be used any more (connection refused or lost, a 5xx on next), with a
 * non-zero exit status for main() to return; the reason is printed on stderr. Sets stdout to line
 * buffering so the handler's printf() lines reach the function's log one by one.
 */
int nb_runtime_run(nb_handler_cb handler);

/*
 * Reports a failed initialisation (POST /runtime/init/error) for code that sets up state before
 * calling nb_runtime_run() (reading config, opening files). Returns the exit status main() should
 * return (1). error_type should look like "Runtime.Something" or "Function.Something"; message is a
 * printf format.
 */
int nb_runtime_init_error(const char *error_type, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Milliseconds until the invocation's deadline (0 once it has passed). */
int64_t nb_remaining_ms(const struct nb_invocation *inv);

/* Sets the response body (copied). Returns 0. */
int nb_response_set(struct nb_response *out, const void *body, size_t len);
/* Sets the response body from a printf format. Returns 0, or -1 if formatting failed. */
int nb_response_printf(struct nb_response *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Sets the response's Content-Type (copied); the default is application/json. */
void nb_response_set_content_type(struct nb_response *out, const char *content_type);
/* Fails the invocation with {"errorType":error_type,"errorMessage":<fmt...>}. Returns -1 so a
 * handler can `return nb_response_error(out, "InvalidInput", "no field '%s'", "name");`. */
int nb_response_error(struct nb_response *out, const char *error_type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif

#endif

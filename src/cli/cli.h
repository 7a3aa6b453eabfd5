/*
 * cli.h - the nimbus command line: the subcommand table, the exit-code contract and the one place
 * where a subcommand's error is reported.
 *
 * `nimbus CMD ARGS...` looks CMD up in the table of cli.c and calls its function with argv[0] set
 * to CMD. Each subcommand is one file (cmd_<name>.c); it parses its own options (getopt_long, with
 * CLI_COMMON_OPTIONS), does its work through the library, and returns an exit code. A subcommand
 * that fails fills a struct nb_err and hands it to cli_report(), which prints it once on stderr and
 * picks the exit code; nothing below a subcommand prints errors.
 *
 * Exit codes: 0 ok, 1 the function failed (X-Amz-Function-Error), 2 usage or bad local input,
 * 3 platform error (nimbus unreachable or it answered with an error).
 */
#ifndef NIMBUS_CLI_H
#define NIMBUS_CLI_H

#include <getopt.h>
#include <jansson.h>

#include "err.h"

enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FUNCTION = 1,
    CLI_EXIT_USAGE = 2,
    CLI_EXIT_PLATFORM = 3,
};

/* A subcommand: argv[0] is its name; returns an exit code (enum cli_exit for client commands). */
typedef int (*cli_cmd_cb)(int argc, char **argv);

struct nb_cli_cmd {
    const char *name;
    cli_cmd_cb fn;
    const char *summary; /* one line for `nimbus --help` */
};

/* The whole CLI: global options (--help, --version, --endpoint URL), then dispatch. */
int cli_main(int argc, char **argv);

/* The subcommands. serve and config belong to the daemon side (cmd_serve.c, cmd_config.c). */
int cmd_serve(int argc, char **argv);
int cmd_config(int argc, char **argv);
/* Loads the daemon settings (config.h) for `serve` and `config`: -1 when loaded (go on; release
 * cfg later), otherwise the exit status to return at once: 0 after --help (usage_head, then the
 * settings, on stdout), 2 for a bad setting (reported on stderr). cfg is released then. */
struct nb_config;
int cli_load_config(struct nb_config *cfg, int argc, char **argv, const char *usage_head);
int cmd_deploy(int argc, char **argv);
int cmd_invoke(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_publish(int argc, char **argv);
int cmd_alias(int argc, char **argv);
int cmd_route(int argc, char **argv);
int cmd_schedule(int argc, char **argv);
int cmd_rollback(int argc, char **argv);
int cmd_queue(int argc, char **argv);

/* Options every client subcommand accepts; getopt_long returns CLI_OPT_ENDPOINT / 'h' for them. */
#define CLI_OPT_ENDPOINT 0x100
/* clang-format off */
#define CLI_COMMON_OPTIONS \
    {"endpoint", required_argument, NULL, CLI_OPT_ENDPOINT}, {"help", no_argument, NULL, 'h'}
/* clang-format on */
/* The usage line for them, to append to a subcommand's usage text. */
#define CLI_COMMON_HELP                                                                            \
    "  --endpoint URL       nimbus API endpoint (default: $NIMBUS_ENDPOINT, else\n"                \
    "                       http://127.0.0.1:9000)\n"                                              \
    "  -h, --help           show this help\n"

/* Prints usage to stdout; returns CLI_EXIT_OK (for --help). */
int cli_help(const char *usage);
/* Prints "error: <message>" and then usage on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *usage, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Reports a getopt_long failure (unknown option / missing argument) for argv; returns
 * CLI_EXIT_USAGE. Call it when getopt_long returns '?' or ':' (optstring must start with ':'). */
int cli_bad_option(const char *usage, int c, char **argv);
/*
 * Prints "error: <err->msg>" once on stderr and returns the exit code for err->code:
 * EREMOTEIO (nimbus answered with an error), EHOSTUNREACH (cannot reach it) and EPROTO (an answer
 * that makes no sense) are platform errors (3); every other code is bad local input (2), such as
 * a missing file or a value nimbus would refuse anyway.
 */
int cli_report(const struct nb_err *err);

/*
 * The shared run of a client subcommand:
 *   1. options: its own getopt_long loop, whose default case is cli_common_option(), or
 *      cli_common_args() when it takes only CLI_COMMON_OPTIONS;
 *   2. struct nb_client cl; int r = client_init(&cl, endpoint, &err); if (r == 0) r = work(...);
 *      with the requests made through client_call()/client_json() (client.h);
 *   3. return cli_finish(&cl, r, &err);
 * so every failure is reported once, by cli_report(), with its exit code.
 */
struct nb_client;

/* Handles an option of CLI_COMMON_OPTIONS, or any other getopt_long result c a subcommand does not
 * know (its switch's default case): -1 after --endpoint (*endpoint = optarg; go on), otherwise
 * the exit code to return at once: CLI_EXIT_OK after --help, CLI_EXIT_USAGE for a bad option. */
int cli_common_option(int c, const char *usage, char **argv, const char **endpoint);

/* Parses argv for a subcommand whose only options are CLI_COMMON_OPTIONS. Returns -1 when its
 * operands start at argv[optind] (go on; *endpoint set, NULL when not given), otherwise the exit
 * code to return at once: CLI_EXIT_OK after --help, CLI_EXIT_USAGE for a bad option. */
int cli_common_args(int argc, char **argv, const char *usage, const char **endpoint);

/* Releases c (set up by client_init(), whatever that returned) and returns the exit code of r:
 * CLI_EXIT_OK when r >= 0, else cli_report(err). */
int cli_finish(struct nb_client *c, int r, const struct nb_err *err);

/* DELETE "<path_prefix>/<NAME>" (NAME escaped) for each of the n names, in order: prints
 * "deleted NAME" for each success (stdout flushed after each), reports each failure once and goes
 * on, except that it stops when nimbus is unreachable. Returns the exit code of the last failure,
 * CLI_EXIT_OK when every delete succeeded. */
int cli_delete_each(struct nb_client *c, const char *path_prefix, char *const *names, int n);

/* Prints j on stdout as indented JSON, then a newline. */
void cli_print_json(const json_t *j);

#endif

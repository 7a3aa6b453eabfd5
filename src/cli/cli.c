/*
 * cli.c - `nimbus` itself: global options, the subcommand table and dispatch, and the shared
 * reporting helpers of cli.h (help, usage errors, the one error report per run).
 *
 * The table below is the list of subcommands: adding one means writing cmd_<name>.c and adding a
 * row. Global options come before the subcommand: --help, --version, and --endpoint URL (which
 * sets NIMBUS_ENDPOINT for the subcommand, so `nimbus --endpoint URL ls` works like
 * `nimbus ls --endpoint URL`). Output to stdout is flushed here before exiting.
 *
 * It also holds the steps client subcommands share (cli.h): option parsing for those with only
 * the common options, the end of a run (release the client, report, exit code), deleting a list
 * of names, printing a JSON answer.
 */
#include "cli/cli.h"

#include "cli/client.h"

#include <errno.h>
#include <string.h>

#ifndef NIMBUS_VERSION
#define NIMBUS_VERSION "unknown"
#endif

static const struct nb_cli_cmd commands[] = {
    {"serve", cmd_serve, "run the nimbus daemon in the foreground"},
    {"config", cmd_config, "show or check the daemon's configuration"},
    {"deploy", cmd_deploy, "create or update a function from a folder or a .zip"},
    {"invoke", cmd_invoke, "invoke a function and print its response"},
    {"ls", cmd_ls, "list functions"},
    {"rm", cmd_rm, "delete functions"},
    {"publish", cmd_publish, "publish $LATEST as a new immutable version"},
    {"alias", cmd_alias, "point an alias at a version (with an optional canary weight); alias ls"},
    {"route", cmd_route, "add, list or remove HTTP routes (API Gateway HTTP API style); route ls"},
    {"rollback", cmd_rollback, "point an alias back at its previous version"},
    {"logs", cmd_logs, "print (or follow) a function's log"},
    {"stats", cmd_stats, "show a function's invocation figures and instances"},
    {"audit", cmd_audit, "print the audit log (control-plane changes, denied requests)"},
    {"keys", cmd_keys, "create, list and delete access keys"},
    {"queue", cmd_queue, "manage queues: ls, create, rm, send, recv, purge"},
    {"schedule", cmd_schedule, "run a function on a schedule (EventBridge rules): add, ls, rm"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: nimbus [--endpoint URL] [--profile NAME] COMMAND [ARGS...]\n"
                 "       nimbus --help | --version | help [COMMAND]\n"
                 "\n"
                 "nimbus is a self-hosted serverless platform that speaks AWS Lambda's APIs.\n"
                 "\n"
                 "commands:\n");
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n"
                 "Run 'nimbus COMMAND --help' for a command's options. Client commands talk to\n"
                 "--endpoint URL, else $NIMBUS_ENDPOINT, else http://127.0.0.1:9000, and sign\n"
                 "requests with $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY, else profile --profile\n"
                 "(default nimbus) of $AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, else of\n"
                 "$NIMBUS_DATA_DIR/credentials (default ./.nimbus/credentials).\n"
                 "exit codes: 0 ok, 1 function error, 2 usage, 3 platform error\n");
}

static const struct nb_cli_cmd *find_command(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

static int run(const struct nb_cli_cmd *cmd, int argc, char **argv)
{
    int rc = cmd->fn(argc, argv);
    if (fflush(stdout) != 0 && rc == 0) {
        fprintf(stderr, "error: cannot write to stdout: %s\n", strerror(errno));
        rc = CLI_EXIT_USAGE;
    }
    return rc;
}

/* `nimbus help [COMMAND]` */
static int help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    const struct nb_cli_cmd *cmd = find_command(argv[1]);
    if (!cmd) {
        fprintf(stderr, "error: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    char *sub[] = {(char *)cmd->name, (char *)"--help", NULL};
    return run(cmd, 2, sub);
}

int cli_main(int argc, char **argv)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
            printf("nimbus %s\n", NIMBUS_VERSION);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "--endpoint") || !strncmp(a, "--endpoint=", 11)) {
            const char *url = a[10] == '=' ? a + 11 : (i + 1 < argc ? argv[++i] : NULL);
            if (!url) {
                fprintf(stderr, "error: option '--endpoint' requires an argument\n");
                usage(stderr);
                return CLI_EXIT_USAGE;
            }
            setenv("NIMBUS_ENDPOINT", url, 1);
        } else if (!strcmp(a, "--profile") || !strncmp(a, "--profile=", 10)) {
            const char *prof = a[9] == '=' ? a + 10 : (i + 1 < argc ? argv[++i] : NULL);
            if (!prof) {
                fprintf(stderr, "error: option '--profile' requires an argument\n");
                usage(stderr);
                return CLI_EXIT_USAGE;
            }
            setenv("AWS_PROFILE", prof, 1);
        } else {
            fprintf(stderr, "error: unknown option '%s'\n", a);
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[i], "help"))
        return help(argc - i, argv + i);
    const struct nb_cli_cmd *cmd = find_command(argv[i]);
    if (!cmd) {
        fprintf(stderr, "error: unknown command '%s'\n", argv[i]);
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    return run(cmd, argc - i, argv + i);
}

int cli_help(const char *usage_text)
{
    fputs(usage_text, stdout);
    return CLI_EXIT_OK;
}

int cli_usage_error(const char *usage_text, const char *fmt, ...)
{
    va_list ap;
    fputs("error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fputs(usage_text, stderr);
    return CLI_EXIT_USAGE;
}

int cli_bad_option(const char *usage_text, int c, char **argv)
{
    /* getopt_long leaves the offending word at argv[optind - 1] for long options and for
     * missing arguments; for an unknown short option optopt holds the letter. */
    const char *word = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':')
        return cli_usage_error(usage_text, "option '%s' requires an argument", word);
    if (optopt && strncmp(word, "--", 2) != 0)
        return cli_usage_error(usage_text, "unknown option '-%c'", optopt);
    return cli_usage_error(usage_text, "unknown option '%s'", word);
}

int cli_report(const struct nb_err *err)
{
    fprintf(stderr, "error: %s\n", err->msg[0] ? err->msg : strerror(err->code ? err->code : EIO));
    switch (err->code) {
    case EREMOTEIO:
    case EHOSTUNREACH:
    case EPROTO:
        return CLI_EXIT_PLATFORM;
    default:
        return CLI_EXIT_USAGE;
    }
}

int cli_common_option(int c, const char *usage_text, char **argv, const char **endpoint)
{
    switch (c) {
    case CLI_OPT_ENDPOINT:
        *endpoint = optarg;
        return -1;
    case 'h':
        return cli_help(usage_text);
    default:
        return cli_bad_option(usage_text, c, argv);
    }
}

int cli_common_args(int argc, char **argv, const char *usage_text, const char **endpoint)
{
    static const struct option longopts[] = {
        CLI_COMMON_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    int c, rc;

    *endpoint = NULL;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1)
        if ((rc = cli_common_option(c, usage_text, argv, endpoint)) >= 0)
            return rc;
    return -1;
}

int cli_finish(struct nb_client *c, int r, const struct nb_err *err)
{
    client_release(c);
    return r < 0 ? cli_report(err) : CLI_EXIT_OK;
}

int cli_delete_each(struct nb_client *c, const char *path_prefix, char *const *names, int n)
{
    int rc = CLI_EXIT_OK;
    for (int i = 0; i < n; i++) {
        struct nb_err err = {0};
        _cleanup_free_ char *ename = client_escape(names[i]);
        _cleanup_free_ char *path = xasprintf("%s/%s", path_prefix, ename);
        if (client_call(c, "DELETE", path, NULL, NULL, NULL, &err) == 0) {
            printf("deleted %s\n", names[i]);
        } else {
            rc = cli_report(&err);
            /* nimbus is unreachable: every other name would fail the same way */
            if (err.code == EHOSTUNREACH)
                break;
        }
        fflush(stdout);
    }
    return rc;
}

void cli_print_json(const json_t *j)
{
    json_dumpf(j, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
}

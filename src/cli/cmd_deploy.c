/*
 * cmd_deploy.c - `nimbus deploy NAME PATH [options]`: create a function, or update it if it exists.
 *
 * PATH is a folder (zipped in memory by cli_zip_dir) or a .zip file (sent as is). The package goes
 * up as CreateFunction's Code.ZipFile; when nimbus answers 409 ResourceConflictException "...
 * already exist...", the function is updated instead: UpdateFunctionCode, then
 * UpdateFunctionConfiguration with only the options given on the command line (runtime, handler,
 * memory, timeout, env, description, role; a new runtime without --handler brings that runtime's
 * default handler), so a redeploy keeps what it does not mention. After each step the function is
 * polled until it is no longer Pending / InProgress, like the aws CLI waiters. Prints arn,
 * code_sha256 and state.
 */
#include <errno.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/cli_util.h"
#include "cli/client.h"
#include "codec.h"

#define DEFAULT_RUNTIME "provided.al2023"
#define DEFAULT_ROLE "arn:aws:iam::000000000000:role/nimbus"
#define WAIT_LIMIT_MS 120000
#define WAIT_STEP_US 200000

static const char usage[] =
    "usage: nimbus deploy NAME PATH [options]\n"
    "\n"
    "Creates function NAME from PATH, a folder (zipped on the fly, keeping file modes and\n"
    "symlinks) or a .zip file. If NAME exists, updates its code, then the settings given\n"
    "here (the others keep their current values).\n"
    "\n"
    "options:\n"
    "  --runtime R          provided.al2023 (default), provided.al2, provided, python3.x,\n"
    "                       nodejs18.x, nodejs20.x, nodejs22.x\n"
    "  --handler H          default: 'handler' (provided*), 'lambda_function.handler'\n"
    "                       (python), 'index.handler' (nodejs)\n"
    "  --memory MB          memory size in MB (default 128)\n"
    "  --timeout S          timeout in seconds (default 3)\n"
    "  --env K=V            an environment variable; repeat for more (on update, the given\n"
    "                       set replaces the old one)\n"
    "  --description D      a description\n"
    "  --role ARN           execution role (default " DEFAULT_ROLE ")\n" CLI_COMMON_HELP;

struct deploy_opts {
    const char *name;
    const char *path;
    const char *endpoint;
    const char *runtime;
    bool runtime_given, handler_given;
    const char *handler;
    const char *description;
    const char *role;
    int64_t memory; /* 0: not given */
    int64_t timeout;
    json_t *env; /* Variables object, or NULL when no --env was given */
};

static const char *default_handler(const char *runtime)
{
    if (!strncmp(runtime, "python", 6))
        return "lambda_function.handler";
    if (!strncmp(runtime, "nodejs", 6))
        return "index.handler";
    return "handler";
}

static bool is_zip(const char *data, size_t len)
{
    return len >= 4 && data[0] == 'P' && data[1] == 'K' &&
           ((data[2] == 3 && data[3] == 4) || (data[2] == 5 && data[3] == 6));
}

/* Loads PATH as a zip package: *out malloc'd. */
static int load_package(const char *path, char **out, size_t *len, struct nb_err *err)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return err_set(err, errno, "cannot deploy '%s': %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return cli_zip_dir(path, out, len, err);
    if (!S_ISREG(st.st_mode))
        return err_set(err, EINVAL, "cannot deploy '%s': not a folder or a .zip file", path);
    int r = read_file(path, out, len);
    if (r < 0)
        return err_set(err, r, "cannot read '%s': %s", path, strerror(-r));
    if (!is_zip(*out, *len)) {
        free(*out);
        *out = NULL;
        return err_set(err, EINVAL, "cannot deploy '%s': not a folder or a .zip file", path);
    }
    return 0;
}

static bool already_exists(const struct nb_client_resp *resp)
{
    if (resp->status != 409)
        return false;
    _cleanup_free_ char *type = NULL;
    _cleanup_free_ char *message = NULL;
    client_aws_error(resp, &type, &message);
    return type && !strcmp(type, "ResourceConflictException") && message &&
           strcasestr(message, "already exist");
}

static const char *str_member(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

/*
 * Waits until the function's configuration (*cfg, replaced as polling goes) is neither Pending
 * nor InProgress. Fails when it ends Failed, or after WAIT_LIMIT_MS.
 */
static int wait_settled(struct nb_client *c, const char *epath, json_t **cfg, struct nb_err *err)
{
    _cleanup_free_ char *path = xasprintf("%s/configuration", epath);
    uint64_t deadline = mono_ns() / 1000000 + WAIT_LIMIT_MS;
    for (;;) {
        const char *state = str_member(*cfg, "State");
        const char *update = str_member(*cfg, "LastUpdateStatus");
        if (!strcmp(state, "Failed"))
            return err_set(err, EREMOTEIO, "function '%s' failed: %s (%s)",
                           str_member(*cfg, "FunctionName"), str_member(*cfg, "StateReason"),
                           str_member(*cfg, "StateReasonCode"));
        if (!strcmp(update, "Failed"))
            return err_set(err, EREMOTEIO, "update of '%s' failed: %s (%s)",
                           str_member(*cfg, "FunctionName"),
                           str_member(*cfg, "LastUpdateStatusReason"),
                           str_member(*cfg, "LastUpdateStatusReasonCode"));
        if (strcmp(state, "Pending") != 0 && strcmp(update, "InProgress") != 0)
            return 0;
        if (mono_ns() / 1000000 > deadline)
            return err_set(err, EREMOTEIO, "function '%s' still %s after %d s",
                           str_member(*cfg, "FunctionName"),
                           strcmp(state, "Pending") ? "updating" : "pending", WAIT_LIMIT_MS / 1000);
        usleep(WAIT_STEP_US);
        json_t *next = NULL;
        int r = client_call(c, "GET", path, NULL, NULL, &next, err);
        if (r < 0)
            return r;
        if (!next)
            return err_set(err, EPROTO, "empty answer to GetFunctionConfiguration");
        json_decref(*cfg);
        *cfg = next;
    }
}

static json_t *create_body(const struct deploy_opts *o, const char *zip_b64)
{
    json_t *b = json_pack("{s:s, s:s, s:s, s:s, s:{s:s}, s:I, s:I}", "FunctionName", o->name,
                          "Role", o->role ? o->role : DEFAULT_ROLE, "Runtime", o->runtime,
                          "Handler", o->handler, "Code", "ZipFile", zip_b64, "MemorySize",
                          (json_int_t)(o->memory ? o->memory : 128), "Timeout",
                          (json_int_t)(o->timeout ? o->timeout : 3));
    if (!b)
        BUG("json_pack failed");
    if (o->env)
        json_object_set_new(b, "Environment", json_pack("{s:O}", "Variables", o->env));
    if (o->description)
        json_object_set_new(b, "Description", json_string(o->description));
    return b;
}

static json_t *config_body(const struct deploy_opts *o)
{
    json_t *b = json_object();
    if (o->runtime_given)
        json_object_set_new(b, "Runtime", json_string(o->runtime));
    if (o->runtime_given || o->handler_given)
        json_object_set_new(b, "Handler", json_string(o->handler));
    if (o->memory)
        json_object_set_new(b, "MemorySize", json_integer(o->memory));
    if (o->timeout)
        json_object_set_new(b, "Timeout", json_integer(o->timeout));
    if (o->env)
        json_object_set_new(b, "Environment", json_pack("{s:O}", "Variables", o->env));
    if (o->description)
        json_object_set_new(b, "Description", json_string(o->description));
    if (o->role)
        json_object_set_new(b, "Role", json_string(o->role));
    return b;
}

/* UpdateFunctionCode, wait, UpdateFunctionConfiguration, wait. *cfg: the final configuration. */
static int update(struct nb_client *c, const struct deploy_opts *o, const char *epath,
                  const char *zip_b64, json_t **cfg, struct nb_err *err)
{
    _cleanup_free_ char *code_path = xasprintf("%s/code", epath);
    _cleanup_free_ char *conf_path = xasprintf("%s/configuration", epath);
    json_t *code = json_pack("{s:s}", "ZipFile", zip_b64);
    json_t *conf = config_body(o);

    int r = client_call(c, "PUT", code_path, NULL, code, cfg, err);
    if (r == 0 && !*cfg)
        r = err_set(err, EPROTO, "empty answer to UpdateFunctionCode");
    if (r == 0)
        r = wait_settled(c, epath, cfg, err);
    if (r == 0) {
        json_decref(*cfg);
        r = client_call(c, "PUT", conf_path, NULL, conf, cfg, err);
        if (r == 0 && !*cfg)
            r = err_set(err, EPROTO, "empty answer to UpdateFunctionConfiguration");
    }
    if (r == 0)
        r = wait_settled(c, epath, cfg, err);
    json_decref(code);
    json_decref(conf);
    return r;
}

static int deploy(const struct deploy_opts *o, struct nb_err *err)
{
    struct nb_client c;
    struct nb_client_resp resp = NB_CLIENT_RESP_INIT;
    _cleanup_free_ char *zip = NULL;
    _cleanup_free_ char *zip_b64 = NULL;
    _cleanup_free_ char *ename = client_escape(o->name);
    _cleanup_free_ char *epath = xasprintf("/2015-03-31/functions/%s", ename);
    json_t *cfg = NULL;
    size_t zip_len = 0;

    int r = client_init(&c, o->endpoint, err);
    if (r == 0)
        r = load_package(o->path, &zip, &zip_len, err);
    if (r == 0) {
        zip_b64 = b64_encode(zip, zip_len);
        json_t *body = create_body(o, zip_b64);
        r = client_json(&c, "POST", "/2015-03-31/functions", NULL, body, &resp, &cfg, err);
        json_decref(body);
        if (r < 0 && already_exists(&resp)) {
            err_clear(err);
            r = update(&c, o, epath, zip_b64, &cfg, err);
        } else if (r == 0 && !cfg) {
            r = err_set(err, EPROTO, "empty answer to CreateFunction");
        } else if (r == 0) {
            r = wait_settled(&c, epath, &cfg, err);
        }
    }
    if (r == 0) {
        printf("arn: %s\n", str_member(cfg, "FunctionArn"));
        printf("code_sha256: %s\n", str_member(cfg, "CodeSha256"));
        printf("state: %s\n", str_member(cfg, "State"));
    }
    json_decref(cfg);
    client_resp_release(&resp);
    client_release(&c);
    return r;
}

static int parse_int_opt(const char *opt, const char *v, int64_t *out)
{
    return parse_i64(v, 1, INT32_MAX, out) < 0
               ? cli_usage_error(usage, "invalid %s '%s': expected a positive integer", opt, v)
               : 0;
}

int cmd_deploy(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"runtime", required_argument, NULL, 'r'},
        {"handler", required_argument, NULL, 'H'},
        {"memory", required_argument, NULL, 'm'},
        {"timeout", required_argument, NULL, 't'},
        {"env", required_argument, NULL, 'e'},
        {"description", required_argument, NULL, 'd'},
        {"role", required_argument, NULL, 'R'},
        CLI_COMMON_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct deploy_opts o = {.runtime = DEFAULT_RUNTIME};
    struct nb_err err = {0};
    int c, rc = 0;

    optind = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
            o.runtime = optarg;
            o.runtime_given = true;
            break;
        case 'H':
            o.handler = optarg;
            o.handler_given = true;
            break;
        case 'm':
            rc = parse_int_opt("--memory", optarg, &o.memory);
            break;
        case 't':
            rc = parse_int_opt("--timeout", optarg, &o.timeout);
            break;
        case 'e':
            if (!o.env)
                o.env = json_object();
            if (cli_parse_env(optarg, o.env, &err) < 0)
                rc = cli_usage_error(usage, "%s", err.msg);
            break;
        case 'd':
            o.description = optarg;
            break;
        case 'R':
            o.role = optarg;
            break;
        default:
            if ((rc = cli_common_option(c, usage, argv, &o.endpoint)) >= 0) {
                json_decref(o.env);
                return rc;
            }
            rc = 0;
            break;
        }
    }
    if (rc == 0 && argc - optind != 2)
        rc = cli_usage_error(usage,
                             argc - optind < 2 ? "missing NAME or PATH" : "too many arguments");
    if (rc == 0) {
        o.name = argv[optind];
        o.path = argv[optind + 1];
        if (!o.handler)
            o.handler = default_handler(o.runtime);
        if (deploy(&o, &err) < 0)
            rc = cli_report(&err);
    }
    json_decref(o.env);
    return rc;
}

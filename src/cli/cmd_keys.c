/*
 * cmd_keys.c - `nimbus keys create|ls|rm`: access keys through /nimbus/v1/keys (api_keys.c).
 *
 *   nimbus keys create [--policy FILE] [--description D]   prints the id and the secret (once)
 *   nimbus keys ls [--json]                                 ID ROOT POLICY CREATED DESCRIPTION
 *   nimbus keys rm ID...                                    deletes keys (not the root key)
 */
#include "cli/cli.h"
#include "cli/client.h"

static const char usage[] =
    "usage: nimbus keys create [--policy FILE] [--description D] [options]\n"
    "       nimbus keys ls [--json] [options]\n"
    "       nimbus keys rm ID... [options]\n"
    "\n"
    "Manages access keys. create prints the new key id and its secret (shown only once) in the\n"
    "shared-credentials format; --policy FILE attaches an IAM-style JSON policy document.\n"
    "The root key (created at the daemon's first start) cannot be deleted.\n"
    "\n"
    "options:\n"
    "  --policy FILE        (create) policy document, a JSON object\n"
    "  --description D      (create) free text shown by ls\n"
    "  --json               (ls) print the ListKeys JSON\n" CLI_COMMON_HELP;

enum { OPT_POLICY = 0x200, OPT_DESC, OPT_JSON };

static int create(struct nb_client *c, const char *policy_file, const char *desc,
                  struct nb_err *err)
{
    json_t *body = json_object();
    if (desc)
        json_object_set_new(body, "Description", json_string(desc));
    if (policy_file) {
        char *text = NULL;
        size_t len;
        int rc = read_file(policy_file, &text, &len);
        if (rc < 0) {
            json_decref(body);
            return err_set(err, -rc, "cannot read policy '%s': %s", policy_file, strerror(-rc));
        }
        json_object_set_new(body, "Policy", json_stringn(text, len));
        free(text);
    }
    json_t *out = NULL;
    int r = client_call(c, "POST", "/nimbus/v1/keys", NULL, body, &out, err);
    json_decref(body);
    if (r < 0)
        return r;
    printf("aws_access_key_id = %s\naws_secret_access_key = %s\n",
           json_string_value(json_object_get(out, "AccessKeyId")),
           json_string_value(json_object_get(out, "SecretAccessKey")));
    json_decref(out);
    return 0;
}

static int list(struct nb_client *c, bool as_json, struct nb_err *err)
{
    json_t *out = NULL;
    int r = client_call(c, "GET", "/nimbus/v1/keys", NULL, NULL, &out, err);
    if (r < 0)
        return r;
    if (as_json) {
        cli_print_json(out);
    } else {
        printf("%-20s  %-4s  %-6s  %-24s  %s\n", "ID", "ROOT", "POLICY", "CREATED", "DESCRIPTION");
        size_t i;
        json_t *k;
        json_array_foreach (json_object_get(out, "Keys"), i, k) {
            const char *id = json_string_value(json_object_get(k, "AccessKeyId"));
            const char *created = json_string_value(json_object_get(k, "CreatedDate"));
            const char *d = json_string_value(json_object_get(k, "Description"));
            printf("%-20s  %-4s  %-6s  %-24s  %s\n", id ? id : "-",
                   json_is_true(json_object_get(k, "Root")) ? "yes" : "no",
                   json_is_string(json_object_get(k, "Policy")) ? "yes" : "no",
                   created ? created : "-", d ? d : "");
        }
    }
    json_decref(out);
    return 0;
}

int cmd_keys(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_OPTIONS,
        {"policy", required_argument, NULL, OPT_POLICY},
        {"description", required_argument, NULL, OPT_DESC},
        {"json", no_argument, NULL, OPT_JSON},
        {NULL, 0, NULL, 0},
    };
    const char *endpoint = NULL, *policy = NULL, *desc = NULL;
    bool as_json = false;
    struct nb_err err = {0};
    int c, rc;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_POLICY:
            policy = optarg;
            break;
        case OPT_DESC:
            desc = optarg;
            break;
        case OPT_JSON:
            as_json = true;
            break;
        default:
            if ((rc = cli_common_option(c, usage, argv, &endpoint)) >= 0)
                return rc;
            break;
        }
    }
    if (optind >= argc)
        return cli_usage_error(usage, "missing create, ls or rm");
    const char *sub = argv[optind++];
    bool is_create = !strcmp(sub, "create"), is_ls = !strcmp(sub, "ls"), is_rm = !strcmp(sub, "rm");
    if (!is_create && !is_ls && !is_rm)
        return cli_usage_error(usage, "unknown keys command '%s'", sub);
    if (is_rm && optind >= argc)
        return cli_usage_error(usage, "missing ID");
    if (!is_rm && optind < argc)
        return cli_usage_error(usage, "unexpected argument '%s'", argv[optind]);
    if ((policy || desc) && !is_create)
        return cli_usage_error(usage, "--policy and --description go with create");

    struct nb_client cl;
    int r = client_init(&cl, endpoint, &err);
    if (r == 0 && is_rm) {
        rc = cli_delete_each(&cl, "/nimbus/v1/keys", argv + optind, argc - optind);
        client_release(&cl);
        return rc;
    }
    if (r == 0)
        r = is_create ? create(&cl, policy, desc, &err) : list(&cl, as_json, &err);
    return cli_finish(&cl, r, &err);
}

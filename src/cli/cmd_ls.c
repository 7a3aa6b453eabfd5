/*
 * cmd_ls.c - `nimbus ls [--json]`: list every function.
 *
 * ListFunctions (GET /2015-03-31/functions/) page by page, following NextMarker until it is
 * absent, then prints one table, NAME RUNTIME MEMORY TIMEOUT LAST_MODIFIED, with columns sized to
 * their contents (so nothing is printed until every page has arrived). --json prints
 * {"Functions":[...]} with every page's entries, as nimbus sent them.
 */
#include <errno.h>

#include "cli/cli.h"
#include "cli/client.h"

#define PAGE_QUERY "MaxItems=50"
#define MAX_PAGES 100000 /* a guard against a server that keeps returning the same marker */

static const char usage[] =
    "usage: nimbus ls [options]\n"
    "\n"
    "Lists functions: NAME RUNTIME MEMORY TIMEOUT LAST_MODIFIED.\n"
    "\n"
    "options:\n"
    "  --json               print the ListFunctions JSON instead\n" CLI_COMMON_HELP;

/* Appends every function of every page to all (borrowed). */
static int list_all(struct nb_client *c, json_t *all, struct nb_err *err)
{
    _cleanup_free_ char *marker = NULL;
    for (int page = 0; page < MAX_PAGES; page++) {
        _cleanup_free_ char *query = client_page_query(PAGE_QUERY, "Marker", marker);
        json_t *body = NULL;
        int r = client_call(c, "GET", "/2015-03-31/functions/", query, NULL, &body, err);
        if (r < 0)
            return r;
        json_t *fns = json_object_get(body, "Functions");
        if (fns && !json_is_array(fns)) {
            json_decref(body);
            return err_set(err, EPROTO, "invalid ListFunctions answer: Functions is not a list");
        }
        json_array_extend(all, fns ? fns : json_array());
        const char *next = json_string_value(json_object_get(body, "NextMarker"));
        bool more = next && *next, moved = client_next_token(&marker, next);
        json_decref(body);
        if (more && !moved)
            return err_set(err, EPROTO, "invalid ListFunctions answer: NextMarker repeats");
        if (!more)
            return 0;
    }
    return err_set(err, EPROTO, "ListFunctions did not end after %d pages", MAX_PAGES);
}

static int width(const char *s)
{
    return (int)strlen(s);
}

static const char *field(json_t *fn, const char *key, char *num, size_t numlen)
{
    json_t *v = json_object_get(fn, key);
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(num, numlen, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return num;
    }
    return "-";
}

/* Columns padded to w, two spaces apart; the last one unpadded. */
static void print_row(const char *const *cells, const int *w, size_t n)
{
    for (size_t k = 0; k + 1 < n; k++)
        printf("%-*s  ", w[k], cells[k]);
    printf("%s\n", cells[n - 1]);
}

static void print_table(json_t *all)
{
    static const char *const keys[] = {"FunctionName", "Runtime", "MemorySize", "Timeout",
                                       "LastModified"};
    static const char *const heads[] = {"NAME", "RUNTIME", "MEMORY", "TIMEOUT", "LAST_MODIFIED"};
    int w[ARRAY_SIZE(keys)];
    char num[32];
    size_t i, k;
    json_t *fn;

    for (k = 0; k < ARRAY_SIZE(keys); k++)
        w[k] = width(heads[k]);
    json_array_foreach (all, i, fn) {
        for (k = 0; k < ARRAY_SIZE(keys); k++) {
            int n = width(field(fn, keys[k], num, sizeof(num)));
            if (n > w[k])
                w[k] = n;
        }
    }
    print_row(heads, w, ARRAY_SIZE(keys));
    json_array_foreach (all, i, fn) {
        const char *row[ARRAY_SIZE(keys)];
        char nums[ARRAY_SIZE(keys)][32];
        for (k = 0; k < ARRAY_SIZE(keys); k++)
            row[k] = field(fn, keys[k], nums[k], sizeof(nums[k]));
        print_row(row, w, ARRAY_SIZE(keys));
    }
}

/* The whole run; returns the exit code. */
static int ls(const char *endpoint, bool as_json, struct nb_err *err)
{
    struct nb_client c;
    json_t *all = json_array();
    int r = client_init(&c, endpoint, err);
    if (r == 0)
        r = list_all(&c, all, err);
    if (r == 0 && as_json) {
        json_t *out = json_pack("{s:O}", "Functions", all);
        cli_print_json(out);
        json_decref(out);
    } else if (r == 0) {
        print_table(all);
    }
    json_decref(all);
    return cli_finish(&c, r, err);
}

int cmd_ls(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        CLI_COMMON_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    const char *endpoint = NULL;
    struct nb_err err = {0};
    bool as_json = false;
    int c, rc;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            as_json = true;
            break;
        default:
            if ((rc = cli_common_option(c, usage, argv, &endpoint)) >= 0)
                return rc;
            break;
        }
    }
    if (optind < argc)
        return cli_usage_error(usage, "unexpected argument '%s'", argv[optind]);
    return ls(endpoint, as_json, &err);
}

/*
 * test_cli.c - unit tests of the CLI's library pieces: cli_util.c (--since and duration parsing,
 * --env parsing, --payload reading, the in-memory folder zip of `nimbus deploy`) and the offline
 * parts of client.c (botocore-style escaping, AWS error parsing, status checks).
 *
 * The zip tests build a temporary folder (an executable, a plain file, a dotfile, a symlink, a
 * nested and an empty folder), zip it, read it back with libzip and check names, modes, symlink
 * targets and contents; the same tree must give the same bytes twice. No network, no daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <zip.h>

#include <cmocka.h>

#include "cli/cli_util.h"
#include "cli/client.h"
#include "util.h"

/* ---- durations and --since ---- */

static uint64_t duration_ok(const char *s)
{
    struct nb_err err = {0};
    uint64_t ms = 0;
    if (cli_parse_duration(s, &ms, &err) < 0)
        fail_msg("refused '%s': %s", s, err.msg);
    return ms;
}

static void duration_bad(const char *s)
{
    struct nb_err err = {0};
    uint64_t ms = 12345;
    if (cli_parse_duration(s, &ms, &err) == 0)
        fail_msg("accepted '%s' as %llu", s, (unsigned long long)ms);
    assert_int_equal(err.code, EINVAL);
    assert_true(err.msg[0] != '\0');
    assert_int_equal(ms, 12345); /* untouched on failure */
}

static void test_duration(void **state)
{
    assert_int_equal(duration_ok("30s"), 30000);
    assert_int_equal(duration_ok("10m"), 600000);
    assert_int_equal(duration_ok("2h"), 7200000);
    assert_int_equal(duration_ok("1d"), 86400000);
    assert_int_equal(duration_ok("500ms"), 500);
    assert_int_equal(duration_ok("1h30m"), 5400000);
    assert_int_equal(duration_ok("1m30s250ms"), 90250);
    assert_int_equal(duration_ok("0s"), 0);
    duration_bad("");
    duration_bad("10"); /* a bare number is not a duration */
    duration_bad("10x");
    duration_bad("m");
    duration_bad("-5m");
    duration_bad("5 m");
    duration_bad("5mm");
    duration_bad("5msx");
    duration_bad("99999999999999999999s");
    duration_bad("18446744073709551615d");
}

static void test_since(void **state)
{
    struct nb_err err = {0};
    uint64_t now = 1700000000000ull, out = 0;

    assert_int_equal(cli_parse_since("10m", now, &out, &err), 0);
    assert_int_equal(out, now - 600000);
    assert_int_equal(cli_parse_since("30s", now, &out, &err), 0);
    assert_int_equal(out, now - 30000);
    assert_int_equal(cli_parse_since("2h", now, &out, &err), 0);
    assert_int_equal(out, now - 7200000);
    /* bare digits: absolute epoch ms */
    assert_int_equal(cli_parse_since("1699999999123", now, &out, &err), 0);
    assert_int_equal(out, 1699999999123ull);
    assert_int_equal(cli_parse_since("0", now, &out, &err), 0);
    assert_int_equal(out, 0);
    /* further back than the epoch: floored at 0 */
    assert_int_equal(cli_parse_since("2h", 1000, &out, &err), 0);
    assert_int_equal(out, 0);

    assert_int_equal(cli_parse_since("yesterday", now, &out, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "--since 'yesterday'"));
    assert_int_equal(cli_parse_since("", now, &out, &err), -EINVAL);
    assert_int_equal(cli_parse_since("99999999999999999999", now, &out, &err), -EINVAL);
}

/* ---- --env ---- */

static void test_env(void **state)
{
    struct nb_err err = {0};
    json_t *vars = json_object();

    assert_int_equal(cli_parse_env("A=1", vars, &err), 0);
    assert_int_equal(cli_parse_env("EMPTY=", vars, &err), 0);
    assert_int_equal(cli_parse_env("URL=http://x/?a=b", vars, &err), 0);
    assert_int_equal(cli_parse_env("A=2", vars, &err), 0); /* later wins */
    assert_string_equal(json_string_value(json_object_get(vars, "A")), "2");
    assert_string_equal(json_string_value(json_object_get(vars, "EMPTY")), "");
    assert_string_equal(json_string_value(json_object_get(vars, "URL")), "http://x/?a=b");
    assert_int_equal(json_object_size(vars), 3);

    assert_int_equal(cli_parse_env("NOEQUALS", vars, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "KEY=VALUE"));
    assert_int_equal(cli_parse_env("=value", vars, &err), -EINVAL);
    assert_int_equal(cli_parse_env("", vars, &err), -EINVAL);
    assert_int_equal(cli_parse_env("BAD=\xff\xfe", vars, &err), -EINVAL);
    assert_int_equal(json_object_size(vars), 3);
    json_decref(vars);
}

/* ---- temp folders ---- */

static char *make_tmpdir(void)
{
    char *d = xstrdup("/tmp/nimbus-test-cli-XXXXXX");
    if (!mkdtemp(d))
        fail_msg("mkdtemp: %s", strerror(errno));
    return d;
}

static void write_text(const char *dir, const char *name, const char *text, mode_t mode)
{
    _cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (!f)
        fail_msg("fopen %s: %s", p, strerror(errno));
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(p, mode), 0);
}

static void test_payload(void **state)
{
    struct nb_err err = {0};
    _cleanup_free_ char *dir = make_tmpdir();
    char *out = NULL;
    size_t len = 0;

    assert_int_equal(cli_read_payload("{\"a\":1}", &out, &len, &err), 0);
    assert_string_equal(out, "{\"a\":1}");
    assert_int_equal(len, 7);
    free(out);

    write_text(dir, "event.json", "{\"from\":\"file\"}\n", 0644);
    _cleanup_free_ char *arg = xasprintf("@%s/event.json", dir);
    assert_int_equal(cli_read_payload(arg, &out, &len, &err), 0);
    assert_string_equal(out, "{\"from\":\"file\"}\n");
    assert_int_equal(len, 16);
    free(out);

    _cleanup_free_ char *missing = xasprintf("@%s/nope.json", dir);
    assert_int_equal(cli_read_payload(missing, &out, &len, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "nope.json"));
    assert_int_equal(rm_rf(dir), 0);
}

/* ---- zipping a folder ---- */

/* A tree with every kind of entry deploy must keep. */
static char *make_tree(void)
{
    char *dir = make_tmpdir();
    _cleanup_free_ char *lib = xasprintf("%s/lib", dir);
    _cleanup_free_ char *empty = xasprintf("%s/empty", dir);
    _cleanup_free_ char *link = xasprintf("%s/current", dir);
    _cleanup_free_ char *dangling = xasprintf("%s/lib/dangling", dir);

    write_text(dir, "bootstrap", "#!/bin/sh\necho hi\n", 0755);
    write_text(dir, ".env", "A=1\n", 0600);
    assert_int_equal(mkdir(lib, 0750), 0);
    assert_int_equal(mkdir(empty, 0755), 0);
    write_text(dir, "lib/data.txt", "data\n", 0644);
    assert_int_equal(symlink("bootstrap", link), 0);
    assert_int_equal(symlink("../../outside", dangling), 0);
    return dir;
}

static zip_t *open_zip(const char *data, size_t len)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(data, len, 0, &ze);
    assert_non_null(src);
    zip_t *za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
    if (!za)
        fail_msg("cannot open the zip: %s", zip_error_strerror(&ze));
    zip_error_fini(&ze);
    return za;
}

static void assert_entry(zip_t *za, zip_int64_t i, const char *name, mode_t mode,
                         const char *content)
{
    const char *got = zip_get_name(za, (zip_uint64_t)i, 0);
    assert_non_null(got);
    assert_string_equal(got, name);
    zip_uint8_t opsys = 0;
    zip_uint32_t attr = 0;
    assert_int_equal(zip_file_get_external_attributes(za, (zip_uint64_t)i, 0, &opsys, &attr), 0);
    assert_int_equal(opsys, ZIP_OPSYS_UNIX);
    if ((attr >> 16) != mode)
        fail_msg("'%s': mode 0%o, expected 0%o", name, attr >> 16, mode);
    if (!content)
        return;
    zip_stat_t st;
    assert_int_equal(zip_stat_index(za, (zip_uint64_t)i, 0, &st), 0);
    assert_int_equal(st.size, strlen(content));
    zip_file_t *f = zip_fopen_index(za, (zip_uint64_t)i, 0);
    assert_non_null(f);
    char buf[256] = "";
    assert_int_equal(zip_fread(f, buf, sizeof(buf) - 1), (zip_int64_t)strlen(content));
    zip_fclose(f);
    assert_string_equal(buf, content);
}

static void test_zip_dir(void **state)
{
    struct nb_err err = {0};
    _cleanup_free_ char *dir = make_tree();
    char *data = NULL;
    size_t len = 0;

    if (cli_zip_dir(dir, &data, &len, &err) < 0)
        fail_msg("cli_zip_dir: %s", err.msg);
    assert_true(len > 22);
    assert_memory_equal(data, "PK\x03\x04", 4);

    zip_t *za = open_zip(data, len);
    /* byte order of names; a folder's entry before its contents; nothing skipped */
    assert_int_equal(zip_get_num_entries(za, 0), 7);
    assert_entry(za, 0, ".env", S_IFREG | 0600, "A=1\n");
    assert_entry(za, 1, "bootstrap", S_IFREG | 0755, "#!/bin/sh\necho hi\n");
    assert_entry(za, 2, "current", S_IFLNK | 0777, "bootstrap");
    assert_entry(za, 3, "empty/", S_IFDIR | 0755, NULL);
    assert_entry(za, 4, "lib/", S_IFDIR | 0750, NULL);
    assert_entry(za, 5, "lib/dangling", S_IFLNK | 0777, "../../outside");
    assert_entry(za, 6, "lib/data.txt", S_IFREG | 0644, "data\n");
    zip_close(za);

    /* the same tree gives the same bytes (and so the same CodeSha256), whatever the mtimes */
    _cleanup_free_ char *boot = xasprintf("%s/bootstrap", dir);
    struct timespec times[2] = {{1000000, 0}, {1000000, 0}};
    assert_int_equal(utimensat(AT_FDCWD, boot, times, AT_SYMLINK_NOFOLLOW), 0);
    char *again = NULL;
    size_t again_len = 0;
    assert_int_equal(cli_zip_dir(dir, &again, &again_len, &err), 0);
    assert_int_equal(again_len, len);
    assert_memory_equal(again, data, len);

    free(again);
    free(data);
    assert_int_equal(rm_rf(dir), 0);
}

static void test_zip_refusals(void **state)
{
    struct nb_err err = {0};
    _cleanup_free_ char *dir = make_tmpdir();
    char *data = NULL;
    size_t len = 0;

    /* an empty folder */
    assert_int_equal(cli_zip_dir(dir, &data, &len, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "is empty"));
    assert_null(data);

    /* a fifo cannot be packaged */
    _cleanup_free_ char *fifo = xasprintf("%s/pipe", dir);
    assert_int_equal(mkfifo(fifo, 0644), 0);
    write_text(dir, "a.txt", "a", 0644);
    assert_int_equal(cli_zip_dir(dir, &data, &len, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "pipe"));
    assert_null(data);

    /* no such folder */
    _cleanup_free_ char *missing = xasprintf("%s/missing", dir);
    assert_int_equal(cli_zip_dir(missing, &data, &len, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "missing"));
    assert_int_equal(rm_rf(dir), 0);
}

/* ---- client.c, offline ---- */

static void test_escape(void **state)
{
    char *s = client_escape("my-fn_1.x~");
    assert_string_equal(s, "my-fn_1.x~");
    free(s);
    s = client_escape("arn:aws:lambda:us-east-1:000000000000:function:f");
    assert_string_equal(s, "arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af");
    free(s);
    s = client_escape("a b/c?d&e=f+$\xc3\xa9");
    assert_string_equal(s, "a%20b%2Fc%3Fd%26e%3Df%2B%24%C3%A9");
    free(s);
    s = client_escape("");
    assert_string_equal(s, "");
    free(s);
}

static void set_resp(struct nb_client_resp *r, long status, const char *type, const char *body)
{
    client_resp_release(r);
    r->status = status;
    if (body)
        buf_appends(&r->body, body);
    if (type) {
        r->headers = xcalloc(8, sizeof(*r->headers));
        r->headers[0].name = xstrdup("X-Amzn-ErrorType");
        r->headers[0].value = xstrdup(type);
        r->nheaders = 1;
    }
}

static void test_aws_error(void **state)
{
    struct nb_client_resp r = NB_CLIENT_RESP_INIT;
    struct nb_err err = {0};

    set_resp(&r, 200, NULL, "{}");
    assert_int_equal(client_check(&r, &err), 0);

    /* header type up to ':', body "message" */
    set_resp(&r, 409, "ResourceConflictException:http://internal.amazon.com/coral/x/",
             "{\"Type\":\"User\",\"message\":\"Function already exist: f\"}");
    assert_int_equal(client_check(&r, &err), -EREMOTEIO);
    assert_string_equal(err.msg, "ResourceConflictException: Function already exist: f");
    assert_string_equal(client_resp_header(&r, "x-amzn-errortype"),
                        "ResourceConflictException:http://internal.amazon.com/coral/x/");

    /* body "Message" (ResourceNotFoundException's casing) */
    set_resp(&r, 404, "ResourceNotFoundException",
             "{\"Type\":\"User\",\"Message\":\"Function not found: arn:x\"}");
    assert_int_equal(client_check(&r, &err), -EREMOTEIO);
    assert_string_equal(err.msg, "ResourceNotFoundException: Function not found: arn:x");

    /* no header: body __type after '#' */
    set_resp(&r, 400, NULL,
             "{\"__type\":\"com.amazon#InvalidParameterValueException\","
             "\"message\":\"bad\"}");
    assert_int_equal(client_check(&r, &err), -EREMOTEIO);
    assert_string_equal(err.msg, "InvalidParameterValueException: bad");

    /* not an AWS error at all */
    set_resp(&r, 502, NULL, "Bad Gateway\n");
    assert_int_equal(client_check(&r, &err), -EREMOTEIO);
    assert_string_equal(err.msg, "HTTP 502: Bad Gateway ");
    set_resp(&r, 500, NULL, NULL);
    assert_int_equal(client_check(&r, &err), -EREMOTEIO);
    assert_string_equal(err.msg, "HTTP 500");
    client_resp_release(&r);
}

static void test_endpoint(void **state)
{
    struct nb_client c;
    struct nb_err err = {0};

    unsetenv("NIMBUS_ENDPOINT");
    assert_int_equal(client_init(&c, NULL, &err), 0);
    assert_string_equal(c.endpoint, CLIENT_DEFAULT_ENDPOINT);
    client_release(&c);

    setenv("NIMBUS_ENDPOINT", "http://127.0.0.1:1234/", 1);
    assert_int_equal(client_init(&c, NULL, &err), 0);
    assert_string_equal(c.endpoint, "http://127.0.0.1:1234");
    client_release(&c);

    /* the flag wins over the environment */
    assert_int_equal(client_init(&c, "https://nimbus.example:9443", &err), 0);
    assert_string_equal(c.endpoint, "https://nimbus.example:9443");
    client_release(&c);

    assert_int_equal(client_init(&c, "127.0.0.1:9000", &err), -EINVAL);
    assert_non_null(strstr(err.msg, "invalid endpoint"));
    client_release(&c);
    unsetenv("NIMBUS_ENDPOINT");
}

/* auth: where the CLI finds credentials (env, then profile in the shared file, then
 * DATA_DIR/credentials) and its region */
static void test_credentials(void **state)
{
    char dir[] = "/tmp/nimbus-test-creds-XXXXXX";
    assert_non_null(mkdtemp(dir));
    _cleanup_free_ char *shared = xasprintf("%s/shared", dir);
    _cleanup_free_ char *own = xasprintf("%s/credentials", dir);
    FILE *f = fopen(shared, "w");
    fputs("[default]\naws_access_key_id = D\naws_secret_access_key = d\n"
          "[other]\naws_access_key_id = O\naws_secret_access_key = o\nregion = eu-west-1\n",
          f);
    fclose(f);
    f = fopen(own, "w");
    fputs("[nimbus]\naws_access_key_id = N\naws_secret_access_key = n\nregion = ap-south-1\n", f);
    fclose(f);
    static const char *const vars[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE",
                                       "AWS_REGION", "AWS_DEFAULT_REGION"};
    for (size_t i = 0; i < ARRAY_SIZE(vars); i++)
        unsetenv(vars[i]);
    setenv("AWS_SHARED_CREDENTIALS_FILE", shared, 1);
    setenv("NIMBUS_DATA_DIR", dir, 1);
    char *id, *secret, *region;
    /* profile nimbus is not in the shared file: DATA_DIR/credentials */
    client_find_credentials(&id, &secret, &region);
    assert_string_equal(id, "N");
    assert_string_equal(secret, "n");
    assert_string_equal(region, "ap-south-1");
    free(id), free(secret), free(region);
    /* --profile / AWS_PROFILE picks a profile of the shared file */
    setenv("AWS_PROFILE", "other", 1);
    client_find_credentials(&id, &secret, &region);
    assert_string_equal(id, "O");
    assert_string_equal(region, "eu-west-1");
    free(id), free(secret), free(region);
    /* the environment wins; AWS_REGION too */
    setenv("AWS_ACCESS_KEY_ID", "E", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "e", 1);
    setenv("AWS_REGION", "us-west-2", 1);
    client_find_credentials(&id, &secret, &region);
    assert_string_equal(id, "E");
    assert_string_equal(secret, "e");
    assert_string_equal(region, "us-west-2");
    free(id), free(secret), free(region);
    /* nothing anywhere: unsigned, default region */
    for (size_t i = 0; i < ARRAY_SIZE(vars); i++)
        unsetenv(vars[i]);
    setenv("AWS_PROFILE", "absent", 1);
    client_find_credentials(&id, &secret, &region);
    assert_null(id);
    assert_null(secret);
    assert_string_equal(region, "us-east-1");
    free(region);
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    unsetenv("NIMBUS_DATA_DIR");
    rm_rf(dir);
}

/* The paging helpers every listing command uses (client.h). */
static void test_paging(void **state)
{
    char *q = client_page_query("since=5&limit=10", "nextToken", NULL);
    assert_string_equal(q, "since=5&limit=10");
    free(q);
    q = client_page_query("MaxItems=50", "Marker", "a b/c");
    assert_string_equal(q, "MaxItems=50&Marker=a%20b%2Fc");
    free(q);
    q = client_page_query(NULL, "Marker", "fn");
    assert_string_equal(q, "Marker=fn");
    free(q);
    assert_null(client_page_query(NULL, "Marker", NULL));

    char *token = NULL;
    assert_false(client_next_token(&token, NULL)); /* no token: the end */
    assert_false(client_next_token(&token, ""));
    assert_null(token);
    assert_true(client_next_token(&token, "t1"));
    assert_string_equal(token, "t1");
    assert_false(client_next_token(&token, "t1")); /* the same token again: the end */
    assert_string_equal(token, "t1");
    assert_true(client_next_token(&token, "t2"));
    assert_string_equal(token, "t2");
    assert_false(client_next_token(&token, NULL));
    assert_string_equal(token, "t2");
    free(token);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration),    cmocka_unit_test(test_since),
        cmocka_unit_test(test_env),         cmocka_unit_test(test_payload),
        cmocka_unit_test(test_zip_dir),     cmocka_unit_test(test_zip_refusals),
        cmocka_unit_test(test_escape),      cmocka_unit_test(test_paging),
        cmocka_unit_test(test_aws_error),   cmocka_unit_test(test_endpoint),
        cmocka_unit_test(test_credentials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

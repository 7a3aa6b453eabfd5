/*
 * test_config.c - the config table: defaults, file, flags and their precedence, errors citing
 * file:line, reload of reloadable keys only, and `config show` output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>

#include "config.h"

static char *write_tmp(const char *text)
{
    char *path = xstrdup("/tmp/nimbus-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, text, strlen(text)), 0);
    close(fd);
    return path;
}

static void test_defaults(void **state)
{
    struct nb_config cfg;
    struct nb_err err = {0};
    char *argv[] = {"serve"};
    assert_int_equal(config_load(&cfg, 1, argv, &err), 0);
    assert_string_equal(cfg.listen, "127.0.0.1:9000");
    assert_string_equal(cfg.listen_host, "127.0.0.1");
    assert_int_equal(cfg.listen_port, 9000);
    assert_int_equal(cfg.account_concurrency, 1000);
    assert_int_equal(cfg.keep_warm_s, 600);
    assert_string_equal(cfg.account_id, "000000000000");
    assert_null(cfg.config_file);
    config_release(&cfg);
}

static void test_precedence(void **state)
{
    _cleanup_free_ char *path = write_tmp("[nimbus]\nlisten = 127.0.0.1:7000\n"
                                          "keep_warm_s = 5\nregion = eu-west-1\n");
    struct nb_config cfg;
    struct nb_err err = {0};
    char *argv[] = {"serve", "--config", path, "--keep-warm-s", "9", "--data-dir=/tmp/x"};
    assert_int_equal(config_load(&cfg, 6, argv, &err), 0);
    assert_int_equal(cfg.listen_port, 7000);      /* file over default */
    assert_int_equal(cfg.keep_warm_s, 9);         /* flag over file */
    assert_string_equal(cfg.region, "eu-west-1"); /* file */
    assert_string_equal(cfg.data_dir, "/tmp/x");  /* --name=value form */
    config_release(&cfg);
    unlink(path);
}

static void test_file_errors_cite_line(void **state)
{
    _cleanup_free_ char *path = write_tmp("listen = 127.0.0.1:7000\n\nbogus = 1\n");
    struct nb_config cfg;
    struct nb_err err = {0};
    char *argv[] = {"serve", "--config", path};
    assert_int_equal(config_load(&cfg, 3, argv, &err), -EINVAL);
    _cleanup_free_ char *want = xasprintf("%s:3: unknown setting 'bogus'", path);
    assert_string_equal(err.msg, want);
    config_release(&cfg);
    unlink(path);

    _cleanup_free_ char *p2 = write_tmp("account_concurrency = many\n");
    char *argv2[] = {"serve", "--config", p2};
    assert_int_equal(config_load(&cfg, 3, argv2, &err), -EINVAL);
    assert_non_null(strstr(err.msg, ":1:"));
    assert_non_null(strstr(err.msg, "account_concurrency"));
    config_release(&cfg);
    unlink(p2);
}

static void test_flag_errors(void **state)
{
    struct nb_config cfg;
    struct nb_err err = {0};
    char *a1[] = {"serve", "--no-such-thing", "1"};
    assert_int_equal(config_load(&cfg, 3, a1, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "unknown flag"));
    config_release(&cfg);
    char *a2[] = {"serve", "--listen", "nonsense"};
    assert_int_equal(config_load(&cfg, 3, a2, &err), -EINVAL);
    config_release(&cfg);
    char *a3[] = {"serve", "--account-id", "123"};
    assert_int_equal(config_load(&cfg, 3, a3, &err), -EINVAL);
    config_release(&cfg);
    char *a4[] = {"serve", "--keep-warm-s"};
    assert_int_equal(config_load(&cfg, 2, a4, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "needs a value"));
    config_release(&cfg);
    char *a5[] = {"serve", "--account-concurrency", "0"};
    assert_int_equal(config_load(&cfg, 3, a5, &err), -EINVAL);
    config_release(&cfg);
    char *a6[] = {"serve", "--help"};
    assert_int_equal(config_load(&cfg, 2, a6, &err), -ENOENT);
    config_release(&cfg);
}

static void test_reload_only_reloadable(void **state)
{
    _cleanup_free_ char *path = write_tmp("keep_warm_s = 5\nregion = eu-west-1\n");
    struct nb_config cfg;
    struct nb_err err = {0};
    char *argv[] = {"serve", "--config", path};
    assert_int_equal(config_load(&cfg, 3, argv, &err), 0);
    FILE *f = fopen(path, "w");
    fputs("keep_warm_s = 77\nregion = ap-south-1\n", f);
    fclose(f);
    assert_int_equal(config_reload(&cfg, &err), 0);
    assert_int_equal(cfg.keep_warm_s, 77);        /* reloadable */
    assert_string_equal(cfg.region, "eu-west-1"); /* not reloadable: keeps start-up value */
    f = fopen(path, "w");
    fputs("keep_warm_s = -3\n", f);
    fclose(f);
    assert_int_equal(config_reload(&cfg, &err), -EINVAL);
    assert_int_equal(cfg.keep_warm_s, 77); /* a bad file changes nothing */
    config_release(&cfg);
    unlink(path);
}

static void test_show_round_trips(void **state)
{
    struct nb_config cfg, again;
    struct nb_err err = {0};
    char *argv[] = {"serve", "--keep-warm-s", "42", "--region", "us-west-2"};
    assert_int_equal(config_load(&cfg, 5, argv, &err), 0);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    config_show(&cfg, m);
    fclose(m);
    _cleanup_free_ char *path = write_tmp(text);
    char *argv2[] = {"serve", "--config", path};
    assert_int_equal(config_load(&again, 3, argv2, &err), 0);
    assert_int_equal(again.keep_warm_s, 42);
    assert_string_equal(again.region, "us-west-2");
    free(text);
    config_release(&cfg);
    config_release(&again);
    unlink(path);
}

/* auth: --insecure is a boolean flag (alone = true), master_key_file defaults to auto */
static void test_bool_flag(void **state)
{
    struct nb_config cfg;
    struct nb_err err = {0};
    char *a0[] = {"serve"};
    assert_int_equal(config_load(&cfg, 1, a0, &err), 0);
    assert_false(cfg.insecure);
    assert_string_equal(cfg.master_key_file, "auto");
    config_release(&cfg);
    char *a1[] = {"serve", "--insecure", "--keep-warm-s", "7"};
    assert_int_equal(config_load(&cfg, 4, a1, &err), 0);
    assert_true(cfg.insecure);
    assert_int_equal(cfg.keep_warm_s, 7);
    config_release(&cfg);
    char *a2[] = {"serve", "--keep-warm-s", "7", "--insecure=false"};
    assert_int_equal(config_load(&cfg, 4, a2, &err), 0);
    assert_false(cfg.insecure);
    config_release(&cfg);
    char *a3[] = {"serve", "--insecure=maybe"};
    assert_int_equal(config_load(&cfg, 2, a3, &err), -EINVAL);
    config_release(&cfg);
    char *a4[] = {"serve", "--master-key-file", "relative/path"};
    assert_int_equal(config_load(&cfg, 3, a4, &err), -EINVAL);
    config_release(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_file_errors_cite_line),
        cmocka_unit_test(test_flag_errors),
        cmocka_unit_test(test_reload_only_reloadable),
        cmocka_unit_test(test_show_round_trips),
        cmocka_unit_test(test_bool_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

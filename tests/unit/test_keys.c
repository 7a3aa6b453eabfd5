/*
 * test_keys.c - unit tests for keys.c: first start (master key, root key, credentials file, all
 * 0600), a restart that decrypts the same keys, sealing round trips and what breaks them
 * (tampering, another key id, another master key), the missing-master-key refusal, the table
 * (add, find, remove, list order) and policy validation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <sys/stat.h>

#include "keys.h"
#include "store.h"

struct fixture {
    char root[64];
    char *master;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    snprintf(f->root, sizeof(f->root), "/tmp/nimbus-test-keys-XXXXXX");
    if (!mkdtemp(f->root))
        return -1;
    f->master = xasprintf("%s/master.key", f->root);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rm_rf(f->root);
    free(f->master);
    free(f);
    return 0;
}

static struct nb_keys *open_keys(struct fixture *f, struct nb_store **st, struct nb_err *err)
{
    *st = store_open(f->root, err);
    assert_non_null(*st);
    return keys_open(*st, f->root, f->master, "eu-west-1", err);
}

static mode_t mode_of(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return sb.st_mode & 0777;
}

static void test_first_start_and_restart(void **state)
{
    struct fixture *f = *state;
    struct nb_err err = {0};
    struct nb_store *st;
    struct nb_keys *k = open_keys(f, &st, &err);
    assert_non_null(k);
    const struct nb_key *root = keys_root(k);
    assert_non_null(root);
    assert_true(root->root);
    assert_null(root->policy);
    assert_int_equal(strlen(root->id), 20);
    assert_int_equal(strlen(root->secret), 40);
    _cleanup_free_ char *id = xstrdup(root->id), *secret = xstrdup(root->secret);
    _cleanup_free_ char *cred = xasprintf("%s/credentials", f->root);
    assert_int_equal(mode_of(cred), 0600);
    assert_int_equal(mode_of(f->master), 0600);
    _cleanup_free_ char *text = NULL;
    size_t len;
    assert_int_equal(read_file(cred, &text, &len), 0);
    _cleanup_free_ char *want = xasprintf(
        "[nimbus]\naws_access_key_id = %s\naws_secret_access_key = %s\nregion = eu-west-1\n", id,
        secret);
    assert_string_equal(text, want);
    /* a second key, then a restart: both come back decrypted */
    struct nb_key *other = keys_generate("{\"Version\":\"2012-10-17\"}", "ci", false);
    _cleanup_free_ char *sealed = keys_seal(k, other);
    assert_null(strstr(sealed, other->secret));
    struct nb_store_key sk = {other->id,          sealed,      other->policy,
                              other->description, other->root, other->created_ms};
    assert_int_equal(store_key_insert(st, &sk, &err), 0);
    _cleanup_free_ char *oid = xstrdup(other->id), *osecret = xstrdup(other->secret);
    keys_add(k, other);
    keys_free(k);
    store_close(st);
    unlink(cred); /* rewritten when missing */
    k = open_keys(f, &st, &err);
    assert_non_null(k);
    assert_string_equal(keys_root(k)->id, id);
    assert_string_equal(keys_root(k)->secret, secret);
    const struct nb_key *o = keys_find(k, oid);
    assert_non_null(o);
    assert_string_equal(o->secret, osecret);
    assert_string_equal(o->policy, "{\"Version\":\"2012-10-17\"}");
    assert_int_equal(access(cred, F_OK), 0);
    const struct nb_key **v;
    assert_int_equal(keys_list(k, &v), 2);
    assert_true(strcmp(v[0]->id, v[1]->id) < 0);
    free(v);
    assert_int_equal(keys_remove(k, oid), 0);
    assert_null(keys_find(k, oid));
    assert_int_equal(keys_remove(k, oid), -ENOENT);
    keys_free(k);
    store_close(st);
}

static void test_sealing(void **state)
{
    struct fixture *f = *state;
    struct nb_err err = {0};
    struct nb_store *st;
    struct nb_keys *k = open_keys(f, &st, &err);
    assert_non_null(k);
    struct nb_key *key = keys_generate(NULL, NULL, false);
    _cleanup_free_ char *sealed = keys_seal(k, key);
    _cleanup_free_ char *again = keys_seal(k, key);
    assert_string_not_equal(sealed, again); /* fresh nonce every time */
    _cleanup_free_ char *plain = keys_unseal(k, key->id, sealed, &err);
    assert_non_null(plain);
    assert_string_equal(plain, key->secret);
    /* bound to its key id */
    assert_null(keys_unseal(k, "NKIAOTHER", sealed, &err));
    assert_int_equal(err.code, EBADMSG);
    /* tampered */
    sealed[10] = sealed[10] == 'A' ? 'B' : 'A';
    assert_null(keys_unseal(k, key->id, sealed, &err));
    assert_null(keys_unseal(k, key->id, "v1:", &err));
    assert_null(keys_unseal(k, key->id, "plain", &err));
    keys_key_free(key);
    keys_free(k);
    store_close(st);
}

static void test_master_key_refusals(void **state)
{
    struct fixture *f = *state;
    struct nb_err err = {0};
    struct nb_store *st;
    struct nb_keys *k = open_keys(f, &st, &err);
    assert_non_null(k);
    keys_free(k);
    store_close(st);
    /* another master key cannot open the sealed root key */
    unlink(f->master);
    FILE *m = fopen(f->master, "w");
    for (int i = 0; i < 32; i++)
        fputc(i, m);
    fclose(m);
    assert_null(open_keys(f, &st, &err));
    assert_non_null(strstr(err.msg, "wrong master key"));
    store_close(st);
    /* a missing one is not silently replaced */
    unlink(f->master);
    assert_null(open_keys(f, &st, &err));
    assert_int_equal(err.code, ENOENT);
    store_close(st);
    /* a short one is refused */
    m = fopen(f->master, "w");
    fputs("short", m);
    fclose(m);
    assert_null(open_keys(f, &st, &err));
    assert_int_equal(err.code, EINVAL);
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_start_and_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_master_key_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_codec.c - unit tests for codec.c: SHA-256 against the FIPS 180-2 example vectors, base64
 * against the RFC 4648 section 10 vectors, round trips over every byte value and length, and the
 * decoder's refusals (bad length, bad characters, misplaced padding, whitespace).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>

#include "codec.h"

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char d[32];
    sha256(data, len, d);
    hex_encode(d, sizeof(d), out);
}

static void test_sha256_vectors(void **state)
{
    char hex[65];
    sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_hex(two_blocks, strlen(two_blocks), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    size_t n = 1000000;
    _cleanup_free_ char *million = xmalloc(n);
    memset(million, 'a', n);
    sha256_hex(million, n, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_b64_vectors(void **state)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const enc[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < ARRAY_SIZE(plain); i++) {
        _cleanup_free_ char *e = b64_encode(plain[i], strlen(plain[i]));
        assert_string_equal(e, enc[i]);
        unsigned char *d = NULL;
        size_t dlen = 99;
        struct nb_err err = {0};
        assert_int_equal(b64_decode(enc[i], strlen(enc[i]), &d, &dlen, &err), 0);
        assert_int_equal(err.code, 0);
        assert_int_equal(dlen, strlen(plain[i]));
        assert_memory_equal(d, plain[i], dlen);
        assert_int_equal(d[dlen], 0); /* NUL-terminated for convenience */
        free(d);
    }
}

static void test_b64_round_trip(void **state)
{
    unsigned char all[256 * 3];
    for (size_t i = 0; i < sizeof(all); i++)
        all[i] = (unsigned char)(i * 131u + (i >> 8));
    for (size_t len = 0; len <= sizeof(all); len += (len < 64 ? 1 : 37)) {
        _cleanup_free_ char *e = b64_encode(all, len);
        assert_int_equal(strlen(e), 4 * ((len + 2) / 3));
        unsigned char *d = NULL;
        size_t dlen = 0;
        struct nb_err err = {0};
        assert_int_equal(b64_decode(e, strlen(e), &d, &dlen, &err), 0);
        assert_int_equal(dlen, len);
        if (len)
            assert_memory_equal(d, all, len);
        free(d);
    }
    /* Every byte value survives, including NUL and 0xff. */
    unsigned char bytes[256];
    for (int i = 0; i < 256; i++)
        bytes[i] = (unsigned char)i;
    _cleanup_free_ char *e = b64_encode(bytes, sizeof(bytes));
    unsigned char *d = NULL;
    size_t dlen = 0;
    assert_int_equal(b64_decode(e, strlen(e), &d, &dlen, NULL), 0);
    assert_int_equal(dlen, 256);
    assert_memory_equal(d, bytes, 256);
    free(d);
}

static void test_b64_invalid(void **state)
{
    static const char *const bad[] = {
        "Zg=",      "Z",        "Zm9vY", /* length not a multiple of 4 */
        "Zm9*",     "Zm9v\n",            /* outside the alphabet; whitespace is not allowed */
        "Zm 9",     "Zm9-",              /* ...and base64url is a different alphabet */
        "Zm9_",     "Z===",              /* too much padding */
        "=Zm9",     "Zg=a",              /* padding at the start; data after padding */
        "Zm=vYmFy", "Zg==Zm9v",          /* padding in the middle; two concatenated encodings */
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        unsigned char *d = NULL;
        size_t dlen = 77;
        struct nb_err err = {0};
        int r = b64_decode(bad[i], strlen(bad[i]), &d, &dlen, &err);
        if (r != -EINVAL)
            fail_msg("'%s' decoded (r=%d)", bad[i], r);
        assert_int_equal(err.code, EINVAL);
        assert_true(err.msg[0] != '\0');
        assert_null(d);
        assert_int_equal(dlen, 77); /* outputs untouched on failure */
    }
    /* An embedded NUL is a bad character, not the end of the input. */
    unsigned char *d = NULL;
    size_t dlen = 0;
    assert_int_equal(b64_decode("Zm\0v", 4, &d, &dlen, NULL), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_b64_vectors),
        cmocka_unit_test(test_b64_round_trip),
        cmocka_unit_test(test_b64_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

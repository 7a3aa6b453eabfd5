/*
 * codec.c - thin wrappers over libcrypto's SHA-256 and EVP base64 block functions.
 * EVP_DecodeBlock does not understand padding, so the decoder strips what padding added.
 */
#include "codec.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

void sha256(const void *data, size_t len, unsigned char out[32])
{
    SHA256(data, len, out);
}

char *b64_encode(const void *data, size_t len)
{
    char *out = xmalloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

int b64_decode(const char *in, size_t len, unsigned char **out, size_t *outlen, struct nb_err *err)
{
    if (len % 4)
        return err_set(err, EINVAL, "invalid base64: length %zu is not a multiple of 4", len);
    if (len > (size_t)1 << 30)
        return err_set(err, E2BIG, "base64 input too large");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/' || (c == '=' && i >= len - 2);
        if (!ok || (c != '=' && i == len - 1 && in[len - 2] == '='))
            return err_set(err, EINVAL, "invalid base64 character at offset %zu", i);
    }
    unsigned char *buf = xmalloc(3 * (len / 4) + 1);
    int n = len ? EVP_DecodeBlock(buf, (const unsigned char *)in, (int)len) : 0;
    if (n < 0) {
        free(buf);
        return err_set(err, EINVAL, "invalid base64");
    }
    if (len >= 1 && in[len - 1] == '=')
        n--;
    if (len >= 2 && in[len - 2] == '=')
        n--;
    buf[n] = 0;
    *out = buf;
    *outlen = (size_t)n;
    return 0;
}

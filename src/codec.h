/*
 * codec.h - SHA-256 and base64 through libcrypto (no hand-written crypto or encodings).
 * Ownership: results are written into caller buffers or malloc'd (caller frees).
 */
#ifndef NIMBUS_CODEC_H
#define NIMBUS_CODEC_H

#include "err.h"

/* raw 32-byte digest */
void sha256(const void *data, size_t len, unsigned char out[32]);
/* Standard base64 with padding; returns malloc'd NUL-terminated string. */
char *b64_encode(const void *data, size_t len);
/* Decodes standard base64 (padding required, whitespace not allowed); malloc'd result.
 * Returns 0, or -EINVAL with err set when the input is not valid base64. */
int b64_decode(const char *in, size_t len, unsigned char **out, size_t *outlen, struct nb_err *err);

#endif

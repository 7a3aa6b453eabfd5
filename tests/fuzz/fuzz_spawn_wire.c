/*
 * fuzz_spawn_wire.c - libFuzzer target for the spawner's and the zygote's request decoders
 * (their input boundary): the bytes as a spawn spec (sandbox_req_decode), a park request
 * (sandbox_park_decode) and a zygote park request (zygote_park_decode, then the park request it
 * carries).
 *
 * Invariants checked: no crash, no leak (ASan); an accepted zygote request re-encodes to exactly
 * the same bytes, and everything it returns lies inside the input.
 */
#include <errno.h>

#include "sandbox.h"
#include "util.h"
#include "zygote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool inside(const void *p, const uint8_t *data, size_t size)
{
    return (const uint8_t *)p >= data && (const uint8_t *)p <= data + size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nb_err err = {0};
    struct nb_sandbox_req req;
    if (sandbox_req_decode(data, size, &req, &err) == 0)
        sandbox_req_release(&req);
    if (sandbox_park_decode(data, size, &req, &err) == 0)
        sandbox_req_release(&req);
    char **argv, **envp;
    const void *park;
    size_t park_len;
    if (zygote_park_decode(data, size, &argv, &envp, &park, &park_len, &err) < 0)
        return 0;
    for (size_t i = 0; argv[i]; i++)
        if (!inside(argv[i], data, size))
            BUG("zygote argv points outside the input");
    if (!inside(park, data, size) || (const uint8_t *)park + park_len != data + size)
        BUG("zygote park request is not the input's tail");
    if (zygote_park_req_decode(park, park_len, &req, &err) == 0) {
        struct nb_buf b = NB_BUF_INIT;
        if (zygote_park_encode((const char *const *)argv, (const char *const *)envp,
                               (const char *const *)req.cgroup_dirs, &b, &err) < 0)
            BUG("accepted zygote request does not re-encode: %s", err.msg);
        if (b.len != size || memcmp(b.data, data, size))
            BUG("zygote request round trip differs");
        buf_release(&b);
        sandbox_req_release(&req);
    }
    free(argv);
    free(envp);
    return 0;
}

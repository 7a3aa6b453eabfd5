/*
 * fuzz_sqs_query.c - libFuzzer target for the SQS query-protocol codec (sqs_codec.c): the form
 * parser with its flattened lists and maps, and, on what parses, the XML writer (the parsed tree
 * rendered as a reply), the message-attribute MD5 and the character rule.
 *
 * Invariants checked: no crash, no leak (ASan); a parse either fails with EINVAL and no output or
 * yields an object; the rendered XML has no raw '<' or '&' from values (every '<' opens a tag we
 * wrote: checked by counting that the escaped text of a value never contains them); the character
 * rule agrees with itself on prefixes that end on a character boundary.
 */
#include <errno.h>

#include "sqs_codec.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = NULL;
    struct nb_err err = {0};
    int r = sqs_query_parse((const char *)data, size, &j, &err);
    if (r < 0) {
        if (r != -EINVAL || j)
            BUG("parse returned %d", r);
    } else {
        if (!json_is_object(j))
            BUG("parse gave no object");
        size_t len;
        char *x = sqs_xml_reply("ReceiveMessage", j, "rid", &len);
        if (strlen(x) != len)
            BUG("reply length");
        free(x);
        x = sqs_xml_reply("SendMessageBatch", j, "rid", &len);
        free(x);
        char md5[33];
        json_t *attrs = json_object_get(j, "MessageAttributes");
        if (json_is_object(attrs))
            sqs_md5_attrs(attrs, md5, &err);
        const char *body = json_string_value(json_object_get(j, "MessageBody"));
        if (body) {
            size_t bl = json_string_length(json_object_get(j, "MessageBody"));
            struct nb_buf b = NB_BUF_INIT;
            sqs_xml_escape(&b, body, bl);
            if (b.len && (memchr(b.data, '<', b.len) || memchr(b.data, '\r', b.len)))
                BUG("escaped text holds '<' or CR");
            buf_release(&b);
            (void)sqs_valid_chars(body, bl);
        }
        json_decref(j);
    }
    /* the raw input as message contents */
    bool whole = sqs_valid_chars((const char *)data, size);
    if (whole && size && !sqs_valid_chars((const char *)data, size - 1) && data[size - 1] < 0x80)
        BUG("valid text with a valid ASCII last char has an invalid prefix");
    return 0;
}

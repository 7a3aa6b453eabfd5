/*
 * sqs_codec.c - SQS query-protocol parsing, XML replies, the character rule and MD5s (see
 * sqs_codec.h). Pure functions: no daemon state, safe on any thread; fuzzed by
 * tests/fuzz/fuzz_sqs_query.c.
 *
 * Query parsing is two passes: the form pairs build a tree of objects keyed by the dot-separated
 * segments ("Attribute.1.Name" -> {"Attribute":{"1":{"Name":..}}}), then fold() turns the
 * flattened members named in flat_rules[] into the JSON protocol's lists and maps.
 */
#include "sqs_codec.h"

#include <errno.h>
#include <openssl/evp.h>

#include "codec.h"
#include "http.h"

enum flat_kind { FLAT_LIST, FLAT_MAP };

struct flat_rule {
    const char *wire; /* flattened member name on the wire */
    const char *json; /* member name in the JSON shape */
    enum flat_kind kind;
    const char *key;   /* FLAT_MAP: member holding the key */
    const char *value; /* FLAT_MAP: member holding the value */
};

static const struct flat_rule flat_rules[] = {
    {"Attribute", "Attributes", FLAT_MAP, "Name", "Value"},
    {"Tag", "Tags", FLAT_MAP, "Key", "Value"},
    {"MessageAttribute", "MessageAttributes", FLAT_MAP, "Name", "Value"},
    {"MessageSystemAttribute", "MessageSystemAttributes", FLAT_MAP, "Name", "Value"},
    {"AttributeName", "AttributeNames", FLAT_LIST, NULL, NULL},
    {"MessageAttributeName", "MessageAttributeNames", FLAT_LIST, NULL, NULL},
    {"MessageSystemAttributeName", "MessageSystemAttributeNames", FLAT_LIST, NULL, NULL},
    {"TagKey", "TagKeys", FLAT_LIST, NULL, NULL},
    {"StringListValue", "StringListValues", FLAT_LIST, NULL, NULL},
    {"BinaryListValue", "BinaryListValues", FLAT_LIST, NULL, NULL},
    {"SendMessageBatchRequestEntry", "Entries", FLAT_LIST, NULL, NULL},
    {"DeleteMessageBatchRequestEntry", "Entries", FLAT_LIST, NULL, NULL},
    {"ChangeMessageVisibilityBatchRequestEntry", "Entries", FLAT_LIST, NULL, NULL},
};

static const struct flat_rule *rule_for(const char *wire)
{
    for (size_t i = 0; i < ARRAY_SIZE(flat_rules); i++)
        if (!strcmp(flat_rules[i].wire, wire))
            return &flat_rules[i];
    return NULL;
}

/* Form decoding of one component ('+' is a space) into *outlen bytes; NULL on a malformed
 * escape, or on a decoded NUL byte unless allow_nul (values may carry one: the operation refuses
 * it in SQS's own words, e.g. InvalidMessageContents). */
static char *form_decode(const char *s, size_t n, bool allow_nul, size_t *outlen)
{
    char *out = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%') {
            static const char hex[] = "0123456789abcdef0123456789ABCDEF";
            if (i + 2 >= n || !s[i + 1] || !s[i + 2]) {
                free(out);
                return NULL;
            }
            const char *h = memchr(hex, s[i + 1], 32);
            const char *l = memchr(hex, s[i + 2], 32);
            if (!h || !l) {
                free(out);
                return NULL;
            }
            int v = (int)((h - hex) % 16) * 16 + (int)((l - hex) % 16);
            if (v == 0 && !allow_nul) {
                free(out);
                return NULL;
            }
            out[o++] = (char)v;
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

/* Puts value at the dotted path key into root. */
static int tree_put(json_t *root, const char *key, const char *value, size_t vlen,
                    struct nb_err *err)
{
    if (!*key)
        return err_set(err, EINVAL, "empty parameter name");
    json_t *node = root;
    const char *seg = key;
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t n = dot ? (size_t)(dot - seg) : strlen(seg);
        if (n == 0)
            return err_set(err, EINVAL, "malformed parameter name '%s'", key);
        _cleanup_free_ char *name = xstrndup(seg, n);
        json_t *child = json_object_get(node, name);
        if (!dot) {
            if (child)
                return err_set(err, EINVAL, "parameter '%s' given twice", key);
            /* no UTF-8 check: operations check message contents with SQS's rule */
            json_object_set_new(node, name, json_stringn_nocheck(value, vlen));
            return 0;
        }
        if (!child) {
            child = json_object();
            json_object_set_new(node, name, child);
        } else if (!json_is_object(child)) {
            return err_set(err, EINVAL, "parameter '%s' is both a value and a structure", key);
        }
        node = child;
        seg = dot + 1;
    }
}

static int fold(json_t *obj, struct nb_err *err);

/* {"1":x,"2":y} -> [x, y] ordered by index (indices positive integers). */
static int to_list(json_t *o, const char *wire, json_t **out, struct nb_err *err)
{
    size_t n = json_object_size(o);
    struct {
        int64_t idx;
        json_t *v;
    } *items = xcalloc(n ? n : 1, sizeof(*items));
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach (o, k, v) {
        int64_t idx;
        if (parse_i64(k, 1, 1000000, &idx) < 0) {
            free(items);
            return err_set(err, EINVAL, "invalid index '%s' in parameter '%s'", k, wire);
        }
        items[i].idx = idx;
        items[i].v = v;
        i++;
    }
    /* insertion sort: lists are short (<= 10 entries in practice) */
    for (size_t a = 1; a < n; a++)
        for (size_t b = a; b > 0 && items[b - 1].idx > items[b].idx; b--) {
            __typeof__(items[0]) t = items[b];
            items[b] = items[b - 1];
            items[b - 1] = t;
        }
    json_t *list = json_array();
    for (i = 0; i < n; i++) {
        if (json_is_object(items[i].v)) {
            int r = fold(items[i].v, err);
            if (r < 0) {
                json_decref(list);
                free(items);
                return r;
            }
        }
        json_array_append(list, items[i].v);
    }
    free(items);
    *out = list;
    return 0;
}

static int to_map(json_t *o, const struct flat_rule *rule, json_t **out, struct nb_err *err)
{
    json_t *list;
    int r = to_list(o, rule->wire, &list, err);
    if (r < 0)
        return r;
    json_t *map = json_object();
    size_t i;
    json_t *e;
    json_array_foreach (list, i, e) {
        json_t *k = json_is_object(e) ? json_object_get(e, rule->key) : NULL;
        json_t *v = json_is_object(e) ? json_object_get(e, rule->value) : NULL;
        if (!json_is_string(k) || !v) {
            json_decref(list);
            json_decref(map);
            return err_set(err, EINVAL, "entry %zu of '%s' needs a %s and a %s", i + 1, rule->wire,
                           rule->key, rule->value);
        }
        json_object_set(map, json_string_value(k), v);
    }
    json_decref(list);
    *out = map;
    return 0;
}

/* Folds flattened members of obj (recursively) into lists and maps. */
static int fold(json_t *obj, struct nb_err *err)
{
    const char *k;
    json_t *v;
    void *tmp;
    json_t *add = json_object();
    json_object_foreach_safe (obj, tmp, k, v) {
        const struct flat_rule *rule = rule_for(k);
        json_t *nv = NULL;
        int r = 0;
        if (rule && json_is_string(v)) {
            /* "AttributeName=" (no index): botocore's empty list */
            if (*json_string_value(v)) {
                r = err_set(err, EINVAL, "parameter '%s' needs an index", k);
            } else {
                nv = rule->kind == FLAT_LIST ? json_array() : json_object();
            }
        } else if (rule) {
            r = rule->kind == FLAT_LIST ? to_list(v, k, &nv, err) : to_map(v, rule, &nv, err);
        } else if (json_is_object(v)) {
            r = fold(v, err);
            continue;
        } else {
            continue;
        }
        if (r < 0) {
            json_decref(add);
            return r;
        }
        json_object_del(obj, k);
        if (json_object_get(add, rule->json)) {
            json_decref(nv);
            json_decref(add);
            return err_set(err, EINVAL, "parameter '%s' given twice", rule->json);
        }
        json_object_set_new(add, rule->json, nv);
    }
    json_object_update(obj, add);
    json_decref(add);
    return 0;
}

int sqs_query_parse(const char *body, size_t len, json_t **out, struct nb_err *err)
{
    json_t *root = json_object();
    size_t i = 0;
    while (i < len) {
        const char *amp = memchr(body + i, '&', len - i);
        size_t end = amp ? (size_t)(amp - body) : len;
        if (end > i) {
            const char *eq = memchr(body + i, '=', end - i);
            size_t klen = eq ? (size_t)(eq - (body + i)) : end - i;
            size_t kn = 0, vn = 0;
            _cleanup_free_ char *key = form_decode(body + i, klen, false, &kn);
            _cleanup_free_ char *val =
                eq ? form_decode(eq + 1, end - (size_t)(eq + 1 - body), true, &vn) : xstrdup("");
            if (!key || !val) {
                json_decref(root);
                return err_set(err, EINVAL, "malformed percent-encoding in the request body");
            }
            int r = tree_put(root, key, val, vn, err);
            if (r < 0) {
                json_decref(root);
                return r;
            }
        }
        i = end + 1;
    }
    int r = fold(root, err);
    if (r < 0) {
        json_decref(root);
        return r;
    }
    *out = root;
    return 0;
}

void sqs_xml_escape(struct nb_buf *b, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep;
        switch (s[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&apos;";
            break;
        case '\r':
            rep = "&#xD;";
            break;
        case '\t':
        case '\n':
            continue;
        default:
            /* other C0 controls cannot appear in XML 1.0, not even as references; message
             * contents never hold them (refused on send), other echoed input may */
            if ((unsigned char)s[i] >= 0x20)
                continue;
            rep = "\xef\xbf\xbd"; /* U+FFFD */
            break;
        }
        buf_append(b, s + start, i - start);
        buf_appends(b, rep);
        start = i + 1;
    }
    buf_append(b, s + start, n - start);
}

static void x_open(struct nb_buf *b, const char *tag)
{
    buf_appendf(b, "<%s>", tag);
}

static void x_close(struct nb_buf *b, const char *tag)
{
    buf_appendf(b, "</%s>", tag);
}

static void x_value(struct nb_buf *b, const char *op, const char *tag, json_t *v);

static void x_scalar(struct nb_buf *b, json_t *v)
{
    if (json_is_string(v))
        sqs_xml_escape(b, json_string_value(v), json_string_length(v));
    else if (json_is_true(v))
        buf_appends(b, "true");
    else if (json_is_false(v))
        buf_appends(b, "false");
    else if (json_is_integer(v))
        buf_appendf(b, "%lld", (long long)json_integer_value(v));
}

static void x_members(struct nb_buf *b, const char *op, json_t *obj)
{
    const char *k;
    json_t *v;
    json_object_foreach (obj, k, v)
        x_value(b, op, k, v);
}

/* A flattened map: <tag><K>key</K><V>value</V></tag> per entry. */
static void x_map(struct nb_buf *b, const char *op, const char *tag, const char *kn, const char *vn,
                  json_t *map)
{
    const char *k;
    json_t *v;
    json_object_foreach (map, k, v) {
        x_open(b, tag);
        x_open(b, kn);
        sqs_xml_escape(b, k, strlen(k));
        x_close(b, kn);
        x_value(b, op, vn, v);
        x_close(b, tag);
    }
}

static void x_value(struct nb_buf *b, const char *op, const char *tag, json_t *v)
{
    if (json_is_object(v)) {
        if (!strcmp(tag, "Attributes")) {
            x_map(b, op, "Attribute", "Name", "Value", v);
            return;
        }
        if (!strcmp(tag, "MessageAttributes")) {
            x_map(b, op, "MessageAttribute", "Name", "Value", v);
            return;
        }
        if (!strcmp(tag, "Tags")) {
            x_map(b, op, "Tag", "Key", "Value", v);
            return;
        }
        x_open(b, tag);
        x_members(b, op, v);
        x_close(b, tag);
        return;
    }
    if (json_is_array(v)) {
        char entry[96];
        const char *item = tag;
        if (!strcmp(tag, "QueueUrls") || !strcmp(tag, "queueUrls"))
            item = "QueueUrl";
        else if (!strcmp(tag, "Messages"))
            item = "Message";
        else if (!strcmp(tag, "Failed"))
            item = "BatchResultErrorEntry";
        else if (!strcmp(tag, "StringListValues"))
            item = "StringListValue";
        else if (!strcmp(tag, "BinaryListValues"))
            item = "BinaryListValue";
        else if (!strcmp(tag, "Successful")) {
            snprintf(entry, sizeof(entry), "%sResultEntry", op);
            item = entry;
        }
        size_t i;
        json_t *e;
        json_array_foreach (v, i, e)
            x_value(b, op, item, e);
        return;
    }
    x_open(b, tag);
    x_scalar(b, v);
    x_close(b, tag);
}

char *sqs_xml_reply(const char *op, json_t *out, const char *request_id, size_t *len)
{
    struct nb_buf b = NB_BUF_INIT;
    buf_appendf(&b, "<?xml version=\"1.0\"?><%sResponse xmlns=\"" SQS_XMLNS "\">", op);
    static const char *const no_output[] = {
        "DeleteQueue", "SetQueueAttributes", "DeleteMessage", "ChangeMessageVisibility",
        "PurgeQueue",  "TagQueue",           "UntagQueue"};
    bool result = true;
    for (size_t i = 0; i < ARRAY_SIZE(no_output); i++)
        if (!strcmp(no_output[i], op))
            result = false;
    if (result) {
        buf_appendf(&b, "<%sResult>", op);
        x_members(&b, op, out);
        buf_appendf(&b, "</%sResult>", op);
    }
    buf_appendf(&b, "<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>",
                request_id, op);
    return buf_detach(&b, len);
}

char *sqs_xml_error(const char *code, bool sender, const char *msg, const char *request_id,
                    size_t *len)
{
    struct nb_buf b = NB_BUF_INIT;
    buf_appendf(&b,
                "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"" SQS_XMLNS
                "\"><Error><Type>%s</Type><Code>",
                sender ? "Sender" : "Receiver");
    sqs_xml_escape(&b, code, strlen(code));
    buf_appends(&b, "</Code><Message>");
    sqs_xml_escape(&b, msg, strlen(msg));
    buf_appendf(&b, "</Message><Detail/></Error><RequestId>%s</RequestId></ErrorResponse>",
                request_id);
    return buf_detach(&b, len);
}

bool sqs_valid_chars(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        uint32_t c = p[i];
        size_t k;
        if (c < 0x80) {
            k = 0;
        } else if ((c & 0xE0) == 0xC0) {
            c &= 0x1F, k = 1;
        } else if ((c & 0xF0) == 0xE0) {
            c &= 0x0F, k = 2;
        } else if ((c & 0xF8) == 0xF0) {
            c &= 0x07, k = 3;
        } else {
            return false;
        }
        if (i + k >= n)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80)
                return false;
            c = (c << 6) | (p[i + j] & 0x3F);
        }
        /* overlong forms */
        if ((k == 1 && c < 0x80) || (k == 2 && c < 0x800) || (k == 3 && c < 0x10000))
            return false;
        bool ok = c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
                  (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
        if (!ok)
            return false;
        i += k + 1;
    }
    return true;
}

void sqs_md5_hex(const void *data, size_t n, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, n, md, &mdlen, EVP_md5(), NULL) || mdlen != 16)
        BUG("MD5 failed");
    hex_encode(md, 16, out);
}

static void put_len(struct nb_buf *b, const void *p, size_t n)
{
    unsigned char l[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};
    buf_append(b, l, 4);
    buf_append(b, p, n);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int sqs_md5_attrs(json_t *attrs, char out[33], struct nb_err *err)
{
    out[0] = '\0';
    size_t n = json_object_size(attrs);
    if (!n)
        return 0;
    const char **names = xmalloc(n * sizeof(*names));
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach (attrs, k, v)
        names[i++] = k;
    qsort(names, n, sizeof(*names), cmp_str);
    struct nb_buf b = NB_BUF_INIT;
    int r = 0;
    for (i = 0; i < n && r == 0; i++) {
        json_t *a = json_object_get(attrs, names[i]);
        const char *type = json_string_value(json_object_get(a, "DataType"));
        if (!type)
            type = "";
        put_len(&b, names[i], strlen(names[i]));
        put_len(&b, type, strlen(type));
        json_t *sv = json_object_get(a, "StringValue");
        json_t *bv = json_object_get(a, "BinaryValue");
        if (json_is_string(sv)) {
            buf_append(&b, "\x01", 1);
            put_len(&b, json_string_value(sv), json_string_length(sv));
        } else if (json_is_string(bv)) {
            unsigned char *raw = NULL;
            size_t rawlen = 0;
            r = b64_decode(json_string_value(bv), json_string_length(bv), &raw, &rawlen, err);
            if (r == 0) {
                buf_append(&b, "\x02", 1);
                put_len(&b, raw, rawlen);
            }
            free(raw);
        }
    }
    if (r == 0)
        sqs_md5_hex(b.data ? b.data : "", b.len, out);
    buf_release(&b);
    free(names);
    return r;
}

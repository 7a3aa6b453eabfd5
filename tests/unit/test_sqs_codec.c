/*
 * test_sqs_codec.c - unit tests for sqs_codec.c: query parsing (percent-decoding, '+', flattened
 * lists, maps and batch entries folded into the JSON shape, refusals), XML escaping of bodies with
 * markup and control characters, the reply and error documents, SQS's character rule, and the
 * message-attribute MD5 against a vector computed by an independent implementation (Python's
 * hashlib over the byte layout of LAMBDA.md §6.4).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>

#include "sqs_codec.h"

static json_t *parse_ok(const char *body)
{
    json_t *j = NULL;
    struct nb_err err = {0};
    int r = sqs_query_parse(body, strlen(body), &j, &err);
    if (r < 0)
        fail_msg("parse '%s': %s", body, err.msg);
    return j;
}

static void assert_json(json_t *j, const char *want)
{
    json_t *w = json_loads(want, 0, NULL);
    assert_non_null(w);
    if (!json_equal(j, w)) {
        char *got = json_dumps(j, JSON_SORT_KEYS);
        fail_msg("got %s want %s", got, want);
    }
    json_decref(w);
}

static void test_query_scalars_and_decoding(void **state)
{
    json_t *j = parse_ok("Action=SendMessage&Version=2012-11-05&QueueUrl=http%3A%2F%2Fh%3A1%2F0%2"
                         "Fq&MessageBody=a+b%26c%3D%25%E4%B8%AD&Empty=&Bare");
    assert_json(j, "{\"Action\":\"SendMessage\",\"Version\":\"2012-11-05\",\"QueueUrl\":"
                   "\"http://h:1/0/q\",\"MessageBody\":\"a b&c=%\\u4e2d\",\"Empty\":\"\","
                   "\"Bare\":\"\"}");
    json_decref(j);
}

static void test_query_flattened(void **state)
{
    json_t *j =
        parse_ok("Attribute.2.Name=DelaySeconds&Attribute.2.Value=5&Attribute.1.Name="
                 "VisibilityTimeout&Attribute.1.Value=30&AttributeName.2=B&AttributeName.1=A"
                 "&AttributeName.10=C&Tag.1.Key=k&Tag.1.Value=v");
    assert_json(j, "{\"Attributes\":{\"VisibilityTimeout\":\"30\",\"DelaySeconds\":\"5\"},"
                   "\"AttributeNames\":[\"A\",\"B\",\"C\"],\"Tags\":{\"k\":\"v\"}}");
    json_decref(j);
    j = parse_ok("SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=x"
                 "&SendMessageBatchRequestEntry.1.MessageAttribute.1.Name=n"
                 "&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType=String"
                 "&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue=v"
                 "&SendMessageBatchRequestEntry.2.Id=b&SendMessageBatchRequestEntry.2.MessageBody=y"
                 "&SendMessageBatchRequestEntry.2.MessageAttribute.1.Name=l"
                 "&SendMessageBatchRequestEntry.2.MessageAttribute.1.Value.DataType=String"
                 "&SendMessageBatchRequestEntry.2.MessageAttribute.1.Value.StringListValue.1=p");
    assert_json(j,
                "{\"Entries\":[{\"Id\":\"a\",\"MessageBody\":\"x\",\"MessageAttributes\":{\"n\":"
                "{\"DataType\":\"String\",\"StringValue\":\"v\"}}},{\"Id\":\"b\",\"MessageBody\":"
                "\"y\",\"MessageAttributes\":{\"l\":{\"DataType\":\"String\","
                "\"StringListValues\":[\"p\"]}}}]}");
    json_decref(j);
    /* botocore's empty list: the bare key with an empty value */
    j = parse_ok("AttributeName=&TagKey.1=a");
    assert_json(j, "{\"AttributeNames\":[],\"TagKeys\":[\"a\"]}");
    json_decref(j);
}

static void test_query_refusals(void **state)
{
    const char *bad[] = {
        "A=%zz",
        "A=%4",
        "%00=x",
        "A=1&A=2",
        "A=1&A.1=2",
        "AttributeName.0=x",
        "AttributeName.x=y",
        "Attribute.1.Value=v",
        "AttributeName=x",
        "A..B=1",
        ".A=1",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        json_t *j = NULL;
        struct nb_err err = {0};
        if (sqs_query_parse(bad[i], strlen(bad[i]), &j, &err) != -EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
        assert_null(j);
        assert_int_equal(err.code, EINVAL);
    }
    /* a NUL in a value is kept (the operation refuses it as InvalidMessageContents) */
    json_t *j = parse_ok("MessageBody=a%00b");
    assert_int_equal(json_string_length(json_object_get(j, "MessageBody")), 3);
    json_decref(j);
}

static void test_xml_escape_and_reply(void **state)
{
    struct nb_buf b = NB_BUF_INIT;
    const char body[] = "<a href=\"x\">&'\r\n\t</a>";
    sqs_xml_escape(&b, body, sizeof(body) - 1);
    assert_string_equal(b.data, "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&#xD;\n\t&lt;/a&gt;");
    buf_release(&b);
    sqs_xml_escape(&b, "a\0b\x01", 4);
    assert_string_equal(b.data, "a\xef\xbf\xbd"
                                "b\xef\xbf\xbd");
    buf_release(&b);

    json_t *out = json_loads("{\"Messages\":[{\"Body\":\"<&>\",\"Attributes\":{\"SenderId\":"
                             "\"1\"},\"MessageAttributes\":{\"n\":{\"StringValue\":\"v\","
                             "\"DataType\":\"String\"}}}]}",
                             0, NULL);
    size_t len;
    char *x = sqs_xml_reply("ReceiveMessage", out, "rid", &len);
    assert_string_equal(
        x, "<?xml version=\"1.0\"?><ReceiveMessageResponse xmlns=\"" SQS_XMLNS
           "\"><ReceiveMessageResult><Message><Body>&lt;&amp;&gt;</Body><Attribute><Name>SenderId"
           "</Name><Value>1</Value></Attribute><MessageAttribute><Name>n</Name><Value><StringValue>"
           "v</StringValue><DataType>String</DataType></Value></MessageAttribute></Message>"
           "</ReceiveMessageResult><ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata>"
           "</ReceiveMessageResponse>");
    assert_int_equal(len, strlen(x));
    free(x);
    json_decref(out);
    out = json_loads("{\"Successful\":[{\"Id\":\"a\"}],\"Failed\":[{\"Id\":\"b\",\"SenderFault\":"
                     "true}]}",
                     0, NULL);
    x = sqs_xml_reply("DeleteMessageBatch", out, "r", &len);
    assert_non_null(strstr(x, "<DeleteMessageBatchResultEntry><Id>a</Id>"
                              "</DeleteMessageBatchResultEntry><BatchResultErrorEntry><Id>b</Id>"
                              "<SenderFault>true</SenderFault></BatchResultErrorEntry>"));
    free(x);
    json_decref(out);
    /* operations without an output have no Result element; those with one always do */
    out = json_object();
    x = sqs_xml_reply("DeleteMessage", out, "r", &len);
    assert_null(strstr(x, "Result"));
    free(x);
    x = sqs_xml_reply("ReceiveMessage", out, "r", &len);
    assert_non_null(strstr(x, "<ReceiveMessageResult></ReceiveMessageResult>"));
    free(x);
    json_decref(out);
    x = sqs_xml_error("AWS.SimpleQueueService.NonExistentQueue", true, "no <queue>", "r", &len);
    assert_string_equal(x, "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"" SQS_XMLNS
                           "\"><Error><Type>Sender</Type><Code>AWS.SimpleQueueService."
                           "NonExistentQueue</Code><Message>no &lt;queue&gt;</Message><Detail/>"
                           "</Error><RequestId>r</RequestId></ErrorResponse>");
    free(x);
}

static void test_valid_chars(void **state)
{
    const char *good[] = {"",
                          "plain",
                          "\t\n\r",
                          "\xc3\xa9",
                          "\xe4\xb8\xad",
                          "\xed\x9f\xbf",
                          "\xee\x80\x80",
                          "\xef\xbf\xbd",
                          "\xf0\x9f\x98\x80",
                          "\xf4\x8f\xbf\xbf"};
    for (size_t i = 0; i < ARRAY_SIZE(good); i++)
        if (!sqs_valid_chars(good[i], strlen(good[i])))
            fail_msg("good[%zu] refused", i);
    const char *bad[] = {"\x01",
                         "\x08",
                         "\x1f",
                         "\xed\xa0\x80" /* surrogate */,
                         "\xef\xbf\xbe" /* U+FFFE */,
                         "\xef\xbf\xbf",
                         "\xc0\xaf" /* overlong */,
                         "\xe0\x80\xaf",
                         "\xf4\x90\x80\x80" /* > U+10FFFF */,
                         "\xc3",
                         "\xe4\xb8",
                         "\x80",
                         "\xff"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        if (sqs_valid_chars(bad[i], strlen(bad[i])))
            fail_msg("bad[%zu] accepted", i);
    assert_false(sqs_valid_chars("a\0b", 3));
}

static void test_md5(void **state)
{
    char hex[33];
    sqs_md5_hex("", 0, hex);
    assert_string_equal(hex, "d41d8cd98f00b204e9800998ecf8427e");
    sqs_md5_hex("The quick brown fox jumps over the lazy dog", 43, hex);
    assert_string_equal(hex, "9e107d9d372bb6826bd81d3542a419d6");
    /* names unsorted on purpose: the digest sorts them */
    json_t *a = json_loads("{\"Population\":{\"DataType\":\"Number\",\"StringValue\":\"1250800\"},"
                           "\"City\":{\"DataType\":\"String\",\"StringValue\":\"Any City\"},"
                           "\"Data\":{\"DataType\":\"Binary\",\"BinaryValue\":\"AAEC\"}}",
                           0, NULL);
    struct nb_err err = {0};
    assert_int_equal(sqs_md5_attrs(a, hex, &err), 0);
    assert_string_equal(hex, "337f7ef4e46d03a9106aec5fa5736bc9");
    json_object_set_new(json_object_get(a, "Data"), "BinaryValue", json_string("!!"));
    assert_int_equal(sqs_md5_attrs(a, hex, &err), -EINVAL);
    json_decref(a);
    a = json_object();
    assert_int_equal(sqs_md5_attrs(a, hex, &err), 0);
    assert_string_equal(hex, "");
    json_decref(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_scalars_and_decoding),
        cmocka_unit_test(test_query_flattened),
        cmocka_unit_test(test_query_refusals),
        cmocka_unit_test(test_xml_escape_and_reply),
        cmocka_unit_test(test_valid_chars),
        cmocka_unit_test(test_md5),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

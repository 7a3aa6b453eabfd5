/*
 * sqs_codec.h - the wire side of SQS that is pure functions: the query protocol's form parser
 * (flattened lists and maps folded into the JSON protocol's input shape), the XML writer of query
 * replies and errors, SQS's character rule for message contents, and the body and
 * message-attribute MD5s clients verify (LAMBDA.md §6).
 *
 * Both protocols meet in one representation: an operation's input and output are JSON objects in
 * the JSON 1.0 protocol's shape (member names of the model, no flattening). Query inputs keep
 * scalars as strings; operations accept a number or a boolean as a string or as JSON.
 * Ownership: returned json_t are new references; returned strings are malloc'd (caller frees).
 */
#ifndef NIMBUS_SQS_CODEC_H
#define NIMBUS_SQS_CODEC_H

#include <jansson.h>

#include "err.h"

#define SQS_XMLNS "http://queue.amazonaws.com/doc/2012-11-05/"

/* Parses an application/x-www-form-urlencoded body (percent-decoding, '+' = space) into a JSON
 * object: "Attribute.1.Name=a&Attribute.1.Value=b" becomes {"Attributes":{"a":"b"}},
 * "AttributeName.1=All" {"AttributeNames":["All"]}, batch entries a list of objects
 * ("Entries"), message attributes {"MessageAttributes":{"n":{"DataType":..,"StringValue":..}}}.
 * Other keys stay as they are ("Action", "QueueUrl", ...). -EINVAL with a message on a malformed
 * escape, a bad index, a key that is both a value and a structure, or a map entry without its
 * name. */
int sqs_query_parse(const char *body, size_t len, json_t **out, struct nb_err *err);

/* Renders op's output (JSON shape) as the query protocol's XML reply:
 * <OpResponse xmlns><OpResult>…</OpResult><ResponseMetadata><RequestId>…. Lists and maps are
 * written flattened under the model's names (QueueUrl, Message, Attribute Name/Value,
 * MessageAttribute, Tag Key/Value, <Op>ResultEntry, BatchResultErrorEntry). out is borrowed. */
char *sqs_xml_reply(const char *op, json_t *out, const char *request_id, size_t *len);
/* The query protocol's error document (ErrorResponse/Error/Type,Code,Message). */
char *sqs_xml_error(const char *code, bool sender, const char *msg, const char *request_id,
                    size_t *len);
/* Appends s (n bytes) to b with XML escaping: & < > " ' and CR (as &#xD;, which an XML parser
 * would otherwise turn into LF); other C0 control characters but TAB and LF, which XML 1.0 cannot
 * carry at all, become U+FFFD. */
struct nb_buf;
void sqs_xml_escape(struct nb_buf *b, const char *s, size_t n);

/* True when s (n bytes) is UTF-8 made only of the characters SQS allows in messages:
 * #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF. */
bool sqs_valid_chars(const char *s, size_t n);

/* Lowercase hex MD5 of n bytes (out: 33 bytes). */
void sqs_md5_hex(const void *data, size_t n, char out[33]);
/* MD5OfMessageAttributes of attrs ({"name":{"DataType","StringValue"|"BinaryValue"(base64)}}):
 * names sorted bytewise; each as 4-byte big-endian length + name, length + DataType, one
 * transport byte (1 String/Number, 2 Binary), length + value (binary decoded). out: 33 bytes;
 * "" for an empty or NULL map. -EINVAL when a binary value is not base64. */
int sqs_md5_attrs(json_t *attrs, char out[33], struct nb_err *err);

#endif

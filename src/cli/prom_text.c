/*
 * prom_text.c - the Prometheus text format reader (prom_text.h).
 *
 * Grammar of a sample line: NAME [ "{" [ LABEL "=" '"' VALUE '"' { "," LABEL "=" ... } [","] ] "}"
 * ] SP VALUE [ SP TIMESTAMP ], where names match [a-zA-Z_:][a-zA-Z0-9_:]* (labels without ':'),
 * label values escape only backslash, double quote and newline (\\, \", \n), and the value is a
 * float or +Inf, -Inf, NaN. Label values are unescaped over themselves (never longer).
 */
#include "cli/prom_text.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool name_start(char c, bool colon)
{
    return isalpha((unsigned char)c) || c == '_' || (colon && c == ':');
}

static bool name_char(char c, bool colon)
{
    return name_start(c, colon) || isdigit((unsigned char)c);
}

/* Reads a name at *p (NUL-terminated in place by the caller's next step); false when empty. */
static bool read_name(char **p, bool colon)
{
    char *s = *p;
    if (!name_start(*s, colon))
        return false;
    while (name_char(*s, colon))
        s++;
    *p = s;
    return true;
}

static bool read_value(const char *s, double *v)
{
    if (!strcmp(s, "+Inf") || !strcmp(s, "Inf")) {
        *v = INFINITY;
        return true;
    }
    if (!strcmp(s, "-Inf")) {
        *v = -INFINITY;
        return true;
    }
    if (!strcmp(s, "NaN")) {
        *v = NAN;
        return true;
    }
    if (!*s || isspace((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return *end == '\0' && isfinite(*v) && errno != ERANGE;
}

/* Parses {labels} at *p (which points at '{'); unescapes values in place. */
static bool read_labels(char **p, struct prom_label *labels, size_t *n)
{
    char *s = *p + 1;
    *n = 0;
    while (*s != '}') {
        if (*n == PROM_MAX_LABELS)
            return false;
        char *name = s;
        if (!read_name(&s, false) || s[0] != '=' || s[1] != '"')
            return false;
        *s = '\0';
        s += 2;
        char *value = s, *out = s;
        for (; *s && *s != '"'; s++) {
            if (*s == '\\') {
                s++;
                if (*s == 'n')
                    *out++ = '\n';
                else if (*s == '\\' || *s == '"')
                    *out++ = *s;
                else
                    return false;
            } else if (*s == '\n') {
                return false;
            } else {
                *out++ = *s;
            }
        }
        if (*s != '"')
            return false;
        *out = '\0';
        s++;
        labels[*n].name = name;
        labels[(*n)++].value = value;
        if (*s == ',')
            s++;
        else if (*s != '}')
            return false;
    }
    *p = s + 1;
    return true;
}

static bool parse_line(char *line, prom_sample_cb cb, void *data)
{
    char *p = line;
    if (!read_name(&p, true))
        return false;
    struct prom_label labels[PROM_MAX_LABELS];
    size_t n = 0;
    char after = *p;
    *p = '\0'; /* ends the name; after keeps what was there */
    if (after == '{') {
        *p = '{';
        char *name_end = p;
        if (!read_labels(&p, labels, &n))
            return false;
        *name_end = '\0';
        after = *p;
    }
    if (after != ' ')
        return false;
    char *v = p + 1;
    char *sp = strchr(v, ' ');
    if (sp) { /* a timestamp: an integer, ignored */
        *sp = '\0';
        char *end;
        strtoll(sp + 1, &end, 10);
        if (end == sp + 1 || *end)
            return false;
    }
    double value;
    if (!read_value(v, &value))
        return false;
    cb(data, line, labels, n, value);
    return true;
}

int prom_text_parse(char *text, prom_sample_cb cb, void *data, struct nb_err *err)
{
    int lineno = 0;
    for (char *line = text, *next; line && *line; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        if (!parse_line(line, cb, data))
            return err_set(err, EPROTO, "invalid /metrics answer: bad sample on line %d", lineno);
    }
    return 0;
}

const char *prom_label(const struct prom_label *labels, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(labels[i].name, name))
            return labels[i].value;
    return "";
}

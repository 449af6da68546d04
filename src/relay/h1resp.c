#include "relay/h1resp.h"

#include <string.h>
#include <strings.h>

#include "base/hopbyhop.h"
#include "base/num.h"

#define MAX_LINE 4096 /* a chunk-size or trailer line; longer is garbage, not a response */

int
skiff_h1_hop_by_hop(const char *name, size_t n)
{
    /* Beside the hop-by-hop fields: content-length, which the framing consumed (skiff frames
     * what it sends itself); proxy-authenticate, a challenge meant for the hop that asked;
     * alt-svc, which would send the client to Google instead of skiff. */
    static const struct skiff_name drop[] = {
        SKIFF_NAME("content-length"), SKIFF_NAME("proxy-authenticate"), SKIFF_NAME("alt-svc")};
    return skiff_hop_by_hop(name, n) || skiff_name_in(name, n, drop, sizeof drop / sizeof drop[0]);
}

int
skiff_h1_token_listed(const char *v, size_t vlen, const char *name, size_t n)
{
    const char *end = v + vlen;
    while (v < end) {
        while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
            v++;
        const char *t = v;
        while (v < end && *v != ',' && *v != ' ' && *v != '\t')
            v++;
        if ((size_t)(v - t) == n && n && strncasecmp(t, name, n) == 0)
            return 1;
    }
    return 0;
}

static int
is_connection(const char *name, size_t n)
{
    return n == 10 && strncasecmp(name, "connection", 10) == 0;
}

void
skiff_h1_drop_connection(struct skiff_buf *block, size_t from)
{
    if (block->len <= from)
        return;
    char *start = block->data + from, *end = block->data + block->len;
    /* Pass 1: the names every Connection line lists, before or after the fields. */
    char names[2048];
    size_t nl_len = 0;
    int any = 0;
    for (char *l = start; l < end;) {
        char *nl = memchr(l, '\n', (size_t)(end - l));
        char *le = nl ? nl : end;
        if (le > l && le[-1] == '\r')
            le--;
        char *colon = memchr(l, ':', (size_t)(le - l));
        if (colon && is_connection(l, (size_t)(colon - l))) {
            size_t n = (size_t)(le - colon - 1);
            if (nl_len + n + 1 > sizeof names) {
                block->len = from; /* kilobytes of Connection: garbage, none of it goes on */
                if (block->data)
                    block->data[from] = '\0';
                return;
            }
            memcpy(names + nl_len, colon + 1, n);
            nl_len += n;
            names[nl_len++] = ',';
            any = 1;
        }
        l = nl ? nl + 1 : end;
    }
    if (!any)
        return;
    /* Pass 2: keep the lines that are neither Connection nor named by one. */
    char *w = start;
    for (char *l = start; l < end;) {
        char *nl = memchr(l, '\n', (size_t)(end - l));
        char *next = nl ? nl + 1 : end;
        char *colon = memchr(l, ':', (size_t)((nl ? nl : end) - l));
        size_t n = colon ? (size_t)(colon - l) : 0;
        if (!colon || !(is_connection(l, n) || skiff_h1_token_listed(names, nl_len, l, n))) {
            memmove(w, l, (size_t)(next - l));
            w += next - l;
        }
        l = next;
    }
    block->len = (size_t)(w - block->data);
    block->data[block->len] = '\0';
}

size_t
skiff_h1_head_end(const char *data, size_t len, size_t from)
{
    const char *p = data + from, *end = data + len;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p)))) {
        /* A line feed ends the head when the line it ends is empty: "\n\n" or "\n\r\n". */
        if (p > data && p[-1] == '\n')
            return (size_t)(p - data) + 1;
        if (p > data + 1 && p[-1] == '\r' && p[-2] == '\n')
            return (size_t)(p - data) + 1;
        p++;
    }
    return 0;
}

/* Whether the comma-separated list v[0..n) holds token t (case-insensitive). */
static int
list_has(const char *v, size_t n, const char *t)
{
    size_t tl = strlen(t);
    const char *end = v + n;
    while (v < end) {
        while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
            v++;
        const char *s = v;
        while (v < end && *v != ',')
            v++;
        const char *e = v;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - s) == tl && strncasecmp(s, t, tl) == 0)
            return 1;
    }
    return 0;
}

/* The last coding of a Transfer-Encoding list is chunked. */
static int
last_is_chunked(const char *v, size_t n)
{
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return n >= 7 && strncasecmp(v + n - 7, "chunked", 7) == 0 &&
           (n == 7 || v[n - 8] == ',' || v[n - 8] == ' ' || v[n - 8] == '\t');
}

/* A Content-Length value: one number, or a list of equal ones. -1 when it is neither. */
static int64_t
content_length(const char *v, size_t n)
{
    int64_t found = -1;
    const char *end = v + n;
    while (v < end) {
        while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
            v++;
        if (v == end)
            break;
        int64_t x = 0;
        int digits = 0;
        while (v < end && *v >= '0' && *v <= '9') {
            if (++digits > 18)
                return -1;
            x = x * 10 + (*v++ - '0');
        }
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        if (!digits || (v < end && *v != ',') || (found >= 0 && found != x))
            return -1;
        found = x;
    }
    return found;
}

int
skiff_h1_parse_head(struct skiff_h1resp *p, const char *head, size_t len, int head_request,
                    struct skiff_buf *out)
{
    const char *end = head + len;
    const char *eol = memchr(head, '\n', len);
    /* "HTTP/1.x SSS" then an optional reason phrase. */
    if (!eol || eol - head < 12 || memcmp(head, "HTTP/1.", 7) != 0 ||
        (head[7] != '0' && head[7] != '1') || head[8] != ' ')
        return -1;
    int minor = head[7] - '0';
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (head[i] < '0' || head[i] > '9')
            return -1;
        status = status * 10 + (head[i] - '0');
    }
    if (status < 100 || (head[12] != ' ' && head[12] != '\r' && head[12] != '\n'))
        return -1;
    p->status = status;
    p->keep_alive = minor == 1;

    int chunked = 0, has_te = 0;
    int64_t length = -1;
    size_t out_start = out->len;
    for (const char *line = eol + 1; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl)
            return -1;
        const char *le = nl > line && nl[-1] == '\r' ? nl - 1 : nl;
        if (le == line)
            break; /* the blank line */
        if (*line == ' ' || *line == '\t')
            return -1; /* obsolete line folding: not something an API answers with */
        const char *colon = memchr(line, ':', (size_t)(le - line));
        if (!colon || colon == line || colon[-1] == ' ' || colon[-1] == '\t')
            return -1;
        size_t nlen = (size_t)(colon - line);
        const char *v = colon + 1, *ve = le;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        size_t vlen = (size_t)(ve - v);
        if (nlen == 14 && strncasecmp(line, "content-length", 14) == 0) {
            int64_t x = content_length(v, vlen);
            if (x < 0 || (length >= 0 && x != length))
                return -1;
            length = x;
        } else if (nlen == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
            has_te = 1;
            chunked = last_is_chunked(v, vlen);
        } else if (nlen == 10 && strncasecmp(line, "connection", 10) == 0) {
            if (list_has(v, vlen, "close"))
                p->keep_alive = 0;
            else if (list_has(v, vlen, "keep-alive"))
                p->keep_alive = 1;
        }
        /* Connection stays until the fields it names are dropped with it, below. */
        if (!skiff_h1_hop_by_hop(line, nlen) || is_connection(line, nlen)) {
            /* "name: value" as it came (the usual form) in one piece, else rebuilt. */
            int rc = v == colon + 2 && colon[1] == ' '
                         ? skiff_buf_add(out, line, (size_t)(ve - line))
                         : skiff_buf_add(out, line, nlen) || skiff_buf_add(out, ": ", 2) ||
                               skiff_buf_add(out, v, vlen);
            if (rc || skiff_buf_add(out, "\r\n", 2))
                return -1;
        }
        line = nl + 1;
    }
    skiff_h1_drop_connection(out, out_start);

    p->left = 0;
    p->line_len = p->size_digits = p->in_extension = 0;
    if (status < 200) {
        if (status == 101)
            return -1;            /* nothing here asked to switch protocols */
        p->state = SKIFF_H1_HEAD; /* informational: the real head follows */
    } else if (head_request || status == 204 || status == 304) {
        p->state = SKIFF_H1_DONE;
    } else if (has_te) {
        /* Transfer-Encoding wins over Content-Length; a body framed both ways, or by an
         * encoding that is not chunked, ends the connection after it (RFC 9112 §6.3). */
        p->state = chunked ? SKIFF_H1_CHUNK_SIZE : SKIFF_H1_UNTIL_EOF;
        if (!chunked || length >= 0)
            p->keep_alive = 0;
    } else if (length >= 0) {
        p->left = length;
        p->state = length ? SKIFF_H1_LENGTH : SKIFF_H1_DONE;
    } else {
        p->state = SKIFF_H1_UNTIL_EOF;
        p->keep_alive = 0;
    }
    return 0;
}

/* Takes up to `left` bytes as body; moves to `next` when they are all in. */
static ssize_t
take(struct skiff_h1resp *p, const char *in, size_t len, const char **piece, size_t *piece_len,
     enum skiff_h1_state next)
{
    size_t n = (uint64_t)p->left < len ? (size_t)p->left : len;
    *piece = in;
    *piece_len = n;
    p->left -= (int64_t)n;
    if (p->left == 0)
        p->state = next;
    return (ssize_t)n;
}

ssize_t
skiff_h1_body(struct skiff_h1resp *p, const char *in, size_t len, const char **piece,
              size_t *piece_len)
{
    *piece = in;
    *piece_len = 0;
    switch (p->state) {
    case SKIFF_H1_LENGTH:
        return take(p, in, len, piece, piece_len, SKIFF_H1_DONE);
    case SKIFF_H1_CHUNK_DATA:
        return take(p, in, len, piece, piece_len, SKIFF_H1_CHUNK_END);
    case SKIFF_H1_UNTIL_EOF:
        *piece_len = len;
        return (ssize_t)len;
    case SKIFF_H1_HEAD:
    case SKIFF_H1_DONE:
        return 0;
    default:
        break;
    }
    /* Framing lines, byte by byte (they are short). */
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (p->state == SKIFF_H1_TRAILER && c == '\r')
            continue; /* a trailer line is empty when nothing but CR came before its LF */
        if (++p->line_len > MAX_LINE)
            return -1;
        switch (p->state) {
        case SKIFF_H1_CHUNK_SIZE:
            if (c == '\n') {
                if (!p->size_digits)
                    return -1;
                p->state = p->left ? SKIFF_H1_CHUNK_DATA : SKIFF_H1_TRAILER;
                p->line_len = 0;
                return (ssize_t)i + 1;
            }
            if (p->in_extension || c == '\r')
                break;
            if (c == ';') {
                p->in_extension = 1;
            } else if (c == ' ' || c == '\t') {
                if (p->size_digits)
                    p->in_extension = 1; /* only whitespace, then an extension, may follow */
            } else {
                int h = skiff_hexdigit(c);
                if (h < 0 || ++p->size_digits > 15)
                    return -1;
                p->left = p->left * 16 + h;
            }
            break;
        case SKIFF_H1_CHUNK_END:
            if (c == '\n') {
                p->state = SKIFF_H1_CHUNK_SIZE;
                p->line_len = p->size_digits = p->in_extension = 0;
                p->left = 0;
                return (ssize_t)i + 1;
            }
            if (c != '\r' || p->line_len > 1)
                return -1;
            break;
        case SKIFF_H1_TRAILER:
            if (c == '\n') {
                if (p->line_len == 1) {
                    p->state = SKIFF_H1_DONE;
                    return (ssize_t)i + 1;
                }
                p->line_len = 0;
            }
            break;
        default:
            return -1;
        }
    }
    return (ssize_t)len;
}

int
skiff_h1_eof(struct skiff_h1resp *p)
{
    if (p->state == SKIFF_H1_UNTIL_EOF)
        p->state = SKIFF_H1_DONE;
    return p->state == SKIFF_H1_DONE ? 0 : -1;
}

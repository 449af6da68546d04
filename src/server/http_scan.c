#include "server/http_scan.h"

#include "base/num.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/*
 * http-parser is built lenient on Debian (HTTP_PARSER_STRICT=0): it takes a header name with
 * a space before its colon as a different header, folds obs-fold lines into the value, and
 * reads whatever two bytes follow chunk data as its CRLF. skiff owns the strictness here: the
 * raw bytes of the head and of a chunked body pass these two scanners before http-parser
 * sees them, and what RFC 9112 refuses is a 400 (431/414 for a head over the limit).
 */

enum { HS_START, HS_REQLINE, HS_REQLINE_LF, HS_LINE, HS_NAME, HS_VALUE, HS_VALUE_LF, HS_END_LF };

static const char not_token[] = "a header name is not a token (RFC 9110 5.1): nothing, not even "
                                "a space, may come between a header's name and its colon";

/* Byte classes for the head scanner: RFC 9110 token characters, and the bytes that end a
 * run of request-line or field-value bytes (CR, LF, and the control characters a value may
 * not hold). */
enum { C_TCHAR = 1, C_STOP = 2 };

static const unsigned char head_class[256] = {
#define T C_TCHAR
    /* control characters but HT stop a value; HT is allowed in one */
    [0] = C_STOP,  [1] = C_STOP,   [2] = C_STOP,  [3] = C_STOP,  [4] = C_STOP,  [5] = C_STOP,
    [6] = C_STOP,  [7] = C_STOP,   [8] = C_STOP,  [10] = C_STOP, [11] = C_STOP, [12] = C_STOP,
    [13] = C_STOP, [14] = C_STOP,  [15] = C_STOP, [16] = C_STOP, [17] = C_STOP, [18] = C_STOP,
    [19] = C_STOP, [20] = C_STOP,  [21] = C_STOP, [22] = C_STOP, [23] = C_STOP, [24] = C_STOP,
    [25] = C_STOP, [26] = C_STOP,  [27] = C_STOP, [28] = C_STOP, [29] = C_STOP, [30] = C_STOP,
    [31] = C_STOP, [127] = C_STOP, ['!'] = T,     ['#'] = T,     ['$'] = T,     ['%'] = T,
    ['&'] = T,     ['\''] = T,     ['*'] = T,     ['+'] = T,     ['-'] = T,     ['.'] = T,
    ['^'] = T,     ['_'] = T,      ['`'] = T,     ['|'] = T,     ['~'] = T,     ['0'] = T,
    ['1'] = T,     ['2'] = T,      ['3'] = T,     ['4'] = T,     ['5'] = T,     ['6'] = T,
    ['7'] = T,     ['8'] = T,      ['9'] = T,     ['A'] = T,     ['B'] = T,     ['C'] = T,
    ['D'] = T,     ['E'] = T,      ['F'] = T,     ['G'] = T,     ['H'] = T,     ['I'] = T,
    ['J'] = T,     ['K'] = T,      ['L'] = T,     ['M'] = T,     ['N'] = T,     ['O'] = T,
    ['P'] = T,     ['Q'] = T,      ['R'] = T,     ['S'] = T,     ['T'] = T,     ['U'] = T,
    ['V'] = T,     ['W'] = T,      ['X'] = T,     ['Y'] = T,     ['Z'] = T,     ['a'] = T,
    ['b'] = T,     ['c'] = T,      ['d'] = T,     ['e'] = T,     ['f'] = T,     ['g'] = T,
    ['h'] = T,     ['i'] = T,      ['j'] = T,     ['k'] = T,     ['l'] = T,     ['m'] = T,
    ['n'] = T,     ['o'] = T,      ['p'] = T,     ['q'] = T,     ['r'] = T,     ['s'] = T,
    ['t'] = T,     ['u'] = T,      ['v'] = T,     ['w'] = T,     ['x'] = T,     ['y'] = T,
    ['z'] = T,
#undef T
};

/*
 * The first byte in d[i..lim) that ends a run: CR or LF in the request line (value 0), a
 * C_STOP byte in a field value (value 1). Returns lim - 1 when there is none (the last byte,
 * which then is part of the run). 16 bytes at a time where SSE2 is.
 */
static size_t
run_end(const unsigned char *d, size_t i, size_t lim, int value)
{
#ifdef __SSE2__
    const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
    const __m128i ctl = _mm_set1_epi8(0x1f), ht = _mm_set1_epi8('\t'), del = _mm_set1_epi8(0x7f);
    while (lim - i >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(d + i));
        __m128i hit;
        if (value) /* a byte <= 0x1f but HT, or DEL */
            hit = _mm_or_si128(
                _mm_andnot_si128(_mm_cmpeq_epi8(v, ht), _mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v)),
                _mm_cmpeq_epi8(v, del));
        else
            hit = _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf));
        int m = _mm_movemask_epi8(hit);
        if (m)
            return i + (size_t)__builtin_ctz((unsigned)m);
        i += 16;
    }
#endif
    if (value) {
        while (i + 1 < lim && !(head_class[d[i]] & C_STOP))
            i++;
    } else {
        while (i + 1 < lim && d[i] != '\r' && d[i] != '\n')
            i++;
    }
    return i < lim ? i : lim - 1;
}

/* Runs of request-line, name and value bytes are skipped by their class, so most bytes
 * cost a table lookup. */
long
skiff_head_scan(struct skiff_headscan *s, const char *data, size_t len, int *status,
                const char **msg)
{
    const unsigned char *d = (const unsigned char *)data;
    /* Only SKIFF_HTTP_MAX_HEAD bytes may be looked at: the byte after them is an error. */
    size_t lim = len, room = SKIFF_HTTP_MAX_HEAD - s->seen;
    if (lim > room)
        lim = room;
    size_t i = 0;
    *status = 400;
    for (; i < lim; i++) {
        unsigned char ch = d[i];
        switch (s->state) {
        case HS_START: /* empty lines before the request line are ignored (RFC 9112 2.2) */
            if (ch != '\r' && ch != '\n')
                s->state = HS_REQLINE;
            break;
        case HS_REQLINE:
            i = run_end(d, i, lim, 0);
            ch = d[i];
            if (ch == '\r')
                s->state = HS_REQLINE_LF;
            else if (ch == '\n')
                s->state = HS_LINE;
            break;
        case HS_REQLINE_LF:
        case HS_VALUE_LF:
            if (ch != '\n') {
                *msg = "a CR in the request head is not followed by LF (RFC 9112 2.2)";
                return -1;
            }
            s->state = HS_LINE;
            break;
        case HS_LINE:
            if (ch == '\r') {
                s->state = HS_END_LF;
            } else if (ch == '\n') {
                s->seen += (uint32_t)(i + 1);
                return (long)i + 1;
            } else if (ch == ' ' || ch == '\t') {
                *msg = "a header line starts with whitespace: folded header values (obs-fold) "
                       "are refused (RFC 9112 5.2)";
                return -1;
            } else if (head_class[ch] & C_TCHAR) {
                s->state = HS_NAME;
            } else {
                *msg = not_token;
                return -1;
            }
            break;
        case HS_NAME:
            while ((head_class[ch] & C_TCHAR) && i + 1 < lim)
                ch = d[++i];
            if (head_class[ch] & C_TCHAR)
                break; /* the name goes on in the next bytes */
            if (ch != ':') {
                *msg = not_token;
                return -1;
            }
            s->state = HS_VALUE;
            break;
        case HS_VALUE:
            i = run_end(d, i, lim, 1);
            ch = d[i];
            if (ch == '\r') {
                s->state = HS_VALUE_LF;
            } else if (ch == '\n') {
                s->state = HS_LINE;
            } else if (head_class[ch] & C_STOP) {
                *msg = "a header value contains a control character (RFC 9110 5.5)";
                return -1;
            }
            break;
        case HS_END_LF:
            if (ch != '\n') {
                *msg = "a CR in the request head is not followed by LF (RFC 9112 2.2)";
                return -1;
            }
            s->seen += (uint32_t)(i + 1);
            return (long)i + 1;
        }
    }
    s->seen += (uint32_t)i;
    if (i < len) {
        int in_target = s->state <= HS_REQLINE_LF;
        *status = in_target ? 414 : 431;
        *msg = in_target ? "the request line is too long (the limit is 64 KiB)"
                         : "request headers are too large (the limit is 64 KiB)";
        return -1;
    }
    return 0;
}

enum {
    CS_SIZE, /* the first hex digit of a chunk size */
    CS_SIZE_MORE,
    CS_EXT,
    CS_SIZE_LF,
    CS_DATA,
    CS_DATA_CR,
    CS_DATA_LF,
    CS_TRAILER_START,
    CS_TRAILER,
    CS_TRAILER_LF,
    CS_END_LF,
    CS_DONE,
};

#define MAX_CHUNK_LINE 4096      /* a chunk-size line with its extensions */
#define MAX_TRAILERS (16 * 1024) /* the trailer section of a chunked body */

static const char bad_chunk_end[] = "chunk data is not followed by CRLF: the chunk is longer than "
                                    "its size says (RFC 9112 7.1)";

int
skiff_chunk_scan(struct skiff_chunkscan *s, const char *data, size_t len, const char **msg)
{
    for (size_t i = 0; i < len && s->state != CS_DONE; i++) {
        unsigned char ch = (unsigned char)data[i];
        int hex = skiff_hexdigit((char)ch);
        switch (s->state) {
        case CS_SIZE:
        case CS_SIZE_MORE:
            if (hex >= 0) {
                if (++s->digits > 15) {
                    *msg = "a chunk size is too large";
                    return -1;
                }
                s->left = s->left * 16 + (uint64_t)hex;
                s->state = CS_SIZE_MORE;
            } else if (s->state == CS_SIZE) {
                *msg = "a chunk does not start with its size in hex (RFC 9112 7.1)";
                return -1;
            } else if (ch == ';') {
                s->state = CS_EXT;
            } else if (ch == '\r') {
                s->state = CS_SIZE_LF;
            } else {
                *msg = "a chunk size is followed by something other than ';' or CRLF (a space "
                       "after the size is refused, RFC 9112 7.1)";
                return -1;
            }
            break;
        case CS_EXT:
            if (ch == '\r') {
                s->state = CS_SIZE_LF;
            } else if (ch == '\n') {
                *msg = "a bare LF in a chunk extension (RFC 9112 7.1.1)";
                return -1;
            } else if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
                *msg = "a control character in a chunk extension (RFC 9112 7.1.1)";
                return -1;
            } else if (++s->line > MAX_CHUNK_LINE) {
                *msg = "a chunk extension is too long (the limit is 4 KiB)";
                return -1;
            }
            break;
        case CS_SIZE_LF:
            if (ch != '\n') {
                *msg = "a chunk-size line ends in a CR not followed by LF (RFC 9112 7.1)";
                return -1;
            }
            s->line = 0;
            s->digits = 0;
            s->state = s->left ? CS_DATA : CS_TRAILER_START;
            break;
        case CS_DATA: {
            size_t n = len - i < s->left ? len - i : (size_t)s->left;
            s->left -= n;
            i += n - 1;
            if (s->left == 0)
                s->state = CS_DATA_CR;
            break;
        }
        case CS_DATA_CR:
            if (ch != '\r') {
                *msg = bad_chunk_end;
                return -1;
            }
            s->state = CS_DATA_LF;
            break;
        case CS_DATA_LF:
            if (ch != '\n') {
                *msg = bad_chunk_end;
                return -1;
            }
            s->state = CS_SIZE;
            break;
        case CS_TRAILER_START:
        case CS_TRAILER:
            if (++s->line > MAX_TRAILERS) {
                *msg = "the trailer section is too large (the limit is 16 KiB)";
                return -1;
            }
            if (ch == '\r') {
                s->state = s->state == CS_TRAILER_START ? CS_END_LF : CS_TRAILER_LF;
            } else if (ch == '\n') {
                *msg = "a bare LF in the trailer section (RFC 9112 7.1.2)";
                return -1;
            } else if (s->state == CS_TRAILER_START && (ch == ' ' || ch == '\t')) {
                *msg = "a trailer line starts with whitespace (obs-fold, RFC 9112 5.2)";
                return -1;
            } else if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
                *msg = "a control character in the trailer section (RFC 9110 5.5)";
                return -1;
            } else {
                s->state = CS_TRAILER;
            }
            break;
        case CS_TRAILER_LF:
        case CS_END_LF:
            if (ch != '\n') {
                *msg = "a CR in the trailer section is not followed by LF (RFC 9112 7.1.2)";
                return -1;
            }
            s->state = s->state == CS_END_LF ? CS_DONE : CS_TRAILER_START;
            break;
        }
    }
    return 0;
}

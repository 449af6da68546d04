#include "cli/explain.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gemini/advice.h"
#include "gemini/classify.h"
#include "gemini/pacific.h"

#define MAX_STDIN (16u * 1024 * 1024)

/* ---- the command -------------------------------------------------------------------------- */

static void
print_advice(const struct skiff_advice *a)
{
    printf("%d %s (%s)\n\n", a->code, a->status, a->kind);
    printf("What it means: %s\n\n", a->meaning);
    printf("Likely cause:  %s\n\n", a->cause);
    printf("Fix:           %s\n\n", a->fix);
    printf("More:          %s\n", a->link);
    printf("skiff retries it: %s\n",
           a->retryable ? "yes" : "no (the client must change the request or the key)");
}

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What this particular error says beyond its kind: the message, the quota, when it resets. */
static void
print_specifics(json_t *err, const struct skiff_verdict *v)
{
    const char *msg = json_string_value(json_object_get(err, "message"));
    if (msg) {
        const char *nl = strchr(msg, '\n');
        int n = nl ? (int)(nl - msg) : (int)strlen(msg);
        printf("\nThis error:    %.*s%s\n", n > 300 ? 300 : n, msg, n > 300 || nl ? " ..." : "");
    }
    size_t i, j;
    json_t *d, *q;
    json_array_foreach(json_object_get(err, "details"), i, d)
    {
        json_array_foreach(json_object_get(d, "violations"), j, q)
        {
            const char *id = json_string_value(json_object_get(q, "quotaId"));
            const char *val = json_string_value(json_object_get(q, "quotaValue"));
            const char *model =
                json_string_value(json_object_get(json_object_get(q, "quotaDimensions"), "model"));
            if (id)
                printf("Quota:         %s, limit %s%s%s\n", id, val ? val : "?",
                       model ? ", model " : "", model ? model : "");
        }
    }
    if (v->fault == SKIFF_FAULT_QUOTA_DAY) {
        int64_t now = now_ms(), at = skiff_pacific_next_midnight_ms(now);
        time_t t = (time_t)(at / 1000);
        struct tm tm;
        char when[64];
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
        long mins = (long)((at - now) / 60000);
        printf("Resets:        at midnight America/Los_Angeles, %s (in %ldh %02ldm)\n", when,
               mins / 60, mins % 60);
    } else if (v->retry_delay_s >= 0 && v->fault == SKIFF_FAULT_QUOTA_MINUTE) {
        printf("Retry in:      %.0f s (RetryInfo)\n", v->retry_delay_s);
    }
}

/* Reads all of stdin (bounded). */
static char *
read_stdin(size_t *len)
{
    size_t cap = 65536, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        if (n == cap) {
            if (cap >= MAX_STDIN)
                break;
            char *nb = realloc(b, cap * 2 + 1);
            if (!nb) {
                free(b);
                return NULL;
            }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - n, stdin);
        if (r == 0)
            break;
        n += r;
    }
    if (b)
        b[n] = '\0';
    *len = n;
    return b;
}

/* Explains stdin: a Google error body, or a whole HTTP response (status line, headers,
 * blank line, body) as `curl -i` prints it. */
static int
explain_stdin(void)
{
    size_t len;
    char *in = read_stdin(&len);
    if (!in) {
        fprintf(stderr, "skiff explain: out of memory reading stdin\n");
        return 2;
    }
    int status = 0;
    char *body = in;
    /* curl -i may print several responses (a proxy's 200, a 100 Continue): take the last. */
    for (char *p = in; p && strncmp(p, "HTTP/", 5) == 0;) {
        const char *sp = strchr(p, ' ');
        status = sp ? (int)strtol(sp + 1, NULL, 10) : 0;
        char *end = strstr(p, "\r\n\r\n");
        char *end2 = strstr(p, "\n\n");
        if (end2 && (!end || end2 < end))
            body = end2 + 2;
        else
            body = end ? end + 4 : in + len;
        p = body;
    }
    size_t blen = len - (size_t)(body - in);
    json_t *root = json_loadb(body, blen, JSON_DISABLE_EOF_CHECK, NULL);
    json_t *obj =
        json_is_array(root) && json_array_size(root) == 1 ? json_array_get(root, 0) : root;
    json_t *err = json_object_get(obj, "error");
    int rc = 0;
    if (json_is_object(err)) {
        int code = (int)json_integer_value(json_object_get(err, "code"));
        if (!code)
            code = status;
        struct skiff_verdict v;
        skiff_classify(code ? code : 500, body, blen, NULL, &v);
        const struct skiff_advice *a = skiff_advice_error(root);
        print_advice(a ? a : skiff_advice_code(0)); /* the generic row */
        print_specifics(err, &v);
    } else if (status >= 400) {
        const struct skiff_advice *a = skiff_advice_code(status);
        print_advice(a);
        printf("\nThe body is not a Google error (a proxy's or a load balancer's page?).\n");
    } else {
        fprintf(stderr, "skiff explain: stdin is neither a Google error body "
                        "({\"error\": {...}}) nor an HTTP error response\n");
        rc = 2;
    }
    json_decref(root);
    free(in);
    return rc;
}

int
skiff_explain_main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: skiff explain CODE|STATUS|-\n"
                        "  skiff explain 503\n"
                        "  skiff explain RESOURCE_EXHAUSTED\n"
                        "  curl -si ... | skiff explain -   (a Google error body, or a whole "
                        "HTTP response, on stdin)\n");
        return 2;
    }
    if (strcmp(argv[1], "-") == 0)
        return explain_stdin();
    const struct skiff_advice *rows[16];
    size_t n = skiff_advice_all(argv[1], rows, 16);
    if (n == 0) {
        fprintf(stderr,
                "skiff explain: no advice for '%s'; try one of 400 401 403 404 429 500 "
                "503 504 or a google.rpc status name\n",
                argv[1]);
        return 1;
    }
    if (n > 1)
        printf("%s has %zu cases; pipe the error body to `skiff explain -` to tell which.\n\n",
               argv[1], n);
    for (size_t i = 0; i < n && i < 16; i++) {
        if (i)
            printf("\n----\n\n");
        print_advice(rows[i]);
    }
    return 0;
}

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "cli/explain.h"

/* Runs skiff_explain_main with arg (and stdin from input when arg is "-"); returns stdout. */
static char *
run(const char *arg, const char *input, int *rc)
{
    char out_path[] = "/tmp/skiff-explain-out-XXXXXX", in_path[] = "/tmp/skiff-explain-in-XXXXXX";
    int ofd = mkstemp(out_path), ifd = mkstemp(in_path);
    assert_true(ofd >= 0 && ifd >= 0);
    if (input)
        assert_int_equal(write(ifd, input, strlen(input)), (ssize_t)strlen(input));
    fflush(stdout);
    int saved_out = dup(1), saved_in = dup(0);
    dup2(ofd, 1);
    lseek(ifd, 0, SEEK_SET);
    dup2(ifd, 0);
    clearerr(stdin);
    char *argv[] = {"explain", (char *)arg, NULL};
    *rc = skiff_explain_main(2, argv);
    fflush(stdout);
    dup2(saved_out, 1);
    dup2(saved_in, 0);
    close(saved_out);
    close(saved_in);
    clearerr(stdin);
    off_t n = lseek(ofd, 0, SEEK_END);
    char *buf = calloc(1, (size_t)n + 1);
    assert_int_equal(pread(ofd, buf, (size_t)n, 0), n);
    close(ofd);
    close(ifd);
    unlink(out_path);
    unlink(in_path);
    return buf;
}

static void
contains(const char *s, const char *needle)
{
    if (!strstr(s, needle))
        fail_msg("output lacks \"%s\":\n%s", needle, s);
}

/* Every row of the guide's table, by code and by status name. */
static void
test_every_status_of_the_guide(void **state)
{
    (void)state;
    static const struct {
        const char *arg, *heading, *fix_words;
    } cases[] = {
        {"400", "400 INVALID_ARGUMENT (malformed request)", "/v1beta"},
        {"INVALID_ARGUMENT", "400 INVALID_ARGUMENT (invalid API key)", "AI Studio"},
        {"FAILED_PRECONDITION", "400 FAILED_PRECONDITION (region or billing)", "billing"},
        {"403", "403 PERMISSION_DENIED (no permission)", "Generative Language API"},
        {"404", "404 NOT_FOUND (not found)", "GET /v1beta/models"},
        {"429", "429 RESOURCE_EXHAUSTED (per-day quota)", "midnight America/Los_Angeles"},
        {"RESOURCE_EXHAUSTED", "429 RESOURCE_EXHAUSTED (per-minute quota)", "RetryInfo"},
        {"500", "500 INTERNAL (internal error)", "reduce the input context"},
        {"503", "503 UNAVAILABLE (overloaded)", "Pro to Flash"},
        {"504", "504 DEADLINE_EXCEEDED (deadline exceeded)", "larger timeout"},
        {"deadline_exceeded", "504 DEADLINE_EXCEEDED", "timeout"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc;
        char *out = run(cases[i].arg, NULL, &rc);
        assert_int_equal(rc, 0);
        contains(out, cases[i].heading);
        contains(out, cases[i].fix_words);
        contains(out, "What it means:");
        contains(out, "Likely cause:");
        free(out);
    }
    int rc;
    char *out = run("418", NULL, &rc);
    assert_int_equal(rc, 1);
    free(out);
}

static void
test_stdin_tells_the_cases_apart(void **state)
{
    (void)state;
    int rc;
    char *out = run("-",
                    "{\"error\": {\"code\": 429, \"message\": \"You exceeded your current "
                    "quota\", \"status\": \"RESOURCE_EXHAUSTED\", \"details\": [{\"@type\": "
                    "\"type.googleapis.com/google.rpc.QuotaFailure\", \"violations\": "
                    "[{\"quotaId\": \"GenerateRequestsPerDayPerProjectPerModel-FreeTier\", "
                    "\"quotaValue\": \"20\", \"quotaDimensions\": {\"model\": "
                    "\"gemini-2.5-flash\"}}]}]}}",
                    &rc);
    assert_int_equal(rc, 0);
    contains(out, "(per-day quota)");
    contains(out, "limit 20, model gemini-2.5-flash");
    contains(out, "Resets:        at midnight America/Los_Angeles");
    free(out);

    out = run("-",
              "{\"error\": {\"code\": 429, \"status\": \"RESOURCE_EXHAUSTED\", \"message\": "
              "\"x\", \"details\": [{\"violations\": [{\"quotaId\": "
              "\"GenerateRequestsPerMinutePerProjectPerModel-FreeTier\", \"quotaValue\": "
              "\"15\"}]}, {\"retryDelay\": \"38s\"}]}}",
              &rc);
    contains(out, "(per-minute quota)");
    contains(out, "Retry in:      38 s");
    free(out);

    out = run("-",
              "{\"error\": {\"code\": 429, \"status\": \"RESOURCE_EXHAUSTED\", \"message\": "
              "\"x\", \"details\": [{\"violations\": [{\"quotaId\": "
              "\"GenerateRequestsPerDayPerProjectPerModel-FreeTier\", \"quotaValue\": "
              "\"0\"}]}]}}",
              &rc);
    contains(out, "(no quota for this model)");
    free(out);

    /* A whole response as curl -i prints it, with the array form of the compat surface. */
    out = run("-",
              "HTTP/2 400\r\ncontent-type: application/json\r\n\r\n[{\"error\": {\"code\": "
              "400, \"message\": \"API key not valid. Please pass a valid API key.\", "
              "\"status\": \"INVALID_ARGUMENT\", \"details\": [{\"reason\": "
              "\"API_KEY_INVALID\"}]}}]",
              &rc);
    assert_int_equal(rc, 0);
    contains(out, "(invalid API key)");
    free(out);

    out = run("-",
              "{\"error\": {\"code\": 403, \"message\": \"The caller does not have "
              "permission\", \"status\": \"PERMISSION_DENIED\"}}",
              &rc);
    contains(out, "(no permission)");
    free(out);

    out = run("-",
              "{\"error\": {\"code\": 403, \"message\": \"Method doesn't allow unregistered "
              "callers (callers without established identity).\", \"status\": "
              "\"PERMISSION_DENIED\"}}",
              &rc);
    contains(out, "(no API key)");
    free(out);

    out = run("-",
              "{\"error\": {\"code\": 400, \"message\": \"User location is not supported "
              "for the API use.\", \"status\": \"FAILED_PRECONDITION\"}}",
              &rc);
    contains(out, "(region or billing)");
    free(out);

    out = run("-", "HTTP/1.1 504 Gateway Timeout\r\n\r\n<html>timeout</html>", &rc);
    assert_int_equal(rc, 0);
    contains(out, "504 DEADLINE_EXCEEDED");
    contains(out, "not a Google error");
    free(out);

    out = run("-", "hello", &rc);
    assert_int_equal(rc, 2);
    free(out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_status_of_the_guide),
        cmocka_unit_test(test_stdin_tells_the_cases_apart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

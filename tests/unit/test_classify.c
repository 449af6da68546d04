#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gemini/classify.h"

static struct skiff_verdict
classify(int status, const char *body)
{
    struct skiff_verdict v;
    skiff_classify(status, body, body ? strlen(body) : 0, NULL, &v);
    return v;
}

/* The 2026 per-minute 429 of gemini-api.md §4.5, verbatim in structure. */
static const char *rpm429 =
    "{\"error\": {\"code\": 429, \"message\": \"You exceeded your current quota\", \"status\": "
    "\"RESOURCE_EXHAUSTED\", \"details\": [{\"@type\": \"type.googleapis.com/google.rpc.Help\"},"
    "{\"@type\": \"type.googleapis.com/google.rpc.QuotaFailure\", \"violations\": "
    "[{\"quotaMetric\":"
    " \"generativelanguage.googleapis.com/generate_content_free_tier_requests\", \"quotaId\": "
    "\"GenerateRequestsPerMinutePerProjectPerModel-FreeTier\", \"quotaDimensions\": {\"location\": "
    "\"global\", \"model\": \"gemini-2.5-flash\"}, \"quotaValue\": \"15\"}]},"
    "{\"@type\": \"type.googleapis.com/google.rpc.RetryInfo\", \"retryDelay\": "
    "\"38.292227434s\"}]}}";

static void
test_per_minute_and_retry_delay(void **state)
{
    struct skiff_verdict v = classify(429, rpm429);
    assert_int_equal(v.fault, SKIFF_FAULT_QUOTA_MINUTE);
    assert_true(v.retry_delay_s > 38.29 && v.retry_delay_s < 38.30);
    assert_true(skiff_fault_retryable(v.fault));
    assert_true(skiff_fault_blames_key(v.fault));
}

static void
test_per_day_even_with_zero_delay_and_in_an_array(void **state)
{
    const char *body =
        "[{\"error\": {\"code\": 429, \"status\": \"RESOURCE_EXHAUSTED\", \"message\": \"x\", "
        "\"details\": [{\"@type\": \"type.googleapis.com/google.rpc.QuotaFailure\", \"violations\":"
        " [{\"quotaId\": \"GenerateRequestsPerMinutePerProjectPerModel-FreeTier\", \"quotaValue\": "
        "\"10\"}, {\"quotaId\": \"GenerateRequestsPerDayPerProjectPerModel-FreeTier\", "
        "\"quotaValue\": \"250\"}]}, {\"@type\": \"type.googleapis.com/google.rpc.RetryInfo\", "
        "\"retryDelay\": \"0s\"}]}}]";
    struct skiff_verdict v = classify(429, body);
    assert_int_equal(v.fault, SKIFF_FAULT_QUOTA_DAY);
    assert_true(v.retry_delay_s == 0);
}

static void
test_zero_quota(void **state)
{
    const char *body =
        "{\"error\": {\"code\": 429, \"status\": \"RESOURCE_EXHAUSTED\", \"details\": "
        "[{\"@type\": \"x.QuotaFailure\", \"violations\": [{\"quotaId\": "
        "\"GenerateRequestsPerDayPerProjectPerModel-FreeTier\", \"quotaValue\": "
        "\"0\"}]}]}}";
    assert_int_equal(classify(429, body).fault, SKIFF_FAULT_QUOTA_ZERO);
}

/* The suspended-consumer 403 of gemini-api.md §4.3. */
static const char *suspended403 =
    "{\"error\": {\"code\": 403, \"message\": \"Permission denied: Consumer 'api_key:AIzaSy...' "
    "has been suspended.\", \"status\": \"PERMISSION_DENIED\", \"details\": [{\"@type\": "
    "\"type.googleapis.com/google.rpc.ErrorInfo\", \"reason\": \"CONSUMER_SUSPENDED\", "
    "\"domain\": \"googleapis.com\", \"metadata\": {\"consumer\": \"projects/123456789012\", "
    "\"service\": \"generativelanguage.googleapis.com\"}}, {\"@type\": "
    "\"type.googleapis.com/google.rpc.LocalizedMessage\", \"locale\": \"en-US\", \"message\": "
    "\"Permission denied: Consumer 'api_key:AIzaSy...' has been suspended.\"}]}}";

static void
test_key_problems(void **state)
{
    assert_int_equal(classify(400,
                              "{\"error\": {\"code\": 400, \"status\": \"INVALID_ARGUMENT\", "
                              "\"message\": \"API key not valid. Please pass a valid API key.\","
                              " \"details\": [{\"reason\": \"API_KEY_INVALID\"}]}}")
                         .fault,
                     SKIFF_FAULT_KEY_INVALID);
    assert_int_equal(classify(400, "{\"error\": {\"code\": 400, \"status\": \"INVALID_ARGUMENT\", "
                                   "\"message\": \"API key expired. Please renew the API key.\","
                                   " \"details\": [{\"reason\": \"API_KEY_EXPIRED\"}]}}")
                         .fault,
                     SKIFF_FAULT_KEY_INVALID);
    assert_int_equal(classify(403, suspended403).fault, SKIFF_FAULT_KEY_DENIED);
    const char *reasons[] = {"SERVICE_DISABLED", "API_KEY_SERVICE_BLOCKED", "CONSUMER_INVALID",
                             "API_KEY_IP_ADDRESS_BLOCKED", "BILLING_DISABLED"};
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{\"error\": {\"code\": 403, \"status\": \"PERMISSION_DENIED\", \"message\": "
                 "\"x\", \"details\": [{\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", "
                 "\"reason\": \"%s\"}]}}",
                 reasons[i]);
        struct skiff_verdict v = classify(403, body);
        assert_int_equal(v.fault, SKIFF_FAULT_KEY_DENIED);
        assert_non_null(strstr(v.reason, reasons[i]));
    }
    /* The region refusal, as captured (no details) and with an ErrorInfo it may gain. */
    assert_int_equal(classify(400,
                              "{\"error\": {\"code\": 400, \"message\": \"User location is not "
                              "supported for the API use.\", \"status\": "
                              "\"FAILED_PRECONDITION\"}}")
                         .fault,
                     SKIFF_FAULT_KEY_REGION);
    assert_int_equal(classify(400,
                              "[{\"error\": {\"code\": 400, \"message\": \"Gemini API free tier "
                              "is not available in your country. Please enable billing on your "
                              "project in Google AI Studio.\", \"status\": "
                              "\"FAILED_PRECONDITION\", \"details\": [{\"@type\": "
                              "\"type.googleapis.com/google.rpc.ErrorInfo\", \"reason\": "
                              "\"USER_LOCATION_INVALID\"}]}}]")
                         .fault,
                     SKIFF_FAULT_KEY_REGION);
    for (enum skiff_fault f = SKIFF_FAULT_NONE; f <= SKIFF_FAULT_KEY_REGION; f++)
        assert_int_equal(skiff_fault_needs_probe(f), f >= SKIFF_FAULT_KEY_INVALID);
}

/* A refusal that names no key is about the request: answered, never retried, no key blamed
 * (a file or cache of another project, a client's header naming another project). */
static void
test_refusals_that_name_no_key_are_the_clients(void **state)
{
    const char *bodies[] = {
        "{\"error\": {\"code\": 403, \"status\": \"PERMISSION_DENIED\", "
        "\"message\": \"The caller does not have permission\"}}",
        "{\"error\": {\"code\": 403, \"message\": \"You do not have permission to access the File "
        "abc123 or it may not exist.\", \"status\": \"PERMISSION_DENIED\"}}",
        "{\"error\": {\"code\": 403, \"message\": \"CachedContent not found (or permission "
        "denied)\", \"status\": \"PERMISSION_DENIED\", \"details\": [{\"@type\": "
        "\"type.googleapis.com/google.rpc.ErrorInfo\", \"reason\": \"IAM_PERMISSION_DENIED\"}]}}",
        "<html><body>403 Forbidden</body></html>",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        struct skiff_verdict v = classify(403, bodies[i]);
        assert_int_equal(v.fault, SKIFF_FAULT_CLIENT);
        assert_false(skiff_fault_retryable(v.fault));
        assert_false(skiff_fault_blames_key(v.fault));
    }
    /* Google answers a bad API key 400; its 401 is about OAuth credentials a client sent. */
    assert_int_equal(classify(401, "{\"error\": {\"code\": 401, \"message\": \"Request had invalid "
                                   "authentication credentials.\", \"status\": "
                                   "\"UNAUTHENTICATED\"}}")
                         .fault,
                     SKIFF_FAULT_CLIENT);
    /* A 401 from something that is not Google (a gateway) is about the key it was given. */
    assert_int_equal(classify(401, "Unauthorized").fault, SKIFF_FAULT_KEY_INVALID);
    /* FAILED_PRECONDITION about something else than location or billing. */
    assert_int_equal(classify(400, "{\"error\": {\"code\": 400, \"message\": \"The cached content "
                                   "has expired.\", \"status\": \"FAILED_PRECONDITION\"}}")
                         .fault,
                     SKIFF_FAULT_CLIENT);
}

static void
test_client_errors_are_not_retried(void **state)
{
    struct skiff_verdict v =
        classify(400, "{\"error\": {\"code\": 400, \"status\": "
                      "\"INVALID_ARGUMENT\", \"message\": \"* Generate"
                      "ContentRequest.contents: contents is not specified\\n\"}}");
    assert_int_equal(v.fault, SKIFF_FAULT_CLIENT);
    assert_false(skiff_fault_retryable(v.fault));
    assert_false(skiff_fault_blames_key(v.fault));
    assert_int_equal(classify(404, "{\"error\": {\"code\": 404}}").fault, SKIFF_FAULT_CLIENT);
}

static void
test_transient_and_garbage(void **state)
{
    assert_int_equal(classify(503, "{\"error\": {\"code\": 503, \"message\": \"The model is "
                                   "overloaded. Please try again later.\", \"status\": "
                                   "\"UNAVAILABLE\"}}")
                         .fault,
                     SKIFF_FAULT_TRANSIENT);
    assert_int_equal(classify(502, "<html><body>Bad gateway</body></html>").fault,
                     SKIFF_FAULT_TRANSIENT);
    assert_int_equal(classify(500, "{\"error\": {\"code\": 5").fault, SKIFF_FAULT_TRANSIENT);
    assert_int_equal(classify(0, NULL).fault, SKIFF_FAULT_TRANSIENT);
    assert_int_equal(classify(429, "not json at all").fault, SKIFF_FAULT_QUOTA_OTHER);
    assert_int_equal(classify(200, NULL).fault, SKIFF_FAULT_NONE);
}

static void
test_retry_after_header_and_durations(void **state)
{
    struct skiff_verdict v;
    skiff_classify(503, NULL, 0, "7", &v);
    assert_true(v.retry_delay_s == 7);
    assert_true(skiff_parse_duration("45.837906927s") > 45.83);
    assert_true(skiff_parse_duration("0s") == 0);
    assert_true(skiff_parse_duration("12") < 0);
    assert_true(skiff_parse_duration("-1s") < 0);
}

/* Durations the upstream controls never give a value that cannot become an int64 of ms. */
static void
test_hostile_durations(void **state)
{
    assert_true(skiff_parse_duration("1e300s") < 0);
    assert_true(skiff_parse_duration("infs") < 0);
    assert_true(skiff_parse_duration("nans") < 0);
    assert_true(skiff_parse_duration("0x10s") < 0);
    assert_true(skiff_parse_duration("+5s") < 0);
    assert_true(skiff_parse_duration(".5s") < 0);
    assert_true(skiff_parse_duration("5.s") < 0);
    assert_true(skiff_parse_duration("5s ") < 0);
    assert_true(skiff_parse_duration("") < 0);
    assert_true(skiff_parse_duration(NULL) < 0);
    /* Longer than a day: a day. */
    assert_true(skiff_parse_duration("99999999999999999999999999999999999999s") ==
                SKIFF_MAX_RETRY_DELAY_S);
    assert_true(skiff_parse_duration("86401s") == SKIFF_MAX_RETRY_DELAY_S);
    assert_true(skiff_parse_duration("86400s") == 86400);
    double d = skiff_parse_duration("1.000000000999s");
    assert_true(d >= 1 && d < 1.000001);

    /* Through a whole 429: RetryInfo 1e300s counts as no delay at all. */
    const char *fmt = "{\"error\": {\"code\": 429, \"status\": \"RESOURCE_EXHAUSTED\", "
                      "\"details\": [{\"@type\": \"type.googleapis.com/google.rpc.RetryInfo\", "
                      "\"retryDelay\": \"%s\"}]}}";
    const char *bad[] = {"1e300s", "infs", "nans", "0x1p10s", "-inf s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[256];
        snprintf(body, sizeof body, fmt, bad[i]);
        struct skiff_verdict v = classify(429, body);
        assert_int_equal(v.fault, SKIFF_FAULT_QUOTA_OTHER);
        assert_true(v.retry_delay_s == -1);
    }
    char body[256];
    snprintf(body, sizeof body, fmt, "1000000000000s");
    assert_true(classify(429, body).retry_delay_s == SKIFF_MAX_RETRY_DELAY_S);

    /* Retry-After: delay-seconds only, clamped; the rest is ignored. */
    const char *ra_bad[] = {
        "inf", "nan", "1e300", "0x10", "-5", "1.5", "Wed, 21 Oct 2015 07:28:00 GMT", ""};
    for (size_t i = 0; i < sizeof ra_bad / sizeof ra_bad[0]; i++) {
        struct skiff_verdict v;
        skiff_classify(503, NULL, 0, ra_bad[i], &v);
        assert_true(v.retry_delay_s == -1);
    }
    struct skiff_verdict v;
    skiff_classify(503, NULL, 0, "999999999999999999999999", &v);
    assert_true(v.retry_delay_s == SKIFF_MAX_RETRY_DELAY_S);
    skiff_classify(503, NULL, 0, " 12 ", &v);
    assert_true(v.retry_delay_s == 12);
}

/* How the Live API closes a session before its setup completes. */
static void
test_live_close(void **state)
{
    struct skiff_verdict v;
    const char *r = "API key not valid. Please pass a valid API key.";
    skiff_classify_live_close(1007, r, strlen(r), &v);
    assert_int_equal(v.fault, SKIFF_FAULT_KEY_INVALID);
    assert_non_null(strstr(v.reason, "close 1007: API key not valid"));
    r = "You exceeded your current quota, please check your plan and billing details.";
    skiff_classify_live_close(1011, r, strlen(r), &v);
    assert_int_equal(v.fault, SKIFF_FAULT_QUOTA_OTHER);
    r = "Internal error encountered.";
    skiff_classify_live_close(1011, r, strlen(r), &v);
    assert_int_equal(v.fault, SKIFF_FAULT_TRANSIENT);
    skiff_classify_live_close(0, "", 0, &v);
    assert_int_equal(v.fault, SKIFF_FAULT_TRANSIENT);
    r = "The caller does not have permission";
    skiff_classify_live_close(1008, r, strlen(r), &v);
    assert_int_equal(v.fault, SKIFF_FAULT_KEY_DENIED);
    /* The client's: an unknown model, a bad setup; the same words under another code too. */
    r = "models/nope is not found for API version v1beta, or is not supported for "
        "bidiGenerateContent.";
    skiff_classify_live_close(1008, r, strlen(r), &v);
    assert_int_equal(v.fault, SKIFF_FAULT_CLIENT);
    r = "Request contains an invalid argument.";
    skiff_classify_live_close(1007, r, strlen(r), &v);
    assert_int_equal(v.fault, SKIFF_FAULT_CLIENT);
    r = "API key not valid";
    skiff_classify_live_close(1000, r, strlen(r), &v);
    assert_int_equal(v.fault, SKIFF_FAULT_CLIENT);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_minute_and_retry_delay),
        cmocka_unit_test(test_per_day_even_with_zero_delay_and_in_an_array),
        cmocka_unit_test(test_zero_quota),
        cmocka_unit_test(test_key_problems),
        cmocka_unit_test(test_refusals_that_name_no_key_are_the_clients),
        cmocka_unit_test(test_client_errors_are_not_retried),
        cmocka_unit_test(test_transient_and_garbage),
        cmocka_unit_test(test_retry_after_header_and_durations),
        cmocka_unit_test(test_hostile_durations),
        cmocka_unit_test(test_live_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
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
    "{\"@type\": \"type.googleapis.com/google.rpc.QuotaFailure\", \"violations\": [{\"quotaMetric\":"
    " \"generativelanguage.googleapis.com/generate_content_free_tier_requests\", \"quotaId\": "
    "\"GenerateRequestsPerMinutePerProjectPerModel-FreeTier\", \"quotaDimensions\": {\"location\": "
    "\"global\", \"model\": \"gemini-2.5-flash\"}, \"quotaValue\": \"15\"}]},"
    "{\"@type\": \"type.googleapis.com/google.rpc.RetryInfo\", \"retryDelay\": \"38.292227434s\"}]}}";

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
    const char *body = "{\"error\": {\"code\": 429, \"status\": \"RESOURCE_EXHAUSTED\", \"details\": "
                       "[{\"@type\": \"x.QuotaFailure\", \"violations\": [{\"quotaId\": "
                       "\"GenerateRequestsPerDayPerProjectPerModel-FreeTier\", \"quotaValue\": "
                       "\"0\"}]}]}}";
    assert_int_equal(classify(429, body).fault, SKIFF_FAULT_QUOTA_ZERO);
}

static void
test_key_problems(void **state)
{
    assert_int_equal(classify(400, "{\"error\": {\"code\": 400, \"status\": \"INVALID_ARGUMENT\", "
                                   "\"message\": \"API key not valid. Please pass a valid API key.\","
                                   " \"details\": [{\"reason\": \"API_KEY_INVALID\"}]}}")
                         .fault,
                     SKIFF_FAULT_KEY_INVALID);
    assert_int_equal(classify(403, "{\"error\": {\"code\": 403, \"status\": \"PERMISSION_DENIED\", "
                                   "\"message\": \"The caller does not have permission\"}}")
                         .fault,
                     SKIFF_FAULT_KEY_DENIED);
    assert_int_equal(classify(400, "{\"error\": {\"code\": 400, \"message\": \"User location is not "
                                   "supported for the API use.\", \"status\": "
                                   "\"FAILED_PRECONDITION\"}}")
                         .fault,
                     SKIFF_FAULT_KEY_REGION);
}

static void
test_client_errors_are_not_retried(void **state)
{
    struct skiff_verdict v = classify(400, "{\"error\": {\"code\": 400, \"status\": "
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

/* Found by tests/fuzz/fuzz_classify (seed corpus/classify/retry_after_inf): a delay that is
 * not a finite number is no delay, and one longer than a day is a day, so the key pool's
 * (int64_t)(delay * 1000) never overflows. */
static void
test_delays_are_finite_and_at_most_a_day(void **state)
{
    struct skiff_verdict v;
    skiff_classify(503, NULL, 0, "Inf", &v);
    assert_true(v.retry_delay_s < 0);
    skiff_classify(503, NULL, 0, "nan", &v);
    assert_true(v.retry_delay_s < 0);
    skiff_classify(503, NULL, 0, "1e300", &v);
    assert_true(v.retry_delay_s == 86400);
    assert_true(skiff_parse_duration("infs") < 0);
    assert_true(skiff_parse_duration("nans") < 0);
    assert_true(skiff_parse_duration("1e300s") == 86400);
    const char *body = "{\"error\": {\"code\": 429, \"details\": [{\"@type\": "
                       "\"type.googleapis.com/google.rpc.RetryInfo\", \"retryDelay\": "
                       "\"nans\"}]}}";
    skiff_classify(429, body, strlen(body), NULL, &v);
    assert_true(v.retry_delay_s < 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_minute_and_retry_delay),
        cmocka_unit_test(test_per_day_even_with_zero_delay_and_in_an_array),
        cmocka_unit_test(test_zero_quota),
        cmocka_unit_test(test_key_problems),
        cmocka_unit_test(test_client_errors_are_not_retried),
        cmocka_unit_test(test_transient_and_garbage),
        cmocka_unit_test(test_retry_after_header_and_durations),
        cmocka_unit_test(test_delays_are_finite_and_at_most_a_day),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gemini/advice.h"

static void
test_verdict_mapping(void **state)
{
    (void)state;
    struct skiff_verdict v = {.fault = SKIFF_FAULT_QUOTA_DAY};
    assert_string_equal(skiff_advice_verdict(429, &v, NULL, 0)->kind, "per-day quota");
    v.fault = SKIFF_FAULT_TRANSIENT;
    assert_string_equal(skiff_advice_verdict(503, &v, NULL, 0)->kind, "overloaded");
    assert_non_null(skiff_advice_verdict(418, &v, NULL, 0));
    const char *retired = "{\"error\": {\"code\": 404, \"message\": \"This model "
                          "models/gemini-2.5-flash is no longer available to new users.\"}}";
    v.fault = SKIFF_FAULT_CLIENT;
    assert_string_equal(skiff_advice_verdict(404, &v, retired, strlen(retired))->kind,
                        "model retired");
    const struct skiff_advice *rows[8];
    assert_int_equal(skiff_advice_all("429", rows, 8), 4);
    assert_int_equal(skiff_advice_all("400", rows, 8), 3);
    assert_string_equal(skiff_advice_code(429)->kind, skiff_advice_lookup("429")->kind);
    assert_string_equal(skiff_advice_code(0)->kind, "error"); /* the generic row */
    assert_string_equal(skiff_advice_code(418)->kind, "error");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdict_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

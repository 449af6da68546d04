#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "sim/simconf.h"

static int
parse(struct skiff_sim_conf *c, char *err, size_t errlen, int argc, ...)
{
    char *argv[32];
    va_list ap;
    va_start(ap, argc);
    argv[0] = "sim";
    for (int i = 1; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    return skiff_sim_conf_parse(c, argc, argv, err, errlen);
}

static void
test_defaults(void **state)
{
    (void)state;
    struct skiff_sim_conf c;
    char err[1024];
    assert_int_equal(parse(&c, err, sizeof err, 1), 0);
    assert_string_equal(c.host, "127.0.0.1");
    assert_int_equal(c.port, 8090);
    assert_int_equal(skiff_sim_conf_key(&c, "AIzaAnything"), SKIFF_SIM_KEY_VALID);
    assert_int_equal(skiff_sim_conf_key(&c, "sk-nope"), SKIFF_SIM_KEY_INVALID);
    assert_int_equal(skiff_sim_conf_key(&c, NULL), SKIFF_SIM_KEY_INVALID);
    struct skiff_sim_limits l;
    skiff_sim_conf_limits(&c, "gemini-2.5-flash", &l);
    assert_int_equal(l.rpm, 10);
    assert_int_equal(l.tpm, 250000);
    assert_int_equal(l.rpd, 250);
    skiff_sim_conf_release(&c);
}

static void
test_flags(void **state)
{
    (void)state;
    struct skiff_sim_conf c;
    char err[1024];
    assert_int_equal(parse(&c, err, sizeof err, 10, "--listen", "127.0.0.1:0",
                           "--keys=AIzaA,AIzaB=region_blocked,AIzaC=denied,AIzaX*=denied", "--rpm",
                           "unlimited,gemini-2.5-pro:0", "--latency-ms", "5:10", "--seed", "42"),
                     0);
    assert_int_equal(c.port, 0);
    assert_int_equal(skiff_sim_conf_key(&c, "AIzaA"), SKIFF_SIM_KEY_VALID);
    assert_int_equal(skiff_sim_conf_key(&c, "AIzaB"), SKIFF_SIM_KEY_REGION_BLOCKED);
    assert_int_equal(skiff_sim_conf_key(&c, "AIzaC"), SKIFF_SIM_KEY_DENIED);
    assert_int_equal(skiff_sim_conf_key(&c, "AIzaXYZ"), SKIFF_SIM_KEY_DENIED);
    assert_int_equal(skiff_sim_conf_key(&c, "AIzaD"), SKIFF_SIM_KEY_INVALID);
    struct skiff_sim_limits l;
    skiff_sim_conf_limits(&c, "gemini-2.5-pro", &l);
    assert_int_equal(l.rpm, 0);
    assert_int_equal(l.rpd, 100);
    skiff_sim_conf_limits(&c, "gemini-2.5-flash", &l);
    assert_int_equal(l.rpm, SKIFF_SIM_UNLIMITED);
    assert_int_equal(c.latency_min, 5);
    assert_int_equal(c.latency_max, 10);
    assert_true(c.seed == 42 && c.seed_set);
    skiff_sim_conf_release(&c);
}

static void
expect(const char *needle, int argc, char *a1, char *a2)
{
    struct skiff_sim_conf c;
    char err[1024] = "";
    assert_int_equal(parse(&c, err, sizeof err, argc, a1, a2), SKIFF_EINVAL);
    if (!strstr(err, needle))
        fail_msg("\"%s\" lacks \"%s\"", err, needle);
    skiff_sim_conf_release(&c);
}

static void
test_errors_name_the_flag(void **state)
{
    (void)state;
    expect("--listen", 3, "--listen", "localhost");
    expect("--listen", 3, "--listen", "127.0.0.1:70000");
    expect("--rpm: \"ten\"", 3, "--rpm", "ten");
    expect("--tpm: unknown model \"gemini-9\"", 3, "--tpm", "gemini-9:5");
    expect("--keys", 3, "--keys", "AIzaA=blocked");
    expect("--faults: unknown fault", 3, "--faults", "502=0.1");
    expect("--latency-ms", 3, "--latency-ms", "10:5");
    expect("--seed", 3, "--seed", "-1");
    expect("unknown flag --port", 3, "--port", "1");
    expect("--chunk-ms: needs a value", 2, "--chunk-ms", NULL);
}

static void
test_yaml_and_precedence(void **state)
{
    (void)state;
    char path[] = "/tmp/test_sim_simconfXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("listen: 127.0.0.1:9999\nkeys: [AIzaA, AIzaB=denied]\nrpd: 20\nfaults: \"503=0.5\"\n"
          "seed: 9\n",
          f);
    fclose(f);
    struct skiff_sim_conf c;
    char err[1024];
    /* Flags win over the file wherever --config appears. */
    assert_int_equal(parse(&c, err, sizeof err, 5, "--seed", "10", "--config", path), 0);
    assert_int_equal(c.port, 9999);
    assert_int_equal(skiff_sim_conf_key(&c, "AIzaB"), SKIFF_SIM_KEY_DENIED);
    assert_int_equal(skiff_sim_conf_key(&c, "AIzaZ"), SKIFF_SIM_KEY_INVALID);
    assert_true(c.seed == 10);
    assert_true(skiff_sim_faults_p(&c.faults, "m", SKIFF_SIM_FAULT_503) == 0.5);
    struct skiff_sim_limits l;
    skiff_sim_conf_limits(&c, "gemini-2.5-flash", &l);
    assert_int_equal(l.rpd, 20);
    skiff_sim_conf_release(&c);

    f = fopen(path, "w");
    fputs("listen: 127.0.0.1:1\nrpmm: 5\n", f);
    fclose(f);
    assert_int_equal(parse(&c, err, sizeof err, 3, "--config", path), SKIFF_EINVAL);
    assert_non_null(strstr(err, ":2: rpmm: unknown key"));
    skiff_sim_conf_release(&c);
    f = fopen(path, "w");
    fputs("faults: 503=2\n", f);
    fclose(f);
    assert_int_equal(parse(&c, err, sizeof err, 3, "--config", path), SKIFF_EINVAL);
    assert_non_null(strstr(err, ":1: faults: probability"));
    skiff_sim_conf_release(&c);
    remove(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_errors_name_the_flag),
        cmocka_unit_test(test_yaml_and_precedence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

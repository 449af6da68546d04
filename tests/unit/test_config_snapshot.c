/*
 * Config snapshots: a reference keeps a config alive after the loader's is dropped, and a
 * swap of the current snapshot leaves the old one to those who hold it. Run under ASan (make
 * test), a use after the last unref or a missing free fails the suite.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <pthread.h>

#include <cmocka.h>

#include "config_helpers.h"

static void
test_ref_outlives_the_loader(void **state)
{
    (void)state;
    struct skiff_config *cfg = load_ok("listen: 127.0.0.1:7001\nfallbacks: {gemini-x: [a, b]}\n");
    const struct skiff_config *held = skiff_config_ref(cfg);
    assert_ptr_equal(held, cfg);
    skiff_config_free(cfg); /* the loader's reference */
    /* Strings borrowed from the snapshot stay valid while a reference is held. */
    assert_string_equal(held->listen_host, "127.0.0.1");
    assert_int_equal(held->listen_port, 7001);
    assert_string_equal(held->fallbacks[0].chain[1], "b");
    skiff_config_unref(held);

    assert_null(skiff_config_ref(NULL));
    skiff_config_unref(NULL);
}

static void
test_swap_keeps_the_old_snapshot_for_its_holders(void **state)
{
    (void)state;
    struct skiff_config_current *cur =
        skiff_config_current_new(load_ok("listen: 127.0.0.1:7001\n"));
    assert_non_null(cur);
    const struct skiff_config *request = skiff_config_current_get(cur);
    assert_int_equal(request->listen_port, 7001);

    skiff_config_current_set(cur, load_ok("listen: 127.0.0.1:7002\n"));
    /* The request that began on the old snapshot still reads it... */
    assert_int_equal(request->listen_port, 7001);
    assert_string_equal(request->listen_host, "127.0.0.1");
    /* ...and a new one gets the new snapshot. */
    const struct skiff_config *next = skiff_config_current_get(cur);
    assert_int_equal(next->listen_port, 7002);
    skiff_config_unref(request); /* frees the old snapshot */
    skiff_config_unref(next);
    skiff_config_current_free(cur); /* frees the new one */
}

struct reader {
    struct skiff_config_current *cur;
    int bad;
};

static void *
read_loop(void *arg)
{
    struct reader *r = arg;
    for (int i = 0; i < 20000; i++) {
        const struct skiff_config *cfg = skiff_config_current_get(r->cur);
        if (cfg->listen_port < 7000 || cfg->listen_port > 7100 || strcmp(cfg->listen_host, "::1"))
            r->bad = 1;
        skiff_config_unref(cfg);
    }
    return NULL;
}

/* Readers on other threads take and drop references while the main thread swaps. */
static void
test_swaps_under_readers(void **state)
{
    (void)state;
    struct skiff_config *cfgs[50];
    for (int i = 0; i < 50; i++) {
        char text[64];
        snprintf(text, sizeof text, "listen: \"[::1]:%d\"\n", 7000 + i);
        cfgs[i] = load_ok(text);
    }
    struct reader r = {skiff_config_current_new(cfgs[0]), 0};
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, read_loop, &r), 0);
    for (int i = 1; i < 50; i++) {
        skiff_config_current_set(r.cur, cfgs[i]);
        usleep(200);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(r.bad, 0);
    const struct skiff_config *last = skiff_config_current_get(r.cur);
    assert_int_equal(last->listen_port, 7049);
    skiff_config_unref(last);
    skiff_config_current_free(r.cur);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ref_outlives_the_loader, config_env_clear,
                                        config_env_clear),
        cmocka_unit_test_setup_teardown(test_swap_keeps_the_old_snapshot_for_its_holders,
                                        config_env_clear, config_env_clear),
        cmocka_unit_test_setup_teardown(test_swaps_under_readers, config_env_clear,
                                        config_env_clear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

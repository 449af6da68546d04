#include "state/sqlite.h"

#include "state/store.h"

static void
sq_put_state(void *impl, const struct skiff_key_state *st)
{
    skiff_store_put_state(impl, st);
}

static void
sq_add_usage(void *impl, const struct skiff_key_usage *u)
{
    skiff_store_add_usage(impl, u);
}

static int
sq_load(void *impl, int64_t now_ms, const char *day, skiff_state_cb *fn, skiff_usage_cb *ufn,
        void *ud)
{
    return skiff_store_load(impl, now_ms, day, fn, ufn, ud);
}

static int
sq_subscribe(void *impl, skiff_state_cb *on_state, void *ud)
{
    return skiff_store_watch(impl, SKIFF_STATE_SQLITE_WATCH_MS, on_state, ud);
}

static void
sq_unsubscribe(void *impl)
{
    skiff_store_unwatch(impl);
}

void
skiff_state_sqlite(struct skiff_store *s, struct skiff_state_backend *out)
{
    *out = (struct skiff_state_backend){
        .impl = s,
        .put_state = sq_put_state,
        .add_usage = sq_add_usage,
        .load = sq_load,
        .subscribe = s ? sq_subscribe : NULL,
        .unsubscribe = s ? sq_unsubscribe : NULL,
    };
}

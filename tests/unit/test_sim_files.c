#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sim/files.c"

static struct skiff_sim_res_req
req(const char *method, const char *rest, int upload, const char *project)
{
    struct skiff_sim_res_req q = {
        .http_method = method,
        .rest = rest,
        .rest_len = strlen(rest),
        .upload = upload,
        .project = project,
        .body = "",
        .base = "http://sim",
        .now_ms = 1000000,
        .id_seed = 42,
        .page_size = "",
        .page_token = "",
        .upload_id = "",
        .update_mask = "",
        .content_type = "",
        .up_protocol = "",
        .up_command = "",
        .up_offset = "",
        .up_len = "",
        .up_type = "",
    };
    return q;
}

static void
reply_release(struct skiff_sim_res_reply *r)
{
    json_decref(r->body);
    json_decref(r->headers);
    memset(r, 0, sizeof *r);
}

static void
test_commands(void **state)
{
    (void)state;
    assert_true(has_command("upload, finalize", "finalize"));
    assert_true(has_command("upload, finalize", "upload"));
    assert_true(has_command(" Upload ,Finalize ", "finalize"));
    assert_false(has_command("upload", "finalize"));
    assert_false(has_command("uploadfinalize", "upload"));
    assert_false(has_command("", "start"));
}

static void
test_route(void **state)
{
    (void)state;
    struct skiff_sim_res_req q = req("POST", "files", 1, "k");
    assert_string_equal(skiff_sim_files_route(&q), "files.upload");
    q = req("GET", "files", 0, "k");
    assert_string_equal(skiff_sim_files_route(&q), "files.list");
    q = req("GET", "files/abc", 0, "k");
    assert_string_equal(skiff_sim_files_route(&q), "files.get");
    q = req("DELETE", "files/abc", 0, "k");
    assert_string_equal(skiff_sim_files_route(&q), "files.delete");
    q = req("GET", "files/abc:download", 0, "k");
    assert_null(skiff_sim_files_route(&q));
    q = req("POST", "files/abc", 0, "k");
    assert_null(skiff_sim_files_route(&q));
    q = req("GET", "files", 1, "k");
    assert_null(skiff_sim_files_route(&q));
    q = req("GET", "cachedContents", 0, "k");
    assert_null(skiff_sim_files_route(&q));
}

static void
test_multipart_split(void **state)
{
    (void)state;
    const char *b = "--XX\r\nContent-Type: application/json\r\n\r\n{}\r\n--XX\r\n"
                    "Content-Type: image/png\r\n\r\nBYTES\r\n--XX--\r\n";
    struct part p[2];
    assert_int_equal(split_parts(b, strlen(b), "XX", p, 2), 2);
    assert_int_equal(p[0].body_len, 2);
    assert_memory_equal(p[0].body, "{}", 2);
    assert_int_equal(p[1].body_len, 5);
    assert_memory_equal(p[1].body, "BYTES", 5);
    char t[64];
    part_type(&p[1], t, sizeof t);
    assert_string_equal(t, "image/png");
    /* No closing delimiter, or more parts than asked for: not a valid body. */
    const char *open = "--XX\r\n\r\n{}\r\n--XX\r\n\r\nab";
    assert_int_equal(split_parts(open, strlen(open), "XX", p, 2), -1);
    char bd[32];
    assert_int_equal(boundary_of("multipart/related; boundary=\"a b\"", bd, sizeof bd), 0);
    assert_string_equal(bd, "a b");
    assert_int_equal(boundary_of("multipart/related; boundary=zz; x=1", bd, sizeof bd), 0);
    assert_string_equal(bd, "zz");
    assert_int_equal(boundary_of("multipart/related", bd, sizeof bd), -1);
}

/* A whole resumable upload, then the owner rules for get, delete and references. */
static void
test_upload_and_ownership(void **state)
{
    (void)state;
    struct skiff_sim_files *f = skiff_sim_files_new(4, 2);
    struct skiff_sim_res_reply r = {0};
    struct skiff_sim_res_req q = req("POST", "files", 1, "keyA");
    q.up_protocol = "resumable";
    q.up_command = "start";
    q.up_len = "6";
    q.up_type = "text/plain";
    assert_int_equal(skiff_sim_files_handle(f, &q, &r), 0);
    assert_int_equal(r.status, 200);
    const char *url = json_string_value(json_object_get(r.headers, "X-Goog-Upload-URL"));
    const char *uid = strstr(url, "upload_id=") + 10;
    char id[40];
    snprintf(id, sizeof id, "%.*s", (int)strcspn(uid, "&"), uid);
    reply_release(&r);

    q = req("POST", "files", 1, "");
    q.upload_id = id;
    q.up_command = "upload, finalize";
    q.up_offset = "0";
    q.body = "abcdef";
    q.body_len = 6;
    assert_int_equal(skiff_sim_files_handle(f, &q, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.headers, "X-Goog-Upload-Status")),
                        "final");
    json_t *file = json_object_get(r.body, "file");
    char name[64];
    snprintf(name, sizeof name, "%s", json_string_value(json_object_get(file, "name")));
    assert_string_equal(json_string_value(json_object_get(file, "sizeBytes")), "6");
    /* sha256("abcdef"), base64. */
    assert_string_equal(json_string_value(json_object_get(file, "sha256Hash")),
                        "vvV+x/U6bUC+tkCngKY5yDvCmsipgW8fxsXG3Nk8RyE=");
    assert_string_equal(json_string_value(json_object_get(file, "expirationTime")),
                        "1970-01-03T00:16:40.000000Z");
    reply_release(&r);

    /* Another project: the same refusal as a missing file. */
    q = req("GET", name, 0, "keyB");
    assert_int_equal(skiff_sim_files_handle(f, &q, &r), 0);
    assert_int_equal(r.status, 403);
    assert_string_equal(r.gstatus, "PERMISSION_DENIED");
    reply_release(&r);
    q = req("GET", name, 0, "keyA");
    assert_int_equal(skiff_sim_files_handle(f, &q, &r), 0);
    assert_int_equal(r.status, 200);
    reply_release(&r);

    /* References: the owner passes, another project does not, in any part. */
    char uri[128];
    snprintf(uri, sizeof uri, "http://sim/v1beta/%s", name);
    json_t *contents =
        json_pack("[{s:[{s:s},{s:{s:s}}]}]", "parts", "text", "hi", "fileData", "fileUri", uri);
    assert_int_equal(skiff_sim_files_check_contents(f, "keyA", contents, NULL, 2000000, &r), 0);
    assert_int_equal(skiff_sim_files_check_contents(f, "keyB", contents, NULL, 2000000, &r), -1);
    assert_int_equal(r.status, 403);
    assert_non_null(strstr(r.message, name + 6));
    /* After its 48 hours the file is gone, for its owner too. */
    int64_t later = 1000000 + 48LL * 3600 * 1000;
    assert_int_equal(skiff_sim_files_check_contents(f, "keyA", contents, NULL, later, &r), -1);
    json_decref(contents);
    skiff_sim_files_free(f);
}

/* The store's caps: a full store refuses a new file with a 429; sessions displace. */
static void
test_caps(void **state)
{
    (void)state;
    struct skiff_sim_files *f = skiff_sim_files_new(1, 1);
    struct skiff_sim_res_reply r = {0};
    const char *mp = "--B\r\n\r\n{}\r\n--B\r\n\r\nx\r\n--B--";
    for (int i = 0; i < 2; i++) {
        struct skiff_sim_res_req q = req("POST", "files", 1, "k");
        q.up_protocol = "multipart";
        q.content_type = "multipart/related; boundary=B";
        q.body = mp;
        q.body_len = strlen(mp);
        q.id_seed = (uint64_t)i;
        assert_int_equal(skiff_sim_files_handle(f, &q, &r), 0);
        assert_int_equal(r.status, i == 0 ? 200 : 429);
        reply_release(&r);
    }
    for (int i = 0; i < 3; i++) {
        struct skiff_sim_res_req q = req("POST", "files", 1, "k");
        q.up_protocol = "resumable";
        q.up_command = "start";
        q.id_seed = (uint64_t)i;
        assert_int_equal(skiff_sim_files_handle(f, &q, &r), 0);
        assert_int_equal(r.status, 200);
        reply_release(&r);
    }
    assert_int_equal(f->nup, 1);
    skiff_sim_files_free(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_route),
        cmocka_unit_test(test_multipart_split),
        cmocka_unit_test(test_upload_and_ownership),
        cmocka_unit_test(test_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

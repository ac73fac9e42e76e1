/* Log lines: one per event, JSON or text, secrets never shown. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "log/log.h"

static char *capture(enum rg_log_format fmt, void (*emit)(void))
{
    static char buf[4096];
    FILE *f = tmpfile();
    size_t n;
    rg_log_setup(fmt, RG_LOG_INFO, f);
    emit();
    rewind(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void emit_fields(void)
{
    RG_INFO("migration applied" RG_F "version=%d" RG_F "title=%s", 3, "say \"hi\"\n");
}

static void emit_debug(void)
{
    RG_DEBUG("hidden");
}

static void emit_secret(void)
{
    rg_log_redact("s3cr3tpw");
    RG_ERROR("could not connect" RG_F "url=%s", "postgresql://u:s3cr3tpw@h/db");
}

Test(log, json_line_has_level_msg_and_typed_fields)
{
    char *out = capture(RG_LOG_FORMAT_JSON, emit_fields);
    cr_assert(strstr(out, "\"level\":\"info\""), "%s", out);
    cr_assert(strstr(out, "\"msg\":\"migration applied\""), "%s", out);
    cr_assert(strstr(out, "\"version\":3"), "%s", out);
    cr_assert(strstr(out, "\"title\":\"say \\\"hi\\\"\\n\""), "%s", out);
    cr_assert_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line: %s", out);
}

Test(log, text_line_quotes_values_that_need_it)
{
    char *out = capture(RG_LOG_FORMAT_TEXT, emit_fields);
    cr_assert(strstr(out, " info migration applied version=3 title=\"say \\\"hi\\\"\\n\""), "%s",
              out);
}

Test(log, below_threshold_is_not_written)
{
    char *out = capture(RG_LOG_FORMAT_JSON, emit_debug);
    cr_assert_str_eq(out, "");
}

Test(log, registered_secrets_are_redacted)
{
    char *out = capture(RG_LOG_FORMAT_JSON, emit_secret);
    cr_assert_null(strstr(out, "s3cr3tpw"), "%s", out);
    cr_assert(strstr(out, "u:***@h"), "%s", out);
}

static void emit_rotated(void)
{
    char token[32];
    rg_log_redact("db-password-1");
    for (int i = 0; i < 20; i++) {
        snprintf(token, sizeof(token), "token-%02d-abcdef", i);
        rg_log_redact(token);
    }
    RG_ERROR("x" RG_F "a=%s" RG_F "b=%s", "db-password-1", "token-19-abcdef");
}

Test(log, the_first_and_the_newest_secret_stay_redacted_when_tokens_rotate)
{
    char *out = capture(RG_LOG_FORMAT_TEXT, emit_rotated);
    cr_assert_null(strstr(out, "db-password-1"), "%s", out);
    cr_assert_null(strstr(out, "token-19"), "%s", out);
}

/* Log lines: one per event, JSON or text, secrets never shown. */
#define _GNU_SOURCE /* posix_openpt and friends, cfmakeraw */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

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

/* --- the redactor ---------------------------------------------------------------------- */

static char scrubbed[2048];

static const char *scrub(const char *text)
{
    return rg_log_scrub(scrubbed, sizeof(scrubbed), text);
}

#define assert_scrubs(text, want) cr_assert_str_eq(scrub(text), want, "from: %s", text)

Test(redact, a_uri_password_is_hidden_whatever_its_length)
{
    assert_scrubs("postgresql://app:x@db:5432/app", "postgresql://app:***@db:5432/app");
    assert_scrubs("see \"postgres://u:p%zz@h/db\" here", "see \"postgres://u:***@h/db\" here");
    /* libpq reads the user information up to the first '@', so ':' and '?' are the password's */
    assert_scrubs("postgresql://u:a:b?c@h/db", "postgresql://u:***@h/db");
    /* No '@' before the path: "h:5432" is a host and port, not a user and password. */
    assert_scrubs("postgresql://h:5432/db?x=1@y", "postgresql://h:5432/db?x=1@y");
    assert_scrubs("postgresql://u@h/db", "postgresql://u@h/db");
    assert_scrubs("https://tok:en@host/", "https://tok:***@host/");
}

Test(redact, a_password_parameter_is_hidden_in_a_uri_query)
{
    assert_scrubs("postgres://u@h/db?password=ab&sslmode=disable",
                  "postgres://u@h/db?password=***&sslmode=disable");
    assert_scrubs("postgres://u@h/db?sslmode=disable&PASSWORD=a%20b c",
                  "postgres://u@h/db?sslmode=disable&PASSWORD=*** c");
}

Test(redact, a_password_keyword_is_hidden_in_key_value_text)
{
    assert_scrubs("host=h password=x port=5", "host=h password=*** port=5");
    assert_scrubs("host=h password = 'quoted \\' value' port=5", "host=h password = *** port=5");
    /* Unterminated: the rest is the value, as libpq would read it. */
    assert_scrubs("host=h password='abc def port=5", "host=h password=***");
    assert_scrubs("host=h password=a\\ b port=5", "host=h password=*** port=5");
    assert_scrubs("PGPASSWORD=Zq rollgate", "PGPASSWORD=*** rollgate");
    assert_scrubs("sslpassword=k3y", "sslpassword=***");
    /* Not an assignment: nothing to hide. */
    assert_scrubs("password authentication failed for user \"app\"",
                  "password authentication failed for user \"app\"");
}

Test(redact, a_field_separator_ends_a_value)
{
    assert_scrubs("bad password=x" RG_F "exit_code=3", "bad password=***" RG_F "exit_code=3");
    assert_scrubs("bad postgres://u:x" RG_F "a=b@c", "bad postgres://u:x" RG_F "a=b@c");
}

Test(redact, a_short_registered_secret_is_hidden_only_as_a_whole_token)
{
    rg_log_redact("ab");
    rg_log_redact("~");
    assert_scrubs("invalid duration \"ab\" (use 5m)", "invalid duration \"***\" (use 5m)");
    assert_scrubs("ab", "***");
    assert_scrubs("table unreachable abc cab ab1", "table unreachable abc cab ab1");
    assert_scrubs("x ~ y~ ~z \"~\"", "x *** y~ ~z \"***\"");
}

Test(redact, a_registered_secret_of_four_bytes_or_more_is_hidden_anywhere)
{
    rg_log_redact("s3cr");
    assert_scrubs("xs3cry s3cr", "x***y ***");
}

Test(redact, a_connection_string_registers_its_passwords_in_every_form)
{
    rg_log_redact_conninfo("postgresql://u:p%41Z@h/db?password=q%zz");
    rg_log_redact_conninfo("host=h password='Q\\' v'");
    /* libpq reads a URI's parameter to the next '&', spaces and all. */
    rg_log_redact_conninfo("postgres://h/db?password=sp ace%zz&x=1");
    /* As libpq quotes them: decoded, or raw when decoding failed, or unquoted. */
    assert_scrubs("token \"pAZ\"", "token \"***\"");
    assert_scrubs("invalid percent-encoded token: \"q%zz\"",
                  "invalid percent-encoded token: \"***\"");
    assert_scrubs("x Q' v y", "x *** y");
    assert_scrubs("x 'Q\\' v' y", "x *** y");
    assert_scrubs("token: \"sp ace%zz\"", "token: \"***\"");
    /* The whole URL is not a secret: only its passwords are. */
    assert_scrubs("host h", "host h");
}

Test(redact, text_is_redacted_whole_before_it_is_cut)
{
    char out[32];
    char text[2100];

    /* The cut falls inside the password: its first bytes must not show either. */
    snprintf(text, sizeof(text), "url postgresql://u:%s@h/db", "LONGPASSWORD");
    rg_log_scrub(out, 20, text);
    cr_assert_str_eq(out, "url postgresql://u:");
    rg_log_scrub(out, 16, "x postgres://u:pw@h");
    cr_assert_str_eq(out, "x postgres://u:");
    memset(text, 'a', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    memcpy(text + 2000, "?password=Zq", 12);
    cr_assert_null(strstr(rg_log_scrub(scrubbed, sizeof(scrubbed), text), "Zq"));
}

#define LONG_SECRET "Zz9-a-password-long-enough-to-straddle-the-cut-of-a-line-0123"

static void emit_long_secret_line(void)
{
    static char pad[8141];

    memset(pad, 'a', sizeof(pad) - 1);
    rg_log_redact(LONG_SECRET);
    /* The event passes 8 KiB inside the secret; the written line shows its first bytes
     * unless the event is redacted whole before it is cut. */
    RG_ERROR("%s%s", pad, LONG_SECRET);
}

Test(redact, a_log_line_longer_than_the_limit_is_redacted_before_it_is_cut)
{
    static char out[16384];
    FILE *f = tmpfile();
    size_t n;

    rg_log_setup(RG_LOG_FORMAT_TEXT, RG_LOG_INFO, f);
    emit_long_secret_line();
    rewind(f);
    n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    fclose(f);
    cr_assert_gt(n, 8000);
    cr_assert_null(strstr(out, "Zz9"), "%s", out + 8100);
}

/* --- escaping -------------------------------------------------------------------------- */

static void emit_control_name(void)
{
    RG_ERROR("cannot read /m/0001_a\n\x1b[31mred.up.sql" RG_F "file=/m/b\x07\xff" RG_F
             "ok=caf\xc3\xa9");
}

Test(log, text_escapes_control_bytes_in_the_message_and_values)
{
    char *out = capture(RG_LOG_FORMAT_TEXT, emit_control_name);
    cr_assert(strstr(out, " error cannot read /m/0001_a\\n\\u001b[31mred.up.sql "), "%s", out);
    cr_assert(strstr(out, " file=\"/m/b\\u0007\\xff\""), "%s", out);
    cr_assert(strstr(out, " ok=caf\xc3\xa9\n"), "%s", out);
    cr_assert_null(strchr(out, '\x1b'), "%s", out);
    cr_assert_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line: %s", out);
}

Test(log, json_escapes_control_bytes_and_replaces_bytes_that_are_not_utf8)
{
    char *out = capture(RG_LOG_FORMAT_JSON, emit_control_name);
    cr_assert(strstr(out, "\"msg\":\"cannot read /m/0001_a\\n\\u001b[31mred.up.sql\""), "%s", out);
    cr_assert(strstr(out, "\"file\":\"/m/b\\u0007\\ufffd\""), "%s", out);
    cr_assert(strstr(out, "\"ok\":\"caf\xc3\xa9\""), "%s", out);
}

Test(log, utf8_sequences_are_validated)
{
    cr_assert_eq(rg_log_utf8_len("a", 1), 1);
    cr_assert_eq(rg_log_utf8_len("\xc3\xa9", 2), 2);
    cr_assert_eq(rg_log_utf8_len("\xe2\x82\xac", 3), 3);
    cr_assert_eq(rg_log_utf8_len("\xf0\x9f\x98\x80", 4), 4);
    cr_assert_eq(rg_log_utf8_len("\xc3", 1), 0, "truncated");
    cr_assert_eq(rg_log_utf8_len("\xc0\xaf", 2), 0, "overlong");
    cr_assert_eq(rg_log_utf8_len("\xe0\x80\xaf", 3), 0, "overlong");
    cr_assert_eq(rg_log_utf8_len("\xed\xa0\x80", 3), 0, "surrogate");
    cr_assert_eq(rg_log_utf8_len("\xf4\x90\x80\x80", 4), 0, "past U+10FFFF");
    cr_assert_eq(rg_log_utf8_len("\xff", 1), 0);
    cr_assert_eq(rg_log_utf8_len("\x80", 1), 0, "continuation byte");
}

static void emit_progress(void)
{
    RG_PROGRESS("statement running" RG_F "elapsed_ms=%d", 1000);
    RG_PROGRESS("statement running" RG_F "elapsed_ms=%d", 2000);
    RG_INFO("migration applied");
}

/* Off a terminal each progress report is an ordinary event. */
Test(log, progress_off_a_terminal_is_one_event_per_report)
{
    char *out = capture(RG_LOG_FORMAT_TEXT, emit_progress);
    cr_assert_null(strchr(out, '\r'), "%s", out);
    cr_assert(strstr(out, "statement running elapsed_ms=1000\n"), "%s", out);
    cr_assert(strstr(out, "statement running elapsed_ms=2000\n"), "%s", out);
    out = capture(RG_LOG_FORMAT_JSON, emit_progress);
    cr_assert(strstr(out, "\"elapsed_ms\":1000}\n"), "%s", out);
    cr_assert(strstr(out, "\"elapsed_ms\":2000}\n"), "%s", out);
}

/* On a terminal (a pseudo-terminal here) the reports update one line in place, and the next
 * event takes its place. */
Test(log, progress_on_a_terminal_updates_one_line)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    char buf[4096];
    ssize_t n, got = 0;
    FILE *term;

    cr_assert(master >= 0 && grantpt(master) == 0 && unlockpt(master) == 0);
    term = fopen(ptsname(master), "w");
    cr_assert_not_null(term);
    /* Raw: the line discipline would turn "\n" into "\r\n". */
    struct termios t;
    cr_assert_eq(tcgetattr(fileno(term), &t), 0);
    cfmakeraw(&t);
    cr_assert_eq(tcsetattr(fileno(term), TCSANOW, &t), 0);
    rg_log_setup(RG_LOG_FORMAT_TEXT, RG_LOG_INFO, term);
    emit_progress();
    fclose(term);
    while ((n = read(master, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
        got += n;
    buf[got] = '\0';
    close(master);
    rg_log_setup(RG_LOG_FORMAT_JSON, RG_LOG_INFO, stderr);
    /* First report: no newline after it; the second returns to the line's start, writes
     * itself over it; the event after it clears it and ends with a newline. */
    cr_assert(strstr(buf, "statement running elapsed_ms=1000\x1b[K\r\x1b[K"), "%s", buf);
    cr_assert(strstr(buf, "statement running elapsed_ms=2000\x1b[K\r\x1b[K"), "%s", buf);
    cr_assert(strstr(buf, "info migration applied\n"), "%s", buf);
    cr_assert_eq(strchr(buf, '\n'), buf + got - 1, "one line in all: %s", buf);
}

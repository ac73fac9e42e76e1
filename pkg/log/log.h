/* One event per line on stderr: JSON or text, decided once at start. */
#ifndef RG_LOG_H
#define RG_LOG_H

#include <stdio.h>

#include "err/err.h"

enum rg_log_level { RG_LOG_DEBUG, RG_LOG_INFO, RG_LOG_WARN, RG_LOG_ERROR };
enum rg_log_format { RG_LOG_FORMAT_AUTO, RG_LOG_FORMAT_JSON, RG_LOG_FORMAT_TEXT };

/* Separates the message and each key=value field in an event's format string:
 *   RG_INFO("migration applied" RG_F "version=%lld" RG_F "title=%s", v, t);
 * A control character cannot appear in a key, and one in a value is escaped on output. */
#define RG_F "\x1f"

/* The only global state: checked before any formatting work is done. */
extern enum rg_log_level rg_log_threshold;

/* AUTO means JSON unless the stream is a terminal. */
void rg_log_setup(enum rg_log_format format, enum rg_log_level level, FILE *out);
/* Secrets never reach a line: every line, and every text passed through rg_log_scrub, is
 * redacted whole before it is cut to any size, by these rules (README "Configuration"):
 *   - a URI's password: after "://", the user information runs to the first '@' before any
 *     '/', and what follows its first ':' is the password (libpq's reading);
 *   - a "password=" value (any case; also sslpassword=, PGPASSWORD=): in a URI query (after
 *     '?' or '&') to the next '&' (in a message also to white space, which a URI cannot
 *     hold); in key=value text a quoted value to its closing quote, else to white space, a
 *     backslash escaping the next character either way (libpq's reading);
 *   - a registered value (rg_log_redact): one of 4 bytes or more wherever it appears, a
 *     shorter one where it stands as a whole token (no ASCII letter or digit right before or
 *     after it), since hiding every "x" would garble the text.
 * Each hidden run reads "***". */
/* Registers a secret (a password, a token) of any length. The first secrets registered
 * (the database's) stay; past the table's size, the newest replaces the last slot, so a
 * rotating token is always the current one. */
void rg_log_redact(const char *secret);
/* Registers the passwords a connection string (URI or key=value) holds, found by the rules
 * above, in every form a message may quote them: as written, percent-decoded, unquoted. */
void rg_log_redact_conninfo(const char *conninfo);
void rg_log_emit(enum rg_log_level level, const char *fmt, ...) RG_PRINTF(2, 3);
/* Writes an already formatted event string (same layout as fmt) without printf. */
void rg_log_line(enum rg_log_level level, const char *event);

#define RG_LOG(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) >= rg_log_threshold)                                                           \
            rg_log_emit((level), __VA_ARGS__);                                                     \
    } while (0)
#define RG_DEBUG(...) RG_LOG(RG_LOG_DEBUG, __VA_ARGS__)
#define RG_INFO(...) RG_LOG(RG_LOG_INFO, __VA_ARGS__)
#define RG_WARN(...) RG_LOG(RG_LOG_WARN, __VA_ARGS__)
#define RG_ERROR(...) RG_LOG(RG_LOG_ERROR, __VA_ARGS__)

/* A progress report (info): in text on a terminal, one line that each next report
 * overwrites (carriage return, erase to the end) and the next event replaces; elsewhere
 * an ordinary event, one per report. */
void rg_log_progress(const char *fmt, ...) RG_PRINTF(1, 2);
#define RG_PROGRESS(...)                                                                           \
    do {                                                                                           \
        if (RG_LOG_INFO >= rg_log_threshold)                                                       \
            rg_log_progress(__VA_ARGS__);                                                          \
    } while (0)

/* Copies src into dst (size n) redacted, and returns dst. All of src is redacted before the
 * copy is cut to n, so text from outside (an argument, a value, a library's message) goes into
 * a bounded buffer through this, never around it. */
char *rg_log_scrub(char *dst, size_t n, const char *src);

/* The length of the UTF-8 sequence at s (at most n bytes), or 0 when s does not start with a
 * valid one (overlong forms, surrogates and code points past U+10FFFF are not). */
size_t rg_log_utf8_len(const char *s, size_t n);

#endif

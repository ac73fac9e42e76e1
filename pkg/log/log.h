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
/* Registers a secret (password, token); every occurrence in any later line is replaced
 * by "***". Redacting where the line is written means no caller can leak one by mistake.
 * Secrets shorter than 4 bytes are ignored: they would mangle ordinary text. */
void rg_log_redact(const char *secret);
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

/* Copies src into dst (size n) with every registered secret replaced. */
void rg_log_scrub(char *dst, size_t n, const char *src);

#endif

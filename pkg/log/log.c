#include "log/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "clock/clock.h"
#include "mem/mem.h"

#define LINE_MAX_BYTES 8192
/* The database's passwords in their forms, PGPASSWORD, the password file, tokens. */
#define MAX_SECRETS 32
/* A registered secret shorter than this is hidden only as a whole token. */
#define SHORT_SECRET 4

enum rg_log_level rg_log_threshold = RG_LOG_INFO;

static FILE *out_stream;
static bool as_json = true;
/* Text to a terminal: progress reports update one line in place. */
static bool live_line;
/* A progress line is on the terminal with no newline after it yet. */
static bool progress_open;
static char *secrets[MAX_SECRETS];
static pthread_mutex_t secrets_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *level_names[] = {"debug", "info", "warn", "error"};

void rg_log_setup(enum rg_log_format format, enum rg_log_level level, FILE *out)
{
    out_stream = out;
    rg_log_threshold = level;
    if (format == RG_LOG_FORMAT_AUTO)
        as_json = !isatty(fileno(out));
    else
        as_json = format == RG_LOG_FORMAT_JSON;
    live_line = !as_json && isatty(fileno(out));
}

/* Adds one secret; the caller holds secrets_lock. */
static void add_secret(const char *secret, size_t len)
{
    int i;

    if (len == 0)
        return;
    for (i = 0; i < MAX_SECRETS && secrets[i]; i++)
        if (strlen(secrets[i]) == len && memcmp(secrets[i], secret, len) == 0)
            return;
    if (i == MAX_SECRETS) {
        /* Full: the last slot takes the newest, so the first secrets (the database's) stay
         * and a rotating token is always the current one. */
        i = MAX_SECRETS - 1;
        explicit_bzero(secrets[i], strlen(secrets[i]));
        free(secrets[i]);
    }
    secrets[i] = rg_strndup(secret, len);
}

void rg_log_redact(const char *secret)
{
    if (!secret)
        return;
    pthread_mutex_lock(&secrets_lock);
    add_secret(secret, strlen(secret));
    pthread_mutex_unlock(&secrets_lock);
}

static bool is_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* A URI's password, as libpq's conninfo_uri_parse_options reads it: the user information
 * runs from "://" to the first '@' before any '/', and the password follows its first ':'. */
static void mark_uri_passwords(const char *s, bool *mask)
{
    for (const char *p = strstr(s, "://"); p; p = strstr(p + 3, "://")) {
        const char *info = p + 3, *at = info + strcspn(info, "@/" RG_F), *colon;
        if (*at != '@')
            continue;
        colon = memchr(info, ':', (size_t)(at - info));
        if (colon)
            memset(mask + (colon + 1 - s), 1, (size_t)(at - colon - 1));
    }
}

/* Where a "password=" value that starts at v ends, as libpq reads it: in a URI query at '&'
 * (in a message also at white space, which a URI cannot hold, so that the message goes on);
 * in key=value text at the closing quote of a quoted value, else at white space, a backslash
 * escaping the next character. A log event's field separator ends it too. */
static size_t value_end(const char *s, size_t n, size_t v, bool query, bool conninfo)
{
    size_t e = v;

    if (query) {
        while (e < n && s[e] != '&' && (conninfo || !is_space(s[e])) && s[e] != *RG_F)
            e++;
        return e;
    }
    if (s[v] == '\'') {
        for (e = v + 1; e < n && s[e] != '\'' && s[e] != *RG_F; e++)
            if (s[e] == '\\' && e + 1 < n && s[e + 1] != *RG_F)
                e++;
        return e < n && s[e] == '\'' ? e + 1 : e;
    }
    for (; e < n && !is_space(s[e]) && s[e] != *RG_F; e++)
        if (s[e] == '\\' && e + 1 < n && s[e + 1] != *RG_F)
            e++;
    return e;
}

/* Every "password=" value, in any case, also sslpassword= and PGPASSWORD=. conninfo: s is a
 * connection string, not a message. */
static void mark_keyword_values(const char *s, size_t n, bool conninfo, bool *mask)
{
    static const char key[] = "password";
    const size_t klen = sizeof(key) - 1;

    for (size_t i = 0; i + klen <= n; i++) {
        bool query;
        size_t v, e;
        if (strncasecmp(s + i, key, klen) != 0)
            continue;
        query = i > 0 && (s[i - 1] == '?' || s[i - 1] == '&');
        v = i + klen;
        while (!query && v < n && is_space(s[v]))
            v++;
        if (v == n || s[v] != '=')
            continue;
        v++;
        while (!query && v < n && is_space(s[v]))
            v++;
        e = value_end(s, n, v, query, conninfo);
        memset(mask + v, 1, e - v);
        i = e - 1;
    }
}

/* Every occurrence of a registered secret; one shorter than SHORT_SECRET only as a whole
 * token. The caller holds secrets_lock. */
static void mark_registered(const char *s, size_t n, bool *mask)
{
    for (int i = 0; i < MAX_SECRETS && secrets[i]; i++) {
        size_t len = strlen(secrets[i]);
        for (const char *p = strstr(s, secrets[i]); p; p = strstr(p + 1, secrets[i])) {
            size_t at = (size_t)(p - s);
            if (len < SHORT_SECRET &&
                ((at > 0 && is_alnum(s[at - 1])) || (at + len < n && is_alnum(s[at + len]))))
                continue;
            memset(mask + at, 1, len);
        }
    }
}

/* mask[i] set: byte i of s is part of a password by the structural rules. */
static bool *mark_structural(const char *s, size_t n, bool conninfo)
{
    bool *mask = rg_calloc(n + 1, sizeof(bool));

    mark_uri_passwords(s, mask);
    mark_keyword_values(s, n, conninfo, mask);
    return mask;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The run as libpq uses it, written into out (at least n + 1 bytes): in a URI, with its
 * percent escapes decoded; in key=value text, without the quotes and backslashes. Which one
 * the run came from does not matter: both forms are registered. */
static size_t decode(const char *run, size_t n, bool uri, char *out)
{
    size_t o = 0, i = 0, end = n;

    if (!uri && n > 0 && run[0] == '\'') {
        i = 1;
        if (n > 1 && run[n - 1] == '\'')
            end = n - 1;
    }
    for (; i < end; i++) {
        if (uri && run[i] == '%' && i + 2 < end && hex_digit(run[i + 1]) >= 0 &&
            hex_digit(run[i + 2]) >= 0) {
            out[o++] = (char)(hex_digit(run[i + 1]) * 16 + hex_digit(run[i + 2]));
            i += 2;
        } else if (!uri && run[i] == '\\' && i + 1 < end) {
            out[o++] = run[++i];
        } else {
            out[o++] = run[i];
        }
    }
    out[o] = '\0';
    return o;
}

void rg_log_redact_conninfo(const char *conninfo)
{
    size_t n, i = 0;
    bool *mask;
    char *decoded;

    if (!conninfo)
        return;
    n = strlen(conninfo);
    mask = mark_structural(conninfo, n, true);
    decoded = rg_malloc(n + 1);
    pthread_mutex_lock(&secrets_lock);
    while (i < n) {
        size_t start;
        if (!mask[i]) {
            i++;
            continue;
        }
        for (start = i; i < n && mask[i]; i++)
            ;
        add_secret(conninfo + start, i - start);
        add_secret(decoded, decode(conninfo + start, i - start, true, decoded));
        add_secret(decoded, decode(conninfo + start, i - start, false, decoded));
    }
    pthread_mutex_unlock(&secrets_lock);
    explicit_bzero(decoded, n + 1);
    free(decoded);
    free(mask);
}

char *rg_log_scrub(char *dst, size_t n, const char *src)
{
    size_t len = strlen(src), o = 0;
    bool *mask = mark_structural(src, len, false);

    /* The renewal thread registers rotated tokens while other threads log. */
    pthread_mutex_lock(&secrets_lock);
    mark_registered(src, len, mask);
    pthread_mutex_unlock(&secrets_lock);
    for (size_t i = 0; i < len && o + 1 < n;) {
        if (!mask[i]) {
            dst[o++] = src[i++];
            continue;
        }
        for (const char *r = "***"; *r && o + 1 < n; r++)
            dst[o++] = *r;
        while (i < len && mask[i])
            i++;
    }
    if (n > 0)
        dst[o] = '\0';
    free(mask);
    return dst;
}

size_t rg_log_utf8_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t len;
    uint32_t cp;

    if (n == 0)
        return 0;
    if (u[0] < 0x80)
        return 1;
    if (u[0] >= 0xc2 && u[0] <= 0xdf) {
        len = 2;
        cp = u[0] & 0x1f;
    } else if (u[0] >= 0xe0 && u[0] <= 0xef) {
        len = 3;
        cp = u[0] & 0x0f;
    } else if (u[0] >= 0xf0 && u[0] <= 0xf4) {
        len = 4;
        cp = u[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((u[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (u[i] & 0x3f);
    }
    /* Overlong three- and four-byte forms, UTF-16 surrogates, past U+10FFFF. */
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || (cp >= 0xd800 && cp <= 0xdfff) ||
        cp > 0x10ffff)
        return 0;
    return len;
}

struct line {
    char buf[LINE_MAX_BYTES];
    size_t len;
};

static void put(struct line *l, const char *s, size_t n)
{
    if (n > sizeof(l->buf) - 2 - l->len)
        n = sizeof(l->buf) - 2 - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* s as a reader may safely get it: control bytes escaped (\n, \t, \u00XX), bytes that are not
 * UTF-8 as \ufffd in JSON (whose lines must stay valid) or \xNN in text. Quoted, '"' and '\'
 * are escaped too and the whole stands in quotes: a JSON string, and the text format's
 * quoting of a value that needs it. */
static void put_escaped(struct line *l, const char *s, size_t n, bool quoted)
{
    if (quoted)
        put(l, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t u = rg_log_utf8_len(s + i, n - i);
        char esc[8];
        if (quoted && (c == '"' || c == '\\')) {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(l, esc, 2);
        } else if (c == '\n') {
            put(l, "\\n", 2);
        } else if (c == '\t') {
            put(l, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            put(l, esc, 6);
        } else if (u == 0 && as_json) {
            put(l, "\\ufffd", 6);
        } else if (u == 0) {
            snprintf(esc, sizeof(esc), "\\x%02x", c);
            put(l, esc, 4);
        } else {
            put(l, s + i, u);
            i += u;
            continue;
        }
        i++;
    }
    if (quoted)
        put(l, "\"", 1);
}

static bool is_number(const char *s, size_t n)
{
    size_t i = 0;
    if (n > 0 && s[0] == '-')
        i = 1;
    if (i == n || n > 18)
        return false;
    if (s[i] == '0' && n - i > 1)
        return false;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static void put_text_value(struct line *l, const char *s, size_t n)
{
    bool quote = n == 0;
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == ' ' || s[i] == '"' || s[i] == '=' || s[i] == '\\' ||
                (unsigned char)s[i] < 0x20 || s[i] == 0x7f;
    /* JSON string escaping is also a readable, unambiguous quoting for text. */
    put_escaped(l, s, n, quote);
}

static void write_event(enum rg_log_level level, const char *event, bool progress)
{
    static char scrubbed[LINE_MAX_BYTES];
    /* Only len set: zeroing the 8 KiB buffer cost more than formatting the line. */
    struct line l;
    char ts[40];
    const char *p, *end;
    FILE *out = out_stream ? out_stream : stderr;

    if (level < rg_log_threshold)
        return;
    l.len = 0;
    /* Lines from the renewal thread and the main thread are each written whole by one
     * fwrite; the static scratch buffer is guarded by the same stdio lock. */
    flockfile(out);
    /* The progress line on the terminal gives way to whatever comes next. */
    if (progress_open)
        puts_(&l, "\r\x1b[K");
    progress_open = progress && live_line;
    rg_log_scrub(scrubbed, sizeof(scrubbed), event);
    rg_utc_now(ts, sizeof(ts), 3);
    end = strchr(scrubbed, '\x1f');
    if (!end)
        end = scrubbed + strlen(scrubbed);
    if (as_json) {
        puts_(&l, "{\"time\":\"");
        puts_(&l, ts);
        puts_(&l, "\",\"level\":\"");
        puts_(&l, level_names[level]);
        puts_(&l, "\",\"msg\":");
        put_escaped(&l, scrubbed, (size_t)(end - scrubbed), true);
    } else {
        puts_(&l, ts);
        puts_(&l, " ");
        puts_(&l, level_names[level]);
        puts_(&l, " ");
        /* A file name may hold a newline or a terminal's escape sequence. */
        put_escaped(&l, scrubbed, (size_t)(end - scrubbed), false);
    }
    for (p = end; *p == '\x1f';) {
        const char *key = p + 1;
        const char *eq = strchr(key, '=');
        const char *next = strchr(key, '\x1f');
        if (!next)
            next = key + strlen(key);
        if (!eq || eq > next)
            eq = next;
        const char *val = eq < next ? eq + 1 : eq;
        size_t vlen = (size_t)(next - val);
        if (as_json) {
            puts_(&l, ",");
            put_escaped(&l, key, (size_t)(eq - key), true);
            puts_(&l, ":");
            if (is_number(val, vlen))
                put(&l, val, vlen);
            else
                put_escaped(&l, val, vlen, true);
        } else {
            puts_(&l, " ");
            put_escaped(&l, key, (size_t)(eq - key), false);
            puts_(&l, "=");
            put_text_value(&l, val, vlen);
        }
        p = next;
    }
    if (as_json)
        put(&l, "}", 1);
    if (progress_open)
        puts_(&l, "\x1b[K");
    else
        l.buf[l.len++] = '\n';
    fwrite(l.buf, 1, l.len, out);
    fflush(out);
    funlockfile(out);
}

void rg_log_line(enum rg_log_level level, const char *event)
{
    write_event(level, event, false);
}

/* fmt is the caller's checked format (RG_PRINTF on rg_log_emit and friends). */
static void emit(enum rg_log_level level, bool progress, const char *fmt, va_list ap)
    RG_PRINTF(3, 0);

static void emit(enum rg_log_level level, bool progress, const char *fmt, va_list ap)
{
    char event[LINE_MAX_BYTES], *whole = NULL;
    va_list again;
    int n;

    va_copy(again, ap);
    n = vsnprintf(event, sizeof(event), fmt, ap);
    /* Formatted whole, so that redaction sees every secret entire before the line is cut. */
    if (n >= (int)sizeof(event)) {
        whole = rg_malloc((size_t)n + 1);
        vsnprintf(whole, (size_t)n + 1, fmt, again);
    }
    va_end(again);
    write_event(level, whole ? whole : event, progress);
    free(whole);
}

void rg_log_emit(enum rg_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    emit(level, false, fmt, ap);
    va_end(ap);
}

void rg_log_progress(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    emit(RG_LOG_INFO, true, fmt, ap);
    va_end(ap);
}

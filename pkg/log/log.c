#include "log/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err/mem.h"

#define LINE_MAX_BYTES 8192
#define MAX_SECRETS 8

enum rg_log_level rg_log_threshold = RG_LOG_INFO;

static FILE *out_stream;
static bool as_json = true;
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
}

void rg_log_redact(const char *secret)
{
    int i;

    if (!secret || strlen(secret) < 4)
        return;
    pthread_mutex_lock(&secrets_lock);
    for (i = 0; i < MAX_SECRETS && secrets[i]; i++)
        if (strcmp(secrets[i], secret) == 0)
            break;
    if (i == MAX_SECRETS) {
        /* Full: the last slot takes the newest, so the first secrets (the database's) stay
         * and a rotating token is always the current one. */
        i = MAX_SECRETS - 1;
        free(secrets[i]);
        secrets[i] = NULL;
    }
    if (!secrets[i])
        secrets[i] = rg_strdup(secret);
    pthread_mutex_unlock(&secrets_lock);
}

void rg_log_scrub(char *dst, size_t n, const char *src)
{
    size_t o = 0;

    /* The renewal thread registers rotated tokens while other threads log. */
    pthread_mutex_lock(&secrets_lock);
    while (*src && o + 1 < n) {
        size_t hit = 0;
        for (int i = 0; i < MAX_SECRETS && secrets[i]; i++) {
            size_t len = strlen(secrets[i]);
            if (strncmp(src, secrets[i], len) == 0) {
                hit = len;
                break;
            }
        }
        if (hit) {
            for (const char *r = "***"; *r && o + 1 < n; r++)
                dst[o++] = *r;
            src += hit;
        } else {
            dst[o++] = *src++;
        }
    }
    dst[o] = '\0';
    pthread_mutex_unlock(&secrets_lock);
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

static void put_json_string(struct line *l, const char *s, size_t n)
{
    put(l, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(l, esc, 2);
        } else if (c == '\n') {
            put(l, "\\n", 2);
        } else if (c == '\t') {
            put(l, "\\t", 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            put(l, esc, 6);
        } else {
            put(l, (const char *)&s[i], 1);
        }
    }
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
        quote = s[i] == ' ' || s[i] == '"' || s[i] == '=' || (unsigned char)s[i] < 0x20;
    if (!quote) {
        put(l, s, n);
        return;
    }
    /* JSON string escaping is also a readable, unambiguous quoting for text. */
    put_json_string(l, s, n);
}

static void timestamp(char *buf, size_t n)
{
    struct timespec ts;
    struct tm tm;
    char base[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, n, "%.20s.%03dZ", base, (int)(ts.tv_nsec / 1000000) % 1000);
}

void rg_log_line(enum rg_log_level level, const char *event)
{
    static char scrubbed[LINE_MAX_BYTES];
    struct line l = {.len = 0};
    char ts[40];
    const char *p, *end;
    FILE *out = out_stream ? out_stream : stderr;

    if (level < rg_log_threshold)
        return;
    /* Lines from the renewal thread and the main thread are each written whole by one
     * fwrite; the static scratch buffer is guarded by the same stdio lock. */
    flockfile(out);
    rg_log_scrub(scrubbed, sizeof(scrubbed), event);
    timestamp(ts, sizeof(ts));
    end = strchr(scrubbed, '\x1f');
    if (!end)
        end = scrubbed + strlen(scrubbed);
    if (as_json) {
        puts_(&l, "{\"time\":\"");
        puts_(&l, ts);
        puts_(&l, "\",\"level\":\"");
        puts_(&l, level_names[level]);
        puts_(&l, "\",\"msg\":");
        put_json_string(&l, scrubbed, (size_t)(end - scrubbed));
    } else {
        puts_(&l, ts);
        puts_(&l, " ");
        puts_(&l, level_names[level]);
        puts_(&l, " ");
        put(&l, scrubbed, (size_t)(end - scrubbed));
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
            put_json_string(&l, key, (size_t)(eq - key));
            puts_(&l, ":");
            if (is_number(val, vlen))
                put(&l, val, vlen);
            else
                put_json_string(&l, val, vlen);
        } else {
            puts_(&l, " ");
            put(&l, key, (size_t)(eq - key));
            puts_(&l, "=");
            put_text_value(&l, val, vlen);
        }
        p = next;
    }
    if (as_json)
        put(&l, "}", 1);
    l.buf[l.len++] = '\n';
    fwrite(l.buf, 1, l.len, out);
    fflush(out);
    funlockfile(out);
}

void rg_log_emit(enum rg_log_level level, const char *fmt, ...)
{
    char event[LINE_MAX_BYTES];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(event, sizeof(event), fmt, ap);
    va_end(ap);
    rg_log_line(level, event);
}

#include "json/json.h"

#include <inttypes.h>
#include <string.h>

void rg_json_quote(rg_json_put put, void *ctx, const char *s, size_t n)
{
    size_t run = 0; /* bytes of s before i that need no escape, not yet put */

    put(ctx, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        size_t elen = 2;

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
        } else if (c == '\n') {
            memcpy(esc, "\\n", 2);
        } else if (c == '\t') {
            memcpy(esc, "\\t", 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            elen = 6;
        } else {
            run++;
            continue;
        }
        put(ctx, s + i - run, run);
        run = 0;
        put(ctx, esc, elen);
    }
    put(ctx, s + n - run, run);
    put(ctx, "\"", 1);
}

static void put_file(void *ctx, const char *s, size_t n)
{
    fwrite(s, 1, n, ctx);
}

void rg_json_to_file(struct rg_json *j, FILE *out)
{
    j->put = put_file;
    j->ctx = out;
    j->comma = false;
}

/* Before a value or a member: the comma that separates it from the previous one. */
static void separate(struct rg_json *j)
{
    if (j->comma)
        j->put(j->ctx, ",", 1);
    j->comma = false;
}

void rg_json_open(struct rg_json *j, char open)
{
    separate(j);
    j->put(j->ctx, &open, 1);
}

void rg_json_close(struct rg_json *j, char close)
{
    j->put(j->ctx, &close, 1);
    j->comma = true;
}

void rg_json_key(struct rg_json *j, const char *key)
{
    separate(j);
    rg_json_quote(j->put, j->ctx, key, strlen(key));
    j->put(j->ctx, ":", 1);
}

void rg_json_str(struct rg_json *j, const char *s)
{
    separate(j);
    if (s)
        rg_json_quote(j->put, j->ctx, s, strlen(s));
    else
        j->put(j->ctx, "null", 4);
    j->comma = true;
}

void rg_json_int(struct rg_json *j, int64_t v)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%" PRId64, v);

    separate(j);
    j->put(j->ctx, buf, (size_t)n);
    j->comma = true;
}

void rg_json_bool(struct rg_json *j, bool v)
{
    separate(j);
    j->put(j->ctx, v ? "true" : "false", v ? 4 : 5);
    j->comma = true;
}

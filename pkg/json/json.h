/* A small streaming JSON writer: what rollgate prints as JSON (status, version, log lines)
 * goes through here, so cJSON stays pkg/kube's alone and a string is escaped one way. */
#ifndef RG_JSON_H
#define RG_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Where the text goes: put(ctx, bytes, n). */
typedef void (*rg_json_put)(void *ctx, const char *s, size_t n);

/* s[0..n) as a JSON string, quotes included: '"' and '\\' escaped, control characters as
 * \n, \t or \u00XX. */
void rg_json_quote(rg_json_put put, void *ctx, const char *s, size_t n);

struct rg_json {
    rg_json_put put;
    void *ctx;
    bool comma; /* a value was written in the open container: the next needs a comma */
};

/* A writer to a stdio stream. */
void rg_json_to_file(struct rg_json *j, FILE *out);

/* Containers: open is '{' or '[', close the matching one. */
void rg_json_open(struct rg_json *j, char open);
void rg_json_close(struct rg_json *j, char close);
/* A member's name inside an object; its value follows. */
void rg_json_key(struct rg_json *j, const char *key);
/* Values. A NULL string is written as null. Integers are written exactly (a JSON number
 * read as a double would round a 64-bit version). */
void rg_json_str(struct rg_json *j, const char *s);
void rg_json_int(struct rg_json *j, int64_t v);
void rg_json_bool(struct rg_json *j, bool v);

#endif

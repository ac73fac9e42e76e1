/* What the store derives from plain values, without a connection: the name a run's
 * sessions carry, the hash behind it and the lock key, and numbers read back from the
 * server. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/internal.h"

#define SESSION_PREFIX "rollgate/"
/* Identity bytes kept in front of the hash when the whole identity does not fit. */
#define SESSION_HEAD (RG_PG_SESSION_NAME_MAX - 1 - (sizeof(SESSION_PREFIX) - 1) - 1 - 16)

uint64_t rg_pg_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* What PostgreSQL keeps of an application_name as it is: printable ASCII. It replaces
 * anything else ('?' up to 15, an escape from 16 on), so such a name would not compare
 * equal to what was asked for. */
static bool printable(unsigned char c)
{
    return c >= 0x20 && c <= 0x7e;
}

void rg_pg_session_name(const char *identity, char name[RG_PG_SESSION_NAME_MAX])
{
    size_t len = identity ? strlen(identity) : 0, i;
    bool plain = len < SESSION_HEAD + 1 + 16;

    for (i = 0; plain && i < len; i++)
        plain = printable((unsigned char)identity[i]);
    if (plain) {
        snprintf(name, RG_PG_SESSION_NAME_MAX, SESSION_PREFIX "%s", len ? identity : "");
        return;
    }
    /* Too long or not plain: a readable head and a hash of the whole identity, exactly
     * the 63 bytes PostgreSQL keeps (NAMEDATALEN - 1). Plain names are shorter, so the two
     * forms never meet. */
    memcpy(name, SESSION_PREFIX, sizeof(SESSION_PREFIX) - 1);
    for (i = 0; i < SESSION_HEAD; i++) {
        unsigned char c = i < len ? (unsigned char)identity[i] : '-';
        name[sizeof(SESSION_PREFIX) - 1 + i] = printable(c) ? (char)c : '?';
    }
    snprintf(name + sizeof(SESSION_PREFIX) - 1 + SESSION_HEAD, 18, "~%016" PRIx64,
             rg_pg_hash(identity));
}

int rg_pg_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end = NULL;
    long long v;

    if (!s || !*s)
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = (int64_t)v;
    return 0;
}

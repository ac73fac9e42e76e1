#include "source/sql.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "err/mem.h"

enum txn { TXN_NONE, TXN_BEGIN, TXN_COMMIT, TXN_OTHER };

/* A top-level statement: where it starts and ends (its ';' included) and what it does to
 * the transaction. */
struct stmt {
    size_t start, end, line;
    enum txn txn;
    char word[2][24];
};

struct scan {
    const char *s;
    size_t n, i, line;
};

static bool is_word_start(char c)
{
    return isalpha((unsigned char)c) || c == '_' || (unsigned char)c >= 0x80;
}

static bool is_word_char(char c)
{
    return is_word_start(c) || isdigit((unsigned char)c) || c == '$';
}

static void advance(struct scan *sc)
{
    if (sc->s[sc->i] == '\n')
        sc->line++;
    sc->i++;
}

/* Skips a quoted run opened at sc->i; backslash escapes count only in E'' strings. */
static void skip_quoted(struct scan *sc, char q, bool backslash)
{
    advance(sc);
    while (sc->i < sc->n) {
        char c = sc->s[sc->i];
        if (backslash && c == '\\' && sc->i + 1 < sc->n) {
            advance(sc);
            advance(sc);
            continue;
        }
        advance(sc);
        if (c == q) {
            if (sc->i < sc->n && sc->s[sc->i] == q) {
                advance(sc);
                continue;
            }
            return;
        }
    }
}

/* $tag$ ... $tag$; returns false when '$' does not open one (a $1 parameter). */
static bool skip_dollar(struct scan *sc)
{
    size_t j = sc->i + 1, taglen;

    while (j < sc->n && (is_word_start(sc->s[j]) || isdigit((unsigned char)sc->s[j])) &&
           !(j == sc->i + 1 && isdigit((unsigned char)sc->s[j])))
        j++;
    if (j >= sc->n || sc->s[j] != '$')
        return false;
    taglen = j - sc->i + 1;
    for (size_t k = 0; k < taglen; k++)
        advance(sc);
    while (sc->i < sc->n) {
        if (sc->s[sc->i] == '$' && sc->i + taglen <= sc->n &&
            memcmp(sc->s + sc->i, sc->s + j + 1 - taglen, taglen) == 0) {
            for (size_t k = 0; k < taglen; k++)
                advance(sc);
            return true;
        }
        advance(sc);
    }
    return true;
}

static void skip_block_comment(struct scan *sc)
{
    int depth = 0;
    while (sc->i < sc->n) {
        if (sc->s[sc->i] == '/' && sc->i + 1 < sc->n && sc->s[sc->i + 1] == '*') {
            depth++;
            advance(sc);
        } else if (sc->s[sc->i] == '*' && sc->i + 1 < sc->n && sc->s[sc->i + 1] == '/') {
            depth--;
            advance(sc);
            if (depth == 0) {
                advance(sc);
                return;
            }
        }
        advance(sc);
    }
}

static enum txn classify(const struct stmt *st)
{
    const char *a = st->word[0], *b = st->word[1];

    if (!strcasecmp(a, "begin") || (!strcasecmp(a, "start") && !strcasecmp(b, "transaction")))
        return TXN_BEGIN;
    if ((!strcasecmp(a, "commit") && strcasecmp(b, "prepared")) || !strcasecmp(a, "end"))
        return TXN_COMMIT;
    if ((!strcasecmp(a, "rollback") && strcasecmp(b, "to")) || !strcasecmp(a, "abort") ||
        (!strcasecmp(a, "prepare") && !strcasecmp(b, "transaction")) || !strcasecmp(a, "commit"))
        return TXN_OTHER;
    return TXN_NONE;
}

/* The statement in cur ends at end: finish it and hand it on. */
static void statement_done(struct stmt *cur, size_t end,
                           void (*on_stmt)(const struct stmt *st, void *ctx), void *ctx)
{
    cur->end = end;
    cur->txn = classify(cur);
    on_stmt(cur, ctx);
}

/* Calls on_stmt for each top-level statement, in order. A statement starts at its first
 * byte that is neither blank nor comment, so comments between statements and a lone ';'
 * make none. This is the only lexer: rg_sql_unwrap and rg_sql_statements differ only in
 * what they do with each statement. */
static void scan_statements(const char *sql, size_t len,
                            void (*on_stmt)(const struct stmt *st, void *ctx), void *ctx)
{
    struct scan sc = {sql, len, 0, 1};
    struct stmt cur = {0};
    bool in_stmt = false;
    int words = 0, atomic = 0;
    char prev[24] = "";

    while (sc.i < sc.n) {
        char c = sc.s[sc.i];
        if (isspace((unsigned char)c)) {
            advance(&sc);
            continue;
        }
        if (c == '-' && sc.i + 1 < sc.n && sc.s[sc.i + 1] == '-') {
            while (sc.i < sc.n && sc.s[sc.i] != '\n')
                advance(&sc);
            continue;
        }
        if (c == '/' && sc.i + 1 < sc.n && sc.s[sc.i + 1] == '*') {
            skip_block_comment(&sc);
            continue;
        }
        if (!in_stmt) {
            if (c == ';') {
                advance(&sc);
                continue;
            }
            memset(&cur, 0, sizeof(cur));
            cur.start = sc.i;
            cur.line = sc.line;
            in_stmt = true;
            words = 0;
            prev[0] = '\0';
        }
        if (c == ';' && atomic == 0) {
            advance(&sc);
            statement_done(&cur, sc.i, on_stmt, ctx);
            in_stmt = false;
        } else if (c == '\'' || c == '"') {
            skip_quoted(&sc, c, false);
        } else if (c == '$' && skip_dollar(&sc)) {
            continue;
        } else if (is_word_start(c)) {
            size_t w = sc.i, wl;
            char word[24];
            while (sc.i < sc.n && is_word_char(sc.s[sc.i]))
                advance(&sc);
            wl = sc.i - w < sizeof(word) - 1 ? sc.i - w : sizeof(word) - 1;
            memcpy(word, sc.s + w, wl);
            word[wl] = '\0';
            /* E'...' strings take backslash escapes. */
            if (sc.i < sc.n && sc.s[sc.i] == '\'' && !strcasecmp(word, "e")) {
                skip_quoted(&sc, '\'', true);
                continue;
            }
            if (words < 2)
                strcpy(cur.word[words], word);
            /* A BEGIN ATOMIC ... END body holds ';'s of its own; CASE ... END nests in it. */
            if (words > 0 && !strcasecmp(prev, "begin") && !strcasecmp(word, "atomic"))
                atomic++;
            else if (atomic && !strcasecmp(word, "case"))
                atomic++;
            else if (atomic && !strcasecmp(word, "end"))
                atomic--;
            words++;
            strcpy(prev, word);
        } else {
            advance(&sc);
        }
    }
    if (in_stmt)
        statement_done(&cur, sc.n, on_stmt, ctx);
}

static void blank(char *sql, const struct stmt *st)
{
    for (size_t i = st->start; i < st->end; i++)
        if (sql[i] != '\n')
            sql[i] = ' ';
}

/* What unwrapping needs to decide: the first and last statements, and the first few that
 * control the transaction. */
struct found {
    struct stmt first, last;
    size_t count;
    struct stmt txn[3];
    size_t ntxn;
};

static void found_add(const struct stmt *st, void *ctx)
{
    struct found *f = ctx;

    if (f->count++ == 0)
        f->first = *st;
    f->last = *st;
    if (st->txn != TXN_NONE && f->ntxn < sizeof(f->txn) / sizeof(f->txn[0]))
        f->txn[f->ntxn++] = *st;
}

int rg_sql_unwrap(char *sql, size_t len, const char *path, struct rg_err *err)
{
    struct found f = {0};
    const struct stmt *bad;

    scan_statements(sql, len, found_add, &f);
    if (f.ntxn == 0)
        return 0;
    if (f.ntxn == 2 && f.txn[0].txn == TXN_BEGIN && f.txn[0].start == f.first.start &&
        f.txn[1].txn == TXN_COMMIT && f.txn[1].start == f.last.start) {
        blank(sql, &f.first);
        blank(sql, &f.last);
        return 0;
    }
    bad = f.txn[0].start == f.first.start && f.txn[0].txn == TXN_BEGIN && f.ntxn > 1 ? &f.txn[1]
                                                                                     : &f.txn[0];
    rg_err_set(err, RG_EFILES,
               "%s:%zu: %s%s%s: rollgate runs each migration in a transaction of its own, so a "
               "file may not control it (a whole-file BEGIN; ... COMMIT; wrapper is accepted)",
               path, bad->line, bad->word[0], *bad->word[1] ? " " : "", bad->word[1]);
    return -1;
}

struct stmt_list {
    struct rg_sql_stmt *items;
    size_t n, cap;
};

static void list_add(const struct stmt *st, void *ctx)
{
    struct stmt_list *l = ctx;

    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->items = rg_realloc(l->items, l->cap * sizeof(*l->items));
    }
    l->items[l->n++] = (struct rg_sql_stmt){st->start, st->end, st->line};
}

size_t rg_sql_statements(const char *sql, size_t len, struct rg_sql_stmt **out)
{
    struct stmt_list l = {0};

    scan_statements(sql, len, list_add, &l);
    *out = l.items;
    return l.n;
}

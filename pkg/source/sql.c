/* Statement boundaries and kinds from libpg_query. The parser (pg_query_parse's raw
 * grammar, through pg_query_split_with_parser) decides where statements end; where it
 * cannot read the SQL, PostgreSQL's scanner (pg_query_split_with_scanner) does, and the
 * parser is asked again piece by piece. Where a statement starts (its first token) comes
 * from the scanner (pg_query_scan), and what it is from its parse tree
 * (pg_query_parse_protobuf). */
#include "source/sql.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include "mem/mem.h"

/* libpg_query keeps every token and node of its input in memory until the call returns,
 * about ten times the input (a whole 16 MiB data file would take hundreds of MiB). So it
 * is given the file a window at a time, cut after a line end; a statement longer than a
 * window grows the window until it fits. */
#define WINDOW ((size_t)256 * 1024)
/* How much of a statement is scanned for its first token (the scanner's time goes by the
 * tokens it reads); more when comments come first. */
#define HEAD ((size_t)32)

/* A statement found, with the token it starts with: that names it in messages (END is a
 * COMMIT) and tells whether its kind needs the parse tree at all. A BEGIN's isolation
 * level (an index into levels, below; -1 for none) and READ ONLY come from the same tree,
 * for a wrapper (rg_sql_unwrap_split). */
struct stmt {
    struct rg_sql_stmt pub;
    int token;
    signed char isolation;
    bool read_only;
};

/* The isolation levels a BEGIN may set, as the parser's tree spells them and as SQL. */
static const char *const levels[][2] = {
    {"read uncommitted", "ISOLATION LEVEL READ UNCOMMITTED"},
    {"read committed", "ISOLATION LEVEL READ COMMITTED"},
    {"repeatable read", "ISOLATION LEVEL REPEATABLE READ"},
    {"serializable", "ISOLATION LEVEL SERIALIZABLE"},
};

struct split {
    const char *sql;
    size_t len; /* up to the first NUL */
    struct stmt *items;
    size_t n, cap;
    size_t line_at, line; /* line is the line of byte line_at */
};

/* A range of sql handed to libpg_query: [from, to), NUL-terminated in text. */
struct range {
    size_t from, to;
    char *text;
};

static struct range range_of(const struct split *sp, size_t from, size_t to)
{
    return (struct range){from, to, rg_strndup(sp->sql + from, to - from)};
}

/* protobuf-c's unpack fails only when malloc does. */
static void *unpacked(void *p)
{
    if (!p) {
        fputs("rollgate: out of memory\n", stderr);
        abort();
    }
    return p;
}

/* libpg_query reports an error's place as PostgreSQL does, a 1-based character position
 * (0: none); the byte it points at in r, counting characters as PostgreSQL's UTF-8
 * pg_mblen does (by the lead byte), within r. */
static size_t error_at(const struct range *r, const PgQueryError *e)
{
    size_t i = 0, n = r->to - r->from;

    for (int c = 1; c < e->cursorpos && i < n; c++) {
        unsigned char b = (unsigned char)r->text[i];
        i += (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3 : (b & 0xf8) == 0xf0 ? 4 : 1;
    }
    return r->from + (i < n ? i : n);
}

static bool is_comment(int token)
{
    return token == PG_QUERY__TOKEN__SQL_COMMENT || token == PG_QUERY__TOKEN__C_COMMENT;
}

/* The first token of sql[from, to) that is no comment and no ';' into *at and *token;
 * false when there is none. Where the scanner stops at an error (an unterminated string
 * or comment), that place counts as a token (0): the server will judge what follows. */
static bool first_token(const struct split *sp, size_t from, size_t to, size_t *at, int *token)
{
    size_t head = HEAD;

    for (;;) {
        size_t stop = to - from > head ? from + head : to;
        struct range r = range_of(sp, from, stop);
        PgQueryScanResult res = pg_query_scan(r.text);
        PgQuery__ScanResult *u = NULL;
        bool found = false, failed = res.error != NULL;
        size_t err = failed ? error_at(&r, res.error) : 0;

        if (!failed) {
            u = unpacked(
                pg_query__scan_result__unpack(NULL, res.pbuf.len, (const uint8_t *)res.pbuf.data));
            for (size_t i = 0; i < u->n_tokens; i++) {
                int t = (int)u->tokens[i]->token;
                /* One the head cut short (COMM of COMMIT) is looked at again, whole. */
                if (!is_comment(t) && t != PG_QUERY__TOKEN__ASCII_59) {
                    *at = from + (size_t)u->tokens[i]->start;
                    *token = t;
                    found = stop == to || from + (size_t)u->tokens[i]->end < stop;
                    break;
                }
            }
            pg_query__scan_result__free_unpacked(u, NULL);
        }
        pg_query_free_scan_result(res);
        free(r.text);
        if (found)
            return true;
        if (failed && err > from && err < stop && first_token(sp, from, err, at, token))
            return true;
        if (stop == to) {
            /* Past the end only where bytes that are not UTF-8 threw the count off. */
            *at = err < stop ? err : from;
            *token = 0;
            return failed;
        }
        /* The head ended inside a comment, a string or the first token: look further. */
        head *= 2;
    }
}

/* What a BEGIN asks of its transaction, from its parse tree, into st: its isolation level
 * (levels) and whether it is READ ONLY. READ WRITE and [NOT] DEFERRABLE change nothing for a
 * transaction that writes (DEFERRABLE acts only on a read-only one). */
static void begin_modes(const PgQuery__TransactionStmt *t, struct stmt *st)
{
    for (size_t i = 0; i < t->n_options; i++) {
        const PgQuery__DefElem *d = t->options[i]->node_case == PG_QUERY__NODE__NODE_DEF_ELEM
                                        ? t->options[i]->def_elem
                                        : NULL;
        const PgQuery__AConst *c = d && d->arg && d->arg->node_case == PG_QUERY__NODE__NODE_A_CONST
                                       ? d->arg->a_const
                                       : NULL;

        if (c && strcmp(d->defname, "transaction_isolation") == 0 &&
            c->val_case == PG_QUERY__A__CONST__VAL_SVAL) {
            for (size_t k = 0; k < sizeof(levels) / sizeof(levels[0]); k++)
                if (strcmp(c->sval->sval, levels[k][0]) == 0)
                    st->isolation = (signed char)k;
        } else if (c && strcmp(d->defname, "transaction_read_only") == 0) {
            st->read_only = c->val_case == PG_QUERY__A__CONST__VAL_IVAL && c->ival->ival != 0;
        }
    }
}

/* The kind of one statement st, sql[st->pub.start, stop), from its parse tree (and a
 * BEGIN's modes into st). Only statements that start with one of these tokens can be of a
 * kind that matters, so no other is parsed again. */
static enum rg_sql_kind kind_of(const struct split *sp, size_t stop, struct stmt *st)
{
    static const int tokens[] = {
        PG_QUERY__TOKEN__BEGIN_P, PG_QUERY__TOKEN__START,    PG_QUERY__TOKEN__COMMIT,
        PG_QUERY__TOKEN__END_P,   PG_QUERY__TOKEN__ROLLBACK, PG_QUERY__TOKEN__ABORT_P,
        PG_QUERY__TOKEN__PREPARE, PG_QUERY__TOKEN__VACUUM,   PG_QUERY__TOKEN__COPY,
    };
    static const int data[] = {
        PG_QUERY__TOKEN__INSERT,   PG_QUERY__TOKEN__UPDATE, PG_QUERY__TOKEN__DELETE_P,
        PG_QUERY__TOKEN__MERGE,    PG_QUERY__TOKEN__SELECT, PG_QUERY__TOKEN__VALUES,
        PG_QUERY__TOKEN__TABLE,    PG_QUERY__TOKEN__WITH,   PG_QUERY__TOKEN__WITH_LA,
        PG_QUERY__TOKEN__ASCII_40,
    };
    int token = st->token;
    enum rg_sql_kind kind = RG_SQL_OTHER;
    bool candidate = false;
    struct range r;
    PgQueryProtobufParseResult res;
    PgQuery__ParseResult *tree;
    const PgQuery__Node *node;

    for (size_t i = 0; i < sizeof(data) / sizeof(data[0]); i++)
        if (token == data[i])
            return RG_SQL_DATA;
    for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++)
        candidate = candidate || token == tokens[i];
    if (!candidate)
        return RG_SQL_OTHER;
    r = range_of(sp, st->pub.start, stop);
    res = pg_query_parse_protobuf(r.text);
    if (res.error) {
        kind = RG_SQL_UNPARSED;
        goto out;
    }
    tree = unpacked(pg_query__parse_result__unpack(NULL, res.parse_tree.len,
                                                   (const uint8_t *)res.parse_tree.data));
    node = tree->n_stmts == 1 ? tree->stmts[0]->stmt : NULL;
    if (node && node->node_case == PG_QUERY__NODE__NODE_TRANSACTION_STMT) {
        switch (node->transaction_stmt->kind) {
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN:
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START:
            kind = RG_SQL_BEGIN;
            begin_modes(node->transaction_stmt, st);
            break;
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT:
            kind = RG_SQL_COMMIT;
            break;
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK:
            kind = RG_SQL_ROLLBACK;
            break;
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_PREPARE:
            kind = RG_SQL_PREPARE_TRANSACTION;
            break;
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT_PREPARED:
            kind = RG_SQL_COMMIT_PREPARED;
            break;
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_PREPARED:
            kind = RG_SQL_ROLLBACK_PREPARED;
            break;
        default: /* SAVEPOINT, RELEASE, ROLLBACK TO: fine inside a transaction */
            break;
        }
    } else if (node && node->node_case == PG_QUERY__NODE__NODE_VACUUM_STMT) {
        /* ANALYZE is a VacuumStmt too, and runs inside a transaction. */
        if (node->vacuum_stmt->is_vacuumcmd)
            kind = RG_SQL_VACUUM;
    } else if (node && node->node_case == PG_QUERY__NODE__NODE_COPY_STMT) {
        /* No file name and no program: the client's end of the connection. */
        const PgQuery__CopyStmt *c = node->copy_stmt;
        if ((!c->filename || !*c->filename) && !c->is_program)
            kind = c->is_from ? RG_SQL_COPY_STDIN : RG_SQL_COPY_STDOUT;
    }
    pg_query__parse_result__free_unpacked(tree, NULL);
out:
    pg_query_free_protobuf_parse_result(res);
    free(r.text);
    return kind;
}

/* Adds the statement in sql[from, stop) (from: where its text begins, comments included;
 * stop: its ';' or the end), unless it holds no token. parsed: the parser read it, so its
 * kind can be had from the tree. */
static void add(struct split *sp, size_t from, size_t stop, bool parsed)
{
    struct stmt st = {0};
    size_t at;
    int token;

    if (!first_token(sp, from, stop, &at, &token) || at >= stop)
        return;
    st.pub.start = at;
    st.pub.end = stop < sp->len && sp->sql[stop] == ';' ? stop + 1 : stop;
    st.token = token;
    st.isolation = -1;
    st.pub.kind = parsed ? kind_of(sp, stop, &st) : RG_SQL_UNPARSED;
    for (; sp->line_at < at; sp->line_at++)
        sp->line += sp->sql[sp->line_at] == '\n';
    st.pub.line = sp->line;
    if (sp->n == sp->cap) {
        sp->cap = sp->cap ? sp->cap * 2 : 16;
        sp->items = rg_realloc(sp->items, sp->cap * sizeof(*sp->items));
    }
    sp->items[sp->n++] = st;
}

/* One statement of a split result, as a range of sql: [from, stop), stop at its ';' or
 * the end of r (a last statement's length is 0 in the parser's tree). */
static void piece_of(const struct range *r, const PgQuerySplitStmt *s, size_t *from, size_t *stop)
{
    *from = r->from + (size_t)s->stmt_location;
    *stop = s->stmt_len > 0 ? *from + (size_t)s->stmt_len : r->to;
    if (*stop > r->to)
        *stop = r->to;
}

/* The parser's statements of sql[from, to). Returns the number found, or -1 with *err_at
 * where the parser stopped (to: the input ended inside a statement). */
static long parse_split(struct split *sp, size_t from, size_t to, bool keep_last, size_t *next,
                        size_t *err_at)
{
    struct range r = range_of(sp, from, to);
    PgQuerySplitResult res = pg_query_split_with_parser(r.text);
    long n = -1;

    if (res.error) {
        *err_at = error_at(&r, res.error);
        goto out;
    }
    n = res.n_stmts;
    *next = to;
    for (int i = 0; i < res.n_stmts; i++) {
        size_t a, b;
        piece_of(&r, res.stmts[i], &a, &b);
        if (i == res.n_stmts - 1 && !keep_last) {
            *next = a;
            break;
        }
        add(sp, a, b, true);
    }
out:
    pg_query_free_split_result(res);
    free(r.text);
    return n;
}

/* A piece of the scanner's split: [from, stop), its ';' at stop if it has one. */
struct piece {
    size_t from, stop;
};

/* After the ';' ending p, or its end. */
static size_t after(const struct split *sp, const struct piece *p)
{
    return p->stop < sp->len && sp->sql[p->stop] == ';' ? p->stop + 1 : p->stop;
}

/* One past the last ';' token in sql[from, to), or 0 when there is none or the scanner
 * stops at an error. */
static size_t last_semicolon(const struct split *sp, size_t from, size_t to)
{
    struct range r = range_of(sp, from, to);
    PgQueryScanResult res = pg_query_scan(r.text);
    size_t end = 0;

    if (!res.error) {
        PgQuery__ScanResult *u = unpacked(
            pg_query__scan_result__unpack(NULL, res.pbuf.len, (const uint8_t *)res.pbuf.data));
        for (size_t i = 0; i < u->n_tokens; i++)
            if (u->tokens[i]->token == PG_QUERY__TOKEN__ASCII_59)
                end = from + (size_t)u->tokens[i]->end;
        pg_query__scan_result__free_unpacked(u, NULL);
    }
    pg_query_free_scan_result(res);
    free(r.text);
    return end;
}

struct pieces {
    struct piece *p;
    size_t n, cap;
    bool tail_gap; /* the last piece is text the scanner skipped at the end */
};

static void push(struct pieces *ps, size_t from, size_t stop)
{
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 16;
        ps->p = rg_realloc(ps->p, ps->cap * sizeof(*ps->p));
    }
    ps->p[ps->n++] = (struct piece){from, stop};
}

/* A window's text for the scanner, in which tokens PostgreSQL 15's scanner stops at are
 * blanked: byte i of sql is buf[i - off]. */
struct patched {
    char *buf;
    size_t off;
};

/* Runs the scanner's split on sql[from, to) (as patched) and adds its pieces, with
 * whatever it skips in between (a "statement" without a keyword, and everything after an
 * unbalanced ')') as pieces of their own, so no text is ever lost. On an error, *err_at is
 * where the scanner stopped and *unterminated whether a string, identifier or comment
 * runs to the end. */
static int scan_pieces(struct split *sp, const struct patched *pt, size_t from, size_t to,
                       struct pieces *ps, size_t *err_at, bool *unterminated)
{
    struct range r = {from, to, rg_strndup(pt->buf + (from - pt->off), to - from)};
    PgQuerySplitResult res = pg_query_split_with_scanner(r.text);
    size_t at = from;
    int rc = -1;

    if (res.error) {
        *err_at = error_at(&r, res.error);
        /* PostgreSQL's own words in scan.l for a string, identifier or comment that does
         * not end; every other error of its scanner is about one token. */
        *unterminated = strncmp(res.error->message, "unterminated", strlen("unterminated")) == 0;
        goto out;
    }
    for (int i = 0; i < res.n_stmts; i++) {
        struct piece cur;
        piece_of(&r, res.stmts[i], &cur.from, &cur.stop);
        if (cur.from > at)
            push(ps, at, cur.from);
        push(ps, cur.from, cur.stop);
        at = after(sp, &cur);
    }
    ps->tail_gap = at < to;
    if (at < to)
        push(ps, at, to);
    rc = 0;
out:
    pg_query_free_split_result(res);
    free(r.text);
    return rc;
}

/* The pieces the scanner finds in sql[from, to). Where it stops at a token PostgreSQL 15
 * does not know (1_000 or 0x1F, PostgreSQL 16's numbers), the token's first byte is
 * blanked in a copy and the statement scanned again, so its parentheses still count; after
 * MAX_PATCHES in one statement the rest is one piece. Where a string or comment never
 * ends, the rest is one piece: what follows it may all be inside it. When to is not the
 * end of sql, the last piece may be cut and is left out, and an unterminated string may
 * end further on: returns -1 then. */
#define MAX_PATCHES 64
static long scan_split(struct split *sp, size_t from, size_t to, struct piece **out)
{
    struct pieces ps = {0};
    struct patched pt = {rg_strndup(sp->sql + from, to - from), from};
    size_t seg = from, patches = 0;
    long ret = -1;

    while (seg < to) {
        struct pieces before = {0};
        size_t err = to, b;
        bool unterminated = false;

        if (scan_pieces(sp, &pt, seg, to, &ps, &err, &unterminated) == 0)
            break;
        if (unterminated && to < sp->len)
            goto out;
        /* The pieces before the one the error is in are done; that one starts again. */
        if (err > seg && scan_pieces(sp, &pt, seg, err, &before, &err, &unterminated) != 0) {
            free(before.p);
            goto out;
        }
        for (size_t i = 0; i + 1 < before.n; i++)
            push(&ps, before.p[i].from, before.p[i].stop);
        b = before.n > 0 ? before.p[before.n - 1].from : seg;
        free(before.p);
        patches = b > seg ? 1 : patches + 1;
        if (unterminated || err >= to || patches > MAX_PATCHES) {
            push(&ps, b, to);
            ps.tail_gap = true;
            break;
        }
        pt.buf[err - pt.off] = ' ';
        seg = b;
    }
    /* Cut by the window: the last piece may go on. What the scanner skipped at the end
     * (after an unbalanced ')' it skips everything) is kept up to its last ';'. */
    if (to < sp->len && ps.n > 0) {
        struct piece *last = &ps.p[ps.n - 1];
        size_t end = ps.tail_gap ? last_semicolon(sp, last->from, to) : 0;
        if (end > last->from)
            last->stop = end;
        else
            ps.n--;
    }
    *out = ps.p;
    ps.p = NULL;
    ret = (long)ps.n;
out:
    free(ps.p);
    free(pt.buf);
    return ret;
}

/* Pieces p[0, n) of SQL the parser could not read in one go, each given to the parser
 * again, joined with the next ones while the parser says the input ended inside a
 * statement (a BEGIN ATOMIC body the scanner cut at its ';'s), doubling how many are
 * joined so the work stays linear. A piece the parser still cannot read is taken as the
 * scanner cut it. Returns where the next window starts: after the last piece, or at a
 * piece that needs text beyond this window to be judged. */
static size_t pieces(struct split *sp, const struct piece *p, size_t n, bool window_ends_sql)
{
    size_t i = 0;

    while (i < n) {
        size_t j = i + 1, next, err;

        for (;;) {
            size_t stop = after(sp, &p[j - 1]);
            if (parse_split(sp, p[i].from, stop, true, &next, &err) >= 0) {
                i = j;
                break;
            }
            if (err >= stop && j < n) {
                j = j - i > n - j ? n : j + (j - i);
                continue;
            }
            if (err >= stop && !window_ends_sql)
                return p[i].from;
            /* The pieces before the one the parser stopped in may still read as a whole. */
            size_t k = j - 1;
            while (k > i && p[k].from > err)
                k--;
            if (k > i && parse_split(sp, p[i].from, after(sp, &p[k - 1]), true, &next, &err) >= 0) {
                i = k;
                break;
            }
            add(sp, p[i].from, p[i].stop, false);
            i++;
            break;
        }
    }
    return n > 0 ? after(sp, &p[n - 1]) : 0;
}

/* Splits sp->sql from from on, a window at a time. */
static void split_all(struct split *sp, size_t from)
{
    size_t pos = from, window = WINDOW;

    while (pos < sp->len) {
        size_t to = sp->len - pos > window ? pos + window : sp->len, next = pos, err;
        struct piece *p = NULL;
        long n;

        /* A cut after a line end is less likely to fall inside a string. */
        for (size_t nl = to; to < sp->len && nl > pos + window / 2; nl--) {
            if (sp->sql[nl - 1] == '\n') {
                to = nl;
                break;
            }
        }
        /* The usual case: the parser reads the window; the last statement may be cut by
         * it, so it is read again with the next window. A window of comments alone holds
         * none. */
        n = parse_split(sp, pos, to, to == sp->len, &next, &err);
        if (n >= 0 && (to == sp->len || n >= 2 || n == 0)) {
            pos = next;
            window = WINDOW;
            continue;
        }
        if (n < 0) {
            n = scan_split(sp, pos, to, &p);
            if (n > 0)
                next = pieces(sp, p, (size_t)n, to == sp->len);
            free(p);
            if (next == pos && to == sp->len) {
                /* Not even the scanner reads it (a string that never ends): one statement,
                 * for the server to judge. */
                add(sp, pos, sp->len, false);
                next = sp->len;
            }
            if (next > pos) {
                pos = next;
                window = WINDOW;
                continue;
            }
        }
        /* One statement longer than the window. */
        window *= 2;
    }
}

static void split(const char *sql, size_t len, struct split *sp)
{
    size_t from = 0;

    *sp = (struct split){.sql = sql, .len = strnlen(sql, len), .line = 1};
    /* psql skips a UTF-8 byte order mark at the start of a file; PostgreSQL's scanner would
     * take it for part of an identifier. */
    if (sp->len >= 3 && memcmp(sql, "\xEF\xBB\xBF", 3) == 0)
        from = 3;
    split_all(sp, from);
}

size_t rg_sql_statements(const char *sql, size_t len, struct rg_sql_stmt **out)
{
    struct split sp;
    struct rg_sql_stmt *list = NULL;

    split(sql, len, &sp);
    if (sp.n > 0) {
        list = rg_calloc(sp.n, sizeof(*list));
        for (size_t i = 0; i < sp.n; i++)
            list[i] = sp.items[i].pub;
    }
    free(sp.items);
    *out = list;
    return sp.n;
}

/* How a refused statement is named: by its first word where PostgreSQL has two. */
static const char *name_of(const struct stmt *st)
{
    switch (st->pub.kind) {
    case RG_SQL_BEGIN:
        return st->token == PG_QUERY__TOKEN__START ? "START TRANSACTION" : "BEGIN";
    case RG_SQL_COMMIT:
        return st->token == PG_QUERY__TOKEN__END_P ? "END" : "COMMIT";
    case RG_SQL_ROLLBACK:
        return st->token == PG_QUERY__TOKEN__ABORT_P ? "ABORT" : "ROLLBACK";
    case RG_SQL_PREPARE_TRANSACTION:
        return "PREPARE TRANSACTION";
    case RG_SQL_COMMIT_PREPARED:
        return "COMMIT PREPARED";
    case RG_SQL_ROLLBACK_PREPARED:
        return "ROLLBACK PREPARED";
    case RG_SQL_VACUUM:
        return "VACUUM";
    case RG_SQL_COPY_STDIN:
        return "COPY ... FROM STDIN";
    case RG_SQL_COPY_STDOUT:
        return "COPY ... TO STDOUT";
    default:
        return "statement";
    }
}

/* Whether a statement may not run inside rollgate's transaction. */
static bool controls_transaction(enum rg_sql_kind kind)
{
    return kind == RG_SQL_BEGIN || kind == RG_SQL_COMMIT || kind == RG_SQL_ROLLBACK ||
           kind == RG_SQL_PREPARE_TRANSACTION || kind == RG_SQL_COMMIT_PREPARED ||
           kind == RG_SQL_ROLLBACK_PREPARED;
}

static void blank(char *sql, const struct rg_sql_stmt *st)
{
    for (size_t i = st->start; i < st->end; i++)
        if (sql[i] != '\n')
            sql[i] = ' ';
}

/* The first statement that cannot run, or NULL. wrapped: the first and last statements
 * are a BEGIN/COMMIT wrapper. */
static const struct stmt *refused(const struct split *sp, bool in_transaction, bool wrapped)
{
    for (size_t i = 0; i < sp->n; i++) {
        enum rg_sql_kind kind = sp->items[i].pub.kind;
        bool wrapper = wrapped && (i == 0 || i == sp->n - 1);

        if (kind == RG_SQL_COPY_STDIN || kind == RG_SQL_COPY_STDOUT)
            return &sp->items[i];
        if (in_transaction && !wrapper && (controls_transaction(kind) || kind == RG_SQL_VACUUM))
            return &sp->items[i];
    }
    return NULL;
}

int rg_sql_unwrap(char *sql, size_t len, bool in_transaction, const char *path, struct rg_err *err)
{
    struct rg_sql_stmt *stmts = NULL;
    size_t n;
    char modes[RG_SQL_MODES_MAX];
    int rc = rg_sql_unwrap_split(sql, len, in_transaction, path, &stmts, &n, modes, err);

    free(stmts);
    return rc;
}

int rg_sql_unwrap_split(char *sql, size_t len, bool in_transaction, const char *path,
                        struct rg_sql_stmt **stmts, size_t *n, char *modes, struct rg_err *err)
{
    struct split sp;
    const struct stmt *bad;
    bool wrapped;
    int rc = -1;

    *stmts = NULL;
    *n = 0;
    modes[0] = '\0';

    split(sql, len, &sp);
    wrapped = in_transaction && sp.n >= 2 && sp.items[0].pub.kind == RG_SQL_BEGIN &&
              sp.items[sp.n - 1].pub.kind == RG_SQL_COMMIT;
    bad = refused(&sp, in_transaction, wrapped);
    if (wrapped && sp.items[0].isolation >= 0)
        snprintf(modes, RG_SQL_MODES_MAX, "%s", levels[sp.items[0].isolation][1]);
    if (sp.n == 0 || (wrapped && sp.n == 2)) {
        rg_err_set(err, RG_EFILES,
                   "%s: holds no SQL statement%s, only comments or white space: write the "
                   "migration, or delete the file",
                   path, sp.n ? " inside its BEGIN/COMMIT wrapper" : "");
    } else if (bad && bad->pub.kind == RG_SQL_VACUUM) {
        rg_err_set(err, RG_EFILES,
                   "%s:%zu: VACUUM cannot run inside a transaction, and rollgate runs this file "
                   "in one: put it in a file of its own marked -- rollgate:no-transaction",
                   path, bad->pub.line);
    } else if (bad && bad->pub.kind == RG_SQL_COPY_STDIN) {
        rg_err_set(err, RG_EFILES,
                   "%s:%zu: %s: rollgate sends no COPY data (psql's inline data and \\copy do "
                   "not work here): use INSERT, or COPY from a file on the database server",
                   path, bad->pub.line, name_of(bad));
    } else if (bad && bad->pub.kind == RG_SQL_COPY_STDOUT) {
        rg_err_set(err, RG_EFILES,
                   "%s:%zu: %s: rollgate reads no COPY output: a migration cannot return data",
                   path, bad->pub.line, name_of(bad));
    } else if (wrapped && sp.items[0].read_only) {
        rg_err_set(err, RG_EFILES,
                   "%s:%zu: BEGIN READ ONLY: the transaction that runs a migration also writes "
                   "its history row, so it cannot be read-only: drop READ ONLY from the "
                   "wrapper",
                   path, sp.items[0].pub.line);
    } else if (bad) {
        rg_err_set(err, RG_EFILES,
                   "%s:%zu: %s: rollgate runs each migration in a transaction of its own, so a "
                   "file may not control it (a whole-file BEGIN; ... COMMIT; wrapper is "
                   "accepted)",
                   path, bad->pub.line, name_of(bad));
    } else {
        size_t skip = wrapped ? 1 : 0;

        if (wrapped) {
            blank(sql, &sp.items[0].pub);
            blank(sql, &sp.items[sp.n - 1].pub);
        }
        *n = sp.n - 2 * skip;
        *stmts = rg_calloc(*n, sizeof(**stmts));
        for (size_t i = 0; i < *n; i++)
            (*stmts)[i] = sp.items[i + skip].pub;
        rc = 0;
    }
    free(sp.items);
    return rc;
}

bool rg_sql_index_build(const char *sql, size_t len, struct rg_sql_index *ix)
{
    char *text = rg_strndup(sql, strnlen(sql, len));
    PgQueryProtobufParseResult res = pg_query_parse_protobuf(text);
    PgQuery__ParseResult *tree = NULL;
    const PgQuery__Node *node;
    const PgQuery__IndexStmt *is;
    bool found = false;

    memset(ix, 0, sizeof(*ix));
    if (res.error)
        goto out;
    tree = unpacked(pg_query__parse_result__unpack(NULL, res.parse_tree.len,
                                                   (const uint8_t *)res.parse_tree.data));
    node = tree->n_stmts == 1 ? tree->stmts[0]->stmt : NULL;
    if (!node || node->node_case != PG_QUERY__NODE__NODE_INDEX_STMT)
        goto out;
    is = node->index_stmt;
    if (!is->concurrent || !is->idxname || !*is->idxname || !is->relation)
        goto out;
    ix->name = rg_strdup(is->idxname);
    if (is->relation->schemaname && *is->relation->schemaname)
        ix->schema = rg_strdup(is->relation->schemaname);
    ix->if_not_exists = is->if_not_exists;
    found = true;
out:
    if (tree)
        pg_query__parse_result__free_unpacked(tree, NULL);
    pg_query_free_protobuf_parse_result(res);
    free(text);
    return found;
}

void rg_sql_index_free(struct rg_sql_index *ix)
{
    if (!ix)
        return;
    free(ix->schema);
    free(ix->name);
    memset(ix, 0, sizeof(*ix));
}

/* The tokens of one statement that are not comments, unpacked; NULL where the scanner
 * stops at an error. */
static PgQuery__ScanResult *scan_statement(const struct split *sp, const struct rg_sql_stmt *st)
{
    struct range r = range_of(sp, st->start, st->end);
    PgQueryScanResult res = pg_query_scan(r.text);
    PgQuery__ScanResult *u = NULL;

    if (!res.error)
        u = unpacked(
            pg_query__scan_result__unpack(NULL, res.pbuf.len, (const uint8_t *)res.pbuf.data));
    pg_query_free_scan_result(res);
    free(r.text);
    return u;
}

/* The index of the next token at or after i that is not a comment (end: none). */
static size_t next_token(const PgQuery__ScanResult *u, size_t i, size_t end)
{
    while (i < end && is_comment((int)u->tokens[i]->token))
        i++;
    return i;
}

/* Where a statement's tokens end, its closing ';' and comments after it left out: a last
 * statement ends with or without one. */
static size_t tokens_end(const PgQuery__ScanResult *u)
{
    size_t end = u->n_tokens;

    while (end > 0 && is_comment((int)u->tokens[end - 1]->token))
        end--;
    if (end > 0 && u->tokens[end - 1]->token == PG_QUERY__TOKEN__ASCII_59)
        end--;
    return end;
}

/* Statement by statement (the split is the parser's, bounded per window), so no more is
 * held at once than running the files takes. */
static bool same_statement(const struct split *a, const struct rg_sql_stmt *sa,
                           const struct split *b, const struct rg_sql_stmt *sb)
{
    PgQuery__ScanResult *ua = scan_statement(a, sa), *ub = ua ? scan_statement(b, sb) : NULL;
    bool same = ua && ub;
    size_t i = 0, j = 0, ea = same ? tokens_end(ua) : 0, eb = same ? tokens_end(ub) : 0;

    while (same) {
        i = next_token(ua, i, ea);
        j = next_token(ub, j, eb);
        if (i == ea || j == eb) {
            same = i == ea && j == eb;
            break;
        }
        const PgQuery__ScanToken *ta = ua->tokens[i], *tb = ub->tokens[j];
        size_t la = (size_t)(ta->end - ta->start), lb = (size_t)(tb->end - tb->start);
        same = ta->token == tb->token && la == lb &&
               memcmp(a->sql + sa->start + ta->start, b->sql + sb->start + tb->start, la) == 0;
        i++, j++;
    }
    if (ua)
        pg_query__scan_result__free_unpacked(ua, NULL);
    if (ub)
        pg_query__scan_result__free_unpacked(ub, NULL);
    return same;
}

bool rg_sql_same_tokens(const char *a, size_t alen, const char *b, size_t blen)
{
    struct split sa, sb;
    bool same;

    split(a, alen, &sa);
    split(b, blen, &sb);
    same = sa.n == sb.n;
    for (size_t i = 0; same && i < sa.n; i++)
        same = same_statement(&sa, &sa.items[i].pub, &sb, &sb.items[i].pub);
    free(sa.items);
    free(sb.items);
    return same;
}

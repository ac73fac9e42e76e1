/* The first change between two texts as a unified diff hunk, for a drift message: the lines
 * both share at the start and at the end are set aside, and the first WINDOW lines left on
 * each side are matched by a longest common subsequence (so a changed line reads as one
 * '-' and one '+', not as everything after it), which bounds the time and memory however
 * large the files; what is shown is bounded in lines and in bytes per line. */
#include "engine/diff.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem/mem.h"

#define WINDOW 200   /* lines of each side matched after the common start */
#define CONTEXT 3    /* unchanged lines shown around a change */
#define MAX_SHOWN 40 /* lines of the hunk shown */
#define MAX_LINE 160 /* bytes of a line shown */

struct line {
    const char *p;
    size_t len; /* with its '\n', if it has one: a changed last line end is a change */
};

struct lines {
    struct line *l;
    size_t n;
};

static struct lines split_lines(const char *s)
{
    struct lines ls = {0};
    size_t cap = 0;

    while (*s) {
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) + 1 : strlen(s);
        if (ls.n == cap) {
            cap = cap ? cap * 2 : 64;
            ls.l = rg_realloc(ls.l, cap * sizeof(*ls.l));
        }
        ls.l[ls.n++] = (struct line){s, len};
        s += len;
    }
    return ls;
}

static bool same(const struct line *a, const struct line *b)
{
    return a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

/* A growing text: the diff. */
struct out {
    char *p;
    size_t len, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        o->cap = (o->len + n + 1) * 2;
        o->p = rg_realloc(o->p, o->cap);
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void put_line(struct out *o, char mark, const struct line *l)
{
    size_t n = l->len && l->p[l->len - 1] == '\n' ? l->len - 1 : l->len;

    put(o, &mark, 1);
    put(o, l->p, n > MAX_LINE ? MAX_LINE : n);
    if (n > MAX_LINE)
        put(o, "...", 3);
    put(o, "\n", 1);
}

/* One line of the hunk: ' ', '-' or '+', and the line. */
struct op {
    char mark;
    const struct line *l;
};

char *rg_engine_diff(const char *a, const char *b, const char *a_label, const char *b_label)
{
    struct lines la = split_lines(a), lb = split_lines(b);
    size_t pre = 0, suf = 0, na, nb, nops = 0, first, last, shown;
    bool whole;
    uint16_t *lcs = NULL;
    struct op *ops = NULL;
    struct out o = {0};
    char head[128];
    size_t a_start, b_start, a_count = 0, b_count = 0;

    while (pre < la.n && pre < lb.n && same(&la.l[pre], &lb.l[pre]))
        pre++;
    if (pre == la.n && pre == lb.n)
        goto out;
    while (suf < la.n - pre && suf < lb.n - pre &&
           same(&la.l[la.n - 1 - suf], &lb.l[lb.n - 1 - suf]))
        suf++;
    na = la.n - pre - suf;
    nb = lb.n - pre - suf;
    whole = na <= WINDOW && nb <= WINDOW;
    na = na > WINDOW ? WINDOW : na;
    nb = nb > WINDOW ? WINDOW : nb;

    /* lcs[i][j]: the longest common subsequence of a's window from i and b's from j. */
    lcs = rg_calloc((na + 1) * (nb + 1), sizeof(*lcs));
#define LCS(i, j) lcs[(i) * (nb + 1) + (j)]
    for (size_t i = na; i-- > 0;)
        for (size_t j = nb; j-- > 0;)
            LCS(i, j) = same(&la.l[pre + i], &lb.l[pre + j])
                            ? (uint16_t)(LCS(i + 1, j + 1) + 1)
                            : (LCS(i + 1, j) >= LCS(i, j + 1) ? LCS(i + 1, j) : LCS(i, j + 1));

    /* The hunk: context before, the window's edit script, context after. */
    ops = rg_calloc(CONTEXT + na + nb + CONTEXT, sizeof(*ops));
    for (size_t k = pre > CONTEXT ? pre - CONTEXT : 0; k < pre; k++)
        ops[nops++] = (struct op){' ', &la.l[k]};
    first = nops;
    for (size_t i = 0, j = 0; i < na || j < nb;) {
        if (i < na && j < nb && same(&la.l[pre + i], &lb.l[pre + j]))
            ops[nops++] = (struct op){' ', &la.l[pre + i++]}, j++;
        else if (j == nb || (i < na && LCS(i + 1, j) >= LCS(i, j + 1)))
            ops[nops++] = (struct op){'-', &la.l[pre + i++]};
        else
            ops[nops++] = (struct op){'+', &lb.l[pre + j++]};
    }
#undef LCS
    /* The first hunk ends where 2 * CONTEXT unchanged lines follow a change. */
    last = first;
    for (size_t k = first, run = 0; k < nops && run <= 2 * CONTEXT; k++) {
        run = ops[k].mark == ' ' ? run + 1 : 0;
        if (ops[k].mark != ' ')
            last = k;
    }
    for (size_t k = 0, after = last + 1; k < CONTEXT && after < nops && ops[after].mark == ' '; k++)
        last = after++;
    /* Context after the change, from the common end. */
    for (size_t k = 0; k < CONTEXT && whole && last + 1 == nops && la.n - suf + k < la.n; k++)
        ops[nops++] = (struct op){' ', &la.l[la.n - suf + k]}, last++;
    shown = last + 1 > MAX_SHOWN ? MAX_SHOWN : last + 1;
    for (size_t k = 0; k < shown; k++) {
        a_count += ops[k].mark != '+';
        b_count += ops[k].mark != '-';
    }
    a_start = (pre > CONTEXT ? pre - CONTEXT : 0) + 1;
    b_start = a_start;
    snprintf(head, sizeof(head), "@@ -%zu,%zu +%zu,%zu @@\n", a_start, a_count, b_start, b_count);
    put(&o, "--- ", 4);
    put(&o, a_label, strlen(a_label));
    put(&o, "\n+++ ", 5);
    put(&o, b_label, strlen(b_label));
    put(&o, "\n", 1);
    put(&o, head, strlen(head));
    for (size_t k = 0; k < shown; k++)
        put_line(&o, ops[k].mark, ops[k].l);
    if (shown <= last)
        put(&o, "...\n", 4);
out:
    free(ops);
    free(lcs);
    free(la.l);
    free(lb.l);
    return o.p;
}

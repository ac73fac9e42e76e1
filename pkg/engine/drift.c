/* Checksum drift explained: an applied migration whose file changed is compared with the up
 * SQL stored at apply time, token by token (a change of comments or white space only is
 * harmless) and line by line (a diff for the operator). Only migrations whose checksum
 * differs are looked at, so the start of a run with nothing changed pays nothing here. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/diff.h"
#include "engine/engine.h"
#include "log/log.h"
#include "mem/mem.h"
#include "source/sql.h"

enum verdict {
    COSMETIC,  /* same tokens: only comments or white space changed */
    CHANGED,   /* the SQL changed; diff says how */
    NO_STORED, /* the row keeps no up SQL to compare with */
};

struct look {
    enum verdict verdict;
    char *diff;      /* CHANGED: the first hunk */
    size_t line;     /* CHANGED: the first line that differs, for the one-line error */
    const char *sql; /* the file's SQL now (src owns it) */
};

/* The 1-based line of the first byte where a and b differ. */
static size_t first_changed_line(const char *a, const char *b)
{
    size_t line = 1;

    for (; *a && *a == *b; a++, b++)
        line += *a == '\n';
    return line;
}

/* Compares an applied migration's file with the SQL its row stores. */
static int look_at(const struct rg_store *store, struct rg_source *src,
                   const struct rg_plan_item *it, struct look *l, struct rg_err *err)
{
    const struct rg_migration *m = it->file;
    char *stored = NULL, *label = NULL;

    memset(l, 0, sizeof(*l));
    if (rg_source_prepare(src, it->version, RG_SOURCE_UP, err) < 0 ||
        store->read_up(store->ctx, it->version, &stored, err) < 0)
        return -1;
    l->sql = m->up_sql;
    if (!stored) {
        l->verdict = NO_STORED;
        return 0;
    }
    if (rg_sql_same_tokens(stored, strlen(stored), m->up_sql, m->up_len)) {
        l->verdict = COSMETIC;
    } else {
        label = rg_asprintf("version %" PRId64 " as applied (checksum %.12s...)", it->version,
                            it->row->checksum);
        l->verdict = CHANGED;
        l->line = first_changed_line(stored, m->up_sql);
        l->diff = rg_engine_diff(stored, m->up_sql, label, m->up_name);
    }
    free(label);
    free(stored);
    return 0;
}

/* The diff of a changed file, one event (the lines escaped in it); or that none can be
 * shown. */
static void log_change(enum rg_log_level level, const struct rg_plan_item *it, const struct look *l,
                       const char *what)
{
    if (l->verdict == CHANGED)
        RG_LOG(level, "%s" RG_F "file=%s" RG_F "version=%" PRId64 RG_F "diff=%s", what,
               it->file->up_path, it->version, l->diff ? l->diff : "");
    else
        RG_LOG(level,
               "%s; its history row keeps no up SQL (written before rollgate stored it, or by "
               "baseline), so no diff can be shown" RG_F "file=%s" RG_F "version=%" PRId64,
               what, it->file->up_path, it->version);
}

static void refuse(const struct rg_plan_item *it, const struct look *l, const char *instead,
                   struct rg_err *err)
{
    if (l->verdict == CHANGED)
        rg_err_set(err, RG_ECONFLICT,
                   "%s: checksum drift: version %" PRId64
                   " was applied with checksum %s, the file now has %s, and its SQL changed from "
                   "line %zu (the diff against the up SQL stored at apply time is logged "
                   "above); %s",
                   it->file->up_path, it->version, it->row->checksum, it->file->checksum, l->line,
                   instead);
    else
        rg_err_set(err, RG_ECONFLICT,
                   "%s: checksum drift: version %" PRId64
                   " was applied with checksum %s, the file now has %s; its history row was "
                   "written without the up SQL (before rollgate stored it, or by baseline), so "
                   "there is no diff to show and no telling whether only comments or white "
                   "space changed; %s",
                   it->file->up_path, it->version, it->row->checksum, it->file->checksum, instead);
}

int rg_engine_drift(const struct rg_store *store, struct rg_source *src, struct rg_plan *plan,
                    struct rg_err *err)
{
    for (size_t k = 0; k < plan->n; k++) {
        struct rg_plan_item *it = &plan->items[k];
        struct look l;

        if (it->state != RG_ITEM_CHANGED)
            continue;
        if (look_at(store, src, it, &l, err) < 0)
            return -1;
        if (l.verdict != COSMETIC) {
            log_change(RG_LOG_ERROR, it, &l, "checksum drift");
            refuse(it, &l,
                   "restore the file as applied and put the change in a new migration, or, if "
                   "the change is meant, record it with `rollgate repair --checksums --force`",
                   err);
            free(l.diff);
            return -1;
        }
        RG_WARN("an applied migration's file changed only in comments or white space; carrying "
                "on (`rollgate repair --checksums` records its new checksum)" RG_F "file=%s" RG_F
                "version=%" PRId64 RG_F "applied_checksum=%s" RG_F "file_checksum=%s",
                it->file->up_path, it->version, it->row->checksum, it->file->checksum);
        it->state = RG_ITEM_APPLIED;
        it->cosmetic = true;
        plan->changed--;
    }
    return 0;
}

int rg_engine_repair_checksums(const struct rg_store *store, struct rg_source *src, bool force,
                               size_t *recorded, struct rg_err *err)
{
    struct rg_history h = {0};
    struct rg_plan plan = {0};
    struct look *looks = NULL;
    int ret = -1;

    *recorded = 0;
    if (store->read_history(store->ctx, &h, err) < 0)
        goto out;
    rg_plan_build(&plan, src, &h);
    looks = rg_calloc(plan.n ? plan.n : 1, sizeof(*looks));
    /* Every one judged before any row changes: a refusal leaves the history as it was. */
    for (size_t k = 0; k < plan.n; k++) {
        const struct rg_plan_item *it = &plan.items[k];
        if (it->state != RG_ITEM_CHANGED)
            continue;
        if (look_at(store, src, it, &looks[k], err) < 0)
            goto out;
        if (looks[k].verdict != COSMETIC && !force) {
            log_change(RG_LOG_ERROR, it, &looks[k], "not only comments or white space changed");
            refuse(it, &looks[k],
                   "repair --checksums records only changes of comments or white space: "
                   "restore the file, or, after review, record it with `rollgate repair "
                   "--checksums --force`",
                   err);
            goto out;
        }
    }
    for (size_t k = 0; k < plan.n; k++) {
        const struct rg_plan_item *it = &plan.items[k];
        bool updated = false;

        if (it->state != RG_ITEM_CHANGED)
            continue;
        if (looks[k].verdict != COSMETIC)
            log_change(RG_LOG_WARN, it, &looks[k], "recording a changed file's checksum (--force)");
        if (store->record_checksum(store->ctx, it->version, it->row->checksum, it->file->checksum,
                                   looks[k].sql, &updated, err) < 0)
            goto out;
        if (!updated) {
            RG_WARN("the history row changed meanwhile; left as it is" RG_F "version=%" PRId64,
                    it->version);
            continue;
        }
        (*recorded)++;
        RG_INFO("recorded the file's checksum" RG_F "file=%s" RG_F "version=%" PRId64 RG_F
                "from=%s" RG_F "to=%s",
                it->file->up_path, it->version, it->row->checksum, it->file->checksum);
    }
    ret = 0;
out:
    for (size_t k = 0; looks && k < plan.n; k++)
        free(looks[k].diff);
    free(looks);
    rg_plan_free(&plan);
    rg_history_free(&h);
    return ret;
}

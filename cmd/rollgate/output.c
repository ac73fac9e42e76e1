#include "output.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "log/log.h"

/* NULL for a version only the history knows: the phase is in the file's header. */
static const char *phase_name(const struct rg_plan_item *it)
{
    return !it->file ? NULL : it->post ? "post" : "pre";
}

void rg_output_status(FILE *out, const struct rg_plan *plan, enum rg_output format)
{
    if (format == RG_OUTPUT_JSON) {
        struct rg_json j;
        rg_json_to_file(&j, out);
        rg_json_open(&j, '{');
        rg_json_key(&j, "current");
        rg_json_int(&j, plan->current);
        rg_json_key(&j, "latest");
        rg_json_int(&j, plan->latest);
        rg_json_key(&j, "pending");
        rg_json_int(&j, (int64_t)plan->pending);
        rg_json_key(&j, "pending_post");
        rg_json_int(&j, (int64_t)plan->pending_post);
        rg_json_key(&j, "changed");
        rg_json_int(&j, (int64_t)plan->changed);
        rg_json_key(&j, "missing");
        rg_json_int(&j, (int64_t)plan->missing);
        rg_json_key(&j, "unknown");
        rg_json_int(&j, (int64_t)plan->unknown);
        rg_json_key(&j, "failed");
        rg_json_int(&j, (int64_t)plan->failed);
        rg_json_key(&j, "migrations");
        rg_json_open(&j, '[');
        for (size_t i = 0; i < plan->n; i++) {
            const struct rg_plan_item *it = &plan->items[i];
            rg_json_open(&j, '{');
            rg_json_key(&j, "version");
            rg_json_int(&j, it->version);
            rg_json_key(&j, "title");
            rg_json_str(&j, it->title);
            rg_json_key(&j, "state");
            rg_json_str(&j, rg_item_state_name(it->state));
            rg_json_key(&j, "phase");
            rg_json_str(&j, phase_name(it));
            rg_json_key(&j, "checksum");
            rg_json_str(&j, it->file ? it->file->checksum : it->row->checksum);
            rg_json_key(&j, "applied_at");
            rg_json_str(&j, it->row ? it->row->applied_at : NULL);
            rg_json_key(&j, "applied_by");
            rg_json_str(&j, it->row ? it->row->applied_by : NULL);
            rg_json_close(&j, '}');
        }
        rg_json_close(&j, ']');
        rg_json_close(&j, '}');
        fputc('\n', out);
        return;
    }
    fprintf(out, "%-16s %-8s %-5s %-32s %s\n", "VERSION", "STATE", "PHASE", "TITLE", "APPLIED AT");
    for (size_t i = 0; i < plan->n; i++) {
        const struct rg_plan_item *it = &plan->items[i];
        const char *phase = phase_name(it);

        fprintf(out, "%-16" PRId64 " %-8s %-5s %-32s %s%s\n", it->version,
                rg_item_state_name(it->state), phase ? phase : "-", it->title,
                it->row ? it->row->applied_at : "-", it->out_of_order ? "  (out of order)" : "");
    }
    fprintf(out,
            "\nschema version %" PRId64 ", image latest %" PRId64
            ": %zu pending (%zu post-deploy), %zu changed, %zu missing, %zu unknown, %zu "
            "failed\n",
            plan->current, plan->latest, plan->pending, plan->pending_post, plan->changed,
            plan->missing, plan->unknown, plan->failed);
}

void rg_output_version(FILE *out, int64_t version, enum rg_output format)
{
    if (format == RG_OUTPUT_JSON) {
        struct rg_json j;
        rg_json_to_file(&j, out);
        rg_json_open(&j, '{');
        rg_json_key(&j, "version");
        rg_json_int(&j, version);
        rg_json_close(&j, '}');
        fputc('\n', out);
        return;
    }
    fprintf(out, "%" PRId64 "\n", version);
}

/* One lint finding as a JSON object; the file is named when path is not NULL. */
static void json_finding(struct rg_json *j, const char *path, const struct rg_lint_finding *f)
{
    const struct rg_lint_rule_info *info = rg_lint_rule_info(f->rule);

    rg_json_open(j, '{');
    if (path) {
        rg_json_key(j, "file");
        rg_json_str(j, path);
    }
    rg_json_key(j, "line");
    rg_json_int(j, (int64_t)f->line);
    rg_json_key(j, "column");
    rg_json_int(j, (int64_t)f->column);
    rg_json_key(j, "rule");
    rg_json_str(j, info->name);
    rg_json_key(j, "severity");
    rg_json_str(j, rg_lint_severity_name(info->severity));
    rg_json_key(j, "allowed");
    rg_json_bool(j, f->allowed);
    rg_json_key(j, "hazard");
    rg_json_str(j, info->hazard);
    rg_json_key(j, "safe");
    rg_json_str(j, info->safe);
    rg_json_close(j, '}');
}

/* "findings": l's findings about statement stmt (SIZE_MAX: the file's own); left out when
 * there is none, so a clean plan reads as before. */
static void json_findings(struct rg_json *j, const struct rg_lint *l, size_t stmt)
{
    bool any = false;

    for (size_t k = 0; k < l->n; k++) {
        if (l->items[k].stmt != stmt)
            continue;
        if (!any) {
            rg_json_key(j, "findings");
            rg_json_open(j, '[');
            any = true;
        }
        json_finding(j, NULL, &l->items[k]);
    }
    if (any)
        rg_json_close(j, ']');
}

/* "file:line:column: severity rule: hazard" and its "safe:" line, each after indent. */
static void text_finding(FILE *out, const char *indent, const char *path,
                         const struct rg_lint_finding *f)
{
    const struct rg_lint_rule_info *info = rg_lint_rule_info(f->rule);

    fprintf(out, "%s%s:%zu:%zu: %s %s%s: %s\n%s  safe: %s\n", indent, path, f->line, f->column,
            rg_lint_severity_name(info->severity), info->name, f->allowed ? " (allowed)" : "",
            info->hazard, indent, info->safe);
}

static void text_findings(FILE *out, const struct rg_dry_migration *m, size_t stmt)
{
    for (size_t k = 0; k < m->lint.n; k++)
        if (m->lint.items[k].stmt == stmt)
            text_finding(out, "    ", m->path, &m->lint.items[k]);
}

/* A statement's text as the file has it, up to its ';'. */
static void statement_text(const struct rg_dry_migration *m, const struct rg_trial_stmt *st,
                           const char **text, size_t *len)
{
    *text = m->sql + st->start;
    *len = st->end - st->start;
}

static void json_locks(struct rg_json *j, const char *key, const struct rg_trial_lock *locks,
                       size_t n)
{
    rg_json_key(j, key);
    rg_json_open(j, '[');
    for (size_t k = 0; k < n; k++) {
        rg_json_open(j, '{');
        rg_json_key(j, "relation");
        rg_json_str(j, locks[k].relation);
        rg_json_key(j, "mode");
        rg_json_str(j, locks[k].mode);
        rg_json_close(j, '}');
    }
    rg_json_close(j, ']');
}

static void json_measures(struct rg_json *j, const struct rg_trial_stmt *st)
{
    rg_json_key(j, "duration_us");
    rg_json_int(j, st->duration_us);
    rg_json_key(j, "rows");
    if (st->rows < 0)
        rg_json_str(j, NULL);
    else
        rg_json_int(j, st->rows);
    json_locks(j, "locks", st->locks, st->nlocks);
    rg_json_key(j, "rewrites");
    rg_json_open(j, '[');
    for (size_t k = 0; k < st->nrewritten; k++)
        rg_json_str(j, st->rewritten[k]);
    rg_json_close(j, ']');
    if (st->sqlstate[0]) {
        rg_json_key(j, "sqlstate");
        rg_json_str(j, st->sqlstate);
    }
}

static void json_plan(FILE *out, const struct rg_dry_run *d, const char *error)
{
    char clean[sizeof(((struct rg_err *)0)->msg)];
    struct rg_json j;

    rg_json_to_file(&j, out);
    rg_json_open(&j, '{');
    rg_json_key(&j, "schema_version");
    rg_json_int(&j, d->current);
    rg_json_key(&j, "history_table");
    rg_json_bool(&j, d->history_exists);
    rg_json_key(&j, "rolled_back");
    rg_json_bool(&j, true);
    rg_json_key(&j, "error");
    rg_json_str(&j, error ? rg_log_scrub(clean, sizeof(clean), error) : NULL);
    rg_json_key(&j, "migrations");
    rg_json_open(&j, '[');
    for (size_t i = 0; i < d->n; i++) {
        const struct rg_dry_migration *m = &d->ms[i];
        rg_json_open(&j, '{');
        rg_json_key(&j, "version");
        rg_json_int(&j, m->version);
        rg_json_key(&j, "title");
        rg_json_str(&j, m->title);
        rg_json_key(&j, "file");
        rg_json_str(&j, m->path);
        rg_json_key(&j, "no_transaction");
        rg_json_bool(&j, m->no_transaction);
        rg_json_key(&j, "lock_timeout_ms");
        rg_json_int(&j, m->lock_timeout_ms);
        rg_json_key(&j, "statement_timeout_ms");
        rg_json_int(&j, m->statement_timeout_ms);
        if (!m->no_transaction)
            json_locks(&j, "locks_held_before", m->trial.held, m->trial.nheld);
        rg_json_key(&j, "statements");
        rg_json_open(&j, '[');
        for (size_t k = 0; k < m->trial.n; k++) {
            const struct rg_trial_stmt *st = &m->trial.stmts[k];
            const char *text;
            size_t len;

            statement_text(m, st, &text, &len);
            rg_json_open(&j, '{');
            rg_json_key(&j, "line");
            rg_json_int(&j, (int64_t)st->line);
            rg_json_key(&j, "sql");
            rg_json_strn(&j, text, len);
            rg_json_key(&j, "executed");
            rg_json_bool(&j, st->ran);
            if (st->ran)
                json_measures(&j, st);
            json_findings(&j, &m->lint, k);
            rg_json_close(&j, '}');
        }
        rg_json_close(&j, ']');
        json_findings(&j, &m->lint, SIZE_MAX);
        rg_json_close(&j, '}');
    }
    rg_json_close(&j, ']');
    rg_json_close(&j, '}');
    fputc('\n', out);
}

/* The statement's first line, cut to a width a terminal shows. */
static void text_statement(FILE *out, const struct rg_dry_migration *m,
                           const struct rg_trial_stmt *st)
{
    const char *text, *nl;
    size_t len;

    statement_text(m, st, &text, &len);
    nl = memchr(text, '\n', len);
    if (nl)
        len = (size_t)(nl - text);
    fprintf(out, "  line %zu: %.*s%s\n", st->line, (int)(len > 100 ? 100 : len), text,
            nl || len > 100 ? " ..." : "");
}

static void text_locks(FILE *out, const char *head, const struct rg_trial_lock *locks, size_t n)
{
    for (size_t k = 0; k < n; k++)
        fprintf(out, "%s%s on %s", k ? ", " : head, locks[k].mode, locks[k].relation);
}

static void text_measures(FILE *out, const struct rg_trial_stmt *st, const char *error)
{
    fprintf(out, "    %" PRId64 ".%03" PRId64 " ms", st->duration_us / 1000,
            st->duration_us % 1000);
    if (st->rows >= 0)
        fprintf(out, "; %" PRId64 " row%s", st->rows, st->rows == 1 ? "" : "s");
    for (size_t k = 0; k < st->nrewritten; k++)
        fprintf(out, "%s%s", k ? ", " : "; REWRITES ", st->rewritten[k]);
    if (st->nlocks)
        text_locks(out, "; locks ", st->locks, st->nlocks);
    else
        fputs("; no new lock", out);
    fputc('\n', out);
    if (error) {
        char clean[sizeof(((struct rg_err *)0)->msg)];
        fprintf(out, "    FAILED: %s\n", rg_log_scrub(clean, sizeof(clean), error));
    }
}

static void text_plan(FILE *out, const struct rg_dry_run *d, const char *error)
{
    size_t listed = 0;

    if (!d->n) {
        fprintf(out, "plan: schema at version %" PRId64 ", nothing pending\n", d->current);
        return;
    }
    for (size_t i = 0; i < d->n; i++)
        listed += d->ms[i].no_transaction;
    fprintf(out,
            "plan: schema at version %" PRId64 ", %zu pending: %zu tried in one transaction, "
            "rolled back; %zu no-transaction, listed%s\n",
            d->current, d->n, d->n - listed, listed,
            d->history_exists ? "" : " (no history table: none was created)");
    for (size_t i = 0; i < d->n; i++) {
        const struct rg_dry_migration *m = &d->ms[i];
        fprintf(out, "\nversion %" PRId64 " %s (%s)%s\n", m->version, m->title, m->path,
                m->no_transaction ? ": no-transaction, listed, not run" : "");
        if (m->trial.nheld) {
            text_locks(out,
                       "  held since an earlier migration of this plan (taken again, shows as no "
                       "new lock): ",
                       m->trial.held, m->trial.nheld);
            fputc('\n', out);
        }
        for (size_t k = 0; k < m->trial.n; k++) {
            const struct rg_trial_stmt *st = &m->trial.stmts[k];
            bool last = i + 1 == d->n && k + 1 == m->trial.n;
            text_statement(out, m, st);
            if (st->ran)
                text_measures(out, st, last ? error : NULL);
            text_findings(out, m, k);
        }
        text_findings(out, m, SIZE_MAX);
    }
}

void rg_output_plan(FILE *out, const struct rg_dry_run *d, const char *error, enum rg_output format)
{
    if (format == RG_OUTPUT_JSON)
        json_plan(out, d, error);
    else
        text_plan(out, d, error);
}

static void lint_json(FILE *out, const struct rg_output_lint *o)
{
    struct rg_json j;

    rg_json_to_file(&j, out);
    rg_json_open(&j, '{');
    rg_json_key(&j, "files");
    rg_json_int(&j, (int64_t)o->n);
    rg_json_key(&j, "findings");
    rg_json_open(&j, '[');
    for (size_t i = 0; i < o->n; i++)
        for (size_t k = 0; k < o->files[i].lint.n; k++)
            json_finding(&j, o->files[i].path, &o->files[i].lint.items[k]);
    rg_json_close(&j, ']');
    rg_json_close(&j, '}');
    fputc('\n', out);
}

void rg_output_lint(FILE *out, const struct rg_output_lint *o, enum rg_output format)
{
    if (format == RG_OUTPUT_JSON) {
        lint_json(out, o);
        return;
    }
    for (size_t i = 0; i < o->n; i++)
        for (size_t k = 0; k < o->files[i].lint.n; k++)
            text_finding(out, "", o->files[i].path, &o->files[i].lint.items[k]);
}

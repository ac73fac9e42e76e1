#include "output.h"

#include <inttypes.h>
#include <stdlib.h>

#include "json/json.h"

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
    fprintf(out, "%-16s %-8s %-32s %s\n", "VERSION", "STATE", "TITLE", "APPLIED AT");
    for (size_t i = 0; i < plan->n; i++) {
        const struct rg_plan_item *it = &plan->items[i];
        fprintf(out, "%-16" PRId64 " %-8s %-32s %s%s\n", it->version, rg_item_state_name(it->state),
                it->title, it->row ? it->row->applied_at : "-",
                it->out_of_order ? "  (out of order)" : "");
    }
    fprintf(out,
            "\nschema version %" PRId64 ", image latest %" PRId64
            ": %zu pending, %zu changed, %zu missing, %zu unknown, %zu failed\n",
            plan->current, plan->latest, plan->pending, plan->changed, plan->missing, plan->unknown,
            plan->failed);
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

static void lint_json(FILE *out, const struct rg_output_lint *o)
{
    struct rg_json j;

    rg_json_to_file(&j, out);
    rg_json_open(&j, '{');
    rg_json_key(&j, "files");
    rg_json_int(&j, (int64_t)o->n);
    rg_json_key(&j, "findings");
    rg_json_open(&j, '[');
    for (size_t i = 0; i < o->n; i++) {
        for (size_t k = 0; k < o->files[i].lint.n; k++) {
            const struct rg_lint_finding *f = &o->files[i].lint.items[k];
            const struct rg_lint_rule_info *info = rg_lint_rule_info(f->rule);
            rg_json_open(&j, '{');
            rg_json_key(&j, "file");
            rg_json_str(&j, o->files[i].path);
            rg_json_key(&j, "line");
            rg_json_int(&j, (int64_t)f->line);
            rg_json_key(&j, "column");
            rg_json_int(&j, (int64_t)f->column);
            rg_json_key(&j, "rule");
            rg_json_str(&j, info->name);
            rg_json_key(&j, "severity");
            rg_json_str(&j, rg_lint_severity_name(info->severity));
            rg_json_key(&j, "allowed");
            rg_json_bool(&j, f->allowed);
            rg_json_key(&j, "hazard");
            rg_json_str(&j, info->hazard);
            rg_json_key(&j, "safe");
            rg_json_str(&j, info->safe);
            rg_json_close(&j, '}');
        }
    }
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
    for (size_t i = 0; i < o->n; i++) {
        for (size_t k = 0; k < o->files[i].lint.n; k++) {
            const struct rg_lint_finding *f = &o->files[i].lint.items[k];
            const struct rg_lint_rule_info *info = rg_lint_rule_info(f->rule);
            fprintf(out, "%s:%zu:%zu: %s %s%s: %s\n  safe: %s\n", o->files[i].path, f->line,
                    f->column, rg_lint_severity_name(info->severity), info->name,
                    f->allowed ? " (allowed)" : "", info->hazard, info->safe);
        }
    }
}

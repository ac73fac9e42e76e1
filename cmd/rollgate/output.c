#include "output.h"

#include <inttypes.h>
#include <stdlib.h>

#include "json/json.h"

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

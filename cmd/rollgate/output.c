#include "output.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdlib.h>

static void print_json(FILE *out, cJSON *obj)
{
    char *s = cJSON_PrintUnformatted(obj);
    if (!s) {
        fputs("rollgate: out of memory\n", stderr);
        abort();
    }
    fprintf(out, "%s\n", s);
    cJSON_free(s);
    cJSON_Delete(obj);
}

/* Written as raw text: cJSON numbers are doubles, which would round a 64-bit version. */
static void add_int(cJSON *obj, const char *key, int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    cJSON_AddRawToObject(obj, key, buf);
}

void rg_output_status(FILE *out, const struct rg_plan *plan, enum rg_output format)
{
    if (format == RG_OUTPUT_JSON) {
        cJSON *obj = cJSON_CreateObject();
        cJSON *list = cJSON_CreateArray();
        add_int(obj, "current", (int64_t)plan->current);
        add_int(obj, "latest", (int64_t)plan->latest);
        add_int(obj, "pending", (int64_t)plan->pending);
        add_int(obj, "changed", (int64_t)plan->changed);
        add_int(obj, "missing", (int64_t)plan->missing);
        add_int(obj, "unknown", (int64_t)plan->unknown);
        add_int(obj, "failed", (int64_t)plan->failed);
        for (size_t i = 0; i < plan->n; i++) {
            const struct rg_plan_item *it = &plan->items[i];
            cJSON *m = cJSON_CreateObject();
            add_int(m, "version", (int64_t)it->version);
            cJSON_AddStringToObject(m, "title", it->title);
            cJSON_AddStringToObject(m, "state", rg_item_state_name(it->state));
            cJSON_AddStringToObject(m, "checksum",
                                    it->file ? it->file->checksum : it->row->checksum);
            if (it->row) {
                cJSON_AddStringToObject(m, "applied_at", it->row->applied_at);
                cJSON_AddStringToObject(m, "applied_by", it->row->applied_by);
            } else {
                cJSON_AddNullToObject(m, "applied_at");
                cJSON_AddNullToObject(m, "applied_by");
            }
            cJSON_AddItemToArray(list, m);
        }
        cJSON_AddItemToObject(obj, "migrations", list);
        print_json(out, obj);
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
        cJSON *obj = cJSON_CreateObject();
        add_int(obj, "version", (int64_t)version);
        print_json(out, obj);
        return;
    }
    fprintf(out, "%" PRId64 "\n", version);
}

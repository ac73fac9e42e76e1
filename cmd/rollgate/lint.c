/* `lint`: every migration file through the lint rules, no database. */
#include "commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem/mem.h"
#include "output.h"
#include "source/source.h"

static void add_file(struct rg_output_lint *o, const char *path, const char *sql, size_t len,
                     const struct rg_directives *d)
{
    struct rg_lint_file *f = &o->files[o->n++];

    f->path = path;
    f->lint = (struct rg_lint){0};
    rg_lint_sql(sql, len, d, &f->lint);
}

int rg_cmd_lint(const struct rg_cli *cli, const struct rg_config *cfg, char *summary, size_t n,
                struct rg_err *err)
{
    struct rg_source src = {0};
    struct rg_output_lint o = {0};
    size_t errors = 0, warnings = 0, allowed = 0;
    const struct rg_lint_finding *first = NULL;
    const char *first_path = NULL;
    int ret = -1;

    if (rg_source_load(cfg->migrations.dir, &src, err) < 0 || rg_source_prepare_all(&src, err) < 0)
        goto out;
    o.files = rg_calloc(src.n + src.nrepeatable + src.ndata + 1, sizeof(*o.files));
    for (size_t i = 0; i < src.n; i++)
        add_file(&o, src.items[i].up_path, src.items[i].up_sql, src.items[i].up_len,
                 src.items[i].directives);
    for (size_t i = 0; i < src.nrepeatable; i++)
        add_file(&o, src.repeatable[i].path, src.repeatable[i].sql, src.repeatable[i].len,
                 &src.repeatable[i].directives);
    for (size_t i = 0; i < src.ndata; i++)
        add_file(&o, src.data[i].path, src.data[i].sql, src.data[i].len, &src.data[i].directives);
    for (size_t i = 0; i < o.n; i++) {
        const struct rg_lint *l = &o.files[i].lint;
        for (size_t k = 0; k < l->n; k++) {
            const struct rg_lint_finding *f = &l->items[k];
            bool error = rg_lint_rule_info(f->rule)->severity == RG_LINT_ERROR;
            allowed += f->allowed;
            errors += !f->allowed && error;
            warnings += !f->allowed && !error;
            if (!first && !f->allowed && error) {
                first = f;
                first_path = o.files[i].path;
            }
        }
    }
    rg_output_lint(stdout, &o, cli->output);
    snprintf(summary, n, "lint: %zu file%s, %zu error%s, %zu warning%s, %zu allowed", o.n,
             o.n == 1 ? "" : "s", errors, errors == 1 ? "" : "s", warnings,
             warnings == 1 ? "" : "s", allowed);
    if (first) {
        rg_err_set(err, RG_EFILES,
                   "%zu lint error%s not allowed; the first: %s:%zu:%zu %s (rewrite it the safe "
                   "way, or accept it with -- rollgate:allow=%s REASON)",
                   errors, errors == 1 ? "" : "s", first_path, first->line, first->column,
                   rg_lint_rule_info(first->rule)->name, rg_lint_rule_info(first->rule)->name);
        goto out;
    }
    ret = 0;
out:
    for (size_t i = 0; i < o.n; i++)
        rg_lint_free(&o.files[i].lint);
    free(o.files);
    rg_source_free(&src);
    return ret;
}

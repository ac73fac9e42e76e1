/* The YAML configuration file: its sections spell the key paths of config.c's table, and
 * every value goes through rg_config_set() like any other source's. The only user of
 * libyaml. */
#include "config/loader.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

/* Far deeper than any configuration (it has two levels), far shallower than what makes
 * libyaml slow: its scanner costs the depth for every token, so 40,000 nested "[" take
 * seconds before the first event. */
#define MAX_DEPTH 64

RG_PRINTF(5, 6)
static void yaml_error(struct rg_err *err, const char *file, const yaml_node_t *node,
                       const char *path, const char *fmt, ...)
{
    char what[384];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    rg_err_set(err, RG_ECONFIG, "%s:%zu:%zu: %s%s%s", file, node->start_mark.line + 1,
               node->start_mark.column + 1, path ? path : "", path ? ": " : "", what);
}

/* An absent value (`key:`, `key: ~`, `key: null`) leaves the key as the weaker sources set
 * it, as Helm renders unset values that way. A quoted "" is a value. */
static bool is_null(const yaml_node_t *node)
{
    const char *s;

    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    s = (const char *)node->data.scalar.value;
    return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

/* Whether path names a section: some key lies under "path.". */
static bool is_section(const char *path)
{
    size_t n = strlen(path);
    const char *key;

    for (size_t k = 0; (key = rg_config_key_path(k)) != NULL; k++)
        if (strncmp(key, path, n) == 0 && key[n] == '.')
            return true;
    return false;
}

/* The names one level below prefix ("" for the top), for the unknown-key message. */
static void known_names(const char *prefix, char *buf, size_t n)
{
    size_t plen = strlen(prefix), o = 0, lastlen = 0;
    const char *last = NULL, *seg;

    buf[0] = '\0';
    for (size_t k = 0; (seg = rg_config_key_path(k)) != NULL && o < n; k++) {
        size_t len;
        if (plen) {
            if (strncmp(seg, prefix, plen) != 0 || seg[plen] != '.')
                continue;
            seg += plen + 1;
        }
        len = strcspn(seg, ".");
        if (last && len == lastlen && strncmp(seg, last, len) == 0)
            continue;
        o += (size_t)snprintf(buf + o, n - o, "%s%.*s", o ? ", " : "", (int)len, seg);
        last = seg;
        lastlen = len;
    }
}

static int load_mapping(struct loader *st, yaml_document_t *doc, const yaml_node_t *map,
                        const char *prefix, struct rg_err *err)
{
    int rc = -1;

    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        const yaml_node_t *vn = yaml_document_get_node(doc, p->value);
        const char *name, *value;
        char path[128], names[256];
        struct origin o;
        int k;

        if (kn->type != YAML_SCALAR_NODE) {
            yaml_error(err, st->file, kn, *prefix ? prefix : NULL, "a key must be a plain name");
            goto out;
        }
        name = (const char *)kn->data.scalar.value;
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", name);
        /* "lease.duration: 15s" at the top would otherwise match the table's path. */
        k = strchr(name, '.') ? -1 : rg_config_find_key(path);
        if (k < 0 && !strchr(name, '.') && is_section(path)) {
            if (vn->type == YAML_MAPPING_NODE) {
                if (load_mapping(st, doc, vn, path, err) < 0)
                    goto out;
            } else if (!is_null(vn)) {
                yaml_error(err, st->file, vn, path, "expected a mapping of %s.* keys", path);
                goto out;
            }
            continue;
        }
        if (k < 0) {
            /* A URL pasted where a key belongs must not be echoed either. */
            bool hide = rg_config_looks_like_secret(name);
            known_names(prefix, names, sizeof(names));
            yaml_error(err, st->file, kn, hide ? (*prefix ? prefix : NULL) : path,
                       "unknown key%s (known keys: %s)",
                       hide ? " that looks like a connection string (not shown)" : "", names);
            goto out;
        }
        if (vn->type != YAML_SCALAR_NODE) {
            yaml_error(err, st->file, vn, path, "expected a single value, not a %s",
                       vn->type == YAML_MAPPING_NODE ? "mapping" : "list");
            goto out;
        }
        if (is_null(vn))
            continue;
        if (st->from[k].src == SRC_FILE) {
            yaml_error(err, st->file, kn, path, "duplicate key (first set at %zu:%zu)",
                       st->from[k].line, st->from[k].col);
            goto out;
        }
        value = (const char *)vn->data.scalar.value;
        if (strlen(value) != vn->data.scalar.length) {
            yaml_error(err, st->file, vn, path, "a value must not contain a NUL character");
            goto out;
        }
        o = (struct origin){SRC_FILE, vn->start_mark.line + 1, vn->start_mark.column + 1, NULL};
        if (rg_config_set(st, (size_t)k, value, &o, err) < 0)
            goto out;
    }
    rc = 0;
out:
    return rc;
}

static void syntax_error(const char *file, const yaml_parser_t *parser, struct rg_err *err)
{
    if (parser->error == YAML_READER_ERROR)
        rg_err_set(err, RG_ECONFIG, "%s: invalid YAML at byte %zu: %s", file,
                   parser->problem_offset, parser->problem ? parser->problem : "unreadable");
    else
        rg_err_set(err, RG_ECONFIG, "%s:%zu:%zu: invalid YAML: %s%s%s%s", file,
                   parser->problem_mark.line + 1, parser->problem_mark.column + 1,
                   parser->problem ? parser->problem : "syntax error", parser->context ? " (" : "",
                   parser->context ? parser->context : "", parser->context ? ")" : "");
}

/* Walks the events alone, stopping at the first one past MAX_DEPTH, before libyaml builds the
 * document (which would read the whole nest first). */
static int check_depth(const struct loader *st, const char *text, size_t len, struct rg_err *err)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    int depth = 0, rc = -1;
    bool end = false;

    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    while (!end) {
        if (!yaml_parser_parse(&parser, &ev)) {
            syntax_error(st->file, &parser, err);
            goto out;
        }
        if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT)
            depth++;
        else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT)
            depth--;
        end = ev.type == YAML_STREAM_END_EVENT;
        if (depth > MAX_DEPTH) {
            rg_err_set(err, RG_ECONFIG, "%s:%zu:%zu: nested deeper than %d levels", st->file,
                       ev.start_mark.line + 1, ev.start_mark.column + 1, MAX_DEPTH);
            yaml_event_delete(&ev);
            goto out;
        }
        yaml_event_delete(&ev);
    }
    rc = 0;
out:
    yaml_parser_delete(&parser);
    return rc;
}

/* Registers every secret the file holds before any of its values is parsed, so that a value
 * typed in the wrong key above the URL is hidden in the message about it too. */
static void redact_secrets(yaml_document_t *doc, const yaml_node_t *map, const char *prefix)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        const yaml_node_t *vn = yaml_document_get_node(doc, p->value);
        char path[128];
        int k;

        if (kn->type != YAML_SCALAR_NODE)
            continue;
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "",
                 (const char *)kn->data.scalar.value);
        k = rg_config_find_key(path);
        if (k >= 0 && vn->type == YAML_SCALAR_NODE)
            rg_config_redact_key((size_t)k, (const char *)vn->data.scalar.value);
        else if (k < 0 && vn->type == YAML_MAPPING_NODE && is_section(path))
            redact_secrets(doc, vn, path);
    }
}

int rg_config_load_yaml(struct loader *st, const char *text, size_t len, struct rg_err *err)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    const yaml_node_t *root;
    char names[256];
    bool have_doc = false;
    int rc = -1;

    if (check_depth(st, text, len, err) < 0)
        return -1;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    /* A failed load frees the document itself. */
    if (!yaml_parser_load(&parser, &doc)) {
        syntax_error(st->file, &parser, err);
        goto out;
    }
    have_doc = true;
    root = yaml_document_get_root_node(&doc);
    if (root && root->type != YAML_MAPPING_NODE && !is_null(root)) {
        known_names("", names, sizeof(names));
        yaml_error(err, st->file, root, NULL, "the top level must be a mapping (known keys: %s)",
                   names);
        goto out;
    }
    if (root && root->type == YAML_MAPPING_NODE)
        redact_secrets(&doc, root, "");
    if (root && root->type == YAML_MAPPING_NODE && load_mapping(st, &doc, root, "", err) < 0)
        goto out;
    yaml_document_delete(&doc);
    have_doc = false;
    /* A second document would be silently ignored: refuse it instead. */
    if (!yaml_parser_load(&parser, &doc)) {
        syntax_error(st->file, &parser, err);
        goto out;
    }
    have_doc = true;
    root = yaml_document_get_root_node(&doc);
    if (root) {
        yaml_error(err, st->file, root, NULL, "only one YAML document is allowed");
        goto out;
    }
    rc = 0;
out:
    if (have_doc)
        yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

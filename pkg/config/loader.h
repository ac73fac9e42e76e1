/* What config.c (the key table, the setter, env, flags, secrets, validation) and yaml.c
 * (the YAML file) share. Internal to pkg/config: no other file includes it. */
#ifndef RG_CONFIG_LOADER_H
#define RG_CONFIG_LOADER_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

enum source { SRC_NONE, SRC_DEFAULT, SRC_FILE, SRC_ENV, SRC_FLAG };

/* Where a key's current value came from, for messages that come later (cross-key checks,
 * secret files). Names are borrowed: the table, the flags array and the file path all
 * outlive the load. */
struct origin {
    enum source src;
    size_t line, col; /* SRC_FILE, 1-based */
    const char *name; /* SRC_ENV: the variable; SRC_FLAG: the flag's spelling */
};

struct loader {
    struct rg_config *cfg;
    const char *file;    /* as given, for messages */
    struct origin *from; /* one per key, indexed like the table */
};

/* The key's index in the table, or -1. */
int rg_config_find_key(const char *path);

/* The YAML path of the key at index k, or NULL past the last one: yaml.c walks the table's
 * paths through this, never the table itself. */
const char *rg_config_key_path(size_t k);

/* Parses and checks value for key k, stores it in st->cfg and records o as its origin; an
 * error names o and, for the file, the position. */
int rg_config_set(struct loader *st, size_t k, const char *value, const struct origin *o,
                  struct rg_err *err) RG_WUR;

/* Registers for redaction the secret that value of key k is, or names a file of (the URL,
 * the URL and password files); nothing for other keys. */
void rg_config_redact_key(size_t k, const char *value);

/* Whether text looks like a connection string, which a message must not echo. */
bool rg_config_looks_like_secret(const char *path);

/* Reads the YAML text of len bytes into st; st->file names the file in messages. A second
 * document is refused. */
int rg_config_load_yaml(struct loader *st, const char *text, size_t len, struct rg_err *err) RG_WUR;

#endif

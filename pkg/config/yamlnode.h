/* What yaml.c (rollgate's configuration) and kubeconfig.c share about libyaml's documents;
 * only pkg/config includes it. */
#ifndef RG_CONFIG_YAMLNODE_H
#define RG_CONFIG_YAMLNODE_H

#include <stdbool.h>
#include <yaml.h>

/* Whether node is YAML's null: absent (NULL), or a plain scalar "", "~", "null", "Null" or
 * "NULL" (the YAML 1.2 core schema; a quoted "null" is a string). */
bool rg_config_yaml_null(const yaml_node_t *node);

#endif

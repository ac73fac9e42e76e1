/* Small cJSON helpers for request bodies and responses. */
#include "kube/internal.h"

#include <stdio.h>
#include <stdlib.h>

#include "mem/mem.h"

static void set(cJSON *obj, const char *key, cJSON *value)
{
    rg_must(value);
    if (cJSON_GetObjectItemCaseSensitive(obj, key)) {
        if (!cJSON_ReplaceItemInObjectCaseSensitive(obj, key, value))
            rg_must(NULL);
        return;
    }
    if (!cJSON_AddItemToObject(obj, key, value))
        rg_must(NULL);
}

cJSON *rg_kube_json_object(cJSON *obj, const char *key)
{
    cJSON *child = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (cJSON_IsObject(child))
        return child;
    child = rg_kube_json_new();
    set(obj, key, child);
    return child;
}

void rg_kube_json_set_string(cJSON *obj, const char *key, const char *value)
{
    set(obj, key, cJSON_CreateString(value));
}

void rg_kube_json_set_int(cJSON *obj, const char *key, int64_t value)
{
    /* A double holds every integer Kubernetes puts in these fields (int32 in the API). */
    set(obj, key, cJSON_CreateNumber((double)value));
}

cJSON *rg_kube_json_new(void)
{
    return rg_must(cJSON_CreateObject());
}

cJSON *rg_kube_json_copy(const cJSON *json)
{
    return rg_must(cJSON_Duplicate(json, 1));
}

char *rg_kube_json_print(const cJSON *json)
{
    return rg_must(cJSON_PrintUnformatted(json));
}

const char *rg_kube_json_string(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* pkg/json: the writer status --output json and the JSON log lines use. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

static char *text;
static size_t len;
static FILE *mem;

static void setup(void)
{
    mem = open_memstream(&text, &len);
}

static void teardown(void)
{
    free(text);
}

TestSuite(json, .init = setup, .fini = teardown);

static const char *written(void)
{
    fflush(mem);
    fclose(mem);
    return text;
}

Test(json, objects_and_arrays_get_their_commas)
{
    struct rg_json j;
    rg_json_to_file(&j, mem);
    rg_json_open(&j, '{');
    rg_json_key(&j, "a");
    rg_json_int(&j, 1);
    rg_json_key(&j, "list");
    rg_json_open(&j, '[');
    rg_json_open(&j, '{');
    rg_json_key(&j, "x");
    rg_json_str(&j, NULL);
    rg_json_close(&j, '}');
    rg_json_open(&j, '{');
    rg_json_close(&j, '}');
    rg_json_str(&j, "s");
    rg_json_close(&j, ']');
    rg_json_key(&j, "b");
    rg_json_str(&j, "t");
    rg_json_close(&j, '}');
    cr_assert_str_eq(written(), "{\"a\":1,\"list\":[{\"x\":null},{},\"s\"],\"b\":\"t\"}");
}

Test(json, integers_keep_all_64_bits)
{
    struct rg_json j;
    rg_json_to_file(&j, mem);
    rg_json_int(&j, 9223372036854775807LL);
    cr_assert_str_eq(written(), "9223372036854775807");
}

Test(json, booleans_are_bare_words)
{
    struct rg_json j;
    rg_json_to_file(&j, mem);
    rg_json_open(&j, '[');
    rg_json_bool(&j, true);
    rg_json_bool(&j, false);
    rg_json_close(&j, ']');
    cr_assert_str_eq(written(), "[true,false]");
}

static void put_mem(void *ctx, const char *s, size_t n)
{
    fwrite(s, 1, n, ctx);
}

Test(json, strings_escape_quotes_backslashes_and_control_characters)
{
    const char in[] = "a\"b\\c\nd\te\x01"
                      "f\x1f\xc3\xa9";
    rg_json_quote(put_mem, mem, in, sizeof(in) - 1);
    cr_assert_str_eq(written(), "\"a\\\"b\\\\c\\nd\\te\\u0001f\\u001f\xc3\xa9\"");
}

Test(json, booleans_and_counted_strings_are_values_with_commas)
{
    struct rg_json j;
    rg_json_to_file(&j, mem);
    rg_json_open(&j, '[');
    rg_json_bool(&j, true);
    rg_json_bool(&j, false);
    rg_json_strn(&j, "a\"b;rest", 3);
    rg_json_int(&j, 2);
    rg_json_close(&j, ']');
    cr_assert_str_eq(written(), "[true,false,\"a\\\"b\",2]");
}

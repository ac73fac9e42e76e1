/* The exit-code table is the product's contract: each number is fixed. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err/err.h"

Test(err, every_code_maps_to_its_documented_exit_status)
{
    cr_assert_eq(rg_err_exit_status(RG_OK, 0), 0);
    cr_assert_eq(rg_err_exit_status(RG_EINTERNAL, 0), 1);
    cr_assert_eq(rg_err_exit_status(RG_EUSAGE, 0), 2);
    cr_assert_eq(rg_err_exit_status(RG_ECONFIG, 0), 3);
    cr_assert_eq(rg_err_exit_status(RG_EFILES, 0), 4);
    cr_assert_eq(rg_err_exit_status(RG_ECONFLICT, 0), 5);
    cr_assert_eq(rg_err_exit_status(RG_EMIGRATION, 0), 6);
    cr_assert_eq(rg_err_exit_status(RG_EDATABASE, 0), 7);
    cr_assert_eq(rg_err_exit_status(RG_ELEASE, 0), 8);
    cr_assert_eq(rg_err_exit_status(RG_EAPI, 0), 9);
    cr_assert_eq(rg_err_exit_status(RG_EAPIDENIED, 0), 10);
    cr_assert_eq(rg_err_exit_status(RG_EPENDING, 0), 11);
    cr_assert_eq(rg_err_exit_status(RG_ELOCK, 0), 12);
    cr_assert_eq(rg_err_exit_status(RG_ESIGNAL, 15), 143);
    cr_assert_eq(rg_err_exit_status(RG_ESIGNAL, 2), 130);
    cr_assert_eq(rg_err_exit_status((enum rg_code)77, 0), 1);
}

Test(err, retryable_follows_the_table)
{
    cr_assert(rg_err_retryable(RG_EDATABASE));
    cr_assert(rg_err_retryable(RG_ELEASE));
    cr_assert(rg_err_retryable(RG_EAPI));
    cr_assert(rg_err_retryable(RG_ESIGNAL));
    /* The blocker may be gone next time: the chart's podFailurePolicy retries exit 12. */
    cr_assert(rg_err_retryable(RG_ELOCK));
    cr_assert_str_eq(rg_err_code_name(RG_ELOCK), "lock");
    cr_assert_not(rg_err_retryable(RG_EMIGRATION));
    cr_assert_not(rg_err_retryable(RG_ECONFIG));
    cr_assert_not(rg_err_retryable(RG_EAPIDENIED));
}

Test(err, prefix_keeps_the_lower_layers_words)
{
    struct rg_err err;
    rg_err_set(&err, RG_EDATABASE, "connection refused");
    rg_err_prefix(&err, "connecting to %s", "db");
    cr_assert_str_eq(err.msg, "connecting to db: connection refused");
    cr_assert_eq(err.code, RG_EDATABASE);
}

Test(err, prefix_truncates_rather_than_overflows)
{
    struct rg_err err;
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    rg_err_set(&err, RG_EDATABASE, "%s", big);
    rg_err_prefix(&err, "ctx");
    cr_assert_eq(strlen(err.msg), sizeof(err.msg) - 1);
    cr_assert_eq(strncmp(err.msg, "ctx: xxx", 8), 0);
}

Test(err, suffix_adds_a_hint_after_the_message)
{
    struct rg_err err;
    rg_err_set(&err, RG_EFILES, "a.sql: over the limit");
    rg_err_suffix(&err, " for a %s", "migration");
    cr_assert_str_eq(err.msg, "a.sql: over the limit for a migration");
    cr_assert_eq(err.code, RG_EFILES);
}

Test(err, suffix_truncates_the_hint_not_the_message)
{
    struct rg_err err;
    char big[sizeof(err.msg) - 3];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    rg_err_set(&err, RG_EFILES, "%s", big);
    rg_err_suffix(&err, " (a long hint)");
    cr_assert_eq(strlen(err.msg), sizeof(err.msg) - 1);
    cr_assert_eq(strncmp(err.msg, big, strlen(big)), 0);
    cr_assert_str_eq(err.msg + strlen(big), " (a");
}

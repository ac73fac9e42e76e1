#include <criterion/criterion.h>

#include <stdint.h>
#include <string.h>

#include "duration/duration.h"

static int64_t parsed(const char *s)
{
    int64_t ms = -12345;

    cr_assert_eq(rg_duration_parse(s, &ms), 0, "\"%s\" should parse", s);
    return ms;
}

static void rejected(const char *s)
{
    int64_t ms = -12345;

    cr_assert_eq(rg_duration_parse(s, &ms), -1, "\"%s\" should be rejected", s);
    cr_assert_eq(ms, -12345, "\"%s\": output written on failure", s);
}

Test(duration, parses_each_unit)
{
    cr_assert_eq(parsed("500ms"), 500);
    cr_assert_eq(parsed("30s"), 30000);
    cr_assert_eq(parsed("5m"), 300000);
    cr_assert_eq(parsed("2h"), 7200000);
}

Test(duration, parses_units_combined_in_order)
{
    cr_assert_eq(parsed("1h30m"), 5400000);
    cr_assert_eq(parsed("1m30s"), 90000);
    cr_assert_eq(parsed("1s500ms"), 1500);
    cr_assert_eq(parsed("1h2m3s4ms"), 3723004);
    cr_assert_eq(parsed("1h4ms"), 3600004);
}

Test(duration, parses_zero_forms)
{
    cr_assert_eq(parsed("0"), 0);
    cr_assert_eq(parsed("0s"), 0);
    cr_assert_eq(parsed("0ms"), 0);
    cr_assert_eq(parsed("0h0m"), 0);
}

Test(duration, parses_large_and_leading_zero_numbers)
{
    cr_assert_eq(parsed("90m"), 5400000);
    cr_assert_eq(parsed("007s"), 7000);
    cr_assert_eq(parsed("100000h"), INT64_C(360000000000));
}

Test(duration, rejects_empty_and_null)
{
    int64_t ms = 7;

    rejected("");
    cr_assert_eq(rg_duration_parse(NULL, &ms), -1);
    cr_assert_eq(ms, 7);
}

Test(duration, rejects_a_number_without_unit)
{
    rejected("5");
    rejected("00");
    rejected("1h5");
}

Test(duration, rejects_unknown_units)
{
    rejected("5d");
    rejected("5sec");
    rejected("5hm");
    rejected("5us");
    rejected("5S");
    rejected("5M");
}

Test(duration, rejects_signs_spaces_and_fractions)
{
    rejected("-5s");
    rejected("+5s");
    rejected(" 5s");
    rejected("5s ");
    rejected("5 s");
    rejected("1h -30m");
    rejected("1.5h");
    rejected("-0");
    rejected("0x10s");
}

Test(duration, rejects_units_out_of_order_or_repeated)
{
    rejected("30m1h");
    rejected("500ms1s");
    rejected("1s1s");
    rejected("1m1m");
    rejected("1ms1ms");
}

Test(duration, rejects_missing_number)
{
    rejected("s");
    rejected("ms");
    rejected("1hm");
    rejected("h1");
}

Test(duration, accepts_up_to_int64_max_and_no_further)
{
    cr_assert_eq(parsed("9223372036854775807ms"), INT64_MAX);
    cr_assert_eq(parsed("9223372036854775s807ms"), INT64_MAX);
    rejected("9223372036854775808ms");
    rejected("9223372036854775s808ms");
    rejected("2562047788015216h");
    rejected("99999999999999999999999h");
}

static const char *formatted(int64_t ms)
{
    static char buf[64];

    memset(buf, 'x', sizeof(buf));
    rg_duration_format(ms, buf, sizeof(buf));
    return buf;
}

Test(duration, formats_largest_units_first)
{
    cr_assert_str_eq(formatted(0), "0s");
    cr_assert_str_eq(formatted(1), "1ms");
    cr_assert_str_eq(formatted(500), "500ms");
    cr_assert_str_eq(formatted(1500), "1s500ms");
    cr_assert_str_eq(formatted(60000), "1m");
    cr_assert_str_eq(formatted(5400000), "1h30m");
    cr_assert_str_eq(formatted(3723004), "1h2m3s4ms");
    cr_assert_str_eq(formatted(86400000), "24h");
}

Test(duration, formats_negative_values_with_one_sign)
{
    cr_assert_str_eq(formatted(-5400000), "-1h30m");
    cr_assert_str_eq(formatted(-1), "-1ms");
    cr_assert_str_eq(formatted(INT64_MIN), "-2562047788015h12m55s808ms");
}

Test(duration, format_truncates_without_overrunning)
{
    char buf[8];

    memset(buf, 'x', sizeof(buf));
    rg_duration_format(3723004, buf, 5);
    cr_assert_str_eq(buf, "1h2m");
    cr_assert_eq(buf[5], 'x');
    rg_duration_format(3723004, buf, 1);
    cr_assert_str_eq(buf, "");
}

Test(duration, format_with_no_room_writes_nothing)
{
    char c = 'x';

    rg_duration_format(1000, &c, 0);
    cr_assert_eq(c, 'x');
    rg_duration_format(0, &c, 0);
    cr_assert_eq(c, 'x');
}

Test(duration, format_output_parses_back)
{
    static const int64_t values[] = {1,       999,     1000,    1001,     59999,         60000,
                                     3599999, 3600000, 5400000, 86399999, INT64_MAX / 2, INT64_MAX};

    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char buf[64];
        rg_duration_format(values[i], buf, sizeof(buf));
        cr_assert_eq(parsed(buf), values[i], "%s", buf);
    }
}

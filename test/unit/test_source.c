#include <criterion/criterion.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "source/source.h"

static char tmp[] = "/tmp/rg_source_XXXXXX";

static void remove_tree(const char *path)
{
    struct stat st;
    DIR *d;
    struct dirent *de;

    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        d = opendir(path);
        if (d) {
            while ((de = readdir(d)) != NULL) {
                char child[4096];
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                    continue;
                snprintf(child, sizeof(child), "%s/%s", path, de->d_name);
                remove_tree(child);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void setup(void)
{
    cr_assert_not_null(mkdtemp(tmp));
}

static void teardown(void)
{
    remove_tree(tmp);
}

TestSuite(source, .init = setup, .fini = teardown);

static void write_bytes(const char *name, const char *data, size_t len)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmp, name);
    f = fopen(path, "wb");
    cr_assert_not_null(f, "create %s", path);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static void write_file(const char *name, const char *text)
{
    write_bytes(name, text, strlen(text));
}

static void make_dir(const char *name)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s", tmp, name);
    cr_assert_eq(mkdir(path, 0700), 0);
}

/* Loads tmp and reads every file whole (as validate does), expecting success. */
static void load_ok(struct rg_source *src)
{
    struct rg_err err = {0};

    cr_assert_eq(rg_source_load(tmp, src, &err), 0, "load failed: %s", err.msg);
    cr_assert_eq(rg_source_prepare_all(src, &err), 0, "prepare failed: %s", err.msg);
}

/* Loads tmp and reads every file whole (as validate does), expecting RG_EFILES with every
 * given fragment in the message; a source that rg_source_load refused is left empty. */
static void load_fails(const char *frag1, const char *frag2)
{
    struct rg_source src;
    struct rg_err err = {0};
    int rc;

    memset(&src, 0xAB, sizeof(src));
    rc = rg_source_load(tmp, &src, &err);
    if (rc == 0) {
        cr_assert_eq(rg_source_prepare_all(&src, &err), -1);
    } else {
        cr_assert_null(src.items);
        cr_assert_eq(src.n, 0);
        cr_assert_null(src.repeatable);
        cr_assert_eq(src.nrepeatable, 0);
        cr_assert_null(src.data);
        cr_assert_eq(src.ndata, 0);
    }
    cr_assert_eq(err.code, RG_EFILES, "code %d: %s", err.code, err.msg);
    cr_assert_not_null(strstr(err.msg, frag1), "\"%s\" not in: %s", frag1, err.msg);
    if (frag2)
        cr_assert_not_null(strstr(err.msg, frag2), "\"%s\" not in: %s", frag2, err.msg);
    rg_source_free(&src);
}

static void remove_file(const char *name)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s", tmp, name);
    cr_assert_eq(unlink(path), 0, "unlink %s", path);
}

/* tmp + "/" + name, the way messages must name a file. */
static const char *in_tmp(const char *name)
{
    static char bufs[2][4096];
    static int which;

    which = !which;
    snprintf(bufs[which], sizeof(bufs[which]), "%s/%s", tmp, name);
    return bufs[which];
}

Test(source, orders_versions_numerically_with_leading_zeros_and_timestamps)
{
    struct rg_source src;

    write_file("20240101120000_stamped.up.sql", "SELECT 4;");
    write_file("10_ten.up.sql", "SELECT 3;");
    write_file("0002_two.up.sql", "SELECT 2;");
    write_file("0001_one.up.sql", "SELECT 1;");
    load_ok(&src);
    cr_assert_eq(src.n, 4);
    cr_assert_eq(src.items[0].version, 1);
    cr_assert_eq(src.items[1].version, 2);
    cr_assert_eq(src.items[2].version, 10);
    cr_assert_eq(src.items[3].version, 20240101120000LL);
    cr_assert_str_eq(src.items[0].title, "one");
    cr_assert_str_eq(src.items[2].title, "ten");
    cr_assert_str_eq(src.items[3].title, "stamped");
    cr_assert_str_eq(src.dir, tmp);
    rg_source_free(&src);
}

/* Versions that differ in each byte of the 64 bits (the load sorts them byte by byte),
 * written out of order, each with its down file next to its up file. */
Test(source, orders_versions_that_differ_in_any_byte_and_pairs_their_down_files)
{
    static const int64_t versions[] = {65536,
                                       2,
                                       9223372036854775807LL,
                                       256,
                                       1,
                                       4294967296LL,
                                       255,
                                       20240101120000LL,
                                       257,
                                       16777216,
                                       65535,
                                       72057594037927936LL,
                                       72057594037927935LL};
    const size_t n = sizeof(versions) / sizeof(versions[0]);
    struct rg_source src;
    char name[64], down[64];

    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "%lld_v.up.sql", (long long)versions[i]);
        write_file(name, "SELECT 1;");
        snprintf(name, sizeof(name), "%lld_v.down.sql", (long long)versions[i]);
        write_file(name, "SELECT 2;");
    }
    load_ok(&src);
    cr_assert_eq(src.n, n);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            cr_assert_gt(src.items[i].version, src.items[i - 1].version);
        snprintf(down, sizeof(down), "%lld_v.down.sql", (long long)src.items[i].version);
        cr_assert_str_eq(src.items[i].down_path, in_tmp(down));
    }
    cr_assert_eq(src.items[n - 1].version, INT64_MAX);
    rg_source_free(&src);
}

/* Two up files for one version are named in name order, whatever order readdir gives. */
Test(source, names_two_up_files_for_one_version_in_name_order)
{
    struct rg_source src;
    struct rg_err err = {0};
    char want[4096];

    write_file("0001_c.up.sql", "SELECT 1;");
    write_file("1_a.up.sql", "SELECT 1;");
    write_file("01_b.up.sql", "SELECT 1;");
    write_file("0002_d.up.sql", "SELECT 1;");
    cr_assert_eq(rg_source_load(tmp, &src, &err), -1);
    snprintf(want, sizeof(want), "%s and ", in_tmp("0001_c.up.sql"));
    snprintf(want + strlen(want), sizeof(want) - strlen(want),
             "%s: two up migrations for version 1", in_tmp("01_b.up.sql"));
    cr_assert(strstr(err.msg, want), "%s", err.msg);
}

/* The blocks' contract: every migration's paths sit in src.names (the directory's
 * listing, each name after the directory's path) and its title in src.titles, two
 * allocations that rg_source_free releases (ASan reports a leak or a double free). */
static bool within(const char *block, size_t size, const char *p)
{
    return p && p >= block && p + strlen(p) < block + size;
}

Test(source, keeps_paths_and_titles_in_two_blocks)
{
    struct rg_source src;
    size_t paths = 0, titles = 0;

    write_file("0001_users.up.sql", "CREATE TABLE users();");
    write_file("0001_users.down.sql", "DROP TABLE users;");
    write_file("0002_orders.up.sql", "CREATE TABLE orders();");
    cr_assert_eq(rg_source_load(tmp, &src, &(struct rg_err){0}), 0);
    cr_assert_not_null(src.names);
    cr_assert_not_null(src.titles);
    /* Each block holds its strings one after the other, each with its NUL. */
    for (size_t i = 0; i < src.n; i++) {
        paths += strlen(src.items[i].up_path) + 1 +
                 (src.items[i].down_path ? strlen(src.items[i].down_path) + 1 : 0);
        titles += strlen(src.items[i].title) + 1;
    }
    cr_assert(within(src.names, paths, src.items[0].up_path));
    cr_assert(within(src.names, paths, src.items[0].down_path));
    cr_assert(within(src.names, paths, src.items[1].up_path));
    cr_assert(within(src.titles, titles, src.items[0].title));
    cr_assert(within(src.titles, titles, src.items[1].title));
    cr_assert_str_eq(src.items[0].up_path, in_tmp("0001_users.up.sql"));
    cr_assert_str_eq(src.items[0].up_name, "0001_users.up.sql");
    cr_assert_eq(src.items[0].up_name, src.items[0].up_path + strlen(tmp) + 1);
    cr_assert_str_eq(src.items[0].down_path, in_tmp("0001_users.down.sql"));
    cr_assert_str_eq(src.items[0].title, "users");
    cr_assert_str_eq(src.items[1].up_path, in_tmp("0002_orders.up.sql"));
    cr_assert_str_eq(src.items[1].title, "orders");
    cr_assert_null(src.items[1].down_path);
    rg_source_free(&src);
    cr_assert_null(src.names);
    cr_assert_null(src.titles);
}

/* A directory given with a trailing slash: the paths do not double it, as before. */
Test(source, paths_keep_a_single_slash)
{
    struct rg_source src;
    char dir[sizeof(tmp) + 1];

    snprintf(dir, sizeof(dir), "%s/", tmp);
    write_file("0001_users.up.sql", "CREATE TABLE users();");
    write_file("0001_users.down.sql", "DROP TABLE users;");
    cr_assert_eq(rg_source_load(dir, &src, &(struct rg_err){0}), 0);
    cr_assert_str_eq(src.items[0].up_path, in_tmp("0001_users.up.sql"));
    cr_assert_str_eq(src.items[0].down_path, in_tmp("0001_users.down.sql"));
    rg_source_free(&src);
}

Test(source, pairs_up_and_down_files)
{
    struct rg_source src;

    write_file("0001_users.up.sql", "CREATE TABLE users();");
    write_file("0001_users.down.sql", "DROP TABLE users;");
    write_file("0002_orders.up.sql", "CREATE TABLE orders();");
    load_ok(&src);
    cr_assert_eq(src.n, 2);
    cr_assert_str_eq(src.items[0].up_name, "0001_users.up.sql");
    cr_assert_str_eq(src.items[0].up_path, in_tmp("0001_users.up.sql"));
    cr_assert_str_eq(src.items[0].up_sql, "CREATE TABLE users();");
    cr_assert_eq(src.items[0].up_len, strlen("CREATE TABLE users();"));
    cr_assert_str_eq(src.items[0].down_path, in_tmp("0001_users.down.sql"));
    cr_assert_str_eq(src.items[0].down_sql, "DROP TABLE users;");
    cr_assert_null(src.items[1].down_path);
    cr_assert_null(src.items[1].down_sql);
    cr_assert_str_eq(src.items[1].up_sql, "CREATE TABLE orders();");
    rg_source_free(&src);
}

Test(source, title_may_hold_underscores_and_dashes)
{
    struct rg_source src;

    write_file("0003_add_user_email-index.up.sql", "SELECT 1;");
    load_ok(&src);
    cr_assert_eq(src.n, 1);
    cr_assert_eq(src.items[0].version, 3);
    cr_assert_str_eq(src.items[0].title, "add_user_email-index");
    rg_source_free(&src);
}

Test(source, joins_a_trailing_slash_dir_without_doubling_it)
{
    struct rg_source src;
    struct rg_err err = {0};
    char dir[4096];

    snprintf(dir, sizeof(dir), "%s/", tmp);
    write_file("0001_a.up.sql", "SELECT 1;");
    cr_assert_eq(rg_source_load(dir, &src, &err), 0, "%s", err.msg);
    cr_assert_str_eq(src.items[0].up_path, in_tmp("0001_a.up.sql"));
    cr_assert_str_eq(src.dir, dir);
    rg_source_free(&src);
}

Test(source, checksum_of_known_strings)
{
    char out[65];

    rg_source_checksum("", 0, out);
    cr_assert_str_eq(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    rg_source_checksum("abc", 3, out);
    cr_assert_str_eq(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

Test(source, checksum_covers_the_up_files_exact_bytes)
{
    struct rg_source src;

    write_file("0001_a.up.sql", "abc");
    write_file("0001_a.down.sql", "something else");
    write_file("0002_b.up.sql", "abc\n");
    load_ok(&src);
    cr_assert_str_eq(src.items[0].checksum,
                     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cr_assert_str_neq(src.items[1].checksum, src.items[0].checksum);
    rg_source_free(&src);
}

Test(source, empty_directory_has_no_migrations)
{
    struct rg_source src;

    load_ok(&src);
    cr_assert_eq(src.n, 0);
    cr_assert_null(rg_source_find(&src, 1));
    rg_source_free(&src);
}

Test(source, skips_files_that_are_not_sql_and_dotfiles)
{
    struct rg_source src;

    write_file("README.md", "docs");
    write_file(".keep", "");
    write_file(".hidden.sql", "not a migration name");
    write_file("notes.txt", "x");
    write_file("0001_a.up.sql.bak", "x");
    write_file("0001_a.up.sql", "SELECT 1;");
    load_ok(&src);
    cr_assert_eq(src.n, 1);
    cr_assert_eq(src.items[0].version, 1);
    /* Skipped, but the backup looks like a migration: listed for validate. */
    cr_assert_eq(src.nnear_misses, 1);
    cr_assert_str_eq(src.near_misses[0], in_tmp("0001_a.up.sql.bak"));
    rg_source_free(&src);
}

Test(source, lists_near_miss_names_without_loading_them)
{
    static const char *const near[] = {
        "0002_b.UP.SQL", "0003_c.up.sq", "0004_d.up.sql~", "0005_e.up.txt",
        "R__views.Sql",  "U6__f.psql",   "V7__g.sql.orig",
    };
    static const char *const not_near[] = {"README.md", "Makefile", "notes.txt", "VERSION",
                                           ".0008_h.UP.SQL"};
    struct rg_source src;
    struct rg_err err = {0};

    write_file("0001_a.up.sql", "SELECT 1;");
    for (size_t i = 0; i < sizeof(near) / sizeof(near[0]); i++)
        write_file(near[i], "SELECT 1;");
    for (size_t i = 0; i < sizeof(not_near) / sizeof(not_near[0]); i++)
        write_file(not_near[i], "x");
    make_dir("0009_archive");
    make_dir("data");
    write_file("data/seed.SQL", "SELECT 1;");
    write_file("data/notes.txt", "x");
    load_ok(&src);
    cr_assert_eq(src.n, 1);
    cr_assert_eq(src.nnear_misses, 8, "%zu near misses", src.nnear_misses);
    /* The directory's own, in name order, then data/'s. */
    cr_assert_str_eq(src.near_misses[0], in_tmp("0002_b.UP.SQL"));
    cr_assert_str_eq(src.near_misses[6], in_tmp("V7__g.sql.orig"));
    cr_assert_str_eq(src.near_misses[7], in_tmp("data/seed.SQL"));
    cr_assert_eq(rg_source_check_names(&src, &err), -1);
    cr_assert_eq(err.code, RG_EFILES);
    cr_assert(strstr(err.msg, in_tmp("0002_b.UP.SQL")), "%s", err.msg);
    cr_assert(strstr(err.msg, "names are case-sensitive"), "%s", err.msg);
    cr_assert(strstr(err.msg, "7 more such names"), "%s", err.msg);
    rg_source_free(&src);
}

Test(source, a_clean_directory_passes_the_name_check)
{
    struct rg_source src;
    struct rg_err err = {0};

    write_file("0001_a.up.sql", "SELECT 1;");
    write_file("README.md", "docs");
    load_ok(&src);
    cr_assert_eq(rg_source_check_names(&src, &err), 0, "%s", err.msg);
    rg_source_free(&src);
}

Test(source, near_misses_ending_in_sql_are_refused_by_every_command)
{
    /* These end in .sql, so they were always read as migration names: still refused. */
    static const char *const names[] = {"0001x.up.sql", "V1_x.sql", "0001_x.UP.sql"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        write_file(names[i], "SELECT 1;");
        load_fails(in_tmp(names[i]), "not a migration file name");
        remove_file(names[i]);
    }
}

Test(source, drops_a_byte_order_mark_from_the_sql_but_not_the_checksum)
{
    static const char file[] = "\xEF\xBB\xBF"
                               "CREATE TABLE t (id int);\n";
    struct rg_source src;
    char want[65];

    write_file("0001_a.up.sql", file);
    write_file("R__v.sql", file);
    load_ok(&src);
    rg_source_checksum(file, strlen(file), want);
    cr_assert_str_eq(src.items[0].up_sql, "CREATE TABLE t (id int);\n");
    cr_assert_eq(src.items[0].up_len, strlen(file) - 3);
    cr_assert_str_eq(src.items[0].checksum, want);
    cr_assert_str_eq(src.repeatable[0].sql, "CREATE TABLE t (id int);\n");
    cr_assert_str_eq(src.repeatable[0].checksum, want);
    rg_source_free(&src);
}

Test(source, rejects_sql_that_is_not_utf8_naming_file_and_line)
{
    static const struct {
        const char *name, *bytes;
    } cases[] = {
        {"0001_a.down.sql", "SELECT 1;\nSELECT 'caf\xE9';\n"}, /* Latin-1 */
        {"0001_a.up.sql", "SELECT 1;\nSELECT 2;\n-- \xED\xA0\x80 surrogate\n"},
        {"R__v.sql", "SELECT '\xC0\xAF';\n"},                             /* overlong */
        {"data/seed.sql", "SELECT 1;\n\n\nSELECT '\xF4\x90\x80\x80';\n"}, /* > U+10FFFF */
    };
    static const char *const lines[] = {":2: not valid UTF-8 (byte 0xE9, byte 12 of the line)",
                                        ":3: not valid UTF-8 (byte 0xED", ":1: not valid UTF-8",
                                        ":4: not valid UTF-8"};

    make_dir("data");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char frag[128];
        write_file("0001_a.up.sql", "SELECT 1;\n");
        write_file(cases[i].name, cases[i].bytes);
        snprintf(frag, sizeof(frag), "%s%s", in_tmp(cases[i].name), lines[i]);
        load_fails(frag, NULL);
        remove_file(cases[i].name);
    }
}

Test(source, accepts_utf8_text)
{
    struct rg_source src;

    write_file("0001_a.up.sql",
               "-- caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\nSELECT 'na\xC3\xAFve';\n");
    load_ok(&src);
    rg_source_free(&src);
}

Test(source, rejects_a_file_of_only_comments_naming_it)
{
    static const char *const names[] = {"0002_b.up.sql", "0001_a.down.sql", "R__v.sql",
                                        "data/seed.sql"};

    make_dir("data");
    write_file("0001_a.up.sql", "SELECT 1;\n");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        write_file(names[i], "-- rollgate:no-transaction\n-- TODO\n\n/* later */\n");
        load_fails(in_tmp(names[i]), ": holds no SQL statement");
        remove_file(names[i]);
    }
}

Test(source, skips_subdirectories)
{
    struct rg_source src;

    make_dir("data");
    write_file("data/seed.sql", "INSERT 1;");
    write_file("data/not-a-migration-name.sql", "x");
    write_file("0001_a.up.sql", "SELECT 1;");
    load_ok(&src);
    cr_assert_eq(src.n, 1);
    rg_source_free(&src);
}

Test(source, loads_thousands_of_files)
{
    struct rg_source src;
    char name[64];

    for (int v = 1; v <= 1500; v++) {
        snprintf(name, sizeof(name), "%05d_m%d.up.sql", v, v);
        write_file(name, "SELECT 1;");
        if (v % 2 == 0) {
            snprintf(name, sizeof(name), "%05d_m%d.down.sql", v, v);
            write_file(name, "SELECT 2;");
        }
    }
    load_ok(&src);
    cr_assert_eq(src.n, 1500);
    for (size_t i = 0; i < src.n; i++) {
        cr_assert_eq(src.items[i].version, (int64_t)i + 1);
        cr_assert_eq(src.items[i].down_sql != NULL, (i + 1) % 2 == 0);
    }
    rg_source_free(&src);
}

Test(source, rejects_a_name_that_is_not_a_migration)
{
    write_file("12-foo.sql", "SELECT 1;");
    load_fails(in_tmp("12-foo.sql"), "not a migration file name (expected NNNN_title.up.sql");
}

Test(source, rejects_a_name_without_up_or_down)
{
    write_file("0001_init.sql", "SELECT 1;");
    load_fails(in_tmp("0001_init.sql"), "not a migration file name");
}

Test(source, rejects_a_name_without_title)
{
    write_file("0001.up.sql", "SELECT 1;");
    load_fails(in_tmp("0001.up.sql"), "no title");
}

Test(source, rejects_an_empty_title)
{
    write_file("0001_.up.sql", "SELECT 1;");
    load_fails(in_tmp("0001_.up.sql"), "no title");
}

Test(source, rejects_a_title_with_other_characters)
{
    write_file("0001_add.users.up.sql", "SELECT 1;");
    load_fails(in_tmp("0001_add.users.up.sql"), "title may hold only");
}

Test(source, rejects_version_zero)
{
    write_file("0000_zero.up.sql", "SELECT 1;");
    load_fails(in_tmp("0000_zero.up.sql"), "greater than 0");
}

Test(source, rejects_a_negative_or_signed_version)
{
    write_file("-1_neg.up.sql", "SELECT 1;");
    load_fails(in_tmp("-1_neg.up.sql"), "not a migration file name");
}

Test(source, rejects_a_version_over_int64)
{
    write_file("9223372036854775808_big.up.sql", "SELECT 1;");
    load_fails(in_tmp("9223372036854775808_big.up.sql"), "out of range");
}

Test(source, accepts_the_largest_int64_version)
{
    struct rg_source src;

    write_file("9223372036854775807_max.up.sql", "SELECT 1;");
    load_ok(&src);
    cr_assert_eq(src.items[0].version, INT64_MAX);
    rg_source_free(&src);
}

Test(source, rejects_two_up_files_for_one_version)
{
    write_file("0001_a.up.sql", "SELECT 1;");
    write_file("1_b.up.sql", "SELECT 1;");
    load_fails(in_tmp("0001_a.up.sql"), in_tmp("1_b.up.sql"));
}

Test(source, rejects_two_down_files_for_one_version)
{
    write_file("0001_a.up.sql", "SELECT 1;");
    write_file("0001_a.down.sql", "SELECT 1;");
    write_file("1_a.down.sql", "SELECT 1;");
    load_fails(in_tmp("0001_a.down.sql"), in_tmp("1_a.down.sql"));
}

Test(source, rejects_a_down_file_without_up_file)
{
    write_file("0001_a.up.sql", "SELECT 1;");
    write_file("0002_b.down.sql", "SELECT 1;");
    load_fails(in_tmp("0002_b.down.sql"), "without an up file");
}

Test(source, rejects_up_and_down_with_different_titles)
{
    write_file("0002_add_users.up.sql", "SELECT 1;");
    write_file("0002_add_user.down.sql", "SELECT 1;");
    load_fails(in_tmp("0002_add_users.up.sql"), in_tmp("0002_add_user.down.sql"));
}

Test(source, rejects_a_file_over_the_size_cap)
{
    char path[4096];
    int fd;

    snprintf(path, sizeof(path), "%s/0001_dump.up.sql", tmp);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    /* Sparse: costs no disk, but fstat sees the size. */
    cr_assert_eq(ftruncate(fd, RG_SOURCE_MAX_FILE + 1), 0);
    close(fd);
    load_fails(in_tmp("0001_dump.up.sql"), "16777217 bytes");
}

Test(source, accepts_a_file_exactly_at_the_size_cap)
{
    struct rg_source src;
    char path[4096];
    char *sql;
    int fd;

    snprintf(path, sizeof(path), "%s/0001_big.up.sql", tmp);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    sql = malloc(RG_SOURCE_MAX_FILE);
    cr_assert_not_null(sql);
    memset(sql, ' ', RG_SOURCE_MAX_FILE);
    memcpy(sql, "SELECT 1;", strlen("SELECT 1;"));
    cr_assert_eq(write(fd, sql, RG_SOURCE_MAX_FILE), RG_SOURCE_MAX_FILE);
    free(sql);
    close(fd);
    load_ok(&src);
    cr_assert_eq(src.items[0].up_len, (size_t)RG_SOURCE_MAX_FILE);
    rg_source_free(&src);
}

Test(source, rejects_a_down_file_over_the_size_cap)
{
    char path[4096];
    int fd;

    write_file("0001_a.up.sql", "SELECT 1;");
    snprintf(path, sizeof(path), "%s/0001_a.down.sql", tmp);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, RG_SOURCE_MAX_FILE + 1), 0);
    close(fd);
    load_fails(in_tmp("0001_a.down.sql"), "limit");
}

Test(source, rejects_a_nul_byte)
{
    write_bytes("0001_a.up.sql", "SELECT 1;\nSELECT\0 2;", 20);
    load_fails(in_tmp("0001_a.up.sql"), ":2: file contains a NUL byte");
}

Test(source, rejects_a_directory_named_like_a_migration)
{
    make_dir("0005_x.up.sql");
    load_fails(in_tmp("0005_x.up.sql"), "not a regular file");
}

Test(source, rejects_a_dangling_symlink)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/0005_x.up.sql", tmp);
    cr_assert_eq(symlink("/nonexistent/rollgate/target.sql", path), 0);
    load_fails(in_tmp("0005_x.up.sql"), "No such file or directory");
}

Test(source, follows_a_symlink_to_a_file_as_configmap_volumes_use)
{
    struct rg_source src;
    char path[4096];

    make_dir("..data");
    write_file("..data/0001_a.up.sql", "SELECT 1;");
    snprintf(path, sizeof(path), "%s/0001_a.up.sql", tmp);
    cr_assert_eq(symlink("..data/0001_a.up.sql", path), 0);
    load_ok(&src);
    cr_assert_eq(src.n, 1);
    cr_assert_str_eq(src.items[0].up_sql, "SELECT 1;");
    rg_source_free(&src);
}

Test(source, rejects_a_missing_directory)
{
    struct rg_source src;
    struct rg_err err = {0};
    char dir[4096];

    snprintf(dir, sizeof(dir), "%s/nope", tmp);
    cr_assert_eq(rg_source_load(dir, &src, &err), -1);
    cr_assert_eq(err.code, RG_EFILES);
    cr_assert_not_null(strstr(err.msg, dir), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "No such file or directory"), "%s", err.msg);
}

Test(source, rejects_a_path_that_is_not_a_directory)
{
    struct rg_source src;
    struct rg_err err = {0};
    char dir[4096];

    write_file("plain", "x");
    snprintf(dir, sizeof(dir), "%s/plain", tmp);
    cr_assert_eq(rg_source_load(dir, &src, &err), -1);
    cr_assert_eq(err.code, RG_EFILES);
    cr_assert_not_null(strstr(err.msg, dir), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "Not a directory"), "%s", err.msg);
}

Test(source, parses_all_three_directives)
{
    struct rg_source src;

    write_file("0001_idx.up.sql", "\n"
                                  "-- Adds the index without blocking writes.\n"
                                  "-- rollgate:no-transaction\r\n"
                                  "\n"
                                  "  --   rollgate:lock-timeout=2s  \n"
                                  "--rollgate:statement-timeout=10m\n"
                                  "CREATE INDEX CONCURRENTLY i ON t (c);\n");
    write_file("0002_plain.up.sql", "-- just a comment\nSELECT 1;\n");
    load_ok(&src);
    cr_assert(src.items[0].directives->no_transaction);
    cr_assert_eq(src.items[0].directives->lock_timeout_ms, 2000);
    cr_assert_eq(src.items[0].directives->statement_timeout_ms, 600000);
    cr_assert_not(src.items[1].directives->no_transaction);
    cr_assert_eq(src.items[1].directives->lock_timeout_ms, 0);
    cr_assert_eq(src.items[1].directives->statement_timeout_ms, 0);
    /* A file without directives shares the empty set: nothing allocated per file. */
    cr_assert_eq(src.items[1].directives, &rg_source_no_directives);
    cr_assert_neq(src.items[0].directives, &rg_source_no_directives);
    rg_source_free(&src);
}

Test(source, reads_directives_under_a_utf8_bom)
{
    struct rg_source src;

    write_file("0001_a.up.sql", "\xEF\xBB\xBF-- rollgate:no-transaction\nSELECT 1;\n");
    load_ok(&src);
    cr_assert(src.items[0].directives->no_transaction);
    rg_source_free(&src);
}

Test(source, ignores_directives_after_the_first_statement)
{
    struct rg_source src;

    write_file("0001_a.up.sql", "-- rollgate:lock-timeout=1s\n"
                                "SELECT 1;\n"
                                "-- rollgate:no-transaction\n"
                                "-- rollgate:bogus\n"
                                "SELECT 2;\n");
    load_ok(&src);
    cr_assert_eq(src.items[0].directives->lock_timeout_ms, 1000);
    cr_assert_not(src.items[0].directives->no_transaction);
    rg_source_free(&src);
}

Test(source, parses_down_file_directives)
{
    struct rg_source src;

    write_file("0001_a.up.sql", "-- rollgate:no-transaction\nCREATE INDEX CONCURRENTLY i ON t(c);");
    write_file("0001_a.down.sql", "-- rollgate:no-transaction\nDROP INDEX CONCURRENTLY i;");
    write_file("0002_b.up.sql", "SELECT 1;");
    write_file("0002_b.down.sql", "SELECT 1;");
    load_ok(&src);
    cr_assert(src.items[0].down_directives->no_transaction);
    cr_assert_not(src.items[1].down_directives->no_transaction);
    rg_source_free(&src);
}

Test(source, rejects_an_unknown_directive_with_file_and_line)
{
    write_file("0003_x.up.sql", "-- fine\n-- rollgate:foo\nSELECT 1;\n");
    load_fails(in_tmp("0003_x.up.sql:2: unknown directive \"rollgate:foo\""),
               "(known: no-transaction, lock-timeout=, statement-timeout=, phase=, allow=)");
}

Test(source, reads_the_phase_at_load_before_the_file_is_prepared)
{
    struct rg_source src;
    struct rg_err err = {0};

    write_file("0001_a.up.sql", "-- rollgate:phase=pre\nSELECT 1;\n");
    write_file("0002_b.up.sql", "\xEF\xBB\xBF-- contract step\n-- rollgate:phase=post\n"
                                "-- rollgate:lock-timeout=2s\nSELECT 1;\n");
    write_file("0003_c.up.sql", "SELECT 1;\n-- rollgate:phase=post\n");
    cr_assert_eq(rg_source_load(tmp, &src, &err), 0, "%s", err.msg);
    cr_assert_eq(src.items[0].prepared, 0, "load read the file past its checksum");
    cr_assert_not(src.items[0].post);
    cr_assert(src.items[1].post);
    cr_assert_not(src.items[2].post, "a directive after the first statement counted");
    cr_assert_eq(rg_source_prepare_all(&src, &err), 0, "%s", err.msg);
    cr_assert(src.items[1].directives->post);
    cr_assert_eq(src.items[1].directives->lock_timeout_ms, 2000);
    rg_source_free(&src);
}

Test(source, load_leaves_other_directives_to_prepare_but_checks_the_phase)
{
    struct rg_source src;
    struct rg_err err = {0};

    write_file("0001_a.up.sql", "-- rollgate:bogus\nSELECT 1;\n");
    cr_assert_eq(rg_source_load(tmp, &src, &err), 0, "%s", err.msg);
    cr_assert_eq(rg_source_prepare_all(&src, &err), -1);
    cr_assert(strstr(err.msg, "unknown directive"), "%s", err.msg);
    rg_source_free(&src);
}

Test(source, rejects_an_unknown_phase_with_file_and_line)
{
    write_file("0005_x.up.sql", "-- header\n-- rollgate:phase=later\nSELECT 1;\n");
    load_fails(in_tmp("0005_x.up.sql:2: rollgate:phase: \"later\" is not pre or post"), NULL);
}

Test(source, rejects_a_phase_without_a_value_or_given_twice)
{
    write_file("0005_x.up.sql", "-- rollgate:phase\nSELECT 1;\n");
    load_fails(in_tmp("0005_x.up.sql:1: rollgate:phase needs a value"), NULL);
    write_file("0005_x.up.sql", "-- rollgate:phase=post\n-- rollgate:phase=pre\nSELECT 1;\n");
    load_fails(in_tmp("0005_x.up.sql:2: directive rollgate:phase given twice"), NULL);
}

Test(source, rejects_phase_post_in_a_down_file_or_a_data_script)
{
    write_file("0005_x.up.sql", "SELECT 1;\n");
    write_file("0005_x.down.sql", "-- rollgate:phase=post\nSELECT 1;\n");
    load_fails(in_tmp("0005_x.down.sql: rollgate:phase=post applies to up migrations only"), NULL);
    cr_assert_eq(unlink(in_tmp("0005_x.down.sql")), 0);
    make_dir("data");
    write_file("data/backfill.sql", "-- rollgate:phase=post\nSELECT 1;\n");
    load_fails(in_tmp("data/backfill.sql: rollgate:phase=post applies to up migrations only"),
               NULL);
}

Test(source, rejects_an_unknown_directive_in_a_down_file)
{
    write_file("0003_x.up.sql", "SELECT 1;\n");
    write_file("0003_x.down.sql", "-- rollgate:no-transactions\nSELECT 1;\n");
    load_fails(in_tmp("0003_x.down.sql:1: unknown directive"), NULL);
}

Test(source, rejects_a_bad_duration_with_file_and_line)
{
    write_file("0004_x.up.sql", "\n\n-- rollgate:lock-timeout=2 seconds\nSELECT 1;\n");
    load_fails(in_tmp("0004_x.up.sql:3:"), "bad duration \"2 seconds\"");
}

Test(source, rejects_a_zero_timeout)
{
    write_file("0004_x.up.sql", "-- rollgate:statement-timeout=0\nSELECT 1;\n");
    load_fails(in_tmp("0004_x.up.sql:1:"), "greater than 0");
}

Test(source, rejects_a_timeout_postgres_cannot_take)
{
    write_file("0004_x.up.sql", "-- rollgate:lock-timeout=1000h\nSELECT 1;\n");
    load_fails(in_tmp("0004_x.up.sql:1:"), "more than PostgreSQL accepts");
}

Test(source, rejects_a_timeout_without_value)
{
    write_file("0004_x.up.sql", "-- rollgate:lock-timeout\nSELECT 1;\n");
    load_fails(in_tmp("0004_x.up.sql:1:"), "needs a value");
}

Test(source, rejects_no_transaction_with_a_value)
{
    write_file("0004_x.up.sql", "-- rollgate:no-transaction=true\nSELECT 1;\n");
    load_fails(in_tmp("0004_x.up.sql:1:"), "takes no value");
}

Test(source, rejects_a_directive_given_twice)
{
    write_file("0004_x.up.sql", "-- rollgate:lock-timeout=1s\n-- rollgate:lock-timeout=5s\n");
    load_fails(in_tmp("0004_x.up.sql:2:"), "given twice");
}

Test(source, finds_by_version)
{
    struct rg_source src;
    const struct rg_migration *m;

    write_file("0001_a.up.sql", "SELECT 1;");
    write_file("0003_c.up.sql", "SELECT 3;");
    write_file("0007_g.up.sql", "SELECT 7;");
    write_file("20240101120000_t.up.sql", "SELECT 8;");
    load_ok(&src);
    m = rg_source_find(&src, 7);
    cr_assert_not_null(m);
    cr_assert_str_eq(m->title, "g");
    m = rg_source_find(&src, 1);
    cr_assert_not_null(m);
    cr_assert_str_eq(m->title, "a");
    m = rg_source_find(&src, 20240101120000LL);
    cr_assert_not_null(m);
    cr_assert_str_eq(m->title, "t");
    cr_assert_null(rg_source_find(&src, 0));
    cr_assert_null(rg_source_find(&src, 2));
    cr_assert_null(rg_source_find(&src, 8));
    cr_assert_null(rg_source_find(&src, INT64_MAX));
    rg_source_free(&src);
}

/* Loads tmp without reading past the up files' checksums, as every run starts. */
static void load_names(struct rg_source *src)
{
    struct rg_err err = {0};

    cr_assert_eq(rg_source_load(tmp, src, &err), 0, "load failed: %s", err.msg);
}

/* A down file that cannot be read: a dangling link, as a ConfigMap volume can leave. */
static void dangling(const char *name)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s", tmp, name);
    cr_assert_eq(symlink("/nonexistent/rollgate/target.sql", path), 0);
}

Test(source, load_takes_the_up_checksum_and_reads_no_sql_and_no_down_file)
{
    struct rg_source src;
    char sum[65];

    write_file("0001_a.up.sql", "CREATE TABLE a();");
    dangling("0001_a.down.sql");
    write_file("0002_b.up.sql", "CREATE TABLE b();");
    write_file("0002_b.down.sql", "COPY b FROM STDIN;"); /* refused once read */
    load_names(&src);
    cr_assert_eq(src.n, 2);
    rg_source_checksum("CREATE TABLE a();", strlen("CREATE TABLE a();"), sum);
    cr_assert_str_eq(src.items[0].checksum, sum);
    cr_assert_str_eq(src.items[0].down_path, in_tmp("0001_a.down.sql"));
    for (size_t i = 0; i < 2; i++) {
        cr_assert_eq(src.items[i].prepared, 0);
        cr_assert_null(src.items[i].up_sql);
        cr_assert_null(src.items[i].down_sql);
        cr_assert_null(src.items[i].directives);
        cr_assert_null(src.items[i].down_directives);
    }
    rg_source_free(&src);
}

Test(source, an_unreadable_or_invalid_down_file_stops_only_what_reads_it)
{
    struct rg_source src;
    struct rg_err err = {0};

    write_file("0001_a.up.sql", "CREATE TABLE a();");
    dangling("0001_a.down.sql");
    write_file("0002_b.up.sql", "CREATE TABLE b();");
    write_file("0002_b.down.sql", "-- only a comment\n");
    load_names(&src);
    /* An apply of the up file alone, or a run with nothing to do, is not stopped. */
    cr_assert_eq(rg_source_prepare(&src, 1, RG_SOURCE_UP, &err), 0, "%s", err.msg);
    cr_assert_str_eq(src.items[0].up_sql, "CREATE TABLE a();");
    cr_assert_eq(src.items[0].prepared, RG_SOURCE_UP);
    /* A rollback that needs the down file is. */
    cr_assert_eq(rg_source_prepare(&src, 1, RG_SOURCE_DOWN, &err), -1);
    cr_assert_eq(err.code, RG_EFILES);
    cr_assert(strstr(err.msg, in_tmp("0001_a.down.sql")), "%s", err.msg);
    cr_assert_eq(rg_source_prepare(&src, 2, RG_SOURCE_UP | RG_SOURCE_DOWN, &err), -1);
    cr_assert_eq(err.code, RG_EFILES);
    cr_assert(strstr(err.msg, in_tmp("0002_b.down.sql")), "%s", err.msg);
    cr_assert(strstr(err.msg, "no SQL statement"), "%s", err.msg);
    /* And validate, which reads every file. */
    err = (struct rg_err){0};
    cr_assert_eq(rg_source_prepare_all(&src, &err), -1);
    cr_assert(strstr(err.msg, in_tmp("0001_a.down.sql")), "%s", err.msg);
    rg_source_free(&src);
}

Test(source, an_invalid_up_file_loads_for_its_checksum_but_is_refused_when_read)
{
    struct rg_source src;
    struct rg_err err = {0};

    write_file("0001_a.up.sql", "BEGIN; CREATE TABLE a(); COMMIT; VACUUM;");
    load_names(&src);
    cr_assert_eq(rg_source_prepare(&src, 1, RG_SOURCE_UP, &err), -1);
    cr_assert_eq(err.code, RG_EFILES);
    cr_assert(strstr(err.msg, in_tmp("0001_a.up.sql")), "%s", err.msg);
    cr_assert_null(src.items[0].up_sql);
    cr_assert_eq(src.items[0].prepared, 0);
    rg_source_free(&src);
}

Test(source, prepare_refuses_an_up_file_changed_since_it_was_loaded)
{
    struct rg_source src;
    struct rg_err err = {0};

    write_file("0001_a.up.sql", "CREATE TABLE a();");
    load_names(&src);
    write_file("0001_a.up.sql", "CREATE TABLE b();");
    cr_assert_eq(rg_source_prepare(&src, 1, RG_SOURCE_UP, &err), -1);
    cr_assert_eq(err.code, RG_EFILES);
    cr_assert(strstr(err.msg, in_tmp("0001_a.up.sql")), "%s", err.msg);
    cr_assert(strstr(err.msg, "changed while rollgate was running"), "%s", err.msg);
    cr_assert(strstr(err.msg, src.items[0].checksum), "%s", err.msg);
    cr_assert_null(src.items[0].up_sql);
    rg_source_free(&src);
}

Test(source, prepare_reads_a_file_once)
{
    struct rg_source src;
    struct rg_err err = {0};

    write_file("0001_a.up.sql", "CREATE TABLE a();");
    write_file("0001_a.down.sql", "DROP TABLE a;");
    load_names(&src);
    cr_assert_eq(rg_source_prepare(&src, 1, RG_SOURCE_UP | RG_SOURCE_DOWN, &err), 0, "%s", err.msg);
    /* Gone now: a second prepare (the leader planning again) keeps what was read. */
    remove_file("0001_a.up.sql");
    remove_file("0001_a.down.sql");
    cr_assert_eq(rg_source_prepare(&src, 1, RG_SOURCE_UP | RG_SOURCE_DOWN, &err), 0, "%s", err.msg);
    cr_assert_str_eq(src.items[0].down_sql, "DROP TABLE a;");
    cr_assert_eq(rg_source_prepare(&src, 2, RG_SOURCE_UP, &err), -1);
    cr_assert_eq(err.code, RG_EINTERNAL);
    rg_source_free(&src);
}

Test(source, free_accepts_null_and_a_zeroed_source)
{
    struct rg_source src = {0};

    rg_source_free(NULL);
    rg_source_free(&src);
    rg_source_free(&src);
    cr_assert_null(src.items);
    cr_assert_null(rg_source_find(NULL, 1));
}

/* Flyway names */

Test(source, loads_flyway_pairs_sorted_among_golang_names)
{
    struct rg_source src;

    write_file("V10__ten.sql", "SELECT 10;");
    write_file("0003_three.up.sql", "SELECT 3;");
    write_file("V2__two.sql", "abc");
    write_file("U2__two.sql", "DROP TABLE two;");
    write_file("0001_one.up.sql", "SELECT 1;");
    write_file("0001_one.down.sql", "SELECT -1;");
    write_file("V0020__padded.sql", "SELECT 20;");
    load_ok(&src);
    cr_assert_eq(src.n, 5);
    cr_assert_eq(src.items[0].version, 1);
    cr_assert_eq(src.items[1].version, 2);
    cr_assert_eq(src.items[2].version, 3);
    cr_assert_eq(src.items[3].version, 10);
    cr_assert_eq(src.items[4].version, 20);
    cr_assert_str_eq(src.items[1].title, "two");
    cr_assert_str_eq(src.items[1].up_name, "V2__two.sql");
    cr_assert_str_eq(src.items[1].up_path, in_tmp("V2__two.sql"));
    cr_assert_str_eq(src.items[1].up_sql, "abc");
    cr_assert_str_eq(src.items[1].checksum,
                     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cr_assert_str_eq(src.items[1].down_path, in_tmp("U2__two.sql"));
    cr_assert_str_eq(src.items[1].down_sql, "DROP TABLE two;");
    cr_assert_str_eq(src.items[0].down_sql, "SELECT -1;");
    cr_assert_null(src.items[3].down_sql);
    cr_assert_str_eq(src.items[3].title, "ten");
    cr_assert_str_eq(src.items[4].title, "padded");
    cr_assert_eq(src.nrepeatable, 0);
    rg_source_free(&src);
}

Test(source, parses_flyway_file_directives_and_unwraps_them)
{
    struct rg_source src;

    write_file("V1__idx.sql", "-- rollgate:no-transaction\nCREATE INDEX CONCURRENTLY i ON t(c);");
    write_file("U1__idx.sql", "-- rollgate:lock-timeout=3s\nBEGIN;\nDROP INDEX i;\nCOMMIT;\n");
    load_ok(&src);
    cr_assert(src.items[0].directives->no_transaction);
    cr_assert_eq(src.items[0].down_directives->lock_timeout_ms, 3000);
    cr_assert_str_eq(src.items[0].down_sql,
                     "-- rollgate:lock-timeout=3s\n      \nDROP INDEX i;\n       \n");
    rg_source_free(&src);
}

Test(source, rejects_one_version_as_golang_up_and_flyway_up)
{
    write_file("0001_a.up.sql", "SELECT 1;");
    write_file("V1__a.sql", "SELECT 1;");
    load_fails(in_tmp("0001_a.up.sql"), in_tmp("V1__a.sql"));
    load_fails("use one naming style per version", NULL);
}

Test(source, rejects_a_golang_up_with_a_flyway_down)
{
    write_file("0001_a.up.sql", "SELECT 1;");
    write_file("U1__a.sql", "SELECT 1;");
    load_fails(in_tmp("0001_a.up.sql"), in_tmp("U1__a.sql"));
    load_fails("use one naming style per version", NULL);
}

Test(source, rejects_a_flyway_up_with_a_golang_down)
{
    write_file("V1__a.sql", "SELECT 1;");
    write_file("1_a.down.sql", "SELECT 1;");
    load_fails(in_tmp("1_a.down.sql"), in_tmp("V1__a.sql"));
    load_fails("use one naming style per version", NULL);
}

Test(source, rejects_a_flyway_down_next_to_a_golang_pair)
{
    write_file("0001_a.up.sql", "SELECT 1;");
    write_file("0001_a.down.sql", "SELECT 1;");
    write_file("U1__a.sql", "SELECT 1;");
    load_fails(in_tmp("0001_a.up.sql"), in_tmp("U1__a.sql"));
    load_fails("use one naming style per version", NULL);
}

Test(source, rejects_a_dotted_flyway_version)
{
    write_file("V1.1__x.sql", "SELECT 1;");
    load_fails(in_tmp("V1.1__x.sql"), "versions must be integers");
    load_fails("version 1.1 is not an integer", NULL);
    remove_file("V1.1__x.sql");
    write_file("V1_1__x.sql", "SELECT 1;");
    load_fails(in_tmp("V1_1__x.sql"), "versions must be integers");
    remove_file("V1_1__x.sql");
    write_file("U2.5__x.sql", "SELECT 1;");
    load_fails(in_tmp("U2.5__x.sql"), "versions must be integers");
}

Test(source, rejects_malformed_flyway_names)
{
    static const struct {
        const char *name, *frag;
    } cases[] = {
        {"V0__zero.sql", "greater than 0"},
        {"V9223372036854775808__big.sql", "out of range"},
        {"V__x.sql", "not a migration file name (expected V<version>__title.sql"},
        {"V-1__x.sql", "not a migration file name"},
        {"V1_x.sql", "two '_' follow the version"},
        {"V1.sql", "no title"},
        {"V1__.sql", "no title"},
        {"V1__add.users.sql", "title may hold only"},
        {"V1__a b.sql", "title may hold only"},
        {"v1__lower.sql", "not a migration file name (expected NNNN_title.up.sql"},
        {"B1__baseline.sql", "R__title.sql"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_file(cases[i].name, "SELECT 1;");
        load_fails(in_tmp(cases[i].name), cases[i].frag);
        remove_file(cases[i].name);
    }
}

Test(source, accepts_the_largest_int64_flyway_version)
{
    struct rg_source src;

    write_file("V9223372036854775807__max.sql", "SELECT 1;");
    load_ok(&src);
    cr_assert_eq(src.items[0].version, INT64_MAX);
    rg_source_free(&src);
}

Test(source, rejects_a_flyway_down_without_up)
{
    write_file("V1__a.sql", "SELECT 1;");
    write_file("U03__b.sql", "SELECT 1;");
    load_fails(in_tmp("U03__b.sql"), "without an up file (expected V03__b.sql)");
}

Test(source, rejects_two_flyway_ups_for_one_version)
{
    write_file("V1__a.sql", "SELECT 1;");
    write_file("V01__b.sql", "SELECT 1;");
    load_fails(in_tmp("V01__b.sql"), in_tmp("V1__a.sql"));
    load_fails("two up migrations for version 1", NULL);
}

Test(source, rejects_flyway_up_and_down_with_different_titles)
{
    write_file("V1__a.sql", "SELECT 1;");
    write_file("U1__b.sql", "SELECT 1;");
    load_fails(in_tmp("V1__a.sql"), in_tmp("U1__b.sql"));
    load_fails("different titles", NULL);
}

/* Repeatable migrations */

Test(source, loads_repeatables_by_title_with_checksum)
{
    struct rg_source src;

    write_file("R__views.sql", "abc");
    write_file("R__a-b.sql", "SELECT 2;");
    write_file("R__a.sql", "SELECT 1;");
    write_file("0001_t.up.sql", "SELECT 0;");
    load_ok(&src);
    cr_assert_eq(src.n, 1);
    cr_assert_eq(src.nrepeatable, 3);
    /* By name, not file name: R__a-b.sql sorts before R__a.sql. */
    cr_assert_str_eq(src.repeatable[0].name, "a");
    cr_assert_str_eq(src.repeatable[1].name, "a-b");
    cr_assert_str_eq(src.repeatable[2].name, "views");
    cr_assert_str_eq(src.repeatable[0].path, in_tmp("R__a.sql"));
    cr_assert_str_eq(src.repeatable[0].sql, "SELECT 1;");
    cr_assert_eq(src.repeatable[0].len, strlen("SELECT 1;"));
    cr_assert_str_eq(src.repeatable[2].checksum,
                     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cr_assert_eq(src.ndata, 0);
    rg_source_free(&src);
}

Test(source, rejects_bad_repeatable_names)
{
    static const struct {
        const char *name, *frag;
    } cases[] = {
        {"R__my.view.sql", "title may hold only"},
        {"R__my view.sql", "title may hold only"},
        {"R__.sql", "no title"},
        {"R_x.sql", "not a migration file name (expected R__title.sql)"},
        {"R1__x.sql", "not a migration file name"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_file(cases[i].name, "SELECT 1;");
        load_fails(in_tmp(cases[i].name), cases[i].frag);
        remove_file(cases[i].name);
    }
}

Test(source, parses_repeatable_directives_and_unwraps_it)
{
    static const char a[] =
        "-- rollgate:statement-timeout=1m\nBEGIN;\nCREATE VIEW v AS SELECT 1;\nEND;";
    struct rg_source src;
    char written[65];

    write_file("R__a.sql", a);
    write_file("R__b.sql", "-- rollgate:no-transaction\nBEGIN;\nSELECT 1;\nCOMMIT;");
    load_ok(&src);
    cr_assert_eq(src.repeatable[0].directives.statement_timeout_ms, 60000);
    cr_assert_not(src.repeatable[0].directives.no_transaction);
    cr_assert_str_eq(src.repeatable[0].sql,
                     "-- rollgate:statement-timeout=1m\n      \nCREATE VIEW v AS SELECT 1;\n    ");
    /* The checksum is of the file as written, not as blanked. */
    rg_source_checksum(a, strlen(a), written);
    cr_assert_str_eq(src.repeatable[0].checksum, written);
    /* A no-transaction file is run as written. */
    cr_assert(src.repeatable[1].directives.no_transaction);
    cr_assert_str_eq(src.repeatable[1].sql,
                     "-- rollgate:no-transaction\nBEGIN;\nSELECT 1;\nCOMMIT;");
    rg_source_free(&src);
}

Test(source, rejects_a_bad_directive_in_a_repeatable)
{
    write_file("R__v.sql", "-- rollgate:lock-timeout=soon\nSELECT 1;");
    load_fails(in_tmp("R__v.sql:1:"), "bad duration");
}

/* Data migrations */

Test(source, loads_data_files_in_byte_order)
{
    struct rg_source src;

    make_dir("data");
    write_file("data/b.sql", "SELECT 'b';");
    write_file("data/B.sql", "SELECT 'B';");
    write_file("data/a.sql", "abc");
    write_file("data/9_x.sql", "SELECT 9;");
    write_file("data/10_x.sql", "SELECT 10;");
    write_file("data/2024.01-seed.sql", "SELECT 2024;");
    write_file("0001_t.up.sql", "SELECT 0;");
    load_ok(&src);
    cr_assert_eq(src.n, 1);
    cr_assert_eq(src.nrepeatable, 0);
    cr_assert_eq(src.ndata, 6);
    cr_assert_str_eq(src.data[0].name, "10_x.sql");
    cr_assert_str_eq(src.data[1].name, "2024.01-seed.sql");
    cr_assert_str_eq(src.data[2].name, "9_x.sql");
    cr_assert_str_eq(src.data[3].name, "B.sql");
    cr_assert_str_eq(src.data[4].name, "a.sql");
    cr_assert_str_eq(src.data[5].name, "b.sql");
    cr_assert_str_eq(src.data[4].path, in_tmp("data/a.sql"));
    cr_assert_str_eq(src.data[4].sql, "abc");
    cr_assert_eq(src.data[4].len, 3);
    cr_assert_str_eq(src.data[4].checksum,
                     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cr_assert_str_eq(src.data[3].sql, "SELECT 'B';");
    rg_source_free(&src);
}

Test(source, data_skips_other_files_dotfiles_and_subdirectories)
{
    struct rg_source src;

    make_dir("data");
    make_dir("data/nested");
    make_dir("data/dir.sql");
    make_dir("data/..2024_01_01");
    write_file("data/nested/deep.sql", "SELECT 1;");
    write_file("data/dir.sql/x.sql", "SELECT 1;");
    write_file("data/README.md", "docs");
    write_file("data/seed.sql.bak", "x");
    write_file("data/.hidden.sql", "x");
    write_file("data/..2024_01_01/seed.sql", "SELECT 1;");
    write_file("data/seed.sql", "SELECT 1;");
    load_ok(&src);
    cr_assert_eq(src.ndata, 1);
    cr_assert_str_eq(src.data[0].name, "seed.sql");
    rg_source_free(&src);
}

Test(source, data_follows_configmap_style_links)
{
    struct rg_source src;
    char path[4096];

    make_dir("..real");
    write_file("..real/seed.sql", "SELECT 1;");
    snprintf(path, sizeof(path), "%s/data", tmp);
    cr_assert_eq(symlink("..real", path), 0);
    load_ok(&src);
    cr_assert_eq(src.ndata, 1);
    cr_assert_str_eq(src.data[0].path, in_tmp("data/seed.sql"));
    rg_source_free(&src);
}

Test(source, missing_or_empty_data_directory_is_fine)
{
    struct rg_source src;

    write_file("0001_t.up.sql", "SELECT 0;");
    load_ok(&src);
    cr_assert_eq(src.ndata, 0);
    cr_assert_eq(src.n, 1);
    rg_source_free(&src);
    make_dir("data");
    load_ok(&src);
    cr_assert_eq(src.ndata, 0);
    rg_source_free(&src);
}

Test(source, rejects_a_data_path_that_is_not_a_directory)
{
    write_file("data", "x");
    load_fails(in_tmp("data"), "Not a directory");
}

Test(source, rejects_a_dangling_data_link)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/data", tmp);
    cr_assert_eq(symlink("/nonexistent/rollgate/data", path), 0);
    load_fails(in_tmp("data"), "cannot open data migrations directory");
}

Test(source, rejects_a_bad_data_name)
{
    static const char *const bad[] = {"data/my seed.sql", "data/a+b.sql", "data/seed\xC3\xA9.sql"};

    make_dir("data");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(bad[i], "SELECT 1;");
        load_fails(in_tmp(bad[i]), "not a data migration name");
        remove_file(bad[i]);
    }
}

Test(source, rejects_a_dangling_link_in_data)
{
    char path[4096];

    make_dir("data");
    snprintf(path, sizeof(path), "%s/data/seed.sql", tmp);
    cr_assert_eq(symlink("/nonexistent/rollgate/seed.sql", path), 0);
    load_fails(in_tmp("data/seed.sql"), "No such file or directory");
}

Test(source, parses_data_directives_and_blanks_its_wrapper)
{
    struct rg_source src;

    make_dir("data");
    write_file("data/01_seed.sql", "-- Seed rows.\nBEGIN;\nINSERT INTO t VALUES (1) ON CONFLICT DO "
                                   "NOTHING;\nCOMMIT;\n");
    write_file("data/02_idx.sql", "-- rollgate:no-transaction\n"
                                  "-- rollgate:lock-timeout=500ms\n"
                                  "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (c);\n");
    load_ok(&src);
    cr_assert_eq(src.ndata, 2);
    cr_assert_str_eq(src.data[0].sql, "-- Seed rows.\n      \nINSERT INTO t VALUES (1) ON CONFLICT "
                                      "DO NOTHING;\n       \n");
    cr_assert_not(src.data[0].directives.no_transaction);
    cr_assert(src.data[1].directives.no_transaction);
    cr_assert_eq(src.data[1].directives.lock_timeout_ms, 500);
    rg_source_free(&src);
}

Test(source, rejects_bad_directives_and_transaction_control_in_data)
{
    make_dir("data");
    write_file("data/a.sql", "-- rollgate:nope\nSELECT 1;");
    load_fails(in_tmp("data/a.sql:1: unknown directive"), NULL);
    remove_file("data/a.sql");
    write_file("data/a.sql", "SELECT 1;\nCOMMIT;\nSELECT 2;");
    load_fails(in_tmp("data/a.sql:2: COMMIT"), NULL);
    remove_file("data/a.sql");
    write_bytes("data/a.sql", "SELECT\0 1;", 10);
    load_fails(in_tmp("data/a.sql:1: file contains a NUL byte"), NULL);
}

Test(source, rejects_a_data_file_over_the_size_cap)
{
    char path[4096];
    int fd;

    make_dir("data");
    snprintf(path, sizeof(path), "%s/data/dump.sql", tmp);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, RG_SOURCE_MAX_FILE + 1), 0);
    close(fd);
    load_fails(in_tmp("data/dump.sql"), "16777217 bytes");
}

Test(source, parses_directives_of_sql_from_elsewhere)
{
    struct rg_directives d;
    struct rg_err err = {0};
    const char *ok = "-- rollgate:no-transaction\n-- rollgate:lock-timeout=2s\nDROP INDEX i;";
    const char *bad = "\n-- rollgate:lock-timeout=never\nSELECT 1;";

    memset(&d, 0xAB, sizeof(d));
    cr_assert_eq(rg_source_directives("history of version 3", ok, strlen(ok), &d, &err), 0, "%s",
                 err.msg);
    cr_assert(d.no_transaction);
    cr_assert_eq(d.lock_timeout_ms, 2000);
    cr_assert_eq(d.statement_timeout_ms, 0);
    cr_assert_eq(rg_source_directives("history of version 3", bad, strlen(bad), &d, &err), -1);
    cr_assert_eq(err.code, RG_EFILES);
    cr_assert_not_null(
        strstr(err.msg, "history of version 3:2: rollgate:lock-timeout: bad duration"), "%s",
        err.msg);
}

/* A run's lint of the files it applies: taken once per file, from the read that checked
 * it, and the same findings as a lint of the SQL read; a file read before is linted from
 * its SQL in memory, also once. */
Test(source, prepare_lint_gives_each_up_files_findings_once)
{
    struct rg_source src;
    struct rg_err err = {0};
    struct rg_lint l = {0}, again = {0};
    bool linted = false;

    write_file("0001_a.up.sql", "BEGIN;\nCREATE TABLE a (id int);\nCREATE INDEX i ON other (id);\n"
                                "COMMIT;\n");
    write_file("0002_b.up.sql", "CREATE TABLE b (at timestamp);\n");
    load_names(&src);
    cr_assert_eq(rg_source_prepare_lint(&src, 1, RG_SOURCE_UP, &l, &linted, &err), 0, "%s",
                 err.msg);
    cr_assert(linted);
    rg_lint_sql(src.items[0].up_sql, src.items[0].up_len, src.items[0].directives, &again);
    cr_assert_eq(l.n, again.n);
    cr_assert_gt(l.n, 1, "prefer-bigint-over-int and require-concurrent-index-creation");
    for (size_t i = 0; i < l.n; i++) {
        cr_assert_eq(l.items[i].rule, again.items[i].rule);
        cr_assert_eq(l.items[i].stmt, again.items[i].stmt);
        cr_assert_eq(l.items[i].line, again.items[i].line);
        cr_assert_eq(l.items[i].column, again.items[i].column);
    }
    cr_assert_eq(rg_source_prepare_lint(&src, 1, RG_SOURCE_UP | RG_SOURCE_DOWN, &l, &linted, &err),
                 0, "%s", err.msg);
    cr_assert_not(linted, "linted twice");

    cr_assert_eq(rg_source_prepare(&src, 2, RG_SOURCE_UP, &err), 0, "%s", err.msg);
    cr_assert_eq(rg_source_prepare_lint(&src, 2, RG_SOURCE_UP, &l, &linted, &err), 0, "%s",
                 err.msg);
    cr_assert(linted, "read before, linted now");
    cr_assert_eq(l.n, 1);
    cr_assert_eq(l.items[0].rule, RG_LINT_PREFER_TIMESTAMPTZ);
    cr_assert_eq(rg_source_prepare_lint(&src, 2, RG_SOURCE_UP, &l, &linted, &err), 0, "%s",
                 err.msg);
    cr_assert_not(linted);
    rg_lint_free(&l);
    rg_lint_free(&again);
    rg_source_free(&src);
}

#!/usr/bin/env bash
# rollgate lint vs squawk (npm squawk-cli, pinned in bench/lint/package-lock.json) over the
# same migration directories: a generated corpus of hazardous and safe statements, and the
# PostgreSQL migrations graphile-worker ships in its npm package (pinned there too). Prints
# a Markdown section (findings per rule both tools have, the files they disagree on, the
# time for each) to stdout; bench/RESULTS.md's lint section was written from it.
#
#   bench/lint-vs-squawk.sh [RUNS]     RUNS: timed runs per tool and corpus (default 20)
#
# Needs npm (the registry) and python3; builds rollgate in Release mode into build-bench/
# unless ROLLGATE_BIN names a binary. No database.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-20}
work=$root/bench/work/lint
npmdir=$root/bench/lint
rm -rf "$work"
mkdir -p "$work"

# squawk-cli's own package is a node wrapper; the binary comes in the optional platform
# package @squawk-cli/linux-x64 (no postinstall download). npm ci installs exactly the lock.
[ -x "$npmdir/node_modules/@squawk-cli/linux-x64/bin/squawk" ] ||
    npm ci --prefix "$npmdir" --no-audit --no-fund --ignore-scripts >&2
squawk=$npmdir/node_modules/@squawk-cli/linux-x64/bin/squawk

if [ -n "${ROLLGATE_BIN:-}" ]; then
    rollgate=$ROLLGATE_BIN
else
    cmake -S "$root" -B "$root/build-bench" -DCMAKE_BUILD_TYPE=Release -DRG_TESTS=OFF >/dev/null
    cmake --build "$root/build-bench" -j2 >/dev/null
    rollgate=$root/build-bench/rollgate
fi

# graphile-worker runs each of its migrations in a transaction, with :GRAPHILE_WORKER_SCHEMA
# replaced by the schema name (a psql-style variable neither parser reads).
gw=$work/graphile-worker
mkdir -p "$gw"
for f in "$npmdir"/node_modules/graphile-worker/sql/*.sql; do
    n=$(basename "$f" .sql)
    sed 's/:GRAPHILE_WORKER_SCHEMA/graphile_worker/g' "$f" >"$gw/${n}_graphile_worker.up.sql"
done

python3 - "$work/corpus" <<'EOF'
# The corpus: one file per case, each about an existing table (none is created in the same
# file unless the case says so). "n" cases are no-transaction migrations.
import os, sys
d = sys.argv[1]
os.makedirs(d)
cases = [
    # hazardous
    ("t", "CREATE INDEX orders_customer ON orders (customer_id);"),
    ("t", "CREATE UNIQUE INDEX orders_ref ON orders (ref);"),
    ("t", "CREATE INDEX IF NOT EXISTS orders_created ON orders (created_at);"),
    ("t", "CREATE INDEX orders_lower_email ON orders (lower(email)) WHERE deleted_at IS NULL;"),
    ("t", "DROP INDEX orders_customer;"),
    ("t", "DROP INDEX IF EXISTS orders_ref;"),
    ("t", "CREATE INDEX CONCURRENTLY orders_status ON orders (status);"),
    ("t", "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_s2 ON orders (status);"),
    ("t", "ALTER TABLE orders ALTER COLUMN status SET NOT NULL;"),
    ("t", "ALTER TABLE users ALTER COLUMN email SET NOT NULL;"),
    ("t", "ALTER TABLE orders ADD COLUMN paid boolean NOT NULL;"),
    ("t", "ALTER TABLE orders ADD COLUMN region text NOT NULL;"),
    ("t", "ALTER TABLE orders ADD COLUMN uid uuid DEFAULT gen_random_uuid();"),
    ("t", "ALTER TABLE orders ADD COLUMN r float8 DEFAULT random();"),
    ("t", "ALTER TABLE orders ADD COLUMN seen timestamptz DEFAULT clock_timestamp();"),
    ("t", "ALTER TABLE orders ADD COLUMN total2 numeric GENERATED ALWAYS AS (total * 2) STORED;"),
    ("t", "ALTER TABLE orders ADD COLUMN seq bigserial;"),
    ("t", "ALTER TABLE orders ADD PRIMARY KEY (id);"),
    ("t", "ALTER TABLE orders ADD CONSTRAINT orders_pkey PRIMARY KEY (id);"),
    ("t", "ALTER TABLE orders ADD COLUMN nid bigint PRIMARY KEY;"),
    ("t", "ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,2);"),
    ("t", "ALTER TABLE orders ALTER COLUMN id TYPE bigint;"),
    ("t", "ALTER TABLE users ALTER COLUMN name TYPE text;"),
    ("t", "ALTER TABLE orders ADD CONSTRAINT total_positive CHECK (total > 0);"),
    ("t", "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);"),
    ("t", "ALTER TABLE orders ADD COLUMN shop_id bigint REFERENCES shops (id);"),
    ("t", "ALTER TABLE orders ADD CONSTRAINT orders_ref_key UNIQUE (ref);"),
    ("t", "ALTER TABLE orders ADD COLUMN code text UNIQUE;"),
    ("t", "ALTER TABLE orders RENAME COLUMN total TO amount;"),
    ("t", "ALTER TABLE users RENAME COLUMN name TO full_name;"),
    ("t", "ALTER TABLE orders RENAME TO purchases;"),
    ("t", "ALTER TABLE users RENAME TO accounts;"),
    ("t", "ALTER TABLE orders DROP COLUMN legacy;"),
    ("t", "ALTER TABLE orders DROP COLUMN IF EXISTS legacy2;"),
    ("t", "DROP TABLE old_orders;"),
    ("t", "DROP TABLE IF EXISTS old_users;"),
    ("n", "DROP DATABASE scratch;"),
    ("t", "ALTER TABLE orders ALTER COLUMN note DROP NOT NULL;"),
    ("t", "TRUNCATE orders CASCADE;"),
    ("t", "CREATE TABLE t_int (id int PRIMARY KEY, n integer);"),
    ("t", "CREATE TABLE t_int4 (id int4);"),
    ("t", "ALTER TABLE orders ADD COLUMN qty integer;"),
    ("t", "CREATE TABLE t_small (id smallint, b int2);"),
    ("t", "CREATE TABLE t_serial (id serial PRIMARY KEY);"),
    ("t", "CREATE TABLE t_bigserial (id bigserial PRIMARY KEY);"),
    ("t", "CREATE TABLE t_smallserial (id smallserial);"),
    ("t", "CREATE TABLE t_ts (id bigint, at timestamp);"),
    ("t", "CREATE TABLE t_ts2 (id bigint, at timestamp without time zone);"),
    ("t", "ALTER TABLE orders ADD COLUMN shipped_at timestamp;"),
    ("t", "CREATE TABLE t_vc (id bigint, name varchar(100));"),
    ("t", "CREATE TABLE t_cv (id bigint, name character varying(50));"),
    ("t", "ALTER TABLE orders ADD COLUMN sku varchar(32);"),
    ("t", "CREATE TABLE t_char (id bigint, cc char(2));"),
    ("t", "CREATE TABLE t_character (id bigint, cc character(3));"),
    ("n", "CREATE INDEX CONCURRENTLY orders_n1 ON orders (a);"),
    ("n", "DROP INDEX CONCURRENTLY orders_n2;"),
    ("n", "ALTER TABLE orders ADD COLUMN n3 text;"),
    ("n", "CREATE TABLE t_n4 (id bigint);"),
    ("n", "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_n5 ON orders (a);\n"
          "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_n6 ON orders (b);"),
    ("t", "ALTER TABLE orders ALTER COLUMN total SET DATA TYPE bigint, ALTER COLUMN ref SET NOT NULL;"),
    ("t", "ALTER TABLE orders ADD COLUMN a1 int NOT NULL, ADD COLUMN a2 text DEFAULT md5(random()::text);"),
    ("t", "ALTER TABLE users ADD CONSTRAINT users_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id) ON DELETE CASCADE;"),
    ("t", "ALTER TABLE users ADD CONSTRAINT users_age CHECK (age >= 0), ADD CONSTRAINT users_email_key UNIQUE (email);"),
    ("t", "CREATE TABLE t_mixed (id serial, at timestamp, name varchar(10), c char(1));"),
    ("t", "ALTER TABLE public.orders DROP COLUMN a, DROP COLUMN b;"),
    ("t", "DROP TABLE a_old, b_old;"),
    ("t", "ALTER TABLE orders ADD COLUMN k2 bigint GENERATED ALWAYS AS IDENTITY;"),
    ("t", "CREATE INDEX orders_gin ON orders USING gin (tags);"),
    ("t", "ALTER TABLE orders ADD COLUMN token text NOT NULL DEFAULT gen_random_uuid()::text;"),
    ("t", "ALTER TABLE orders ALTER COLUMN ref TYPE varchar(64);"),
    # safe
    ("n", "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer ON orders (customer_id);"),
    ("n", "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS orders_ref ON orders (ref);"),
    ("n", "DROP INDEX CONCURRENTLY IF EXISTS orders_customer;"),
    ("t", "ALTER TABLE orders ADD CONSTRAINT status_not_null CHECK (status IS NOT NULL) NOT VALID;"),
    ("t", "ALTER TABLE orders VALIDATE CONSTRAINT status_not_null;"),
    ("t", "ALTER TABLE orders ADD COLUMN paid boolean NOT NULL DEFAULT false;"),
    ("t", "ALTER TABLE orders ADD COLUMN region text;"),
    ("t", "ALTER TABLE orders ADD COLUMN note text DEFAULT '';"),
    ("t", "ALTER TABLE orders ADD COLUMN created timestamptz DEFAULT now();"),
    ("t", "ALTER TABLE orders ADD COLUMN meta jsonb NOT NULL DEFAULT '{}'::jsonb;"),
    ("t", "ALTER TABLE orders ADD COLUMN n bigint DEFAULT 0;"),
    ("t", "ALTER TABLE orders ADD CONSTRAINT orders_pkey PRIMARY KEY USING INDEX orders_id_idx;"),
    ("t", "ALTER TABLE orders ADD CONSTRAINT orders_ref_key UNIQUE USING INDEX orders_ref;"),
    ("t", "ALTER TABLE orders ADD CONSTRAINT total_positive CHECK (total > 0) NOT VALID;"),
    ("t", "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;"),
    ("t", "ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;"),
    ("t", "ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'new';"),
    ("t", "ALTER TABLE orders ALTER COLUMN status DROP DEFAULT;"),
    ("t", "CREATE TABLE t_ok (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text NOT NULL, at timestamptz NOT NULL DEFAULT now());"),
    ("t", "CREATE TABLE t_ok2 (id bigint PRIMARY KEY, v varchar, ref uuid);"),
    ("t", "CREATE TABLE t_new (id bigint);\nCREATE INDEX t_new_id ON t_new (id);"),
    ("t", "CREATE TABLE t_new2 (id bigint, u bigint);\nALTER TABLE t_new2 ADD CONSTRAINT t_new2_u FOREIGN KEY (u) REFERENCES users (id);"),
    ("t", "CREATE TABLE t_new3 (id bigint);\nALTER TABLE t_new3 ALTER COLUMN id SET NOT NULL;"),
    ("t", "CREATE TABLE t_new4 (id bigint);\nALTER TABLE t_new4 ADD CONSTRAINT t_new4_u UNIQUE (id);"),
    ("t", "CREATE TABLE t_new5 (id bigint);\nALTER TABLE t_new5 ALTER COLUMN id TYPE numeric;"),
    ("t", "INSERT INTO settings (k, v) VALUES ('a', 'b');"),
    ("t", "UPDATE orders SET status = 'new' WHERE status IS NULL AND id < 1000;"),
    ("t", "CREATE VIEW active_orders AS SELECT * FROM orders WHERE deleted_at IS NULL;"),
    ("t", "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;"),
    ("t", "COMMENT ON TABLE orders IS 'orders';"),
    ("t", "GRANT SELECT ON orders TO reporting;"),
    ("t", "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');"),
    ("t", "ALTER TYPE mood ADD VALUE 'ecstatic' AFTER 'happy';"),
    ("t", "CREATE SCHEMA IF NOT EXISTS app;"),
    ("t", "CREATE EXTENSION IF NOT EXISTS pgcrypto;"),
    ("t", "ALTER TABLE orders SET (autovacuum_vacuum_scale_factor = 0.01);"),
    ("t", "TRUNCATE staging_orders;"),
    ("t", "ALTER TABLE orders DROP CONSTRAINT IF EXISTS old_check;"),
    ("t", "CREATE SEQUENCE IF NOT EXISTS order_numbers;"),
    ("t", "ALTER TABLE orders ALTER COLUMN n SET STATISTICS 500;"),
    ("t", "ALTER INDEX orders_customer RENAME TO orders_customer_idx;"),
    ("t", "DROP VIEW IF EXISTS old_view;"),
    ("t", "DROP FUNCTION IF EXISTS old_fn();"),
    ("t", "ANALYZE orders;"),
]
stmts = 0
for i, (mode, sql) in enumerate(cases, 1):
    head = "-- rollgate:no-transaction\n" if mode == "n" else ""
    with open(os.path.join(d, "%04d_case.up.sql" % i), "w") as f:
        f.write(head + sql + "\n")
    stmts += sql.count(";")
print("corpus: %d files, %d statements" % (len(cases), stmts), file=sys.stderr)
EOF

# squawk judges a file as inside a transaction only with --assume-in-transaction; rollgate
# knows from the file (no -- rollgate:no-transaction: it runs in one). Each file is given
# to squawk the way rollgate runs it.
squawk_json() { # DIR OUT
    local tx nt
    tx=$(grep -L -- '-- rollgate:no-transaction' "$1"/*.sql || true)
    nt=$(grep -l -- '-- rollgate:no-transaction' "$1"/*.sql || true)
    {
        # shellcheck disable=SC2086
        [ -z "$tx" ] || "$squawk" --reporter json --assume-in-transaction $tx || true
        echo
        # shellcheck disable=SC2086
        [ -z "$nt" ] || "$squawk" --reporter json $nt || true
    } >"$2"
}

for corpus in corpus graphile-worker; do
    squawk_json "$work/$corpus" "$work/$corpus.squawk.json"
    "$rollgate" lint --dir "$work/$corpus" --output json >"$work/$corpus.rollgate.json" 2>/dev/null || true
done

python3 - "$work" "$squawk" "$rollgate" "$runs" <<'EOF'
import json, os, resource, subprocess, sys, time, glob
work, squawk, rollgate, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
shared = ["require-concurrent-index-creation", "require-concurrent-index-deletion",
          "ban-concurrent-index-creation-in-transaction", "adding-not-nullable-field",
          "adding-required-field", "adding-field-with-default", "adding-serial-primary-key-field",
          "changing-column-type", "constraint-missing-not-valid", "adding-foreign-key-constraint",
          "disallowed-unique-constraint", "renaming-column", "renaming-table", "ban-drop-column",
          "ban-drop-table", "ban-drop-database", "ban-drop-not-null", "ban-truncate-cascade",
          "prefer-bigint-over-int", "prefer-bigint-over-smallint", "prefer-identity",
          "prefer-timestamptz", "prefer-text-field", "ban-char-field", "prefer-robust-stmts"]

# squawk 2 spells one rule differently; rollgate accepts that name in allow too.
renamed = {"prefer-timestamp-tz": "prefer-timestamptz"}

# Findings as (file, rule, line), a list: one statement may hold several of one rule.
def squawk_findings(path):
    out = []
    for chunk in open(path).read().split("\n"):
        chunk = chunk.strip()
        if chunk:
            for v in json.loads(chunk):
                rule = renamed.get(v["rule_name"], v["rule_name"])
                out.append((os.path.basename(v["file"]), rule, v["line"] + 1))
    return out

def rollgate_findings(path):
    return [(os.path.basename(f["file"]), f["rule"], f["line"])
            for f in json.load(open(path))["findings"]]

def by_file(fs, rule):
    return {f for (f, r, _) in fs if r == rule}

# Medians of wall time and of CPU time (user + system, from the children's rusage): on a
# shared machine the CPU time is the steadier of the two.
def timed(argv_list):
    walls, cpus = [], []
    for _ in range(runs):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        for argv in argv_list:
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
    walls.sort()
    cpus.sort()
    return walls[len(walls) // 2] * 1000, cpus[len(cpus) // 2] * 1000

for corpus in ["corpus", "graphile-worker"]:
    d = os.path.join(work, corpus)
    files = sorted(glob.glob(d + "/*.sql"))
    sq = squawk_findings(os.path.join(work, corpus + ".squawk.json"))
    rg = rollgate_findings(os.path.join(work, corpus + ".rollgate.json"))
    print("### %s (%d files)\n" % (corpus, len(files)))
    print("| rule | squawk | rollgate | files both | squawk only | rollgate only |")
    print("|---|---|---|---|---|---|")
    for rule in shared:
        s, r = by_file(sq, rule), by_file(rg, rule)
        ns = sum(1 for x in sq if x[1] == rule)
        nr = sum(1 for x in rg if x[1] == rule)
        if ns == 0 and nr == 0:
            continue
        so = ", ".join(sorted(x.split("_")[0] for x in s - r)) or "-"
        ro = ", ".join(sorted(x.split("_")[0] for x in r - s)) or "-"
        print("| %s | %d | %d | %d | %s | %s |" % (rule, ns, nr, len(s & r), so, ro))
    others_sq = sorted({x[1] for x in sq} - set(shared))
    others_rg = sorted({x[1] for x in rg} - set(shared))
    for name, fs, rules in [("squawk", sq, others_sq), ("rollgate", rg, others_rg)]:
        if rules:
            print("\n%s only rules: %s" % (name, ", ".join(
                "%s (%d)" % (r, sum(1 for x in fs if x[1] == r)) for r in rules)))
    tx = [f for f in files if "-- rollgate:no-transaction" not in open(f).read()]
    nt = [f for f in files if f not in tx]
    sq_argv = [[squawk, "--reporter", "json", "--assume-in-transaction"] + tx]
    if nt:
        sq_argv.append([squawk, "--reporter", "json"] + nt)
    t_sq = timed(sq_argv)
    t_rg = timed([[rollgate, "lint", "--dir", d, "--output", "json"]])
    print("\nmedians of %d runs: squawk %.1f ms wall, %.1f ms CPU; rollgate lint %.1f ms wall, "
          "%.1f ms CPU\n" % ((runs,) + t_sq + t_rg))
EOF
echo >&2 "versions: $("$squawk" --version), $("$rollgate" --version), graphile-worker $(jq -r .version "$npmdir/node_modules/graphile-worker/package.json")"

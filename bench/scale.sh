#!/usr/bin/env bash
# Section (g) of bench/RESULTS.md (issue #15): start cost against history length, applying at
# scale against the psql floor, and racers without a Lease, rollgate side by side with dbmate.
# bench/run.sh runs it (BENCH_ONLY=scale runs only this) with, in the environment:
#   RG=static rollgate  DBMATE=dbmate  FLOOR=bench/floor.c built  ADMIN=superuser URL
#   PORT=the server's port  WORK=a scratch directory
#   RG_BUILT=the file scripts/build-static.sh wrote (RG is a copy of it: bench/run.sh says why)
#   STATFLOOR=bench/statfloor.c built
# It writes the section (markdown) to stdout, progress to stderr, and the raw figures to
# $WORK/scale/. SCALE_NOOP_RUNS (30), SCALE_APPLY_RUNS (5, for 1,000) and SCALE_W3_PASSES (7)
# set the repetitions; the 10,000 applies run once each.
set -euo pipefail
shopt -s inherit_errexit

: "${RG:?}" "${RG_BUILT:?}" "${DBMATE:?}" "${FLOOR:?}" "${STATFLOOR:?}" "${ADMIN:?}" "${PORT:?}"
: "${WORK:?}"
noop_runs=${SCALE_NOOP_RUNS:-30}
ratio_runs=${SCALE_RATIO_RUNS:-60}
apply_runs=${SCALE_APPLY_RUNS:-5}
# One pass's W3 / W1 ranged 0.98-1.41 on the bench machine (18 passes by hand, median 1.15):
# three passes gave a median that moved by 0.2 between runs.
w3_passes=${SCALE_W3_PASSES:-7}
out=$WORK/scale
rm -rf "$out"
mkdir -p "$out"
cd "$out"
export ROLLGATE_LEASE_MODE=none ROLLGATE_TERMINATION_LOG=

say() { echo "bench (g): $*" >&2; }
url() { echo "postgresql://postgres@127.0.0.1:$PORT/$1?sslmode=disable"; }
psql_admin() { psql -qXtA -v ON_ERROR_STOP=1 "$ADMIN" "$@"; }
recreate() { psql_admin -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
loads=()
load_mark() { loads+=("$1 $(cut -d' ' -f1 /proc/loadavg)"); }

# Trivial migrations in both tools' formats, and the psql floor of applying them: one psql
# session running each file in its own transaction with a history insert, as rollgate does.
say "writing 10, 1,000 and 10,000 migrations"
for n in 10 1000 10000; do mkdir -p "rg$n" "dm$n"; done
for i in $(seq 1 10000); do
    v=$(printf %05d "$i")
    up="CREATE TABLE t_$i (id int);"
    down="DROP TABLE t_$i;"
    for n in 10 1000 10000; do
        [ "$i" -le "$n" ] || continue
        echo "$up" >"rg$n/${v}_t_$i.up.sql"
        echo "$down" >"rg$n/${v}_t_$i.down.sql"
        printf -- '-- migrate:up\n%s\n\n-- migrate:down\n%s\n' "$up" "$down" >"dm$n/${v}_t_$i.sql"
    done
    for n in 1000 10000; do
        [ "$i" -le "$n" ] || continue
        printf "BEGIN; %s INSERT INTO hist VALUES (%d, '%064d'); COMMIT;\n" "$up" "$i" "$i" >>"floor$n.sql"
    done
done
for n in 1000 10000; do
    sed -i '1i CREATE TABLE hist (version bigint PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());' "floor$n.sql"
done
# The same directories with the checksum index, as an image build that runs `rollgate sum` has.
for n in 10 1000 10000; do
    cp -a "rg$n" "rgsum$n"
    "$RG" sum --dir "rgsum$n" 2>/dev/null
done

rg() { echo "$RG --database-url $(url "$1") migrate --dir $out/$2"; }
dm() { echo "$DBMATE --url $(url "$1") --migrations-dir $out/$2 --no-dump-schema up"; }
ps() { echo "psql -qX -v ON_ERROR_STOP=1 $(url "$1") -f $out/$2"; }

# timed NAME DB COMMAND: one run on a fresh database DB; "wall_s user_s sys_s maxrss_kib"
# into NAME.time.
timed() {
    local name=$1 db=$2 cmd
    shift 2
    cmd=$*
    recreate "$db"
    local -a words
    local s e
    read -ra words <<<"$cmd"
    s=$(date +%s%N)
    /usr/bin/time -f '%U %S %M' -o "$name.rt" "${words[@]}" >"$name.out" 2>"$name.err" ||
        { say "$name failed: $(tail -n 3 "$name.err")"; return 1; }
    e=$(date +%s%N)
    # Wall time to the millisecond (time's %e has hundredths of a second).
    echo "$(calc "$((e - s)) / 1000000000" 3) $(cat "$name.rt")" >"$name.time"
}
wall() { cut -d' ' -f1 "$1.time"; }
rss() { cut -d' ' -f4 "$1.time"; }

# (g1) 10,000 migrations, once each; the databases stay for the no-op runs.
load_mark "(g1)"
say "(g1) 10,000 migrations: psql floor, rollgate, dbmate (once each)"
timed floor10k floor10k "$(ps floor10k floor10000.sql)"
timed rg10k noop10k "$(rg noop10k rg10000)"
timed dm10k dmnoop10k "$(dm dmnoop10k dm10000)"

# (g2) 1,000 migrations, database recreated before each run. The three take turns (floor,
# rollgate, dbmate, then again), so that a burst of other work on the machine falls on each of
# them alike rather than on one's runs in a row; "TOOL RUN ms" lines into apply1k.txt.
load_mark "(g2)"
say "(g2) 1,000 migrations, $apply_runs runs each, taking turns"
for r in $(seq 1 "$apply_runs"); do
    for tool in floor rollgate dbmate; do
        case $tool in
        floor) cmd=$(ps apply1k floor1000.sql) ;;
        rollgate) cmd=$(rg apply1k rg1000) ;;
        dbmate) cmd=$(dm apply1k dm1000) ;;
        esac
        timed "a1k_${tool}_$r" apply1k "$cmd"
        echo "$tool $r $(calc "$(wall "a1k_${tool}_$r") * 1000" 0)" >>apply1k.txt
    done
done

# (g3) No-op starts over 10, 1,000 and 10,000 applied.
load_mark "(g3)"
say "(g3) no-op starts, $noop_runs runs each"
recreate noop10
recreate noop1k
recreate dmnoop1k
bash -c "$(rg noop10 rg10)" 2>/dev/null
bash -c "$(rg noop1k rg1000)" 2>/dev/null
bash -c "$(dm dmnoop1k dm1000)" >/dev/null
hyperfine -N --warmup 3 --runs "$noop_runs" --style basic --export-json noop.json \
    -n "floor" "$FLOOR $(url noop10k)" \
    -n "rollgate 10" "$(rg noop10 rg10)" \
    -n "rollgate 1k" "$(rg noop1k rg1000)" \
    -n "rollgate 10k" "$(rg noop10k rg10000)" \
    -n "rollgate+sum 10" "$(rg noop10 rgsum10)" \
    -n "rollgate+sum 1k" "$(rg noop1k rgsum1000)" \
    -n "rollgate+sum 10k" "$(rg noop10k rgsum10000)" \
    -n "dbmate 1k" "$(dm dmnoop1k dm1000)" \
    -n "dbmate 10k" "$(dm dmnoop10k dm10000)" >&2
peak() {
    local max=0 kb
    for _ in 1 2 3; do
        local -a words
        read -ra words <<<"$1"
        /usr/bin/time -f %M -o rss.txt "${words[@]}" >/dev/null 2>&1
        kb=$(tail -n 1 rss.txt)
        [ "$kb" -le "$max" ] || max=$kb
    done
    echo "$max"
}
rss_10=$(peak "$(rg noop10 rg10)")
rss_10k=$(peak "$(rg noop10k rg10000)")
rss_sum10k=$(peak "$(rg noop10k rgsum10000)")
rss_dm10k=$(peak "$(dm dmnoop10k dm10000)")
rss_version=$(peak "$RG --version")
rss_version_built=$(peak "$RG_BUILT --version")
# The goal's two starts (with the index, over 10 and over 10,000) again, taking turns, so
# that load on the machine falls on both alike (hyperfine above runs each command's runs in
# a row): "HISTORY RUN ms" lines into ratio.txt, wall time from the shell's clock around
# each run.
u10=$(url noop10)
u10k=$(url noop10k)
for r in $(seq 1 "$ratio_runs"); do
    for n in 10 10000; do
        u=$u10
        [ "$n" = 10 ] || u=$u10k
        s=$EPOCHREALTIME
        "$RG" --database-url "$u" migrate --dir "$out/rgsum$n" >/dev/null 2>&1
        e=$EPOCHREALTIME
        echo "$n $r $(calc "($e - $s) * 1000" 2)" >>ratio.txt
    done
done
# The per-file stats alone, as many runs as the no-op starts: what a start over 10,000
# with the index cannot do without.
for _ in $(seq 1 "$noop_runs"); do "$STATFLOOR" "$out/rgsum10000" >>statfloor.txt; done

# (g4) W3: N racers without a Lease vs W1, one run, on 500 migrations, each pass on a fresh
# database; wall time until the last exits. rollgate and dbmate.
load_mark "(g4)"
say "(g4) W1 vs W3 (8 racers, 500 migrations), $w3_passes passes each"
mkdir -p rg500 dm500
cp rg1000/00[0-4]*_* rg1000/00500_* rg500/
cp dm1000/00[0-4]*_* dm1000/00500_* dm500/
[ "$(find rg500 -name '*.up.sql' | wc -l)" = 500 ] && [ "$(find dm500 -name '*.sql' | wc -l)" = 500 ]
race() { # race TOOL RACERS PASS: prints "ms exit0 rows tables started"
    local tool=$1 k=$2 db=w_$1_$2_$3 s e ok=0 pids=() j
    recreate "$db"
    s=$(date +%s%N)
    for j in $(seq 1 "$k"); do
        if [ "$tool" = rollgate ]; then
            ROLLGATE_LEASE_IDENTITY=r$j "$RG" --database-url "$(url "$db")" migrate --dir "$out/rg500" 2>"$db.$j.err" &
        else
            "$DBMATE" --url "$(url "$db")" --migrations-dir "$out/dm500" --no-dump-schema up >/dev/null 2>"$db.$j.err" &
        fi
        pids+=($!)
    done
    for j in "${pids[@]}"; do if wait "$j"; then ok=$((ok + 1)); fi; done
    e=$(date +%s%N)
    local rows tables started
    if [ "$tool" = rollgate ]; then
        rows=$(psql -qXtA "$(url "$db")" -c "SELECT count(DISTINCT version) || '/' || count(*) FROM rollgate_migrations")
        started=$(cat "$db".*.err | grep -c 'migration started' || true)
    else
        rows=$(psql -qXtA "$(url "$db")" -c "SELECT count(DISTINCT version) || '/' || count(*) FROM schema_migrations")
        started=-
    fi
    tables=$(psql -qXtA "$(url "$db")" -c "SELECT count(*) FROM pg_tables WHERE tablename LIKE 't\_%'")
    echo "$(((e - s) / 1000000)) $ok $rows $tables $started"
}
for p in $(seq 1 "$w3_passes"); do
    for tool in rollgate dbmate; do
        echo "$tool 1 $p $(race "$tool" 1 "$p")" >>w3.txt
        echo "$tool 8 $p $(race "$tool" 8 "$p")" >>w3.txt
    done
done
load_mark "(end)"

# The section.
field() { jq -r --arg n "$2" ".results[] | select(.command == \$n) | $3 * 1000" "$1"; }
med() { calc "$(field "$1" "$2" .median)" "${3:-1}"; }
cpu() { calc "$(field "$1" "$2" '(.user + .system)')" 1; }
mib() { calc "$1 / 1024"; }
check() { if awk "BEGIN { exit !($1) }"; then echo "**met**"; else echo "**missed**"; fi; }
median_of() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
w3col() { awk -v t="$1" -v k="$2" -v c="$3" '$1 == t && $2 == k { print $c }' w3.txt; }
w3med() { w3col "$1" "$2" 4 | median_of; }

n10=$(med noop.json "rollgate 10")
n1k=$(med noop.json "rollgate 1k")
n10k=$(med noop.json "rollgate 10k")
s10=$(med noop.json "rollgate+sum 10")
s1k=$(med noop.json "rollgate+sum 1k")
s10k=$(med noop.json "rollgate+sum 10k")
d1k=$(med noop.json "dbmate 1k")
d10k=$(med noop.json "dbmate 10k")
fl=$(med noop.json floor)
a1med() { awk -v t="$1" '$1 == t { print $3 }' apply1k.txt | median_of; }
a1f=$(a1med floor)
a1r=$(a1med rollgate)
a1d=$(a1med dbmate)
sfl=$(median_of <statfloor.txt)
a10f=$(calc "$(wall floor10k) * 1000" 0)
a10r=$(calc "$(wall rg10k) * 1000" 0)
a10d=$(calc "$(wall dm10k) * 1000" 0)
w1r=$(w3med rollgate 1)
w3r=$(w3med rollgate 8)
w1d=$(w3med dbmate 1)
w3d=$(w3med dbmate 8)
r_s10k=$(calc "$s10k / $s10")
rmed() { awk -v n="$1" '$1 == n { print $3 }' ratio.txt | median_of; }
t10=$(calc "$(rmed 10)" 1)
t10k=$(calc "$(rmed 10000)" 1)
r_turns=$(calc "$t10k / $t10")
r_a1=$(calc "$a1r / $a1f")
r_a10=$(calc "$a10r / $a10f")
r_w3=$(calc "$w3r / $w1r")
rss_apply=$(($(rss rg10k) > $(rss a1k_rollgate_1) ? $(rss rg10k) : $(rss a1k_rollgate_1)))

cat <<EOF
## (g) History length, applying at scale, racers without a Lease (issue #15)

One run of \`bench/scale.sh\` (called by \`bench/run.sh\`; \`BENCH_ONLY=scale bench/run.sh\` runs
it alone) on $(date -u '+%Y-%m-%d %H:%M UTC'), the static build (\`scripts/build-static.sh\`,
rollgate $("$RG" --version)) against dbmate and the floors, all on the same PostgreSQL.
**Load average (1, 5, 15 min): $(load) at the end; 1 min as each part started: ${loads[*]}.**
Other work on the machine shares its 2 cores, so the absolute times vary between runs; the
ratios of commands measured side by side in this run are the figures to read. Migrations are
\`CREATE TABLE t_N (id int)\` (up) and \`DROP TABLE t_N\` (down) in both tools' formats.

### No-op start (everything applied; hyperfine -N, $noop_runs runs each, medians)

| history | rollgate | rollgate with \`rollgate sum\`'s index | dbmate up | libpq floor |
|---|---|---|---|---|
| 10 applied | $n10 ms | $s10 ms | - | - |
| 1,000 applied | $n1k ms | $s1k ms | $d1k ms | - |
| 10,000 applied | $n10k ms (CPU $(cpu noop.json "rollgate 10k") ms) | **$s10k ms** (CPU $(cpu noop.json "rollgate+sum 10k") ms) | $d10k ms (CPU $(cpu noop.json "dbmate 10k") ms) | $fl ms |
| peak RSS, 10,000 applied (10 applied) | $(mib "$rss_10k") MiB ($(mib "$rss_10") MiB) | $(mib "$rss_sum10k") MiB | $(mib "$rss_dm10k") MiB | - |

Without the index a start still reads the 10,000 up files for their checksums; with it, it
reads \`rollgate.sum\` and stats each file (see README "Performance"). Either way the
history's schema rows are summed up by the database (one row over the wire, not 10,000).

The same two starts with the index, over 10 and over 10,000, again in $ratio_runs rounds
taking turns (one of each per round; medians): **$t10 ms and $t10k ms, $r_turns×** (the table's
medians, each command's runs in a row: $r_s10k×). The goal is read from these.

The stats alone, one \`fstatat\` per up file on one thread as a start runs them
(\`bench/statfloor.c\`, $noop_runs runs, median): **$sfl ms** for the 10,000, before any other
work of the start or of the server's backend, which share the same two cores. The no-op over
10 plus these stats is $(calc "($t10 + $sfl) / $t10")× the no-op over 10.

Peak RSS of \`rollgate --version\` (the binary's own pages, nothing loaded): $(mib "$rss_version")
MiB for the copy measured here; $(mib "$rss_version_built") MiB for the file as \`strip\` wrote it
(\`bench/run.sh\` says why the two differ; the bytes are the same).

### Applying (fresh database each run)

| migrations | psql floor | rollgate | dbmate | rollgate / floor |
|---|---|---|---|---|
| 1,000 ($apply_runs runs each, taking turns; medians) | $a1f ms | $a1r ms | $a1d ms | **$r_a1×** |
| 10,000 (once each) | $a10f ms | $a10r ms | $a10d ms | **$r_a10×** |

The psql floor is one \`psql -f\` session running each migration in its own transaction with
an insert into a history table (\`BEGIN; CREATE TABLE ...; INSERT INTO hist ...; COMMIT;\`).
rollgate's peak RSS while applying: $(mib "$rss_apply") MiB (10,000: $(mib "$(rss rg10k)") MiB);
dbmate's for 10,000: $(mib "$(rss dm10k)") MiB.

### W3: 8 racers without a Lease vs one run (W1), 500 migrations ($w3_passes passes, medians)

| tool | W1 | W3 | W3 / W1 | W3 runs that exited 0 (of 8) | distinct versions / history rows / tables after W3 |
|---|---|---|---|---|---|
| rollgate (\`ROLLGATE_LEASE_MODE=none\`) | $w1r ms | $w3r ms | **$r_w3×** | $(w3col rollgate 8 5 | tr '\n' ' ') | $(w3col rollgate 8 6 | tr '\n' ' ')/ $(w3col rollgate 8 7 | tr '\n' ' ') |
| dbmate up | $w1d ms | $w3d ms | $(calc "$w3d / $w1d")× | $(w3col dbmate 8 5 | tr '\n' ' ') | $(w3col dbmate 8 6 | tr '\n' ' ')/ $(w3col dbmate 8 7 | tr '\n' ' ') |

"migration started" lines logged by rollgate's 8 racers per pass (500 would be each once):
$(w3col rollgate 8 8 | tr '\n' ' ').

### Summary (issue #15 goals)

| goal | measured | result |
|---|---|---|
| no-op over 10,000 applied ≤ 50 ms (with the index) | $s10k ms | $(check "$s10k <= 50") |
| no-op over 10,000 ≤ 3× the no-op over 10 (with the index; taking turns) | $r_turns× ($r_s10k× in a row) | $(check "$r_turns <= 3") |
| no-op over 10,000 peak RSS ≤ 8 MiB (with the index) | $(mib "$rss_sum10k") MiB | $(check "$rss_sum10k <= 8192") |
| 1,000 migrations ≤ 1.2× the psql floor | $r_a1× | $(check "$r_a1 <= 1.2") |
| 10,000 migrations ≤ 1.2× the psql floor | $r_a10× | $(check "$r_a10 <= 1.2") |
| peak RSS applying ≤ 10 MiB | $(mib "$rss_apply") MiB | $(check "$rss_apply <= 10240") |
| W3 ≤ 1.2× W1, all exit 0, each migration once | $r_w3×, $(w3col rollgate 8 5 | sort -u | tr '\n' ' ')of 8 exit 0 | $(check "$r_w3 <= 1.2") |

Raw figures: \`bench/work/scale/\` (hyperfine's export \`noop.json\`; \`apply1k.txt\`: tool, run,
ms of the 1,000 applies; \`*.time\`: wall, user, system seconds and peak RSS KiB of the single
runs; \`ratio.txt\`: history, round, ms of the starts taking turns; \`statfloor.txt\`: ms of each
run of the stats; \`w3.txt\`: tool, racers, pass, ms, runs
that exited 0, versions/rows, tables, "migration started" lines).
EOF

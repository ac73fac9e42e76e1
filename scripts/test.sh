#!/usr/bin/env bash
# The test command: build with sanitizers, start the shared servers, then run the independent
# groups of tests, two at a time (the 2 cores of CI), each with its wall time:
#   unit        every unit test, the library-owner check, the SQL fuzzer for 60 s
#   kube        the Kubernetes client against a real kube-apiserver
#   integration the integration suite against PostgreSQL 15 (TLS on) and PgBouncer
#   versions    the integration suite's core against PostgreSQL 13, 14, 16, 17 and 18
#   pooler      the pooler suites again, through PgBouncer in session pooling
#   packaging   the image, its static binary, the chart and the manifests, then the end-to-end
#               scenarios on a real single-node Kubernetes running that image
# Ends with one line "N passed, N failed" for CI.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
build="build-test"
start_time=$SECONDS

passed=0
failed=0
pgdir=""
bouncerdir=""
sessiondir=""
kubedir=""
logs=$(mktemp -d)
jobs_pids=()

finish() {
    local rc=$?
    set +e
    local pid
    # An interrupted run: each group's running program first (by its parent, the group's
    # pid), then the group, whose EXIT trap stops the server it started.
    for pid in "${jobs_pids[@]}"; do
        pkill -TERM -P "$pid" 2>/dev/null
        kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    for d in "$bouncerdir" "$sessiondir"; do
        [ -z "$d" ] || "$root/scripts/pgbouncer.sh" stop "$d"
    done
    if [ -n "$pgdir" ]; then
        "$root/scripts/pg.sh" stop "$pgdir"
    fi
    if [ -n "$kubedir" ]; then
        "$root/scripts/kube-test-cluster.sh" stop "$kubedir" >&2
    fi
    # The failed checks again at the very end, where a reader of the output's tail sees them.
    if [ -s "$logs/failures" ]; then
        echo "== what failed" >&2
        grep -v -F '[----]' "$logs/failures" >&2
        echo "== and the first lines of what they printed" >&2
        head -n 60 "$logs/failures" >&2
    fi
    rm -rf "$logs"
    # A step that failed before any test could count it (deps, build, PostgreSQL) is a failure.
    if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
        failed=1
    fi
    echo "== whole suite: $((SECONDS - start_time)) s" >&2
    echo "$passed passed, $failed failed"
    if [ "$rc" -eq 0 ] && [ "$failed" -ne 0 ]; then
        rc=1
    fi
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A log without Criterion's colour codes.
plain() { sed 's/\x1b\[[0-9;]*m//g' "$1"; }

# Adds a run's counts to this group's totals (g_passed, g_failed): Criterion's "Synthesis"
# line, or the last "N passed, N failed" line of the other tests. A run that died before
# printing either counts as one failure. Returns non-zero when the run failed.
count() {
    local log=$1 status=$2 line p f
    line=$(plain "$log" | grep 'Synthesis: Tested:' | tail -n 1 || true)
    if [ -n "$line" ]; then
        p=$(sed -E 's/.*Passing: ([0-9]+).*/\1/' <<<"$line")
        f=$(sed -E 's/.*Failing: ([0-9]+).*/\1/' <<<"$line")
    else
        line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
        if [ -z "$line" ]; then
            g_failed=$((g_failed + 1))
            return 1
        fi
        read -r p _ f _ <<<"$line"
    fi
    g_passed=$((g_passed + p))
    g_failed=$((g_failed + f))
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
        g_failed=$((g_failed + 1))
    fi
    [ "$status" -eq 0 ] && [ "$f" -eq 0 ]
}

# run_counted NAME CMD...: runs one test program, its output in the group's log, and counts it.
run_counted() {
    local name=$1 status=0
    shift
    echo "== $name" >&2
    "$@" >"$logs/$name.out" 2>&1 || status=$?
    cat "$logs/$name.out" >&2
    count "$logs/$name.out" "$status"
}

# ---- the groups; each runs in a subshell with stderr to its own log ----

group_unit() {
    local t
    shopt -s nullglob
    local units=("$build"/unit_*)
    [ "${#units[@]}" -gt 0 ] || {
        echo "test.sh: no unit test binaries in $build" >&2
        return 1
    }
    for t in "${units[@]}"; do
        [ -x "$t" ] || continue
        run_counted "$(basename "$t")" "$t" || true
    done
    # One owner per third-party library, and the environment read by pkg/config alone.
    run_counted owners test/owners/check.sh || true
    # Statement splitting over PostgreSQL's parser under libFuzzer for a bounded time.
    run_counted fuzz_sql scripts/fuzz.sh 60 || true
}

group_kube() {
    if ! run_counted kube_tests env RG_TEST_KUBE_DIR="$kubedir" "$build/kube_tests"; then
        echo "== kube tests failed; last 100 lines of the API server's log:" >&2
        tail -n 100 "$kubedir/apiserver.log" >&2 || true
    fi
}

group_integration() {
    if ! run_counted integration_tests env RG_TEST_PG_URL="$url" RG_TEST_PG_LOG="$pgdir/postgres.log" \
        RG_TEST_PG_TLS_DIR="$pgdir/tls" RG_TEST_PGBOUNCER_URL="$bouncer_url" \
        RG_TEST_PGBOUNCER_MODE=transaction RG_TEST_BIN="$root/$build/rollgate" \
        RG_TEST_KUBE_DIR="$kubedir" "$build/integration_tests"; then
        echo "== integration tests failed; last 200 lines of $pgdir/postgres.log:" >&2
        tail -n 200 "$pgdir/postgres.log" >&2 || true
        echo "== last 50 lines of $bouncerdir/pgbouncer.log:" >&2
        tail -n 50 "$bouncerdir/pgbouncer.log" >&2 || true
    fi
}

# The suites of what every PostgreSQL version must do: migrate and its racers, lock retries
# and timeouts, wait, running marks and repair, rollback with stored down SQL, no-transaction
# migrations, adoption and baseline, signals, TLS, and what differs between majors.
VERSIONS_CORE='@(migrate|safety|wait|history|rollout|store|tls|versions)/*'

group_versions() {
    local bins m u
    d=""
    trap '[ -z "$d" ] || scripts/pg.sh stop "$d"' EXIT
    bins=$(scripts/pgversions.sh | tail -n 1) || return 1
    for m in 13 14 16 17 18; do
        d=$(mktemp -d)
        u=$(PGBIN=$bins/$m/bin scripts/pg.sh start "$d" --tls) || {
            echo "test.sh: PostgreSQL $m did not start" >&2
            g_failed=$((g_failed + 1))
            continue
        }
        if ! run_counted "postgresql-$m" env RG_TEST_PG_URL="$u" RG_TEST_PG_LOG="$d/postgres.log" \
            RG_TEST_PG_TLS_DIR="$d/tls" RG_TEST_BIN="$root/$build/rollgate" \
            "$build/integration_tests" --filter "$VERSIONS_CORE"; then
            echo "== PostgreSQL $m failed; last 100 lines of its log:" >&2
            tail -n 100 "$d/postgres.log" >&2 || true
        fi
        scripts/pg.sh stop "$d"
        d=""
    done
}

group_pooler() {
    if ! run_counted pooler-session env RG_TEST_PG_URL="$url" RG_TEST_PGBOUNCER_URL="$session_url" \
        RG_TEST_PGBOUNCER_MODE=session RG_TEST_BIN="$root/$build/rollgate" \
        "$build/integration_tests" --filter '@(pooler|poolmodes)/*'; then
        echo "== last 50 lines of $sessiondir/pgbouncer.log:" >&2
        tail -n 50 "$sessiondir/pgbouncer.log" >&2 || true
    fi
}

# Packaging: the image built from the Dockerfile (buildah, no engine needed), its static binary
# in an empty root, the chart and the manifests with the real helm and kubectl, against the same
# PostgreSQL and kube-apiserver.
group_packaging() {
    local tools kubectl120
    scripts/image.sh --export "$logs/image" localhost/rollgate:test >&2 || return 1
    tools=$(scripts/tools.sh | tail -n 1) || return 1
    kubectl120=$(dirname "$(scripts/kube-apiserver.sh | tail -n 1)")/kubectl || return 1
    run_counted packaging env RG_TEST_PG_URL="$url" RG_TEST_PG_TLS_DIR="$pgdir/tls" \
        RG_TEST_KUBE_DIR="$kubedir" RG_IMAGE_DIR="$logs/image" \
        RG_STATIC_BIN="$logs/image/rootfs/rollgate" RG_TOOLS="$tools" RG_KUBECTL="$kubectl120" \
        test/packaging/run.sh || true
    # End to end: a real single-node Kubernetes 1.20.2 of its own (kubelet, controllers,
    # containerd; built once, then cached) runs the image just built and the chart, each
    # scenario one test. Here, after the image, because it imports that image.
    run_counted e2e env RG_E2E_IMAGE=localhost/rollgate:test RG_TOOLS="$tools" test/e2e/run.sh ||
        true
}

# run_group NAME: runs group_NAME in the background; its counts, status and wall time land in
# $logs/NAME.result ("passed failed seconds"), its output in $logs/NAME.log.
run_group() {
    local name=$1
    (
        trap - EXIT
        trap 'exit 143' INT TERM
        g_passed=0
        g_failed=0
        t0=$SECONDS
        # A group that stops early (a server that did not start) counts as one failure more.
        if ! "group_$name" 2>"$logs/$name.log"; then
            g_failed=$((g_failed + 1))
            echo "test.sh: group $name stopped early" >>"$logs/$name.log"
        fi
        echo "$g_passed $g_failed $((SECONDS - t0))" >"$logs/$name.result"
    ) &
    jobs_pids+=($!)
}

# Collects a finished group: its log, its wall time, its counts into the totals.
collect() {
    local name=$1 p f s
    read -r p f s <"$logs/$name.result"
    echo "==== group $name ====" >&2
    cat "$logs/$name.log" >&2
    echo "==== group $name: $p passed, $f failed, wall time $s s" >&2
    # Criterion's failed assertions and tests, the other tests' FAIL lines and a stopped group,
    # each after the name of the program ("== NAME") that printed it.
    if [ "$f" -ne 0 ]; then
        plain "$logs/$name.log" | awk -v g="$name" '
            /^== / { prog = $2; next }
            /^\[(FAIL|----)\] *[^ ]/ && !/Criterion v/ || /CRASH|^FAIL |stopped early|did not start/ {
                print g "/" prog ": " $0
            }' >>"$logs/failures" || true
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    timings+=("$(printf '%-12s %5s s  %s passed, %s failed' "$name" "$s" "$p" "$f")")
}

t0=$SECONDS
scripts/deps.sh
cmake -S . -B "$build" -DRG_SANITIZE=ON -DRG_TESTS=ON >"$logs/cmake.log" 2>&1 || {
    cat "$logs/cmake.log" >&2
    exit 1
}
cmake --build "$build" -j "$(nproc)" >&2
# The caches the groups need, filled one at a time before anything runs in parallel.
scripts/pgversions.sh >/dev/null
scripts/tools.sh >/dev/null
timings=("$(printf '%-12s %5s s' setup $((SECONDS - t0)))")

# A real kube-apiserver (built from Debian's source once, then cached) for the Lease.
t0=$SECONDS
kubedir=$(mktemp -d)
scripts/kube-test-cluster.sh start "$kubedir" >&2
scripts/kube-test-cluster.sh smoke "$kubedir" >&2
# PostgreSQL 15 with TLS; PgBouncer in transaction pooling (the tests that no setting leaks)
# and in session pooling in front of it.
pgdir=$(mktemp -d)
url=$(scripts/pg.sh start "$pgdir" --tls)
bouncerdir=$(mktemp -d)
bouncer_url=$(scripts/pgbouncer.sh start "$bouncerdir" "$url" transaction)
sessiondir=$(mktemp -d)
session_url=$(scripts/pgbouncer.sh start "$sessiondir" "$url" session)
timings+=("$(printf '%-12s %5s s' servers $((SECONDS - t0)))")
echo "== servers: kube-apiserver on port $(cat "$kubedir/port"), PostgreSQL at $url," \
    "PgBouncer at $bouncer_url (transaction) and $session_url (session)" >&2

# Two at a time, the longest first; a group starts as soon as one ends.
groups=(packaging integration versions unit kube pooler)
running=()
for g in "${groups[@]}" ""; do
    while [ "${#running[@]}" -ge 2 ] || { [ -z "$g" ] && [ "${#running[@]}" -gt 0 ]; }; do
        sleep 2
        still=()
        for r in "${running[@]}"; do
            if [ -f "$logs/$r.result" ]; then collect "$r"; else still+=("$r"); fi
        done
        running=("${still[@]}")
    done
    [ -z "$g" ] || {
        run_group "$g"
        running+=("$g")
    }
done
wait "${jobs_pids[@]}" || true
jobs_pids=()

echo "== wall time per group" >&2
printf '%s\n' "${timings[@]}" >&2
[ "$failed" -eq 0 ]

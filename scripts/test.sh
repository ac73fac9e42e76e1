#!/usr/bin/env bash
# The test command: build with sanitizers, run every unit test, then the integration tests
# against a throwaway PostgreSQL. Ends with one line "N passed, N failed" for CI.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
build="build-test"

passed=0
failed=0
pgdir=""
bouncerdir=""
kubedir=""
logs=$(mktemp -d)

finish() {
    local rc=$?
    set +e
    if [ -n "$bouncerdir" ]; then
        "$root/scripts/pgbouncer.sh" stop "$bouncerdir"
    fi
    if [ -n "$pgdir" ]; then
        "$root/scripts/pg.sh" stop "$pgdir"
    fi
    if [ -n "$kubedir" ]; then
        "$root/scripts/kube-test-cluster.sh" stop "$kubedir" >&2
    fi
    rm -rf "$logs"
    # A step that failed before any test could count it (deps, build, PostgreSQL) is a failure.
    if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
        failed=1
    fi
    echo "$passed passed, $failed failed"
    if [ "$rc" -eq 0 ] && [ "$failed" -ne 0 ]; then
        rc=1
    fi
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Adds a run's counts to the totals: Criterion's "Synthesis" line, or the packaging tests' last
# "N passed, N failed" line. A run that died before printing either counts as one failure.
# Returns non-zero when the run failed.
count() {
    local log=$1 status=$2 line p f
    line=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep 'Synthesis: Tested:' | tail -n 1 || true)
    if [ -n "$line" ]; then
        p=$(sed -E 's/.*Passing: ([0-9]+).*/\1/' <<<"$line")
        f=$(sed -E 's/.*Failing: ([0-9]+).*/\1/' <<<"$line")
    else
        line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
        if [ -z "$line" ]; then
            failed=$((failed + 1))
            return 1
        fi
        read -r p _ f _ <<<"$line"
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
        failed=$((failed + 1))
    fi
    [ "$status" -eq 0 ] && [ "$f" -eq 0 ]
}

scripts/deps.sh
cmake -S . -B "$build" -DRG_SANITIZE=ON -DRG_TESTS=ON >"$logs/cmake.log" 2>&1 || {
    cat "$logs/cmake.log" >&2
    exit 1
}
cmake --build "$build" -j "$(nproc)" >&2

ok=1
shopt -s nullglob
units=("$build"/unit_*)
[ "${#units[@]}" -gt 0 ] || {
    echo "test.sh: no unit test binaries in $build" >&2
    exit 1
}
for t in "${units[@]}"; do
    [ -x "$t" ] || continue
    echo "== $(basename "$t")" >&2
    status=0
    "$t" 2>&1 | tee "$logs/unit.log" >&2 || status=$?
    count "$logs/unit.log" "$status" || ok=0
done

# One owner per third-party library, and the environment read by pkg/config alone.
echo "== owners" >&2
status=0
test/owners/check.sh 2>&1 | tee "$logs/owners.log" >&2 || status=$?
count "$logs/owners.log" "$status" || ok=0

# Statement splitting over PostgreSQL's parser under libFuzzer for a bounded time: one test.
echo "== fuzz_sql (60 s)" >&2
status=0
scripts/fuzz.sh 60 2>&1 | tee "$logs/fuzz.log" >&2 || status=$?
count "$logs/fuzz.log" "$status" || ok=0

# A real kube-apiserver (built from Debian's source once, then cached) for the Lease.
kubedir=$(mktemp -d)
scripts/kube-test-cluster.sh start "$kubedir" >&2
scripts/kube-test-cluster.sh smoke "$kubedir" >&2
echo "== kube_tests (kube-apiserver on port $(cat "$kubedir/port"))" >&2
status=0
RG_TEST_KUBE_DIR=$kubedir "$build/kube_tests" 2>&1 | tee "$logs/kube.log" >&2 || status=$?
if ! count "$logs/kube.log" "$status"; then
    ok=0
    echo "== kube tests failed; last 100 lines of the API server's log:" >&2
    tail -n 100 "$kubedir/apiserver.log" >&2 || true
fi

pgdir=$(mktemp -d)
url=$(scripts/pg.sh start "$pgdir")
export RG_TEST_PG_LOG="$pgdir/postgres.log" # read by tests that check what the server logged
# PgBouncer in transaction pooling in front of it, for the tests that no setting leaks.
bouncerdir=$(mktemp -d)
bouncer_url=$(scripts/pgbouncer.sh start "$bouncerdir" "$url")
echo "== integration_tests (PostgreSQL at $url, PgBouncer at $bouncer_url)" >&2
status=0
RG_TEST_PG_URL=$url RG_TEST_PGBOUNCER_URL=$bouncer_url RG_TEST_BIN="$root/$build/rollgate" \
    RG_TEST_KUBE_DIR=$kubedir \
    "$build/integration_tests" 2>&1 | tee "$logs/integration.log" >&2 || status=$?
if ! count "$logs/integration.log" "$status"; then
    ok=0
    echo "== integration tests failed; last 200 lines of $pgdir/postgres.log:" >&2
    tail -n 200 "$pgdir/postgres.log" >&2 || true
    echo "== last 50 lines of $bouncerdir/pgbouncer.log:" >&2
    tail -n 50 "$bouncerdir/pgbouncer.log" >&2 || true
fi

# Packaging: the image built from the Dockerfile (buildah, no engine needed), its static binary
# in an empty root, the chart and the manifests with the real helm and kubectl, against the same
# PostgreSQL and kube-apiserver.
scripts/image.sh --export "$logs/image" localhost/rollgate:test >&2
tools=$(scripts/tools.sh | tail -n 1)
kubectl120=$(dirname "$(scripts/kube-apiserver.sh | tail -n 1)")/kubectl
echo "== packaging tests" >&2
status=0
RG_TEST_PG_URL=$url RG_TEST_KUBE_DIR=$kubedir RG_IMAGE_DIR=$logs/image \
    RG_STATIC_BIN=$logs/image/rootfs/rollgate RG_TOOLS=$tools RG_KUBECTL=$kubectl120 \
    test/packaging/run.sh 2>&1 | tee "$logs/packaging.log" >&2 || status=$?
count "$logs/packaging.log" "$status" || ok=0

# End to end: a real single-node Kubernetes 1.20.2 (kubelet, controllers, containerd; built
# once, then cached) runs that image and the chart, each scenario one test (test/e2e/run.sh).
echo "== e2e tests" >&2
status=0
RG_E2E_IMAGE=localhost/rollgate:test RG_TOOLS=$tools test/e2e/run.sh 2>&1 | tee "$logs/e2e.log" >&2 ||
    status=$?
count "$logs/e2e.log" "$status" || ok=0

[ "$ok" -eq 1 ]

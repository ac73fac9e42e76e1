#!/usr/bin/env bash
# Fuzzes statement splitting over PostgreSQL's parser (test/fuzz/fuzz_sql.c) with libFuzzer
# for a bounded time, starting from the committed seeds in test/fuzz/corpus/sql (they are
# only read: what the run finds goes to a temporary directory).
#   scripts/fuzz.sh [SECONDS]      default 60
# Ends with one line "1 passed, 0 failed" or "0 passed, 1 failed" (one test, for
# scripts/test.sh); a crash leaves its input in build-fuzz/ and is printed as hex.
set -euo pipefail

cd "$(dirname "$0")/.."
seconds=${1:-60}
build=build-fuzz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

result() {
    echo "$1 passed, $2 failed"
    exit "$2"
}

scripts/deps.sh
if ! { cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DRG_FUZZ=ON -DRG_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/cmake.log" 2>&1 &&
    cmake --build "$build" -j "$(nproc)" --target fuzz_sql >"$work/build.log" 2>&1; }; then
    cat "$work/cmake.log" "$work/build.log" >&2 || true
    result 0 1
fi
echo "fuzz_sql: $seconds s from $(find test/fuzz/corpus/sql -type f | wc -l) seeds" >&2
# -max_len keeps inputs near the size of a migration's statement; -timeout flags any one
# input that takes over 10 s (the splitter must stay linear).
if "$build/fuzz_sql" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$build/" -print_final_stats=1 "$work" test/fuzz/corpus/sql \
    >"$work/fuzz.log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^Done' "$work/fuzz.log" >&2 || true
    result 1 0
fi
tail -n 60 "$work/fuzz.log" >&2
for f in "$build"/crash-* "$build"/timeout-* "$build"/oom-*; do
    [ -f "$f" ] && { echo "== $f" >&2; od -c "$f" | head -n 40 >&2; }
done
result 0 1

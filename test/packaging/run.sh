#!/usr/bin/env bash
# Runs the packaging tests (every test/packaging/test_*.sh, or the scripts given) with the
# environment lib.sh documents, and sums their "N passed, N failed" lines into one such last
# line. A script that ends without that line (it died) counts as one failure.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export RG_REPO=${RG_REPO:-$(cd "$here/../.." && pwd)}
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

scripts=("$@")
[ "${#scripts[@]}" -gt 0 ] || scripts=("$here"/test_*.sh)
for t in "${scripts[@]}"; do
    echo "== $(basename "$t")"
    bash "$t" 2>&1 | tee "$log"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        echo "FAIL $(basename "$t"): ended without a summary line"
        failed=$((failed + 1))
        continue
    fi
    passed=$((passed + ${line%% *}))
    f=${line#*, }
    failed=$((failed + ${f%% *}))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

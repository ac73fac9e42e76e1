#!/usr/bin/env bash
# A throwaway PostgreSQL for tests and demos: Debian's 15, or another major's server binaries
# given as PGBIN (scripts/pgversions.sh installs 13, 14, 16, 17 and 18: PGBIN=<its dir>/17/bin).
#   scripts/pg.sh start DIR [--tls]   initdb into DIR/data, start on a free 127.0.0.1 port, wait
#                             until ready, write DIR/port and DIR/pid, print the connection URL
#                             (plain text, sslmode=disable). With --tls the server also serves
#                             TLS with a certificate authority made for this run: DIR/tls/ca.crt
#                             signed DIR/tls/server.crt, whose only name is DNS:localhost (so a
#                             client verifying 127.0.0.1 against it fails); DIR/tls/other-ca.crt
#                             is a second authority that signed nothing (a wrong CA for tests).
#   scripts/pg.sh stop DIR    stop the server started in DIR and remove DIR
# As root the server runs as `nobody` (initdb and postgres refuse root).
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
# The npm builds ship only the server (initdb, pg_ctl, postgres): pg_isready is Debian's.
PGISREADY=/usr/lib/postgresql/15/bin/pg_isready
[ ! -x "$PGBIN/pg_isready" ] || PGISREADY=$PGBIN/pg_isready

name=pg.sh
# shellcheck source=lib/server.sh
. "$(dirname "$0")/lib/server.sh"

usage() {
    echo "usage: $0 start DIR [--tls] | stop DIR" >&2
    exit 2
}

[ $# -ge 2 ] || usage
cmd=$1
dir=$2
tls=0
if [ $# -eq 3 ] && [ "$cmd" = start ] && [ "$3" = --tls ]; then
    tls=1
elif [ $# -ne 2 ]; then
    usage
fi

# make_tls TLSDIR: a CA, the server's key and certificate (DNS:localhost only) signed by it,
# and a second CA; keys of 2048 bits, valid for a day (a run is far shorter).
make_tls() {
    local t=$1
    mkdir -p "$t"
    (
        cd "$t"
        for ca in ca other-ca; do
            openssl req -x509 -newkey rsa:2048 -nodes -days 1 -keyout "$ca.key" -out "$ca.crt" \
                -subj "/CN=rollgate test $ca $$" -addext basicConstraints=critical,CA:TRUE \
                -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
        done
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
            -subj /CN=localhost 2>/dev/null
        printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
            -extfile server.ext -out server.crt 2>/dev/null
        rm -f server.csr server.ext ca.srl ca.key other-ca.key
        chmod 600 server.key
        chmod 644 ca.crt other-ca.crt server.crt
    ) || die "could not make the TLS certificates in $t (openssl)"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R "$(id -u nobody):$(id -g nobody)" "$t"
    fi
}

start() {
    [ -x "$PGBIN/initdb" ] || die "no PostgreSQL server in $PGBIN (run scripts/deps.sh, or scripts/pgversions.sh for other majors)"
    [ -x "$PGISREADY" ] || die "no pg_isready at $PGISREADY (run scripts/deps.sh)"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ ! -e "$dir/data" ] || die "$dir/data exists already"
    if [ "$(id -u)" -eq 0 ]; then
        chown "$(id -u nobody):$(id -g nobody)" "$dir"
        as_owner test -w "$dir" -a -x "$dir" ||
            die "$dir is not reachable by nobody (a parent directory is closed); use a directory under /tmp"
    fi
    chmod 700 "$dir"
    cd "$dir" # the server's owner may not be allowed into the caller's directory

    as_owner "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync \
        --locale=C -E UTF8 >"$dir/initdb.log" 2>&1 ||
        {
            cat "$dir/initdb.log" >&2
            die "initdb failed"
        }
    # Trust, and only from 127.0.0.1: the socket directory is private to the owner anyway.
    cat >"$dir/data/pg_hba.conf" <<HBA
host all all 127.0.0.1/32 trust
HBA
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = off
full_page_writes = off
max_connections = 200
logging_collector = off
log_min_messages = warning
log_line_prefix = '%m [%p] %d '
CONF
    if [ "$tls" -eq 1 ]; then
        make_tls "$dir/tls"
        cat >>"$dir/data/postgresql.conf" <<CONF
ssl = on
ssl_cert_file = '$dir/tls/server.crt'
ssl_key_file = '$dir/tls/server.key'
CONF
    fi

    # Probe for a port nothing listens on, then let the server bind it; if another
    # process took it in between, the start fails and the next port is tried.
    local port attempt
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    for attempt in $(seq 1 20); do
        port=$(((port - 20000 + 1 + RANDOM % 97) % 40000 + 20000))
        port_in_use "$port" && continue
        if as_owner "$PGBIN/pg_ctl" start -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
            -o "-p $port" >>"$dir/pg_ctl.log" 2>&1; then
            local ready=0
            for _ in $(seq 1 120); do
                if "$PGISREADY" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; then
                    ready=1
                    break
                fi
                sleep 0.5
            done
            [ "$ready" -eq 1 ] || {
                tail -n 50 "$dir/postgres.log" >&2 || true
                die "PostgreSQL did not become ready on port $port"
            }
            echo "$port" >"$dir/port"
            echo "$PGBIN" >"$dir/pgbin" # stop uses the same major's pg_ctl
            head -n 1 "$dir/data/postmaster.pid" >"$dir/pid"
            echo "postgresql://postgres@127.0.0.1:$port/postgres?sslmode=disable"
            return 0
        fi
        echo "pg.sh: start on port $port failed (attempt $attempt), trying another" >&2
    done
    tail -n 50 "$dir/postgres.log" >&2 || true
    die "could not start PostgreSQL"
}

stop() {
    [ -d "$dir" ] || return 0
    dir=$(cd "$dir" && pwd)
    cd /
    local pid=""
    [ -f "$dir/pid" ] && pid=$(cat "$dir/pid")
    if [ -z "$pid" ] && [ -f "$dir/data/postmaster.pid" ]; then
        pid=$(head -n 1 "$dir/data/postmaster.pid")
    fi
    [ ! -f "$dir/pgbin" ] || PGBIN=$(cat "$dir/pgbin")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        as_owner "$PGBIN/pg_ctl" stop -D "$dir/data" -m fast -w -t 30 >/dev/null 2>&1 || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$dir"
}

case "$cmd" in
start) start ;;
stop) stop ;;
*) usage ;;
esac

#!/usr/bin/env bash
# A throwaway PgBouncer in front of a test PostgreSQL, in transaction pooling mode (the default:
# tests prove that no session setting of rollgate's stays on a server connection other clients
# get) or session pooling mode (each client keeps one server connection while connected).
#   scripts/pgbouncer.sh start DIR UPSTREAM_URL [transaction|session]   write DIR/pgbouncer.ini,
#                             start on a free 127.0.0.1 port, wait until a query goes through,
#                             write DIR/port, DIR/pid and DIR/mode, print the URL
#                             (UPSTREAM_URL's user and database)
#   scripts/pgbouncer.sh stop DIR                 stop the PgBouncer started in DIR, remove DIR
# UPSTREAM_URL is a URL as scripts/pg.sh prints it (postgresql://USER@HOST:PORT/DB?...), of a
# server that trusts 127.0.0.1. Every database name is forwarded (`*`), so per-test databases
# work. Pools are small (2 server connections per database and user) so that clients certainly
# share server connections. As root PgBouncer runs as `nobody` (it refuses root).
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGBOUNCER=${PGBOUNCER:-/usr/sbin/pgbouncer}
POOL_SIZE=2

name=pgbouncer.sh
# shellcheck source=lib/server.sh
. "$(dirname "$0")/lib/server.sh"

usage() {
    echo "usage: $0 start DIR UPSTREAM_URL [transaction|session] | stop DIR" >&2
    exit 2
}

[ $# -ge 2 ] || usage
cmd=$1
dir=$2

alive() {
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null
}

start() {
    local upstream=$1 mode=$2 re user host uport db
    [ -x "$PGBOUNCER" ] || die "no PgBouncer at $PGBOUNCER (run scripts/deps.sh)"
    re='^postgres(ql)?://([^@/:]+)@([^/:?]+):([0-9]+)/([^/?]+)'
    [[ $upstream =~ $re ]] || die "UPSTREAM_URL is not postgresql://USER@HOST:PORT/DB: $upstream"
    user=${BASH_REMATCH[2]}
    host=${BASH_REMATCH[3]}
    uport=${BASH_REMATCH[4]}
    db=${BASH_REMATCH[5]}

    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ ! -e "$dir/pgbouncer.ini" ] || die "$dir/pgbouncer.ini exists already"
    if [ "$(id -u)" -eq 0 ]; then
        chown "$(id -u nobody):$(id -g nobody)" "$dir"
        as_owner test -w "$dir" -a -x "$dir" ||
            die "$dir is not reachable by nobody (a parent directory is closed); use a directory under /tmp"
    fi
    chmod 700 "$dir"
    cd "$dir"

    # Trust needs the user in the auth file all the same; the server trusts 127.0.0.1.
    printf '"%s" ""\n' "$user" >"$dir/userlist.txt"

    local port attempt pid
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    for attempt in $(seq 1 20); do
        port=$(((port - 20000 + 1 + RANDOM % 97) % 40000 + 20000))
        port_in_use "$port" && continue
        # server_reset_query (DISCARD ALL, in session mode) is never sent in transaction
        # mode: whatever a client leaves on a server connection, the next client gets.
        cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=$host port=$uport

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
admin_users = $user
pool_mode = $mode
default_pool_size = $POOL_SIZE
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 1000
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
log_connections = 0
log_disconnections = 0
INI
        if [ "$(id -u)" -eq 0 ]; then
            chown "$(id -u nobody):$(id -g nobody)" "$dir/pgbouncer.ini" "$dir/userlist.txt"
        fi
        rm -f "$dir/pgbouncer.pid" "$dir/pgbouncer.log"
        # It binds after going to the background, and on failure logs FATAL and exits.
        as_owner "$PGBOUNCER" -d "$dir/pgbouncer.ini" >>"$dir/start.log" 2>&1 </dev/null || true
        local listening=0
        for _ in $(seq 1 100); do
            pid=$(cat "$dir/pgbouncer.pid" 2>/dev/null || true)
            if alive "$pid" && port_in_use "$port"; then
                listening=1
                break
            fi
            grep -qs FATAL "$dir/pgbouncer.log" && break
            sleep 0.1
        done
        if [ "$listening" -eq 0 ]; then
            alive "$pid" && kill -KILL "$pid" 2>/dev/null
            echo "pgbouncer.sh: start on port $port failed (attempt $attempt), trying another" >&2
            continue
        fi
        echo "$port" >"$dir/port"
        echo "$pid" >"$dir/pid"
        echo "$mode" >"$dir/mode"
        # Listening is not enough: a query must go through to the server.
        if timeout 60 "$PGBIN/psql" -XAtq -c 'SELECT 1' \
            "postgresql://$user@127.0.0.1:$port/$db?sslmode=disable" >/dev/null; then
            echo "postgresql://$user@127.0.0.1:$port/$db?sslmode=disable"
            return 0
        fi
        tail -n 50 "$dir/pgbouncer.log" >&2 || true
        kill -KILL "$pid" 2>/dev/null || true
        die "PgBouncer on port $port does not reach $host:$uport"
    done
    tail -n 50 "$dir/pgbouncer.log" "$dir/start.log" >&2 || true
    die "could not start PgBouncer"
}

stop() {
    [ -d "$dir" ] || return 0
    dir=$(cd "$dir" && pwd)
    cd /
    local pid=""
    [ -f "$dir/pid" ] && pid=$(cat "$dir/pid")
    [ -z "$pid" ] && [ -f "$dir/pgbouncer.pid" ] && pid=$(cat "$dir/pgbouncer.pid")
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            alive "$pid" || break
            sleep 0.2
        done
        if alive "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$dir"
}

case "$cmd" in
start)
    [ $# -eq 3 ] || [ $# -eq 4 ] || usage
    mode=${4:-transaction}
    [ "$mode" = transaction ] || [ "$mode" = session ] || usage
    start "$3" "$mode"
    ;;
stop)
    [ $# -eq 2 ] || usage
    stop
    ;;
*) usage ;;
esac

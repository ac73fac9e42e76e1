# What the scripts that start a throwaway server on loopback share (scripts/pg.sh,
# scripts/pgbouncer.sh). Source it; `name` must be set to the script's name for messages.

die() {
    echo "$name: $*" >&2
    exit 1
}

# Runs a command as the server's owner: nobody when we are root (PostgreSQL and PgBouncer
# refuse root), else ourselves.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" --clear-groups -- "$@"
    else
        "$@"
    fi
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

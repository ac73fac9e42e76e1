# shellcheck shell=bash disable=SC2034  # chart_args and mig_args are for the caller
# Sourced by the e2e steps of .github/workflows/ci.yml (bash, kubectl and helm on PATH).
set -euo pipefail

# The chart's values for the image built in this job and the database Secret.
chart_args=(
    --set image.repository=rollgate --set image.tag=e2e --set image.pullPolicy=Never
    --set database.existingSecret=rollgate-database
    --set migrations.source=configMap
)

# migrations NAME...: mig_args gets a --set-file migrations.files.<file>=<path> for each
# .github/e2e/migrations/NAME.*.sql (dots in the key escaped for helm's --set parser).
migrations() {
    local name f base
    mig_args=()
    for name; do
        for f in .github/e2e/migrations/"$name".*.sql; do
            [ -f "$f" ] || { echo "no migration files for $name" >&2; return 1; }
            base=$(basename "$f")
            mig_args+=(--set-file "migrations.files.${base//./\\.}=$f")
        done
    done
}

# sql [-d DB] QUERY: one query through psql in the postgres pod, unaligned, tuples only.
sql() {
    local db=app
    if [ "$1" = -d ]; then
        db=$2
        shift 2
    fi
    kubectl exec deploy/postgres -- psql -U rollgate -d "$db" -v ON_ERROR_STOP=1 -tAc "$1"
}

# expect WHAT GOT WANT
expect() {
    if [ "$2" != "$3" ]; then
        echo "::error::$1: got '$2', want '$3'"
        return 1
    fi
    echo "ok: $1 ($2)"
}

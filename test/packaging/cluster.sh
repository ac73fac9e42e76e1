# Sourced after lib.sh and pod.sh by the tests that use the test PostgreSQL and kube-apiserver:
# throwaway namespaces, databases and Secrets, and what the API server's audit log says about a
# ServiceAccount. cluster_cleanup removes what these made.

cluster_namespaces=()

# psql as the test server's superuser; cluster_psql DB ARGS... in database DB.
cluster_psql() {
    local db=$1
    shift
    psql "${RG_TEST_PG_URL/\/postgres\?//$db?}" -XAtq -v ON_ERROR_STOP=1 "$@"
}

cluster_namespace() {
    kubectl_admin create namespace "$1" >/dev/null && cluster_namespaces+=("$1")
}

# cluster_database: creates an empty database and prints its name. The name is recorded in a
# file as well: callers run this in a command substitution, a subshell.
cluster_database() {
    local db
    db=rg_pkg_$$_$RANDOM$RANDOM
    cluster_psql postgres -c "CREATE DATABASE $db" && echo "$db" >>"$t_scratch/databases" &&
        echo "$db"
}

# cluster_url DB: the URL a pod uses; postgres.test is in the pod's /etc/hosts (pod_root).
cluster_url() {
    local port
    port=$(sed -E 's|.*:([0-9]+)/.*|\1|' <<<"$RG_TEST_PG_URL")
    echo "postgresql://postgres@postgres.test:$port/$1?sslmode=disable"
}

# cluster_secret NS NAME DB: (re)creates Secret NAME with key url for database DB.
cluster_secret() {
    kubectl_admin -n "$1" create secret generic "$2" --from-literal=url="$(cluster_url "$3")" \
        --dry-run=client -o json | kubectl_admin -n "$1" apply -f - >/dev/null
}

# cluster_migrations DIR: two schema migrations with their down files.
cluster_migrations() {
    mkdir -p "$1"
    echo 'CREATE TABLE accounts (id bigint PRIMARY KEY);' >"$1/0001_accounts.up.sql"
    echo 'DROP TABLE accounts;' >"$1/0001_accounts.down.sql"
    echo 'ALTER TABLE accounts ADD COLUMN email text;' >"$1/0002_accounts_email.up.sql"
    echo 'ALTER TABLE accounts DROP COLUMN email;' >"$1/0002_accounts_email.down.sql"
}

# cluster_versions DB: the applied schema versions, comma-separated ("" when none).
cluster_versions() {
    [ "$(cluster_psql "$1" -c "SELECT to_regclass('public.rollgate_migrations') IS NOT NULL")" = t ] ||
        return 0
    cluster_psql "$1" -c "SELECT coalesce(string_agg(version::text, ',' ORDER BY version), '')
        FROM rollgate_migrations WHERE kind = 'schema' AND state = 'applied'"
}

# cluster_sa_requests NS SA / cluster_sa_refused NS SA: how many requests the ServiceAccount
# made, and how many of them were answered 401 or 403.
cluster_sa_requests() {
    jq -r --arg u "system:serviceaccount:$1:$2" 'select(.user.username == $u) | .auditID' \
        "$RG_TEST_KUBE_DIR/audit.log" | wc -l
}
cluster_sa_refused() {
    jq -r --arg u "system:serviceaccount:$1:$2" \
        'select(.user.username == $u and (.responseStatus.code == 401 or .responseStatus.code == 403))
         | .auditID' "$RG_TEST_KUBE_DIR/audit.log" | wc -l
}

# There is no namespace controller in the test cluster: a deleted namespace stays Terminating
# with its objects, which is harmless in a throwaway cluster; the request is made anyway.
cluster_cleanup() {
    local ns db
    for ns in "${cluster_namespaces[@]}"; do
        kubectl_admin delete namespace "$ns" --wait=false >/dev/null 2>&1
    done
    [ -f "$t_scratch/databases" ] || return 0
    while read -r db; do
        cluster_psql postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
    done <"$t_scratch/databases"
}

# cluster_rbac_verbs NS ROLE LEASE SECRET POD SPEC CONTAINER: each leases verb the Role grants is
# needed. Without it the leader is refused (403) and exits 10 before changing the database:
# "update" takes the existing released Lease, "create" makes one when there is none, "get" is
# always first. The Lease must exist when this is called. Each case has a fresh database behind
# Secret SECRET; the Role is restored at the end and the pod then migrates.
cluster_rbac_verbs() {
    local ns=$1 role=$2 lease=$3 secret=$4 pod=$5 spec=$6 container=$7 saved verb db
    saved=$(kubectl_admin -n "$ns" get role "$role" -o json |
        jq 'del(.metadata.resourceVersion, .metadata.managedFields)')
    for verb in update get create; do
        db=$(cluster_database)
        cluster_secret "$ns" "$secret" "$db"
        [ "$verb" = create ] && kubectl_admin -n "$ns" delete lease "$lease" >/dev/null
        jq --arg v "$verb" '(.rules[] | select(.resources == ["leases"]) | .verbs) -= [$v]' \
            <<<"$saved" | kubectl_admin -n "$ns" replace -f - >/dev/null
        check_rc 10 "$role without leases/$verb: the leader exits 10" \
            pod_run "$ns" "$pod-$verb" "$spec" "$container"
        check_eq "$role without leases/$verb: nothing was applied" "$(cluster_versions "$db")" ""
    done
    kubectl_admin -n "$ns" replace -f - <<<"$saved" >/dev/null
    check_rc 0 "$role restored: the same pod migrates" pod_run "$ns" "$pod-ok" "$spec" "$container"
    check_eq "$role restored: the database is at version 2" "$(cluster_versions "$db")" "1,2"
}

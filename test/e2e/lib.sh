# shellcheck shell=bash disable=SC2154 # full: set by the scenario before it calls e2e_deployment
# Sourced by test/e2e/run.sh and, in a subshell each, by the scenarios (test/e2e/test_*.sh).
# The run's environment (set by run.sh):
#   E2E_KUBE_DIR   the cluster (scripts/kube-test-cluster.sh start + node): admin.kubeconfig,
#                  port, audit.log, node/log/*.log
#   E2E_PG_URL     the throwaway PostgreSQL (scripts/pg.sh) on 127.0.0.1, superuser URL
#   E2E_PREFIX     prefix of every namespace and database of this run (the node's pod logs
#                  under /var/log/pods are removed by that prefix)
#   E2E_IMAGE      the rollgate image imported into the node (imagePullPolicy Never)
#   E2E_PAUSE      the pause image, the app container of the test Deployments
#   E2E_WORK       a scratch directory removed after the run
#   RG_TOOLS       helm 3.17 (scripts/tools.sh); RG_KUBECTL kubectl 1.20.2; RG_REPO the repository
# A scenario calls `fail MESSAGE` (which ends it) or returns normally; run.sh counts one test
# per scenario. Every wait has a generous bound and fails with what it waited for.

set -uo pipefail

k() { "$RG_KUBECTL" --kubeconfig "$E2E_KUBE_DIR/admin.kubeconfig" "$@"; }
helm() { "$RG_TOOLS/helm" --kubeconfig "$E2E_KUBE_DIR/admin.kubeconfig" "$@"; }

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

step() { echo "-- $*" >&2; }

# The scenario's EXIT trap (run.sh): on failure, the namespace's state for the reader.
e2e_exit() {
    [ $? -eq 0 ] || e2e_diagnose
}

# expect_eq WHAT GOT WANT
expect_eq() {
    [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
    echo "   ok: $1 = '$3'" >&2
}

# wait_until SECS WHAT CMD...: CMD succeeds within SECS seconds, else the scenario fails.
wait_until() {
    local secs=$1 what=$2 end
    shift 2
    end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$end" ] || fail "not within ${secs}s: $what"
        sleep 1
    done
}

# psql as the superuser, in database $1.
e2e_psql() {
    local db=$1
    shift
    psql "${E2E_PG_URL/\/postgres\?//$db?}" -XAtq -v ON_ERROR_STOP=1 "$@"
}

# e2e_setup NAME: namespace and database "$E2E_PREFIX-NAME" (underscores in the database),
# the Secret rollgate-database with the URL a hostNetwork pod uses (127.0.0.1 is the node's).
# Sets ns and db.
e2e_setup() {
    ns=$E2E_PREFIX-$1
    db=${ns//-/_}
    k create namespace "$ns" >/dev/null || fail "cannot create namespace $ns"
    e2e_psql postgres -c "CREATE DATABASE $db" || fail "cannot create database $db"
    local port
    port=$(sed -E 's|.*:([0-9]+)/.*|\1|' <<<"$E2E_PG_URL")
    k -n "$ns" create secret generic rollgate-database \
        --from-literal=url="postgresql://postgres@127.0.0.1:$port/$db?sslmode=disable" >/dev/null ||
        fail "cannot create the database Secret"
}

# e2e_migrations DIR N...: migrations with the given versions, each with its down file:
# 1 accounts, 2 accounts.email, 3 orders, 4 orders.total.
e2e_migrations() {
    local dir=$1 v
    shift
    mkdir -p "$dir"
    for v in "$@"; do
        case $v in
        1)
            echo 'CREATE TABLE accounts (id bigint PRIMARY KEY);' >"$dir/0001_accounts.up.sql"
            echo 'DROP TABLE accounts;' >"$dir/0001_accounts.down.sql"
            ;;
        2)
            echo 'ALTER TABLE accounts ADD COLUMN email text;' >"$dir/0002_accounts_email.up.sql"
            echo 'ALTER TABLE accounts DROP COLUMN email;' >"$dir/0002_accounts_email.down.sql"
            ;;
        3)
            echo 'CREATE TABLE orders (id bigint PRIMARY KEY);' >"$dir/0003_orders.up.sql"
            echo 'DROP TABLE orders;' >"$dir/0003_orders.down.sql"
            ;;
        4)
            echo 'ALTER TABLE orders ADD COLUMN total numeric;' >"$dir/0004_orders_total.up.sql"
            echo 'ALTER TABLE orders DROP COLUMN total;' >"$dir/0004_orders_total.down.sql"
            ;;
        esac
    done
}

# e2e_values DIR [JQ_ARGS...]: the chart's values for this cluster as JSON on stdout:
# the imported image, hostNetwork, the API server on 127.0.0.1 (the pods' in-cluster
# address would be a Service IP nothing serves here), migrations from DIR in a ConfigMap.
e2e_values() {
    local dir=$1 f values
    values=$(jq -n --arg repo "${E2E_IMAGE%:*}" --arg tag "${E2E_IMAGE##*:}" \
        --arg port "$(cat "$E2E_KUBE_DIR/port")" '{
        image: {repository: $repo, tag: $tag, pullPolicy: "Never"},
        database: {existingSecret: "rollgate-database"},
        hostNetwork: true,
        extraEnv: [{name: "KUBERNETES_SERVICE_HOST", value: "127.0.0.1"},
                   {name: "KUBERNETES_SERVICE_PORT", value: $port}],
        migrations: {source: "configMap", files: {}},
        job: {backoffLimit: 0}}')
    for f in "$dir"/*.sql; do
        values=$(jq --arg k "$(basename "$f")" --rawfile v "$f" '.migrations.files[$k] = $v' <<<"$values")
    done
    echo "$values"
}

# e2e_versions: the applied schema versions in $db, comma-separated ("" when none).
e2e_versions() {
    [ "$(e2e_psql "$db" -c "SELECT to_regclass('public.rollgate_migrations') IS NOT NULL")" = t ] ||
        return 0
    e2e_psql "$db" -c "SELECT coalesce(string_agg(version::text, ',' ORDER BY version), '')
        FROM rollgate_migrations WHERE kind = 'schema' AND state = 'applied'"
}

# e2e_columns TABLE: the table's columns in $db, comma-separated ("" when it does not exist).
e2e_columns() {
    e2e_psql "$db" -c "SELECT coalesce(string_agg(attname, ',' ORDER BY attnum), '') FROM pg_attribute
        WHERE attrelid = to_regclass('public.$1') AND attnum > 0 AND NOT attisdropped"
}

# e2e_pod_of_job JOB: the name of the Job's (last) pod.
e2e_pod_of_job() {
    k -n "$ns" get pods -l "job-name=$1" -o json |
        jq -er '.items | sort_by(.metadata.creationTimestamp) | last | .metadata.name'
}

# e2e_job_done JOB: the Job finished (Complete or Failed).
e2e_job_done() {
    k -n "$ns" get job "$1" -o json |
        jq -e '[.status.conditions[]? | select(.status == "True") | .type] | any(. == "Complete" or . == "Failed")'
}

# e2e_terminated POD CONTAINER FIELD: a field of the container's terminated state
# (exitCode, message, reason), init containers included.
e2e_terminated() {
    k -n "$ns" get pod "$1" -o json | jq -r --arg c "$2" --arg f "$3" \
        '[.status.containerStatuses[]?, .status.initContainerStatuses[]? | select(.name == $c)]
         | first | .state.terminated[$f] // "" | tostring'
}

# e2e_ready_pods SELECTOR: how many pods matching it are Ready.
e2e_ready_pods() {
    k -n "$ns" get pods -l "$1" -o json |
        jq '[.items[] | select(.metadata.deletionTimestamp == null)
             | select(any(.status.conditions[]?; .type == "Ready" and .status == "True"))] | length'
}

# e2e_ready SELECTOR N: exactly N pods matching it are Ready (for wait_until).
e2e_ready() { [ "$(e2e_ready_pods "$1")" -eq "$2" ]; }

# e2e_pods SELECTOR N: exactly N pods match it, deleted ones included (for wait_until).
e2e_pods() { [ "$(k -n "$ns" get pods -l "$1" -o name | wc -l)" -eq "$2" ]; }

# e2e_sa_token SA: the tokens controller gave the ServiceAccount its token Secret, so pods
# running as it can be created (for wait_until).
e2e_sa_token() { [ -n "$(k -n "$ns" get serviceaccount "$1" -o jsonpath='{.secrets[0].name}')" ]; }

# e2e_events POD: "REASON: message" of the Events on the pod, one a line, read with kubectl.
e2e_events() {
    k -n "$ns" get events --field-selector "involvedObject.kind=Pod,involvedObject.name=$1" -o json |
        jq -r '.items | sort_by(.metadata.creationTimestamp) | .[] | "\(.reason): \(.message)"'
}

# e2e_lease_holder NAME: the Lease's holderIdentity ("" when released).
e2e_lease_holder() {
    k -n "$ns" get lease "$1" -o json | jq -r '.spec.holderIdentity // ""'
}

# e2e_deployment NAME REPLICAS MODE [SA]: the application's Deployment (app container: the pause
# image) with the chart's documented init container: MODE "wait" (the README's snippet, lease
# mode none) or "migrate" (the chart's ServiceAccount SA takes the Lease). Its token is a
# projected, pod-bound one: the audit log then names the pod of every request it makes. Reads
# the release's ConfigMaps "$full-config" and "$full-migrations".
e2e_deployment() {
    local name=$1 replicas=$2 mode=$3 sa=${4:-default} port
    port=$(cat "$E2E_KUBE_DIR/port")
    # wait never writes and needs no RBAC: lease mode none, as the chart's README says.
    local lease_env='[{"name": "ROLLGATE_LEASE_MODE", "value": "none"}]'
    [ "$mode" = migrate ] && lease_env='[]'
    jq -n --arg name "$name" --argjson replicas "$replicas" --arg mode "$mode" --arg sa "$sa" \
        --arg image "$E2E_IMAGE" --arg pause "$E2E_PAUSE" --arg full "$full" --arg port "$port" \
        --argjson lease "$lease_env" '{
      apiVersion: "apps/v1", kind: "Deployment", metadata: {name: $name},
      spec: {replicas: $replicas, selector: {matchLabels: {app: $name}},
        template: {metadata: {labels: {app: $name}}, spec: {
          hostNetwork: true, serviceAccountName: $sa, automountServiceAccountToken: false,
          terminationGracePeriodSeconds: 30,
          securityContext: {runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532},
          initContainers: [{name: ("rollgate-" + $mode), image: $image, imagePullPolicy: "Never",
            args: [$mode],
            terminationMessagePolicy: "FallbackToLogsOnError",
            env: ([
              {name: "ROLLGATE_DATABASE_URL", valueFrom: {secretKeyRef: {name: "rollgate-database", key: "url"}}},
              {name: "POD_NAME", valueFrom: {fieldRef: {fieldPath: "metadata.name"}}},
              {name: "POD_NAMESPACE", valueFrom: {fieldRef: {fieldPath: "metadata.namespace"}}},
              {name: "ROLLGATE_CONFIG", value: "/etc/rollgate/config.yaml"},
              {name: "KUBERNETES_SERVICE_HOST", value: "127.0.0.1"},
              {name: "KUBERNETES_SERVICE_PORT", value: $port}] + $lease),
            volumeMounts: [
              {name: "rollgate-config", mountPath: "/etc/rollgate", readOnly: true},
              {name: "rollgate-migrations", mountPath: "/migrations", readOnly: true},
              {name: "token", mountPath: "/var/run/secrets/kubernetes.io/serviceaccount", readOnly: true}],
            securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
              capabilities: {drop: ["ALL"]}}}],
          containers: [{name: "app", image: $pause, imagePullPolicy: "Never"}],
          volumes: [
            {name: "rollgate-config", configMap: {name: ($full + "-config")}},
            {name: "rollgate-migrations", configMap: {name: ($full + "-migrations")}},
            {name: "token", projected: {sources: [
              {serviceAccountToken: {path: "token", expirationSeconds: 3600}},
              {configMap: {name: "kube-root-ca.crt", items: [{key: "ca.crt", path: "ca.crt"}]}},
              {downwardAPI: {items: [{path: "namespace", fieldRef: {fieldPath: "metadata.namespace"}}]}}]}}]}}}}' |
        k -n "$ns" apply -f - >/dev/null || fail "cannot apply Deployment $name"
}

# e2e_pod_requests POD: API requests the audit log has from the bound token of POD in $ns.
e2e_pod_requests() {
    jq -r --arg p "$1" --arg u "system:serviceaccount:$ns:" \
        'select(.user.extra["authentication.kubernetes.io/pod-name"] == [$p] and (.user.username | startswith($u)))
         | "\(.auditID) \(.verb) \(.objectRef.resource)/\(.objectRef.name // "") \(.responseStatus.code)"' \
        "$E2E_KUBE_DIR/audit.log" | sort -u >"$E2E_WORK/requests.$1"
    wc -l <"$E2E_WORK/requests.$1"
}

# e2e_diagnose: what a failed scenario leaves for the reader (stderr).
e2e_diagnose() {
    {
        echo "== state of namespace $ns"
        k -n "$ns" get jobs,pods,events -o wide
        local p
        for p in $(k -n "$ns" get pods -o name); do
            echo "== $p"
            k -n "$ns" get "$p" -o json | jq -c '.status.initContainerStatuses, .status.containerStatuses'
            k -n "$ns" logs "$p" --all-containers --tail=20
        done
    } >&2 2>&1
}

#!/usr/bin/env bash
# The fully static binary (the image's, see test_image.sh), alone in an empty root as in the
# scratch image (plus what Kubernetes mounts into every pod), migrates the test PostgreSQL under
# the real kube-apiserver's Lease.
# Needs RG_STATIC_BIN, RG_TEST_PG_URL, RG_TEST_KUBE_DIR, RG_TOOLS, RG_KUBECTL (see lib.sh).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
. "$here/pod.sh"
. "$here/cluster.sh"

ns=rollgate-test # the namespace, ServiceAccount and Role of kube-test-cluster.sh smoke
lease=empty-root-$$
export POD_MIGRATIONS=$RG_REPO/examples/migrations
sa_requests() { cluster_sa_requests "$ns" rollgate; }

db=$(cluster_database)
url=$(cluster_url "$db")

# A pod spec as the chart's Job would have it; pod_run materializes it in an empty root.
spec=$(jq -n --arg url "$url" --arg lease "$lease" '{
    serviceAccountName: "rollgate",
    securityContext: {runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532},
    containers: [{name: "migrate", args: ["migrate"],
        securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false},
        env: [{name: "ROLLGATE_DATABASE_URL", value: $url},
              {name: "ROLLGATE_LEASE_NAME", value: $lease},
              {name: "ROLLGATE_LOG_FORMAT", value: "json"},
              {name: "POD_NAME", valueFrom: {fieldRef: {fieldPath: "metadata.name"}}}]}]}')

before=$(sa_requests)
check_rc 0 "migrate in an empty read-only root as uid 65532 exits 0" \
    pod_run "$ns" migrate-pod-1 "$spec"
check_eq "every example migration applied, by the pod" \
    "$(cluster_psql "$db" -c "SELECT count(*) FILTER (WHERE applied_by = 'migrate-pod-1') FROM rollgate_migrations" 2>&1)" \
    "$(find "$POD_MIGRATIONS" -name '*.up.sql' | wc -l)"
check_grep "the summary line reached the termination log" "^migrate: applied [0-9]+ migrations" "$t_scratch/termination-log"
lease_json=$(kubectl_admin -n "$ns" get lease "$lease" -o json)
check_eq "the Lease was taken by the pod and released (holder emptied)" \
    "$(jq -r '"\(.spec.leaseTransitions // 0),\(.spec.holderIdentity // "")"' <<<"$lease_json")" "0,"
check "the ServiceAccount's token made the API requests" test "$(sa_requests)" -gt "$before"

before=$(sa_requests)
check_rc 0 "a second pod finds nothing to do and exits 0" pod_run "$ns" migrate-pod-2 "$spec"
check_eq "the second pod made no API request" "$(sa_requests)" "$before"

# Static glibc cannot name uid 65532 without /etc/passwd: rollgate must say to give the user.
nouser=$(jq --arg url "${url/postgres@/}" \
    '.containers[0].env[0].value = $url' <<<"$spec")
out=$(pod_run "$ns" migrate-pod-3 "$nouser" 2>&1)
check_eq "no database user and no /etc/passwd: exit 3" "$?" 3
check_grep "the message says to put the user in the URL" 'put the user in the URL' <(echo "$out")
check_no_grep "libpq was never reached (no connection error)" 'connection to server' <(echo "$out")

kubectl_admin -n "$ns" delete lease "$lease" >/dev/null
cluster_cleanup
t_done

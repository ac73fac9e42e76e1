# shellcheck shell=bash disable=SC2154 # ns, db, full: set by e2e_setup and the scenario
# A 3-replica Deployment whose init containers all run `rollgate migrate` at once (no hook
# Job: the chart's RBAC and ConfigMaps only): one pod leads and applies each migration once,
# the others wait on the database; all pods become Ready; the audit log, which names the pod of
# every request made with a pod-bound token, shows at most 2 API requests per follower.
e2e_setup race
full=app-rollgate
e2e_migrations "$E2E_WORK/race" 1 2
# A slow third migration keeps the leader busy while the followers arrive.
echo 'SELECT pg_sleep(8); CREATE TABLE orders (id bigint PRIMARY KEY);' >"$E2E_WORK/race/0003_orders.up.sql"
echo 'DROP TABLE orders;' >"$E2E_WORK/race/0003_orders.down.sql"
e2e_values "$E2E_WORK/race" >"$E2E_WORK/race.json"
helm template app "$RG_REPO/charts/rollgate" -n "$ns" -f "$E2E_WORK/race.json" --kube-version 1.20.2 \
    --show-only templates/serviceaccount.yaml --show-only templates/role.yaml \
    --show-only templates/rolebinding.yaml --show-only templates/configmap.yaml \
    --show-only templates/migrations-configmap.yaml >"$E2E_WORK/race.yaml" || fail "helm template failed"
k -n "$ns" apply -f "$E2E_WORK/race.yaml" >/dev/null || fail "cannot apply the chart's RBAC and ConfigMaps"
wait_until 120 "the ServiceAccount's token" e2e_sa_token "$full"

step "3 replicas, each with rollgate migrate as init container"
e2e_deployment api 3 migrate "$full"
wait_until 420 "api's 3 pods Ready" e2e_ready app=api 3
expect_eq "versions" "$(e2e_versions)" "1,2,3"
expect_eq "each migration has one history row" \
    "$(e2e_psql "$db" -c "SELECT count(*) FROM rollgate_migrations WHERE kind = 'schema'")" 3
expect_eq "the table exists once" "$(e2e_columns orders)" "id"
leader=$(e2e_psql "$db" -c "SELECT string_agg(DISTINCT applied_by, ',') FROM rollgate_migrations")
pods=$(k -n "$ns" get pods -l app=api -o jsonpath='{.items[*].metadata.name}')
grep -qw -- "$leader" <<<"$pods" || fail "the migrations were applied by '$leader', not one of the pods: $pods"
echo "   ok: one leader applied all three: $leader" >&2
for p in $pods; do
    expect_eq "$p: rollgate migrate exited 0" "$(e2e_terminated "$p" rollgate-migrate exitCode)" 0
    n=$(e2e_pod_requests "$p")
    if [ "$p" = "$leader" ]; then
        # Proves the audit log attributes requests to pods (else 0 everywhere would pass).
        [ "$n" -ge 2 ] || fail "the leader $p made $n API requests per the audit log, expected at least 2"
        echo "   ok: leader $p: $n API requests" >&2
    else
        [ "$n" -le 2 ] || fail "follower $p made $n API requests (audit log), at most 2 allowed"
        echo "   ok: follower $p: $n API requests (at most 2)" >&2
        msg=$(e2e_terminated "$p" rollgate-migrate message)
        grep -q '^migrate: no migration to apply' <<<"$msg" ||
            fail "follower $p did not leave the work to the leader: $msg"
    fi
done
events=$(e2e_events "$leader")
grep -q '^MigrationStarted: ' <<<"$events" || fail "no MigrationStarted Event on the leader: $events"
grep -q '^MigrationSucceeded: ' <<<"$events" || fail "no MigrationSucceeded Event on the leader: $events"
echo "   ok: Events on $leader: $(tr '\n' '|' <<<"$events")" >&2
expect_eq "the Lease was released" "$(e2e_lease_holder "$full")" ""

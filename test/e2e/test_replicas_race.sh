# shellcheck shell=bash disable=SC2154 # ns, db, full: set by e2e_setup and the scenario
# A 3-replica Deployment whose init containers all run `rollgate migrate` at once (no hook
# Job: the chart's RBAC and ConfigMaps only): one pod leads and applies each migration once,
# the others wait on the database; all pods become Ready; the audit log, which names the pod of
# every request made with a pod-bound token, shows at most 2 API requests per follower.
# The leader's work is a series of short migrations with one of 6 s among them, longer than
# lease.retryPeriod: while it runs the followers see no progress, ask the database whether the
# leader still has a session, and need not read the Lease (pkg/lease/leader.c).
e2e_setup race
full=app-rollgate
e2e_migrations "$E2E_WORK/race" 1 2
echo 'CREATE TABLE orders (id bigint PRIMARY KEY);' >"$E2E_WORK/race/0003_orders.up.sql"
# Ten steps of 0.7 s, the sixth of 6 s, keep the leader busy while the followers arrive.
for v in $(seq 4 13); do
    pause=0.7
    [ "$v" -ne 9 ] || pause=6
    printf 'SELECT pg_sleep(%s);\nALTER TABLE orders ADD COLUMN c%d int;\n' "$pause" "$v" >"$E2E_WORK/race/$(printf %04d "$v")_step.up.sql"
done
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
expect_eq "versions" "$(e2e_versions)" "$(seq -s, 1 13)"
expect_eq "each migration has one history row" \
    "$(e2e_psql "$db" -c "SELECT count(*) FROM rollgate_migrations WHERE kind = 'schema'")" 13
expect_eq "each column added once" "$(e2e_columns orders)" "id,$(seq -s, -f 'c%g' 4 13)"
leader=$(e2e_psql "$db" -c "SELECT string_agg(DISTINCT applied_by, ',') FROM rollgate_migrations")
pods=$(k -n "$ns" get pods -l app=api -o jsonpath='{.items[*].metadata.name}')
grep -qw -- "$leader" <<<"$pods" || fail "the migrations were applied by '$leader', not one of the pods: $pods"
echo "   ok: one leader applied all 13: $leader" >&2
for p in $pods; do
    expect_eq "$p: rollgate migrate exited 0" "$(e2e_terminated "$p" rollgate-migrate exitCode)" 0
    n=$(e2e_pod_requests "$p")
    if [ "$p" = "$leader" ]; then
        # Proves the audit log attributes requests to pods (else 0 everywhere would pass).
        [ "$n" -ge 2 ] || fail "the leader $p made $n API requests per the audit log, expected at least 2"
        echo "   ok: leader $p: $n API requests" >&2
    else
        [ "$n" -le 2 ] ||
            fail "follower $p made $n API requests (audit log), at most 2 allowed: $(cut -d' ' -f2- "$E2E_WORK/requests.$p" | tr '\n' '|')"
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

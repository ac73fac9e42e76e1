# shellcheck shell=bash disable=SC2154 # ns, db, full: set by e2e_setup and the scenario
# helm upgrade --atomic with a migration that fails: the hook Job fails with exit code 6 (a
# migration failed, its transaction rolled back), shown in the pod's termination message and as
# a MigrationFailed Event on the pod; Helm rolls the release back; the schema is unchanged; the
# application's pods of the installed release keep running, untouched.
# The upgrade's hook Job has the install's name (before-hook-creation deletes and recreates
# it): on 1.20 such a Job can wait up to 5 minutes for its pod (kubernetes#90550), which the
# 10-minute --timeout allows.
e2e_setup upgrade
full=app-rollgate
e2e_migrations "$E2E_WORK/v1" 1 2
e2e_values "$E2E_WORK/v1" >"$E2E_WORK/v1.json"
helm install app "$RG_REPO/charts/rollgate" -n "$ns" -f "$E2E_WORK/v1.json" --timeout 10m >&2 ||
    fail "helm install failed"
expect_eq "installed: versions" "$(e2e_versions)" "1,2"
e2e_deployment web 2 wait
wait_until 300 "web's 2 pods Ready" e2e_ready app=web 2
before=$(k -n "$ns" get pods -l app=web -o json |
    jq -c '[.items[] | {uid: .metadata.uid, restarts: [.status.containerStatuses[].restartCount]}] | sort')

step "helm upgrade --atomic with a failing migration 3"
e2e_migrations "$E2E_WORK/v2" 1 2
# The first statement succeeds, the second fails: both must be rolled back.
printf 'CREATE TABLE orders (id bigint PRIMARY KEY);\nALTER TABLE no_such_table ADD COLUMN x int;\n' \
    >"$E2E_WORK/v2/0003_orders.up.sql"
e2e_values "$E2E_WORK/v2" >"$E2E_WORK/v2.json"
if helm upgrade app "$RG_REPO/charts/rollgate" -n "$ns" -f "$E2E_WORK/v2.json" --atomic \
    --timeout 10m >&2; then
    fail "helm upgrade --atomic succeeded with a failing migration"
fi
status=$(helm status app -n "$ns" -o json) || fail "helm status failed"
expect_eq "the release is deployed again" "$(jq -r .info.status <<<"$status")" deployed
expect_eq "at revision 3, the rollback" "$(jq -r .version <<<"$status")" 3
grep -q '^Rollback to 1' <<<"$(jq -r .info.description <<<"$status")" ||
    fail "the release's description is not a rollback: $(jq -r .info.description <<<"$status")"

job=$(k -n "$ns" get job "$full-migrate" -o json) || fail "the failed hook Job was not kept"
expect_eq "the hook Job failed" "$(jq -r '.status.failed // 0' <<<"$job")" 1
pod=$(e2e_pod_of_job "$full-migrate") || fail "the hook Job has no pod"
expect_eq "the Job's pod exited 6 (a migration failed)" "$(e2e_terminated "$pod" migrate exitCode)" 6
msg=$(e2e_terminated "$pod" migrate message)
grep -q '^migrate failed: .*0003_orders.up.sql' <<<"$msg" ||
    fail "the termination message does not name the failing file: $msg"
grep -q 'no_such_table' <<<"$msg" || fail "the termination message lacks the database's error: $msg"
echo "   ok: termination message: $msg" >&2
events=$(e2e_events "$pod")
grep -q '^MigrationStarted: ' <<<"$events" || fail "no MigrationStarted Event on $pod: $events"
grep -q '^MigrationFailed: ' <<<"$events" || fail "no MigrationFailed Event on $pod: $events"
echo "   ok: Events on $pod (kubectl get events): $(tr '\n' '|' <<<"$events")" >&2

expect_eq "the schema is unchanged: versions" "$(e2e_versions)" "1,2"
expect_eq "no table orders (the failed migration's first statement rolled back)" "$(e2e_columns orders)" ""
expect_eq "no history row for version 3" \
    "$(e2e_psql "$db" -c "SELECT count(*) FROM rollgate_migrations WHERE version = 3")" 0
expect_eq "the Lease was released" "$(e2e_lease_holder "$full")" ""
expect_eq "the old pods still Ready" "$(e2e_ready_pods app=web)" 2
after=$(k -n "$ns" get pods -l app=web -o json |
    jq -c '[.items[] | {uid: .metadata.uid, restarts: [.status.containerStatuses[].restartCount]}] | sort')
expect_eq "the same pods, never restarted" "$after" "$before"

# shellcheck shell=bash disable=SC2154 # ns, db, full: set by e2e_setup and the scenario
# migrations.autoMigrate false: helm install renders and runs no hook Job; the application's
# init containers (`rollgate migrate`, reading the chart's config.yaml) pass at once without
# touching the database; the Lease is never taken.
e2e_setup off
full=app-rollgate
e2e_migrations "$E2E_WORK/off" 1 2
e2e_values "$E2E_WORK/off" | jq '.migrations.autoMigrate = false' >"$E2E_WORK/off.json"
helm install app "$RG_REPO/charts/rollgate" -n "$ns" -f "$E2E_WORK/off.json" --timeout 10m >&2 ||
    fail "helm install failed"
expect_eq "no Job in the namespace" "$(k -n "$ns" get jobs -o name)" ""
e2e_deployment api 2 migrate "$full"
wait_until 300 "api's 2 pods Ready" e2e_ready app=api 2
for p in $(k -n "$ns" get pods -l app=api -o jsonpath='{.items[*].metadata.name}'); do
    expect_eq "$p: rollgate migrate exited 0" "$(e2e_terminated "$p" rollgate-migrate exitCode)" 0
    msg=$(e2e_terminated "$p" rollgate-migrate message)
    grep -q 'skipped, auto-migrate is off' <<<"$msg" || fail "$p did not skip: $msg"
    expect_eq "$p made no API request" "$(e2e_pod_requests "$p")" 0
done
expect_eq "the database is untouched (no history table)" \
    "$(e2e_psql "$db" -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" 0
if k -n "$ns" get lease "$full" >/dev/null 2>&1; then
    fail "a Lease $full exists though nothing should have taken it"
fi
echo "   ok: no Lease" >&2

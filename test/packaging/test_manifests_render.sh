#!/usr/bin/env bash
# Renders manifests/ (the default, with the podFailurePolicy component), manifests/base and
# manifests/rollback with kustomize 5 (kubectl 1.32's `kubectl kustomize`) and checks their
# structure exactly: the least-privilege Role, every rollgate container's environment, config
# mount, security context and resources, the Jobs' limits and podFailurePolicy, no rollback Job
# in what an install applies, the image override, and the rollback target set the way
# manifests/README.md documents it (its deploy and rollback overlay blocks are rendered as
# written, and the rollback one without the component as Kubernetes < 1.26 needs it). Also the
# e2e job's overlays (.github/e2e), which only a kind cluster runs.
# Needs RG_REPO, RG_TOOLS and RG_STATIC_BIN (the binary also reads the shipped config).
# jq and yq filters are single-quoted on purpose.
# shellcheck disable=SC2016
# shellcheck source=test/packaging/lib.sh
source "$RG_REPO/test/packaging/lib.sh"

man=$RG_REPO/manifests
readme=$man/README.md
image=ghcr.io/rollgate/rollgate
s=$t_scratch

# render NAME DIR: kustomize DIR into $s/NAME.yaml and, as one JSON array, $s/NAME.json.
render() {
    kubectl132 kustomize "$2" >"$s/$1.yaml" && yq -s -c . "$s/$1.yaml" >"$s/$1.json"
}

# jqc NAME FILTER: the compact JSON jq makes of rendering NAME with FILTER.
jqc() { jq -cS "$2" "$s/$1.json" 2>&1; }

# A path to $man relative to directory $1, as kustomize wants it (no absolute resources).
rel_man() { realpath --relative-to="$1" "$man"; }

# The fenced yaml block of README.md that follows the HTML comment line naming MARKER.
readme_block() {
    awk -v m="<!-- $1" '{ l = $0; sub(/^ */, "", l) }
        on == 0 && index(l, m) == 1 { on = 1; next }
        on == 1 && l ~ /^```yaml/ { on = 2; ind = length($0) - length(l); next }
        on == 2 && l ~ /^```/ { exit }
        on == 2 { print substr($0, ind + 1) }' "$readme"
}

check "kustomize renders manifests (default)" render default "$man"
check "kustomize renders manifests/base" render base "$man/base"
check "kustomize renders manifests/rollback" render rollback "$man/rollback"
for f in default base rollback; do
    [ -s "$s/$f.json" ] || echo '[]' >"$s/$f.json"
done

# --- what is rendered -------------------------------------------------------------------------
want_objs='["ConfigMap/rollgate-config","Deployment/app-migrate","Deployment/app-wait","Job/rollgate-migrate","Role/rollgate","RoleBinding/rollgate","ServiceAccount/rollgate"]'
objs='map(.kind + "/" + (.metadata.name | sub("-[a-z0-9]{10}$"; ""))) | sort'
for f in default base; do
    check_eq "$f: exactly the documented objects" "$(jqc $f "$objs")" "$want_objs"
done
check_eq "rollback: exactly the documented objects (base's and the rollback Job)" \
    "$(jqc rollback "$objs")" "$(jq -c '. + ["Job/rollgate-rollback"] | sort' <<<"$want_objs")"
for f in default base rollback; do
    check_eq "$f: no object names a namespace (the overlay or -n does)" \
        "$(jqc $f '[.[] | select(.metadata.namespace)] | length')" "0"
done
# What an install applies has no rollback Job, so it creates no Job that fails.
for f in default base; do
    check_eq "$f: the only Job is rollgate-migrate (no rollback Job)" \
        "$(jqc $f '[.[] | select(.kind == "Job" or .kind == "CronJob") | .metadata.name]')" '["rollgate-migrate"]'
    check_eq "$f: nothing carries the rollback label" \
        "$(jqc $f '[.. | objects | select(.["app.kubernetes.io/component"] == "rollback")] | length')" "0"
done
check_eq "rollback: base's objects unchanged, plus the rollback Job" \
    "$(jqc rollback 'map(select(.metadata.name != "rollgate-rollback"))')" "$(jqc base '.')"
check_eq "rollback: -l app.kubernetes.io/component=rollback selects the rollback Job only" \
    "$(jqc rollback '[.[] | select(.metadata.labels["app.kubernetes.io/component"] == "rollback")
        | .kind + "/" + .metadata.name]')" '["Job/rollgate-rollback"]'
check_eq "rollback: the Job mounts base's generated ConfigMap, by its hashed name" \
    "$(jqc rollback '[.[] | select(.kind == "Job" and .metadata.name == "rollgate-rollback")
        | .spec.template.spec.volumes[].configMap.name]')" \
    "$(jqc base '[.[] | select(.kind == "ConfigMap") | .metadata.name]')"
check_eq "default and base generate the same ConfigMap name" \
    "$(jqc default '[.[] | select(.kind == "ConfigMap") | .metadata.name]')" \
    "$(jqc base '[.[] | select(.kind == "ConfigMap") | .metadata.name]')"
check_grep "the ConfigMap name is hashed" '^  name: rollgate-config-[a-z0-9]{10}$' "$s/base.yaml"

# --- RBAC -------------------------------------------------------------------------------------
want_rules='[{"apiGroups":["coordination.k8s.io"],"resources":["leases"],"verbs":["create","get","update"]},{"apiGroups":[""],"resources":["events"],"verbs":["create"]}]'
rules='[.[] | select(.kind == "Role") | .rules[] | {apiGroups, resources, verbs: (.verbs | sort)}
        + (if (keys - ["apiGroups", "resources", "verbs"]) == [] then {} else {extra: keys} end)]'
for f in default base rollback; do
    check_eq "$f: Role rollgate has exactly leases get/create/update and events create" \
        "$(jqc $f "$rules")" "$want_rules"
    check_eq "$f: RoleBinding binds Role rollgate to ServiceAccount rollgate only" \
        "$(jqc $f '[.[] | select(.kind == "RoleBinding") | {roleRef, subjects}]')" \
        '[{"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"rollgate"},"subjects":[{"kind":"ServiceAccount","name":"rollgate"}]}]'
done

# --- the generated config ---------------------------------------------------------------------
cfg_json=$(jq -r '.[] | select(.kind == "ConfigMap") | .data["config.yaml"]' "$s/default.json" |
    yq -cS . 2>&1)
check_eq "config.yaml: migrations /migrations, Lease rollgate (kubernetes, 15s/10s/2s, 10m), JSON logs" \
    "$cfg_json" \
    '{"lease":{"duration":"15s","mode":"kubernetes","name":"rollgate","renewDeadline":"10s","retryPeriod":"2s","waitTimeout":"10m"},"log":{"format":"json"},"migrations":{"dir":"/migrations"}}'
mkdir -p "$s/nomigrations"
check "config.yaml: rollgate validate accepts it" \
    "$RG_STATIC_BIN" --config "$man/base/config.yaml" --database-url 'postgres://u@127.0.0.1:1/x' \
    --dir "$s/nomigrations" validate
check_rc 3 "an empty ROLLGATE_MIGRATIONS_TARGET exits 3 (manifests/rollback's default)" \
    env ROLLGATE_MIGRATIONS_TARGET= "$RG_STATIC_BIN" --config "$man/base/config.yaml" \
    --database-url 'postgres://u@127.0.0.1:1/x' --dir "$s/nomigrations" migrate

# --- every rollgate container -----------------------------------------------------------------
# Each pod-template object's rollgate containers (image $image...), with what is wrong with each.
problems='
  def pods: .[] | select(.spec.template.spec) | {obj: (.kind + "/" + .metadata.name),
      spec: .spec.template.spec};
  def env($n): [ (.env // [])[] | select(.name == $n) ];
  [ .[] | select(.kind == "ConfigMap") | .metadata.name ][0] as $cm | [ pods | . as $p | (.spec.initContainers // [], .spec.containers)[]
    | select(.image | startswith($img)) | . as $c
    | { c: ($p.obj + ":" + .name), bad: [
        (if env("ROLLGATE_DATABASE_URL") != [{"name":"ROLLGATE_DATABASE_URL","valueFrom":{"secretKeyRef":{"name":"rollgate-database","key":"url"}}}]
         then "ROLLGATE_DATABASE_URL" else empty end),
        (if env("POD_NAME") != [{"name":"POD_NAME","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}]
         then "POD_NAME" else empty end),
        (if env("ROLLGATE_CONFIG") != [{"name":"ROLLGATE_CONFIG","value":"/etc/rollgate/config.yaml"}]
         then "ROLLGATE_CONFIG" else empty end),
        ([ (.volumeMounts // [])[] | select(.mountPath == "/etc/rollgate") ] as $m
         | if ($m | length) != 1 or $m[0].readOnly != true then "mount /etc/rollgate read-only"
           elif [ ($p.spec.volumes // [])[] | select(.name == $m[0].name) | .configMap.name ] != [$cm]
           then "the mount is not the generated ConfigMap" else empty end),
        (if ([ (.volumeMounts // [])[] | select(.mountPath == "/migrations") ] | length) != 0
         then "something mounted over /migrations" else empty end),
        (if .terminationMessagePolicy != "FallbackToLogsOnError" then "terminationMessagePolicy" else empty end),
        (if .securityContext != {"allowPrivilegeEscalation":false,"readOnlyRootFilesystem":true,"capabilities":{"drop":["ALL"]}}
         then "container securityContext" else empty end),
        (if .resources != {"requests":{"cpu":"50m","memory":"32Mi"},"limits":{"memory":"64Mi"}}
         then "resources" else empty end),
        (if $p.spec.securityContext != {"runAsNonRoot":true,"runAsUser":65532,"runAsGroup":65532,"seccompProfile":{"type":"RuntimeDefault"}}
         then "pod securityContext" else empty end),
        (if $c.image != ($img + ":0.1.0") then "image " + $c.image else empty end)
      ] } ]'
want_cs='["Deployment/app-migrate:rollgate","Deployment/app-wait:rollgate","Job/rollgate-migrate:migrate"]'
for f in default base rollback; do
    want=$want_cs
    [ $f = rollback ] && want=$(jq -c '. + ["Job/rollgate-rollback:rollback"]' <<<"$want_cs")
    check_eq "$f: the rollgate containers (the Jobs, 2 init containers)" \
        "$(jq -c --arg img "$image" "$problems | map(.c)" "$s/$f.json" 2>&1)" "$want"
    check_eq "$f: every rollgate container has the env, config mount, security context, resources" \
        "$(jq -c --arg img "$image" "$problems | map(select(.bad != [])) " "$s/$f.json" 2>&1)" "[]"
    check_eq "$f: every container of every pod drops ALL, no escalation, read-only root" \
        "$(jqc $f '[.[] | .spec.template.spec // empty | (.initContainers // [], .containers)[]
            | select(.securityContext.allowPrivilegeEscalation != false
                or .securityContext.readOnlyRootFilesystem != true
                or .securityContext.capabilities.drop != ["ALL"]
                or .securityContext.privileged == true) | .name]')" "[]"
    check_eq "$f: the example apps are pause placeholders" \
        "$(jqc $f '[.[] | select(.kind == "Deployment") | .spec.template.spec.containers[] | .image] | unique')" \
        '["registry.k8s.io/pause:3.9"]'
done

# --- the Jobs ---------------------------------------------------------------------------------
job='def job($n): .[] | select(.kind == "Job" and .metadata.name == $n);
     def env($n): [ (.env // [])[] | select(.name == $n) | .value ];
     def shape: {backoffLimit: .spec.backoffLimit, deadline: .spec.activeDeadlineSeconds,
       ttl: .spec.ttlSecondsAfterFinished, restart: .spec.template.spec.restartPolicy,
       sa: .spec.template.spec.serviceAccountName,
       containers: [ .spec.template.spec.containers[] | {name, args, command,
         target: env("ROLLGATE_MIGRATIONS_TARGET")} ],
       init: (.spec.template.spec.initContainers // [] | length)};'
for f in default base rollback; do
    check_eq "$f: Job rollgate-migrate: backoff 2, deadline 900s, TTL 1d, Never, SA rollgate, migrate --phase pre" \
        "$(jqc $f "$job"' [job("rollgate-migrate") | shape]')" \
        '[{"backoffLimit":2,"containers":[{"args":["migrate","--phase","pre"],"command":null,"name":"migrate","target":[]}],"deadline":900,"init":0,"restart":"Never","sa":"rollgate","ttl":86400}]'
done
check_eq "rollback: Job rollgate-rollback: the same limits, migrate with an empty target" \
    "$(jqc rollback "$job"' [job("rollgate-rollback") | shape]')" \
    '[{"backoffLimit":2,"containers":[{"args":["migrate"],"command":null,"name":"rollback","target":[""]}],"deadline":900,"init":0,"restart":"Never","sa":"rollgate","ttl":86400}]'

# --- the Deployments --------------------------------------------------------------------------
dep='def dep($n): .[] | select(.kind == "Deployment" and .metadata.name == $n) | .spec.template.spec;
     def env($n): [ (.env // [])[] | select(.name == $n) | .value ];'
check_eq "app-wait: init container rollgate runs wait, no token, default SA, lease mode none" \
    "$(jqc default "$dep"' [dep("app-wait") | {sa: .serviceAccountName, token: .automountServiceAccountToken,
        init: [.initContainers[] | {name, args, command, lease: env("ROLLGATE_LEASE_MODE")}]}]')" \
    '[{"init":[{"args":["wait"],"command":null,"lease":["none"],"name":"rollgate"}],"sa":"default","token":false}]'
check_eq "app-migrate: init container rollgate runs migrate --phase pre with SA rollgate and the Lease" \
    "$(jqc default "$dep"' [dep("app-migrate") | {sa: .serviceAccountName, token: .automountServiceAccountToken,
        init: [.initContainers[] | {name, args, command, lease: env("ROLLGATE_LEASE_MODE")}]}]')" \
    '[{"init":[{"args":["migrate","--phase","pre"],"command":null,"lease":[],"name":"rollgate"}],"sa":"rollgate","token":null}]'

# --- podFailurePolicy: in the default (and a rollback overlay that lists it) only --------------
pfp() {
    printf '[{"rules":[{"action":"FailJob","onExitCodes":{"containerName":"%s","operator":"In","values":[1,2,3,4,5,6,10]}},{"action":"Ignore","onPodConditions":[{"type":"DisruptionTarget"}]}]}]' "$1"
}
check_eq "default: rollgate-migrate's podFailurePolicy fails the Job on 1-6 and 10, ignores disruptions" \
    "$(jqc default '[.[] | select(.kind == "Job" and .metadata.name == "rollgate-migrate") | .spec.podFailurePolicy]')" \
    "$(jq -cS . <<<"$(pfp migrate)")"
for f in base rollback; do
    check_no_grep "$f: no podFailurePolicy (Kubernetes 1.20 has no such field)" 'podFailurePolicy' "$s/$f.yaml"
    check_no_grep "$f: no field newer than Kubernetes 1.20 (suspend, completionMode, podReplacementPolicy)" \
        '^ *(suspend|completionMode|podReplacementPolicy|backoffLimitPerIndex|managedBy):' "$s/$f.yaml"
done
check_eq "default is base plus podFailurePolicy, nothing else" \
    "$(jqc default 'map(del(.spec.podFailurePolicy))')" "$(jqc base '.')"
# The component has one patch per Job; each must patch its Job in a documented rendering (the
# default for rollgate-migrate, the README's rollback overlay for rollgate-rollback, below).
check_eq "the component patches exactly the Jobs rollgate-migrate, rollgate-post-migrate and rollgate-rollback" \
    "$(yq -cS '[.patches[].target.name] | sort' "$man/components/pod-failure-policy/kustomization.yaml" 2>&1)" \
    '["rollgate-migrate","rollgate-post-migrate","rollgate-rollback"]'

# readme_overlay MARKER DIR: README's block MARKER as DIR/kustomization.yaml, its ../manifests
# paths pointing at $man.
readme_overlay() {
    mkdir -p "$2"
    readme_block "$1" | sed "s#\.\./manifests\b#$(rel_man "$2")#" >"$2/kustomization.yaml"
}

# --- the image is overridden in one place: README's deploy overlay ----------------------------
readme_overlay deploy-overlay "$s/deploy"
check_grep "README's deploy overlay sets images:" '^images:' "$s/deploy/kustomization.yaml"
check "README's deploy overlay renders" render deploy "$s/deploy"
check_eq "deploy overlay: images: changes every rollgate container and nothing else" \
    "$(jqc deploy '[.[] | .spec.template.spec // empty | (.initContainers // [], .containers)[] | .image] | group_by(.) | map({(.[0]): length}) | add')" \
    '{"registry.example.com/myapp-migrations:1.4.2":3,"registry.k8s.io/pause:3.9":2}'
check_eq "deploy overlay: no rollback Job" \
    "$(jqc deploy '[.[] | select(.kind == "Job") | .metadata.name]')" '["rollgate-migrate"]'

# --- the post-deploy Job: README's overlay with components/post-deploy -------------------------
readme_overlay post-deploy-overlay "$s/post"
check "README's post-deploy overlay renders" render post "$s/post"
check_eq "post: base's objects and the Job rollgate-post-migrate" \
    "$(jqc post "$objs")" "$(jq -c '. + ["Job/rollgate-post-migrate"] | sort' <<<"$want_objs")"
check_eq "post: Role rollgate may also get the one Deployment the Job waits for" \
    "$(jqc post '[.[] | select(.kind == "Role") | .rules[] | select(.apiGroups == ["apps"])]')" \
    '[{"apiGroups":["apps"],"resourceNames":["app-migrate"],"resources":["deployments"],"verbs":["get"]}]'
check_eq "post: Job rollgate-post-migrate waits for deployment/app-migrate, then applies the post phase" \
    "$(jqc post "$job"' [job("rollgate-post-migrate") | shape]')" \
    '[{"backoffLimit":2,"containers":[{"args":["migrate","--phase","post","--after-rollout","deployment/app-migrate"],"command":null,"name":"post-migrate","target":[]}],"deadline":900,"init":0,"restart":"Never","sa":"rollgate","ttl":86400}]'
check_eq "post: its podFailurePolicy names its container" \
    "$(jqc post '[.[] | select(.kind == "Job" and .metadata.name == "rollgate-post-migrate") | .spec.podFailurePolicy]')" \
    "$(jq -cS . <<<"$(pfp post-migrate)")"
check_eq "post: its container has the env, config mount, security context, resources" \
    "$(jq -c --arg img "$image" "$problems | map(select(.bad != [])) " "$s/post.json" 2>&1)" "[]"
check_eq "post: the rest is the default's (base and the podFailurePolicy), but for the namespace" \
    "$(jqc post 'map(select(.metadata.name != "rollgate-post-migrate")) | walk(if type == "object" then del(.namespace) else . end) | map(if .kind == "Role" then .rules |= map(select(.apiGroups != ["apps"])) else . end)')" \
    "$(jqc default '.')"
check_eq "components/post-deploy sets the image tag base/ sets" \
    "$(yq -c '.images' "$man/components/post-deploy/kustomization.yaml" 2>&1)" \
    "$(yq -c '.images' "$man/base/kustomization.yaml" 2>&1)"
check_eq "default: no post-deploy Job" \
    "$(jqc default '[.[] | select(.metadata.name == "rollgate-post-migrate")] | length')" "0"

# --- the rollback target, as manifests/README.md sets it --------------------------------------
# As written (Kubernetes >= 1.26, with the podFailurePolicy component), and without the
# component's line, as the README says before 1.26.
readme_overlay rollback-overlay "$s/overlay"
check_grep "README's rollback overlay sets the target in a patch" \
    'name: ROLLGATE_MIGRATIONS_TARGET' "$s/overlay/kustomization.yaml"
check_eq "README's rollback overlay is on manifests/rollback (its first resource)" \
    "$(readme_block rollback-overlay | yq -r '.resources[0]' 2>&1)" "../manifests/rollback"
mkdir -p "$s/overlay120"
grep -v '/components/pod-failure-policy' "$s/overlay/kustomization.yaml" >"$s/overlay120/kustomization.yaml"
check "README's rollback overlay without the component's line differs" \
    bash -c "! cmp -s '$s/overlay/kustomization.yaml' '$s/overlay120/kustomization.yaml'"
check "README's rollback overlay renders" render overlay "$s/overlay"
check "README's rollback overlay renders without the component" render overlay120 "$s/overlay120"
for f in overlay overlay120; do
    check_eq "$f: the rollback container's target is 3, its other env unchanged" \
        "$(jqc $f '[.[] | select(.kind == "Job" and .metadata.name == "rollgate-rollback")
            | .spec.template.spec.containers[] | {name, env: (.env | map(.name) | sort),
              target: [.env[] | select(.name == "ROLLGATE_MIGRATIONS_TARGET") | .value]}]')" \
        '[{"env":["POD_NAME","POD_NAMESPACE","ROLLGATE_CONFIG","ROLLGATE_DATABASE_URL","ROLLGATE_MIGRATIONS_TARGET"],"name":"rollback","target":["3"]}]'
    check_eq "$f: no other container gets a target" \
        "$(jqc $f '[.[] | .spec.template.spec // empty | (.initContainers // [], .containers)[]
            | select(any(.env[]?; .name == "ROLLGATE_MIGRATIONS_TARGET")) | .name]')" '["rollback"]'
    check_eq "$f: -l app.kubernetes.io/component=rollback selects the rollback Job only" \
        "$(jqc $f '[.[] | select(.metadata.labels["app.kubernetes.io/component"] == "rollback")
            | .kind + "/" + .metadata.name]')" '["Job/rollgate-rollback"]'
    # Only the Job is applied: it must name what the deploy overlay applied.
    check_eq "$f: the rollback Job has the deploy overlay's namespace, image and ConfigMap" \
        "$(jqc $f '[.[] | select(.kind == "Job" and .metadata.name == "rollgate-rollback")
            | [.metadata.namespace, .spec.template.spec.containers[0].image,
               .spec.template.spec.volumes[0].configMap.name]]')" \
        "$(jqc deploy '[.[] | select(.kind == "Job" and .metadata.name == "rollgate-migrate")
            | [.metadata.namespace, .spec.template.spec.containers[0].image,
               .spec.template.spec.volumes[0].configMap.name]]')"
done
check_eq "overlay: the rollback Job's podFailurePolicy names its container rollback" \
    "$(jqc overlay '[.[] | select(.kind == "Job" and .metadata.name == "rollgate-rollback") | .spec.podFailurePolicy]')" \
    "$(jq -cS . <<<"$(pfp rollback)")"
check_no_grep "overlay120: no podFailurePolicy (Kubernetes < 1.26)" 'podFailurePolicy' "$s/overlay120.yaml"
check_eq "overlay120: the same as overlay, but for podFailurePolicy" \
    "$(jqc overlay120 '.')" "$(jqc overlay 'map(del(.spec.podFailurePolicy))')"

# --- the e2e job's overlays (.github/e2e): what the kind cluster applies ----------------------
e2e=$RG_REPO/.github/e2e
check "e2e: the deploy overlay renders" render e2e-deploy "$e2e/manifests"
check "e2e: the shipped rollback overlay renders" render e2e-shipped "$e2e/manifests-rollback-shipped"
check "e2e: the rollback overlay renders" render e2e-rollback "$e2e/manifests-rollback"
check_eq "e2e: the deploy overlay has no rollback Job" \
    "$(jqc e2e-deploy '[.[] | select(.kind == "Job") | .metadata.name]')" '["rollgate-migrate"]'
rb='[.[] | select(.metadata.labels["app.kubernetes.io/component"] == "rollback") | {o: (.kind + "/" + .metadata.name),
    ns: .metadata.namespace, pfp: (.spec.podFailurePolicy != null), c: [.spec.template.spec.containers[]?
    | {name, image, t: [.env[] | select(.name == "ROLLGATE_MIGRATIONS_TARGET") | .value]}],
    cm: [.spec.template.spec.volumes[]?.configMap.name]}]'
e2e_cm=$(jqc e2e-deploy '[.[] | select(.kind == "ConfigMap") | .metadata.name]')
e2e_want() { # TARGET: what $rb gives for an e2e rollback overlay with that target
    jq -cS --arg t "$1" --argjson cm "$e2e_cm" -n '[{o: "Job/rollgate-rollback", ns: "manifests-e2e",
        pfp: true, c: [{name: "rollback", image: "rollgate-app:e2e", t: [$t]}], cm: $cm}]'
}
check_eq "e2e: the shipped rollback overlay: its Job only, empty target, the e2e image and the deploy's ConfigMap" \
    "$(jqc e2e-shipped "$rb")" "$(e2e_want '')"
check_eq "e2e: the rollback overlay: its Job only, target 1, the e2e image and the deploy's ConfigMap" \
    "$(jqc e2e-rollback "$rb")" "$(e2e_want 1)"

# --- components/postgres-tls: the CA for sslmode=verify-full in every rollgate container -------
mkdir -p "$s/tls"
cat >"$s/tls/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(rel_man "$s/tls")/rollback
components:
  - $(rel_man "$s/tls")/components/postgres-tls
EOF
check "postgres-tls: base, rollback and the component render" render tls "$s/tls"
check "postgres-tls: rollback alone renders" render notls "$man/rollback"
# Per Job and Deployment: its rollgate container's PGSSLROOTCERT and CA mount, and the volume.
ca='[.[] | select(.kind == "Job" or .kind == "Deployment") | .spec.template.spec as $p
    | {o: .metadata.name, c: [($p.initContainers // $p.containers)[0]
       | ([.env[] | select(.name == "PGSSLROOTCERT") | .value]
          + [.volumeMounts[] | select(.name == "rollgate-tls-ca") | "\(.mountPath) ro=\(.readOnly)"])],
      v: [$p.volumes[] | select(.name == "rollgate-tls-ca") | .secret]}] | sort_by(.o)'
check_eq "postgres-tls: every rollgate container gets PGSSLROOTCERT and the CA, read-only" \
    "$(jqc tls "$ca")" "$(jq -cS -n '["app-migrate", "app-wait", "rollgate-migrate", "rollgate-rollback"]
    | map({o: ., c: [["/var/run/rollgate/tls/ca.crt", "/var/run/rollgate/tls ro=true"]],
           v: [{secretName: "rollgate-postgres-ca", items: [{key: "ca.crt", path: "ca.crt"}]}]})')"
check_eq "postgres-tls: nothing of it without the component" \
    "$(jqc notls '[.. | strings | select(test("rollgate-tls-ca|PGSSLROOTCERT"))]')" '[]'

# --- components/direct-url: database.directUrl where migrations run, not in app-wait -----------
mkdir -p "$s/direct"
cat >"$s/direct/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(rel_man "$s/direct")/rollback
components:
  - $(rel_man "$s/direct")/components/direct-url
EOF
check "direct-url: base, rollback and the component render" render direct "$s/direct"
direct='[.[] | select(.kind == "Job" or .kind == "Deployment") | .spec.template.spec as $p
    | {o: .metadata.name, d: [($p.initContainers // $p.containers)[0].env[]
       | select(.name == "ROLLGATE_DATABASE_DIRECT_URL") | .valueFrom.secretKeyRef]}] | sort_by(.o)'
check_eq "direct-url: the containers that migrate get it from the Secret, app-wait does not" \
    "$(jqc direct "$direct")" "$(jq -cS -n '[{o: "app-migrate", d: [{name: "rollgate-database", key: "directUrl"}]},
        {o: "app-wait", d: []},
        {o: "rollgate-migrate", d: [{name: "rollgate-database", key: "directUrl"}]},
        {o: "rollgate-rollback", d: [{name: "rollgate-database", key: "directUrl"}]}]')"
check_eq "direct-url: nothing of it without the component" \
    "$(jqc notls '[.. | strings | select(test("DIRECT_URL"))]')" '[]'

t_done

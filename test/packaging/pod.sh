# Sourced after lib.sh by the tests that run rollgate as a Kubernetes pod would run it, without a
# kubelet: the static binary in an otherwise empty root (the scratch image), under the pod's
# numeric user, with a read-only root filesystem when the container asks for one, and with what
# the kubelet would provide taken from the API server itself: env values from the stored Secret
# and ConfigMap, ConfigMap volumes written at their mount paths, the ServiceAccount's bound
# token, the cluster CA and namespace, KUBERNETES_SERVICE_HOST/PORT, /etc/hosts,
# /etc/resolv.conf and a writable /dev/termination-log.

# pod_root ROOT: the image's filesystem: /rollgate and nothing else, plus the files Kubernetes
# mounts into every pod. /etc/hosts names the test PostgreSQL "postgres.test" (as a Service name
# would), so database URLs exercise static glibc's name lookup.
pod_root() {
    local root=$1
    mkdir -p "$root/etc" "$root/dev"
    install -m 755 "$RG_STATIC_BIN" "$root/rollgate"
    printf '127.0.0.1\tlocalhost\n127.0.0.1\tpostgres.test\n' >"$root/etc/hosts"
    # Nothing answers DNS on loopback: every name used here is in /etc/hosts.
    printf 'nameserver 127.0.0.1\noptions ndots:5\n' >"$root/etc/resolv.conf"
    : >"$root/dev/termination-log"
    chmod 644 "$root/etc/hosts" "$root/etc/resolv.conf"
}

# pod_token NS SA: a bound token for the ServiceAccount, as the kubelet projects into a pod.
pod_token() {
    kubectl132 --kubeconfig "$RG_TEST_KUBE_DIR/admin.kubeconfig" create token "$2" -n "$1" \
        --duration=1h
}

# pod_service_account ROOT NS SA: the token, CA and namespace at the standard path.
pod_service_account() {
    local root=$1 ns=$2 sa=$3 d
    d=$root/var/run/secrets/kubernetes.io/serviceaccount
    mkdir -p "$d"
    pod_token "$ns" "$sa" >"$d/token" || return 1
    cp "$RG_TEST_KUBE_DIR/ca.crt" "$d/ca.crt"
    printf '%s' "$ns" >"$d/namespace"
    chmod 644 "$d/token" "$d/ca.crt" "$d/namespace"
}

# pod_object_key NS KIND NAME KEY: one decoded key of a stored Secret or ConfigMap, byte for
# byte (jq -j adds no newline: a mounted migration's checksum depends on it).
pod_object_key() {
    local filter=.data[\$k]
    [ "$2" = secret ] && filter='.data[$k] | @base64d'
    kubectl_admin -n "$1" get "$2" "$3" -o json | jq -ej --arg k "$4" "$filter"
}

# pod_env NS POD CONTAINER_JSON: the container's environment, NUL-separated NAME=VALUE, as the
# kubelet resolves it. Fails on a source it does not know, so a chart change cannot slip by.
pod_env() {
    local ns=$1 pod=$2 c=$3 name kind ref key value
    # \x1f separates the fields: a tab would be whitespace to read and merge empty fields. An
    # empty value is stored as no value at all (the last case).
    while IFS=$'\x1f' read -r name kind ref key value; do
        case $kind in
        value) printf '%s=%s\0' "$name" "$(base64 -d <<<"$value")" ;;
        secretKeyRef) printf '%s=%s\0' "$name" "$(pod_object_key "$ns" secret "$ref" "$key")" ;;
        configMapKeyRef) printf '%s=%s\0' "$name" "$(pod_object_key "$ns" configmap "$ref" "$key")" ;;
        fieldRef)
            case $key in
            metadata.name) printf '%s=%s\0' "$name" "$pod" ;;
            metadata.namespace) printf '%s=%s\0' "$name" "$ns" ;;
            *) echo "pod_env: $name: fieldRef $key not supported" >&2 && return 1 ;;
            esac
            ;;
        *) echo "pod_env: $name: unsupported source $kind" >&2 && return 1 ;;
        esac
    done < <(jq -r '(.env // [])[] |
        if has("value") then [.name, "value", "", "", (.value | @base64)]
        elif .valueFrom.secretKeyRef then [.name, "secretKeyRef", .valueFrom.secretKeyRef.name, .valueFrom.secretKeyRef.key, ""]
        elif .valueFrom.configMapKeyRef then [.name, "configMapKeyRef", .valueFrom.configMapKeyRef.name, .valueFrom.configMapKeyRef.key, ""]
        elif .valueFrom.fieldRef then [.name, "fieldRef", "", .valueFrom.fieldRef.fieldPath, ""]
        elif .valueFrom then [.name, "other", "", "", ""]
        else [.name, "value", "", "", ""] end | join("\u001f")' <<<"$c")
}

# pod_volumes ROOT NS SPEC_JSON CONTAINER_JSON: writes each ConfigMap volume the container mounts
# at its mount path (all keys, or the volume's items); any other volume type fails.
pod_volumes() {
    local root=$1 ns=$2 spec=$3 c=$4 vol path vjson cm k p
    while IFS=$'\t' read -r vol path; do
        vjson=$(jq -c --arg v "$vol" '.volumes[] | select(.name == $v)' <<<"$spec")
        cm=$(jq -r '.configMap.name // empty' <<<"$vjson")
        [ -n "$cm" ] || {
            echo "pod_volumes: volume $vol is not a ConfigMap" >&2
            return 1
        }
        mkdir -p "$root$path"
        while IFS=$'\t' read -r k p; do
            pod_object_key "$ns" configmap "$cm" "$k" >"$root$path/$p" || return 1
            chmod 644 "$root$path/$p"
        done < <(kubectl_admin -n "$ns" get configmap "$cm" -o json |
            jq -r --argjson v "$vjson" 'if $v.configMap.items then $v.configMap.items[] | [.key, .path]
                else .data | keys[] | [., .] end | @tsv')
    done < <(jq -r '(.volumeMounts // [])[] | [.name, .mountPath] | @tsv' <<<"$c")
}

# pod_run NS POD SPEC_JSON [CONTAINER_NAME]: runs the container or init container named (else
# the first container) of the pod spec SPEC_JSON (say a stored Job's .spec.template.spec) in a
# fresh empty root; the image's /migrations are $POD_MIGRATIONS when set. Prints rollgate's
# stderr, leaves the termination message in $t_scratch/termination-log, and returns rollgate's
# exit status.
pod_run() {
    local ns=$1 pod=$2 spec=$3 cname=${4:-} c root uid gid ro sa args=() envs=() rc=0
    if [ -n "$cname" ]; then
        c=$(jq -c --arg n "$cname" '(.initContainers // []) + .containers | .[] | select(.name == $n)' <<<"$spec")
    else
        c=$(jq -c '.containers[0]' <<<"$spec")
    fi
    [ -n "$c" ] || {
        echo "pod_run: no container ${cname:-at all} in the pod spec" >&2
        return 1
    }
    root=$(mktemp -d "$t_scratch/root.XXXXXX")
    chmod 755 "$root"
    pod_root "$root"
    if [ -n "${POD_MIGRATIONS:-}" ]; then
        mkdir -p "$root/migrations"
        cp "$POD_MIGRATIONS"/* "$root/migrations/"
        chmod -R a+rX "$root/migrations"
    fi
    sa=$(jq -r '.serviceAccountName // "default"' <<<"$spec")
    # Not `// true`: jq's alternative operator would turn false into true as well.
    if [ "$(jq -r '.automountServiceAccountToken != false' <<<"$spec")" = true ]; then
        pod_service_account "$root" "$ns" "$sa" || return 1
    fi
    pod_volumes "$root" "$ns" "$spec" "$c" || return 1
    pod_env "$ns" "$pod" "$c" >"$root.env" || return 1
    mapfile -d '' envs <"$root.env"
    envs+=("KUBERNETES_SERVICE_HOST=127.0.0.1" "KUBERNETES_SERVICE_PORT=$(cat "$RG_TEST_KUBE_DIR/port")")
    # The container's securityContext wins over the pod's; the image's USER is 65532:65532.
    uid=$(jq -r --argjson c "$c" '$c.securityContext.runAsUser // .securityContext.runAsUser // 65532' <<<"$spec")
    gid=$(jq -r --argjson c "$c" '$c.securityContext.runAsGroup // .securityContext.runAsGroup // 65532' <<<"$spec")
    ro=$(jq -r '.securityContext.readOnlyRootFilesystem // false' <<<"$c")
    mapfile -t args < <(jq -r '(.command // ["/rollgate"]) + (.args // ["migrate"]) | .[]' <<<"$c")
    : >"$t_scratch/termination-log"
    chmod 666 "$t_scratch/termination-log" # as the kubelet leaves it, for any uid
    env -i "${envs[@]}" /usr/bin/unshare --mount --pid --fork --kill-child \
        /bin/sh -c '
            root=$1 ro=$2 log=$3 user=$4; shift 4
            /usr/bin/mount --bind "$root" "$root" || exit 125
            if [ "$ro" = true ]; then /usr/bin/mount -o remount,bind,ro "$root" || exit 125; fi
            /usr/bin/mount --bind "$log" "$root/dev/termination-log" || exit 125
            exec /usr/sbin/chroot --userspec="$user" "$root" "$@"' \
        pod "$root" "$ro" "$t_scratch/termination-log" "$uid:$gid" "${args[@]}" || rc=$?
    return "$rc"
}

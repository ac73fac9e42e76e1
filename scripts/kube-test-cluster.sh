#!/usr/bin/env bash
# A throwaway Kubernetes API server (etcd + kube-apiserver 1.20.2, no controllers, no nodes) for
# tests of the Lease client. Everything listens on 127.0.0.1 only.
#   scripts/kube-test-cluster.sh start DIR   etcd and kube-apiserver on free ports, per-run
#                                            certificates; prints the server URL
#   scripts/kube-test-cluster.sh smoke DIR   namespace rollgate-test, ServiceAccount rollgate with
#                                            a Role for leases and events, a token for it (written
#                                            to DIR/rollgate.token), and Lease calls with that token
#   scripts/kube-test-cluster.sh node DIR    on a cluster started with KUBE_NODE=1 (below): a
#                                            real node "localhost" (containerd, kubelet,
#                                            kube-controller-manager, kube-scheduler) with the
#                                            pause image and the docker-archives named in
#                                            KUBE_NODE_IMAGES (words) imported; returns once
#                                            the node is Ready and tokens are issued
#   scripts/kube-test-cluster.sh stop DIR    stop every server started in DIR, restore what
#                                            the kubelet changed, remove DIR
# DIR after start: port, ca.crt, admin.crt, admin.key (O=system:masters), admin.kubeconfig,
# etcd.pid, apiserver.pid, audit.log, etcd.log, apiserver.log.
# audit.log has one JSON line per finished API request (level Metadata, stage ResponseComplete;
# long-running watches also log ResponseStarted); the server's own loopback requests are there
# too, under user system:apiserver: count by .user.username.
# The binary comes from scripts/kube-apiserver.sh (a cold build takes about 8 minutes), or
# from KUBE_APISERVER if set.
# The node (test/e2e): start with KUBE_NODE=1 so the API server lets a kubelet join
# (--allow-privileged, kubelet reached as "localhost" with the admin certificate). Its parts
# come from `scripts/kube-apiserver.sh --node`, containerd and runc from Debian. Each part has
# its own state under DIR/node (containerd's root, state and socket; the kubelet's root dir;
# pod cgroups under one cgroup root of its own); pods use hostNetwork (the CNI config is
# loopback only), the images are imported (imagePullPolicy Never), nothing is pulled. Pod
# logs land in /var/log/pods as kubelet 1.20 always puts them: stop removes those of the
# namespaces named in DIR/node/namespaces (one prefix a line).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { echo "kube-test-cluster.sh: $*" >&2; }
die() {
    log "$*"
    exit 1
}

# apt_install_missing
# shellcheck source=scripts/lib/apt.sh
. "$here/lib/apt.sh"

usage() {
    echo "usage: $0 start|smoke|node|stop DIR" >&2
    exit 2
}

[ $# -eq 2 ] || usage
cmd=$1
dir=$2

# True when something accepts TCP connections on 127.0.0.1:$1.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A port nothing listens on now, different from those given; the server that takes it may
# still lose a race, which start_* below detect and retry.
free_port() {
    local port low
    # Below the kernel's ephemeral range: an outgoing connection of another test on the
    # machine cannot take the port between this check and the server's bind.
    read -r low _ </proc/sys/net/ipv4/ip_local_port_range
    [ "$low" -gt 12000 ] || low=32768
    while :; do
        port=$((10000 + (RANDOM * 32768 + RANDOM) % (low - 10000)))
        case " $* " in *" $port "*) continue ;; esac
        port_in_use "$port" || break
    done
    echo "$port"
}

# Stops the process in pid file $1 if it is still the command $2 (a pid may be reused).
stop_pidfile() {
    local pidfile=$1 comm=$2 pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ]; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            [ -d "/proc/$pid" ] || break
            sleep 0.1
        done
        if [ -d "/proc/$pid" ]; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pidfile"
}

# Per-run PKI: nothing is shared between runs or with the machine.
make_certs() {
    local d=$1
    (
        cd "$d"
        umask 077
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
            -subj "/CN=rollgate-test-ca" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
        # The serving cert: clients connect to 127.0.0.1 or localhost, and check the IP SAN.
        openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
            -subj "/CN=kube-apiserver" 2>/dev/null
        printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
            "extendedKeyUsage=serverAuth" \
            "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc" \
            >apiserver.ext
        openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
            -out apiserver.crt -days 2 -extfile apiserver.ext 2>/dev/null
        # The admin client: O=system:masters is bound to cluster-admin by the default RBAC policy.
        openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr \
            -subj "/O=system:masters/CN=rollgate-admin" 2>/dev/null
        printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
            "extendedKeyUsage=clientAuth" >admin.ext
        openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
            -out admin.crt -days 2 -extfile admin.ext 2>/dev/null
        # Service-account tokens are signed with sa.key and checked with sa.pub.
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
        openssl pkey -in sa.key -pubout -out sa.pub
        rm -f ./*.csr ./*.ext ca.srl
        chmod 644 ca.crt admin.crt apiserver.crt sa.pub
    )
}

# curl as the admin (TLS verified against DIR/ca.crt). Prints the body and then the status.
admin_curl() {
    curl -sS --cacert "$dir/ca.crt" --cert "$dir/admin.crt" --key "$dir/admin.key" "$@" \
        -w '\n%{http_code}'
}

start_etcd() {
    local client peer
    for _ in 1 2 3 4 5; do
        client=$(free_port)
        peer=$(free_port "$client")
        # Plain HTTP is fine: only 127.0.0.1, and only the API server talks to it.
        etcd --name rollgate --data-dir "$dir/etcd" \
            --listen-client-urls "http://127.0.0.1:$client" \
            --advertise-client-urls "http://127.0.0.1:$client" \
            --listen-peer-urls "http://127.0.0.1:$peer" \
            --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
            --initial-cluster "rollgate=http://127.0.0.1:$peer" \
            --initial-cluster-state new --logger=zap --log-level=warn \
            </dev/null >"$dir/etcd.log" 2>&1 &
        echo $! >"$dir/etcd.pid"
        for _ in $(seq 1 100); do
            if [ "$(curl -s "http://127.0.0.1:$client/health" 2>/dev/null)" = '{"health":"true"}' ]; then
                echo "$client" >"$dir/etcd.port"
                return 0
            fi
            [ -d "/proc/$(cat "$dir/etcd.pid")" ] || break
            sleep 0.1
        done
        stop_pidfile "$dir/etcd.pid" etcd
        grep -q "address already in use" "$dir/etcd.log" || {
            cat "$dir/etcd.log" >&2
            die "etcd did not start"
        }
        rm -rf "$dir/etcd"
    done
    die "etcd: no free port after 5 tries"
}

start_apiserver() {
    local apiserver=$1 port extra
    local sa_issuer=https://kubernetes.default.svc
    if [ "${KUBE_NODE:-}" = 1 ]; then
        extra=(--allow-privileged=true --kubelet-preferred-address-types=Hostname
            --kubelet-client-certificate="$dir/admin.crt" --kubelet-client-key="$dir/admin.key")
    else
        extra=()
    fi
    for _ in 1 2 3 4 5; do
        port=$(free_port "$(cat "$dir/etcd.port")")
        # --insecure-port=0: 1.20 still opens an unauthenticated 127.0.0.1:8080 by default.
        # --endpoint-reconciler-type=none: the "kubernetes" Service's Endpoints would name
        # 127.0.0.1, which Endpoints validation rejects (loopback); nothing here reads them.
        # Default admission plugins are kept: ServiceAccount only acts on pods, which these
        # tests never create. The service range is a config value; nothing is sent there.
        "$apiserver" \
            --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
            --secure-port="$port" --insecure-port=0 \
            --tls-cert-file="$dir/apiserver.crt" --tls-private-key-file="$dir/apiserver.key" \
            --client-ca-file="$dir/ca.crt" \
            --etcd-servers="http://127.0.0.1:$(cat "$dir/etcd.port")" \
            --authorization-mode=Node,RBAC \
            --service-account-issuer="$sa_issuer" \
            --service-account-signing-key-file="$dir/sa.key" \
            --service-account-key-file="$dir/sa.pub" \
            --api-audiences="$sa_issuer" \
            --service-cluster-ip-range=10.0.0.0/24 \
            --endpoint-reconciler-type=none \
            --audit-policy-file="$dir/audit-policy.yaml" \
            --audit-log-path="$dir/audit.log" --audit-log-mode=blocking \
            --cert-dir="$dir/certs" \
            --profiling=false \
            "${extra[@]}" \
            </dev/null >"$dir/apiserver.log" 2>&1 &
        echo $! >"$dir/apiserver.pid"
        # Readiness includes the RBAC bootstrap roles (poststarthook/rbac/bootstrap-roles).
        for _ in $(seq 1 600); do
            if [ "$(admin_curl "https://127.0.0.1:$port/readyz" 2>/dev/null | tail -n1)" = 200 ]; then
                echo "$port" >"$dir/port"
                return 0
            fi
            [ -d "/proc/$(cat "$dir/apiserver.pid")" ] || break
            sleep 0.1
        done
        stop_pidfile "$dir/apiserver.pid" kube-apiserver
        grep -q "address already in use" "$dir/apiserver.log" || {
            tail -n 30 "$dir/apiserver.log" >&2
            die "kube-apiserver did not become ready (log: $dir/apiserver.log)"
        }
    done
    die "kube-apiserver: no free port after 5 tries"
}

start() {
    # Debian's etcd-server starts a system etcd on 2379 where services run; ours never uses it.
    apt_install_missing etcd-server openssl curl jq
    local apiserver=${KUBE_APISERVER:-}
    if [ -z "$apiserver" ]; then
        apiserver=$("$here/kube-apiserver.sh" | tail -n1)
    fi
    [ -x "$apiserver" ] || die "no kube-apiserver at '$apiserver'"

    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ -e "$dir/apiserver.pid" ] || [ -e "$dir/etcd.pid" ]; then
        die "$dir has a cluster already"
    fi
    chmod 700 "$dir"
    make_certs "$dir"
    # Metadata for every request; RequestReceived is left out so a request is one line.
    cat >"$dir/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
EOF
    # A failed start (die exits) leaves no server behind.
    trap 'stop_pidfile "$dir/apiserver.pid" kube-apiserver; stop_pidfile "$dir/etcd.pid" etcd' EXIT
    start_etcd
    start_apiserver "$apiserver"
    trap - EXIT

    local port
    port=$(cat "$dir/port")
    cat >"$dir/admin.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: rollgate-test
    cluster:
      server: https://127.0.0.1:$port
      certificate-authority: $dir/ca.crt
users:
  - name: admin
    user:
      client-certificate: $dir/admin.crt
      client-key: $dir/admin.key
contexts:
  - name: rollgate-test
    context: {cluster: rollgate-test, user: admin, namespace: rollgate-test}
current-context: rollgate-test
EOF
    echo "https://127.0.0.1:$port"
}

# The sysctls kubelet 1.20 sets on start (setupKernelTunables); node records them first and
# stop puts back those it changed.
KUBELET_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
    kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
CGROUP_FS=/sys/fs/cgroup

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
    local secs=$1
    shift
    for _ in $(seq 1 "$((secs * 2))"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    return 1
}

node_kubectl() { "$(cat "$dir/node/kubectl-path")" --kubeconfig "$dir/admin.kubeconfig" "$@"; }
node_ctr() { ctr --address "$dir/node/containerd/containerd.sock" -n k8s.io "$@"; }

node_ready() {
    [ "$(node_kubectl get node localhost \
        -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}

# The tokens controller has given the default ServiceAccount its token Secret: pods can start.
node_tokens() {
    [ -n "$(node_kubectl -n default get serviceaccount default -o jsonpath='{.secrets[0].name}')" ]
}

# The controller manager (its token controller makes the ServiceAccount tokens the pods
# need) on a port of its own; its log is kept across a restart.
start_controller_manager() {
    local n=$dir/node cport
    # port, kport, hport, sport: the caller's (node), seen through bash's dynamic scope.
    cport=$(free_port "$port" "$kport" "$hport" "$sport")
    "$parts/kube-controller-manager" --kubeconfig="$dir/admin.kubeconfig" \
        --authentication-kubeconfig="$dir/admin.kubeconfig" \
        --authorization-kubeconfig="$dir/admin.kubeconfig" \
        --leader-elect=false --bind-address=127.0.0.1 --secure-port="$cport" --port=0 \
        --service-account-private-key-file="$dir/sa.key" --root-ca-file="$dir/ca.crt" \
        --use-service-account-credentials=false \
        </dev/null >>"$n/log/controller-manager.log" 2>&1 &
    echo $! >"$n/controller-manager.pid"
}

# The tokens are there; or, when the controller manager has died (a port taken between
# the check and its bind, seen once on a loaded machine), it is started again and the
# wait goes on.
node_tokens_or_restart() {
    node_tokens && return 0
    if [ "$(cat "/proc/$(cat "$dir/node/controller-manager.pid")/comm" 2>/dev/null)" != kube-controller ]; then
        # wait_for silences this function: the note goes to the log that a failure prints.
        echo "kube-test-cluster.sh: kube-controller-manager exited; starting it again" \
            >>"$dir/node/log/controller-manager.log"
        start_controller_manager
    fi
    return 1
}

# One cgroup per v1 hierarchy under which the kubelet makes kubepods; cpuset needs its cpus
# and mems copied from the parent before anything can join it.
node_cgroup_root() {
    local root=$1 h
    for h in "$CGROUP_FS"/*/; do
        h=${h%/}
        [ -e "$h/cgroup.procs" ] || continue
        mkdir -p "$h$root"
        if [ -e "$h/cpuset.cpus" ]; then
            cat "$h/cpuset.cpus" >"$h$root/cpuset.cpus"
            cat "$h/cpuset.mems" >"$h$root/cpuset.mems"
        fi
    done
}

node_start() {
    [ -f "$dir/port" ] || die "no cluster in $dir (run start first)"
    [ ! -e "$dir/node/containerd.pid" ] || die "$dir has a node already"
    apt_install_missing containerd runc containernetworking-plugins
    local parts port n="$dir/node" kport hport sport cport
    parts=$("$here/kube-apiserver.sh" --node | tail -n1)
    port=$(cat "$dir/port")
    mkdir -p "$n/containerd" "$n/cni" "$n/kubelet" "$n/log"
    echo "$(dirname "$("$here/kube-apiserver.sh" | tail -n1)")/kubectl" >"$n/kubectl-path"
    echo "/rollgate-e2e-$(basename "$dir")" >"$n/cgroup-root"
    local s
    for s in "${KUBELET_SYSCTLS[@]}"; do
        echo "$s $(sysctl -n "$s")"
    done >"$n/sysctls"

    # containerd: its own root, state and socket; restrict_oom_score_adj because in a
    # container the kubelet's negative oom_score_adj for pods cannot be set; the native
    # snapshotter needs no overlay mounts.
    cat >"$n/containerd/config.toml" <<TOML
version = 2
root = "$n/containerd/root"
state = "$n/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$n/containerd/containerd.sock"
[ttrpc]
  address = "$n/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$n/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "k8s.gcr.io/pause:3.2"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$n/cni"
TOML
    # Loopback only: enough for the runtime to report its network ready; pods use hostNetwork.
    echo '{"cniVersion":"0.4.0","name":"rollgate-lo","plugins":[{"type":"loopback"}]}' \
        >"$n/cni/10-loopback.conflist"
    containerd --config "$n/containerd/config.toml" </dev/null >"$n/log/containerd.log" 2>&1 &
    echo $! >"$n/containerd.pid"
    wait_for 60 node_ctr version || die "containerd did not start (log: $n/log/containerd.log)"
    local img
    for img in "$parts/pause.tar" ${KUBE_NODE_IMAGES:-}; do
        node_ctr images import --snapshotter native "$img" >&2 || die "ctr could not import $img"
    done

    node_cgroup_root "$(cat "$n/cgroup-root")"
    kport=$(free_port "$port")
    hport=$(free_port "$port" "$kport")
    cat >"$n/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $kport
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $hport
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "$dir/ca.crt"}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupRoot: "$(cat "$n/cgroup-root")"
failSwapOn: false
makeIPTablesUtilChains: false
# A shared machine's disk is not this node's to police: no evictions, no image GC.
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
YAML
    AWS_EC2_METADATA_DISABLED=true "$parts/kubelet" --config="$n/kubelet.yaml" \
        --kubeconfig="$dir/admin.kubeconfig" --hostname-override=localhost \
        --container-runtime=remote \
        --container-runtime-endpoint="unix://$n/containerd/containerd.sock" \
        --root-dir="$n/kubelet" --cert-dir="$n/kubelet-pki" \
        --volume-plugin-dir="$n/kubelet-plugins" \
        </dev/null >"$n/log/kubelet.log" 2>&1 &
    echo $! >"$n/kubelet.pid"

    sport=$(free_port "$port" "$kport" "$hport")
    "$parts/kube-scheduler" --kubeconfig="$dir/admin.kubeconfig" \
        --authentication-kubeconfig="$dir/admin.kubeconfig" \
        --authorization-kubeconfig="$dir/admin.kubeconfig" \
        --leader-elect=false --bind-address=127.0.0.1 --secure-port="$sport" --port=0 \
        </dev/null >"$n/log/scheduler.log" 2>&1 &
    echo $! >"$n/scheduler.pid"
    start_controller_manager

    wait_for 180 node_ready || {
        tail -n 40 "$n/log/kubelet.log" >&2
        die "node localhost not Ready after 180 s (logs: $n/log)"
    }
    wait_for 120 node_tokens_or_restart || {
        tail -n 40 "$n/log/controller-manager.log" >&2
        die "no ServiceAccount token after 120 s (log: $n/log/controller-manager.log)"
    }
    log "node localhost Ready"
}

# Pids of the containerd shims serving this node's containerd (found by its socket path in
# their command line: the shims outlive containerd by design).
node_shims() {
    local p
    for p in /proc/[0-9]*; do
        # comm is cut to 15 characters: containerd-shim-runc-v2 reads "containerd-shim".
        [ "$(cat "$p/comm" 2>/dev/null)" = containerd-shim ] || continue
        tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "-address $dir/node/containerd/containerd.sock " &&
            echo "${p#/proc/}"
    done
}

node_stop() {
    local n="$dir/node" id pid m name value root h
    [ -d "$n" ] || return 0
    stop_pidfile "$n/kubelet.pid" kubelet
    stop_pidfile "$n/controller-manager.pid" kube-controller
    stop_pidfile "$n/scheduler.pid" kube-scheduler
    # The pods' processes: SIGKILL through containerd, then the shims.
    if [ -S "$n/containerd/containerd.sock" ]; then
        for id in $(node_ctr tasks ls -q 2>/dev/null); do
            node_ctr tasks kill -s SIGKILL "$id" >/dev/null 2>&1
        done
        sleep 1
        for id in $(node_ctr tasks ls -q 2>/dev/null); do
            node_ctr tasks delete -f "$id" >/dev/null 2>&1
        done
    fi
    for pid in $(node_shims); do
        kill -KILL "$pid" 2>/dev/null || true
    done
    stop_pidfile "$n/containerd.pid" containerd
    # Mounts made under DIR (secrets' tmpfs, sandboxes' shm, containers' rootfs), deepest first.
    awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
        while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
    if [ -f "$n/cgroup-root" ]; then
        root=$(cat "$n/cgroup-root")
        for h in "$CGROUP_FS"/*/; do
            [ -d "$h${root#/}" ] || continue
            find "$h${root#/}" -depth -type d -exec rmdir {} + 2>/dev/null || true
        done
    fi
    if [ -f "$n/sysctls" ]; then
        while read -r name value; do
            [ "$(sysctl -n "$name")" = "$value" ] || sysctl -qw "$name=$value" >/dev/null || true
        done <"$n/sysctls"
    fi
    if [ -f "$n/namespaces" ]; then
        while read -r prefix; do
            [ -n "$prefix" ] || continue
            rm -rf /var/log/pods/"${prefix}"*
            rm -f /var/log/containers/*_"${prefix}"*
        done <"$n/namespaces"
    fi
}

stop() {
    [ -d "$dir" ] || return 0
    # Only a directory this script filled is removed.
    [ -e "$dir/ca.crt" ] || [ -e "$dir/etcd.pid" ] || [ -e "$dir/apiserver.pid" ] ||
        die "$dir does not look like a kube-test-cluster directory; not removing it"
    node_stop
    stop_pidfile "$dir/apiserver.pid" kube-apiserver
    stop_pidfile "$dir/etcd.pid" etcd
    rm -rf "$dir"
}

smoke() {
    [ -f "$dir/port" ] || die "no cluster in $dir (run start first)"
    local base checks=0 ns=rollgate-test
    base="https://127.0.0.1:$(cat "$dir/port")"

    # call WANT[,WANT...] AS METHOD PATH [BODY]: one API request, as admin or with the token;
    # fails the smoke test unless the status is one of WANT. The body is left in $body.
    body=
    call() {
        local want=$1 as=$2 method=$3 path=$4 data=${5:-} out status
        local -a args=(-X "$method" -H 'Accept: application/json')
        [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
        if [ "$as" = admin ]; then
            out=$(admin_curl "${args[@]}" "$base$path")
        else
            out=$(curl -sS --cacert "$dir/ca.crt" -H "Authorization: Bearer $(cat "$dir/rollgate.token")" \
                "${args[@]}" -w '\n%{http_code}' "$base$path")
        fi
        status=${out##*$'\n'}
        body=${out%$'\n'*}
        checks=$((checks + 1))
        case ",$want," in
        *",$status,"*) echo "smoke: $as $method $path -> $status" ;;
        *)
            echo "smoke: $as $method $path -> $status, want $want: $body" >&2
            die "smoke test failed"
            ;;
        esac
    }

    # Setup as admin; 409 (exists) is accepted so smoke can run twice on one cluster.
    call 201,409 admin POST /api/v1/namespaces "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$ns\"}}"
    call 201,409 admin POST "/api/v1/namespaces/$ns/serviceaccounts" \
        '{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"rollgate"}}'
    call 201,409 admin POST "/apis/rbac.authorization.k8s.io/v1/namespaces/$ns/roles" '{
      "apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"rollgate"},
      "rules":[
        {"apiGroups":["coordination.k8s.io"],"resources":["leases"],"verbs":["get","create","update"]},
        {"apiGroups":["","events.k8s.io"],"resources":["events"],"verbs":["create"]}]}'
    call 201,409 admin POST "/apis/rbac.authorization.k8s.io/v1/namespaces/$ns/rolebindings" "{
      \"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"kind\":\"RoleBinding\",\"metadata\":{\"name\":\"rollgate\"},
      \"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"Role\",\"name\":\"rollgate\"},
      \"subjects\":[{\"kind\":\"ServiceAccount\",\"name\":\"rollgate\",\"namespace\":\"$ns\"}]}"
    # A bound token, as the kubelet would project into a pod.
    call 201 admin POST "/api/v1/namespaces/$ns/serviceaccounts/rollgate/token" \
        '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":3600}}'
    (
        umask 077
        jq -er .status.token <<<"$body" >"$dir/rollgate.token"
    )

    # Audit lines by the ServiceAccount's user (one per request: see the policy in start).
    sa_requests() {
        jq -r --arg u "system:serviceaccount:$ns:rollgate" 'select(.user.username == $u) | .auditID' \
            "$dir/audit.log" | wc -l
    }
    local before
    before=$(sa_requests)

    # The Lease client's calls, with the token. The labels and annotations are maps, and curl's
    # User-Agent gets pretty JSON: that encoding is what crashed with the vendored reflect2 1.0.1
    # (see kube-apiserver.sh).
    local name="smoke-$RANDOM$RANDOM" now rv
    now=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
    call 201 token POST "/apis/coordination.k8s.io/v1/namespaces/$ns/leases" "{
      \"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",
      \"metadata\":{\"name\":\"$name\",\"labels\":{\"app\":\"rollgate\"},\"annotations\":{\"a\":\"b\"}},
      \"spec\":{\"holderIdentity\":\"pod-a\",\"leaseDurationSeconds\":15,
                \"acquireTime\":\"$now\",\"renewTime\":\"$now\",\"leaseTransitions\":0}}"
    call 200 token GET "/apis/coordination.k8s.io/v1/namespaces/$ns/leases/$name"
    [ "$(jq -r .spec.holderIdentity <<<"$body")" = pod-a ] || die "lease holder is not pod-a: $body"
    [ "$(jq -r .metadata.labels.app <<<"$body")" = rollgate ] || die "lease labels lost: $body"
    rv=$(jq -er .metadata.resourceVersion <<<"$body")
    now=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
    local update
    update=$(jq -c --arg now "$now" '.spec.renewTime = $now' <<<"$body")
    call 200 token PUT "/apis/coordination.k8s.io/v1/namespaces/$ns/leases/$name" "$update"
    [ "$(jq -r .metadata.resourceVersion <<<"$body")" != "$rv" ] || die "update kept resourceVersion $rv"
    # The same update again carries the old resourceVersion: a conflict.
    call 409 token PUT "/apis/coordination.k8s.io/v1/namespaces/$ns/leases/$name" "$update"
    call 201 token POST "/api/v1/namespaces/$ns/events" "{
      \"apiVersion\":\"v1\",\"kind\":\"Event\",\"metadata\":{\"generateName\":\"rollgate-\"},
      \"involvedObject\":{\"kind\":\"Lease\",\"apiVersion\":\"coordination.k8s.io/v1\",\"namespace\":\"$ns\",\"name\":\"$name\"},
      \"reason\":\"Smoke\",\"message\":\"smoke test\",\"type\":\"Normal\"}"
    # Outside the Role: forbidden.
    call 403 token DELETE "/apis/coordination.k8s.io/v1/namespaces/$ns/leases/$name"
    call 403 token GET "/api/v1/namespaces/$ns/secrets"
    call 403 token GET "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/x"

    # The token made 8 requests: exactly 8 new audit lines under the ServiceAccount.
    local after
    after=$(sa_requests)
    [ $((after - before)) -eq 8 ] || die "audit.log has $((after - before)) new requests by the ServiceAccount, want 8"
    echo "smoke: audit.log counted $((after - before)) requests by system:serviceaccount:$ns:rollgate"
    echo "smoke: ok ($checks API checks)"
}

case $cmd in
start) start ;;
node) node_start ;;
stop) stop ;;
smoke) smoke ;;
*) usage ;;
esac

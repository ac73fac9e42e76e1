#!/usr/bin/env bash
# Builds kube-apiserver (and kubectl) 1.20.2 from Debian's `kubernetes` source package and
# caches them, so tests of the Lease client can run against a real API server.
#   scripts/kube-apiserver.sh     print the cached kube-apiserver's path (last line of stdout),
#                                 building it first when the cache has no working one
#   scripts/kube-apiserver.sh --node
#                                 the same for a node's parts (test/e2e): print the directory
#                                 holding kubelet, kube-controller-manager, kube-scheduler and
#                                 pause.tar (the pod sandbox image k8s.gcr.io/pause:3.2, a
#                                 docker-archive of build/pause/linux/pause.c built static)
# kubectl is cached beside it: "$(dirname "$(scripts/kube-apiserver.sh | tail -n1)")/kubectl".
# Logs go to stderr. A cold build takes about 8 minutes on 2 cores; run it in the background
# where a command may not take that long.
#
# Cache: /var/cache/rollgate/kubernetes-1.20.2/ (override with KUBE_CACHE_DIR) and, for the
# node, kubernetes-node-1.20.2/ (KUBE_NODE_CACHE_DIR); one build fills whichever is missing.
# /var/cache and not $HOME: the build needs root anyway (apt-get), the binaries are the
# machine's and not one user's, and whoever runs the tests (a developer, CI) with whatever HOME
# finds the same copy.
set -euo pipefail

KUBE_VERSION=1.20.2 # upstream version; Debian's is 1.20.5+really1.20.2-1.1+deb12u1
# kubelet 1.20's default sandbox image; containerd is told the same name (test/e2e/cluster.sh).
PAUSE_IMAGE=k8s.gcr.io/pause:3.2
CACHE_ROOT=${KUBE_CACHE_ROOT:-/var/cache/rollgate}
API_DIR=${KUBE_CACHE_DIR:-$CACHE_ROOT/kubernetes-$KUBE_VERSION}
NODE_DIR=${KUBE_NODE_CACHE_DIR:-$CACHE_ROOT/kubernetes-node-$KUBE_VERSION}
API_BINARIES=(kube-apiserver kubectl)
NODE_BINARIES=(kubelet kube-controller-manager kube-scheduler)
node=false
[ "${1:-}" = --node ] && node=true
# The source tree and Go's cache while building; removed once the binaries are cached.
BUILD_DIR=$CACHE_ROOT/build
# Debian's reflect2 1.0.2 (golang-github-modern-go-reflect2-dev), put over the vendored 1.0.1.
REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2

log() { echo "kube-apiserver.sh: $*" >&2; }
die() {
    log "$*"
    exit 1
}

# True when the API server and kubectl in the cache run and report the version we build.
api_ok() {
    [ -x "$API_DIR/kube-apiserver" ] && [ -x "$API_DIR/kubectl" ] || return 1
    [ "$("$API_DIR/kube-apiserver" --version 2>/dev/null)" = "Kubernetes v$KUBE_VERSION" ] &&
        [ "$("$API_DIR/kubectl" version --client --short 2>/dev/null)" = "Client Version: v$KUBE_VERSION" ]
}

# The same for the node's parts.
node_ok() {
    local b
    [ -s "$NODE_DIR/pause.tar" ] || return 1
    for b in "${NODE_BINARIES[@]}"; do
        [ -x "$NODE_DIR/$b" ] && [ "$("$NODE_DIR/$b" --version 2>/dev/null)" = "Kubernetes v$KUBE_VERSION" ] ||
            return 1
    done
}

cached_ok() {
    if $node; then node_ok; else api_ok; fi
}

# What a caller gets: the API server's path, or the node parts' directory.
print_result() {
    if $node; then
        echo "$NODE_DIR"
    else
        echo "$API_DIR/kube-apiserver"
    fi
}

# docker-archive DIR/pause.tar of an image holding only the static pause binary $1, tagged
# $PAUSE_IMAGE: a manifest, a config and one layer, which `ctr images import` reads.
make_pause_archive() {
    local bin=$1 out=$2 work layer_sha config_sha
    work=$(mktemp -d)
    mkdir -p "$work/rootfs" "$work/archive/layer"
    install -m 0755 "$bin" "$work/rootfs/pause"
    tar -C "$work/rootfs" --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$work/archive/layer/layer.tar" pause
    layer_sha=$(sha256sum "$work/archive/layer/layer.tar" | cut -d' ' -f1)
    printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/pause"],"User":"65535:65535"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
        "$layer_sha" >"$work/config.json"
    config_sha=$(sha256sum "$work/config.json" | cut -d' ' -f1)
    mv "$work/config.json" "$work/archive/$config_sha.json"
    printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer/layer.tar"]}]' "$config_sha" "$PAUSE_IMAGE" \
        >"$work/archive/manifest.json"
    tar -C "$work/archive" --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$out" .
    rm -rf "$work"
}

# Fast path, before any lock or apt: every test run goes through here.
if cached_ok; then
    print_result
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "a build needs root (apt-get, $CACHE_ROOT); run it once as root"
mkdir -p "$CACHE_ROOT"
# One build at a time: a second caller waits and then takes the fast path.
exec 9>"$CACHE_ROOT/.build.lock"
flock 9
if cached_ok; then
    print_result
    exit 0
fi

# apt_update, apt_install_missing, enable_deb_src
# shellcheck source=scripts/lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

enable_deb_src
# golang-go is Go 1.19 (the tree wants >= 1.15); dpkg-dev unpacks the source package;
# rsync is used by hack/lib/golang.sh to copy binaries into _output; gcc and libc6-dev (libc.a)
# build the static pause binary.
apt_install_missing golang-go golang-github-modern-go-reflect2-dev rsync make dpkg-dev xz-utils \
    gcc libc6-dev
# The archive can hold the source index from before deb-src was added: update once if so.
[ -n "$(apt-cache showsrc kubernetes 2>/dev/null)" ] || apt_update

reflect2_version=$(dpkg-query -W -f='${Version}' golang-github-modern-go-reflect2-dev)
case $reflect2_version in
1.0.2*) ;;
*) die "golang-github-modern-go-reflect2-dev is $reflect2_version, expected 1.0.2" ;;
esac

log "fetching the kubernetes source package into $BUILD_DIR"
rm -rf "$BUILD_DIR"
mkdir -p "$BUILD_DIR"
cd "$BUILD_DIR"
# Runs as root and not the _apt user (it cannot write here); apt says so in a warning.
apt-get source -qq kubernetes >&2
src=$(find "$BUILD_DIR" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)
[ -n "$src" ] || die "apt-get source kubernetes left no source tree"
case $src in
*"really$KUBE_VERSION" | *"-$KUBE_VERSION") ;;
*) die "$src is not upstream $KUBE_VERSION; update KUBE_VERSION and check the build" ;;
esac
debian_version=$(cd "$src" && dpkg-parsechangelog -S Version)
log "source: kubernetes $debian_version"

# vendor/ has reflect2 1.0.1, whose map iteration (linked to runtime internals that changed in
# Go 1.18) faults: json-iterator encoding any map dies with SIGSEGV in
# UnsafeMapType.UnsafeIterate (seen with a small program on the vendored copies and Go 1.19).
# The API server encodes with json-iterator for pretty JSON (?pretty, or a User-Agent starting
# with curl, Wget or Mozilla/5.0) and for YAML, so such a response with labels or annotations
# would kill it. Debian's 1.0.2 is the upstream fix.
# go.mod and vendor/modules.txt are changed too so the tree says what it holds.
rm -rf "$src/vendor/github.com/modern-go/reflect2"
cp -r "$REFLECT2_SRC" "$src/vendor/github.com/modern-go/reflect2"
[ -f "$src/vendor/github.com/modern-go/reflect2/go_above_118.go" ] || die "reflect2 copy has no Go 1.18 support"
sed -i -E '/modern-go\/reflect2/s/v1\.0\.1/v1.0.2/g' "$src/go.mod" "$src/vendor/modules.txt"

# No network: hack/lib/init.sh forces GO111MODULE=off (GOPATH mode over vendor/, which never
# downloads); GOPROXY=off and GOFLAGS=-mod=vendor make any step that turns modules on fail
# rather than fetch. GOFLAGS=-mod=vendor also reaches hack/lib/golang.sh's tag parsing, which
# then adds a tag named "-mod=vendor"; no file uses it, so it changes nothing.
# HOME points into the build dir as in debian/rules, so nothing lands in root's home.
build_env=(
    env HOME="$BUILD_DIR/home" GO111MODULE=off GOPROXY=off GOSUMDB=off GOFLAGS=-mod=vendor
    GOTOOLCHAIN=local CGO_ENABLED=0
)
# Where it can (root, and a kernel that allows it), make runs in a new network namespace with
# no usable interface, so an attempt to fetch anything fails instead of reaching out.
if unshare -n true 2>/dev/null; then
    build_env=(unshare -n "${build_env[@]}")
    log "building without network (unshare -n)"
fi
mkdir -p "$BUILD_DIR/home"

# `make` runs the code generators (Makefile.generated_files) first, then builds the binary
# into _output/bin. kubectl shares most packages with the API server, so from the warm Go
# cache it adds under a minute (427s + 42s on 2 cores, measured).
# Whatever of the two caches is missing is built from this one tree: the node's binaries share
# most packages with the API server, so from the warm Go cache they add little, where a second
# cold tree later would cost the whole build again. nice: the machine is shared.
binaries=()
api_ok || binaries+=("${API_BINARIES[@]}")
node_ok || binaries+=("${NODE_BINARIES[@]}")
for what in "${binaries[@]}"; do
    log "make WHAT=cmd/$what"
    start=$SECONDS
    (cd "$src" && nice "${build_env[@]}" make WHAT="cmd/$what") >&2
    log "built $what in $((SECONDS - start))s"
done
out="$src/_output/bin"

# install_cache DIR BINARY...: into a temporary dir, then renamed, so a half-copied cache is
# never seen.
install_cache() {
    local dir=$1 what
    shift
    rm -rf "$dir.tmp"
    mkdir -p "$dir.tmp"
    for what in "$@"; do
        cp "$out/$what" "$dir.tmp/"
    done
    if [ "$dir" = "$NODE_DIR" ]; then
        # The sandbox every pod starts with; static, so the image needs nothing else.
        gcc -Os -static -DVERSION=v3.2 -o "$BUILD_DIR/pause" "$src/build/pause/linux/pause.c"
        make_pause_archive "$BUILD_DIR/pause" "$dir.tmp/pause.tar"
    fi
    printf '%s\n' "Debian source package kubernetes $debian_version, built by scripts/kube-apiserver.sh" \
        "with $(go version | cut -d' ' -f3); vendor/github.com/modern-go/reflect2 replaced by" \
        "golang-github-modern-go-reflect2-dev $reflect2_version." >"$dir.tmp/SOURCE"
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
    log "cached in $dir"
}
api_ok || install_cache "$API_DIR" "${API_BINARIES[@]}"
node_ok || install_cache "$NODE_DIR" "${NODE_BINARIES[@]}"
api_ok || die "cached binaries in $API_DIR do not run"
node_ok || die "cached binaries in $NODE_DIR do not run"
# The tree and its Go cache take a few GB and are not needed once the binaries are cached.
rm -rf "$BUILD_DIR"
print_result

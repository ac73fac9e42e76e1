#!/usr/bin/env bash
# Builds the rollgate image from the repository's Dockerfile without a Docker engine, with
# buildah (daemonless; chroot isolation, vfs storage, so it runs where no engine does):
#   scripts/image.sh [--export DIR] [NAME]
#       build NAME (default localhost/rollgate:dev) and print NAME last; with --export, also
#       write the image's filesystem to DIR/rootfs and its configuration (buildah inspect) to
#       DIR/image.json, which the packaging tests check and run
#   scripts/image.sh --buildah   print the buildah command line (with its storage options)
# The Dockerfile starts FROM debian:bookworm. That base is made here by debootstrap from the
# machine's own Debian archive (the mirror its apt sources name) with the same deb822 sources
# file the official image has, and stored as docker.io/library/debian:bookworm; no container
# registry is contacted. The base image and the images built are stored under
# /var/cache/rollgate/containers (override the root with RG_IMAGE_CACHE_ROOT); the build stage's
# cache mounts (Debian's packages, the static dependency prefix) are buildah's, under /var/tmp,
# so a warm build installs from the cache and only compiles rollgate.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_ROOT=${RG_IMAGE_CACHE_ROOT:-/var/cache/rollgate}
BASE=docker.io/library/debian:bookworm
BUILDAH=(buildah --root "$CACHE_ROOT/containers/storage" --runroot /run/rollgate-containers
    --storage-driver vfs)

log() { echo "image.sh: $*" >&2; }
die() {
    log "$*"
    exit 1
}

# apt_install_missing
# shellcheck source=scripts/lib/apt.sh
. "$REPO/scripts/lib/apt.sh"

if [ "${1:-}" = --buildah ]; then
    echo "${BUILDAH[*]}"
    exit 0
fi
export_dir=
if [ "${1:-}" = --export ]; then
    [ $# -ge 2 ] || die "--export needs a directory"
    export_dir=$2
    shift 2
fi
name=${1:-localhost/rollgate:dev}

# The main archive's URI from this machine's apt sources (deb822 or one-line style).
debian_mirror() {
    local uri
    uri=$(sed -nE 's|^URIs:[[:space:]]*(\S+/debian)/?$|\1|p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
    [ -n "$uri" ] || uri=$(sed -nE 's|^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?(\S+/debian)/?[[:space:]].*|\2|p' \
        /etc/apt/sources.list 2>/dev/null | head -n1)
    [ -n "$uri" ] || die "no Debian archive in this machine's apt sources"
    echo "$uri"
}

make_base() {
    local mirror rootfs ctr mnt
    mirror=$(debian_mirror)
    rootfs=$(mktemp -d "$CACHE_ROOT/containers/rootfs.XXXXXX")
    log "debootstrap bookworm from $mirror (the base image $BASE)"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >&2 ||
        die "debootstrap failed (log: $rootfs/debootstrap/debootstrap.log)"
    # As in the official image: deb822 sources for bookworm, -updates and -security.
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $mirror-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
    ctr=$("${BUILDAH[@]}" from scratch)
    mnt=$("${BUILDAH[@]}" mount "$ctr")
    cp -a "$rootfs/." "$mnt/"
    "${BUILDAH[@]}" umount "$ctr" >/dev/null
    "${BUILDAH[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --cmd bash "$ctr"
    "${BUILDAH[@]}" commit --rm "$ctr" "$BASE" >&2
    rm -rf "$rootfs"
}

apt_install_missing buildah debootstrap
mkdir -p "$CACHE_ROOT/containers"
# One build at a time: they share the storage and the cache mount.
exec 9>"$CACHE_ROOT/containers/.lock"
flock 9
if ! "${BUILDAH[@]}" inspect --type image "$BASE" >/dev/null 2>&1; then
    make_base
fi

log "building $name"
# The RUN steps use the host's network (chroot isolation) for apt-get, as the host would. No
# --layers: with vfs storage every kept build stage costs half a gigabyte, and the cache mounts
# already make a rebuild cheap (Debian's packages and the static prefix are in them).
"${BUILDAH[@]}" bud --isolation chroot --pull=never \
    --build-arg VERSION="$(sed -nE 's/.*project\(rollgate VERSION ([0-9.]+).*/\1/p' "$REPO/CMakeLists.txt")" \
    --build-arg REVISION="$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)" \
    -f "$REPO/Dockerfile" -t "$name" "$REPO" >&2
# The image this tag named before is now unnamed: remove it and any other leftover.
"${BUILDAH[@]}" rmi --prune >/dev/null 2>&1 || true

if [ -n "$export_dir" ]; then
    mkdir -p "$export_dir/rootfs"
    "${BUILDAH[@]}" inspect --type image "$name" >"$export_dir/image.json"
    ctr=$("${BUILDAH[@]}" from --pull=never "$name")
    mnt=$("${BUILDAH[@]}" mount "$ctr")
    cp -a "$mnt/." "$export_dir/rootfs/"
    "${BUILDAH[@]}" rm "$ctr" >/dev/null
fi
echo "$name"

# Sourced by the scripts that install Debian packages or need Debian's source packages
# (kube-apiserver.sh, build-static.sh, kube-test-cluster.sh, image.sh, tools.sh); the caller
# defines log().
export DEBIAN_FRONTEND=noninteractive
apt_updated=false

apt_update() {
    $apt_updated && return 0
    log "apt-get update"
    apt-get update -qq >&2
    apt_updated=true
}

# deb-src is off on stock Debian 12 images. Add it in a file of our own (never editing the
# image's sources), derived from the image's own sources so the same mirrors and keyrings are
# used; skipped when any deb-src is already configured.
enable_deb_src() {
    local f=/etc/apt/sources.list.d/rollgate-deb-src.sources
    local list=/etc/apt/sources.list.d/rollgate-deb-src.list
    if grep -Eqs '^[[:space:]]*(deb-src[[:space:]]|Types:.*deb-src)' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; then
        return 0
    fi
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        log "enabling deb-src in $f"
        sed -E 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$f.tmp"
        mv "$f.tmp" "$f"
    elif grep -Eqs '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list; then
        log "enabling deb-src in $list"
        sed -nE 's/^[[:space:]]*deb([[:space:]])/deb-src\1/p' /etc/apt/sources.list >"$list.tmp"
        mv "$list.tmp" "$list"
    else
        echo "no Debian package sources found to derive deb-src from" >&2
        return 1
    fi
    apt_updated=false # the new source needs its index
}

# apt_install_missing PKG...: installs those of the packages dpkg does not have, and nothing
# (not even an apt-get update) when it has them all.
apt_install_missing() {
    local p missing=()
    for p in "$@"; do
        [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        log "missing packages: ${missing[*]} (install them as root)"
        return 1
    fi
    apt_update
    log "installing ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

#!/usr/bin/env bash
# Builds a fully static x86-64 rollgate (glibc, `gcc -static`) on Debian 12 with only apt-get.
#   scripts/build-static.sh      build the dependency prefix (cached) and then the binary
# Outputs: $RG_STATIC_BUILD_DIR/rollgate (default build-static/ in the repository) and a stripped
# copy rollgate.stripped beside it; the last line of stdout is the stripped binary's path.
# Logs go to stderr. A cold build (curl, libpq, cJSON from source) takes a few minutes on 2 cores;
# with the prefix cached it is only rollgate's own build.
#
# What is built, and from where:
#   libcurl   Debian's `curl` source package: HTTP/HTTPS only, OpenSSL, zlib; no GSSAPI, LDAP, IDN,
#             PSL, nghttp2, brotli, zstd, SSH, RTMP or other protocols. Debian's tree has every
#             patch applied by `apt-get source`; the last two (90_gnutls.patch, 99_nss.patch) only
#             rename the library for the GnuTLS and NSS flavours and are reverted here.
#   libpq     Debian's `postgresql-15` source package: OpenSSL; no GSSAPI, LDAP, ICU, readline, zlib.
#             libpq.a needs libpgcommon_shlib.a and libpgport_shlib.a, installed beside it.
#   cJSON     Debian's `cjson` source package, cJSON.c as libcjson.a.
#   OpenSSL, libyaml, zlib and glibc: Debian's own static libraries (libssl-dev, libyaml-dev,
#             zlib1g-dev, libc6-dev).
#   libpg_query  Debian's libpg-query-dev: its static libpg_query.a (PostgreSQL 15's parser,
#             protobuf-c inside) as it is, with libprotobuf-c-dev for the header its
#             pg_query.pb-c.h includes. CMake finds it by name in every build.
# The source versions are pinned below; a security-suite version whose source is not downloadable
# (the security archive drops superseded sources) falls back to the next one listed, the main
# suite's. When the archive has moved past every pinned version, update the pins.
#
# Cache: /var/cache/rollgate/static-<curl>-<postgresql-15>-<cjson>/ (Debian versions; lib/*.a,
# include/, lib/pkgconfig/*.pc), override the root with RG_STATIC_CACHE_ROOT. The tree is
# rebuilt when its RECIPE stamp differs from this script's (the build flags changed).
#
# Static glibc: getaddrinfo and getpwuid work (files and dns are built into glibc 2.36) but read
# /etc/hosts, /etc/resolv.conf and /etc/passwd at run time; the linker warns about them, which
# is expected. In an image without /etc/passwd libpq cannot find the current user's name, so
# rollgate must always be given an explicit database user (in the URL or PGUSER).
set -euo pipefail

# Package=version pins, preferred first. curl's main-suite version is newer than the security
# suite's, so it is the only pin.
CURL_PINS=(7.88.1-10+deb12u15)
PG_PINS=(15.20-0+deb12u1 15.18-0+deb12u1) # bookworm-security, then bookworm
CJSON_PINS=(1.7.15-1+deb12u4)
RECIPE=2 # bump when the configure flags below change, so cached prefixes are rebuilt

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_ROOT=${RG_STATIC_CACHE_ROOT:-/var/cache/rollgate}
SRC_DIR=$CACHE_ROOT/static-build
OUT_DIR=${RG_STATIC_BUILD_DIR:-$REPO/build-static}
JOBS=${JOBS:-$(nproc)}
DEP_CFLAGS="-O2 -g0 -ffunction-sections -fdata-sections -fstack-protector-strong"
DEP_CPPFLAGS="-D_FORTIFY_SOURCE=2"

log() { echo "build-static.sh: $*" >&2; }
die() {
    log "$*"
    exit 1
}

prefix_for() { echo "$CACHE_ROOT/static-$1-$2-$3"; }
prefix_ok() { [ -f "$1/RECIPE" ] && [ "$(cat "$1/RECIPE")" = "$RECIPE" ]; }

# The first cached prefix for any combination of pins, preferred pins first; empty if none.
find_cached_prefix() {
    local c p j
    for c in "${CURL_PINS[@]}"; do
        for p in "${PG_PINS[@]}"; do
            for j in "${CJSON_PINS[@]}"; do
                if prefix_ok "$(prefix_for "$c" "$p" "$j")"; then
                    prefix_for "$c" "$p" "$j"
                    return 0
                fi
            done
        done
    done
}

# apt_update, apt_install_missing, enable_deb_src
# shellcheck source=scripts/lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

# Build tools and Debian's static libraries; dpkg-dev unpacks source packages (and pulls in
# patch), bzip2 and xz-utils decompress them, file reports on the result.
apt_install_missing gcc libc6-dev make cmake pkg-config binutils file dpkg-dev bzip2 xz-utils \
    perl libssl-dev zlib1g-dev libyaml-dev libpg-query-dev libprotobuf-c-dev

# --- The dependency prefix -------------------------------------------------------------------

# Unpacks source package $1, trying each pinned version in turn, into $SRC_DIR/$1; prints the
# version it got.
fetch_source() {
    local pkg=$1 v
    shift
    for v in "$@"; do
        rm -rf "${SRC_DIR:?}/$pkg"
        mkdir -p "$SRC_DIR/$pkg"
        log "apt-get source $pkg=$v"
        # Runs as root and not the _apt user (it cannot write here); apt says so in a warning.
        if (cd "$SRC_DIR/$pkg" && apt-get source -qq "$pkg=$v" >&2 2>"$SRC_DIR/$pkg.err"); then
            echo "$v"
            return 0
        fi
        log "$pkg=$v is not downloadable: $(grep -m1 '^E:' "$SRC_DIR/$pkg.err" || true)"
    done
    die "no pinned version of $pkg (${*}) could be fetched; update the pins in $0"
}

# The unpacked tree of source package $1 (the only directory apt-get source left).
tree_of() {
    local t
    t=$(find "$SRC_DIR/$1" -mindepth 1 -maxdepth 1 -type d | head -n1)
    [ -n "$t" ] || die "apt-get source $1 left no source tree"
    echo "$t"
}

build_curl() {
    local src prefix=$1
    src=$(tree_of curl)
    # debian/rules builds the OpenSSL flavour with the last two patches popped (they rename
    # libcurl.la to libcurl-gnutls.la / libcurl-nss.la in the Makefile.am files and version the
    # symbols CURL_GNUTLS_3); revert them, newest first, for the upstream-named library.
    local p
    for p in 99_nss.patch 90_gnutls.patch; do
        log "curl: reverting debian/patches/$p"
        (cd "$src" && patch -R -p1 -s <"debian/patches/$p") >&2
    done
    # The shipped configure is used as is (no autoreconf: maintainer mode is off, and the Debian
    # patches that touch configure.ac concern LDAP and GSSAPI, both disabled here).
    log "curl: configure"
    (cd "$src" && ./configure -q --prefix="$prefix" --disable-shared --enable-static \
        --with-openssl --with-zlib \
        --without-gssapi --disable-ldap --disable-ldaps --without-libidn2 --without-libpsl \
        --without-nghttp2 --without-ngtcp2 --without-nghttp3 --without-quiche --without-msh3 \
        --without-hyper --without-brotli --without-zstd --without-libssh2 --without-libssh \
        --without-wolfssh --without-librtmp --without-libgsasl \
        --disable-ftp --disable-file --disable-dict --disable-telnet --disable-tftp \
        --disable-pop3 --disable-imap --disable-smtp --disable-gopher --disable-mqtt \
        --disable-rtsp --disable-smb --disable-manual --disable-ntlm --disable-ntlm-wb \
        --disable-dependency-tracking \
        --with-ca-bundle=/etc/ssl/certs/ca-certificates.crt --with-ca-path=/etc/ssl/certs \
        CFLAGS="$DEP_CFLAGS" CPPFLAGS="$DEP_CPPFLAGS") >&2
    log "curl: make (lib only)"
    make -C "$src/lib" -s -j"$JOBS" >&2
    make -C "$src/lib" -s install >&2
    make -C "$src/include" -s install >&2
    make -C "$src" -s install-pkgconfigDATA >&2
    rm -f "$prefix"/lib/*.la
}

build_libpq() {
    local src prefix=$1
    src=$(tree_of postgresql-15)
    log "libpq: configure"
    (cd "$src" && ./configure -q --prefix="$prefix" --with-openssl --without-readline \
        --without-icu --without-gssapi --without-ldap --without-zlib --without-lz4 \
        --without-zstd --without-libxml --without-systemd --without-pam --disable-nls \
        CFLAGS="$DEP_CFLAGS" CPPFLAGS="$DEP_CPPFLAGS") >&2
    log "libpq: make"
    make -C "$src/src/include" -s -j"$JOBS" >&2
    make -C "$src/src/port" -s -j"$JOBS" libpgport_shlib.a >&2
    make -C "$src/src/common" -s -j"$JOBS" libpgcommon_shlib.a >&2
    make -C "$src/src/interfaces/libpq" -s -j"$JOBS" all-static-lib >&2
    mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
    cp "$src/src/interfaces/libpq/libpq.a" "$src/src/port/libpgport_shlib.a" \
        "$src/src/common/libpgcommon_shlib.a" "$prefix/lib/"
    cp "$src/src/interfaces/libpq/libpq-fe.h" "$src/src/interfaces/libpq/libpq-events.h" \
        "$src/src/include/postgres_ext.h" "$src/src/include/pg_config_ext.h" "$prefix/include/"
    # PostgreSQL's own libpq.pc leaves pgcommon and pgport out of Libs.private; this one is for
    # static linking.
    cat >"$prefix/lib/pkgconfig/libpq.pc" <<EOF
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: libpq
Description: PostgreSQL libpq library (static, built by scripts/build-static.sh)
Version: $(cd "$src" && sed -n 's/^PACKAGE_VERSION=.\([0-9.]*\).*/\1/p' configure)
Requires.private: libssl libcrypto
Cflags: -I\${includedir}
Libs: -L\${libdir} -lpq
Libs.private: -lpgcommon_shlib -lpgport_shlib -lm -pthread
EOF
}

build_cjson() {
    local src prefix=$1
    src=$(tree_of cjson)
    log "cjson: build"
    mkdir -p "$prefix/lib/pkgconfig" "$prefix/include/cjson"
    # shellcheck disable=SC2086 # lists of flags
    gcc -std=c89 $DEP_CPPFLAGS $DEP_CFLAGS -c "$src/cJSON.c" -o "$src/cJSON.o"
    rm -f "$prefix/lib/libcjson.a"
    ar rcs "$prefix/lib/libcjson.a" "$src/cJSON.o"
    cp "$src/cJSON.h" "$prefix/include/cjson/"
    cat >"$prefix/lib/pkgconfig/libcjson.pc" <<EOF
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: libcjson
Description: cJSON (static, built by scripts/build-static.sh)
Version: $(sed -n 's/^#define CJSON_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)/\2/p' "$src/cJSON.h" | paste -sd.)
Cflags: -I\${includedir}
Libs: -L\${libdir} -lcjson
Libs.private: -lm
EOF
}

PREFIX=$(find_cached_prefix)
if [ -n "$PREFIX" ]; then
    log "cache hit: $PREFIX"
else
    [ "$(id -u)" -eq 0 ] || die "building the dependencies needs root (apt-get, $CACHE_ROOT)"
    mkdir -p "$CACHE_ROOT"
    # One build at a time: a second caller waits and then finds the cache.
    exec 9>"$CACHE_ROOT/.static-build.lock"
    flock 9
    PREFIX=$(find_cached_prefix)
fi
if [ -z "$PREFIX" ]; then
    start=$SECONDS
    enable_deb_src
    # The archive can hold the source index from before deb-src was added: update once if so.
    [ -n "$(apt-cache showsrc cjson 2>/dev/null)" ] || apt_update
    mkdir -p "$SRC_DIR"
    curl_v=$(fetch_source curl "${CURL_PINS[@]}")
    pg_v=$(fetch_source postgresql-15 "${PG_PINS[@]}")
    cjson_v=$(fetch_source cjson "${CJSON_PINS[@]}")
    PREFIX=$(prefix_for "$curl_v" "$pg_v" "$cjson_v")
    log "building into $PREFIX"
    # Installed straight into the final prefix (the .pc files name it); the RECIPE stamp that
    # marks it complete is written last, so a half-built prefix is never taken for a cached one.
    rm -rf "$PREFIX"
    mkdir -p "$PREFIX"
    build_curl "$PREFIX"
    build_libpq "$PREFIX"
    build_cjson "$PREFIX"
    cat >"$PREFIX/SOURCE" <<EOF
Built by scripts/build-static.sh (recipe $RECIPE) from Debian source packages
curl $curl_v (90_gnutls.patch and 99_nss.patch reverted), postgresql-15 $pg_v, cjson $cjson_v,
with $(gcc --version | head -n1).
EOF
    echo "$RECIPE" >"$PREFIX/RECIPE"
    rm -rf "$SRC_DIR" # the source trees are not needed once the prefix is cached
    log "dependencies built in $((SECONDS - start))s: $PREFIX"
fi

# --- rollgate ---------------------------------------------------------------------------------

log "cmake: $OUT_DIR"
cmake -S "$REPO" -B "$OUT_DIR" -DCMAKE_BUILD_TYPE=Release -DRG_TESTS=OFF -DRG_STATIC=ON \
    -DCMAKE_PREFIX_PATH="$PREFIX" >&2
cmake --build "$OUT_DIR" -j"$JOBS" --target rollgate >&2
strip -o "$OUT_DIR/rollgate.stripped" "$OUT_DIR/rollgate"

info=$(file -b "$OUT_DIR/rollgate.stripped")
case $info in
*"statically linked"*) ;;
*) die "not statically linked: $info" ;;
esac
size=$(stat -c %s "$OUT_DIR/rollgate.stripped")
echo "file: $info"
echo "stripped size: $size bytes ($(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1048576 }') MiB)"
echo "$OUT_DIR/rollgate.stripped"

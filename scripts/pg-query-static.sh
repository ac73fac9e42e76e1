#!/bin/sh
# pg-query-static.sh NM OBJCOPY IN OUT (run by CMake for -DRG_STATIC=ON): copies
# libpg_query.a (IN) to OUT with every global symbol it defines, except its API
# (pg_query*), renamed rg_pgq_<name>. libpg_query.a carries
# its own copy of PostgreSQL's src/common and src/port (wchar.c, encnames.c, snprintf.c...),
# as libpq's libpgcommon_shlib.a and libpgport_shlib.a do, and one static binary cannot hold
# both under the same names. Renaming member by member keeps the archive's objects apart, so
# the linker still takes only the ones rollgate uses.
set -eu
nm=$1 objcopy=$2 in=$3 out=$4
tmp=$out.syms
"$nm" --defined-only -g "$in" 2>/dev/null |
    awk 'NF == 3 && $3 !~ /^pg_query/ { print $3 " rg_pgq_" $3 }' | sort -u >"$tmp"
"$objcopy" --redefine-syms="$tmp" "$in" "$out.tmp"
mv "$out.tmp" "$out"
rm -f "$tmp"

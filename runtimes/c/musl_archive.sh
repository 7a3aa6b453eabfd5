#!/bin/sh
# musl_archive.sh OUT.a WORKDIR CC CFLAGS... -- SOURCES...
# Builds the C runtime library a second time with musl (musl-gcc), for functions linked
# statically against musl: each source compiled into WORKDIR, then archived into OUT.a. Used by
# runtimes/meson.build only (meson has one C compiler per build).
set -eu
out=$1 work=$2 cc=$3
shift 3
flags=""
while [ "$1" != "--" ]; do flags="$flags $1"; shift; done
shift
mkdir -p "$work"
objs=""
for src in "$@"; do
    obj="$work/$(basename "$src" .c).o"
    # shellcheck disable=SC2086
    "$cc" $flags -c "$src" -o "$obj"
    objs="$objs $obj"
done
rm -f "$out"
# shellcheck disable=SC2086
ar rcs "$out" $objs

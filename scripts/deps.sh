#!/bin/sh
# Installs every build, test and benchmark dependency of nimbus from Debian 12's archive.
# Idempotent: packages already present are skipped by apt-get. Needs root.
set -eu
PKGS="meson ninja-build pkg-config gcc clang clang-format libclang-rt-14-dev \
  libuv1-dev libjansson-dev libsqlite3-dev libzip-dev libssl-dev libseccomp-dev libcap-dev \
  libinih-dev libcmocka-dev node-llhttp libcurl4-openssl-dev \
  python3 python3-dev libpython3.11-dev python3-pytest python3-boto3 awscli nodejs zip unzip curl"
missing=""
for p in $PKGS; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
fi

#!/bin/sh
# Installs what the benchmarks need beyond scripts/deps.sh: wrk (load) and nginx (baseline).
set -eu
missing=""
for p in wrk nginx; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
fi

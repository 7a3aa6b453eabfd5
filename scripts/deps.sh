#!/bin/sh
# Installs every build, test and benchmark dependency of nimbus from Debian 12's archive.
# Then the npm packages of the e2e tests (the AWS SDK for JavaScript v3, tests/js), exactly as
# pinned by tests/js/package-lock.json.
# Idempotent: packages already present are skipped by apt-get; npm runs only when the lock file
# changed since the last install (or tests/js/node_modules is missing). Needs root.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PKGS="meson ninja-build pkg-config gcc clang clang-format libclang-rt-14-dev \
  libuv1-dev libjansson-dev libsqlite3-dev libzip-dev libssl-dev libseccomp-dev libcap-dev \
  libinih-dev libcmocka-dev node-llhttp libcurl4-openssl-dev musl-tools \
  python3 python3-dev libpython3.11-dev python3-pytest python3-boto3 awscli nodejs zip unzip curl prometheus"
missing=""
for p in $PKGS; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    # prometheus (for tests/e2e/test_prometheus.py, which runs its own instance) ships a service
    # its postinst would start: a policy-rc.d that refuses every start keeps the install inert.
    guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        guard=1
    fi
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
    [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
fi
# Never leave the packaged prometheus service running (systemd hosts start it on install).
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi

# npm ships with the nodejs package on machines set up from NodeSource, not with Debian's.
if ! command -v npm >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends npm
fi
JS="$ROOT/tests/js"
stamp="$JS/node_modules/.nimbus-lock-sha256"
want=$(cat "$JS/package.json" "$JS/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    npm ci --prefix "$JS" --no-audit --no-fund --loglevel=error
    echo "$want" >"$stamp"
fi

#!/bin/sh
# Installs dependencies, builds nimbus (release flags) and runs `nimbus serve` in the foreground
# with its embedded defaults (API on 127.0.0.1:9000, data in ./.nimbus). Extra arguments are
# passed to `nimbus serve`. Needs root (sandboxes need namespaces and cgroups).
# At first start the daemon writes its root access key to ./.nimbus/credentials (profile nimbus):
#   nimbus ls                                   (the CLI reads it by itself)
#   AWS_SHARED_CREDENTIALS_FILE=.nimbus/credentials aws --profile nimbus \
#       --endpoint-url http://127.0.0.1:9000 lambda list-functions
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh
[ -d build-release ] || meson setup build-release -Dbuildtype=release >/dev/null
ninja -C build-release >/dev/null
exec ./build-release/src/nimbus serve "$@"

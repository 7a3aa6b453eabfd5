#!/bin/sh
# Regenerates docs/CONFIG.md from the config table (`nimbus serve --help`); tests/e2e/test_docs.py
# fails when it is stale. usage: scripts/gen-config-doc.sh [path/to/nimbus]
set -eu
cd "$(dirname "$0")/.."
bin=${1:-build/src/nimbus}
{
    echo "# Configuration"
    echo
    echo "Generated from the config table in \`src/config.c\` by \`scripts/gen-config-doc.sh\`."
    echo "Precedence: defaults < config file (\`--config FILE\`, INI, keys as below, optional"
    echo "\`[nimbus]\` section) < flags. SIGHUP re-reads the file and applies the keys marked"
    echo "reloadable. \`nimbus config show\` prints the effective settings; \`nimbus config check\`"
    echo "validates them (errors cite file:line)."
    echo
    echo '```'
    "$bin" serve --help | sed -n '/^settings/,$p'
    echo '```'
} >docs/CONFIG.md

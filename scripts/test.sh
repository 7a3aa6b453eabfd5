#!/bin/sh
# Runs every test suite of nimbus, as root, on Debian 12; the README's test command.
#   1. installs dependencies (scripts/deps.sh); checks clang-format on every C file
#   2. gcc build with -Werror: unit tests (cmocka) and end-to-end tests (pytest, real clients)
#   3. clang ASan+UBSan build: unit tests and end-to-end tests again
#   4. clang libFuzzer build: every fuzz target for a short fixed time on its corpus
# Ends with one line "N passed, N failed" summing all suites; exits non-zero on any failure.
# NIMBUS_QUICK=1 skips steps 3 and 4.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT="$ROOT/build-test-results"
rm -rf "$OUT" && mkdir -p "$OUT"
FUZZ_SECONDS=${NIMBUS_FUZZ_SECONDS:-10}
PY=/usr/bin/python3

./scripts/deps.sh || { echo "0 passed, 1 failed"; exit 1; }

status=0
step() { echo "=== $*"; }

build() { # dir, extra meson args...
    dir=$1; shift
    if [ ! -d "$dir" ]; then
        meson setup "$dir" --werror "$@" >"$OUT/$(basename "$dir")-setup.log" 2>&1 ||
            { cat "$OUT/$(basename "$dir")-setup.log"; return 1; }
    else
        meson setup --reconfigure "$dir" --werror "$@" >/dev/null 2>&1 || true
    fi
    ninja -C "$dir" >"$OUT/$(basename "$dir")-build.log" 2>&1 ||
        { tail -50 "$OUT/$(basename "$dir")-build.log"; return 1; }
}

unit() { # dir, label
    meson test -C "$1" --num-processes 2 --print-errorlogs >"$OUT/$2-unit.log" 2>&1 || status=1
    cp "$1/meson-logs/testlog.json" "$OUT/$2-unit.json" 2>/dev/null || true
    tail -15 "$OUT/$2-unit.log"
}

e2e() { # dir, label, pytest args...
    dir=$1; label=$2; shift 2
    NIMBUS_BUILD="$ROOT/$dir" timeout 1500 $PY -m pytest -q -p no:cacheprovider \
        --junitxml="$OUT/$label-e2e.xml" tests/e2e "$@" 2>&1 | tail -30
    [ -f "$OUT/$label-e2e.xml" ] || echo '<testsuite tests="1" failures="1"/>' >"$OUT/$label-e2e.xml"
}

step "clang-format (every C file must be formatted)"
fmt_bad=0; fmt_n=0
for f in $(git ls-files '*.c' '*.h'); do
    fmt_n=$((fmt_n + 1))
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || { echo "not formatted: $f"; fmt_bad=$((fmt_bad + 1)); }
done
echo "<testsuite name=\"clang-format\" tests=\"$fmt_n\" failures=\"$fmt_bad\"/>" >"$OUT/format.xml"
[ "$fmt_bad" = 0 ] || status=1

step "gcc build"
if build build; then
    step "unit tests (gcc)"; unit build gcc
    step "end-to-end tests (gcc)"; e2e build gcc
else
    echo '<testsuite tests="1" failures="1"/>' >"$OUT/gcc-build.xml"; status=1
fi

if [ "${NIMBUS_QUICK:-0}" != 1 ]; then
    step "clang ASan+UBSan build"
    if CC=clang build build-asan -Db_sanitize=address,undefined -Db_lundef=false \
        -Dbuildtype=debug; then
        export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
        step "unit tests (asan)"; unit build-asan asan
        step "end-to-end tests (asan)"; e2e build-asan asan -m "not slow"
        unset ASAN_OPTIONS UBSAN_OPTIONS
    else
        echo '<testsuite tests="1" failures="1"/>' >"$OUT/asan-build.xml"; status=1
    fi
    step "fuzz targets (${FUZZ_SECONDS}s each)"
    if CC=clang build build-fuzz -Dfuzz=true -Db_lundef=false -Db_sanitize=address,undefined \
        -Dc_args=-fsanitize=fuzzer-no-link; then
        for f in build-fuzz/tests/fuzz/fuzz_*; do
            [ -f "$f" ] && [ -x "$f" ] || continue
            t=$(basename "$f" | sed 's/^fuzz_//')
            corpus="tests/fuzz/corpus/$t"
            work=$(mktemp -d)
            [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
            if "$f" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
                -artifact_prefix="$OUT/fuzz-$t-" "$work" >"$OUT/fuzz-$t.log" 2>&1; then
                echo "<testsuite tests=\"1\" failures=\"0\" name=\"fuzz-$t\"/>" >"$OUT/fuzz-$t.xml"
                echo "fuzz $t: ok ($(grep -c . "$OUT/fuzz-$t.log") log lines)"
            else
                echo "<testsuite tests=\"1\" failures=\"1\" name=\"fuzz-$t\"/>" >"$OUT/fuzz-$t.xml"
                echo "fuzz $t: FAILED"; tail -30 "$OUT/fuzz-$t.log"
            fi
            rm -rf "$work"
        done
    else
        echo '<testsuite tests="1" failures="1"/>' >"$OUT/fuzz-build.xml"; status=1
    fi
fi

$PY scripts/summarize.py "$OUT" || status=1
exit $status

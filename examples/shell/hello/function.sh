# function.sh - the shell "hello" example's handler (_HANDLER "function.handler"), sourced by
# ./bootstrap. $1 is the event (JSON text); stdout is the response; stderr is the log.
# It greets the event's "name" (a sed match, not a JSON parser) and fails when "fail" is true.

handler() {
    EVENT_DATA="$1"
    echo "hello from sh: event $EVENT_DATA" >&2
    if printf '%s' "$EVENT_DATA" | grep -q '"fail"[[:space:]]*:[[:space:]]*true'; then
        echo "asked to fail" >&2
        return 3
    fi
    NAME="$(printf '%s' "$EVENT_DATA" | sed -n 's/.*"name"[[:space:]]*:[[:space:]]*"\([^"\\]*\)".*/\1/p')"
    printf '{"message":"Hello, %s!","function":"%s"}\n' \
        "${NAME:-world}" "$AWS_LAMBDA_FUNCTION_NAME"
}

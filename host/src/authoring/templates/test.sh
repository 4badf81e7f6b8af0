#!/usr/bin/env bash
# The `{{name}}` family's own test: check it, install it into a scratch actions dir, then run
# against $DOCKER_HOST every read-only action that needs no params, and the cases below.
# It names no action: rename, add or remove actions and it still tests what is there.
set -euo pipefail
cd "$(dirname "$0")"
BERTH=${BERTH:-{{berth}}}
: "${DOCKER_HOST:?set DOCKER_HOST to an engine the test may use}"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
berth() { "$BERTH" --actions "$scratch" "$@"; }

"$BERTH" check {{name}}.wasm
berth install {{name}}.wasm

# run ACTION [key=value ...] [-- TEXT]: runs it; fails unless it succeeds (and its JSON result
# contains TEXT, when given).
run() {
  local action=$1 want="" args=()
  shift
  while [ $# -gt 0 ]; do
    if [ "$1" = "--" ]; then want=$2; break; fi
    args+=("$1"); shift
  done
  local out rc=0
  out=$(berth run "$action" "${args[@]}" -o json) || rc=$?
  if [ $rc -ne 0 ] || [[ $out != *'"status":"success"'* ]] || [[ $out != *"$want"* ]]; then
    echo "$out" >&2
    echo "{{name}}: $action ${args[*]} failed (exit $rc${want:+; wanted $want})" >&2
    exit 1
  fi
  echo "$action ${args[*]}: ok"
}

# Every read-only action of the family that runs without params (exit 2 means it needs some:
# give it a case below).
ran=0
for action in $(berth actions | awk -v f="{{name}}." 'index($1, f) == 1 && $3 == "yes" { print $1 }'); do
  rc=0
  out=$(berth run "$action" -o json) || rc=$?
  case $rc in
    0) echo "$action: ok"; ran=$((ran + 1)) ;;
    2) echo "$action: needs params, skipped (add a case below)" ;;
    *) echo "$out" >&2; echo "{{name}}: $action failed (exit $rc)" >&2; exit 1 ;;
  esac
done

# Your cases: an action, its params, and text its result must contain. For example:
#   run {{name}}.summary all=true -- '"containers":'

[ "$ran" -gt 0 ] || { echo "{{name}}: no read-only action ran; add a case" >&2; exit 1; }
echo "{{name}}: ok"

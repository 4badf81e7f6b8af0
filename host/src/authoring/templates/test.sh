#!/usr/bin/env bash
# The `{{name}}` family's own test: check, install into a scratch actions dir, run against
# $DOCKER_HOST, and look at the result.
set -euo pipefail
cd "$(dirname "$0")"
BERTH=${BERTH:-{{berth}}}
: "${DOCKER_HOST:?set DOCKER_HOST to an engine the test may use}"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$BERTH" check {{name}}.wasm
"$BERTH" --actions "$scratch" install {{name}}.wasm
out=$("$BERTH" --actions "$scratch" run {{name}}.summary all=true -o json)
echo "$out"
case $out in
  *'"status":"success"'*'"containers":'*) echo "{{name}}: ok" ;;
  *) echo "{{name}}: {{name}}.summary did not succeed" >&2; exit 1 ;;
esac

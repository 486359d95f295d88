#!/bin/sh
# Runbook compatibility: a blue-green deploy (see `./ocean --help deploy`).
#   scripts/blue-green-deploy.sh                 deploy HEAD to the idle color
#   scripts/blue-green-deploy.sh green [ARGS]    deploy to green (any `deploy` option after)
#   scripts/blue-green-deploy.sh --color=green --version=v1.2 --analysis-window=2m
# With no color, the idle one is asked of `deploy-status` (which also finishes or
# undoes a deploy that died halfway).
set -eu
here="$(dirname "$0")/.."
case "${1:-}" in
    blue | green)
        color="$1"
        shift
        exec "$here/ocean" deploy --color="$color" "$@"
        ;;
    *--color* | -c) exec "$here/ocean" deploy "$@" ;;
esac
live="$("$here/ocean" deploy-status --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["live"])')"
if [ "$live" = blue ]; then idle=green; else idle=blue; fi
exec "$here/ocean" deploy --color="$idle" "$@"

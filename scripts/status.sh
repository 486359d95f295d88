#!/bin/sh
# Runbook compatibility: the stack's status (see `./ocean --help status`).
exec "$(dirname "$0")/../ocean" status "$@"

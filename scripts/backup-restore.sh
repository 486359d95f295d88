#!/bin/sh
# Runbook compatibility: backups and restores (see docs/backup.md and
# docs/runbooks/DisasterRecovery.md; `./ocean --help backup` etc. for every option).
#   scripts/backup-restore.sh backup [--label L] [--no-encrypt]   take a backup set
#   scripts/backup-restore.sh list [--json]                       list the sets
#   scripts/backup-restore.sh latest                              print the newest set's id
#   scripts/backup-restore.sh verify [ID|latest]                  restore-test a set (scratch)
#   scripts/backup-restore.sh restore ID|latest --yes             restore a set
#   scripts/backup-restore.sh prune --keep-last N [--keep-daily N ...] [--dry-run]
set -eu
here="$(dirname "$0")/.."
ocean="${OCEAN_BIN:-$here/ocean}" # the tests point this at the venv's invoke
latest() {
    "$ocean" backups --json | python3 -c '
import json, sys
sets = [s for s in json.load(sys.stdin)["backups"] if "created" in s]
if not sets:
    sys.exit("error: no backups yet: scripts/backup-restore.sh backup")
print(sets[-1]["id"])'
}
resolve() {
    if [ "${1:-latest}" = latest ]; then latest; else echo "$1"; fi
}
command="${1:-}"
[ $# -gt 0 ] && shift
case "$command" in
    backup) exec "$ocean" backup "$@" ;;
    list) exec "$ocean" backups "$@" ;;
    latest) latest ;;
    verify)
        id="$(resolve "${1:-latest}")"
        [ $# -gt 0 ] && shift
        exec "$ocean" backup-verify "$id" "$@"
        ;;
    restore)
        [ $# -gt 0 ] || { echo "usage: $0 restore ID|latest --yes" >&2; exit 2; }
        id="$(resolve "$1")"
        shift
        exec "$ocean" restore "$id" "$@"
        ;;
    prune) exec "$ocean" backup-prune "$@" ;;
    *)
        sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac

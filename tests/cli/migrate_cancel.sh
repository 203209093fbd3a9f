#!/bin/sh
# SIGTERM (as SIGINT: the shell starts background jobs with SIGINT ignored)
# during a migration cancels it: exit 5, status "cancelled", the source guest
# left running; round 1, cut short on the wire, is logged as not completed
# and not counted. Usage: migrate_cancel.sh UIOMMU [options...]
set -eu
uiommu=$1
shift
out=$(mktemp "${TMPDIR:-/tmp}/uiommu-mig-cancel.XXXXXX")
trap 'rm -f "$out"' EXIT

# The options after "$@" win: 1 s of guest writes at the test's rate, then
# a stream so slow (4 MB/s) that round 1 is still on the wire at the signal.
"$uiommu" migrate demo --json "$@" --bandwidth 4 --seconds-before 1 >"$out" 2>/dev/null &
pid=$!
sleep 2.5
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
if [ "$rc" -ne 5 ] || ! jq -e '.status == "cancelled" and .exit_code == 5
		and .dirty_sync_count == 0 and (.rounds | length) == 1
		and .rounds[0].completed == false' "$out" >/dev/null; then
	echo "cancel: exit $rc, expected 5" >&2
	cat "$out" >&2
	exit 1
fi
echo "cancelled: exit 5"

#!/bin/sh
# `uiommu migrate demo --json`: one JSON object on stdout whose status is
# "completed", whose page-for-page verification is ok, whose receiver checks
# (device region, the guest's own check) found nothing bad, with one entry per
# round and the stop-copy round last. Usage: migrate_json.sh UIOMMU [options...]
set -eu
uiommu=$1
shift
out=$(mktemp "${TMPDIR:-/tmp}/uiommu-mig-json.XXXXXX")
trap 'rm -f "$out"' EXIT

rc=0
"$uiommu" migrate demo --json "$@" >"$out" || rc=$?
if [ "$rc" -ne 0 ]; then
	echo "migrate demo --json exited $rc" >&2
	cat "$out" >&2
	exit 1
fi
jq -e '.status == "completed" and .exit_code == 0
	and .verify.checked and .verify.ok and .verify.mismatched == 0
	and .device.checked and .device.bad_bytes == 0
	and .guest_check.checked and .guest_check.bad_pages == 0
	and (.rounds | length) >= 2 and .rounds[-1].stopcopy
	and .rounds[0].sent_pages > 0 and .rounds[0].sent_pages <= (.total_bytes / .page_size)
	and .transferred_bytes > 0 and .downtime_ms > 0' "$out" >/dev/null || {
	echo "unexpected JSON:" >&2
	cat "$out" >&2
	exit 1
}
echo "migrate demo --json: completed and verified, $(jq '.rounds | length' "$out") rounds"

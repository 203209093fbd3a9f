#!/bin/sh
# `uiommu migrate demo --iommu vfio-type1`: the device behind a type1
# container, with the kernel's reporting rules and what they imply.
#  - mdev (pins its rings): completes and verifies; the summary states the
#    pinned pages resent every round and their share of the expected
#    downtime; in --json every round reports them, and the "vfio" source
#    reports at least them in every round;
#  - dma with --type1-iommu-dirty: converges like iommufd, never all-dirty;
#  - dma without it (the all-dirty rule: all guest RAM dirty in every round)
#    and a downtime limit a full resend cannot meet: gives up (exit 1) with
#    the reason, unless --force, which completes, resending all of RAM.
# Usage: migrate_type1.sh UIOMMU [options...]
set -eu
uiommu=$1
shift
dir=$(mktemp -d "${TMPDIR:-/tmp}/uiommu-mig-t1.XXXXXX")
trap 'rm -rf "$dir"' EXIT

fail() {
	echo "FAIL: $*" >&2
	cat "$dir/out" >&2
	exit 1
}

run() {
	rc=0
	"$uiommu" migrate demo --iommu vfio-type1 "$@" >"$dir/out" 2>"$dir/err" || rc=$?
}

run --device-kind mdev --pin-pages 128 "$@"
[ "$rc" -eq 0 ] || fail "mdev demo exited $rc"
grep -q '^pinned: *128 pages resent every round, [0-9.]* ms of the expected downtime' \
	"$dir/out" || fail "no pinned line"
grep '^pinned:' "$dir/out"

run --device-kind mdev --pin-pages 128 --json "$@"
[ "$rc" -eq 0 ] || fail "mdev demo --json exited $rc"
jq -e '.status == "completed" and .verify.ok and .device.bad_bytes == 0
	and .machine.iommu == "vfio-type1" and .machine.device_kind == "mdev"
	and .pinned_pages == 128 and .pinned_downtime_ms > 0
	and .pinned_downtime_ms <= .expected_downtime_ms
	and all(.rounds[]; .pinned_pages == 128 and .sources.vfio >= 128)' \
	"$dir/out" >/dev/null || fail "mdev JSON"

run --type1-iommu-dirty --json "$@"
[ "$rc" -eq 0 ] || fail "dma opt-in demo exited $rc"
jq -e '(.total_bytes / .page_size) as $n
	| .status == "completed" and .verify.ok and .all_dirty == false
	and all(.rounds[]; .sources.vfio < $n)' \
	"$dir/out" >/dev/null || fail "dma opt-in JSON"

run --downtime-ms 1 "$@"
[ "$rc" -eq 1 ] || fail "all-dirty without --force exited $rc, expected 1"
grep -q 'all-dirty rule' "$dir/out" || fail "no all-dirty reason"

run --downtime-ms 1 --force --json "$@"
[ "$rc" -eq 0 ] || fail "all-dirty with --force exited $rc"
jq -e '(.total_bytes / .page_size) as $n
	| .status == "completed" and .verify.ok and .all_dirty and .stopcopy_pages == $n
	and all(.rounds[]; .sources.vfio == $n)' \
	"$dir/out" >/dev/null || fail "all-dirty JSON"
echo "migrate --iommu vfio-type1: mdev pinned, dma opt-in, all-dirty give-up and --force: ok"

#!/bin/sh
# The policy's limits through the CLI: a guest dirtying faster than the
# bandwidth, throttling off, cannot converge; --max-time ends it as a clean
# failure (exit 1, "did not converge", the source unharmed) and, with
# --force, as a switchover that completes verified (exit 0), as does
# --max-rounds with --force. Usage: migrate_limits.sh UIOMMU [machine options]
set -u
uiommu=$1
shift
out=$(mktemp)
trap 'rm -f "$out"' EXIT
stuck="--rate 400 --bandwidth 50 --no-throttle --downtime-ms 50 --seconds-before 0.2"
fail=0

run() {
	want=$1
	shift
	# shellcheck disable=SC2086
	"$uiommu" migrate demo "$@" >"$out" 2>&1
	got=$?
	if [ "$got" -ne "$want" ]; then
		echo "FAIL: migrate demo $* exited $got, expected $want" >&2
		cat "$out" >&2
		fail=1
	fi
}

# shellcheck disable=SC2086
run 1 "$@" $stuck --max-time 0.5
grep -q "did not converge" "$out" || { echo "FAIL: no 'did not converge'" >&2; fail=1; }
# shellcheck disable=SC2086
run 0 "$@" $stuck --max-time 0.5 --force
grep -q "verification: *ok" "$out" || { echo "FAIL: forced switchover not verified" >&2; fail=1; }
# shellcheck disable=SC2086
run 0 "$@" $stuck --max-rounds 2 --force
grep -q "verification: *ok" "$out" || { echo "FAIL: --max-rounds --force not verified" >&2; fail=1; }
exit $fail

#!/bin/sh
# Two processes: `uiommu migrate recv` on 127.0.0.1 port 0 (it prints the port
# it got, so no port can be taken twice), then `uiommu migrate send --to` that
# port; both must exit 0 (completed, verified; the receiver's guest checked
# itself). Then a receiver started with another memory size must reject the
# sender's stream: both exit 1, and the receiver says why.
# Usage: migrate_send_recv.sh UIOMMU [machine and workload options...]
set -eu
uiommu=$1
shift
dir=$(mktemp -d "${TMPDIR:-/tmp}/uiommu-mig-2p.XXXXXX")
recv_pid=
cleanup() {
	[ -n "$recv_pid" ] && kill "$recv_pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

# Starts a receiver with the given options; sets recv_pid and port.
start_recv() {
	: >"$dir/recv.err"
	"$uiommu" migrate recv --listen 127.0.0.1:0 --timeout 20 "$@" >"$dir/recv.out" 2>"$dir/recv.err" &
	recv_pid=$!
	port=
	for _ in $(seq 100); do
		port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$dir/recv.err")
		[ -n "$port" ] && return 0
		kill -0 "$recv_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "the receiver did not start:" >&2
	cat "$dir/recv.err" >&2
	exit 1
}

wait_recv() {
	rrc=0
	wait "$recv_pid" || rrc=$?
	recv_pid=
}

start_recv "$@"
src=0
"$uiommu" migrate send --to "127.0.0.1:$port" "$@" >"$dir/send.out" 2>"$dir/send.err" || src=$?
wait_recv
if [ "$src" -ne 0 ] || [ "$rrc" -ne 0 ]; then
	echo "send exited $src, recv exited $rrc" >&2
	cat "$dir/send.out" "$dir/send.err" "$dir/recv.out" "$dir/recv.err" >&2
	exit 1
fi
grep -q '^Migration status: *completed' "$dir/send.out"
grep -q '^guest self-check: *ok' "$dir/recv.out"
echo "send/recv: completed and verified on port $port"

# A receiver whose machine differs (twice the memory) must refuse the stream.
start_recv --mem 256 "$@" --mem 256
src=0
"$uiommu" migrate send --to "127.0.0.1:$port" --mem 128 "$@" --mem 128 \
	>"$dir/send.out" 2>"$dir/send.err" || src=$?
wait_recv
if [ "$src" -ne 1 ] || [ "$rrc" -ne 1 ]; then
	echo "mismatched machines: send exited $src, recv exited $rrc (both should be 1)" >&2
	cat "$dir/send.out" "$dir/send.err" "$dir/recv.out" "$dir/recv.err" >&2
	exit 1
fi
echo "mismatch rejected: $(grep -m1 '^Migration status' "$dir/recv.out")"

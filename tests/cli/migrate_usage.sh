#!/bin/sh
# Usage errors of `uiommu migrate` exit exactly 2 (not 1, not a crash), and
# --help exits 0. Usage: migrate_usage.sh UIOMMU
set -u
uiommu=$1
fail=0

expect() {
	want=$1
	shift
	"$uiommu" "$@" >/dev/null 2>&1
	got=$?
	if [ "$got" -ne "$want" ]; then
		echo "FAIL: uiommu $* exited $got, expected $want" >&2
		fail=1
	fi
}

expect 0 migrate --help
expect 0 migrate demo --help
expect 0 help migrate
expect 2 migrate
expect 2 migrate bogus
expect 2 migrate demo --bogus
expect 2 migrate demo --mem
expect 2 migrate demo --mem 3
expect 2 migrate demo --mem 12abc
expect 2 migrate demo --vcpus 0
expect 2 migrate demo --backend xen
expect 2 migrate demo --workload hotset:0:50
expect 2 migrate demo --workload hotset:10
expect 2 migrate demo --device disk
expect 2 migrate demo --rate -1
expect 2 migrate demo --source kvm-bogus
expect 2 migrate demo --verify all
expect 2 migrate demo --compress 20
expect 2 migrate demo --downtime-ms 0
expect 2 migrate demo --max-time -1
expect 2 migrate demo --max-time soon
expect 2 migrate demo extra-argument
expect 2 migrate send
expect 2 migrate send --listen 127.0.0.1:1
expect 2 migrate recv --to 127.0.0.1:1
expect 2 migrate recv --chart x.png
expect 2 migrate demo --iommu vfio
expect 2 migrate demo --device-kind gpu
expect 2 migrate demo --device-kind mdev
expect 2 migrate demo --iommu iommufd --device-kind mdev
expect 2 migrate recv --device-kind mdev
expect 2 migrate demo --type1-iommu-dirty
expect 2 migrate demo --iommu vfio-type1 --pin-pages 4
expect 2 migrate demo --iommu vfio-type1 --device-kind mdev --pin-pages 0
expect 2 migrate demo --iommu vfio-type1 --device-kind mdev --dma 16 --pin-pages 4097
expect 2 migrate demo --iommu vfio-type1 --device-kind mdev --dma 0
[ "$fail" -eq 0 ] && echo "usage errors: all exit 2"
exit "$fail"

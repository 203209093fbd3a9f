#!/usr/bin/env bash
# Builds and runs the test suite in each build directory given (normal, ASan+UBSan,
# TSan), then prints one closing line "tests: N passed, N failed, N skipped" counted
# from meson's test logs. The TSan build runs only the concurrency suite ('stress').
# Exits non-zero when anything failed.
set -uo pipefail

status=0
logs=()
# The kernel selftest under the LD_PRELOAD shim (tests/conformance/run.sh) counts as one
# test, for the normal build only: 0 passed, 77 skipped (no source offline), else failed.
conf_pass=0 conf_fail=0 conf_skip=0
for dir in "$@"; do
	echo "=== $dir"
	if ! ninja -C "$dir"; then
		echo "uiommu: build failed in $dir" >&2
		status=1
		continue
	fi
	suite=()
	case "$dir" in *tsan*) suite=(--suite stress) ;; esac
	meson test -C "$dir" --print-errorlogs --num-processes 2 "${suite[@]}" || status=1
	logs+=("$dir/meson-logs/testlog.json")
	case "$dir" in
	*asan* | *tsan*) ;;
	*)
		echo "=== $dir: conformance (kernel iommufd selftest)"
		crc=0
		"$(dirname "$0")/../tests/conformance/run.sh" \
			--shim "$dir/src/uapi/shim/libuiommu-preload.so" --out "$dir/conformance" || crc=$?
		case $crc in
		0) conf_pass=$((conf_pass + 1)) ;;
		77) conf_skip=$((conf_skip + 1)) ;;
		*) conf_fail=$((conf_fail + 1)) ;;
		esac
		;;
	esac
done

count() {
	cat "${logs[@]}" 2>/dev/null | jq -r '.result' | grep -c -E "^($1)\$"
}
passed=$(($(count 'OK|EXPECTEDFAIL') + conf_pass))
failed=$(($(count 'FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS') + conf_fail))
skipped=$(($(count 'SKIP') + conf_skip))
[ "$failed" -eq 0 ] || status=1
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit $status

#!/usr/bin/env bash
# Builds and runs the test suite in each build directory given (normal, ASan+UBSan,
# TSan), then prints one closing line "tests: N passed, N failed, N skipped" counted
# from meson's test logs. The TSan build runs only the concurrency suite ('stress').
# Exits non-zero when anything failed.
set -uo pipefail

status=0
logs=()
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
done

count() {
	cat "${logs[@]}" 2>/dev/null | jq -r '.result' | grep -c -E "^($1)\$"
}
passed=$(count 'OK|EXPECTEDFAIL')
failed=$(count 'FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS')
skipped=$(count 'SKIP')
[ "$failed" -eq 0 ] || status=1
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit $status

#!/usr/bin/env bash
# Runs every benchmark of a build directory; extra arguments (--json, --quick) are
# passed to each. Figures are printed beside a baseline measured in the same run.
set -euo pipefail
dir=$1
shift
for b in bench_bitmap bench_itree bench_harvest bench_dma bench_map bench_stream bench_sources bench_migrate bench_type1; do
	"$dir/bench/$b" "$@"
done

#!/bin/sh
# `uiommu migrate demo --chart FILE.png` writes a non-empty PNG (checked by its
# signature). Skipped (77) where gnuplot is missing. Usage: migrate_chart.sh UIOMMU [options...]
set -eu
uiommu=$1
shift
command -v gnuplot >/dev/null 2>&1 || { echo "no gnuplot (package gnuplot-nox): skipped"; exit 77; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/uiommu-mig-chart.XXXXXX")
trap 'rm -rf "$dir"' EXIT

"$uiommu" migrate demo --chart "$dir/rounds.png" "$@" >"$dir/out.txt" || {
	echo "migrate demo --chart exited $?" >&2
	cat "$dir/out.txt" >&2
	exit 1
}
[ -s "$dir/rounds.png" ] || { echo "no chart written" >&2; exit 1; }
magic=$(od -An -tx1 -N8 "$dir/rounds.png" | tr -d ' \n')
[ "$magic" = 89504e470d0a1a0a ] || { echo "not a PNG: $magic" >&2; exit 1; }
echo "chart: $(wc -c <"$dir/rounds.png") bytes"

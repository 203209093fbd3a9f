#!/usr/bin/env bash
# Install the Debian packages uiommu needs to build, test and benchmark.
# Idempotent: installs only what is missing. As root it runs apt-get; otherwise it
# prints the command to run and fails.
set -euo pipefail

# gnuplot-nox: `uiommu migrate --chart` draws its per-round chart with gnuplot.
pkgs=(meson ninja-build pkg-config gcc clang libcmocka-dev libxxhash-dev libzstd-dev jq xz-utils
	gnuplot-nox)

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "uiommu: missing Debian packages: ${missing[*]}" >&2
	echo "uiommu: run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "uiommu: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null || apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null

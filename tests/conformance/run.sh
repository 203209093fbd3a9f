#!/usr/bin/env bash
# Conformance run: the Linux 6.12-stable iommufd selftest, unmodified, against the uiommu
# LD_PRELOAD shim. See tests/conformance/README.md and ../shared/docs/kernel-selftest.md.
#
#   run.sh --shim PATH [--cache DIR] [--expected FILE] [--jobs N] [--update-expected]
#          [--out DIR] [--timeout SEC] [--no-hugetlb]
#
# Fetches linux-source-6.12 with apt-get download into a cache, extracts the five selftest
# files, builds the selftest binary there, runs it under LD_PRELOAD=<shim> (fixtures in
# parallel), and compares the results with the expected list.
# Exit: 0 no regression, 1 regression (or a setup error), 77 source unavailable and no cache.
#
# The functions can be sourced for testing (test-parse.sh): main runs only when executed.
set -euo pipefail
export LC_ALL=C   # sort order, and "." in $EPOCHREALTIME

readonly CONF_PKG=linux-source-6.12
readonly CONF_KDIR=linux-source-6.12                    # top directory inside the tarball
readonly CONF_TARBALL=./usr/src/linux-source-6.12.tar.xz  # member of the .deb
readonly CONF_SELFTEST=$CONF_KDIR/tools/testing/selftests/iommu/iommufd.c
readonly CONF_MEMBERS=(
	"$CONF_KDIR/tools/testing/selftests/iommu/*"
	"$CONF_KDIR/tools/testing/selftests/kselftest*"
	"$CONF_KDIR/drivers/iommu/iommufd/iommufd_test.h"
	"$CONF_KDIR/include/uapi/linux/iommufd.h"
)
# Exactly the compile line of kernel-selftest.md §4(a): the five -D flags make the
# 6.12-stable selftest build against its own (older) uAPI headers.
readonly CONF_CFLAGS=(
	-Wall -O2 -Wno-unused-function -D_GNU_SOURCE
	-DIOMMU_HW_INFO_TYPE_DEFAULT=0 -DIOMMU_HW_INFO_FLAG_INPUT_TYPE=1
	-Din_data_type=out_data_type -DMOCK_FLAGS_DEVICE_PASID=4 -DMOCK_PASID_WIDTH=20
)
readonly CONF_HUGE_WANT=80   # 2 MiB pages reserved for the run
readonly CONF_HUGE_MIN=64    # the 128M_huge dirty variants need 128 MiB

# State the EXIT trap cleans up.
CONF_TMP_PATHS=()            # temporary files/dirs (always inside the cache or out dir)
declare -A CONF_RUNNING=()   # pid of a running unit -> unit name
CONF_HUGE_OLD=""             # nr_hugepages before we raised it
CONF_CUT_SHORT=0             # the whole-run timeout stopped some tests

log() { printf 'conformance: %s\n' "$*" >&2; }

loud() {
	printf '%s\n' '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!' >&2
	printf '!!! conformance: %s\n' "$@" >&2
	printf '%s\n' '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!' >&2
}

die() { log "error: $*"; exit 1; }

usage() {
	cat <<'EOF'
usage: run.sh --shim PATH [--cache DIR] [--expected FILE] [--jobs N] [--update-expected]
              [--out DIR] [--timeout SEC] [--no-hugetlb]
  --shim PATH         the LD_PRELOAD shim (e.g. build/src/uapi/libuiommu-preload.so)
  --cache DIR         download/extract/build cache
                      (default ${XDG_CACHE_HOME:-~/.cache}/uiommu/conformance)
  --expected FILE     expected results (default tests/conformance/expected-6.12.txt)
  --jobs N            test groups run in parallel (default 2)
  --update-expected   rewrite FILE from this run's results, keeping recorded reasons
  --out DIR           logs and results.txt of this run (default <cache>/last-run)
  --timeout SEC       limit for the whole test run (default 600)
  --no-hugetlb        do not reserve hugetlb pages (hugetlb tests become environment-dependent)
exit: 0 no regression, 1 regressions or error, 77 kernel source unavailable and no cache
EOF
}

# ---------------------------------------------------------------------------------------
# Pure text functions (tested by test-parse.sh)

# The package version named by an expected file's header ("# package: <pkg> <version>").
expected_version() {
	[[ -f $1 ]] || return 0
	awk '/^#[ \t]*package:/ { print $NF; exit }' "$1"
}

# `iommufd -l` output (stdin) to test names in harness order: fixture[.variant].test.
# The listing zips variants and tests in two columns ("%-20s %-25s %s"); a fixture name
# longer than 20 characters pushes the other columns right on its first row only.
parse_list() {
	awk '
	function flush(   i, j) {
		if (fixture != "") {
			if (nv == 0)
				for (j = 1; j <= nt; j++) print fixture "." tests[j]
			for (i = 1; i <= nv; i++)
				for (j = 1; j <= nt; j++) print fixture "." vars[i] "." tests[j]
		}
		fixture = ""; nv = 0; nt = 0
	}
	/^# FIXTURE/ || /^[ \t]*$/ { next }
	/^-----/ { flush(); next }
	{
		line = $0; w = 20
		if (substr(line, 1, 1) != " ") {
			flush(); fixture = $1
			if (length(fixture) > w) w = length(fixture)
		}
		rest = substr(line, w + 2)
		v = ""; t = rest
		if (rest != "" && substr(rest, 1, 1) != " ") {
			v = rest; sub(/[ \t].*/, "", v); t = substr(rest, length(v) + 1)
		}
		gsub(/^[ \t]+|[ \t]+$/, "", t)
		if (v != "") vars[++nv] = v
		if (t != "") tests[++nt] = t
	}
	END { flush() }'
}

# TAP logs (files, or stdin) to "name PASS|FAIL|SKIP" in log order. "ok N name # SKIP ..."
# is SKIP, "ok N name # XFAIL" counts as FAIL, "ok N name # XPASS" as PASS.
parse_tap() {
	awk '
	/^ok [0-9]+ [^ ]/ {
		s = "PASS"
		if ($4 == "#" && $5 == "SKIP") s = "SKIP"
		if ($4 == "#" && $5 == "XFAIL") s = "FAIL"
		print $3, s; next
	}
	/^not ok [0-9]+ [^ #]/ { print $4, "FAIL" }' "$@"
}

# make_results LIST TAP NORESULT: every listed test with its TAP status, sorted; a listed
# test without a result line is FAIL and its name goes to NORESULT. Tests that reported
# but are not listed are kept. A test reported twice keeps its last status.
make_results() {
	local list=$1 tap=$2 noresult=$3
	awk -v noresult="$noresult" '
	FILENAME == ARGV[1] { st[$1] = $2; next }
	{ listed[$1] = 1
	  if ($1 in st) print $1, st[$1]
	  else { print $1, "FAIL"; print $1 > noresult } }
	END { for (n in st) if (!(n in listed)) print n, st[n] }' "$tap" "$list" |
		LC_ALL=C sort
	[[ -f $noresult ]] || : >"$noresult"
}

# Tests whose own buffers are MAP_HUGETLB (kernel-selftest.md §3: 22 tests); they fail
# when no hugetlb pages are reserved. Kept in sync with iommufd.c: the _huge dirty variants
# (setup asserts), the hugepage mock_domain variants of the three tests that mmap
# self->mmap_flags, access_domain_destory and vfio huge_map.
readonly CONF_ENV_AWK='
function env_dep(n) {
	return n ~ /^iommufd_dirty_tracking\.[^.]*_huge\./ ||
	       n ~ /^iommufd_mock_domain\.[^.]*hugepage\.(basic|all_aligns|all_aligns_copy)$/ ||
	       n ~ /^iommufd_ioas\.[^.]*\.access_domain_destory$/ ||
	       n ~ /^vfio_compat_mock_domain\.[^.]*\.huge_map$/
}'

is_env_dependent() {
	awk "$CONF_ENV_AWK"' BEGIN { exit !env_dep(ARGV[1]) }' "$1"
}

# compare EXPECTED RESULTS HUGETLB_OK [NORESULT [LOG]]: print the comparison; return 1 when
# a test expected to PASS now fails, skips or is missing (not counting hugetlb tests when
# HUGETLB_OK is 0), else 0. LOG (the harness output) supplies a few diagnostic lines per
# regression.
compare() {
	local expected=$1 results=$2 huge_ok=$3 noresult=${4:-/dev/null} logf=${5:-/dev/null}
	[[ -f $expected ]] || expected=/dev/null
	awk -v huge_ok="$huge_ok" -v upd="${CONF_UPDATE_HINT:-run.sh --update-expected}" \
		"$CONF_ENV_AWK"'
	FILENAME == ARGV[1] {                     # harness log: diagnostics per test
		if ($1 == "#" && $2 == "RUN") { cur = $3; next }
		if ($1 == "#" && ($2 == "OK" || $2 == "FAIL") && $3 == cur) { cur = ""; next }
		if (cur != "" && substr($0, 1, 1) == "#" && ndiag[cur] < 3)
			diag[cur, ++ndiag[cur]] = $0
		next
	}
	FILENAME == ARGV[2] { nores[$1] = 1; next }
	FILENAME == ARGV[3] {                     # expected
		if ($0 ~ /^[ \t]*(#|$)/) next
		if ($2 != "PASS" && $2 != "FAIL" && $2 != "SKIP") {
			printf "warning: %s:%d: bad status \"%s\"\n", FILENAME, FNR, $2; next
		}
		ex[$1] = $2; r = $0
		why[$1] = sub(/^[^#]*#[ \t]*/, "", r) ? r : ""
		if (!($1 in eorder)) { eorder[$1] = ++ne; enames[ne] = $1 }
		next
	}
	{ got[$1] = $2; names[++n] = $1 }           # results (sorted)
	function reason(t) { return (t in why && why[t] != "") ? why[t] : "no reason recorded" }
	function how(t) { return (t in nores) ? got[t] " (no result: crashed or run timed out)" : got[t] }
	function show_diag(t,   i) { for (i = 1; i <= ndiag[t]; i++) print "      " diag[t, i] }
	END {
		for (i = 1; i <= n; i++) {
			t = names[i]; g = got[t]
			if (g == "PASS") np++; else if (g == "SKIP") ns++; else nf++
			if (!(t in ex)) { newt[++nnew] = t; continue }
			e = ex[t]
			if (e == "PASS" && g != "PASS") {
				if (env_dep(t) && !huge_ok) envf[++nenv] = t
				else reg[++nreg] = t
			} else if (e != "PASS" && g == "PASS") fixed[++nfix] = t
			else if (e != g) chg[++nchg] = t
			else if (g == "FAIL") known[++nknown] = t
			else if (g == "SKIP") kskip[++nkskip] = t
		}
		for (i = 1; i <= ne; i++)
			if (!(enames[i] in got)) {
				t = enames[i]
				if (ex[t] == "PASS") reg[++nreg] = t
				else miss[++nmiss] = t
			}
		if (nreg) {
			print "REGRESSIONS (expected PASS):"
			for (i = 1; i <= nreg; i++) {
				t = reg[i]
				if (t in got) print "  REGRESSION " t ": expected PASS, got " how(t)
				else print "  REGRESSION " t ": expected PASS, missing from this run"
				show_diag(t)
			}
		}
		if (nenv) {
			print "ENVIRONMENT-DEPENDENT failures (no hugetlb pages reserved; not regressions):"
			for (i = 1; i <= nenv; i++) print "  ENV " envf[i] ": expected PASS, got " how(envf[i])
		}
		if (nfix) {
			print "NEWLY PASSING (update the expected list: " upd "):"
			for (i = 1; i <= nfix; i++)
				print "  NEW-PASS " fixed[i] " (expected " ex[fixed[i]] " # " reason(fixed[i]) ")"
		}
		if (nchg) {
			print "CHANGED (not regressions):"
			for (i = 1; i <= nchg; i++)
				print "  CHANGED " chg[i] ": expected " ex[chg[i]] ", got " how(chg[i]) " # " reason(chg[i])
		}
		if (nnew) {
			print "NOT IN THE EXPECTED LIST (update it: " upd "):"
			for (i = 1; i <= nnew; i++) print "  UNLISTED " newt[i] " " how(newt[i])
		}
		if (nmiss) {
			print "EXPECTED BUT NOT RUN (expected FAIL/SKIP, so not regressions):"
			for (i = 1; i <= nmiss; i++) print "  MISSING " miss[i] " (expected " ex[miss[i]] ")"
		}
		if (nknown) {
			print "KNOWN FAILURES (expected FAIL), with their recorded reasons:"
			for (i = 1; i <= nknown; i++) {
				t = known[i]
				print "  FAIL " t ((t in nores) ? " (no result)" : "") "  # " reason(t)
			}
		}
		if (nkskip) {
			print "KNOWN SKIPS (expected SKIP):"
			for (i = 1; i <= nkskip; i++) print "  SKIP " kskip[i] "  # " reason(kskip[i])
		}
		printf "compare: %d passed, %d failed, %d skipped; %d regressions, %d newly passing, " \
			"%d environment-dependent, %d changed, %d unlisted, %d not run\n", \
			np, nf, ns, nreg, nfix, nenv, nchg, nnew, nmiss
		exit nreg ? 1 : 0
	}' "$logf" "$noresult" "$expected" "$results"
}

# Counts of a results file: "PASSED FAILED SKIPPED TOTAL".
count_results() {
	awk '{ n++; if ($2 == "PASS") p++; else if ($2 == "SKIP") s++; else f++ }
	     END { printf "%d %d %d %d\n", p, f, s, n }' "$1"
}

# final_line RESULTS PKGVERSION: the one-line summary.
final_line() {
	local p f s n
	read -r p f s n < <(count_results "$1")
	printf 'conformance: %d passed, %d failed, %d skipped (of %d) [%s]\n' "$p" "$f" "$s" "$n" "$2"
}

# update_expected EXPECTED RESULTS PKGVERSION HUGETLB_OK [NORESULT]: rewrite EXPECTED from
# RESULTS. A reason is kept when the test's status did not change; a new FAIL gets an
# automatic reason where one is known.
update_expected() {
	local expected=$1 results=$2 version=$3 huge_ok=$4 noresult=${5:-/dev/null} old tmp
	old=$expected
	[[ -f $old ]] || old=/dev/null
	tmp=$(mktemp "$(dirname -- "$expected")/.expected.XXXXXX")
	CONF_TMP_PATHS+=("$tmp")
	{
		printf '# uiommu conformance: expected results of the Linux 6.12-stable iommufd selftest\n'
		printf '# run under the LD_PRELOAD shim (tests/conformance/run.sh).\n'
		printf '# package: %s\n' "$version"
		printf '# format: <fixture>[.<variant>].<test> PASS|FAIL|SKIP [# reason]\n'
		awk -v huge_ok="$huge_ok" "$CONF_ENV_AWK"'
		FILENAME == ARGV[1] { nores[$1] = 1; next }
		FILENAME == ARGV[2] {
			if ($0 ~ /^[ \t]*(#|$)/) next
			st[$1] = $2; r = $0
			if (sub(/^[^#]*#[ \t]*/, "", r)) why[$1] = r
			next
		}
		{
			r = ""
			if (($1 in st) && st[$1] == $2 && ($1 in why)) r = why[$1]
			else if ($2 == "FAIL" && ($1 in nores)) r = "no result (crashed or timed out)"
			else if ($2 == "FAIL" && env_dep($1) && !huge_ok) r = "needs hugetlb pages (environment)"
			print $1, $2 (r != "" ? " # " r : "")
		}' "$noresult" "$old" "$results"
	} >"$tmp"
	chmod 644 "$tmp"
	mv -f -- "$tmp" "$expected"
}

# ---------------------------------------------------------------------------------------
# Fetching, extracting and building (everything lives under the cache directory)

# The cached .deb of version $1, if any (checked with dpkg-deb, not trusted by name).
cached_deb() {
	local want=$1 f
	for f in "$CONF_CACHE"/debs/"${CONF_PKG}"_*_all.deb; do
		[[ -f $f ]] || continue
		if [[ $(dpkg-deb -f "$f" Version 2>/dev/null) == "$want" ]]; then
			printf '%s\n' "$f"
			return 0
		fi
	done
	return 1
}

# The newest cached .deb of any version, if any.
newest_cached_deb() {
	local f v best="" bestv=""
	for f in "$CONF_CACHE"/debs/"${CONF_PKG}"_*_all.deb; do
		[[ -f $f ]] || continue
		v=$(dpkg-deb -f "$f" Version 2>/dev/null) || continue
		if [[ -z $best ]] || dpkg --compare-versions "$v" gt "$bestv"; then
			best=$f bestv=$v
		fi
	done
	[[ -n $best ]] && printf '%s\n' "$best"
}

# apt_download SPEC: download into the cache; sets CONF_DL on success. The download goes
# to a temporary directory first so that an interrupted one leaves no partial .deb.
apt_download() {
	local spec=$1 tmp debs
	CONF_DL=""
	tmp=$(mktemp -d "$CONF_CACHE/debs/.download.XXXXXX")
	CONF_TMP_PATHS+=("$tmp")
	chmod 755 "$tmp"
	log "apt-get download $spec"
	if ! (cd "$tmp" && apt-get download -q "$spec") >"$tmp/.apt.log" 2>&1; then
		grep -v -e '^W: Download is performed unsandboxed' "$tmp/.apt.log" | tail -n 5 |
			sed 's/^/conformance:   apt: /' >&2 || true
		rm -rf -- "$tmp"
		return 1
	fi
	debs=("$tmp"/*.deb)
	if [[ ${#debs[@]} -ne 1 || ! -f ${debs[0]} ]]; then
		log "apt-get download $spec produced no single .deb"
		rm -rf -- "$tmp"
		return 1
	fi
	mv -f -- "${debs[0]}" "$CONF_CACHE/debs/"
	CONF_DL=$CONF_CACHE/debs/$(basename -- "${debs[0]}")
	rm -rf -- "$tmp"
}

# apt-get update, at most once per run and only when a download failed.
apt_update_once() {
	[[ -z ${CONF_UPDATED:-} ]] || return 1
	CONF_UPDATED=1
	if [[ $(id -u) -ne 0 ]]; then
		log "not root: cannot run apt-get update"
		return 1
	fi
	log "apt-get update"
	apt-get update -q >/dev/null 2>&1 || { log "apt-get update failed"; return 1; }
}

download_or_update() {
	apt_download "$1" && return 0
	apt_update_once && apt_download "$1"
}

# obtain_deb WANT: sets CONF_DEB. WANT is the version the expected file names (may be
# empty). Returns 77 when no .deb can be had at all.
obtain_deb() {
	local want=$1 cand
	CONF_DEB=""
	mkdir -p "$CONF_CACHE/debs"
	if [[ -n $want ]]; then
		if CONF_DEB=$(cached_deb "$want"); then
			log "using cached $CONF_PKG $want"
			return 0
		fi
		if download_or_update "$CONF_PKG=$want"; then
			CONF_DEB=$CONF_DL
			return 0
		fi
		loud "$CONF_PKG $want (named by the expected file) cannot be downloaded;" \
			"falling back to the candidate version: results may differ from the expected list"
	fi
	cand=$(apt-cache policy "$CONF_PKG" 2>/dev/null | awk '/Candidate:/ { print $2; exit }') || cand=""
	if [[ -n $cand && $cand != "(none)" ]] && CONF_DEB=$(cached_deb "$cand"); then
		log "using cached $CONF_PKG $cand (candidate)"
		return 0
	fi
	if download_or_update "$CONF_PKG"; then
		CONF_DEB=$CONF_DL
		return 0
	fi
	if CONF_DEB=$(newest_cached_deb) && [[ -n $CONF_DEB ]]; then
		loud "cannot download $CONF_PKG; using the newest cached copy $(basename -- "$CONF_DEB")"
		return 0
	fi
	CONF_DEB=""
	return 77
}

# extract_source DEB VERSION: sets CONF_SRC (kept in the cache; reused when complete).
extract_source() {
	local deb=$1 ver=$2 tmp
	CONF_SRC=$CONF_CACHE/src/$ver
	if [[ -f $CONF_SRC/.complete ]]; then
		return 0
	fi
	mkdir -p "$CONF_CACHE/src"
	rm -rf -- "$CONF_SRC"
	tmp=$(mktemp -d "$CONF_CACHE/src/.extract.XXXXXX")
	CONF_TMP_PATHS+=("$tmp")
	log "extracting the selftest files from $(basename -- "$deb")"
	# xz -T0: the tarball has many blocks, so decompression scales with the cores (2: 16s -> 9s).
	dpkg-deb --fsys-tarfile "$deb" | tar -xOf - "$CONF_TARBALL" | xz -T0 -dc |
		tar -xf - -C "$tmp" --wildcards "${CONF_MEMBERS[@]}" ||
		die "extraction from $deb failed"
	[[ -f $tmp/$CONF_SELFTEST ]] || die "$CONF_SELFTEST not found in $deb"
	mkdir -p "$tmp/inc/linux"
	cp -- "$tmp/$CONF_KDIR/include/uapi/linux/iommufd.h" "$tmp/inc/linux/"
	: >"$tmp/.complete"
	mv -- "$tmp" "$CONF_SRC"
}

# build_selftest VERSION: sets CONF_BIN (rebuilt only when the compiler or flags change).
build_selftest() {
	local ver=$1 dir stamp
	dir=$CONF_CACHE/build/$ver
	CONF_BIN=$dir/iommufd
	stamp="$(gcc -dumpfullversion -dumpversion 2>/dev/null) ${CONF_CFLAGS[*]}"
	if [[ -x $CONF_BIN && -f $dir/stamp && $(<"$dir/stamp") == "$stamp" ]]; then
		return 0
	fi
	mkdir -p "$dir"
	rm -f -- "$dir/stamp" "$CONF_BIN"
	log "building the selftest: gcc ${CONF_CFLAGS[*]} -isystem inc -o iommufd $CONF_SELFTEST"
	CONF_TMP_PATHS+=("$dir/iommufd.tmp")
	if ! (cd "$CONF_SRC" && gcc "${CONF_CFLAGS[@]}" -isystem inc -o "$dir/iommufd.tmp" \
		"$CONF_SELFTEST") >"$dir/build.log" 2>&1; then
		cat "$dir/build.log" >&2
		die "building the selftest failed (log: $dir/build.log)"
	fi
	[[ -s $dir/build.log ]] && { log "compiler output:"; cat "$dir/build.log" >&2; }
	mv -f -- "$dir/iommufd.tmp" "$CONF_BIN"
	printf '%s\n' "$stamp" >"$dir/stamp"
}

# ---------------------------------------------------------------------------------------
# hugetlb pages

# setup_hugetlb NO: sets CONF_HUGE_OK (1 when enough pages are free for the run).
setup_hugetlb() {
	local no=$1 f=/proc/sys/vm/nr_hugepages cur now free
	CONF_HUGE_OK=0
	if [[ $no == 1 ]]; then
		log "hugetlb: not reserving pages (--no-hugetlb); hugetlb tests are environment-dependent"
		return 0
	fi
	if ! cur=$(cat "$f" 2>/dev/null); then
		log "hugetlb: $f unreadable; hugetlb tests are environment-dependent"
		return 0
	fi
	if ((cur < CONF_HUGE_WANT)); then
		if [[ $(id -u) -ne 0 ]]; then
			log "hugetlb: not root, nr_hugepages is $cur; hugetlb tests are environment-dependent" \
				"(as root: echo $CONF_HUGE_WANT > $f)"
			return 0
		fi
		CONF_HUGE_OLD=$cur
		if ! echo "$CONF_HUGE_WANT" >"$f" 2>/dev/null; then
			log "hugetlb: cannot write $f; hugetlb tests are environment-dependent"
		fi
	fi
	now=$(cat "$f")
	free=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)
	if ((${free:-0} >= CONF_HUGE_MIN)); then
		CONF_HUGE_OK=1
		log "hugetlb: nr_hugepages $now (was $cur), $free free"
	else
		log "hugetlb: only ${free:-0} pages free (nr_hugepages $now, need $CONF_HUGE_MIN);" \
			"hugetlb tests are environment-dependent"
	fi
}

restore_hugetlb() {
	if [[ -n $CONF_HUGE_OLD ]]; then
		echo "$CONF_HUGE_OLD" >/proc/sys/vm/nr_hugepages 2>/dev/null ||
			log "hugetlb: could not restore nr_hugepages to $CONF_HUGE_OLD"
		CONF_HUGE_OLD=""
	fi
}

# ---------------------------------------------------------------------------------------
# Running

# The child pids of $1 (from /proc: procps may be missing on a minimal system).
children_of() {
	local pid=$1 f
	if [[ -r /proc/$pid/task/$pid/children ]]; then
		cat /proc/"$pid"/task/*/children 2>/dev/null || true
		return 0
	fi
	for f in /proc/[0-9]*/stat; do
		# The fields after the last ")" are: state ppid ...
		awk -v p="$pid" '{ s = $0; sub(/.*\) /, "", s); split(s, a, " ");
			if (a[2] == p) { split(FILENAME, q, "/"); print q[3] } }' "$f" 2>/dev/null || true
	done
}

# Kill a process we started and all its descendants. The harness runs each test in a
# forked child in its own process group, so killing the harness alone would orphan it.
kill_tree() {
	local pid=$1 child
	kill -STOP "$pid" 2>/dev/null || return 0
	for child in $(children_of "$pid"); do
		kill_tree "$child"
	done
	kill -KILL "$pid" 2>/dev/null || true
}

# The scheduling unit of a test: its fixture.variant (the fixture for variant-less
# fixtures). The two _huge dirty variants share one unit so that their 64 + 32 hugetlb
# pages are never needed at the same time.
unit_lines() {
	awk '{
		n = split($1, p, ".")
		u = (n >= 3) ? p[1] "." p[2] : p[1]
		if (p[1] == "iommufd_dirty_tracking" && p[2] ~ /_huge$/) u = p[1] ".huge"
		print u, $1
	}'
}

# run_units BIN SHIM LIST LOGDIR JOBS TIMEOUT: run the tests of LIST in parallel units,
# one harness per unit (filtered with -r), each logging to LOGDIR/<unit>.log.
run_units() {
	local bin=$1 shim=$2 list=$3 logdir=$4 jobs=$5 limit=$6
	local -A tests=() prev=() started=()
	local -a order=() queue=()
	local u t pid rc deadline now dt i=0 total done=0
	local times=$CONF_CACHE/unit-times

	while read -r u t; do
		[[ -n ${tests[$u]+x} ]] || order+=("$u")
		tests[$u]+="$t "
	done < <(unit_lines <"$list")
	if [[ -f $times ]]; then
		while read -r u t; do prev[$u]=$t; done <"$times"
	fi
	# Longest first (timings of the previous run), else harness order.
	mapfile -t queue < <(for i in "${!order[@]}"; do
		printf '%s %d %s\n' "${prev[${order[i]}]:-0}" "$i" "${order[i]}"
	done | sort -k1,1gr -k2,2n | awk '{ print $3 }')
	total=${#queue[@]}
	i=0
	deadline=$((${EPOCHREALTIME/./} + limit * 1000000))
	: >"$times.new"
	CONF_TMP_PATHS+=("$times.new" "$times.tmp")
	while :; do
		while ((${#CONF_RUNNING[@]} < jobs && i < total && ${EPOCHREALTIME/./} < deadline)); do
			u=${queue[i++]}
			local -a args=()
			for t in ${tests[$u]}; do args+=(-r "$t"); done
			(
				rc=0
				LD_PRELOAD=$shim "$bin" "${args[@]}" </dev/null >"$logdir/$u.log" 2>&1 || rc=$?
				echo "$rc" >"$logdir/$u.rc"
			) &
			CONF_RUNNING[$!]=$u
			started[$!]=$EPOCHREALTIME
		done
		((${#CONF_RUNNING[@]} > 0)) || break
		sleep 0.1
		for pid in "${!CONF_RUNNING[@]}"; do
			u=${CONF_RUNNING[$pid]}
			if [[ -f $logdir/$u.rc ]]; then
				wait "$pid" 2>/dev/null || true
				rc=$(<"$logdir/$u.rc")
			elif ((${EPOCHREALTIME/./} >= deadline)); then
				kill_tree "$pid"
				wait "$pid" 2>/dev/null || true
				rc="killed: the whole run exceeded ${limit}s"
				echo "$rc" >"$logdir/$u.rc"
			else
				continue
			fi
			unset "CONF_RUNNING[$pid]"
			now=$EPOCHREALTIME
			dt=$(awk -v a="${started[$pid]}" -v b="$now" 'BEGIN { printf "%.1f", b - a }')
			printf '%s %s\n' "$u" "$dt" >>"$times.new"
			done=$((done + 1))
			case $rc in
			0 | 1) rc="" ;;
			killed*) rc=", $rc"; CONF_CUT_SHORT=1 ;;
			*) rc=", harness exit $rc" ;;
			esac
			log "[$done/$total] $u: $(wc -w <<<"${tests[$u]}") tests, ${dt}s$rc"
		done
	done
	while ((i < total)); do
		log "not run (the whole run exceeded ${limit}s): ${queue[i++]}"
		CONF_CUT_SHORT=1
	done
	# Keep the timings of units that ran, for the next run's scheduling.
	if [[ -f $times ]]; then
		awk 'FILENAME == ARGV[1] { seen[$1] = 1; print; next } !($1 in seen)' \
			"$times.new" "$times" >"$times.tmp" || true
		mv -f -- "$times.tmp" "$times"
	else
		cp -- "$times.new" "$times"
	fi
	rm -f -- "$times.new"
}

cleanup() {
	local pid
	for pid in "${!CONF_RUNNING[@]}"; do
		kill_tree "$pid"
		wait "$pid" 2>/dev/null || true
	done
	restore_hugetlb
	if ((${#CONF_TMP_PATHS[@]})); then
		rm -rf -- "${CONF_TMP_PATHS[@]}"
	fi
	if [[ -n ${CONF_LOCK_FD:-} ]]; then
		exec {CONF_LOCK_FD}>&-
	fi
}

# ---------------------------------------------------------------------------------------

main() {
	local shim="" expected="" jobs=2 update=0 limit=600 out="" no_huge=0
	local here version rc=0
	here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
	CONF_CACHE=${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/uiommu/conformance

	while (($#)); do
		case $1 in
		--shim) shim=${2?--shim needs a path}; shift 2 ;;
		--cache) CONF_CACHE=${2?--cache needs a directory}; shift 2 ;;
		--expected) expected=${2?--expected needs a file}; shift 2 ;;
		--jobs) jobs=${2?--jobs needs a number}; shift 2 ;;
		--timeout) limit=${2?--timeout needs seconds}; shift 2 ;;
		--out) out=${2?--out needs a directory}; shift 2 ;;
		--update-expected) update=1; shift ;;
		--no-hugetlb) no_huge=1; shift ;;
		-h | --help) usage; return 0 ;;
		*) usage >&2; die "unknown argument: $1" ;;
		esac
	done
	[[ -n $shim ]] || { usage >&2; die "--shim PATH is required"; }
	[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive number"
	[[ $limit =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a positive number of seconds"
	if [[ ! -f $shim ]]; then
		die "the shim $shim does not exist (build it first, e.g. ninja -C build)"
	fi
	shim=$(realpath -- "$shim")
	# ld.so splits LD_PRELOAD on spaces and colons.
	[[ $shim != *[[:space:]:]* ]] || die "the shim path must not contain spaces or colons: $shim"
	local tool
	for tool in apt-get apt-cache dpkg-deb tar xz gcc flock awk; do
		command -v "$tool" >/dev/null ||
			die "$tool is missing (Debian packages: apt dpkg tar xz-utils gcc util-linux mawk)"
	done
	expected=${expected:-$here/expected-6.12.txt}
	[[ -f $expected || $update == 1 ]] ||
		log "warning: expected file $expected does not exist; every test is unlisted"
	mkdir -p "$CONF_CACHE"
	CONF_CACHE=$(realpath -- "$CONF_CACHE")
	out=${out:-$CONF_CACHE/last-run}
	CONF_UPDATE_HINT="$0 --shim $shim --update-expected"

	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM HUP

	# Fetch, extract and build under a lock: runs may share the cache.
	exec {CONF_LOCK_FD}>"$CONF_CACHE/.lock"
	flock "$CONF_LOCK_FD"
	obtain_deb "$(expected_version "$expected")" || rc=$?
	if ((rc == 77)); then
		loud "$CONF_PKG cannot be downloaded and there is no cached copy in $CONF_CACHE." \
			"The kernel selftest did NOT run: exiting 77 (skipped)."
		echo "conformance: not run ($CONF_PKG unavailable, no cache) [none]"
		return 77
	fi
	((rc == 0)) || die "obtaining $CONF_PKG failed"
	version="$CONF_PKG $(dpkg-deb -f "$CONF_DEB" Version)" || die "$CONF_DEB is not a valid .deb"
	log "package: $version ($CONF_DEB)"
	extract_source "$CONF_DEB" "${version#* }"
	build_selftest "${version#* }"
	exec {CONF_LOCK_FD}>&-
	CONF_LOCK_FD=""

	mkdir -p "$out"
	out=$(realpath -- "$out")
	rm -rf -- "$out/logs"
	mkdir -p "$out/logs"
	rm -f -- "$out/tests.txt" "$out/results.txt" "$out/noresult.txt" "$out/harness.log"
	printf '%s\n' "$version" >"$out/package.txt"
	# -l prints the table on stderr and exits 4 (KSFT_SKIP).
	{ "$CONF_BIN" -l 2>&1 || true; } | parse_list >"$out/tests.txt"
	[[ -s $out/tests.txt ]] || die "$CONF_BIN -l listed no tests"
	log "$(wc -l <"$out/tests.txt") tests; shim $shim; $jobs jobs; limit ${limit}s"

	setup_hugetlb "$no_huge"
	local t0=$SECONDS
	run_units "$CONF_BIN" "$shim" "$out/tests.txt" "$out/logs" "$jobs" "$limit"
	log "ran in $((SECONDS - t0))s"
	restore_hugetlb

	local -a logs=("$out"/logs/*.log)
	cat -- "${logs[@]}" >"$out/harness.log"
	parse_tap "$out/harness.log" >"$out/tap.txt"
	make_results "$out/tests.txt" "$out/tap.txt" "$out/noresult.txt" >"$out/results.txt"
	rm -f -- "$out/tap.txt"

	echo "=== conformance: $version; shim $shim; hugetlb $( ((CONF_HUGE_OK)) && echo reserved || echo 'NOT reserved')"
	echo "=== expected: $expected"
	echo "=== results: $out/results.txt (harness output: $out/harness.log)"
	rc=0
	compare "$expected" "$out/results.txt" "$CONF_HUGE_OK" "$out/noresult.txt" \
		"$out/harness.log" || rc=$?
	local want
	want=$(expected_version "$expected")
	if [[ -n $want && $want != "${version#* }" ]]; then
		loud "the expected list is for $CONF_PKG $want but this run used $version"
	fi
	if ((update)); then
		update_expected "$expected" "$out/results.txt" "$version" "$CONF_HUGE_OK" \
			"$out/noresult.txt"
		log "rewrote $expected from this run"
		((CONF_HUGE_OK)) ||
			log "warning: hugetlb was not reserved, so hugetlb tests were recorded as FAIL"
		rc=0
	fi
	if ((CONF_CUT_SHORT)); then
		loud "the run hit --timeout ${limit}s: $(wc -l <"$out/noresult.txt") tests have no result" \
			"(they count as FAIL; see $out/logs)"
	fi
	((rc == 0)) || log "REGRESSIONS found (see above)"
	final_line "$out/results.txt" "$version"
	return "$rc"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi

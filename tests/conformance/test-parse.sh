#!/usr/bin/env bash
# Tests of run.sh itself, without network and without the kernel source:
#  1. its parsing and comparison functions, on canned harness output (invented tests in
#     the kselftest-harness format: "-l" table, TAP lines, diagnostics);
#  2. its exit codes end to end: a missing shim (1), no source and no cache (77, with a
#     stubbed apt-get), and a fake linux-source-6.12 .deb whose "selftest" is a small C
#     harness look-alike (0 when results match, 1 on a regression, --update-expected, the
#     whole-run timeout killing a hung test and its forked child).
# Prints "test-parse: N passed, N failed" and exits 1 on any failure.
set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=run.sh
source "$HERE/run.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/uiommu-conformance-test.XXXXXX")
trap 'rm -rf -- "$T"' EXIT

npass=0 nfail=0
ok() { npass=$((npass + 1)); }
bad() { nfail=$((nfail + 1)); printf 'test-parse: FAIL: %s\n' "$*" >&2; }
check() { # check DESCRIPTION CMD...: CMD must succeed
	local what=$1; shift
	if "$@"; then ok; else bad "$what"; fi
}
check_eq() { # check_eq DESCRIPTION EXPECTED ACTUAL
	if [[ $2 == "$3" ]]; then ok; else
		bad "$1"
		diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") | sed 's/^/    /' >&2 || true
	fi
}
has_line() { grep -qxF -- "$2" "$1"; }
lacks() { ! grep -qF -- "$2" "$1"; }

# ---------------------------------------------------------------------------------------
# 1. Functions on canned output

# "-l" table, printed as the harness does ("%-20s %-25s %s"): an empty "global" fixture, a
# fixture without variants, one whose name is longer than 20 (its first row shifts right),
# and one with more variants than tests.
{
	printf '%-20s %-25s %s\n' "# FIXTURE" "VARIANT" "TEST"
	printf '%-20s %-25s %s\n' "global" "" ""
	echo "--------------------------------------------------------------------------------"
	printf '%-20s %-25s %s\n' "plain" "" "open_close" "" "" "bad_cmd" "" "" "skipper"
	echo "--------------------------------------------------------------------------------"
	printf '%-20s %-25s %s\n' "a_fixture_with_a_long_name" "one" "alpha" "" "two_huge" "beta"
	echo "--------------------------------------------------------------------------------"
	printf '%-20s %-25s %s\n' "wide" "v1" "t1" "" "v2" "" "" "v3" ""
} >"$T/list.txt"
parse_list <"$T/list.txt" >"$T/tests.txt"
check_eq "parse_list" "plain.open_close
plain.bad_cmd
plain.skipper
a_fixture_with_a_long_name.one.alpha
a_fixture_with_a_long_name.one.beta
a_fixture_with_a_long_name.two_huge.alpha
a_fixture_with_a_long_name.two_huge.beta
wide.v1.t1
wide.v2.t1
wide.v3.t1" "$(cat "$T/tests.txt")"

# TAP as the harness prints it (stdout and stderr merged). wide.v3.t1 has no result line
# (as if the harness died); "extra.test" reported but is not listed.
cat >"$T/tap.log" <<'EOF'
TAP version 13
1..9
# Starting 9 tests from 4 test cases.
#  RUN           plain.open_close ...
#            OK  plain.open_close
ok 1 plain.open_close
#  RUN           plain.bad_cmd ...
# fake.c:42:bad_cmd:Expected 0 (0) == errno (25)
# fake.c:43:bad_cmd:second diagnostic
# bad_cmd: Test terminated by assertion
#          FAIL  plain.bad_cmd
not ok 2 plain.bad_cmd
#  RUN           plain.skipper ...
#      SKIP      needs something
#            OK  plain.skipper
ok 3 plain.skipper # SKIP needs something
#  RUN           a_fixture_with_a_long_name.one.alpha ...
#            OK  a_fixture_with_a_long_name.one.alpha
ok 4 a_fixture_with_a_long_name.one.alpha
#  RUN           a_fixture_with_a_long_name.one.beta ...
# beta: Test terminated by timeout
#          FAIL  a_fixture_with_a_long_name.one.beta
not ok 5 a_fixture_with_a_long_name.one.beta #  timeout
  ok 99 indented.line.is.not.a.result
#  RUN           a_fixture_with_a_long_name.two_huge.alpha ...
#          FAIL  a_fixture_with_a_long_name.two_huge.alpha
not ok 6 a_fixture_with_a_long_name.two_huge.alpha
ok 7 a_fixture_with_a_long_name.two_huge.beta # XFAIL known
ok 8 wide.v1.t1
ok 9 wide.v2.t1 # XPASS
ok 10 extra.test
# FAILED: 5 / 9 tests passed.
# Totals: pass:4 fail:3 xfail:1 xpass:1 skip:1 error:0
EOF
parse_tap "$T/tap.log" >"$T/tap.txt"
check_eq "parse_tap" "plain.open_close PASS
plain.bad_cmd FAIL
plain.skipper SKIP
a_fixture_with_a_long_name.one.alpha PASS
a_fixture_with_a_long_name.one.beta FAIL
a_fixture_with_a_long_name.two_huge.alpha FAIL
a_fixture_with_a_long_name.two_huge.beta FAIL
wide.v1.t1 PASS
wide.v2.t1 PASS
extra.test PASS" "$(cat "$T/tap.txt")"

make_results "$T/tests.txt" "$T/tap.txt" "$T/noresult.txt" >"$T/results.txt"
check_eq "make_results" "a_fixture_with_a_long_name.one.alpha PASS
a_fixture_with_a_long_name.one.beta FAIL
a_fixture_with_a_long_name.two_huge.alpha FAIL
a_fixture_with_a_long_name.two_huge.beta FAIL
extra.test PASS
plain.bad_cmd FAIL
plain.open_close PASS
plain.skipper SKIP
wide.v1.t1 PASS
wide.v2.t1 PASS
wide.v3.t1 FAIL" "$(cat "$T/results.txt")"
check_eq "make_results: tests without a result" "wide.v3.t1" "$(cat "$T/noresult.txt")"
check_eq "final_line" "conformance: 5 passed, 5 failed, 1 skipped (of 11) [linux-source-6.12 1.2-3]" \
	"$(final_line "$T/results.txt" "linux-source-6.12 1.2-3")"

# Expected: bad_cmd, skipper (now SKIP) and wide.v3.t1 (no result) and gone.test (not run)
# were passing: four regressions. two_huge.beta was SKIP (now FAIL): changed, not a
# regression. wide.v2.t1 was FAIL: newly passing. extra.test is unlisted.
cat >"$T/expected.txt" <<'EOF'
# header comment
# package: linux-source-6.12 1.2-3
plain.open_close PASS
plain.bad_cmd PASS # reason kept only while the status stays
plain.skipper PASS
a_fixture_with_a_long_name.one.alpha PASS
a_fixture_with_a_long_name.one.beta FAIL # slow
a_fixture_with_a_long_name.two_huge.alpha FAIL
a_fixture_with_a_long_name.two_huge.beta SKIP # not here
wide.v1.t1 PASS
wide.v2.t1 FAIL # was broken
wide.v3.t1 PASS
gone.test PASS
gone.failing FAIL # whatever
EOF
check_eq "expected_version" "1.2-3" "$(expected_version "$T/expected.txt")"
check_eq "expected_version: no file" "" "$(expected_version "$T/nonexistent")"

rc=0
compare "$T/expected.txt" "$T/results.txt" 1 "$T/noresult.txt" "$T/tap.log" >"$T/cmp.txt" || rc=$?
check_eq "compare: regressions give 1" 1 "$rc"
check "compare: PASS->FAIL" has_line "$T/cmp.txt" "  REGRESSION plain.bad_cmd: expected PASS, got FAIL"
check "compare: diagnostics" has_line "$T/cmp.txt" "      # fake.c:42:bad_cmd:Expected 0 (0) == errno (25)"
check "compare: PASS->SKIP" has_line "$T/cmp.txt" "  REGRESSION plain.skipper: expected PASS, got SKIP"
check "compare: PASS->no result" has_line "$T/cmp.txt" \
	"  REGRESSION wide.v3.t1: expected PASS, got FAIL (no result: crashed or run timed out)"
check "compare: PASS->missing" has_line "$T/cmp.txt" \
	"  REGRESSION gone.test: expected PASS, missing from this run"
check "compare: newly passing" has_line "$T/cmp.txt" \
	"  NEW-PASS wide.v2.t1 (expected FAIL # was broken)"
check "compare: changed" has_line "$T/cmp.txt" \
	"  CHANGED a_fixture_with_a_long_name.two_huge.beta: expected SKIP, got FAIL # not here"
check "compare: unlisted" has_line "$T/cmp.txt" "  UNLISTED extra.test PASS"
check "compare: expected FAIL, not run" has_line "$T/cmp.txt" "  MISSING gone.failing (expected FAIL)"
check "compare: known failure with reason" has_line "$T/cmp.txt" \
	"  FAIL a_fixture_with_a_long_name.one.beta  # slow"
check "compare: known failure without reason" has_line "$T/cmp.txt" \
	"  FAIL a_fixture_with_a_long_name.two_huge.alpha  # no reason recorded"
check "compare: counts" has_line "$T/cmp.txt" "compare: 5 passed, 5 failed, 1 skipped; 4 regressions, 1 newly passing, 0 environment-dependent, 1 changed, 1 unlisted, 1 not run"
check "compare: only four regressions" test "$(grep -c '^  REGRESSION' "$T/cmp.txt")" -eq 4

# No regression: exit 0, and the newly passing test is still reported.
grep -v -e '^plain.bad_cmd' -e '^plain.skipper' -e '^wide.v3.t1' -e '^gone.test' \
	"$T/expected.txt" >"$T/expected-ok.txt"
rc=0
compare "$T/expected-ok.txt" "$T/results.txt" 1 "$T/noresult.txt" >"$T/cmp-ok.txt" || rc=$?
check_eq "compare: no regression gives 0" 0 "$rc"
check "compare: no REGRESSION lines" lacks "$T/cmp-ok.txt" "REGRESSION"
check "compare: newly passing without regressions" grep -qF "NEW-PASS wide.v2.t1" "$T/cmp-ok.txt"

# Missing expected file: everything is unlisted, nothing regresses.
rc=0
compare "$T/nonexistent" "$T/results.txt" 1 >"$T/cmp-none.txt" || rc=$?
check_eq "compare: no expected file gives 0" 0 "$rc"
check_eq "compare: no expected file lists all as unlisted" 11 "$(grep -c '^  UNLISTED' "$T/cmp-none.txt")"

# hugetlb tests (real names from the 6.12 selftest) are environment-dependent only when
# no hugetlb pages are reserved.
huge_names=(
	iommufd_dirty_tracking.domain_dirty64M_huge.enforce_dirty
	iommufd_dirty_tracking.domain_dirty128M_huge.get_dirty_bitmap
	iommufd_mock_domain.one_domain_hugepage.basic
	iommufd_mock_domain.two_domains_hugepage.all_aligns_copy
	iommufd_ioas.no_domain.access_domain_destory
	vfio_compat_mock_domain.Ver1v0.huge_map
)
plain_names=(
	iommufd_dirty_tracking.domain_dirty64M.enforce_dirty
	iommufd_mock_domain.one_domain_hugepage.replace
	iommufd_mock_domain.one_domain.basic
	iommufd_ioas.no_domain.access_pin
	vfio_compat_mock_domain.Ver1v0.map
	iommufd.simple_close
)
for n in "${huge_names[@]}"; do check "env-dependent: $n" is_env_dependent "$n"; done
for n in "${plain_names[@]}"; do check "not env-dependent: $n" eval "! is_env_dependent $n"; done
printf '%s PASS\n' "${huge_names[@]}" "${plain_names[@]}" | LC_ALL=C sort >"$T/huge-exp.txt"
{
	printf '%s FAIL\n' "${huge_names[@]}"
	printf '%s PASS\n' "${plain_names[@]}"
} | LC_ALL=C sort >"$T/huge-res.txt"
rc=0
compare "$T/huge-exp.txt" "$T/huge-res.txt" 0 >"$T/cmp-huge0.txt" || rc=$?
check_eq "hugetlb failures without hugetlb: no regression" 0 "$rc"
check_eq "hugetlb failures without hugetlb: listed as ENV" 6 "$(grep -c '^  ENV ' "$T/cmp-huge0.txt")"
rc=0
compare "$T/huge-exp.txt" "$T/huge-res.txt" 1 >"$T/cmp-huge1.txt" || rc=$?
check_eq "hugetlb failures with hugetlb reserved: regressions" 1 "$rc"
check_eq "hugetlb failures with hugetlb reserved: six" 6 "$(grep -c '^  REGRESSION' "$T/cmp-huge1.txt")"
sed -i 's/^iommufd.simple_close PASS/iommufd.simple_close FAIL/' "$T/huge-res.txt"
rc=0
compare "$T/huge-exp.txt" "$T/huge-res.txt" 0 >/dev/null || rc=$?
check_eq "a non-hugetlb failure is a regression even without hugetlb" 1 "$rc"

# --update-expected: reasons kept while the status stays, dropped when it changes;
# automatic reasons for no-result and (without hugetlb) hugetlb failures.
cp "$T/expected.txt" "$T/upd.txt"
update_expected "$T/upd.txt" "$T/results.txt" "linux-source-6.12 9.9-1" 1 "$T/noresult.txt"
check_eq "update_expected" "# uiommu conformance: expected results of the Linux 6.12-stable iommufd selftest
# run under the LD_PRELOAD shim (tests/conformance/run.sh).
# package: linux-source-6.12 9.9-1
# format: <fixture>[.<variant>].<test> PASS|FAIL|SKIP [# reason]
a_fixture_with_a_long_name.one.alpha PASS
a_fixture_with_a_long_name.one.beta FAIL # slow
a_fixture_with_a_long_name.two_huge.alpha FAIL
a_fixture_with_a_long_name.two_huge.beta FAIL
extra.test PASS
plain.bad_cmd FAIL
plain.open_close PASS
plain.skipper SKIP
wide.v1.t1 PASS
wide.v2.t1 PASS
wide.v3.t1 FAIL # no result (crashed or timed out)" "$(cat "$T/upd.txt")"
check_eq "update_expected: version read back" "9.9-1" "$(expected_version "$T/upd.txt")"
rc=0
compare "$T/upd.txt" "$T/results.txt" 1 "$T/noresult.txt" >"$T/cmp-upd.txt" || rc=$?
check_eq "compare after update: 0" 0 "$rc"
check "compare after update: nothing new" lacks "$T/cmp-upd.txt" "NEW-PASS"
update_expected "$T/upd-huge.txt" "$T/huge-res.txt" "linux-source-6.12 9.9-1" 0
check "update_expected: hugetlb reason without hugetlb" has_line "$T/upd-huge.txt" \
	"vfio_compat_mock_domain.Ver1v0.huge_map FAIL # needs hugetlb pages (environment)"
check "update_expected: new file" has_line "$T/upd-huge.txt" "iommufd.simple_close FAIL"
check "update_expected: no temporary files left" test -z "$(find "$T" -name '.expected.*')"

# ---------------------------------------------------------------------------------------
# 2. run.sh end to end

# Stubs: apt-get/apt-cache that fail and record calls (no network).
mkdir -p "$T/bin"
for tool in apt-get apt-cache; do
	printf '#!/bin/sh\necho "%s $*" >>"%s/apt-calls"\nexit 100\n' "$tool" "$T" >"$T/bin/$tool"
	chmod +x "$T/bin/$tool"
done
echo 'void conformance_test_noop(void); void conformance_test_noop(void) {}' >"$T/noop.c"
gcc -shared -fPIC -o "$T/shim.so" "$T/noop.c"

rc=0
PATH=$T/bin:$PATH "$HERE/run.sh" --shim "$T/no-such-shim.so" --cache "$T/c0" \
	>"$T/out-noshim" 2>&1 || rc=$?
check_eq "missing shim: exit 1" 1 "$rc"
check "missing shim: message" grep -qF "the shim $T/no-such-shim.so does not exist" "$T/out-noshim"

rc=0
PATH=$T/bin:$PATH "$HERE/run.sh" --shim "$T/shim.so" --cache "$T/c1" --expected "$T/expected.txt" \
	--no-hugetlb >"$T/out-77" 2>&1 || rc=$?
check_eq "no source and no cache: exit 77" 77 "$rc"
check "no source: loud message" grep -qF "did NOT run" "$T/out-77"
check "no source: pinned version tried first" grep -qxF "apt-get download -q linux-source-6.12=1.2-3" "$T/apt-calls"

# A fake linux-source-6.12 .deb whose iommufd.c mimics the harness: "-l", "-r name",
# a fork per test with setpgrp, TAP output. FAKE_FAIL / FAKE_HANG name tests to fail/hang.
src=$T/pkg/src/linux-source-6.12
mkdir -p "$src/tools/testing/selftests/iommu" "$src/drivers/iommu/iommufd" \
	"$src/include/uapi/linux" "$T/pkg/deb/DEBIAN" "$T/pkg/deb/usr/src"
touch "$src/tools/testing/selftests/kselftest_harness.h" "$src/tools/testing/selftests/kselftest.h" \
	"$src/drivers/iommu/iommufd/iommufd_test.h" "$src/include/uapi/linux/iommufd.h"
cat >"$src/tools/testing/selftests/iommu/iommufd.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
static const char *const tests[] = {
	"plain.open_close", "plain.skipper",
	"a_fixture_with_a_long_name.one.alpha", "a_fixture_with_a_long_name.one.beta",
	"a_fixture_with_a_long_name.two.alpha", "a_fixture_with_a_long_name.two.beta",
};
static int listed(const char *var, const char *name)
{
	const char *s = getenv(var);
	size_t n = strlen(name);
	for (; s && (s = strstr(s, name)); s += n)
		if (s[n] == '\0' || s[n] == ' ')
			return 1;
	return 0;
}
int main(int argc, char **argv)
{
	unsigned i, n = 0;
	int a, any_r = 0, status;
	if (argc > 1 && !strcmp(argv[1], "-l")) {
		fprintf(stderr, "%-20s %-25s %s\n", "# FIXTURE", "VARIANT", "TEST");
		fprintf(stderr, "%-20s %-25s %s\n", "plain", "", "open_close");
		fprintf(stderr, "%-20s %-25s %s\n", "", "", "skipper");
		fprintf(stderr, "------\n");
		fprintf(stderr, "%-20s %-25s %s\n", "a_fixture_with_a_long_name", "one", "alpha");
		fprintf(stderr, "%-20s %-25s %s\n", "", "two", "beta");
		return 4;
	}
	printf("TAP version 13\n");
	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		int on = 0;
		for (a = 1; a + 1 < argc; a += 2)
			if (!strcmp(argv[a], "-r")) {
				any_r = 1;
				on |= !strcmp(argv[a + 1], tests[i]);
			}
		if (any_r && !on)
			continue;
		printf("#  RUN           %s ...\n", tests[i]);
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			setpgrp();
			if (listed("FAKE_HANG", tests[i]))
				for (;;)
					pause();
			if (strstr(tests[i], "skipper"))
				_exit(4);
			if (listed("FAKE_FAIL", tests[i])) {
				fprintf(stderr, "# fake.c:1:%s:Expected 0 (0) == 1 (1)\n", tests[i]);
				_exit(1);
			}
			_exit(0);
		}
		waitpid(pid, &status, 0);
		status = WEXITSTATUS(status);
		printf("#          %s  %s\n", status == 1 ? "FAIL" : "OK", tests[i]);
		if (status == 4)
			printf("ok %u %s # SKIP fake skip\n", ++n, tests[i]);
		else
			printf("%s %u %s\n", status ? "not ok" : "ok", ++n, tests[i]);
	}
	return 0;
}
EOF
tar -cJf "$T/pkg/deb/usr/src/linux-source-6.12.tar.xz" -C "$T/pkg/src" linux-source-6.12
printf 'Package: linux-source-6.12\nVersion: 0.0~test\nArchitecture: all\nMaintainer: test <t@example.org>\nDescription: fake\n' \
	>"$T/pkg/deb/DEBIAN/control"
mkdir -p "$T/c2/debs"
dpkg-deb --root-owner-group --build "$T/pkg/deb" "$T/c2/debs/linux-source-6.12_0.0~test_all.deb" >/dev/null
cat >"$T/e2e-exp.txt" <<'EOF'
# package: linux-source-6.12 0.0~test
plain.open_close PASS
plain.skipper SKIP # fake skip
a_fixture_with_a_long_name.one.alpha PASS
a_fixture_with_a_long_name.one.beta FAIL # known bad
a_fixture_with_a_long_name.two.alpha PASS
a_fixture_with_a_long_name.two.beta PASS
EOF
rm -f "$T/apt-calls"
e2e() { # e2e NAME ARGS...: run run.sh on the fake package; sets rc
	local name=$1; shift
	rc=0
	PATH=$T/bin:$PATH "$HERE/run.sh" --shim "$T/shim.so" --cache "$T/c2" \
		--expected "$T/e2e-exp.txt" --no-hugetlb "$@" >"$T/out-$name" 2>&1 || rc=$?
}

FAKE_FAIL="a_fixture_with_a_long_name.one.beta" e2e pass
check_eq "e2e: no regression: exit 0" 0 "$rc"
check "e2e: final line" has_line "$T/out-pass" \
	"conformance: 4 passed, 1 failed, 1 skipped (of 6) [linux-source-6.12 0.0~test]"
check "e2e: built from the fake source" grep -qF "building the selftest" "$T/out-pass"
check "e2e: results file" has_line "$T/c2/last-run/results.txt" "plain.skipper SKIP"
check "e2e: no apt-get call with a cached pinned version" test ! -e "$T/apt-calls"

FAKE_FAIL="a_fixture_with_a_long_name.two.beta a_fixture_with_a_long_name.one.beta" \
	e2e regress --jobs 1 --out "$T/out-dir"
check_eq "e2e: regression: exit 1" 1 "$rc"
check "e2e: regression reported" has_line "$T/out-regress" \
	"  REGRESSION a_fixture_with_a_long_name.two.beta: expected PASS, got FAIL"
check "e2e: regression diagnostics" has_line "$T/out-regress" \
	"      # fake.c:1:a_fixture_with_a_long_name.two.beta:Expected 0 (0) == 1 (1)"
check "e2e: cache reused (no extraction, no build)" eval "! grep -qE 'extracting|building' '$T/out-regress'"
check "e2e: --out" test -s "$T/out-dir/results.txt"

FAKE_HANG="a_fixture_with_a_long_name.two.alpha" e2e hang --timeout 2
check_eq "e2e: hung test: exit 1" 1 "$rc"
check "e2e: hung test: reported as no result" has_line "$T/out-hang" \
	"  REGRESSION a_fixture_with_a_long_name.two.alpha: expected PASS, got FAIL (no result: crashed or run timed out)"
leftover=""
for f in /proc/[0-9]*/cmdline; do
	if tr '\0' ' ' <"$f" 2>/dev/null | grep -qF "$T/c2/build/"; then
		p=${f#/proc/}; p=${p%/cmdline}
		leftover+=" $p"
		kill -KILL "$p" 2>/dev/null || true
	fi
done
check_eq "e2e: hung test: no process left behind" "" "$leftover"

FAKE_FAIL="a_fixture_with_a_long_name.two.beta" e2e update --update-expected
check_eq "e2e: --update-expected: exit 0" 0 "$rc"
check "e2e: --update-expected keeps reasons" has_line "$T/e2e-exp.txt" "plain.skipper SKIP # fake skip"
check "e2e: --update-expected records the failure" has_line "$T/e2e-exp.txt" \
	"a_fixture_with_a_long_name.two.beta FAIL"
check "e2e: --update-expected drops a changed reason" has_line "$T/e2e-exp.txt" \
	"a_fixture_with_a_long_name.one.beta PASS"
FAKE_FAIL="a_fixture_with_a_long_name.two.beta" e2e after-update
check_eq "e2e: after --update-expected: exit 0" 0 "$rc"
check "e2e: no temporary files left in the cache" \
	test -z "$(find "$T/c2" -name '.download.*' -o -name '.extract.*' -o -name '*.tmp' -o -name '*.new')"

printf 'test-parse: %d passed, %d failed\n' "$npass" "$nfail"
((nfail == 0))

/* SPDX-License-Identifier: MIT */
/*
 * Options of `uiommu migrate demo|send|recv`. The three share one table, so
 * that a receiver can be started with the sender's very command line, as
 * QEMU's -incoming is: the machine options (--mem, --vcpus, --dma, --backend,
 * --source, --iommu, --device-kind, --pin-pages) must match; the stream
 * rejects a machine of another geometry (how the device is set up, iommufd
 * or type1, dma or mdev, is not in the stream: its state is the same). The
 * workload and migration options are the sender's, and the receiver
 * ignores them. --to belongs to send and --listen to recv only.
 *
 * Numbers are parsed strictly (the whole word, within range): a typo must
 * not become a silent 0. Every error names the option and exits 2.
 *
 * Defaults make the demo: a 1 GiB guest on 2 vCPUs writing 300 MB/s, 80 %
 * of it into half of its pages, for 2 s before the migration (the engine
 * sends only pages ever written, so the guest must have written some), and
 * the device receiving packets at 50 MB/s. On a 2-core nested VM that takes
 * 2-4 pre-copy rounds, 5-9 s in all, and fits the 300 ms downtime limit
 * without throttling (measured: 80-140 ms).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"
#include "uiommu.h"

#define MB 1e6

void mig_help(FILE *out)
{
	fprintf(out,
		"usage: uiommu migrate demo [options]       both ends in this process, loopback TCP\n"
		"       uiommu migrate send --to ADDR:PORT [options]\n"
		"       uiommu migrate recv [--listen ADDR:PORT] [options]\n"
		"machine (recv: the same as the sender's, as QEMU's -incoming):\n"
		"  --mem MiB            guest RAM, a multiple of 2 (default 1024)\n"
		"  --vcpus N            vCPUs, 1-%u (default 2)\n"
		"  --backend B          kvm | soft (default kvm where /dev/kvm works, else\n"
		"                       soft: software vCPUs, labelled so in every report)\n"
		"  --dma MiB            the DMA device's region; 0 = no device (default 64)\n"
		"  --source S           vCPU dirty source: kvm-log | kvm-clear-log | kvm-ring\n"
		"                       (default kvm-log; software vCPUs have their own)\n"
		"  --iommu I            how the DMA device is set up: iommufd (IOAS + dirty-\n"
		"                       tracking HWPT, source \"iommu\") | vfio-type1 (type1\n"
		"                       container + MAP_DMA, source \"vfio\": DIRTY_PAGES\n"
		"                       GET_BITMAP with the kernel's rules) (default iommufd)\n"
		"  --device-kind K      dma (DMA through the IOMMU) | mdev (no IOMMU: pins its\n"
		"                       rings, which type1 reports dirty in every round;\n"
		"                       needs --iommu vfio-type1) (default dma)\n"
		"  --pin-pages N        mdev: pages it pins from the start of its region\n"
		"                       (default %u)\n"
		"  --type1-iommu-dirty  vfio-type1: the opt-in for the IOMMU's own dirty bits;\n"
		"                       without it a dma device makes type1 report all guest\n"
		"                       RAM dirty in every round (the kernel's all-dirty rule:\n"
		"                       the migration then needs --force to switch over)\n"
		"workload (sender):\n"
		"  --workload W         idle | seq | random | hotset[:PAGES%%:WRITES%%]\n"
		"                       (default hotset:50:80; hotset alone is hotset:10:90)\n"
		"  --rate MB/s          guest write rate; 0 = as fast as it can (default 300)\n"
		"  --device P           idle | net | block | mixed (default net)\n"
		"  --dma-rate MB/s      device write rate; 0 = as fast as it can (default 50)\n"
		"  --seconds-before S   let the guest run before migrating (default 2)\n"
		"migration (sender):\n"
		"  --downtime-ms N      downtime limit (default 300)\n"
		"  --bandwidth MB/s     limit the stream; 0 = unlimited (default)\n"
		"  --max-rounds N       at most N pre-copy rounds, then fail (default 0: no limit)\n"
		"  --max-time S         at most S seconds of pre-copy, then fail (default 0: no limit)\n"
		"  --force              at --max-rounds or --max-time, switch over whatever the\n"
		"                       downtime\n"
		"  --no-throttle        never slow the guest and the device down to converge\n"
		"  --compress LEVEL     zstd level of page batches, 1-19; 0 = off (default)\n"
		"  --verify V           pages | digest | none (default pages: names lost pages)\n"
		"  --to ADDR:PORT       send: the receiver\n"
		"  --listen ADDR:PORT   recv: where to wait (default 127.0.0.1, port 0: any,\n"
		"                       printed); another address to go between hosts\n"
		"  --timeout S          recv: wait for the sender; send: connect (default 60)\n"
		"output:\n"
		"  --json               one JSON object on stdout instead of the summary\n"
		"  --chart FILE.png     per-round chart, drawn by gnuplot (demo, send)\n"
		"exit: 0 completed and verified, 1 migration failed (transport, receiver),\n"
		"      2 usage, 3 setup error (memory, /dev/kvm, address in use, no gnuplot),\n"
		"      4 verification failed (a page differs: a lost page),\n"
		"      5 cancelled (SIGINT or SIGTERM; the source guest runs on)\n"
		"      6 failed after the receiver resumed the guest without saying it failed:\n"
		"        the source stays paused (the receiver may run the guest)\n",
		UIOMMU_VM_MAX_VCPUS, UIOMMU_DMADEV_PIN_DEFAULT);
}

static void defaults(struct mig_opts *o, enum mig_mode mode)
{
	*o = (struct mig_opts){
		.mode = mode,
		.m = { .mem_bytes = 1024ull << 20, .dma_bytes = 64ull << 20, .nr_vcpus = 2,
		       .backend = uiommu_kvm_available() ? UIOMMU_VM_KVM : UIOMMU_VM_SOFT,
		       .cpu_source = "kvm-log", .seed = 1,
		       .dma = { .pattern = UIOMMU_DMADEV_NET, .rate_bytes_per_sec = 50000000 } },
		.wl = { .kind = UIOMMU_WL_HOTSET, .hot_pages_pct = 50, .hot_writes_pct = 80,
			.pages_per_sec = (uint64_t)(300 * MB / UIOMMU_VM_PAGE_SIZE), .seed = 1 },
		.wl_name = "hotset:50:80",
		.rate_mbps = 300,
		.dma_rate_mbps = 50,
		.verify = UIOMMU_STREAM_VERIFY_PAGES,
		.seconds_before = 2,
		.timeout_s = 60,
	};
	uiommu_mig_policy_defaults(&o->policy);
}

/* The whole of @s is a number in [min, max]. */
static int parse_num(const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* As parse_num, and a whole number. */
static int parse_int(const char *s, double min, double max, uint64_t *out)
{
	double v;

	/* min >= 0 here, so the cast is defined; no floor(), which needs libm at -O0. */
	if (parse_num(s, min, max, &v) || v != (double)(uint64_t)v)
		return -EINVAL;
	*out = (uint64_t)v;
	return 0;
}

/* The workload, and its name as the summary shows it ("hotset" in full). */
static int parse_workload(const char *s, struct mig_opts *o)
{
	int ret = tool_parse_workload(s, &o->wl);

	snprintf(o->wl_name, sizeof(o->wl_name), "%s", strcmp(s, "hotset") ? s : "hotset:10:90");
	return ret;
}

static int parse_word(const char *s, const char *const *names, int n, int *out)
{
	int i = tool_lookup(names, n, s);

	if (i < 0)
		return -EINVAL;
	*out = i;
	return 0;
}

/* How the DMA device is set up (machine options too). */
static int parse_device_opt(struct mig_opts *o, int opt, const char *arg)
{
	static const char *const iommus[] = { "iommufd", "vfio-type1" };
	static const char *const kinds[] = { "dma", "mdev" };
	uint64_t v = 0;
	int i = 0;

	switch (opt) {
	case 'I':
		if (parse_word(arg, iommus, 2, &i))
			return -EINVAL;
		o->m.iommu = (enum uiommu_machine_iommu)i;
		return 0;
	case 'K':
		if (parse_word(arg, kinds, 2, &i))
			return -EINVAL;
		o->m.device_kind = (enum uiommu_dmadev_kind)i;
		return 0;
	case 'P':
		if (parse_int(arg, 1, 1 << 30, &v))
			return -EINVAL;
		o->m.pin_pages = v;
		return 0;
	case 'Y':
		o->m.type1_iommu_dirty = true;
		return 0;
	}
	return -ENOENT;
}

/* Machine options: these must match on both ends. */
static int parse_machine_opt(struct mig_opts *o, int opt, const char *arg)
{
	static const char *const backends[] = { "kvm", "soft" };
	static const char *const sources[] = { "kvm-log", "kvm-clear-log", "kvm-ring" };
	uint64_t v = 0;
	int i = 0;

	switch (opt) {
	case 'm':
		if (parse_int(arg, 2, 1 << 24, &v) || v % 2)
			return -EINVAL;
		o->m.mem_bytes = v << 20;
		return 0;
	case 'v':
		if (parse_int(arg, 1, UIOMMU_VM_MAX_VCPUS, &v))
			return -EINVAL;
		o->m.nr_vcpus = (unsigned int)v;
		return 0;
	case 'b':
		if (parse_word(arg, backends, 2, &i))
			return -EINVAL;
		o->m.backend = i ? UIOMMU_VM_SOFT : UIOMMU_VM_KVM;
		return 0;
	case 'd':
		if (parse_int(arg, 0, 1 << 24, &v))
			return -EINVAL;
		o->m.dma_bytes = v << 20;
		return 0;
	case 'S':
		if (parse_word(arg, sources, 3, &i))
			return -EINVAL;
		o->m.cpu_source = sources[i];
		return 0;
	}
	return parse_device_opt(o, opt, arg);
}

/* Workload options (the sender's). */
static int parse_workload_opt(struct mig_opts *o, int opt, const char *arg)
{
	switch (opt) {
	case 'w':
		return parse_workload(arg, o);
	case 'r':
		if (parse_num(arg, 0, 1e6, &o->rate_mbps))
			return -EINVAL;
		o->wl.pages_per_sec = (uint64_t)(o->rate_mbps * MB / UIOMMU_VM_PAGE_SIZE);
		return 0;
	case 'D':
		return tool_parse_dma_pattern(arg, &o->m.dma.pattern);
	case 'R':
		if (parse_num(arg, 0, 1e6, &o->dma_rate_mbps))
			return -EINVAL;
		o->m.dma.rate_bytes_per_sec = (uint64_t)(o->dma_rate_mbps * MB);
		return 0;
	case 'B':
		return parse_num(arg, 0, 3600, &o->seconds_before);
	}
	return -ENOENT;
}

/* Limits of the migration (the sender's). */
static int parse_limit_opt(struct mig_opts *o, int opt, const char *arg)
{
	double d = 0;
	uint64_t v = 0;

	switch (opt) {
	case 'T':
		if (parse_int(arg, 1, 3600000, &v))
			return -EINVAL;
		o->policy.downtime_limit_ns = v * 1000000;
		return 0;
	case 'W':
		if (parse_num(arg, 0, 1e6, &d))
			return -EINVAL;
		o->bandwidth_bps = (uint64_t)(d * MB);
		return 0;
	case 'M':
		if (parse_int(arg, 0, 1000000, &v))
			return -EINVAL;
		o->policy.max_rounds = (unsigned int)v;
		return 0;
	case 'X':
		if (parse_num(arg, 0, 86400, &d))
			return -EINVAL;
		o->policy.max_time_ns = (uint64_t)(d * 1e9);
		return 0;
	case 'o':
		return parse_num(arg, 0.001, 86400, &o->timeout_s);
	}
	return -ENOENT;
}

/* How the stream is made (the sender's). */
static int parse_stream_opt(struct mig_opts *o, int opt, const char *arg)
{
	static const char *const verify[] = { "pages", "digest", "none" };
	uint64_t v = 0;
	int i = 0;

	switch (opt) {
	case 'Z':
		if (parse_int(arg, 0, 19, &v))
			return -EINVAL;
		o->zstd_level = (int)v;
		return 0;
	case 'V':
		if (parse_word(arg, verify, 3, &i))
			return -EINVAL;
		o->verify = (enum uiommu_stream_verify_mode)i;
		return 0;
	}
	return -ENOENT;
}

static int parse_opt(struct mig_opts *o, int opt, const char *arg)
{
	int ret = parse_machine_opt(o, opt, arg);

	if (ret == -ENOENT)
		ret = parse_workload_opt(o, opt, arg);
	if (ret == -ENOENT)
		ret = parse_limit_opt(o, opt, arg);
	if (ret == -ENOENT)
		ret = parse_stream_opt(o, opt, arg);
	if (ret != -ENOENT)
		return ret;
	switch (opt) {
	case 'f':
		o->policy.force_switchover = true;
		return 0;
	case 'n':
		o->policy.throttle = false;
		return 0;
	case 'j':
		o->json = true;
		return 0;
	case 'c':
		o->chart = arg;
		return *arg ? 0 : -EINVAL;
	case 't':
	case 'l':
		o->addr = arg;
		return (opt == 't') == (o->mode == MIG_SEND) && (opt == 'l') == (o->mode == MIG_RECV)
			       ? 0
			       : -EPERM;
	}
	return -EINVAL;
}

static const struct option mig_options[] = {
	{ "mem", required_argument, NULL, 'm' },
	{ "vcpus", required_argument, NULL, 'v' },
	{ "backend", required_argument, NULL, 'b' },
	{ "dma", required_argument, NULL, 'd' },
	{ "source", required_argument, NULL, 'S' },
	{ "iommu", required_argument, NULL, 'I' },
	{ "device-kind", required_argument, NULL, 'K' },
	{ "pin-pages", required_argument, NULL, 'P' },
	{ "type1-iommu-dirty", no_argument, NULL, 'Y' },
	{ "workload", required_argument, NULL, 'w' },
	{ "rate", required_argument, NULL, 'r' },
	{ "device", required_argument, NULL, 'D' },
	{ "dma-rate", required_argument, NULL, 'R' },
	{ "seconds-before", required_argument, NULL, 'B' },
	{ "downtime-ms", required_argument, NULL, 'T' },
	{ "bandwidth", required_argument, NULL, 'W' },
	{ "max-rounds", required_argument, NULL, 'M' },
	{ "max-time", required_argument, NULL, 'X' },
	{ "force", no_argument, NULL, 'f' },
	{ "no-throttle", no_argument, NULL, 'n' },
	{ "compress", required_argument, NULL, 'Z' },
	{ "verify", required_argument, NULL, 'V' },
	{ "to", required_argument, NULL, 't' },
	{ "listen", required_argument, NULL, 'l' },
	{ "timeout", required_argument, NULL, 'o' },
	{ "json", no_argument, NULL, 'j' },
	{ "chart", required_argument, NULL, 'c' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static const char *opt_name(int opt)
{
	for (const struct option *p = mig_options; p->name; p++)
		if (p->val == opt)
			return p->name;
	return "?";
}

/* The device options that only make sense together. */
static int check_device_opts(const struct mig_opts *o, const char *mode)
{
	bool t1 = o->m.iommu == UIOMMU_MACHINE_VFIO_TYPE1;
	bool mdev = o->m.device_kind == UIOMMU_DMADEV_KIND_MDEV;
	const char *err = NULL;

	if (mdev && !t1)
		err = "--device-kind mdev needs --iommu vfio-type1 (an mdev has no IOMMU to "
		      "attach to an IOAS; it pins through a type1 container)";
	else if (o->m.type1_iommu_dirty && !t1)
		err = "--type1-iommu-dirty needs --iommu vfio-type1";
	else if (o->m.pin_pages && !mdev)
		err = "--pin-pages needs --device-kind mdev";
	else if (mdev && !o->m.dma_bytes)
		err = "--device-kind mdev needs a device (--dma > 0)";
	else if (o->m.pin_pages * UIOMMU_VM_PAGE_SIZE > o->m.dma_bytes)
		err = "--pin-pages: more pages than the device's region (--dma) has";
	if (!err)
		return 0;
	fprintf(stderr, "uiommu: migrate %s: %s\n", mode, err);
	return -EINVAL;
}

/* What getopt_long cannot check: options that belong together. */
static int check_opts(const struct mig_opts *o)
{
	static const char *const modes[] = { "demo", "send", "recv" };

	if (check_device_opts(o, modes[o->mode]))
		return -EINVAL;
	if (o->mode == MIG_SEND && !o->addr) {
		fprintf(stderr, "uiommu: migrate send: --to ADDR:PORT is required\n");
		return -EINVAL;
	}
	if (o->mode == MIG_RECV && o->chart) {
		fprintf(stderr, "uiommu: migrate recv: --chart is the sender's (it has the rounds)\n");
		return -EINVAL;
	}
	return 0;
}

int mig_opts_parse(int argc, char **argv, enum mig_mode mode, struct mig_opts *o)
{
	static const char *const modes[] = { "demo", "send", "recv" };
	int opt, ret;

	defaults(o, mode);
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", mig_options, NULL)) != -1) {
		if (opt == 'h')
			return 1;
		if (opt == '?') {
			fprintf(stderr, "uiommu: migrate %s: unknown option, or no value for: '%s'\n",
				modes[mode], argv[optind - 1]);
			return -EINVAL;
		}
		ret = parse_opt(o, opt, optarg);
		if (ret == -EPERM) {
			fprintf(stderr, "uiommu: migrate %s: --%s is not an option of %s\n",
				modes[mode], opt_name(opt), modes[mode]);
			return -EINVAL;
		}
		if (ret) {
			fprintf(stderr, "uiommu: migrate %s: bad value for --%s: '%s'\n",
				modes[mode], opt_name(opt), optarg);
			return -EINVAL;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "uiommu: migrate %s: unexpected argument '%s'\n", modes[mode],
			argv[optind]);
		return -EINVAL;
	}
	return check_opts(o);
}

const char *mig_verify_name(enum uiommu_stream_verify_mode v)
{
	static const char *const names[] = { "pages", "digest", "none" };

	return (unsigned int)v < 3 ? names[v] : "?";
}

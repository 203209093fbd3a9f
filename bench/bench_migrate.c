// SPDX-License-Identifier: MIT
/*
 * Live migration end to end: a guest (KVM vCPUs where /dev/kvm works, else
 * software vCPUs, said so in the output) and its DMA device migrate over
 * loopback TCP to an incoming machine in the same process, with the engine's
 * defaults (300 ms downtime limit, auto-converge on), verified page for page.
 *
 * Cases (guest size, dirty rate split between the vCPUs and the device):
 *   1 GiB and 4 GiB: idle; 100 MB/s (75 vCPU + 25 DMA); 400 MB/s (300 + 100);
 *   1 GiB at 300 MB/s over a 200 MB/s bandwidth limit: the remainder cannot
 *   shrink, so it must converge by throttling.
 * Workloads: hotset, 90 % of the writes into 10 % of the pages (over the
 * bandwidth, 95 %: a small pending set keeps rounds short, where
 * random pages over all of memory would make each round as long as the
 * first one, and the throttle's climb, a step every two stuck rounds, take
 * minutes). The device sends packets into its ring (a quarter of its
 * region), which at these rates it rewrites whole in every round.
 * Before each migration the guest writes every page of its work region once
 * (a seq pass, unlimited rate), so that memory is data, as an idle guest's
 * is, rather than zero pages the stream would elide; then the workload runs
 * one second before the migration starts.
 *
 * Figures per case: total time (run start to the receiver's verdict, which
 * includes hashing every page on both ends), downtime, pre-copy rounds,
 * bytes on the wire, throttle maximum and guest stall. Baseline, same run:
 * a plain TCP stream of the same number of bytes over loopback (write() of
 * 4 MiB pieces from the source guest's memory, read() into populated memory),
 * the transport a naive stop-and-copy could not beat; under a bandwidth
 * limit, the time those bytes take at the limit.
 *
 * Goals (issue 5): 4 GiB idle: total <= 2x the plain stream, downtime <= 50
 * ms; 400 MB/s: converges without throttling, downtime <= 100 ms; above the
 * bandwidth: converges by throttling. They are printed, not asserted: this
 * machine is a shared 2-core VM and its timings are noisy.
 *
 * The 4 GiB cases need 2 x 4 GiB of guest memory plus the plain stream's
 * buffer and take about a minute; set UIOMMU_BENCH_4G=0 to skip them.
 * UIOMMU_BENCH_ONLY=TEXT runs the cases whose name contains TEXT.
 * --quick: 64 MiB guests (16 MiB DMA region), idle, 100 MB/s and
 * over-bandwidth (40 MB/s over a 20 MB/s limit).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h>

#include <uiommu/migration.h>

#include "bench.h"

#define MIB (1ull << 20)
#define PG 4096ull
#define CHUNK (4u << 20)
#define DMA_BYTES (64ull << 20)
#define DMA_BYTES_SMALL (16ull << 20) /* for the --quick guests */

struct mcase {
	const char *name;
	uint64_t mem_mib;
	double guest_mbps, dma_mbps;
	enum uiommu_workload_kind kind;
	unsigned int hot_pages_pct, hot_writes_pct; /* HOTSET */
	double bandwidth_mbps; /* 0: unlimited */
	const char *goal_total, *goal_down, *goal_throttle;
};

struct outcome {
	struct uiommu_mig_result res;
	uint64_t rounds_ns; /* pre-copy and stop-copy rounds; the rest is setup and the end */
	double plain_s;
};

/* ---- the plain TCP baseline ---- */

struct plain_rx {
	int fd;
	uint8_t *buf;
	uint64_t buf_bytes, bytes, done_ns;
};

static void *plain_reader(void *arg)
{
	struct plain_rx *p = arg;
	uint64_t have = 0;

	while (have < p->bytes) {
		uint64_t off = have % p->buf_bytes, want = p->buf_bytes - off;
		ssize_t n = read(p->fd, p->buf + off, want < p->bytes - have ? want : p->bytes - have);

		if (n <= 0)
			break;
		have += (uint64_t)n;
	}
	p->done_ns = bench_now_ns();
	return NULL;
}

static int plain_pair(int fds[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	fds[0] = fds[1] = -1;
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &al))
		goto out;
	fds[0] = socket(AF_INET, SOCK_STREAM, 0);
	if (fds[0] >= 0 && !connect(fds[0], (struct sockaddr *)&a, sizeof(a)))
		fds[1] = accept(l, NULL, NULL);
out:
	if (l >= 0)
		close(l);
	return fds[0] >= 0 && fds[1] >= 0 ? 0 : -1;
}

/* Seconds to stream @bytes from @src (wrapping at @src_bytes) into fresh memory; < 0 on error. */
static double plain_stream(const uint8_t *src, uint64_t src_bytes, uint64_t bytes)
{
	struct plain_rx rx = { .bytes = bytes, .buf_bytes = bytes < src_bytes ? bytes : src_bytes };
	uint64_t sent = 0, t0;
	int fds[2];
	pthread_t t;

	rx.buf = mmap(NULL, rx.buf_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (rx.buf == MAP_FAILED || madvise(rx.buf, rx.buf_bytes, MADV_POPULATE_WRITE) ||
	    plain_pair(fds))
		return -1;
	rx.fd = fds[1];
	pthread_create(&t, NULL, plain_reader, &rx);
	t0 = bench_now_ns();
	while (sent < bytes) {
		uint64_t off = sent % src_bytes, n = src_bytes - off;
		ssize_t w;

		n = n < bytes - sent ? n : bytes - sent;
		w = write(fds[0], src + off, n < CHUNK ? n : CHUNK);

		if (w <= 0)
			break;
		sent += (uint64_t)w;
	}
	close(fds[0]);
	pthread_join(t, NULL);
	close(fds[1]);
	munmap(rx.buf, rx.buf_bytes);
	return sent == bytes ? (double)(rx.done_ns - t0) / 1e9 : -1;
}

/* ---- one migration ---- */

struct bench_rx {
	struct uiommu_xport_listener *l;
	struct uiommu_machine *m;
	struct uiommu_mig_recv_result res;
	int rc;
};

static void *receiver(void *arg)
{
	struct bench_rx *rx = arg;
	struct uiommu_xport *x = NULL;
	struct uiommu_mig_recv_cfg cfg = { .machine = rx->m };

	rx->rc = uiommu_xport_accept(rx->l, 60000, &x);
	cfg.xport = x;
	if (!rx->rc)
		rx->rc = uiommu_mig_recv(&cfg, &rx->res);
	uiommu_xport_destroy(x);
	return NULL;
}

static struct uiommu_machine_cfg machine_cfg(const struct mcase *c, bool incoming)
{
	return (struct uiommu_machine_cfg){
		.mem_bytes = c->mem_mib * MIB,
		.dma_bytes = c->mem_mib >= 1024 ? DMA_BYTES : DMA_BYTES_SMALL,
		.nr_vcpus = 2,
		.backend = uiommu_kvm_available() ? UIOMMU_VM_KVM : UIOMMU_VM_SOFT,
		.incoming = incoming,
		.seed = 1,
		.dma = { .pattern = c->dma_mbps > 0 ? UIOMMU_DMADEV_NET : UIOMMU_DMADEV_IDLE,
			 .rate_bytes_per_sec = (uint64_t)(c->dma_mbps * 1e6) },
	};
}

/* The guest writes every work page once, so that memory is data, not zero pages. */
static int prefill(struct uiommu_machine *m)
{
	struct uiommu_workload seq = { .kind = UIOMMU_WL_SEQ, .seed = 1 };
	struct uiommu_vm_stats st;
	uint64_t gpa, bytes, t0 = bench_now_ns();
	int rc = uiommu_machine_run(m, &seq);

	uiommu_vm_work_region(m->vm, &gpa, &bytes);
	while (!rc) {
		uiommu_vm_get_stats(m->vm, &st);
		if (st.pages_written >= bytes / PG)
			break;
		if (bench_now_ns() - t0 > 120000000000ull)
			return -ETIMEDOUT;
		usleep(20000);
	}
	return rc;
}

static int start_workload(struct uiommu_machine *m, const struct mcase *c)
{
	struct uiommu_workload wl = { .kind = c->kind, .hot_pages_pct = c->hot_pages_pct,
				      .hot_writes_pct = c->hot_writes_pct,
				      .pages_per_sec = (uint64_t)(c->guest_mbps * 1e6 / PG),
				      .seed = 2 };
	int rc = prefill(m);

	if (!rc)
		rc = uiommu_machine_run(m, &wl);
	if (!rc)
		usleep(1000000);
	return rc;
}

static uint64_t rounds_ns(const struct uiommu_migration *mig)
{
	unsigned int n = 0;
	const struct uiommu_mig_round_info *ri = uiommu_mig_get_rounds(mig, &n);
	uint64_t ns = 0;

	for (unsigned int i = 0; i < n; i++)
		ns += ri[i].round_ns;
	return ns;
}

static int migrate(struct uiommu_machine *src, struct bench_rx *rx, const struct mcase *c,
		   struct outcome *out)
{
	struct uiommu_mig_result *res = &out->res;
	struct uiommu_mig_cfg cfg = { .machine = src,
				      .bandwidth_bps = (uint64_t)(c->bandwidth_mbps * 1e6) };
	struct uiommu_migration *mig = NULL;
	struct uiommu_xport *x = NULL;
	char addr[32];
	int rc;

	uiommu_mig_policy_defaults(&cfg.policy);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", uiommu_xport_listener_port(rx->l));
	rc = uiommu_xport_connect(addr, 10000, &x);
	cfg.xport = x;
	if (!rc)
		rc = uiommu_mig_create(&cfg, &mig);
	if (!rc) {
		uiommu_mig_run(mig);
		uiommu_mig_get_result(mig, res);
		out->rounds_ns = rounds_ns(mig);
		rc = res->state == UIOMMU_MIG_COMPLETED && res->remote.verify.ok ? 0 : -EIO;
	}
	uiommu_mig_destroy(mig);
	uiommu_xport_destroy(x);
	return rc;
}

static int run_case(const struct mcase *c, struct outcome *out)
{
	struct uiommu_machine_cfg sc = machine_cfg(c, false), dc = machine_cfg(c, true);
	struct uiommu_machine *src = NULL;
	struct bench_rx rx = { 0 };
	pthread_t tid;
	int rc = uiommu_machine_create(&sc, &src);

	if (!rc)
		rc = uiommu_machine_create(&dc, &rx.m);
	if (!rc)
		rc = uiommu_xport_listen(NULL, &rx.l);
	if (!rc)
		rc = start_workload(src, c);
	if (!rc) {
		pthread_create(&tid, NULL, receiver, &rx);
		rc = migrate(src, &rx, c, out);
		uiommu_xport_listener_shutdown(rx.l);
		pthread_join(tid, NULL);
		rc = rc ? rc : rx.rc;
	}
	uiommu_machine_destroy(rx.m);
	uiommu_xport_listener_destroy(rx.l);
	if (!rc)
		out->plain_s = plain_stream(uiommu_vm_mem(src->vm), sc.mem_bytes,
					    out->res.stream.bytes);
	uiommu_machine_destroy(src);
	return rc ? rc : out->plain_s < 0 ? -EIO : 0;
}

/* ---- reporting ---- */

static const char *metric(const struct mcase *c, const char *what)
{
	static char buf[96];

	snprintf(buf, sizeof(buf), "%s %s", c->name, what);
	return buf;
}

static void report(const struct bench_opts *o, const struct mcase *c, const struct outcome *r)
{
	const struct uiommu_mig_result *res = &r->res;
	double rounds_s = (double)r->rounds_ns / 1e9;
	double mem_mb = (double)c->mem_mib * (double)MIB / 1e6;

	/* Under a bandwidth limit, the baseline is the same bytes at that limit. */
	if (c->bandwidth_mbps > 0)
		bench_report(o, "migrate", metric(c, "total s"), (double)res->total_ns / 1e9, "s",
			     "same bytes at limit", (double)res->stream.bytes / (c->bandwidth_mbps * 1e6),
			     c->goal_total);
	else
		bench_report(o, "migrate", metric(c, "total s"), (double)res->total_ns / 1e9, "s",
			     "plain tcp same bytes", r->plain_s, c->goal_total);
	bench_report(o, "migrate", metric(c, "setup ms"), (double)res->setup_ns / 1e6, "ms",
		     "total ms", (double)res->total_ns / 1e6, "");
	bench_report(o, "migrate", metric(c, "in rounds s"), rounds_s, "s", "total s",
		     (double)res->total_ns / 1e9, "");
	bench_report(o, "migrate", metric(c, "downtime ms"), (double)res->downtime_ns / 1e6, "ms",
		     "limit", 300, c->goal_down);
	bench_report(o, "migrate", metric(c, "pre-copy rounds"), res->rounds, "rounds", "-", 0,
		     "");
	bench_report(o, "migrate", metric(c, "sent MB"), (double)res->stream.bytes / 1e6, "MB",
		     "guest MB", mem_mb, "");
	bench_report(o, "migrate", metric(c, "throttle max %"), res->throttle_max * 100, "%", "-",
		     0, c->goal_throttle);
	if (res->throttle_max > 0)
		bench_report(o, "migrate", metric(c, "guest stall ms"),
			     (double)res->guest_stall_ns / 1e6, "ms", "total time ms",
			     (double)res->total_ns / 1e6, "");
}

#define HOT UIOMMU_WL_HOTSET, 10, 90
#define IDLE UIOMMU_WL_IDLE, 0, 0
/*
 * Over the bandwidth: nearly every write into a hot tenth (a twentieth for
 * the small guest, whose device ring is already most of what fits).
 */
#define HOT_OVER UIOMMU_WL_HOTSET, 10, 95
#define HOT_OVER_SMALL UIOMMU_WL_HOTSET, 5, 95

static const struct mcase full_cases[] = {
	{ "1G idle", 1024, 0, 0, IDLE, 0, "", "", "" },
	{ "1G 100MB/s", 1024, 75, 25, HOT, 0, "", "", "" },
	{ "1G 400MB/s", 1024, 300, 100, HOT, 0, "", "<= 100 ms", "0 (no throttle)" },
	{ "1G 300MB/s >bw 200", 1024, 225, 75, HOT_OVER, 200, "", "",
	  "> 0 (converges by throttling)" },
	{ "4G idle", 4096, 0, 0, IDLE, 0, "<= 2x plain", "<= 50 ms", "" },
	{ "4G 100MB/s", 4096, 75, 25, HOT, 0, "", "", "" },
	{ "4G 400MB/s", 4096, 300, 100, HOT, 0, "", "<= 100 ms", "0 (no throttle)" },
};

static const struct mcase quick_cases[] = {
	{ "64M idle", 64, 0, 0, IDLE, 0, "", "", "" },
	{ "64M 100MB/s", 64, 75, 25, HOT, 0, "", "", "" },
	{ "64M 40MB/s >bw 20", 64, 30, 10, HOT_OVER_SMALL, 20, "", "", "> 0" },
};

int main(int argc, char **argv)
{
	struct bench_opts opts;
	const struct mcase *cases;
	const char *big = getenv("UIOMMU_BENCH_4G"), *only = getenv("UIOMMU_BENCH_ONLY");
	size_t n;
	int failed = 0;

	bench_parse(argc, argv, &opts);
	cases = opts.quick ? quick_cases : full_cases;
	n = opts.quick ? sizeof(quick_cases) / sizeof(quick_cases[0])
		       : sizeof(full_cases) / sizeof(full_cases[0]);
	if (!opts.json)
		printf("migrate    guests on %s, 2 vCPUs, 64 MiB DMA region, loopback TCP\n",
		       uiommu_kvm_available() ? "KVM vCPUs" : "software vCPUs");
	for (size_t i = 0; i < n; i++) {
		struct outcome r = { 0 };
		int rc;

		if ((cases[i].mem_mib >= 4096 && big && !strcmp(big, "0")) ||
		    (only && !strstr(cases[i].name, only)))
			continue;
		rc = run_case(&cases[i], &r);
		if (rc) {
			fprintf(stderr, "bench_migrate: %s: %s (%s)\n", cases[i].name, strerror(-rc),
				r.res.msg);
			failed = 1;
			continue;
		}
		report(&opts, &cases[i], &r);
	}
	return failed;
}

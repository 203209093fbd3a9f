// SPDX-License-Identifier: MIT
/*
 * The migration stream over loopback TCP, beside a plain TCP stream of the
 * same bytes measured in the same run.
 *
 * Cases: 1 GiB of random pages and 1 GiB of zero pages, each without and
 * with zstd (level 1), page hashes on (the default: the receiver hashes each
 * page it writes). Timed: from the sender's first byte to the receiver's
 * SWITCHOVER event, i.e. until the destination holds all pages; reported in
 * GB/s of guest memory. The end of the stream (the source hashes its memory,
 * sends the hashes, the receiver compares and answers) is reported apart, in
 * ms, beside a plain XXH3 pass over the same memory. One more case: random
 * pages without verification, to show what the receiver's hashing costs.
 *
 * Baseline: the same number of bytes written from the source memory with
 * write() in 4 MiB pieces over a TCP connection on the same machine, read
 * into the destination memory, with the kernel's buffer autotuning (as the
 * transport leaves it); once more with fixed 4 MiB socket buffers, to show
 * that autotuning is the better choice. Also the write calls per GiB, and
 * the CPU time of each side's thread (CLOCK_THREAD_CPUTIME_ID), a cost that
 * contention for this shared machine's two cores does not inflate.
 *
 * Zero test: uiommu_stream_page_is_zero() against memcmp() with a zero page,
 * on one page in cache and over the 1 GiB zero source (from memory).
 *
 * Both memories are populated before timing (the transport cannot help the
 * first-touch cost, about 1 us per page here); the destination is zeroed
 * between runs, as fresh memory is. Two cores: sender and receiver each get
 * one, and the plain stream's writer and reader too. --quick: 32 MiB, one
 * repetition.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uiommu/migrate_stream.h>
#include <uiommu/migrate_xport.h>

#include "bench.h"
#include "rng.h"

#define GIB (1ull << 30)
#define QUICK_BYTES (32ull << 20)
#define PS 4096u
#define CHUNK (4u << 20)
#define REPS 3
#define SOCK_BUF (4 << 20)

struct st_ctx {
	const struct bench_opts *opts;
	uint8_t *src, *dst;
	uint64_t bytes;
	int reps;
};

/* CPU time of the calling thread: a cost that contention for the cores does not inflate. */
static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint8_t *populated(uint64_t bytes)
{
	uint8_t *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		return NULL;
	madvise(m, bytes, MADV_HUGEPAGE);
	if (madvise(m, bytes, MADV_POPULATE_WRITE))
		memset(m, 0, bytes);
	return m;
}

static void fill_random(uint8_t *m, uint64_t bytes)
{
	uint64_t rng = 0x5eedull;

	for (uint64_t i = 0; i < bytes; i += 8) {
		uint64_t v = splitmix64(&rng);

		memcpy(m + i, &v, 8);
	}
}

/* ---- Plain TCP ---- */

struct plain {
	int fd;
	uint8_t *buf;
	uint64_t bytes, calls;
	uint64_t done_ns, cpu_ns;
};

/* CPU ns of the sending and the receiving thread. */
struct cpu_cost {
	uint64_t tx, rx;
};

static int plain_listen(bool tuned, uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), buf = SOCK_BUF;

	if (tuned) {
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	}
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 1) ||
	    getsockname(fd, (struct sockaddr *)&a, &al))
		return -1;
	*port = ntohs(a.sin_port);
	return fd;
}

static int plain_connect(bool tuned, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), buf = SOCK_BUF;

	if (tuned) {
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	}
	return connect(fd, (struct sockaddr *)&a, sizeof(a)) ? -1 : fd;
}

static void *plain_reader(void *arg)
{
	struct plain *p = arg;
	uint64_t have = 0, c0 = cpu_ns();

	while (have < p->bytes) {
		ssize_t n = read(p->fd, p->buf + have, p->bytes - have);

		if (n <= 0)
			break;
		have += (uint64_t)n;
		p->calls++;
	}
	p->done_ns = bench_now_ns();
	p->cpu_ns = cpu_ns() - c0;
	return NULL;
}

/* Seconds for the plain stream; *@calls: write calls. < 0 on error. */
static double plain_run(const struct st_ctx *c, bool tuned, uint64_t *calls, struct cpu_cost *cpu)
{
	struct plain rd = { .buf = c->dst, .bytes = c->bytes };
	uint16_t port = 0;
	int lfd = plain_listen(tuned, &port), wfd = plain_connect(tuned, port);
	uint64_t t0, c0, sent = 0;
	pthread_t t;

	rd.fd = accept(lfd, NULL, NULL);
	if (lfd < 0 || wfd < 0 || rd.fd < 0)
		return -1;
	pthread_create(&t, NULL, plain_reader, &rd);
	t0 = bench_now_ns();
	c0 = cpu_ns();
	for (*calls = 0; sent < c->bytes; (*calls)++) {
		ssize_t n = write(wfd, c->src + sent, (size_t)(c->bytes - sent < CHUNK ?
							       c->bytes - sent : CHUNK));
		if (n <= 0)
			break;
		sent += (uint64_t)n;
	}
	cpu->tx = cpu_ns() - c0;
	pthread_join(t, NULL);
	cpu->rx = rd.cpu_ns;
	close(wfd);
	close(rd.fd);
	close(lfd);
	return sent == c->bytes ? (double)(rd.done_ns - t0) / 1e9 : -1;
}

/* ---- The stream ---- */

struct stream_case {
	int zstd_level;
	enum uiommu_stream_verify_mode verify;
};

struct stream_rx {
	struct uiommu_xport_listener *l;
	const struct st_ctx *c;
	uint64_t switch_ns, cpu_ns;
	int rc;
	bool verified;
};

static int on_event(void *opaque, const struct uiommu_stream_event *ev)
{
	if (ev->type == UIOMMU_STREAM_EV_SWITCHOVER)
		((struct stream_rx *)opaque)->switch_ns = bench_now_ns();
	return 0;
}

static void *stream_receiver(void *arg)
{
	struct stream_rx *rx = arg;
	struct uiommu_stream_recv_cfg cfg = { .mem = rx->c->dst, .mem_bytes = rx->c->bytes,
					      .populated = true, .on_event = on_event,
					      .opaque = rx };
	struct uiommu_stream_receiver *r = NULL;
	struct uiommu_stream_result res;
	struct uiommu_xport *x;

	rx->rc = uiommu_xport_accept(rx->l, 10000, &x);
	if (rx->rc)
		return NULL;
	rx->rc = uiommu_stream_receiver_create(&cfg, &r);
	rx->cpu_ns = cpu_ns();
	if (!rx->rc)
		rx->rc = uiommu_stream_recv_run(r, x);
	rx->cpu_ns = cpu_ns() - rx->cpu_ns;
	if (r) {
		uiommu_stream_recv_get_result(r, &res);
		rx->verified = res.verify.ok;
		uiommu_stream_result_send(x, &res);
	}
	uiommu_stream_receiver_destroy(r);
	uiommu_xport_destroy(x);
	return NULL;
}

/* *@tx_cpu: the sender's CPU time until switchover (pages, not verification). */
static int stream_send(const struct st_ctx *c, const struct stream_case *k,
		       struct uiommu_xport *x, struct uiommu_stream_stats *st, uint64_t *tx_cpu)
{
	uint64_t c0 = cpu_ns();
	struct uiommu_stream_send_cfg cfg = { .xport = x, .mem = c->src, .mem_bytes = c->bytes,
					      .zstd_level = k->zstd_level, .verify = k->verify };
	struct uiommu_stream_sender *s;
	struct uiommu_stream_result res;
	int rc = uiommu_stream_sender_create(&cfg, &s);

	if (rc)
		return rc;
	rc = uiommu_stream_send_header(s);
	if (!rc)
		rc = uiommu_stream_send_range(s, 0, c->bytes);
	if (!rc)
		rc = uiommu_stream_send_round(s, 1, 0, 0);
	if (!rc)
		rc = uiommu_stream_send_switchover(s);
	*tx_cpu = cpu_ns() - c0;
	if (!rc)
		rc = uiommu_stream_send_end(s);
	uiommu_stream_sender_get_stats(s, st);
	uiommu_stream_sender_destroy(s);
	if (!rc)
		rc = uiommu_stream_result_recv(x, &res);
	return rc ? rc : res.status;
}

struct stream_times {
	double pages_s, total_s;
	uint64_t calls, wire_bytes;
	struct cpu_cost cpu; /* sender until switchover, receiver until the end */
};

static int stream_run(const struct st_ctx *c, const struct stream_case *k, struct stream_times *t)
{
	struct stream_rx rx = { .c = c };

	memset(t, 0, sizeof(*t));
	struct uiommu_xport_stats xs;
	struct uiommu_stream_stats st;
	struct uiommu_xport *x;
	char addr[32];
	pthread_t tid;
	uint64_t t0;
	int rc;

	memset(c->dst, 0, c->bytes);
	if (uiommu_xport_listen(NULL, &rx.l))
		return -1;
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", uiommu_xport_listener_port(rx.l));
	pthread_create(&tid, NULL, stream_receiver, &rx);
	rc = uiommu_xport_connect(addr, 10000, &x);
	t0 = bench_now_ns();
	if (!rc)
		rc = stream_send(c, k, x, &st, &t->cpu.tx);
	t->total_s = (double)(bench_now_ns() - t0) / 1e9;
	pthread_join(tid, NULL);
	t->cpu.rx = rx.cpu_ns;
	t->pages_s = (double)(rx.switch_ns - t0) / 1e9;
	if (!rc) {
		uiommu_xport_get_stats(x, &xs);
		t->calls = xs.write_calls;
		t->wire_bytes = st.bytes;
	}
	uiommu_xport_destroy(x);
	uiommu_xport_listener_destroy(rx.l);
	return rc || rx.rc || (k->verify != UIOMMU_STREAM_VERIFY_NONE && !rx.verified) ? -1 : 0;
}

/* ---- Reporting ---- */

static double gbps(const struct st_ctx *c, double s)
{
	return (double)c->bytes / s / 1e9;
}

static double per_gib(const struct st_ctx *c, uint64_t v)
{
	return (double)v * (double)GIB / (double)c->bytes;
}

static uint64_t hash_all_ns(const struct st_ctx *c)
{
	uint64_t t0 = bench_now_ns(), acc = 0;

	for (uint64_t off = 0; off < c->bytes; off += PS)
		acc += uiommu_stream_hash_page(c->src + off, PS);
	bench_keep(acc);
	return bench_now_ns() - t0;
}

struct plain_times {
	double s;
	uint64_t calls;
	struct cpu_cost cpu;
};

static double median_u64(uint64_t *v, int n)
{
	return (double)bench_median_u64(v, n);
}

/* Medians over the repetitions, stream and plain interleaved. */
static int measure(const struct st_ctx *c, const struct stream_case *k, struct stream_times *t,
		   struct plain_times *p)
{
	double ps[REPS], tt[REPS], pl[REPS];
	uint64_t stx[REPS], srx[REPS], ptx[REPS], prx[REPS];

	for (int r = 0; r < c->reps; r++) {
		if (stream_run(c, k, t))
			return -1;
		ps[r] = t->pages_s;
		tt[r] = t->total_s;
		stx[r] = t->cpu.tx;
		srx[r] = t->cpu.rx;
		pl[r] = plain_run(c, false, &p->calls, &p->cpu);
		if (pl[r] < 0)
			return -1;
		ptx[r] = p->cpu.tx;
		prx[r] = p->cpu.rx;
	}
	t->pages_s = bench_median(ps, c->reps);
	t->total_s = bench_median(tt, c->reps);
	t->cpu = (struct cpu_cost){ (uint64_t)median_u64(stx, c->reps),
				    (uint64_t)median_u64(srx, c->reps) };
	p->s = bench_median(pl, c->reps);
	p->cpu = (struct cpu_cost){ (uint64_t)median_u64(ptx, c->reps),
				    (uint64_t)median_u64(prx, c->reps) };
	return 0;
}

/* "@what @metric", in a buffer that lives until the next call. */
static const char *name(const char *what, const char *metric)
{
	static char buf[64];

	snprintf(buf, sizeof(buf), "%s %s", what, metric);
	return buf;
}

static int report_case(const struct st_ctx *c, const char *what, const struct stream_case *k)
{
	struct stream_times t = { 0 };
	struct plain_times p = { 0 };

	if (measure(c, k, &t, &p))
		return -1;
	bench_report(c->opts, "stream", name(what, "GB/s"), gbps(c, t.pages_s), "GB/s",
		     "plain tcp", gbps(c, p.s), strstr(what, "zero") ? ">= 2x plain" : ">= 0.8x plain");
	bench_report(c->opts, "stream", name(what, "wire MiB/GiB"),
		     per_gib(c, t.wire_bytes) / (1 << 20), "MiB", "plain tcp",
		     per_gib(c, c->bytes) / (1 << 20), "");
	bench_report(c->opts, "stream", name(what, "writes/GiB"), per_gib(c, t.calls), "calls",
		     "plain tcp", per_gib(c, p.calls), "");
	bench_report(c->opts, "stream", name(what, "sender cpu ms/GiB"), per_gib(c, t.cpu.tx) / 1e6,
		     "ms", "plain tcp", per_gib(c, p.cpu.tx) / 1e6, "");
	bench_report(c->opts, "stream", name(what, "receiver cpu ms/GiB"),
		     per_gib(c, t.cpu.rx) / 1e6, "ms", "plain tcp", per_gib(c, p.cpu.rx) / 1e6, "");
	if (k->verify == UIOMMU_STREAM_VERIFY_PAGES && !k->zstd_level)
		bench_report(c->opts, "stream", "end+verify after switchover ms/GiB",
			     per_gib(c, (uint64_t)((t.total_s - t.pages_s) * 1e9)) / 1e6, "ms",
			     "xxh3 pass", per_gib(c, hash_all_ns(c)) / 1e6, "~ one hash pass");
	return 0;
}

/* ---- Zero test ---- */

static double zero_gbps(const uint8_t *m, uint64_t bytes, uint64_t iters, bool use_memcmp)
{
	static const uint8_t zero[PS];
	uint64_t t0 = bench_now_ns(), n = 0;

	for (uint64_t i = 0; i < iters; i++) {
		for (uint64_t off = 0; off < bytes; off += PS)
			n += use_memcmp ? !memcmp(m + off, zero, PS)
					: uiommu_stream_page_is_zero(m + off, PS);
		bench_clobber();
	}
	bench_keep(n);
	return (double)(bytes * iters) / (double)(bench_now_ns() - t0);
}

static void report_zero_test(const struct st_ctx *c)
{
	uint64_t hot_iters = c->opts->quick ? 20000 : 500000;
	double a[REPS], b[REPS], x[REPS], y[REPS];

	for (int r = 0; r < c->reps; r++) {
		a[r] = zero_gbps(c->src, PS, hot_iters, false);
		b[r] = zero_gbps(c->src, PS, hot_iters, true);
		x[r] = zero_gbps(c->src, c->bytes, 1, false);
		y[r] = zero_gbps(c->src, c->bytes, 1, true);
	}
	bench_report(c->opts, "stream", "zero test, page in cache", bench_median(a, c->reps),
		     "GB/s", "memcmp zero page", bench_median(b, c->reps), ">= memcmp");
	bench_report(c->opts, "stream", "zero test, from memory", bench_median(x, c->reps),
		     "GB/s", "memcmp zero page", bench_median(y, c->reps), ">= memcmp");
}

static int run_all(struct st_ctx *c)
{
	static const struct stream_case plain = { 0, UIOMMU_STREAM_VERIFY_PAGES },
					zstd = { 1, UIOMMU_STREAM_VERIFY_PAGES },
					noverify = { 0, UIOMMU_STREAM_VERIFY_NONE };
	struct cpu_cost cpu;
	uint64_t calls;
	double tuned, autotuned;

	fill_random(c->src, c->bytes);
	if (report_case(c, "random", &plain) || report_case(c, "random zstd1", &zstd) ||
	    report_case(c, "random no-verify", &noverify))
		return -1;
	autotuned = plain_run(c, false, &calls, &cpu);
	tuned = plain_run(c, true, &calls, &cpu);
	bench_report(c->opts, "stream", "plain tcp, autotuned buffers", gbps(c, autotuned),
		     "GB/s", "4 MiB socket buffers", gbps(c, tuned), "");
	memset(c->src, 0, c->bytes);
	if (report_case(c, "zero", &plain) || report_case(c, "zero zstd1", &zstd))
		return -1;
	report_zero_test(c);
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_opts opts;
	struct st_ctx c = { .opts = &opts };
	int rc;

	bench_parse(argc, argv, &opts);
	c.bytes = opts.quick ? QUICK_BYTES : GIB;
	c.reps = opts.quick ? 1 : REPS;
	c.src = populated(c.bytes);
	c.dst = populated(c.bytes);
	if (!c.src || !c.dst) {
		fprintf(stderr, "bench_stream: no memory for 2 x %llu bytes\n",
			(unsigned long long)c.bytes);
		return 1;
	}
	rc = run_all(&c);
	if (rc)
		fprintf(stderr, "bench_stream: a run failed\n");
	munmap(c.src, c.bytes);
	munmap(c.dst, c.bytes);
	return rc ? 1 : 0;
}

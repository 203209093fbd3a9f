/* SPDX-License-Identifier: MIT */
/*
 * What `uiommu migrate` shows a person: the progress line and the summary.
 *
 * Progress: on a terminal only (stderr), one line rewritten in place ('\r'
 * and erase-to-end) each time the engine calls back, which it does every
 * 250 ms and after each round, so at most a few times a second. A log file
 * or a pipe gets nothing: a summary is all a script wants.
 *
 * Summary: in the spirit of QEMU's `info migrate` (status, times, bytes,
 * normal and zero pages, rounds), plus what QEMU cannot show: throttle and
 * guest stall, the receiver's page-for-page verdict, the device's and the
 * guest's own checks, and one line per round with the pages each dirty
 * source reported. Sources overlap (a page the guest and the device both
 * wrote is reported by both), so "sent" can be less than their sum. With a
 * type1 container, the pages it reports dirty in every round whatever is
 * written (pinned by an mdev device, or all of RAM under the all-dirty
 * rule) get a line of their own and, when pinned, a column per round.
 *
 * Exit codes are decided here too, from what the summary shows.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "migrate.h"
#include "uiommu.h"

#define MS(ns) ((double)(ns) / 1e6)
#define MBYTES(b) ((double)(b) / 1e6)
#define PAGE UIOMMU_VM_PAGE_SIZE

static bool progress_drawn;

/* Columns of the terminal on stderr, so the line never wraps (which '\r' cannot undo). */
static unsigned int term_cols(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) || ws.ws_col < 20)
		return 80;
	return ws.ws_col;
}

/* The receiver knows neither dirty rates nor the policy's figures: what it got. */
static void recv_line(char *line, size_t len, const struct uiommu_mig_progress *p, double done)
{
	snprintf(line, len, "%-9s round %-3u %3.0f%%  received %.1f MB  %.1f s",
		 uiommu_mig_state_name(p->state), p->round, done, MBYTES(p->bytes),
		 (double)p->elapsed_ns / 1e9);
}

void mig_progress_line(void *opaque, const struct uiommu_mig_progress *p)
{
	double done = p->total_pages && p->remaining_pages <= p->total_pages
			      ? 100.0 * (double)(p->total_pages - p->remaining_pages) /
					(double)p->total_pages
			      : 0;
	char line[256];
	unsigned int cols = term_cols();

	if (opaque == MIG_PROGRESS_RECEIVER)
		recv_line(line, sizeof(line), p, done);
	else
		snprintf(line, sizeof(line),
			 "%-9s round %-3u %3.0f%%  left %.1f MiB  dirty %.1f MB/s  tx %.0f MB/s"
			 "  exp. downtime %.0f ms  throttle %.0f%%  %.1f s",
			 uiommu_mig_state_name(p->state), p->round, done,
			 (double)(p->remaining_pages * PAGE) / (1 << 20),
			 MBYTES(p->dirty_rate_pps * PAGE), MBYTES(p->throughput_bps),
			 MS(p->expected_downtime_ns), p->throttle * 100, (double)p->elapsed_ns / 1e9);
	if (cols - 1 < sizeof(line))
		line[cols - 1] = 0;
	fprintf(stderr, "\r%s\033[K", line);
	fflush(stderr);
	progress_drawn = true;
}

void mig_progress_end(void)
{
	if (progress_drawn)
		fprintf(stderr, "\r\033[K");
	progress_drawn = false;
}

/* "iommufd", or "vfio-type1" with the device's kind and what type1 reports. */
static const char *iommu_desc(const struct mig_opts *o, char *buf, size_t len)
{
	if (o->m.iommu != UIOMMU_MACHINE_VFIO_TYPE1)
		return "iommufd";
	if (o->m.device_kind == UIOMMU_DMADEV_KIND_MDEV)
		snprintf(buf, len, "vfio-type1, mdev pinning %llu pages",
			 (unsigned long long)(o->m.pin_pages ? o->m.pin_pages
							     : UIOMMU_DMADEV_PIN_DEFAULT));
	else
		snprintf(buf, len, "vfio-type1, %s", o->m.type1_iommu_dirty
							 ? "IOMMU dirty bits (opt-in)"
							 : "all-dirty rule");
	return buf;
}

static const char *device_desc(const struct mig_opts *o, char *buf, size_t len)
{
	char iommu[64];

	if (!o->m.dma_bytes)
		return "no DMA device";
	snprintf(buf, len, "DMA device: %llu MiB region, %s at %.0f MB/s (%s)",
		 (unsigned long long)(o->m.dma_bytes >> 20), tool_dma_patterns[o->m.dma.pattern & 3],
		 o->dma_rate_mbps, iommu_desc(o, iommu, sizeof(iommu)));
	return buf;
}

void mig_banner(const struct mig_opts *o, const char *backend, const char *peer)
{
	static const char *const modes[] = { "demo", "send", "recv" };
	char dev[160];

	if (o->json)
		return;
	printf("uiommu migrate %s: %llu MiB guest on %u %s", modes[o->mode],
	       (unsigned long long)(o->m.mem_bytes >> 20), o->m.nr_vcpus, backend);
	if (o->mode != MIG_RECV)
		printf(" (%s at %.0f MB/s)", o->wl_name, o->rate_mbps);
	printf(", %s\n", device_desc(o, dev, sizeof(dev)));
	if (o->mode == MIG_RECV) {
		printf("%s\n", peer);
	} else {
		printf("%s; downtime limit %.0f ms, bandwidth ", peer,
		       MS(o->policy.downtime_limit_ns));
		if (o->bandwidth_bps)
			printf("%.0f MB/s", MBYTES(o->bandwidth_bps));
		else
			printf("unlimited");
		printf(", %s, verify %s\n", o->zstd_level ? "zstd" : "no compression",
		       mig_verify_name(o->verify));
	}
	fflush(stdout);
}

const char *mig_action_name(enum uiommu_mig_action a)
{
	static const char *const names[] = { "continue", "throttle", "switchover", "force-switch",
					     "give-up" };

	return (unsigned int)a < 5 ? names[a] : "?";
}

/* ---- verdicts and exit codes ---- */

static bool verify_bad(const struct uiommu_stream_verify *v)
{
	return v->checked && !v->ok;
}

bool mig_verify_failed(const struct mig_report *r)
{
	if (r->res.remote_valid && verify_bad(&r->res.remote.verify))
		return true;
	if (!r->have_recv)
		return false;
	return verify_bad(&r->recv.verify) || (r->recv.guest_checked && r->recv.guest_bad_pages) ||
	       (r->recv.device_checked && r->recv.device_bad_bytes);
}

int mig_exit_code(const struct mig_report *r)
{
	if (mig_verify_failed(r))
		return EXIT_VERIFY;
	if (r->res.state == UIOMMU_MIG_COMPLETED)
		return 0;
	if (r->res.source_paused)
		return EXIT_SOURCE_PAUSED;
	if (r->res.state == UIOMMU_MIG_CANCELLED || r->cancelled)
		return EXIT_CANCELLED;
	return EXIT_RUNTIME;
}

int mig_recv_exit_code(const struct uiommu_mig_recv_result *res, int rc, bool cancelled)
{
	if (verify_bad(&res->verify) || (res->guest_checked && res->guest_bad_pages) ||
	    (res->device_checked && res->device_bad_bytes))
		return EXIT_VERIFY;
	if (!rc)
		return 0;
	return cancelled ? EXIT_CANCELLED : EXIT_RUNTIME;
}

/* ---- the summary ---- */

static void print_verify(const char *label, const struct uiommu_stream_verify *v)
{
	printf("%-20s", label);
	if (!v->checked)
		printf("not checked\n");
	else if (v->ok)
		printf("ok, %llu pages equal%s\n", (unsigned long long)v->pages,
		       v->pages_compared ? " page for page" : " (digest)");
	else if (v->pages_compared)
		printf("FAILED: %llu of %llu pages differ, first at GPA 0x%llx\n",
		       (unsigned long long)v->mismatched, (unsigned long long)v->pages,
		       (unsigned long long)(v->nr_bad ? v->bad_gpa[0] : 0));
	else
		printf("FAILED: the digests differ\n");
}

static void print_checks(const struct uiommu_mig_recv_result *rr)
{
	printf("%-20s", "device region:");
	if (rr->device_checked)
		printf("%s (%llu bad bytes)\n", rr->device_bad_bytes ? "FAILED" : "ok",
		       (unsigned long long)rr->device_bad_bytes);
	else
		printf("not checked\n");
	printf("%-20s", "guest self-check:");
	if (rr->guest_checked)
		printf("%s, %llu bad of %llu pages\n", rr->guest_bad_pages ? "FAILED" : "ok",
		       (unsigned long long)rr->guest_bad_pages,
		       (unsigned long long)rr->guest_verified_pages);
	else
		printf("not run\n");
}

static void print_verification(const struct mig_report *r)
{
	if (r->res.remote_valid)
		print_verify("verification:", &r->res.remote.verify);
	else
		printf("%-20s%s\n", "verification:", "no verdict from the receiver");
	if (r->have_recv)
		print_checks(&r->recv);
	else
		printf("%-20s%s\n", "", "(device and guest self-checks: see the receiver)");
}

static void print_compression(const struct uiommu_stream_stats *st, int level)
{
	printf("%-20s", "compression:");
	if (!level || !st->compress_in) {
		printf("off\n");
		return;
	}
	printf("zstd %d: %.1f MB of pages in %.1f MB on the wire (%.2fx), %llu of %llu batches\n",
	       level, MBYTES(st->compress_in), MBYTES(st->compress_out),
	       st->compress_out ? (double)st->compress_in / (double)st->compress_out : 0,
	       (unsigned long long)st->compressed_batches, (unsigned long long)st->batches);
}

/* The last completed pre-copy round, whose figures the policy last decided on. */
static const struct uiommu_mig_round_info *last_precopy(const struct mig_report *r)
{
	for (unsigned int i = r->nr_rounds; i-- > 0;)
		if (!r->rounds[i].stopcopy && r->rounds[i].completed)
			return &r->rounds[i];
	return NULL;
}

/*
 * " (what failed) [ERRNO]": the engine's message says what happened, which
 * the errno's own text may not (a policy that gave up is ETIMEDOUT, whose
 * text is "Connection timed out"); without a message, the errno's text.
 */
static void print_error(int err, const char *msg)
{
	const char *name = strerrorname_np(-err);

	if (msg[0])
		printf(" (%s) [%s]", msg, name ? name : "?");
	else
		printf(" (%s)", strerror(-err));
}

static void print_status(const struct mig_report *r)
{
	const struct uiommu_mig_result *res = &r->res;

	printf("%-20s%s", "Migration status:", uiommu_mig_state_name(res->state));
	if (res->error)
		print_error(res->error, res->msg);
	printf("\n%-20s%.0f ms\n", "total time:", MS(res->total_ns));
	printf("%-20s%.0f ms\n", "setup time:", MS(res->setup_ns));
}

/*
 * What the seed threads on mdev migration asked to see before stop-and-copy:
 * pages type1 reports dirty in every round whatever the guest does, resent
 * every round, and their cost in expected downtime (the last pre-copy
 * round's figures, on which the switchover was decided).
 */
static void print_always_dirty(const struct mig_report *r)
{
	const struct uiommu_mig_result *res = &r->res;

	if (res->pinned_pages)
		printf("%-20s%llu pages resent every round, %.2f ms of the expected downtime "
		       "(%llu resent after round 1)\n",
		       "pinned:", (unsigned long long)res->pinned_pages,
		       MS(res->pinned_downtime_ns), (unsigned long long)res->pinned_resent_pages);
	if (res->all_dirty)
		printf("%-20sall-dirty rule: all %llu pages of guest RAM reported dirty in every "
		       "round (no --type1-iommu-dirty)\n",
		       "type1:", (unsigned long long)r->total_pages);
}

static void print_times(const struct mig_report *r)
{
	const struct uiommu_mig_result *res = &r->res;
	const struct uiommu_mig_round_info *last = last_precopy(r);
	double secs = (double)res->total_ns / 1e9;

	printf("%-20s%.1f ms (limit %.0f ms", "downtime:", MS(res->downtime_ns),
	       MS(r->o->policy.downtime_limit_ns));
	if (last)
		printf(", expected %.1f ms", MS(last->expected_downtime_ns));
	printf(")\n%-20s%.1f MB at %.1f MB/s (%.0f Mbps)\n", "transferred:",
	       MBYTES(res->stream.bytes), secs > 0 ? MBYTES(res->stream.bytes) / secs : 0,
	       secs > 0 ? (double)res->stream.bytes * 8 / 1e6 / secs : 0);
	printf("%-20s%llu data, %llu zero (of %llu pages of %llu bytes)\n", "pages:",
	       (unsigned long long)res->stream.data_pages, (unsigned long long)res->stream.zero_pages,
	       (unsigned long long)r->total_pages, (unsigned long long)PAGE);
	print_compression(&res->stream, r->o->zstd_level);
	printf("%-20s%u pre-copy, then stop-copy: %llu pages, %.1f KB device and vCPU state\n",
	       "rounds:", res->rounds, (unsigned long long)res->stopcopy_pages,
	       (double)res->state_bytes / 1e3);
	print_always_dirty(r);
	if (res->throttle_max > 0)
		printf("%-20smax %.0f %%, guest stall %.0f ms, device stall %.0f ms\n", "throttle:",
		       res->throttle_max * 100, MS(res->guest_stall_ns), MS(res->dma_stall_ns));
	else
		printf("%-20snone\n", "throttle:");
	if (last)
		printf("%-20s%llu pages/s (%.1f MB/s) in the last pre-copy round\n", "dirty rate:",
		       (unsigned long long)last->dirty_rate_pps,
		       MBYTES(last->dirty_rate_pps * PAGE));
}

static void print_round_head(const struct mig_report *r, unsigned int ns)
{
	printf("\nper round: pages sent; pages each dirty source reported during the round "
	       "(sent by the next one;\nstop: since the last collection), the expected downtime "
	       "for what was left, and the decision\n%5s %9s %8s %8s %7s", "round", "sent", "zero",
	       "MB", "ms");
	for (unsigned int s = 0; s < ns; s++)
		printf(" %9s", r->rounds[0].source_name[s]);
	if (r->res.pinned_pages)
		printf(" %7s", "pinned");
	printf(" %10s %8s  %s\n", "exp.down", "throttle", "then");
}

static void print_round_table(const struct mig_report *r)
{
	const struct uiommu_mig_round_info *ri;
	unsigned int ns = r->nr_rounds ? r->rounds[0].nr_sources : 0;

	if (!r->nr_rounds)
		return;
	print_round_head(r, ns);
	for (unsigned int i = 0; i < r->nr_rounds; i++) {
		ri = &r->rounds[i];
		if (ri->stopcopy)
			printf("%5s", "stop");
		else
			printf("%5u", ri->round);
		printf(" %9llu %8llu %8.1f %7.0f", (unsigned long long)ri->dirty_pages,
		       (unsigned long long)ri->zero_pages, MBYTES(ri->bytes), MS(ri->round_ns));
		for (unsigned int s = 0; s < ns; s++)
			printf(" %9llu", (unsigned long long)ri->source_pages[s]);
		if (r->res.pinned_pages)
			printf(" %7llu", (unsigned long long)ri->pinned_pages);
		if (!ri->completed)
			printf(" %10s %6.0f %%  %s\n", "-", ri->throttle * 100, "cut short");
		else if (ri->stopcopy)
			printf(" %10s %6.0f %%  %s\n", "-", ri->throttle * 100, "-");
		else
			printf(" %7.1f ms %6.0f %%  %s\n", MS(ri->expected_downtime_ns),
			       ri->throttle * 100, mig_action_name(ri->action));
	}
}

void mig_summary_text(const struct mig_report *r)
{
	print_status(r);
	if (r->res.state != UIOMMU_MIG_NONE) {
		print_times(r);
		print_verification(r);
		print_round_table(r);
	}
	fflush(stdout);
}

void mig_recv_summary_text(const struct mig_opts *o, const struct uiommu_mig_recv_result *res,
			   int rc)
{
	(void)o;
	printf("%-20s%s", "Migration status:", rc ? "failed" : "completed, the guest runs here");
	if (rc)
		print_error(rc, res->msg);
	printf("\n%-20s%.0f ms (first byte to verdict)\n", "total time:", MS(res->total_ns));
	if (res->resumed)
		printf("%-20s%.1f ms (switchover record to guest running)\n", "resume:",
		       MS(res->resume_ns));
	printf("%-20s%.1f MB, %llu data pages, %llu zero pages, %llu rounds\n", "received:",
	       MBYTES(res->stream.bytes), (unsigned long long)res->stream.data_pages,
	       (unsigned long long)res->stream.zero_pages, (unsigned long long)res->stream.rounds);
	print_verify("verification:", &res->verify);
	print_checks(res);
	fflush(stdout);
}

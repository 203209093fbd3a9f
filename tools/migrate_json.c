/* SPDX-License-Identifier: MIT */
/*
 * `uiommu migrate --json`: one JSON object on stdout with what the text
 * summary shows, rounds as an array. Names follow QEMU's query-migrate in
 * snake_case with units (STYLE.md): transferred_bytes, normal_pages,
 * zero_pages ("duplicate" in QEMU), dirty_sync_count (pre-copy rounds),
 * dirty_pages_rate, mbps, page_size, total_time_ms, downtime_ms... The
 * verdicts are objects: "verify" (page for page, the receiver's), and on a
 * receiver or in the demo "device" and "guest_check". With a type1
 * container: "pinned_pages" (resent every round), "pinned_downtime_ms" (their
 * share of the expected downtime) and "all_dirty", per round and, from the
 * last pre-copy round, at the top, with "pinned_resent_pages" in all.
 *
 * The only strings that come from outside are error messages, which are
 * escaped; numbers are printed as integers or with fixed decimals.
 */
#include <stdio.h>
#include <string.h>

#include "migrate.h"
#include "uiommu.h"

#define MS(ns) ((double)(ns) / 1e6)
#define PAGE UIOMMU_VM_PAGE_SIZE

typedef unsigned long long ull;

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void json_error(int error, const char *msg)
{
	char buf[UIOMMU_MIG_MSG_MAX + 64];

	printf("\"error\":");
	if (!error) {
		printf("null");
		return;
	}
	snprintf(buf, sizeof(buf), "%s%s%s", strerror(-error), msg[0] ? ": " : "", msg);
	json_str(buf);
}

static void json_verify(const struct uiommu_stream_verify *v)
{
	printf("{\"checked\":%s,\"ok\":%s,\"digest_match\":%s,\"pages_compared\":%s,"
	       "\"pages\":%llu,\"mismatched\":%llu,\"bad_gpa\":[",
	       v->checked ? "true" : "false", v->ok ? "true" : "false",
	       v->digest_match ? "true" : "false", v->pages_compared ? "true" : "false",
	       (ull)v->pages, (ull)v->mismatched);
	for (unsigned int i = 0; i < v->nr_bad && i < UIOMMU_STREAM_MAX_BAD; i++)
		printf("%s%llu", i ? "," : "", (ull)v->bad_gpa[i]);
	printf("]}");
}

/* "device" and "guest_check": the receiver's own checks. */
static void json_checks(const struct uiommu_mig_recv_result *rr)
{
	printf(",\"device\":{\"checked\":%s,\"bad_bytes\":%llu}", rr->device_checked ? "true" : "false",
	       (ull)rr->device_bad_bytes);
	printf(",\"guest_check\":{\"checked\":%s,\"verified_pages\":%llu,\"bad_pages\":%llu}",
	       rr->guest_checked ? "true" : "false", (ull)rr->guest_verified_pages,
	       (ull)rr->guest_bad_pages);
}

static void json_machine(const struct mig_opts *o, const char *backend)
{

	printf("\"machine\":{\"backend\":\"%s\",\"mem_bytes\":%llu,\"vcpus\":%u,\"dma_bytes\":%llu,"
	       "\"cpu_source\":\"%s\",\"workload\":",
	       backend, (ull)o->m.mem_bytes, o->m.nr_vcpus, (ull)o->m.dma_bytes,
	       o->m.backend == UIOMMU_VM_SOFT ? "soft" : o->m.cpu_source);
	json_str(o->wl_name);
	printf(",\"rate_mb_s\":%.1f,\"device\":\"%s\",\"dma_rate_mb_s\":%.1f", o->rate_mbps,
	       tool_dma_patterns[o->m.dma.pattern & 3], o->dma_rate_mbps);
	printf(",\"iommu\":\"%s\",\"device_kind\":\"%s\",\"pin_pages\":%llu,"
	       "\"type1_iommu_dirty\":%s}",
	       o->m.iommu == UIOMMU_MACHINE_VFIO_TYPE1 ? "vfio-type1" : "iommufd",
	       o->m.device_kind == UIOMMU_DMADEV_KIND_MDEV ? "mdev" : "dma",
	       (ull)(o->m.device_kind != UIOMMU_DMADEV_KIND_MDEV ? 0
		     : o->m.pin_pages ? o->m.pin_pages : UIOMMU_DMADEV_PIN_DEFAULT),
	       o->m.type1_iommu_dirty ? "true" : "false");
}

static void json_round(const struct uiommu_mig_round_info *ri)
{
	printf("{\"round\":%u,\"stopcopy\":%s,\"completed\":%s,\"sources\":{", ri->round,
	       ri->stopcopy ? "true" : "false", ri->completed ? "true" : "false");
	for (unsigned int s = 0; s < ri->nr_sources && s < UIOMMU_ROUND_MAX_SOURCES; s++)
		printf("%s\"%s\":%llu", s ? "," : "", ri->source_name[s], (ull)ri->source_pages[s]);
	printf("},\"sent_pages\":%llu,\"data_pages\":%llu,\"zero_pages\":%llu,\"bytes\":%llu,"
	       "\"collect_ms\":%.3f,\"send_ms\":%.3f,\"time_ms\":%.3f,\"bandwidth_bps\":%llu,"
	       "\"dirty_pages_rate\":%llu,\"pending_pages\":%llu,\"expected_downtime_ms\":%.3f,"
	       "\"throttle\":%.2f,\"action\":\"%s\"",
	       (ull)ri->dirty_pages, (ull)ri->data_pages, (ull)ri->zero_pages, (ull)ri->bytes,
	       MS(ri->collect_ns), MS(ri->send_ns), MS(ri->round_ns), (ull)ri->bandwidth_bps,
	       (ull)ri->dirty_rate_pps, (ull)ri->pending_pages, MS(ri->expected_downtime_ns),
	       ri->throttle, ri->stopcopy ? "stopcopy" : mig_action_name(ri->action));
	printf(",\"pinned_pages\":%llu,\"pinned_downtime_ms\":%.3f,\"all_dirty\":%s}",
	       (ull)ri->pinned_pages, MS(ri->pinned_downtime_ns), ri->all_dirty ? "true" : "false");
}

static void json_stream(const struct uiommu_stream_stats *st, int level)
{
	printf(",\"normal_pages\":%llu,\"zero_pages\":%llu,\"normal_bytes\":%llu,\"page_size\":%llu",
	       (ull)st->data_pages, (ull)st->zero_pages, (ull)(st->data_pages * PAGE), (ull)PAGE);
	printf(",\"compression\":{\"level\":%d,\"batches\":%llu,\"compressed_batches\":%llu,"
	       "\"in_bytes\":%llu,\"out_bytes\":%llu,\"ratio\":%.3f}",
	       level, (ull)st->batches, (ull)st->compressed_batches, (ull)st->compress_in,
	       (ull)st->compress_out,
	       st->compress_out ? (double)st->compress_in / (double)st->compress_out : 0);
}

static void json_totals(const struct mig_report *r)
{
	const struct uiommu_mig_result *res = &r->res;
	double secs = (double)res->total_ns / 1e9;
	uint64_t rate = 0, expected = 0;

	for (unsigned int i = 0; i < r->nr_rounds; i++) {
		if (!r->rounds[i].stopcopy && r->rounds[i].completed) {
			rate = r->rounds[i].dirty_rate_pps;
			expected = r->rounds[i].expected_downtime_ns;
		}
	}
	printf(",\"total_time_ms\":%.3f,\"setup_time_ms\":%.3f,\"downtime_ms\":%.3f,"
	       "\"downtime_limit_ms\":%.3f,\"expected_downtime_ms\":%.3f",
	       MS(res->total_ns), MS(res->setup_ns), MS(res->downtime_ns),
	       MS(r->o->policy.downtime_limit_ns), MS(expected));
	printf(",\"transferred_bytes\":%llu,\"total_bytes\":%llu,\"mbps\":%.1f,"
	       "\"dirty_sync_count\":%u,\"dirty_pages_rate\":%llu,\"stopcopy_pages\":%llu,"
	       "\"state_bytes\":%llu",
	       (ull)res->stream.bytes, (ull)(r->total_pages * PAGE),
	       secs > 0 ? (double)res->stream.bytes * 8 / 1e6 / secs : 0, res->rounds, (ull)rate,
	       (ull)res->stopcopy_pages, (ull)res->state_bytes);
	json_stream(&res->stream, r->o->zstd_level);
	printf(",\"throttle_max\":%.2f,\"guest_stall_ms\":%.3f,\"dma_stall_ms\":%.3f",
	       res->throttle_max, MS(res->guest_stall_ns), MS(res->dma_stall_ns));
	printf(",\"pinned_pages\":%llu,\"pinned_downtime_ms\":%.3f,\"pinned_resent_pages\":%llu,"
	       "\"all_dirty\":%s",
	       (ull)res->pinned_pages, MS(res->pinned_downtime_ns), (ull)res->pinned_resent_pages,
	       res->all_dirty ? "true" : "false");
}

void mig_summary_json(const struct mig_report *r)
{
	printf("{\"status\":\"%s\",", uiommu_mig_state_name(r->res.state));
	json_error(r->res.error, r->res.msg);
	printf(",\"exit_code\":%d,\"source_paused\":%s,", mig_exit_code(r),
	       r->res.source_paused ? "true" : "false");
	json_machine(r->o, r->backend);
	json_totals(r);
	printf(",\"verify_mode\":\"%s\",\"verify\":", mig_verify_name(r->o->verify));
	if (r->res.remote_valid)
		json_verify(&r->res.remote.verify);
	else
		printf("null");
	if (r->have_recv)
		json_checks(&r->recv);
	printf(",\"rounds\":[");
	for (unsigned int i = 0; i < r->nr_rounds; i++) {
		printf(i ? "," : "");
		json_round(&r->rounds[i]);
	}
	printf("]}\n");
	fflush(stdout);
}

void mig_recv_summary_json(const struct mig_opts *o, const struct uiommu_mig_recv_result *res,
			   int rc)
{
	printf("{\"status\":\"%s\",", rc ? "failed" : "completed");
	json_error(rc, res->msg);
	printf(",\"exit_code\":%d,", mig_recv_exit_code(res, rc, tool_cancel_fired()));
	json_machine(o, o->m.backend == UIOMMU_VM_SOFT ? "software vCPUs" : "KVM vCPUs");
	printf(",\"total_time_ms\":%.3f,\"resume_ms\":%.3f,\"resumed\":%s,"
	       "\"received_bytes\":%llu,\"rounds\":%llu",
	       MS(res->total_ns), MS(res->resume_ns), res->resumed ? "true" : "false",
	       (ull)res->stream.bytes, (ull)res->stream.rounds);
	json_stream(&res->stream, 0);
	printf(",\"verify\":");
	json_verify(&res->verify);
	json_checks(res);
	printf("}\n");
	fflush(stdout);
}

// SPDX-License-Identifier: MIT
/*
 * Convergence policy: after each pre-copy round, run another, throttle, or
 * switch over.
 *
 * Bandwidth is what the round achieved (bytes on the wire over the time spent
 * sending them), smoothed with the previous estimate (half each) so one
 * hiccup neither triggers nor blocks a switchover. Until a round has sent
 * something, a nominal 1 Gbit/s stands in: conservative on loopback, and the
 * first round always sends the whole memory, so it is replaced at once.
 * A round that sent mostly zero pages spent its time finding them, not on
 * the wire: its bytes over its time only bound the link from below. Such a
 * round can raise the estimate (or make the first one) but not lower it;
 * otherwise one quiet round halves the estimate and costs an extra round.
 *
 * Expected downtime = (pending pages x bytes per page on the wire + device and
 * vCPU state) / bandwidth. It fitting the limit means switch over (QEMU's
 * rule, with its 300 ms default). Pinned pages are part of the pending ones
 * (the sources report them every round); they are also a floor, since the
 * stop-copy sends them whatever happens meanwhile, and their share of the
 * expected downtime is reported on its own, before the stop-copy, as the
 * VFIO migration threads asked for mdev devices.
 *
 * Always-dirty pages (pinned, or all mapped pages under type1's all-dirty
 * rule): when the remainder is no larger than them, rounds cannot shrink it
 * and throttling the guest cannot either (the device dirties nothing; the
 * kernel's rule does). If it does not fit the limit, that is treated as a
 * limit hit at once: the switch is forced, or the migration gives up.
 *
 * Throttling (auto-converge): when the remainder fails to shrink by at least
 * a tenth for two rounds in a row, the dirty rate is keeping up with the
 * bandwidth; the guest and the device are held back a larger fraction of the
 * time, starting at 20 % and rising by 10 % up to 90 % (QEMU's auto-converge
 * starts at 20 % and steps by 10 % as well). Limits on rounds or time either
 * force the switch (the downtime is then what it is) or give up.
 */
#include <uiommu/migrate.h>

#define NOMINAL_BPS 125000000ull /* 1 Gbit/s until measured */
#define NS 1000000000.0

UIOMMU_EXPORT void uiommu_mig_policy_defaults(struct uiommu_mig_policy_cfg *cfg)
{
	*cfg = (struct uiommu_mig_policy_cfg){
		.downtime_limit_ns = 300000000ull,
		.throttle = true,
		.throttle_initial = 0.20,
		.throttle_step = 0.10,
		.throttle_max = 0.90,
	};
}

UIOMMU_EXPORT void uiommu_mig_policy_init(struct uiommu_mig_policy *p,
					  const struct uiommu_mig_policy_cfg *cfg)
{
	*p = (struct uiommu_mig_policy){ .cfg = *cfg };
}

static void update_bandwidth(struct uiommu_mig_policy *p, const struct uiommu_mig_round *r)
{
	uint64_t sample;

	if (!r->bytes_sent || !r->send_ns)
		return;
	sample = (uint64_t)((double)r->bytes_sent * NS / (double)r->send_ns);
	if (!p->bandwidth_bps)
		p->bandwidth_bps = sample;
	else if (r->zero_pages * 2 <= r->pages_sent)
		p->bandwidth_bps = (p->bandwidth_bps + sample) / 2;
	else if (sample > p->bandwidth_bps)
		p->bandwidth_bps = sample;
}

/* Time to send @pages pages and @extra bytes at the estimated bandwidth. */
static uint64_t send_time_ns(const struct uiommu_mig_policy *p, const struct uiommu_mig_round *r,
			     uint64_t pages, uint64_t extra)
{
	double bytes = (double)pages * (double)r->page_wire_bytes + (double)extra;
	double bw = (double)(p->bandwidth_bps ? p->bandwidth_bps : NOMINAL_BPS);
	double ns = bytes * NS / bw;

	return ns >= 1.8e19 ? UINT64_MAX : (uint64_t)ns;
}

static uint64_t expected_downtime(const struct uiommu_mig_policy *p,
				  const struct uiommu_mig_round *r)
{
	uint64_t pages = r->dirty_pages > r->pinned_pages ? r->dirty_pages : r->pinned_pages;

	return send_time_ns(p, r, pages, r->state_bytes);
}

/* Is all that is left dirty in every round anyway (pinned, or all-dirty)? */
static bool only_always_dirty(const struct uiommu_mig_round *r)
{
	return r->always_dirty_pages && r->dirty_pages <= r->always_dirty_pages;
}

static bool limit_hit(const struct uiommu_mig_policy *p, const struct uiommu_mig_round *r)
{
	return (p->cfg.max_rounds && p->rounds >= p->cfg.max_rounds) ||
	       (p->cfg.max_time_ns && r->elapsed_ns >= p->cfg.max_time_ns) ||
	       only_always_dirty(r);
}

/* Did the remainder fail to shrink by a tenth since the last round? */
static void update_stuck(struct uiommu_mig_policy *p, const struct uiommu_mig_round *r)
{
	bool stuck = p->rounds > 1 && r->dirty_pages * 10 >= p->prev_dirty * 9;

	p->stuck = stuck ? p->stuck + 1 : 0;
	p->prev_dirty = r->dirty_pages;
}

static bool raise_throttle(struct uiommu_mig_policy *p)
{
	double next = p->throttle > 0 ? p->throttle + p->cfg.throttle_step
				      : p->cfg.throttle_initial;

	/* The epsilon: 0.2 + 7 steps of 0.1 falls short of 0.9 in binary. */
	if (!p->cfg.throttle || p->stuck < 2 || p->throttle >= p->cfg.throttle_max - 1e-9)
		return false;
	p->throttle = next > p->cfg.throttle_max ? p->cfg.throttle_max : next;
	p->stuck = 0;
	return true;
}

UIOMMU_EXPORT void uiommu_mig_policy_round(struct uiommu_mig_policy *p,
					   const struct uiommu_mig_round *r,
					   struct uiommu_mig_decision *d)
{
	p->rounds++;
	update_bandwidth(p, r);
	update_stuck(p, r);
	d->bandwidth_bps = p->bandwidth_bps;
	d->expected_downtime_ns = expected_downtime(p, r);
	d->pinned_downtime_ns = r->pinned_pages ? send_time_ns(p, r, r->pinned_pages, 0) : 0;
	d->dirty_rate_pps = r->round_ns ? (uint64_t)((double)r->dirty_pages * NS /
						     (double)r->round_ns)
					: 0;
	if (d->expected_downtime_ns <= p->cfg.downtime_limit_ns)
		d->action = UIOMMU_MIG_SWITCHOVER;
	else if (limit_hit(p, r))
		d->action = p->cfg.force_switchover ? UIOMMU_MIG_FORCE_SWITCH : UIOMMU_MIG_GIVE_UP;
	else if (raise_throttle(p))
		d->action = UIOMMU_MIG_THROTTLE;
	else
		d->action = UIOMMU_MIG_CONTINUE;
	d->throttle = p->throttle;
}

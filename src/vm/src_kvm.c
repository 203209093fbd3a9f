// SPDX-License-Identifier: MIT
/*
 * KVM dirty sources: "kvm-log", "kvm-clear-log" and "kvm-ring" (see
 * <uiommu/vm_sources.h> for what each reports and when to use which).
 *
 * All three watch the one memslot of struct uiommu_vm_kvm_info: slot page k
 * is guest page first_page + k, first_page = gpa / 4 KiB. start and stop
 * toggle KVM_MEM_LOG_DIRTY_PAGES on the slot; KVM then write-protects the
 * slot and learns of each first write to a page through a fault.
 *
 * kvm-log: KVM_GET_DIRTY_LOG fills `got` (the slot's bitmap) and, in the same
 * ioctl, clears KVM's copy and write-protects the pages it returned; `got` is
 * then ORed into the caller's bitmap. A write racing with it is either in
 * `got` or faults again and is in the next one.
 *
 * kvm-clear-log: with manual protect KVM_GET_DIRTY_LOG only copies. Each chunk
 * of chunk_pages slot pages that has a bit in `got` is then passed to
 * KVM_CLEAR_DIRTY_LOG with `got`'s own words as the mask, so KVM clears and
 * write-protects exactly what was reported: a page dirtied after the GET keeps
 * its bit for the next collect, and one dirtied again between GET and CLEAR
 * was reported by this collect and is read after it. If a CLEAR fails, what
 * `got` holds is delivered all the same (uncleared pages come again: a
 * duplicate, never a loss).
 *
 * kvm-ring: every vCPU has a ring of struct kvm_dirty_gfn {flags, slot,
 * offset} that KVM fills in order. The reader keeps a free-running fetch
 * index per ring (in the link, see vm_sources.h), loads the entry's flags with
 * acquire (the KVM_CAP_DIRTY_LOG_RING_ACQ_REL contract: the entry's slot and
 * offset are visible once DIRTY is), reads it, stores flags = RESET with
 * release (KVM may reuse the entry once it sees that), and moves on; after
 * every ring is read, KVM_RESET_DIRTY_RINGS on the VM fd makes KVM re-protect
 * the pages of the RESET entries and recycle them. Entries naming another slot
 * or an offset beyond the slot are counted in bad_entries and skipped; they
 * are never written anywhere. Harvested pages go to `pending`, a dirty_log
 * (dirty/log.c, marks without data of their own, so no fence), and collect
 * ends with a take of `pending` into the caller's bitmap: its cost follows
 * the marked words, not the memory size.
 *
 * Overflow: KVM stops a vCPU whose ring is soft-full (all but 64 entries in
 * use) before it enters the guest again, and a correct KVM never fills a
 * whole lap. On this host (nested PVM) guest code that KVM emulates (the
 * tests' raw guest: 32-bit, no paging, ~0.5 us per instruction) has its
 * writes logged without that check between instructions: 300 writes to
 * mapped pages into a 256-entry ring left 256 entries, the others
 * overwritten unread. (The VM module's CPL3 guest runs natively and stops in
 * time: no overflow with a 256-entry ring at an unlimited rate.) An entry is
 * lost only when KVM pushes more than a lap past the fetch index, and then
 * every slot from fetch on holds an unread DIRTY entry, so a harvest that
 * reads a full lap is the sign: it reports every page of the slot (a lost
 * entry could be any page), counts an overflow and marks the ring suspect.
 * A ring-full exit also looks at the whole ring (the vCPU is out of KVM_RUN,
 * nothing moves): DIRTY entries the fetch index did not reach mean it lost
 * track, and are harvested and reported the same way.
 *
 * After KVM wraps a ring (with or without a loss: also when the entries it
 * overwrote were harvested but not yet reset), KVM still counts entries
 * whose slots its reset already emptied, and its reset stops at them. KVM's
 * reset walks from its reset index over every entry marked RESET and stops
 * only at one that is not: it does not stop at its dirty index, so an entry
 * KVM never pushed must never be marked (its count of used entries would
 * wrap and the ring stay full for good), and fetch must never fall behind
 * what KVM walked. Two ways out, both marking only entries KVM counts: once
 * KVM pushes again, its new entries start right after the emptied ones,
 * and ring_resync() marks those and moves fetch there; if KVM counts a soft
 * limit of them, the vCPU cannot run to push, and each ring-full exit (from
 * the second one in a row that finds nothing) recycles one (ring_unwedge(),
 * counted in `recycled`) until it can. A vCPU is never resumed without a
 * harvest and a KVM reset of its ring.
 *
 * Locking: rings[v].lock protects the harvest of ring v, its suspect flag and
 * link->fetch[v];
 * the collector (any ring) and uiommu_kvm_ring_full() (on vCPU v's thread,
 * ring v) take it, so one ring is never harvested twice at once, while other
 * rings and `pending` need no lock (dirty_log marks are lock-free).
 * KVM_RESET_DIRTY_RINGS may come from either thread; KVM serializes it and it
 * resets whatever entries are marked by then. link->src and link->busy are
 * the callback's way in: the callback raises busy before it loads src, and
 * destroy clears src before it waits for busy to fall, so a callback either
 * sees no source or is waited for.
 *
 * Example (clear-log, chunk 64, slot of 256 pages): the guest wrote pages 3
 * and 130. GET gives got = {bit 3, bit 130}; chunks 0 and 2 are cleared with
 * masks 1 << 3 and 1 << 2, chunks 1 and 3 cost nothing; 2 pages reported.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>

#include <uiommu/bitmap.h>
#include <uiommu/vm_sources.h>

#include "core/core_internal.h"
#include "dirty/dirty_internal.h"
#include "vm/vm_internal.h"

#define PAGE_SHIFT 12

struct kvm_ring {
	pthread_mutex_t lock;
	struct kvm_dirty_gfn *gfns;
	/* Entries were lost (a full lap read): fetch may lag KVM, which may
	 * count overwritten entries; until a harvest finds entries again. */
	bool suspect;
	uint64_t activity; /* harvests that found or marked entries */
	uint64_t stuck_at; /* activity at the last ring-full exit with nothing to take */
	uint32_t unwedge_at; /* ring_unwedge(): the position to try first */
};

struct kvm_src {
	struct uiommu_dirty_source base;
	struct uiommu_vm_kvm_info info;
	uint64_t first_page; /* guest page of slot page 0 */
	uint64_t slot_pages;
	uint64_t *got;        /* kvm-log, kvm-clear-log: the slot's bitmap from KVM */
	uint64_t chunk_pages; /* kvm-clear-log */
	struct uiommu_kvm_ring_link *link;
	struct kvm_ring rings[UIOMMU_VM_MAX_VCPUS];
	struct dirty_log pending; /* kvm-ring */
	struct uiommu_kvm_source_stats st; /* relaxed atomic adds */
};

static const struct uiommu_dirty_source_ops kvm_log_ops, kvm_clear_ops, kvm_ring_ops;

static struct kvm_src *to_kvm(struct uiommu_dirty_source *src)
{
	return container_of(src, struct kvm_src, base);
}

static bool is_kvm_source(const struct uiommu_dirty_source *src)
{
	return src->ops == &kvm_log_ops || src->ops == &kvm_clear_ops || src->ops == &kvm_ring_ops;
}

static void stat_add(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

/* An ioctl on the VM fd, counted, as 0 or a negative errno. */
static int vm_ioctl(struct kvm_src *ks, unsigned long cmd, void *arg)
{
	int rc = ioctl(ks->info.vm_fd, cmd, arg);

	stat_add(&ks->st.ioctls, 1);
	return rc < 0 ? -errno : rc;
}

static int info_check(const struct uiommu_vm_kvm_info *info)
{
	uint64_t end;

	if (!info || info->vm_fd < 0 || !info->host || !info->bytes ||
	    info->nr_vcpus > UIOMMU_VM_MAX_VCPUS)
		return -EINVAL;
	if ((info->gpa | info->bytes) & ((1ull << PAGE_SHIFT) - 1))
		return -EINVAL;
	if (uiommu_check_add_overflow(info->gpa, info->bytes, &end))
		return -EINVAL;
	return 0;
}

static int kvm_src_alloc(const struct uiommu_vm_kvm_info *info,
			 const struct uiommu_dirty_source_ops *ops, const char *name,
			 struct kvm_src **out)
{
	struct kvm_src *ks = uiommu__zalloc(sizeof(*ks));

	if (!ks)
		return -ENOMEM;
	ks->info = *info;
	ks->first_page = info->gpa >> PAGE_SHIFT;
	ks->slot_pages = info->bytes >> PAGE_SHIFT;
	ks->base.ops = ops;
	ks->base.name = name;
	ks->base.npages = ks->first_page + ks->slot_pages;
	*out = ks;
	return 0;
}

/* Turns dirty logging of the slot on or off. */
static int slot_set_logging(struct kvm_src *ks, bool on)
{
	struct kvm_userspace_memory_region region = {
		.slot = ks->info.slot,
		.flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		.guest_phys_addr = ks->info.gpa,
		.memory_size = ks->info.bytes,
		.userspace_addr = (uintptr_t)ks->info.host,
	};
	int rc = vm_ioctl(ks, KVM_SET_USER_MEMORY_REGION, &region);

	if (rc)
		uiommu__log(UIOMMU_LOG_ERR, "%s: slot %u: dirty logging %s failed (%d)",
			    ks->base.name, ks->info.slot, on ? "on" : "off", rc);
	return rc;
}

/* ---- kvm-log and kvm-clear-log ---- */

static int bitmap_log_start(struct uiommu_dirty_source *src)
{
	return slot_set_logging(to_kvm(src), true);
}

static void bitmap_log_stop(struct uiommu_dirty_source *src)
{
	slot_set_logging(to_kvm(src), false);
}

static int get_dirty_log(struct kvm_src *ks)
{
	struct kvm_dirty_log log = { .slot = ks->info.slot, .dirty_bitmap = ks->got };
	int rc = vm_ioctl(ks, KVM_GET_DIRTY_LOG, &log);

	if (rc)
		uiommu__log(UIOMMU_LOG_ERR, "%s: KVM_GET_DIRTY_LOG failed (%d)", ks->base.name, rc);
	return rc;
}

/* ORs `got` into the caller's bitmap at the slot's place; the pages it held. */
static uint64_t deliver_got(struct kvm_src *ks, uint64_t *bitmap)
{
	uiommu_bitmap_or_bits(bitmap, ks->first_page, ks->got, 0, ks->slot_pages);
	return uiommu_bitmap_count_range(ks->got, 0, ks->slot_pages - 1);
}

static int log_collect(struct uiommu_dirty_source *src, uint64_t *bitmap, uint64_t *pages)
{
	struct kvm_src *ks = to_kvm(src);
	int rc = get_dirty_log(ks);

	if (!rc)
		*pages += deliver_got(ks, bitmap);
	return rc;
}

static bool words_clean(const uint64_t *w, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		if (w[i])
			return false;
	return true;
}

/* KVM_CLEAR_DIRTY_LOG of the bits of `got` in every chunk that has one. */
static int clear_chunks(struct kvm_src *ks)
{
	for (uint64_t first = 0; first < ks->slot_pages; first += ks->chunk_pages) {
		uint64_t n = u64_min(ks->chunk_pages, ks->slot_pages - first);
		struct kvm_clear_dirty_log clr = {
			.slot = ks->info.slot,
			.num_pages = (uint32_t)n,
			.first_page = first,
			.dirty_bitmap = ks->got + first / 64,
		};
		int rc;

		if (words_clean(ks->got + first / 64, uiommu_bitmap_words(n)))
			continue;
		rc = vm_ioctl(ks, KVM_CLEAR_DIRTY_LOG, &clr);
		if (rc) {
			uiommu__log(UIOMMU_LOG_ERR, "%s: KVM_CLEAR_DIRTY_LOG [%" PRIu64 ", +%" PRIu64
				    ") failed (%d)", ks->base.name, first, n, rc);
			return rc;
		}
		stat_add(&ks->st.clears, 1);
	}
	return 0;
}

static int clear_collect(struct uiommu_dirty_source *src, uint64_t *bitmap, uint64_t *pages)
{
	struct kvm_src *ks = to_kvm(src);
	int rc = get_dirty_log(ks);

	if (rc)
		return rc;
	rc = clear_chunks(ks);
	/* Reported even if a clear failed: uncleared pages only come again. */
	*pages += deliver_got(ks, bitmap);
	return rc;
}

static void bitmap_log_destroy(struct uiommu_dirty_source *src)
{
	struct kvm_src *ks = to_kvm(src);

	uiommu__free(ks->got);
	uiommu__free(ks);
}

static const struct uiommu_dirty_source_ops kvm_log_ops = {
	.start = bitmap_log_start,
	.collect = log_collect,
	.stop = bitmap_log_stop,
	.destroy = bitmap_log_destroy,
};

static const struct uiommu_dirty_source_ops kvm_clear_ops = {
	.start = bitmap_log_start,
	.collect = clear_collect,
	.stop = bitmap_log_stop,
	.destroy = bitmap_log_destroy,
};

static int bitmap_source_create(const struct uiommu_vm_kvm_info *info,
				const struct uiommu_dirty_source_ops *ops, const char *name,
				uint64_t chunk_pages, struct uiommu_dirty_source **out)
{
	struct kvm_src *ks;
	int rc = kvm_src_alloc(info, ops, name, &ks);

	if (rc)
		return rc;
	ks->chunk_pages = chunk_pages;
	/* KVM writes whole longs: round the bitmap up to a word. */
	ks->got = uiommu__calloc(uiommu_bitmap_words(ks->slot_pages), sizeof(uint64_t));
	if (!ks->got)
		goto err_free_source;
	*out = &ks->base;
	return 0;

err_free_source:
	uiommu__free(ks);
	return -ENOMEM;
}

UIOMMU_EXPORT int uiommu_kvm_log_source_create(const struct uiommu_vm_kvm_info *info,
					       struct uiommu_dirty_source **out)
{
	int rc = info_check(info);

	if (rc || !out)
		return rc ? rc : -EINVAL;
	if (info->ring_entries || info->manual_protect)
		return -EOPNOTSUPP;
	return bitmap_source_create(info, &kvm_log_ops, "kvm-log", 0, out);
}

UIOMMU_EXPORT int uiommu_kvm_clear_log_source_create(const struct uiommu_vm_kvm_info *info,
						     uint64_t chunk_pages,
						     struct uiommu_dirty_source **out)
{
	int rc = info_check(info);

	if (!chunk_pages)
		chunk_pages = UIOMMU_KVM_CLEAR_CHUNK_DEFAULT;
	/* KVM takes num_pages as a u32: keep chunks well inside it. */
	if (rc || !out || chunk_pages % 64 || chunk_pages > (1ull << 31))
		return rc ? rc : -EINVAL;
	if (info->ring_entries || !info->manual_protect)
		return -EOPNOTSUPP;
	return bitmap_source_create(info, &kvm_clear_ops, "kvm-clear-log", chunk_pages, out);
}

/* ---- kvm-ring ---- */

static bool entry_dirty(struct kvm_dirty_gfn *e)
{
	return __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) == KVM_DIRTY_GFN_F_DIRTY;
}

/*
 * Harvests entry @e (DIRTY) into `pending` and hands it back to KVM. Its
 * slot and offset are loaded once each: after an overflow KVM may be
 * rewriting the entry meanwhile (the lap that lets it is reported whole).
 * Returns false for an entry outside the slot.
 */
static bool ring_take(struct kvm_src *ks, struct kvm_dirty_gfn *e)
{
	uint32_t slot = __atomic_load_n(&e->slot, __ATOMIC_RELAXED);
	uint64_t offset = __atomic_load_n(&e->offset, __ATOMIC_RELAXED);
	bool ours = slot == ks->info.slot && offset < ks->slot_pages;

	if (ours)
		dirty_log_mark(&ks->pending, ks->first_page + offset, ks->first_page + offset);
	__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
	return ours;
}

static void ring_count(struct kvm_src *ks, unsigned int v, uint64_t n, uint64_t bad)
{
	stat_add(&ks->st.entries, n);
	if (!bad)
		return;
	stat_add(&ks->st.bad_entries, bad);
	uiommu__log(UIOMMU_LOG_WARN, "kvm-ring: vcpu %u: %" PRIu64 " entries outside slot %u", v,
		    bad, ks->info.slot);
}

/* Reads ring @v from its fetch index into `pending`; rings[v].lock held. */
static uint64_t ring_read(struct kvm_src *ks, unsigned int v)
{
	struct kvm_dirty_gfn *gfns = ks->rings[v].gfns;
	uint32_t mask = ks->info.ring_entries - 1, *fetch = &ks->link->fetch[v];
	uint64_t n = 0, bad = 0;

	/* At most one lap: entries we reset are not reused before KVM_RESET_DIRTY_RINGS. */
	for (; n < ks->info.ring_entries; n++, (*fetch)++) {
		struct kvm_dirty_gfn *e = &gfns[*fetch & mask];

		if (!entry_dirty(e))
			break;
		bad += !ring_take(ks, e);
	}
	ring_count(ks, v, n, bad);
	return n;
}

/* Entries may have been lost: every page of the slot is dirty. */
static void ring_lost(struct kvm_src *ks, unsigned int v, const char *why)
{
	dirty_log_mark(&ks->pending, ks->first_page, ks->first_page + ks->slot_pages - 1);
	stat_add(&ks->st.overflows, 1);
	uiommu__log(UIOMMU_LOG_ERR, "kvm-ring: vcpu %u: %s; every page reported dirty", v, why);
}

/* Marks an empty entry RESET, unless KVM made it DIRTY meanwhile (never undone). */
static bool entry_mark_empty(struct kvm_dirty_gfn *e)
{
	uint32_t empty = 0;

	return __atomic_compare_exchange_n(&e->flags, &empty, KVM_DIRTY_GFN_F_RESET, false,
					   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/*
 * After an overflow KVM's push index is ahead of fetch by the entries it
 * overwrote, and the slots between hold nothing (KVM reset them as part of
 * the lap we read). The first unharvested entry is where KVM's next run of
 * dirty entries begins: mark the empty slots before it RESET, so that KVM's
 * reset walks over them, and continue from there. 0 when no such run shows.
 */
static uint64_t ring_resync(struct kvm_src *ks, unsigned int v)
{
	struct kvm_dirty_gfn *gfns = ks->rings[v].gfns;
	uint32_t mask = ks->info.ring_entries - 1, fetch = ks->link->fetch[v], i;

	for (i = 1; i < ks->info.ring_entries; i++)
		if (entry_dirty(&gfns[(fetch + i) & mask]) &&
		    !entry_dirty(&gfns[(fetch + i - 1) & mask]))
			break;
	if (i == ks->info.ring_entries)
		return 0;
	for (uint32_t k = 0; k < i; k++)
		entry_mark_empty(&gfns[(fetch + k) & mask]);
	ks->link->fetch[v] = fetch + i;
	ks->rings[v].suspect = false;
	uiommu__log(UIOMMU_LOG_WARN, "kvm-ring: vcpu %u: fetch index moved on by %u", v, i);
	return ring_read(ks, v) + i;
}

/* One harvest of ring @v; rings[v].lock held. */
static uint64_t ring_harvest_locked(struct kvm_src *ks, unsigned int v)
{
	uint64_t n = ring_read(ks, v);

	if (n == ks->info.ring_entries) {
		ring_lost(ks, v, "a full lap of entries, some may be overwritten");
		ks->rings[v].suspect = true;
	} else if (n) {
		ks->rings[v].suspect = false; /* fetch found KVM's entries */
	} else if (ks->rings[v].suspect) {
		n = ring_resync(ks, v);
	}
	ks->rings[v].activity += n != 0;
	return n;
}

static uint64_t ring_harvest(struct kvm_src *ks, unsigned int v)
{
	uint64_t n;

	pthread_mutex_lock(&ks->rings[v].lock);
	n = ring_harvest_locked(ks, v);
	pthread_mutex_unlock(&ks->rings[v].lock);
	return n;
}

/*
 * KVM_RESET_DIRTY_RINGS with every signal blocked. KVM (6.17 on) checks for
 * a pending signal before each entry and returns -EINTR at once, and the
 * entries it had already taken into the batch in hand are then never
 * write-protected: their pages stay writable and the guest's next writes to
 * them reach no ring, a loss no later harvest can see. The vCPU threads,
 * which reset from uiommu_kvm_ring_full(), are where the VM's kick signal
 * lands, so this happened whenever a pause met a ring-full exit; a blocked
 * signal is not pending to KVM's check.
 */
static int ring_reset_ioctl(struct kvm_src *ks)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = vm_ioctl(ks, KVM_RESET_DIRTY_RINGS, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

/*
 * A reset failed part way, so pages harvested before it may still be
 * writable: dirty logging off and on again write-protects the whole slot,
 * and every page is reported, which covers whatever was written meanwhile.
 */
static void ring_reprotect(struct kvm_src *ks)
{
	slot_set_logging(ks, false);
	slot_set_logging(ks, true);
	ring_lost(ks, 0, "a reset failed part way, the slot is write-protected again");
}

static int ring_reset(struct kvm_src *ks)
{
	int rc = ring_reset_ioctl(ks);

	stat_add(&ks->st.resets, 1);
	if (rc < 0) {
		uiommu__log(UIOMMU_LOG_ERR, "kvm-ring: KVM_RESET_DIRTY_RINGS failed (%d)", rc);
		ring_reprotect(ks);
	}
	return rc < 0 ? rc : 0;
}

/* Harvests every ring and resets them; 0 or the reset's error. */
static int ring_harvest_all(struct kvm_src *ks)
{
	uint64_t n = 0;

	for (unsigned int v = 0; v < ks->info.nr_vcpus; v++)
		n += ring_harvest(ks, v);
	return n ? ring_reset(ks) : 0;
}

/*
 * At a ring-full exit (vCPU @v out of KVM_RUN: nothing pushes to its ring),
 * after the harvest; the ring's lock held. DIRTY entries that the fetch
 * index did not reach mean it lost track of KVM: they are harvested, and
 * reported as a loss. Returns how many.
 */
static uint64_t ring_strays(struct kvm_src *ks, unsigned int v)
{
	struct kvm_dirty_gfn *gfns = ks->rings[v].gfns;
	uint32_t mask = ks->info.ring_entries - 1, *fetch = &ks->link->fetch[v], last = 0;
	uint64_t strays = 0, bad = 0;

	for (uint32_t k = 0; k < ks->info.ring_entries; k++) {
		struct kvm_dirty_gfn *e = &gfns[(*fetch + k) & mask];

		if (entry_dirty(e)) {
			strays++;
			bad += !ring_take(ks, e);
			last = k;
		}
	}
	ring_count(ks, v, strays, bad);
	if (strays) {
		/*
		 * They are the run KVM pushed last: it pushes next after the
		 * last of them. Fetch must not stay behind what KVM's reset
		 * will walk, or a resync would mark entries KVM never pushed.
		 */
		*fetch += last + 1;
		ring_lost(ks, v, "dirty entries beyond the fetch index");
		ks->rings[v].activity++;
	}
	return strays;
}

/*
 * KVM's reset walks from its reset index over every entry marked RESET,
 * whether it pushed it or not, so an entry it never pushed must never be
 * marked: its count of used entries would wrap and the ring stay full for
 * good. Here the ring looks wedged after a wrap: KVM counts entries it
 * overwrote, all empty. It is known to be when this is the second ring-full
 * exit in a row that finds nothing to harvest, with no harvest between
 * (`stuck_at`): KVM made this exit after the first one's reset, counting at
 * least a soft limit, and since then no reset could walk anything (KVM's
 * reset index is at an empty entry, or that reset would have walked on).
 * (At the first, a collector's reset after the exit may have emptied KVM's
 * count.) Marking one empty entry is then safe: KVM walks it only if it is
 * at its reset index, i.e. one of those it counts, and then on over the
 * entries marked after it. Tried first: the entry after the last one KVM
 * took, or fetch (where KVM stopped, unless harvested entries waited when
 * the ring overflowed: then it stopped behind fetch); then every other
 * empty entry, each mark undone unless KVM took it. One entry per ring-full
 * exit: the vCPU exits again until KVM's count is below the soft limit,
 * then pushes, and ring_resync() takes over.
 */
static void ring_unwedge(struct kvm_src *ks, unsigned int v)
{
	struct kvm_ring *r = &ks->rings[v];
	uint32_t mask = ks->info.ring_entries - 1, *fetch = &ks->link->fetch[v];

	for (uint32_t k = 0; k < ks->info.ring_entries; k++) {
		uint32_t p = (r->unwedge_at + k) & mask, reset = KVM_DIRTY_GFN_F_RESET;
		struct kvm_dirty_gfn *e = &r->gfns[p];
		int rc;

		if (!entry_mark_empty(e))
			continue;
		rc = ring_reset(ks);
		if (!rc && !__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE)) {
			/* KVM stopped at fetch, or behind it (then fetch stays). */
			*fetch += p == (*fetch & mask);
			r->unwedge_at = p + 1;
			stat_add(&ks->st.recycled, 1);
			return;
		}
		__atomic_compare_exchange_n(&e->flags, &reset, 0, false, __ATOMIC_ACQ_REL,
					    __ATOMIC_ACQUIRE);
		if (rc)
			return;
	}
}

/* uiommu_kvm_ring_full()'s harvest of ring @v, whose vCPU is out of KVM_RUN. */
static void ring_full_harvest(struct kvm_src *ks, unsigned int v)
{
	uint64_t n;

	pthread_mutex_lock(&ks->rings[v].lock);
	n = ring_harvest_locked(ks, v);
	n += ring_strays(ks, v);
	/*
	 * Reset even when the collector took the entries first: until KVM's
	 * reset they still fill the ring and the vCPU would exit again.
	 */
	ring_reset(ks);
	if (!n) {
		if (ks->rings[v].stuck_at == ks->rings[v].activity)
			ring_unwedge(ks, v);
		else
			ks->rings[v].unwedge_at = ks->link->fetch[v];
		ks->rings[v].stuck_at = ks->rings[v].activity;
	}
	pthread_mutex_unlock(&ks->rings[v].lock);
}

static int ring_start(struct uiommu_dirty_source *src)
{
	struct kvm_src *ks = to_kvm(src);

	dirty_log_clear(&ks->pending);
	return slot_set_logging(ks, true);
}

static int ring_collect(struct uiommu_dirty_source *src, uint64_t *bitmap, uint64_t *pages)
{
	struct kvm_src *ks = to_kvm(src);
	int rc = ring_harvest_all(ks);

	/* Whatever was harvested, here or by a ring-full exit, is delivered. */
	*pages += dirty_log_take(&ks->pending, bitmap);
	return rc;
}

/* Leaves no entry behind, so a later source starts at an empty ring. */
static void ring_stop(struct uiommu_dirty_source *src)
{
	struct kvm_src *ks = to_kvm(src);

	slot_set_logging(ks, false);
	ring_harvest_all(ks);
}

static void ring_fini(struct kvm_src *ks)
{
	for (unsigned int v = 0; v < ks->info.nr_vcpus; v++)
		pthread_mutex_destroy(&ks->rings[v].lock);
}

static void ring_destroy(struct uiommu_dirty_source *src)
{
	struct kvm_src *ks = to_kvm(src);

	__atomic_store_n(&ks->link->src, NULL, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&ks->link->busy, __ATOMIC_SEQ_CST))
		sched_yield();
	ring_fini(ks);
	dirty_log_fini(&ks->pending);
	uiommu__free(ks);
}

static const struct uiommu_dirty_source_ops kvm_ring_ops = {
	.start = ring_start,
	.collect = ring_collect,
	.stop = ring_stop,
	.destroy = ring_destroy,
};

static int ring_info_check(const struct uiommu_vm_kvm_info *info)
{
	if (!info->ring_entries)
		return -EOPNOTSUPP;
	if (!is_pow2_u64(info->ring_entries) || !info->nr_vcpus)
		return -EINVAL;
	for (unsigned int v = 0; v < info->nr_vcpus; v++)
		if (!info->rings[v])
			return -EINVAL;
	return 0;
}

static void ring_init(struct kvm_src *ks, struct uiommu_kvm_ring_link *link)
{
	ks->link = link;
	for (unsigned int v = 0; v < ks->info.nr_vcpus; v++) {
		pthread_mutex_init(&ks->rings[v].lock, NULL);
		ks->rings[v].gfns = ks->info.rings[v];
		ks->rings[v].stuck_at = UINT64_MAX;
	}
}

UIOMMU_EXPORT int uiommu_kvm_ring_source_create(const struct uiommu_vm_kvm_info *info,
						struct uiommu_kvm_ring_link *link,
						struct uiommu_dirty_source **out)
{
	struct uiommu_dirty_source *none = NULL;
	struct kvm_src *ks;
	int rc = info_check(info);

	if (rc || !link || !out)
		return rc ? rc : -EINVAL;
	rc = ring_info_check(info);
	if (rc)
		return rc;
	rc = kvm_src_alloc(info, &kvm_ring_ops, "kvm-ring", &ks);
	if (rc)
		return rc;
	rc = dirty_log_init(&ks->pending, ks->base.npages, false);
	if (rc)
		goto err_free_source;
	ring_init(ks, link);
	rc = -EBUSY;
	if (!__atomic_compare_exchange_n(&link->src, &none, &ks->base, false, __ATOMIC_SEQ_CST,
					 __ATOMIC_SEQ_CST))
		goto err_fini_ring;
	*out = &ks->base;
	return 0;

err_fini_ring:
	ring_fini(ks);
	dirty_log_fini(&ks->pending);
err_free_source:
	uiommu__free(ks);
	return rc;
}

UIOMMU_EXPORT void uiommu_kvm_ring_full(void *opaque, unsigned int vcpu)
{
	struct uiommu_kvm_ring_link *link = opaque;
	struct uiommu_dirty_source *src;

	__atomic_fetch_add(&link->busy, 1, __ATOMIC_SEQ_CST);
	src = __atomic_load_n(&link->src, __ATOMIC_SEQ_CST);
	if (src && vcpu < to_kvm(src)->info.nr_vcpus) {
		struct kvm_src *ks = to_kvm(src);

		stat_add(&ks->st.ring_full, 1);
		ring_full_harvest(ks, vcpu);
	} else {
		uiommu__log(UIOMMU_LOG_WARN, "kvm-ring: vcpu %u: ring full, but no source has it",
			    vcpu);
	}
	__atomic_fetch_sub(&link->busy, 1, __ATOMIC_SEQ_CST);
}

UIOMMU_EXPORT int uiommu_kvm_source_get_stats(struct uiommu_dirty_source *src,
					      struct uiommu_kvm_source_stats *st)
{
	struct kvm_src *ks;

	if (!src || !st || !is_kvm_source(src))
		return -EINVAL;
	ks = to_kvm(src);
	st->ioctls = __atomic_load_n(&ks->st.ioctls, __ATOMIC_RELAXED);
	st->clears = __atomic_load_n(&ks->st.clears, __ATOMIC_RELAXED);
	st->entries = __atomic_load_n(&ks->st.entries, __ATOMIC_RELAXED);
	st->ring_full = __atomic_load_n(&ks->st.ring_full, __ATOMIC_RELAXED);
	st->resets = __atomic_load_n(&ks->st.resets, __ATOMIC_RELAXED);
	st->bad_entries = __atomic_load_n(&ks->st.bad_entries, __ATOMIC_RELAXED);
	st->overflows = __atomic_load_n(&ks->st.overflows, __ATOMIC_RELAXED);
	st->recycled = __atomic_load_n(&ks->st.recycled, __ATOMIC_RELAXED);
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * A lock-free dirty log in two levels: what the "vmm" and "soft" sources
 * are, and where the KVM ring source parks what a ring-full exit harvested.
 *
 * Level 0 has one bit per page; level 1 (the summary) one bit per 64-bit word
 * of level 0, set when that word may hold a set bit. For 1 GiB of 4 KiB pages
 * that is 32 KiB of page bits and 512 bytes of summary, so a take that finds
 * few marks reads 64 summary words and the words they point at, not 4096.
 *
 * Mark (any thread): for each page word touched, load it and atomically OR the
 * mask only if some bit is still clear (a load is ~1.3 ns, a locked OR ~2.4
 * ns and a cache line taken away from other markers); then the same for the
 * summary words, always, even when the page bits were all set already.
 * Take (one thread): for each non-zero summary word, exchange it with zero;
 * for each word it names, exchange that with zero if it is not zero already,
 * OR it into the caller's bitmap and count it.
 *
 * Why nothing is lost: all these accesses are sequentially consistent, so
 * they happen in one total order. A mark sets (or finds set) its page bit
 * before it makes sure of the summary bit. If take's exchange of the summary
 * word comes after that, take then exchanges the page word and gets the bit;
 * if it comes before, the summary bit is set again after it and the next
 * take finds it. A page bit is only ever cleared by a take that got it. A
 * mark that found its page bit already set relies on the earlier marker,
 * which made or will make sure of the summary bit in the same way; but it
 * checks the summary itself, so that once it returns the page is visible to
 * the next take, not only to some later one. Hence: a mark that completed
 * before a take began is reported by that take; one racing with it by that
 * take or the next; no bit appears that no mark set.
 *
 * Data: a marker writes a guest page, then marks it; the reader takes, then
 * copies the page. When the mark's OR happens, it orders the write before it
 * (a locked instruction). When the mark skips the OR because the bit was set,
 * only loads follow the write, and x86 lets a load pass an earlier store: the
 * take could clear the bit and the copy read the page before the write is
 * visible, and the page would never be reported again. So a take that found
 * anything runs membarrier(PRIVATE_EXPEDITED) before it returns, which makes
 * every running thread of the process execute a full barrier: any write that
 * preceded a skipped OR is then visible to the copy (user-space RCU's
 * asymmetric fence; the emulated DMA path uses the same trick). Without
 * membarrier the mark itself runs a full fence. Logs whose marks carry no
 * data of their own (order_data false) skip both.
 *
 * Worked example, 4096 pages: mark(70, 70) sets bit 6 of word 1 and bit 1 of
 * summary word 0; take sees summary word 0 = 0b10, exchanges it, exchanges
 * word 1 = 1 << 6, ORs it into bitmap word 1 and returns 1.
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <uiommu/bitmap.h>

#include "core/core_internal.h"
#include "dirty/dirty_internal.h"

static pthread_once_t membarrier_once = PTHREAD_ONCE_INIT;
static bool use_membarrier;

static void membarrier_register(void)
{
	use_membarrier = !syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0);
}

int dirty_log_init(struct dirty_log *log, uint64_t npages, bool order_data)
{
	memset(log, 0, sizeof(*log));
	if (!npages)
		return -EINVAL;
	pthread_once(&membarrier_once, membarrier_register);
	log->npages = npages;
	log->nwords = uiommu_bitmap_words(npages);
	log->nsum = uiommu_bitmap_words(log->nwords);
	log->order_data = order_data;
	log->bits = uiommu__calloc(log->nwords, sizeof(uint64_t));
	if (!log->bits)
		return -ENOMEM;
	log->summary = uiommu__calloc(log->nsum, sizeof(uint64_t));
	if (!log->summary)
		goto err_free_bits;
	return 0;

err_free_bits:
	uiommu__free(log->bits);
	log->bits = NULL;
	return -ENOMEM;
}

void dirty_log_fini(struct dirty_log *log)
{
	uiommu__free(log->summary);
	uiommu__free(log->bits);
	log->summary = NULL;
	log->bits = NULL;
}

static inline uint64_t word_mask(uint64_t first, uint64_t last, uint64_t w)
{
	unsigned int lo = w == first / 64 ? first % 64 : 0;
	unsigned int hi = w == last / 64 ? last % 64 : 63;

	return (~0ull >> (63 - hi)) & (~0ull << lo);
}

/* Sets the bits first..last of @map: one load per word, an OR only when needed. */
static inline void set_test_first(uint64_t *map, uint64_t first, uint64_t last)
{
	for (uint64_t w = first / 64; w <= last / 64; w++) {
		uint64_t m = word_mask(first, last, w);

		if ((__atomic_load_n(&map[w], __ATOMIC_SEQ_CST) & m) != m)
			__atomic_fetch_or(&map[w], m, __ATOMIC_SEQ_CST);
	}
}

void dirty_log_mark(struct dirty_log *log, uint64_t first, uint64_t last)
{
	UIOMMU_BUG_ON(first > last || last >= log->npages);
	if (log->order_data && unlikely(!use_membarrier))
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	set_test_first(log->bits, first, last);
	set_test_first(log->summary, first / 64, last / 64);
}

/* Moves the page words named by one summary word into @bitmap. */
static uint64_t take_words(struct dirty_log *log, uint64_t s, uint64_t names, uint64_t *bitmap)
{
	uint64_t n = 0;

	while (names) {
		uint64_t w = s * 64 + (uint64_t)__builtin_ctzll(names);
		uint64_t v;

		names &= names - 1;
		/* A word a take emptied after its summary bit was set again. */
		if (!__atomic_load_n(&log->bits[w], __ATOMIC_SEQ_CST))
			continue;
		v = __atomic_exchange_n(&log->bits[w], 0, __ATOMIC_SEQ_CST);
		bitmap[w] |= v;
		n += (uint64_t)__builtin_popcountll(v);
	}
	return n;
}

uint64_t dirty_log_take(struct dirty_log *log, uint64_t *bitmap)
{
	uint64_t n = 0;

	for (uint64_t s = 0; s < log->nsum; s++) {
		uint64_t names;

		if (!__atomic_load_n(&log->summary[s], __ATOMIC_SEQ_CST))
			continue;
		names = __atomic_exchange_n(&log->summary[s], 0, __ATOMIC_SEQ_CST);
		n += take_words(log, s, names, bitmap);
	}
	if (n && log->order_data && use_membarrier &&
	    syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0))
		use_membarrier = false; /* cannot happen once registered; marks fence from now */
	return n;
}

void dirty_log_clear(struct dirty_log *log)
{
	for (uint64_t s = 0; s < log->nsum; s++)
		__atomic_store_n(&log->summary[s], 0, __ATOMIC_SEQ_CST);
	for (uint64_t w = 0; w < log->nwords; w++)
		__atomic_store_n(&log->bits[w], 0, __ATOMIC_SEQ_CST);
}

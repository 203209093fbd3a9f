// SPDX-License-Identifier: MIT
/*
 * Fuzz target: the migration stream's receiver (src/migrate/stream_recv*.c).
 *
 * The input is a stream. It is parsed twice into two guest memories of
 * FUZZ_PAGES pages, each between PROT_NONE guard pages (a write outside
 * guest memory faults; ASan watches the parser's heap buffers):
 *  A. fed in one piece, then finish;
 *  B. fed in pieces whose sizes come from a generator seeded by the input,
 *     through feed() or written in place through direct()/commit().
 * Oracle, beyond "does not crash":
 *  - both parses end alike: same code and error offset (the message may
 *    differ: zstd may see a damaged frame at a different step);
 *  - a failure has a documented negative errno and a non-empty message;
 *  - pages outside the stream's layout are never written (they stay zero),
 *    and before a header is accepted nothing is written at all;
 *  - on success, both memories are identical, and the verification result
 *    is consistent (bad pages counted, ascending, inside the layout).
 *
 * This target is compiled with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION,
 * which makes the receiver accept any record check (see ms_check_ok), so
 * that mutations reach the parsing behind the checks; the unit tests cover
 * the checks themselves.
 *
 * Built with libFuzzer when the compiler is clang (fuzz_stream), and linked
 * with replay.c into replay_stream, which every build runs as a test over
 * corpus/stream (seeds written by gen_stream_corpus).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "rng.h"
#include "migrate/migrate_internal.h"

#define FUZZ_PAGES 64
#define FUZZ_PS 4096u
#define FUZZ_MEM (FUZZ_PAGES * FUZZ_PS)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void oracle(bool ok, const char *expr, int line)
{
	if (!ok) {
		fprintf(stderr, "fuzz_stream: %s:%d: %s\n", __FILE__, line, expr);
		abort();
	}
}

#define ORACLE(cond) oracle(!!(cond), #cond, __LINE__)

static uint8_t *guest_mem(void)
{
	uint8_t *m = mmap(NULL, FUZZ_MEM + 2 * FUZZ_PS, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ORACLE(m != MAP_FAILED);
	ORACLE(!mprotect(m, FUZZ_PS, PROT_NONE));
	ORACLE(!mprotect(m + FUZZ_PS + FUZZ_MEM, FUZZ_PS, PROT_NONE));
	return m + FUZZ_PS;
}

static struct uiommu_stream_receiver *receiver(uint8_t *mem)
{
	struct uiommu_stream_recv_cfg cfg = { .mem = mem, .mem_bytes = FUZZ_MEM,
					      .populated = true, .max_blob_bytes = 1 << 16,
					      .max_devices = 8 };
	struct uiommu_stream_receiver *r;

	memset(mem, 0, FUZZ_MEM);
	ORACLE(!uiommu_stream_receiver_create(&cfg, &r));
	return r;
}

static int feed_split(struct uiommu_stream_receiver *r, const uint8_t *data, size_t size)
{
	uint64_t rng = uiommu__hash(data, size);
	size_t pos = 0;
	int rc = 0;

	while (pos < size && !rc) {
		size_t room, n = 1 + splitmix64(&rng) % (splitmix64(&rng) % 2 ? 16 : 5000);
		void *buf;

		n = n > size - pos ? size - pos : n;
		uiommu_stream_recv_direct(r, &buf, &room);
		if (room && splitmix64(&rng) % 2) {
			n = n > room ? room : n;
			memcpy(buf, data + pos, n);
			rc = uiommu_stream_recv_commit(r, n);
		} else {
			rc = uiommu_stream_recv_feed(r, data + pos, n);
		}
		pos += n;
	}
	return rc ? rc : uiommu_stream_recv_finish(r);
}

static bool documented(int rc)
{
	return rc == -EBADMSG || rc == -EPROTONOSUPPORT || rc == -EOPNOTSUPP || rc == -EPROTO ||
	       rc == -ERANGE || rc == -EMSGSIZE || rc == -ENODATA;
}

static bool in_layout(const struct uiommu_stream_layout *lay, uint64_t gpa)
{
	for (unsigned int i = 0; i < lay->nr_ranges; i++) {
		if (gpa >= lay->ranges[i].gpa && gpa - lay->ranges[i].gpa < lay->ranges[i].bytes)
			return true;
	}
	return false;
}

/* Nothing outside the layout (everything, without one) was written. */
static void check_untouched(const struct uiommu_stream_receiver *r, const uint8_t *mem)
{
	struct uiommu_stream_layout lay = { 0 };
	bool have = !uiommu_stream_recv_layout(r, &lay);

	for (uint64_t gpa = 0; gpa < FUZZ_MEM; gpa += FUZZ_PS) {
		if (!have || !in_layout(&lay, gpa))
			ORACLE(uiommu_stream_page_is_zero(mem + gpa, FUZZ_PS));
	}
}

static void check_verify(const struct uiommu_stream_receiver *r)
{
	struct uiommu_stream_layout lay;
	struct uiommu_stream_verify v;

	uiommu_stream_recv_get_verify(r, &v);
	ORACLE(!uiommu_stream_recv_layout(r, &lay));
	ORACLE(v.nr_bad <= UIOMMU_STREAM_MAX_BAD && v.nr_bad <= v.mismatched);
	ORACLE(!v.ok || (v.checked && v.digest_match && !v.mismatched));
	ORACLE(v.pages == lay.pages || !v.checked);
	for (unsigned int i = 0; i < v.nr_bad; i++) {
		ORACLE(in_layout(&lay, v.bad_gpa[i]));
		ORACLE(!i || v.bad_gpa[i] > v.bad_gpa[i - 1]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *mem_a, *mem_b;
	struct uiommu_stream_receiver *a, *b;
	const struct uiommu_stream_error *ea, *eb;
	int rca, rcb;

	if (!mem_a) {
		mem_a = guest_mem();
		mem_b = guest_mem();
	}
	a = receiver(mem_a);
	b = receiver(mem_b);
	rca = uiommu_stream_recv_feed(a, data, size);
	if (!rca)
		rca = uiommu_stream_recv_finish(a);
	rcb = feed_split(b, data, size);
	ea = uiommu_stream_recv_error(a);
	eb = uiommu_stream_recv_error(b);
	ORACLE(rca == rcb && ea->code == rca && ea->offset == eb->offset);
	ORACLE(!rca || (documented(rca) && ea->msg[0] && eb->msg[0]));
	ORACLE(memchr(ea->msg, '\0', sizeof(ea->msg)) && memchr(eb->msg, '\0', sizeof(eb->msg)));
	check_untouched(a, mem_a);
	check_untouched(b, mem_b);
	if (!rca) {
		ORACLE(uiommu_stream_recv_done(a) && uiommu_stream_recv_done(b));
		ORACLE(!memcmp(mem_a, mem_b, FUZZ_MEM));
		check_verify(a);
	}
	uiommu_stream_receiver_destroy(a);
	uiommu_stream_receiver_destroy(b);
	return 0;
}

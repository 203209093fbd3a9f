// SPDX-License-Identifier: MIT
/*
 * Fuzz target: the emulated DMA device's state stream parser
 * (dmadev_stream_parse() in src/vm/dmadev_stream.c), through the calls a
 * VMM makes with bytes from the network: uiommu_dmadev_load() and
 * uiommu_dmadev_mig_write() in RESUMING, then RESUMING -> STOP.
 *
 * One device shaped as fuzz_vm.h says, made once and kept quiesced: each
 * input starts from STOP (an ERROR left by the previous input is reset, with
 * the workload idled first so that the device does not DMA meanwhile). The
 * input is copied into a heap buffer of exactly its size (ASan sees any read
 * past it) and written twice:
 *  A. in one piece with load, then RESUMING -> STOP;
 *  B. in pieces whose sizes come from a generator seeded by the input, with
 *     mig_write, stopping at the first refused piece, then RESUMING -> STOP.
 * Each input is tried as it is and, when that changes it, with the
 * checksum of every section repaired (mutations rarely keep one right, and
 * the checks of every field come after it).
 * Oracle, beyond "does not crash":
 *  - every call returns 0 or -EINVAL;
 *  - a refused load changes nothing: the device saves the same stream as
 *    before, and RESUMING -> STOP with nothing written succeeds;
 *  - an accepted load is the stream the device then saves, byte for byte
 *    (the stream is canonical), and verify terminates;
 *  - B agrees with A: if A accepted, B accepts every piece and ends in the
 *    same state; if A refused, B refuses a piece or the end of RESUMING
 *    (which leaves the device in ERROR), unless the input is empty.
 *
 * Built with libFuzzer when the compiler is clang (fuzz_dmadev_state), and
 * linked with replay.c into replay_dmadev_state, which every build runs as a
 * test over corpus/dmadev_state (seeds saved by gen_vm_corpus).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "fuzz_vm.h"
#include "rng.h"
#include "vm/dmadev_internal.h"

#define SAVE_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct uiommu_dmadev *dev;

static void setup(void)
{
	void *mem =
	    mmap(NULL, FUZZ_DEV_MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct uiommu_dmadev_cfg cfg = fuzz_dev_cfg(mem, UIOMMU_DMADEV_IDLE);

	ORACLE(mem != MAP_FAILED);
	ORACLE(!uiommu_dmadev_create(&cfg, &dev));
	ORACLE(!uiommu_dmadev_set_state(dev, VFIO_DEVICE_STATE_STOP));
}

/* Back to STOP from wherever the last input left it (STOP, RESUMING, ERROR), without DMA. */
static void to_stop(void)
{
	struct uiommu_dmadev_workload idle = {.pattern = UIOMMU_DMADEV_IDLE};

	/* B may have stopped at a refused piece: what it staged decides how RESUMING ends. */
	if (uiommu_dmadev_get_state(dev) == VFIO_DEVICE_STATE_RESUMING) {
		int rc = uiommu_dmadev_set_state(dev, VFIO_DEVICE_STATE_STOP);

		ORACLE(rc == 0 || rc == -EINVAL);
	}
	if (uiommu_dmadev_get_state(dev) == VFIO_DEVICE_STATE_ERROR) {
		ORACLE(!uiommu_dmadev_set_workload(dev, &idle));
		uiommu_dmadev_reset(dev);
	}
	ORACLE(!uiommu_dmadev_set_state(dev, VFIO_DEVICE_STATE_STOP));
}

/* The device's whole stream, through a STOP_COPY session; from and back to STOP. */
static size_t save(uint8_t *buf)
{
	size_t len = 0, got;

	ORACLE(!uiommu_dmadev_set_state(dev, VFIO_DEVICE_STATE_STOP_COPY));
	do {
		ORACLE(!uiommu_dmadev_mig_read(dev, buf + len, SAVE_MAX - len, &got));
		len += got;
	} while (got);
	ORACLE(!uiommu_dmadev_set_state(dev, VFIO_DEVICE_STATE_STOP));
	return len;
}

static void check_accepted(const uint8_t *blob, size_t size)
{
	static uint8_t after[SAVE_MAX];
	struct uiommu_dmadev_verify v;

	ORACLE(size == save(after) && !memcmp(after, blob, size));
	ORACLE(!uiommu_dmadev_verify(dev, &v));
}

/* A: load in one piece. Returns its result. */
static int load_whole(const uint8_t *blob, size_t size)
{
	static uint8_t before[SAVE_MAX], after[SAVE_MAX];
	size_t before_len = save(before);
	int rc;

	ORACLE(!uiommu_dmadev_set_state(dev, VFIO_DEVICE_STATE_RESUMING));
	rc = uiommu_dmadev_load(dev, blob, size);
	ORACLE(rc == 0 || rc == -EINVAL);
	ORACLE(!uiommu_dmadev_set_state(dev, VFIO_DEVICE_STATE_STOP));
	if (rc)
		ORACLE(save(after) == before_len && !memcmp(after, before, before_len));
	else
		check_accepted(blob, size);
	return rc;
}

/* B: mig_write in pieces; true when every piece and the end of RESUMING were accepted. */
static bool load_split(const uint8_t *blob, size_t size)
{
	uint64_t rng = size;
	size_t pos = 0;
	int rc = 0;

	for (size_t i = 0; i < size && i < 64; i++)
		rng = rng * 31 + blob[i];
	ORACLE(!uiommu_dmadev_set_state(dev, VFIO_DEVICE_STATE_RESUMING));
	while (pos < size && !rc) {
		size_t n = 1 + splitmix64(&rng) % (splitmix64(&rng) % 2 ? 24 : 300);

		n = n > size - pos ? size - pos : n;
		rc = uiommu_dmadev_mig_write(dev, blob + pos, n);
		ORACLE(rc == 0 || rc == -EINVAL);
		pos += n;
	}
	if (rc)
		return false;
	rc = uiommu_dmadev_set_state(dev, VFIO_DEVICE_STATE_STOP);
	ORACLE(rc == 0 || rc == -EINVAL);
	ORACLE(!rc || uiommu_dmadev_get_state(dev) == VFIO_DEVICE_STATE_ERROR);
	return !rc;
}

static void check_input(const uint8_t *blob, size_t size)
{
	bool whole_ok, split_ok;

	to_stop();
	whole_ok = !load_whole(blob, size);
	split_ok = load_split(blob, size);
	ORACLE(whole_ok ? split_ok : !split_ok || !size);
	if (whole_ok)
		check_accepted(blob, size);
}

/*
 * Rewrites the checksum of every section whose header frames a payload that
 * is there; true if one changed. A mutation almost never keeps a checksum
 * right, and the field checks live behind it.
 */
static bool repair_checksums(uint8_t *buf, size_t size)
{
	bool changed = false;
	size_t off = 0;

	while (size - off >= 24) {
		uint32_t len;
		uint64_t sum;

		memcpy(&len, buf + off + 8, 4);
		if (len % 8 || len > size - off - 24)
			break;
		sum = dmadev_stream_checksum(buf + off, len / 8);
		changed |= memcmp(buf + off + 16, &sum, 8) != 0;
		memcpy(buf + off + 16, &sum, 8);
		off += 24 + len;
	}
	return changed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *blob = malloc(size ? size : 1);

	if (!dev)
		setup();
	ORACLE(blob);
	memcpy(blob, data, size);
	check_input(blob, size);
	if (repair_checksums(blob, size))
		check_input(blob, size);
	free(blob);
	return 0;
}

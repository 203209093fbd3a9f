// SPDX-License-Identifier: MIT
/*
 * Writes the seed corpora of fuzz_vmstate and fuzz_dmadev_state: state
 * saved by the real code from machines shaped as fuzz_vm.h says, after the
 * workloads that give the saved fields different shapes.
 *
 *   gen_vm_corpus <corpus dir>   (writes <dir>/vmstate and <dir>/dmadev_state;
 *                                 the committed seeds are tests/fuzz/corpus)
 *
 * vCPU blobs: a booted VM that never ran, then SEQ, RANDOM at a rate,
 * HOTSET, a finished VERIFY and IDLE after writing, each paused and saved;
 * with software vCPUs always, and with KVM vCPUs too where /dev/kvm works
 * (the KVM seeds lead fuzz_vmstate's KVM decode to its sections). Device
 * streams: a device that never wrote, NET, BLOCK, MIXED at a rate and
 * throttled, IDLE after writing, and PRE_COPY's initial data alone. The
 * runs are short and timing-dependent: the seeds differ from one run of the
 * generator to the next, which is fine for seeds.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "fuzz_vm.h"

struct vm_seed {
	const char *name;
	enum uiommu_workload_kind kind;
	uint64_t pages_per_sec;
	uint64_t pages; /* wait until the guest wrote this many; 0: do not start */
	bool then_idle, then_verify;
};

static const struct vm_seed vm_seeds[] = {
    {"booted", UIOMMU_WL_IDLE, 0, 0, false, false},
    {"seq", UIOMMU_WL_SEQ, 0, 3000, false, false},
    {"random_rate", UIOMMU_WL_RANDOM, 50000, 300, false, false},
    {"hotset", UIOMMU_WL_HOTSET, 0, 2000, false, false},
    {"verified", UIOMMU_WL_SEQ, 0, 1000, false, true},
    {"idle_after_random", UIOMMU_WL_RANDOM, 0, 1000, true, false},
};

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000};

	nanosleep(&ts, NULL);
}

static int write_file(const char *dir, const char *sub, const char *name, const void *p,
		      uint64_t len)
{
	char path[4096];
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "%s/%s/%s.bin", dir, sub, name);
	f = fopen(path, "wb");
	if (!f)
		return -EIO;
	rc = fwrite(p, 1, len, f) == len ? 0 : -EIO;
	fclose(f);
	printf("%s: %llu bytes\n", path, (unsigned long long)len);
	return rc;
}

/* Waits (at most 10 s) until @done says the VM got there. */
static int vm_wait(struct uiommu_vm *vm, uint64_t pages, bool verify)
{
	struct uiommu_vm_stats st;

	for (int i = 0; i < 10000; i++, sleep_ms(1)) {
		uiommu_vm_get_stats(vm, &st);
		if (verify ? st.verify_done : st.pages_written >= pages)
			return 0;
	}
	return -ETIMEDOUT;
}

static int vm_switch(struct uiommu_vm *vm, enum uiommu_workload_kind kind, bool verify)
{
	struct uiommu_workload wl = {.kind = kind};
	int rc = uiommu_vm_start(vm, &wl);

	sleep_ms(20); /* every vCPU takes the command at its next control exit */
	return rc ? rc : vm_wait(vm, 0, verify);
}

static int vm_run_seed(struct uiommu_vm *vm, const struct vm_seed *sd)
{
	struct uiommu_workload wl = {.kind = sd->kind,
				     .pages_per_sec = sd->pages_per_sec,
				     .hot_pages_pct = 10,
				     .hot_writes_pct = 90,
				     .seed = 7};
	int rc;

	if (!sd->pages)
		return 0;
	rc = uiommu_vm_start(vm, &wl);
	if (!rc)
		rc = vm_wait(vm, sd->pages, false);
	if (!rc && sd->then_idle)
		rc = vm_switch(vm, UIOMMU_WL_IDLE, false);
	if (!rc && sd->then_verify)
		rc = vm_switch(vm, UIOMMU_WL_VERIFY, true);
	return rc ? rc : uiommu_vm_pause(vm);
}

static int vm_seed(const char *dir, enum uiommu_vm_backend backend, const struct vm_seed *sd)
{
	struct uiommu_vm_cfg cfg = fuzz_vm_cfg(backend, false);
	struct uiommu_vm *vm;
	char name[64];
	uint64_t len;
	void *blob;
	int rc;

	rc = uiommu_vm_create(&cfg, &vm);
	if (rc)
		return rc;
	rc = vm_run_seed(vm, sd);
	if (!rc)
		rc = uiommu_vm_save_vcpus(vm, &blob, &len);
	uiommu_vm_destroy(vm);
	if (rc)
		return rc;
	snprintf(name, sizeof(name), "%s_%s", backend == UIOMMU_VM_KVM ? "kvm" : "soft", sd->name);
	rc = write_file(dir, "vmstate", name, blob, len);
	free(blob);
	return rc;
}

struct dev_seed {
	const char *name;
	enum uiommu_dmadev_pattern pattern;
	uint64_t rate;
	double throttle;
	uint64_t writes; /* wait for this many DMA writes */
	bool then_idle, initial_only;
};

static const struct dev_seed dev_seeds[] = {
    {"fresh", UIOMMU_DMADEV_IDLE, 0, 0, 0, false, false},
    {"net", UIOMMU_DMADEV_NET, 0, 0, 100, false, false},
    {"block", UIOMMU_DMADEV_BLOCK, 0, 0, 100, false, false},
    {"mixed_rate_throttled", UIOMMU_DMADEV_MIXED, 20000000, 0.25, 50, false, false},
    {"idle_after_net", UIOMMU_DMADEV_NET, 0, 0, 40, true, false},
    {"precopy_initial", UIOMMU_DMADEV_IDLE, 0, 0, 0, false, true},
};

static int dev_wait(struct uiommu_dmadev *dev, uint64_t writes)
{
	struct uiommu_dmadev_stats st;

	for (int i = 0; i < 10000; i++, sleep_ms(1)) {
		uiommu_dmadev_get_stats(dev, &st);
		if (st.writes >= writes)
			return 0;
	}
	return -ETIMEDOUT;
}

/* The stream a destination would be written: all of it, or PRE_COPY's initial data. */
static int dev_read(struct uiommu_dmadev *dev, const struct dev_seed *sd, uint8_t *buf, size_t *len)
{
	size_t got = 0;
	int rc;

	rc = uiommu_dmadev_set_state(dev, sd->initial_only ? UIOMMU_VFIO_STATE_PRE_COPY
							   : VFIO_DEVICE_STATE_STOP_COPY);
	*len = 0;
	do {
		rc = rc ? rc : uiommu_dmadev_mig_read(dev, buf + *len, 4096 - *len, &got);
		*len += rc ? 0 : got;
	} while (!rc && got);
	return rc == -ENOMSG ? 0 : rc;
}

static int dev_seed(const char *dir, const struct dev_seed *sd, uint8_t *mem)
{
	struct uiommu_dmadev_cfg cfg = fuzz_dev_cfg(mem, sd->pattern);
	struct uiommu_dmadev_workload idle = {.pattern = UIOMMU_DMADEV_IDLE};
	struct uiommu_dmadev *dev;
	uint8_t buf[4096];
	size_t len;
	int rc;

	memset(mem, 0, FUZZ_DEV_MEM);
	cfg.workload.rate_bytes_per_sec = sd->rate;
	rc = uiommu_dmadev_create(&cfg, &dev);
	if (rc)
		return rc;
	rc = uiommu_dmadev_set_throttle(dev, sd->throttle);
	if (!rc)
		rc = dev_wait(dev, sd->writes);
	if (!rc && sd->then_idle)
		rc = uiommu_dmadev_set_workload(dev, &idle);
	if (!rc)
		rc = dev_read(dev, sd, buf, &len);
	uiommu_dmadev_destroy(dev);
	return rc ? rc : write_file(dir, "dmadev_state", sd->name, buf, len);
}

static int fail(const char *what, const char *name, int rc)
{
	fprintf(stderr, "gen_vm_corpus: %s %s: %s\n", what, name, strerror(-rc));
	return 1;
}

int main(int argc, char **argv)
{
	uint8_t *mem =
	    mmap(NULL, FUZZ_DEV_MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int rc;

	if (argc != 2 || mem == MAP_FAILED) {
		fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
		return 2;
	}
	for (size_t i = 0; i < sizeof(vm_seeds) / sizeof(vm_seeds[0]); i++) {
		rc = vm_seed(argv[1], UIOMMU_VM_SOFT, &vm_seeds[i]);
		if (!rc && uiommu_kvm_available())
			rc = vm_seed(argv[1], UIOMMU_VM_KVM, &vm_seeds[i]);
		if (rc)
			return fail("vCPU state", vm_seeds[i].name, rc);
	}
	for (size_t i = 0; i < sizeof(dev_seeds) / sizeof(dev_seeds[0]); i++) {
		rc = dev_seed(argv[1], &dev_seeds[i], mem);
		if (rc)
			return fail("device state", dev_seeds[i].name, rc);
	}
	munmap(mem, FUZZ_DEV_MEM);
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * The DMA engine of emulated devices: what makes a device configured with
 * dma=<start>-<last>@<rate>[:seq|random] write into guest memory on its own,
 * the way a NIC receiving packets would, so that a VMM's dirty tracking has
 * something to find.
 *
 * While a device is attached, one thread per device writes chunks of up to
 * DMA_CHUNK bytes (the byte 0xa5) into the IOVA window through the device's
 * write function (uiommu_device_dma_write() for cdevs,
 * uiommu_vfio_device_dma_write() for devices of VFIO groups, which records
 * the write in the device's DMA log and, for kind=mdev, writes through the
 * container), at `rate` bytes per second on average. "seq" walks the window
 * chunk by chunk and wraps; "random" picks a chunk-aligned offset each time.
 * A write that hits an unmapped or read-only IOVA is an IO page fault: the
 * library records it and writes nothing; the thread goes on.
 *
 * Pacing is a token bucket refilled from CLOCK_MONOTONIC, capped at 100 ms of
 * backlog so that a thread that was descheduled does not burst. The thread
 * sleeps between chunks (at most 10 ms, so a stop takes effect quickly); it
 * blocks every signal so that the program's signals go to its own threads.
 *
 * UIOMMU_DMA_LOG=<path>: every write appends one line, written with a single
 * write(2) on an O_APPEND fd so that lines of several devices never mix:
 *     <device> iova=0x<hex> len=0x<hex> rc=<0 or -errno>
 * rc=0 means the bytes landed (and are dirty if tracking was on); rc=-14
 * (EFAULT) and rc=-1 (EPERM) are faults. The variable is read when the first
 * DMA thread of the process starts. A line is written after its write
 * completed, so a reader that wants log and dirty bitmap to agree stops the
 * DMA first (detach) and then harvests.
 *
 * Threads: start and stop run under the device lock (devices.c); the thread
 * itself touches only its device's DMA master, which has no other user
 * (devices of VFIO groups: the library's locks cover the rest).
 * After fork() the thread does not exist in the child: forget() drops it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "uapi/shim/shim_internal.h"

#define DMA_CHUNK 4096u
#define DMA_BYTE 0xa5
#define DMA_MIN_SLEEP_NS 100000ull
#define DMA_MAX_SLEEP_NS 10000000ull
#define DMA_MAX_BACKLOG_NS 100000000ull
#define NS_PER_S 1000000000ull

static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static int log_fd = -1; /* written once under log_once */

static void dma_log_open(void)
{
	const char *path = getenv("UIOMMU_DMA_LOG");

	if (!path || !*path)
		return;
	log_fd = uiommu__shim_real()->openat(AT_FDCWD, path,
					       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (log_fd < 0)
		uiommu__shim_config_error("UIOMMU_DMA_LOG=%s: %s", path, strerror(errno));
}

static void dma_log(const char *name, uint64_t iova, size_t len, int rc)
{
	char line[128];
	int n;

	if (log_fd < 0)
		return;
	n = snprintf(line, sizeof(line), "%s iova=0x%llx len=0x%zx rc=%d\n", name,
		     (unsigned long long)iova, len, rc);
	if (n > 0 && (size_t)n < sizeof(line) && write(log_fd, line, (size_t)n) < 0) {
		/* Nothing to do: the log is a test aid, the DMA goes on. */
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / NS_PER_S), .tv_nsec = (long)(ns % NS_PER_S) };

	nanosleep(&ts, NULL);
}

static uint64_t next_random(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

struct dma_walk {
	uint64_t next_off; /* seq: offset of the next chunk */
	uint64_t rng;      /* random: generator state */
};

/* The next chunk of the window: its IOVA, and its length in *len. */
static uint64_t dma_pick(const struct uiommu_devcfg_dma *c, struct dma_walk *w, size_t *len)
{
	uint64_t span = c->last - c->start; /* window length - 1: cannot overflow */
	uint64_t off, rem;

	if (c->pattern == UIOMMU_DEVCFG_DMA_RANDOM) {
		off = (next_random(&w->rng) % (span / DMA_CHUNK + 1)) * DMA_CHUNK;
	} else {
		off = w->next_off;
		w->next_off = span - off < DMA_CHUNK ? 0 : off + DMA_CHUNK;
	}
	rem = span - off; /* bytes after the first one */
	*len = rem >= DMA_CHUNK - 1 ? DMA_CHUNK : (size_t)rem + 1;
	return c->start + off;
}

/* Refills the token bucket; returns the bytes that may be written now. */
static double dma_refill(const struct uiommu_devcfg_dma *c, double budget, uint64_t *last)
{
	uint64_t now = now_ns();
	double cap = (double)c->rate_bytes * DMA_MAX_BACKLOG_NS / NS_PER_S + DMA_CHUNK;

	budget += (double)c->rate_bytes * (double)(now - *last) / NS_PER_S;
	*last = now;
	return budget > cap ? cap : budget;
}

static void *dma_main(void *opaque)
{
	struct shim_dma *dma = opaque;
	const struct uiommu_devcfg_dma *c = &dma->cfg->dma;
	struct dma_walk walk = { .rng = now_ns() ^ (uintptr_t)dma };
	uint8_t buf[DMA_CHUNK];
	uint64_t last = now_ns(), iova = 0, wait;
	double budget = 0;
	size_t len = 0;
	int rc;

	memset(buf, DMA_BYTE, sizeof(buf));
	while (!__atomic_load_n(&dma->stop, __ATOMIC_ACQUIRE)) {
		if (!len)
			iova = dma_pick(c, &walk, &len);
		budget = dma_refill(c, budget, &last);
		if (budget < (double)len) {
			wait = (uint64_t)(((double)len - budget) * NS_PER_S / (double)c->rate_bytes);
			wait = wait < DMA_MIN_SLEEP_NS ? DMA_MIN_SLEEP_NS : wait;
			sleep_ns(wait > DMA_MAX_SLEEP_NS ? DMA_MAX_SLEEP_NS : wait);
			continue;
		}
		rc = dma->write(dma->opaque, iova, buf, len);
		dma_log(dma->cfg->name, iova, len, rc);
		budget -= (double)len;
		len = 0;
	}
	return NULL;
}

int uiommu__shim_dma_start(struct shim_dma *dma, const struct uiommu_devcfg_dev *cfg,
			   shim_dma_write_fn write, void *opaque)
{
	sigset_t all, old;
	int ret;

	if (dma->running || !cfg->dma.enabled)
		return 0;
	pthread_once(&log_once, dma_log_open);
	dma->cfg = cfg;
	dma->write = write;
	dma->opaque = opaque;
	__atomic_store_n(&dma->stop, 0, __ATOMIC_RELAXED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&dma->thread, NULL, dma_main, dma);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		return -ret;
	dma->running = true;
	dma->pid = getpid();
	return 0;
}

void uiommu__shim_dma_stop(struct shim_dma *dma)
{
	if (!dma->running)
		return;
	dma->running = false;
	/* A child of fork() has the record but not the thread. */
	if (dma->pid != getpid())
		return;
	__atomic_store_n(&dma->stop, 1, __ATOMIC_RELEASE);
	pthread_join(dma->thread, NULL);
}

void uiommu__shim_dma_forget(struct shim_dma *dma)
{
	dma->running = false;
}

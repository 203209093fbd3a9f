// SPDX-License-Identifier: MIT
/*
 * Pinning mdev devices: what pin=N in UIOMMU_DEVICES makes a kind=mdev
 * device do, as a mediated device driver that does not track its own writes
 * but pins the pages it uses (vfio_pin_pages) and writes into them.
 *
 * The pinned pages are the first N CPU pages (4 KiB) of the device's DMA
 * window. While a device fd is open the device's DMA thread keeps them
 * pinned through the container (uiommu_vfio_pin_pages, at most 512 pages a
 * call, as the kernel allows), and a DMA chunk that falls in a pinned page is
 * written into the page's host address, as a driver writes into the page it
 * pinned, not through the container's rw path; chunks elsewhere in the
 * window, or in a page not pinned at the moment, go through rw as for any
 * mdev device. The type1 container reports pinned pages dirty in every
 * bitmap while they stay pinned, and once more after they are unpinned
 * (uapi-spec §1.6): that is the only record of what the device wrote there.
 *
 * Pages that are not mapped cannot be pinned: the thread tries again every
 * PIN_RETRY_NS, so a device opened before the VMM maps its memory pins it
 * once mapped. UNMAP of an entry with pins calls the device's dma_unmap op
 * (the kernel's unmap notifier) without the container lock; it unpins every
 * pinned page in the range, which lets the unmap proceed, and holds off the
 * next pin attempt by PIN_RETRY_NS so that the thread does not pin the page
 * again before the unmap has removed it (the container gives up with -EBUSY
 * after 10 notifications of one entry). The last close of the device's fds
 * stops the thread and unpins everything.
 *
 * Locking: p->lock protects the page table below and is held across a pin,
 * an unpin and a write into a pinned page, so a page is never written after
 * its unpin. Order: p->lock, then the library's locks (group, container).
 * The notifier runs with no library lock held, so it may take p->lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "core/core_internal.h"
#include "uapi/shim/shim_internal.h"

#define PIN_PAGE UIOMMU_DEVCFG_PIN_PAGE
#define PIN_MAX_PER_CALL 512u /* VFIO_PIN_PAGES_MAX_ENTRIES */
#define PIN_RETRY_NS 10000000ull

static uint64_t pins_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int uiommu__shim_pins_init(struct shim_pins *p, struct uiommu_vfio_emudev *emu,
			   const struct uiommu_devcfg_dev *cfg)
{
	p->pages = calloc(cfg->pin_pages, sizeof(*p->pages));
	if (!p->pages)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	p->emu = emu;
	p->iova = cfg->dma.start;
	p->npages = cfg->pin_pages;
	p->nr_pinned = 0;
	p->retry_ns = 0;
	return 0;
}

void uiommu__shim_pins_fini(struct shim_pins *p)
{
	if (!p->pages)
		return;
	pthread_mutex_destroy(&p->lock);
	free(p->pages);
	p->pages = NULL;
}

/* Unpins the pinned pages among [first, end) (indexes), a run at a time. */
static void pins_drop(struct shim_pins *p, uint32_t first, uint32_t end)
{
	for (uint32_t i = first; i < end;) {
		uint32_t j = i;

		while (j < end && j - i < PIN_MAX_PER_CALL && p->pages[j])
			p->pages[j++] = NULL;
		if (j > i) {
			uiommu_vfio_unpin_pages(p->emu, p->iova + i * PIN_PAGE, (int)(j - i));
			p->nr_pinned -= j - i;
		}
		i = j > i ? j : i + 1;
	}
}

/* Pins every page not pinned yet, a run at a time; stops at the first refusal. */
static void pins_fill(struct shim_pins *p)
{
	uint64_t now = pins_now_ns();

	if (p->nr_pinned == p->npages || now < p->retry_ns)
		return;
	for (uint32_t i = 0; i < p->npages;) {
		uint32_t j = i;
		int ret;

		while (j < p->npages && j - i < PIN_MAX_PER_CALL && !p->pages[j])
			j++;
		if (j == i) {
			i++;
			continue;
		}
		ret = uiommu_vfio_pin_pages(p->emu, p->iova + i * PIN_PAGE, (int)(j - i),
					    UIOMMU_PROT_READ | UIOMMU_PROT_WRITE, &p->pages[i]);
		if (ret < 0) {
			/* Nothing stays pinned, whatever the call stored. */
			for (uint32_t k = i; k < j; k++)
				p->pages[k] = NULL;
			/* Not mapped (yet), or being unmapped: later. */
			p->retry_ns = now + PIN_RETRY_NS;
			return;
		}
		p->nr_pinned += j - i;
		i = j;
	}
}

int uiommu__shim_pins_write(struct shim_pins *p, uint64_t iova, const void *buf, size_t len)
{
	uint64_t off = iova - p->iova, k = off / PIN_PAGE;
	int ret = -ENOENT;

	/* Only a chunk inside one pinned page is written through its pin. */
	if (iova < p->iova || k >= p->npages || (off + len - 1) / PIN_PAGE != k)
		return -ENOENT;
	pthread_mutex_lock(&p->lock);
	pins_fill(p);
	if (p->pages[k])
		ret = uiommu__copy_to_user((char *)p->pages[k] + off % PIN_PAGE, buf, len);
	pthread_mutex_unlock(&p->lock);
	return ret;
}

void uiommu__shim_pins_unmap(struct shim_pins *p, uint64_t iova, uint64_t length)
{
	uint64_t last = iova + length - 1, plast = p->iova + (uint64_t)p->npages * PIN_PAGE - 1;

	if (!p->pages || last < p->iova || iova > plast)
		return;
	pthread_mutex_lock(&p->lock);
	iova = iova > p->iova ? iova : p->iova;
	last = last < plast ? last : plast;
	pins_drop(p, (uint32_t)((iova - p->iova) / PIN_PAGE),
		  (uint32_t)((last - p->iova) / PIN_PAGE) + 1);
	p->retry_ns = pins_now_ns() + PIN_RETRY_NS;
	pthread_mutex_unlock(&p->lock);
}

void uiommu__shim_pins_release(struct shim_pins *p)
{
	if (!p->pages)
		return;
	pthread_mutex_lock(&p->lock);
	pins_drop(p, 0, p->npages);
	p->retry_ns = 0;
	pthread_mutex_unlock(&p->lock);
}

void uiommu__shim_pins_lock(struct shim_pins *p)
{
	if (p->pages)
		pthread_mutex_lock(&p->lock);
}

void uiommu__shim_pins_unlock(struct shim_pins *p)
{
	if (p->pages)
		pthread_mutex_unlock(&p->lock);
}

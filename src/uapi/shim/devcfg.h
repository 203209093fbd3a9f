/* SPDX-License-Identifier: MIT */
/*
 * UIOMMU_DEVICES, the description of the emulated devices that the LD_PRELOAD
 * shim serves as /dev/vfio/devices/vfioN, or behind VFIO groups /dev/vfio/N.
 * The grammar is in devcfg.c.
 *
 * The parser is pure (no allocation, no globals, no I/O) so that unit tests
 * and the fuzzer can drive it directly.
 */
#ifndef UIOMMU_SHIM_DEVCFG_H
#define UIOMMU_SHIM_DEVCFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uiommu/iommu.h>
#include <uiommu/iommufd.h>
#include <uiommu/iova_list.h>

#define UIOMMU_DEVCFG_MAX_DEVICES 32
#define UIOMMU_DEVCFG_MAX_RESERVED 16
#define UIOMMU_DEVCFG_NAME_MAX 31
#define UIOMMU_DEVCFG_MAX_PASID_LOG2 20
/* VFIO group numbers: /dev/vfio/0 to /dev/vfio/65535. */
#define UIOMMU_DEVCFG_MAX_GROUP 65535
/* pin=: at most 256 MiB of 4 KiB pages pinned per device. */
#define UIOMMU_DEVCFG_MAX_PIN 65536
#define UIOMMU_DEVCFG_PIN_PAGE 4096ull
/* Both page-table formats translate 48-bit IOVAs. */
#define UIOMMU_DEVCFG_MAX_IOVA ((1ull << 48) - 1)

enum uiommu_devcfg_pattern {
	UIOMMU_DEVCFG_DMA_SEQ = 0,
	UIOMMU_DEVCFG_DMA_RANDOM = 1,
};

/* The DMA a device performs on its own while it is attached. */
struct uiommu_devcfg_dma {
	bool enabled;
	uint64_t start;          /* IOVA window, inclusive */
	uint64_t last;
	uint64_t rate_bytes;     /* bytes per second, >= 1 */
	enum uiommu_devcfg_pattern pattern;
};

struct uiommu_devcfg_dev {
	char name[UIOMMU_DEVCFG_NAME_MAX + 1];
	enum uiommu_pt_format format;
	uint64_t pgsize_bitmap;  /* 0: every size of the format */
	bool has_aperture;       /* false: the whole IOVA space of the format */
	uint64_t aperture_start;
	uint64_t aperture_last;
	struct uiommu_iova_range reserved[UIOMMU_DEVCFG_MAX_RESERVED];
	size_t nr_reserved;
	bool dirty;
	uint8_t pasid_log2;
	struct uiommu_devcfg_dma dma;
	bool has_group;          /* served in VFIO group /dev/vfio/<group>, not as a cdev */
	uint32_t group;
	bool mdev;               /* kind=mdev: emulated, DMA through the container */
	bool dmalog;             /* logs its own DMA writes (VFIO_DEVICE_FEATURE) */
	uint32_t pin_pages;      /* pin=: pages pinned from dma.start (kind=mdev), 0: none */
};

struct uiommu_devcfg {
	size_t nr;
	struct uiommu_devcfg_dev dev[UIOMMU_DEVCFG_MAX_DEVICES];
};

struct uiommu_devcfg_err {
	size_t offset;           /* byte offset in the spec where the problem starts */
	char msg[200];           /* one line, no trailing newline */
};

/**
 * uiommu__devcfg_parse() - Parse a UIOMMU_DEVICES value.
 * @spec: the value; "" means no devices
 * @cfg: filled on success; unspecified on failure
 * @err: on failure, where and what (may be NULL)
 *
 * Return: 0, or -EINVAL with @err filled.
 */
int uiommu__devcfg_parse(const char *spec, struct uiommu_devcfg *cfg,
			 struct uiommu_devcfg_err *err);

/*
 * The hwdev configuration of a parsed device. Pointers in @out refer to @dev,
 * which must outlive the use of @out.
 */
void uiommu__devcfg_hwdev_cfg(const struct uiommu_devcfg_dev *dev, struct uiommu_hwdev_cfg *out);

/* Every page size a format offers (the parser's notion, for messages and tests). */
uint64_t uiommu__devcfg_format_pgsizes(enum uiommu_pt_format format);

#endif

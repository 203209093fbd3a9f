/* SPDX-License-Identifier: MIT */
/*
 * IO address spaces (iommufd's IOAS, the type1 container's core).
 *
 * An IOAS holds areas: byte-granular IOVA ranges [iova, last] (last inclusive)
 * that translate to host virtual memory of this process with READ and/or
 * WRITE permission. Each area references a "pages" object: the user memory
 * range given to MAP (COPY makes new areas that share the source's pages).
 *
 * IOVA space: reserved ranges (each with an owner pointer: a domain's
 * aperture complement, a device's reserved regions, a test) may not hold
 * areas; allowed ranges, when any are set, are the only space automatic
 * allocation uses. The IOVA alignment is the largest of 1 (PAGE_SIZE with huge
 * pages disabled), the smallest page of each domain and each pinning access's
 * need; raising it fails with -EADDRINUSE if an existing area breaks it.
 *
 * Domains (emulated IO page tables) attached to an IOAS mirror every area;
 * a map with domains attached is "pinned": the user memory must exist (and be
 * writable for WRITE), else -EFAULT. With no domain and no pinning access,
 * nothing about the user memory is checked, as in the kernel.
 *
 * Pins are bookkeeping: each CPU page of a pages object counts one long-term
 * pin while any domain mirror or access pin uses it; uiommu_pin_refs() sums
 * them over the whole process (what the kernel selftest's refcount check
 * reads). Unpinning and unmapping never touch user memory, so the program may
 * munmap memory that is still mapped; DMA into it afterwards is its problem.
 *
 * Accesses are users that are not behind an IOMMU (mdev-like devices,
 * emulated devices): they pin IOVA ranges and read/write through the IOAS.
 * An unmap that overlaps an access pin calls the access's unmap callback,
 * which must unpin what overlaps; the unmap then proceeds.
 *
 * Every public call takes the IOAS's lock; callbacks run without it. Ranges:
 * (iova, length) at this API, inclusive last inside.
 */
#ifndef UIOMMU_IOAS_H
#define UIOMMU_IOAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uiommu/compiler.h>
#include <uiommu/iommu.h>
#include <uiommu/iova_list.h>

UIOMMU_BEGIN_DECLS

struct uiommu_ioas;
struct uiommu_access;

UIOMMU_EXPORT int uiommu_ioas_create(struct uiommu_ioas **out);
/*
 * Removes every area and frees. Domains and accesses should have been removed
 * by the caller; any left over are detached (domains emptied, access pins
 * dropped without callbacks) so that nothing dangles. NULL-safe.
 */
UIOMMU_EXPORT void uiommu_ioas_destroy(struct uiommu_ioas *ioas);

/* MAP flags; permissions are UIOMMU_PROT_READ / UIOMMU_PROT_WRITE. */
#define UIOMMU_IOAS_MAP_FIXED_IOVA (1u << 0)

/**
 * uiommu_ioas_map() - Map @length bytes of user memory at @uva.
 * @iova: in with FIXED_IOVA, out otherwise.
 *
 * Checks, in the kernel's order (iommufd's iopt_map_user_pages): @uva +
 * @length wraps -> -EOVERFLOW; length 0 or > SIZE_MAX - PAGE_SIZE -> -EINVAL;
 * length not a multiple of the IOVA alignment -> -EINVAL; FIXED: iova
 * unaligned -> -EINVAL, iova + length - 1 wraps -> -EOVERFLOW, in a reserved
 * range -> -EINVAL, over an area -> -EEXIST; otherwise automatic allocation
 * (-EOVERFLOW, -EINVAL, -ENOSPC); the page offset of uva not a multiple of the
 * alignment -> -EINVAL; with domains, user memory missing -> -EFAULT; -ENOMEM.
 * Before all that: no prot bit, unknown prot or flag bits -> -EINVAL. On error
 * nothing changed. Without domains the memory is not looked at.
 */
UIOMMU_EXPORT int uiommu_ioas_map(struct uiommu_ioas *ioas, void *uva, uint64_t length,
				  uint32_t prot, uint32_t flags, uint64_t *iova);

/**
 * uiommu_ioas_map_file() - As map, for [@start, @start + @length) of the
 * memfd-like file @fd (mapped shared by the library for the area's life).
 * Automatic allocation takes its alignment hint from @start.
 * Return: as map; -EBADF for a bad fd; -EINVAL when it is not a regular file
 * or cannot be mapped; -EPERM when the fd does not allow a writable shared
 * mapping (WRITE on a read-only fd); -EOVERFLOW when start + length does not
 * fit in off_t.
 */
UIOMMU_EXPORT int uiommu_ioas_map_file(struct uiommu_ioas *ioas, int fd, uint64_t start,
				       uint64_t length, uint32_t prot, uint32_t flags,
				       uint64_t *iova);

/**
 * uiommu_ioas_copy() - Map into @dst the pages behind [@src_iova, +@length)
 * of @src (which must be covered by areas without holes, else -ENOENT),
 * sharing them. One destination area per source area slice. WRITE asked of a
 * read-only source -> -EPERM. Destination rules as map. @dst may be @src.
 * Order: prot/flags -> -EINVAL; length 0 -> -EINVAL; source range wraps ->
 * -EOVERFLOW; -ENOENT; then the destination's checks. The two IOAS locks are
 * never held together.
 */
UIOMMU_EXPORT int uiommu_ioas_copy(struct uiommu_ioas *dst, uint64_t *dst_iova,
				   struct uiommu_ioas *src, uint64_t src_iova, uint64_t length,
				   uint32_t prot, uint32_t flags);

/**
 * uiommu_ioas_unmap() - Unmap the areas inside [@iova, @iova + @length).
 *
 * (0, UINT64_MAX) unmaps everything. Otherwise length 0 -> -EINVAL, wrap ->
 * -EOVERFLOW; an area only partly inside -> -ENOENT. A range with no area in
 * it unmaps nothing and returns 0 with *@unmapped = 0 (iommufd's ioctl turns
 * that into -ENOENT, VFIO's UNMAP does not). An area that accesses pinned:
 * their unmap callbacks run (without the lock) and the area is looked up
 * again; pins left after that -> -EBUSY. As in the kernel it is not atomic:
 * areas before an offending one are gone. *@unmapped (may be NULL) = bytes,
 * also on error.
 */
UIOMMU_EXPORT int uiommu_ioas_unmap(struct uiommu_ioas *ioas, uint64_t iova, uint64_t length,
				    uint64_t *unmapped);

/*
 * The usable IOVA ranges (the gaps of the reserved set over [0, 2^64 - 1]),
 * ascending: up to @cap written to @out, *@total = how many there are,
 * *@alignment = current IOVA alignment. 0, or -EMSGSIZE when total > cap
 * (what fits is written).
 */
UIOMMU_EXPORT int uiommu_ioas_iova_ranges(struct uiommu_ioas *ioas, struct uiommu_iova_range *out,
					  size_t cap, size_t *total, uint64_t *alignment);

/*
 * Replaces the allowed list: start >= last or overlapping entries -> -EINVAL;
 * an entry over a reserved range -> -EADDRINUSE (old list kept). n = 0 clears.
 */
UIOMMU_EXPORT int uiommu_ioas_allow_iovas(struct uiommu_ioas *ioas,
					  const struct uiommu_iova_range *ranges, size_t n);

/*
 * Reserves [start, last] for @owner: -EINVAL start > last; -EADDRINUSE when it
 * intersects an area or an allowed range. uiommu_ioas_unreserve() drops every
 * range of @owner.
 */
UIOMMU_EXPORT int uiommu_ioas_reserve(struct uiommu_ioas *ioas, const void *owner,
				      uint64_t start, uint64_t last);
UIOMMU_EXPORT void uiommu_ioas_unreserve(struct uiommu_ioas *ioas, const void *owner);

/*
 * Huge pages option (iommufd IOMMU_OPTION_HUGE_PAGES): disabling raises the
 * alignment to PAGE_SIZE; -EINVAL when a domain is attached and areas exist;
 * -EADDRINUSE when an area breaks the new alignment.
 */
UIOMMU_EXPORT int uiommu_ioas_set_huge_pages(struct uiommu_ioas *ioas, bool enable);
UIOMMU_EXPORT bool uiommu_ioas_huge_pages(struct uiommu_ioas *ioas);

/**
 * uiommu_ioas_domain_add() - Mirror every area into @domain from now on.
 *
 * Reserves what lies outside [@aperture_start, @aperture_last] (owner =
 * domain), raises the alignment to the domain's smallest page (-EINVAL if that
 * is above PAGE_SIZE), pins and maps every existing area (-EFAULT for missing
 * user memory; checked only when the IOAS had no domain, as areas are pinned
 * already otherwise). @aperture_last is clipped to the domain's max IOVA;
 * start > last -> -EINVAL. Errors: -EADDRINUSE, -EINVAL, -EFAULT, -ENOMEM,
 * -EEXIST (already in this IOAS), or the domain's map error (-EEXIST when the
 * domain was not empty); on error nothing changed. A domain is in at most one
 * IOAS (the caller sees to it).
 */
UIOMMU_EXPORT int uiommu_ioas_domain_add(struct uiommu_ioas *ioas, struct uiommu_domain *domain,
					 uint64_t aperture_start, uint64_t aperture_last);
/* Unmaps every area from @domain, drops its reservations, lowers alignment. */
UIOMMU_EXPORT void uiommu_ioas_domain_remove(struct uiommu_ioas *ioas,
					     struct uiommu_domain *domain);
UIOMMU_EXPORT size_t uiommu_ioas_domain_count(struct uiommu_ioas *ioas);

/*
 * Splits the area that contains @last, if any, so that an area ends at @last
 * (VFIO type1 v1 semantics: unmap may cut mappings); both parts share the
 * pages. As in the kernel, nothing happens (0) when @last is the first or the
 * last byte of the area or lies in no area. 0; -ENOMEM (nothing changed);
 * -EINVAL when the cut would break the IOVA alignment, an access has pinned
 * the area, or domains are attached with huge pages enabled (their leaves
 * could straddle the cut); -EBUSY while the area is being unmapped.
 */
UIOMMU_EXPORT int uiommu_ioas_cut(struct uiommu_ioas *ioas, uint64_t last);

/* The current IOVA alignment (1 for a fresh IOAS). */
UIOMMU_EXPORT uint64_t uiommu_ioas_iova_alignment(struct uiommu_ioas *ioas);

/*
 * How far [iova, last] is covered by areas without a hole, from @iova: 0 with
 * *@contig_last = the last covered IOVA (<= last), or -ENOENT when @iova is
 * not in an area. (The dirty-bitmap walk stops there, as the kernel's does.)
 */
UIOMMU_EXPORT int uiommu_ioas_contig_last(struct uiommu_ioas *ioas, uint64_t iova, uint64_t last,
					  uint64_t *contig_last);

struct uiommu_ioas_stats {
	uint64_t areas;
	uint64_t mapped_bytes;
	uint64_t pinned_pages; /* CPU pages pinned by this IOAS's pages objects */
	uint64_t domains;
	uint64_t accesses;
};
UIOMMU_EXPORT void uiommu_ioas_get_stats(struct uiommu_ioas *ioas, struct uiommu_ioas_stats *st);

/* Long-term pins on the CPU page that holds @uva, over the whole process. */
UIOMMU_EXPORT uint64_t uiommu_pin_refs(const void *uva);

/* ---- accesses ---- */

struct uiommu_access_ops {
	/* Pins need PAGE_SIZE IOVA alignment (raises the IOAS's alignment). */
	bool needs_pin;
	/*
	 * [iova, iova + length) is being unmapped: unpin everything pinned in it
	 * (from this callback or before returning). Called without the IOAS lock.
	 */
	void (*unmap)(void *opaque, uint64_t iova, uint64_t length);
};

/*
 * -EADDRINUSE when raising the alignment conflicts with existing areas;
 * -EINVAL for no ops, or needs_pin without an unmap callback; -ENOMEM.
 */
UIOMMU_EXPORT int uiommu_access_create(struct uiommu_ioas *ioas,
				       const struct uiommu_access_ops *ops, void *opaque,
				       struct uiommu_access **out);
/*
 * Unpins whatever is still pinned (without calling ops->unmap) and detaches,
 * after waiting for unmap callbacks running on the access. Must not be called
 * from the access's own callback. NULL-safe.
 */
UIOMMU_EXPORT void uiommu_access_destroy(struct uiommu_access *access);
/*
 * Moves the access to @ioas, as the kernel does: it joins @ioas (-EADDRINUSE
 * if the alignment cannot be raised there), then ops->unmap(opaque, 0,
 * UINT64_MAX) is called so that it drops its pins in the old IOAS; -EBUSY if
 * pins remain after that (the access stays in the old IOAS) or another move
 * is under way; -EINVAL for a NULL @ioas. Same IOAS: 0. While it moves, pin
 * and rw give -ENOENT.
 */
UIOMMU_EXPORT int uiommu_access_replace_ioas(struct uiommu_access *access,
					     struct uiommu_ioas *ioas);
UIOMMU_EXPORT struct uiommu_ioas *uiommu_access_ioas(struct uiommu_access *access);

#define UIOMMU_ACCESS_WRITE (1u << 0)

/**
 * uiommu_access_pin() - Pin the CPU pages under [@iova, @iova + @length).
 * @pages: receives the page-aligned host address of each CPU page, in order
 *         (@npages must be the number of CPU pages the range touches).
 * The host memory under @iova must start a CPU page, and the range may cross
 * from one area to the next only at a CPU page boundary.
 * Return: 0; -EINVAL (length 0, unknown flags, not a pinning access, npages
 * wrong or @pages NULL, unaligned as above, area being unmapped); -EOVERFLOW
 * (wrap); -ENOENT (a hole); -EPERM (WRITE on a read-only area, or read of a
 * write-only one); -EFAULT (user memory missing); -ENOMEM. Checks go area by
 * area, so the first offending area decides. Unpin with the same (iova,
 * length); an unpin that matches no pin is ignored.
 */
UIOMMU_EXPORT int uiommu_access_pin(struct uiommu_access *access, uint64_t iova, uint64_t length,
				    uint32_t flags, void **pages, size_t npages);
UIOMMU_EXPORT void uiommu_access_unpin(struct uiommu_access *access, uint64_t iova,
				       uint64_t length);

/**
 * uiommu_access_rw() - Copy between @buf and [@iova, @iova + @length).
 * @flags: UIOMMU_ACCESS_WRITE copies buf to the IOVA range, else from it.
 * Works with any access, with or without domains.
 * Return: 0; -EINVAL (length 0, unknown flags, area being unmapped);
 * -EOVERFLOW; -ENOENT (a hole); -EPERM (write to a read-only area, read of a
 * write-only one); -EFAULT (user memory gone). Not atomic: on error the areas
 * before the offending one were copied.
 */
UIOMMU_EXPORT int uiommu_access_rw(struct uiommu_access *access, uint64_t iova, void *buf,
				   uint64_t length, uint32_t flags);

UIOMMU_END_DECLS

#endif

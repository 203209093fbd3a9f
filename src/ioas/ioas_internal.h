/* SPDX-License-Identifier: MIT */
/*
 * Private structures of the IOAS layer, shared by its files:
 *   ioas.c    the IOAS object, areas, map/copy/unmap/cut
 *   iova.c    IOVA space: alignment, reserved and allowed ranges, allocation
 *   pages.c   pages objects (user memory behind areas) and the pin registry
 *   domain.c  mirroring areas into domains
 *   access.c  accesses: pins and reads/writes by IOVA
 *   query.c   read-only questions of the front ends
 *
 * Terminology: 'last' is inclusive, 'end' exclusive, 'length' a byte count.
 * "CPU page" is a page of the host (uiommu__page_size()); pin bookkeeping
 * counts CPU page numbers (VA >> page shift).
 *
 * Locks, outermost first: access->lock, ioas->lock, the pin registry lock
 * (pages.c). No thread holds two IOAS locks at once.
 */
#ifndef UIOMMU_IOAS_INTERNAL_H
#define UIOMMU_IOAS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <uiommu/ioas.h>
#include <uiommu/itree.h>
#include <uiommu/iova_list.h>

#include "core/core_internal.h"

/*
 * User memory given to MAP (or mapped by MAP_FILE), shared by every area that
 * maps a part of it (COPY). refs counts areas and in-flight copies (atomic:
 * areas of several IOASes share it). users and pinned_pages are protected by
 * the pin registry lock.
 */
struct ioas_pages {
	uint64_t refs;
	uintptr_t uva;  /* first byte */
	uint64_t length;
	bool writable;
	void *file_base; /* MAP_FILE: the shared mapping this object owns */
	size_t file_len;
	struct uiommu_itree users;    /* pin users, keyed by CPU page number */
	uint64_t pinned_pages;        /* CPU pages covered by users */
	struct uiommu_itree_node reg; /* in the registry while users is not empty */
	uint64_t stats_mark;
};

/* An IOVA range [node.start, node.last] of an IOAS backed by a pages slice. */
struct ioas_area {
	struct uiommu_itree_node node;
	struct ioas_pages *pages;
	uint64_t pages_off; /* byte offset of node.start into pages */
	uint32_t prot;      /* UIOMMU_PROT_* */
	uint32_t access_pins;
	bool prevent_access; /* an unmap is asking accesses to let go */
	bool domain_pinned;  /* pin is in pages->users: mirrored in >= 1 domain */
	bool span_head;      /* span is in ioas->spans: this area starts a span */
	struct uiommu_itree_node pin;
	struct uiommu_itree_node span; /* see span.c */
};

struct ioas_reserved {
	struct uiommu_itree_node node;
	const void *owner;
};

/*
 * Membership of an access in an IOAS's list. An access has two, because
 * while it moves (replace_ioas) it belongs to both IOASes. cb_users counts
 * unmap callbacks running on it from this IOAS; the link is not removed
 * before they finish.
 */
struct access_link {
	struct access_link *next, *prev;
	struct uiommu_access *access;
	unsigned int cb_users;
};

struct uiommu_ioas {
	pthread_mutex_t lock; /* protects everything below */
	pthread_cond_t cb_done; /* a link's cb_users dropped to 0 */
	struct uiommu_itree areas;
	struct uiommu_itree spans; /* runs of adjacent areas (span.c) */
	struct uiommu_itree reserved;
	struct uiommu_iova_list allowed;
	uint64_t iova_alignment;
	bool huge_pages_disabled;
	struct uiommu_domain **domains;
	size_t nr_domains, cap_domains;
	struct access_link accesses; /* list head */
	size_t nr_accesses, nr_pin_accesses;
	uint64_t mapped_bytes;
};

struct access_pin_slice {
	struct ioas_area *area;
	struct uiommu_itree_node user; /* in area->pages->users */
};

/* One successful uiommu_access_pin(): [node.start, node.last] of IOVA. */
struct access_pin {
	struct uiommu_itree_node node;
	size_t nr_slices;
	struct access_pin_slice slices[];
};

struct uiommu_access {
	pthread_mutex_t lock;       /* protects ioas, ioas_unpin, cur */
	struct uiommu_ioas *ioas;   /* pins and rw go here; NULL while moving */
	struct uiommu_ioas *ioas_unpin; /* where the pins live */
	struct uiommu_access_ops ops;
	void *opaque;
	struct access_link links[2];
	unsigned int cur; /* links[cur] is the membership in ioas_unpin */
	struct uiommu_itree pins; /* of access_pin; ioas_unpin's lock */
};

/* A piece of pages that a new area will map (map: one, copy: several). */
struct ioas_slice {
	struct ioas_pages *pages;
	uint64_t pages_off;
	uint64_t length;
};

/* ---- small accessors ---- */

static inline uint64_t area_length(const struct ioas_area *area)
{
	return area->node.last - area->node.start + 1;
}

/* Host address of the first byte of @area. */
static inline uintptr_t area_uva(const struct ioas_area *area)
{
	return area->pages->uva + area->pages_off;
}

/* Host address of IOVA @iova, which lies inside @area. */
static inline uintptr_t area_iova_to_uva(const struct ioas_area *area, uint64_t iova)
{
	return area_uva(area) + (iova - area->node.start);
}

static inline struct ioas_area *area_of(struct uiommu_itree_node *node)
{
	return node ? container_of(node, struct ioas_area, node) : NULL;
}

static inline uint64_t page_size(void)
{
	return uiommu__page_size();
}

/* ---- iova.c ---- */

struct ioas_area *ioas_area_first(struct uiommu_ioas *ioas, uint64_t start, uint64_t last);

/* span.c: coverage without holes; add after inserting an area, del before removing it. */
void ioas_span_add(struct uiommu_ioas *ioas, struct ioas_area *area);
void ioas_span_del(struct uiommu_ioas *ioas, struct ioas_area *area);
int ioas_span_find(struct uiommu_ioas *ioas, uint64_t iova, uint64_t *span_last);
struct ioas_area *ioas_area_next(struct ioas_area *area, uint64_t start, uint64_t last);
int ioas_check_alignment(struct uiommu_ioas *ioas, uint64_t align);
uint64_t ioas_wanted_alignment(const struct uiommu_ioas *ioas);
int ioas_update_alignment(struct uiommu_ioas *ioas);
int ioas_place_iova(struct uiommu_ioas *ioas, bool fixed, uint64_t *iova, uint64_t hint,
		    uint64_t length);
int ioas_reserve_locked(struct uiommu_ioas *ioas, const void *owner, uint64_t start,
			uint64_t last);
void ioas_unreserve_locked(struct uiommu_ioas *ioas, const void *owner);

/*
 * Walks areas that cover [start, last] back to back: ioas_contig_first gives
 * the area holding @start, ioas_contig_next the one starting right after the
 * previous; both NULL at a hole or past @last. ioas_contig_done tells whether
 * the walk reached @last.
 */
struct ioas_contig {
	struct ioas_area *area;
	uint64_t cur; /* first IOVA of the current slice */
	uint64_t last;
};
struct ioas_area *ioas_contig_first(struct uiommu_ioas *ioas, struct ioas_contig *it,
				    uint64_t start, uint64_t last);
struct ioas_area *ioas_contig_next(struct uiommu_ioas *ioas, struct ioas_contig *it);
bool ioas_contig_done(const struct ioas_contig *it);
/* Last IOVA of the current slice. */
static inline uint64_t ioas_contig_slice_last(const struct ioas_contig *it)
{
	return u64_min(it->last, it->area->node.last);
}

/* ---- pages.c ---- */

int ioas_pages_create(uintptr_t uva, uint64_t length, bool writable, struct ioas_pages **out);
void ioas_pages_get(struct ioas_pages *pages);
void ioas_pages_put(struct ioas_pages *pages);
/* Pins the CPU pages under [uva, uva_last] on behalf of @user. Cannot fail. */
void ioas_pin_add(struct ioas_pages *pages, struct uiommu_itree_node *user, uintptr_t uva,
		  uintptr_t uva_last);
void ioas_pin_remove(struct ioas_pages *pages, struct uiommu_itree_node *user);
/* Sum of pinned_pages over the distinct pages objects of @ioas's areas. */
uint64_t ioas_pinned_pages(struct uiommu_ioas *ioas);

/* ---- domain.c ---- */

int ioas_area_fill_domains(struct uiommu_ioas *ioas, struct ioas_area *area);
void ioas_area_unfill_domains(struct uiommu_ioas *ioas, struct ioas_area *area);
void ioas_area_pin_domains(struct ioas_area *area);
void ioas_area_unpin_domains(struct ioas_area *area);

/* ---- ioas.c ---- */

/* User memory behind @area exists (and is writable if its pages are). */
int ioas_check_user(const struct ioas_area *area);

/* ---- access.c ---- */

/* Calls every access's unmap callback; drops and retakes ioas->lock around each. */
void ioas_notify_unmap(struct uiommu_ioas *ioas, uint64_t iova, uint64_t length);

/* ioas_destroy with accesses left: unpins and detaches them (a caller bug). */
void ioas_detach_accesses(struct uiommu_ioas *ioas);

#endif

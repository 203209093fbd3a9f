/* SPDX-License-Identifier: MIT */
/*
 * Reference model of the interval tree: an unsorted array of (start, last, id)
 * entries with brute-force queries. Slow on purpose: it is obviously right.
 * Ids are caller-chosen and identify the matching tree node.
 */
#ifndef UIOMMU_TESTS_ITREE_MODEL_H
#define UIOMMU_TESTS_ITREE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

struct itree_model_entry {
	uint64_t start;
	uint64_t last;
	size_t id;
};

struct itree_model {
	struct itree_model_entry *e;
	size_t nr;
	size_t cap;
};

static inline void itree_model_init(struct itree_model *m, size_t cap)
{
	m->e = calloc(cap, sizeof(*m->e));
	m->nr = 0;
	m->cap = cap;
}

static inline void itree_model_fini(struct itree_model *m)
{
	free(m->e);
	m->e = NULL;
	m->nr = m->cap = 0;
}

/* Returns false when the model is full. */
static inline bool itree_model_insert(struct itree_model *m, uint64_t start, uint64_t last,
				      size_t id)
{
	if (m->nr == m->cap)
		return false;
	m->e[m->nr++] = (struct itree_model_entry){ start, last, id };
	return true;
}

/* Removes the entry with @id; returns false when there is none. */
static inline bool itree_model_remove(struct itree_model *m, size_t id)
{
	for (size_t i = 0; i < m->nr; i++) {
		if (m->e[i].id == id) {
			m->e[i] = m->e[--m->nr];
			return true;
		}
	}
	return false;
}

static inline bool itree_model_entry_overlaps(const struct itree_model_entry *e, uint64_t start,
					      uint64_t last)
{
	return e->start <= last && e->last >= start;
}

/*
 * Marks in @hit (indexed by id, @nr_ids entries) every entry overlapping
 * [start, last]; returns how many there are and, in *@min_start, the lowest
 * start among them (UINT64_MAX when none).
 */
static inline size_t itree_model_overlaps(const struct itree_model *m, uint64_t start,
					  uint64_t last, bool *hit, size_t nr_ids,
					  uint64_t *min_start)
{
	size_t n = 0;

	*min_start = UINT64_MAX;
	for (size_t i = 0; i < nr_ids; i++)
		hit[i] = false;
	for (size_t i = 0; i < m->nr; i++) {
		if (!itree_model_entry_overlaps(&m->e[i], start, last))
			continue;
		hit[m->e[i].id] = true;
		if (m->e[i].start < *min_start)
			*min_start = m->e[i].start;
		n++;
	}
	return n;
}

#endif

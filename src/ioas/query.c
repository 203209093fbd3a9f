// SPDX-License-Identifier: MIT
/*
 * Read-only questions the front ends ask of an IOAS: its alignment, and how
 * far a range is covered by areas without a hole (the dirty-bitmap walk of
 * iommufd stops at the first hole, and so does ours).
 */
#include <errno.h>

#include "ioas/ioas_internal.h"

UIOMMU_EXPORT uint64_t uiommu_ioas_iova_alignment(struct uiommu_ioas *ioas)
{
	uint64_t align;

	pthread_mutex_lock(&ioas->lock);
	align = ioas->iova_alignment;
	pthread_mutex_unlock(&ioas->lock);
	return align;
}

UIOMMU_EXPORT int uiommu_ioas_contig_last(struct uiommu_ioas *ioas, uint64_t iova, uint64_t last,
					  uint64_t *contig_last)
{
	uint64_t span_last;
	int ret;

	if (iova > last)
		return -EINVAL;
	pthread_mutex_lock(&ioas->lock);
	ret = ioas_span_find(ioas, iova, &span_last);
	pthread_mutex_unlock(&ioas->lock);
	if (!ret)
		*contig_last = u64_min(span_last, last);
	return ret;
}

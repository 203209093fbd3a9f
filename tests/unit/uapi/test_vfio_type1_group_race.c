// SPDX-License-Identifier: MIT
/*
 * Container changes against the calls that read a group's container: one
 * thread moves the emulated group in and out of the container
 * (SET/UNSET_CONTAINER) while others pin, unpin, rw, GET_DEVICE_FD and
 * GET_STATUS on it. Every call must return one of its documented results
 * and, under TSan (suite 'stress'), no data race may be reported: the
 * group lock hands over to the container lock (vt1_group_lock_container).
 * The IOMMU-backed group stays in the container so that its type stays set.
 */
#include <pthread.h>

#include "vt1_test.h"

#define IOVA 0x100000ull
#define ROUNDS 3000

struct race {
	struct vt1 *t;
	int stop;
	unsigned long pins; /* successful pins (pinner thread only) */
};

static void *mover(void *arg)
{
	struct race *r = arg;
	int fd = uiommu_vfio_container_fd(r->t->c);

	for (int i = 0; i < ROUNDS; i++) {
		long ret = gio(r->t->eg, VFIO_GROUP_UNSET_CONTAINER, NULL);

		/* EBUSY: a device fd of the other thread is open right now. */
		assert_true(ret == 0 || ret == -EBUSY);
		if (!ret)
			assert_int_equal(gio(r->t->eg, VFIO_GROUP_SET_CONTAINER, &fd), 0);
	}
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *pinner(void *arg)
{
	struct race *r = arg;
	void *pages[4];
	char buf[64] = "x";

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		int ret = uiommu_vfio_pin_pages(r->t->emu, IOVA, 4, UIOMMU_PROT_READ, pages);

		assert_true(ret == 4 || ret == -EINVAL);
		/* An unpin after the group left finds no container and drops nothing. */
		if (ret == 4) {
			r->pins++;
			uiommu_vfio_unpin_pages(r->t->emu, IOVA, 4);
		}
		ret = uiommu_vfio_dma_rw(r->t->emu, IOVA + PG, buf, sizeof(buf), true);
		assert_true(ret == 0 || ret == -EINVAL);
	}
	return NULL;
}

static void *opener(void *arg)
{
	struct race *r = arg;
	struct vfio_group_status st = { .argsz = sizeof(st) };

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		long fd = gio_name(r->t->eg, "mdev0");

		assert_true(fd >= 0 || fd == -EINVAL);
		if (fd >= 0)
			assert_int_equal(uiommu_vfio_group_close_device_fd(r->t->eg, (int)fd), 0);
		assert_int_equal(gio(r->t->eg, VFIO_GROUP_GET_STATUS, &st), 0);
	}
	return NULL;
}

static void test_container_changes_race_with_group_readers(void **state)
{
	struct race r = { .t = vt1_ready(VFIO_TYPE1v2_IOMMU) };
	pthread_t th[3];

	(void)state;
	vt1_add_emu(r.t);
	assert_int_equal(vt1_map_mem(r.t, 0, IOVA, MiB), 0);
	assert_int_equal(pthread_create(&th[0], NULL, mover, &r), 0);
	assert_int_equal(pthread_create(&th[1], NULL, pinner, &r), 0);
	assert_int_equal(pthread_create(&th[2], NULL, opener, &r), 0);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	/* The mover ends with the group in: drop the pins whose unpin found none. */
	for (unsigned long i = 0; i < r.pins; i++)
		uiommu_vfio_unpin_pages(r.t->emu, IOVA, 4);
	/* Nothing stays pinned: a pin would make this unmap ask the device. */
	r.t->notified = 0;
	assert_int_equal(vt1_unmap(r.t, 0, IOVA, MiB, NULL), 0);
	assert_int_equal(r.t->notified, 0);
	vt1_free(r.t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_container_changes_race_with_group_readers),
	};

	return cmocka_run_group_tests_name("vfio_type1_group_race", tests, NULL, NULL);
}

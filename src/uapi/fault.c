// SPDX-License-Identifier: MIT
/*
 * IO page-fault queues: IOMMU_FAULT_QUEUE_ALLOC, the fault object's fd, and
 * how faults get there and back.
 *
 * A fault object is a queue with an fd (made through the context's fd_ops,
 * like access fds; it holds a context reference until it is closed). A HWPT
 * allocated with IOMMU_HWPT_FAULT_ID_VALID and fault_id = that object reports
 * the IO page faults of its attached devices to it (a bad fault_id: -ENOENT,
 * after the HWPT checks, as in the kernel). The fd and every such HWPT are
 * users of the object, so DESTROY of it is -EBUSY until the fd is closed and
 * the HWPTs are gone.
 *
 * A fault is reported as the last (here: only) fault of its group and waits
 * on the deliver list. A read takes groups from its head, oldest first, as
 * whole struct iommu_hwpt_pgfault records, gives each a cookie (the lowest
 * free, from 1, as the kernel's xarray allocation does) and moves it to the
 * response list. A write of struct iommu_hwpt_page_response records answers
 * groups by cookie and frees them; the emulated devices wait for nothing, so
 * answering is all there is to it. Example: two faults reported, a read of
 * 80 bytes returns both with cookies 1 and 2; writing { cookie 1, SUCCESS }
 * answers the first; the next fault read gets cookie 1 again.
 *
 * read and write follow the kernel's file operations: a count that is not a
 * multiple of the record is -ESPIPE; a read returns 0 when nothing waits (it
 * never blocks) and -EINVAL when the first waiting group does not fit; a
 * write with a code other than SUCCESS/INVALID or an unknown cookie is
 * -EINVAL; a bad buffer is -EFAULT. A failure after some records returns the
 * bytes done, which stay done; a failed record changes nothing.
 *
 * Routing: a fault goes to the HWPT its device is attached to, if that HWPT
 * has a fault object. There are no PASID attachments here, so a fault tagged
 * with a PASID goes only to a nested HWPT at the device's RID, which is what a
 * driver with a user-managed PASID table (the mock one) does; anything no
 * queue takes is answered "invalid" at once and dropped (-ENODEV to the
 * reporter). When a device leaves a HWPT (detach, replace, unbind), its
 * groups still waiting or unanswered there are answered "invalid" and
 * dropped, as the kernel's auto-response does.
 *
 * Everything here runs under the context lock.
 */
#include <errno.h>

#include "uapi/uapi_internal.h"

struct fault_group {
	struct fault_group *next;
	const struct device_obj *dev; /* the attachment that took the fault */
	const struct hwpt_obj *hwpt;
	struct iommu_hwpt_pgfault msg; /* cookie set when read */
};

struct fault_obj {
	struct obj obj;
	int fd;                            /* -1 once closed */
	struct fault_group *deliver;       /* reported, not read yet: oldest first */
	struct fault_group **deliver_tail; /* where the next report goes */
	struct fault_group *response;      /* read, not answered: by cookie, ascending */
};

static struct fault_obj *fault_find(struct uiommu_ctx *ctx, uint32_t id)
{
	return (struct fault_obj *)obj_find(ctx, id, OBJ_FAULT);
}

static struct fault_obj *fault_by_fd(struct uiommu_ctx *ctx, int fd)
{
	for (uint32_t id = 1; fd >= 0 && id < ctx->table_cap; id++) {
		struct fault_obj *f = fault_find(ctx, id);

		if (f && f->fd == fd)
			return f;
	}
	return NULL;
}

int fault_queue_alloc(struct ucmd *ucmd)
{
	struct iommu_fault_alloc *cmd = ucmd->cmd;
	struct uiommu_ctx *ctx = ucmd->ctx;
	struct fault_obj *f;
	int ret;

	if (cmd->flags)
		return -EOPNOTSUPP;
	f = uiommu__zalloc(sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->deliver_tail = &f->deliver;
	ret = obj_add(ctx, &f->obj, OBJ_FAULT);
	if (ret)
		goto err_free;
	f->fd = ctx->fd_ops.open(ctx->fd_ops.opaque);
	if (f->fd < 0) {
		ret = f->fd;
		goto err_remove;
	}
	cmd->out_fault_id = f->obj.id;
	cmd->out_fault_fd = (uint32_t)f->fd;
	ret = ucmd_respond(ucmd, sizeof(*cmd));
	if (ret)
		goto err_close_fd;
	f->obj.users = 1; /* the fd's, as the kernel's file holds one */
	uiommu_ctx_get(ctx);
	return 0;

err_close_fd:
	ctx->fd_ops.close(ctx->fd_ops.opaque, f->fd);
err_remove:
	obj_remove(ctx, &f->obj);
err_free:
	uiommu__free(f);
	return ret;
}

int hwpt_fault_set(struct uiommu_ctx *ctx, struct hwpt_obj *hwpt, uint32_t fault_id)
{
	struct fault_obj *f = fault_find(ctx, fault_id);

	if (!f)
		return -ENOENT;
	hwpt->fault = f;
	f->obj.users++;
	return 0;
}

void hwpt_fault_clear(struct hwpt_obj *hwpt)
{
	if (hwpt->fault)
		hwpt->fault->obj.users--;
	hwpt->fault = NULL;
}

/*
 * Answers "invalid" and frees the groups of @list that came through @dev's
 * attachment to @hwpt (every group when @hwpt is NULL); returns where the
 * list now ends, for the deliver tail.
 */
static struct fault_group **groups_drop(struct fault_group **list, const struct hwpt_obj *hwpt,
					const struct device_obj *dev)
{
	struct fault_group *g;

	while ((g = *list)) {
		if (hwpt && (g->hwpt != hwpt || g->dev != dev)) {
			list = &g->next;
			continue;
		}
		*list = g->next;
		uiommu__free(g);
	}
	return list;
}

void fault_drop_device(struct hwpt_obj *hwpt, const struct device_obj *dev)
{
	struct fault_obj *f = hwpt->fault;

	if (!f)
		return;
	f->deliver_tail = groups_drop(&f->deliver, hwpt, dev);
	groups_drop(&f->response, hwpt, dev);
}

void fault_obj_destroy(struct uiommu_ctx *ctx, struct fault_obj *f)
{
	groups_drop(&f->deliver, NULL, NULL);
	groups_drop(&f->response, NULL, NULL);
	obj_remove(ctx, &f->obj);
	uiommu__free(f);
}

int fault_close_fd(struct uiommu_ctx *ctx, int fd)
{
	struct fault_obj *f = fault_by_fd(ctx, fd);

	if (!f)
		return -ENOENT;
	f->fd = -1;
	f->obj.users--;
	return 0;
}

int fault_report(struct device_obj *dev, const struct iommu_hwpt_pgfault *msg)
{
	struct hwpt_obj *hwpt = dev->hwpt;
	struct fault_group *g;

	if (!hwpt || !hwpt->fault)
		return -ENODEV;
	if ((msg->flags & IOMMU_PGFAULT_FLAGS_PASID_VALID) && hwpt->obj.type != OBJ_HWPT_NESTED)
		return -ENODEV;
	g = uiommu__zalloc(sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->dev = dev;
	g->hwpt = hwpt;
	g->msg = *msg;
	g->msg.cookie = 0;
	*hwpt->fault->deliver_tail = g;
	hwpt->fault->deliver_tail = &g->next;
	return 0;
}

/* The lowest cookie from 1 that no unanswered group has; 0 when none is left. */
static uint32_t cookie_free(const struct fault_obj *f)
{
	uint32_t cookie = 1;

	for (const struct fault_group *g = f->response; g && g->msg.cookie == cookie; g = g->next)
		cookie++;
	return cookie;
}

/* Moves the head of the deliver list, which has its cookie, to the response list. */
static void deliver_to_response(struct fault_obj *f)
{
	struct fault_group *g = f->deliver, **pos = &f->response;

	f->deliver = g->next;
	if (!f->deliver)
		f->deliver_tail = &f->deliver;
	while (*pos && (*pos)->msg.cookie < g->msg.cookie)
		pos = &(*pos)->next;
	g->next = *pos;
	*pos = g;
}

static ssize_t fault_read(struct fault_obj *f, char *ubuf, size_t count)
{
	const size_t rec = sizeof(struct iommu_hwpt_pgfault);
	size_t done = 0;
	int ret = 0;

	if (count % rec)
		return -ESPIPE;
	while (f->deliver) {
		if (count - done < rec) {
			/* Even the first waiting group does not fit: the buffer is too small. */
			ret = done ? 0 : -EINVAL;
			break;
		}
		f->deliver->msg.cookie = cookie_free(f);
		if (!f->deliver->msg.cookie)
			ret = -EBUSY;
		else if (uiommu__copy_to_user(ubuf + done, &f->deliver->msg, rec))
			ret = -EFAULT;
		if (ret) {
			f->deliver->msg.cookie = 0;
			break;
		}
		deliver_to_response(f);
		done += rec;
	}
	return done ? (ssize_t)done : ret;
}

/* Answers the group of @resp: 0, or -EINVAL for a bad code or an unknown cookie. */
static int fault_respond(struct fault_obj *f, const struct iommu_hwpt_page_response *resp)
{
	struct fault_group **pos = &f->response, *g;

	if (resp->code != IOMMUFD_PAGE_RESP_SUCCESS && resp->code != IOMMUFD_PAGE_RESP_INVALID)
		return -EINVAL;
	while (*pos && (*pos)->msg.cookie != resp->cookie)
		pos = &(*pos)->next;
	g = *pos;
	if (!g)
		return -EINVAL;
	*pos = g->next;
	uiommu__free(g);
	return 0;
}

static ssize_t fault_write(struct fault_obj *f, const char *ubuf, size_t count)
{
	const size_t rec = sizeof(struct iommu_hwpt_page_response);
	struct iommu_hwpt_page_response resp;
	size_t done = 0;
	int ret = 0;

	if (count % rec)
		return -ESPIPE;
	for (; done < count; done += rec) {
		ret = uiommu__copy_from_user(&resp, ubuf + done, rec);
		if (!ret)
			ret = fault_respond(f, &resp);
		if (ret)
			break;
	}
	return done ? (ssize_t)done : ret;
}

UIOMMU_EXPORT ssize_t uiommu_fault_read(struct uiommu_ctx *ctx, int fd, void *buf, size_t count)
{
	struct fault_obj *f;
	ssize_t ret = -EBADF;

	pthread_mutex_lock(&ctx->lock);
	f = fault_by_fd(ctx, fd);
	if (f)
		ret = fault_read(f, buf, count);
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}

UIOMMU_EXPORT ssize_t uiommu_fault_write(struct uiommu_ctx *ctx, int fd, const void *buf,
					 size_t count)
{
	struct fault_obj *f;
	ssize_t ret = -EBADF;

	pthread_mutex_lock(&ctx->lock);
	f = fault_by_fd(ctx, fd);
	if (f)
		ret = fault_write(f, buf, count);
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}

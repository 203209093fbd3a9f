// SPDX-License-Identifier: MIT
/*
 * The VFIO migration v2 state machine of the emulated DMA device, and its
 * data transfer sessions.
 *
 * Migration flags: STOP_COPY | PRE_COPY (no P2P). The device's arcs are:
 *
 *   RUNNING   -> STOP       quiesce: no DMA in flight on return
 *   STOP      -> RUNNING    resume DMA where it stopped
 *   RUNNING   -> PRE_COPY   open a saving session; the IDENT section is the
 *                           initial data; the device keeps running
 *   PRE_COPY  -> RUNNING    close the session
 *   PRE_COPY  -> STOP_COPY  quiesce; RUN and END complete the session's stream
 *   STOP      -> STOP_COPY  open a saving session with the whole stream
 *   STOP_COPY -> STOP       close the session
 *   STOP      -> RESUMING   open a resuming session (nothing received)
 *   RESUMING  -> STOP       incorporate what was received: nothing (the
 *                           device keeps its state) or a complete stream
 *
 * A request for any other target goes through intermediate states the way
 * the kernel's vfio_mig_get_next_state() chooses them: a shortest path in
 * which the saving states (PRE_COPY, STOP_COPY) are never interior, and
 * STOP_COPY -> PRE_COPY is refused. Here the next hop is found by a
 * breadth-first search over the arcs above with those two rules; with
 * these arcs every shortest path is unique. E.g. RUNNING -> STOP_COPY is
 * RUNNING -> STOP -> STOP_COPY, RESUMING -> PRE_COPY is RESUMING -> STOP ->
 * RUNNING -> PRE_COPY.
 *
 * Errors: an unknown, unsupported (P2P) or ERROR target, a refused arc, or
 * a request made in ERROR is -EINVAL with nothing changed. An arc that fails
 * (no memory for a session; an incomplete stream when leaving RESUMING)
 * leaves the device in ERROR, quiesced, its sessions dropped; only reset
 * leaves ERROR.
 *
 * Locking: fsm_lock serializes requests and the data calls and protects the
 * sessions; the state changes under both fsm_lock and the device lock, so
 * either is enough to read it.
 */
#include <errno.h>
#include <string.h>

#include "vm/dmadev_internal.h"

typedef int (*arc_fn)(struct uiommu_dmadev *d);

struct arc {
	enum vfio_device_mig_state from, to;
	arc_fn fn;
};

static bool is_saving(enum vfio_device_mig_state s)
{
	return s == DMADEV_STATE_PRE_COPY || s == DMADEV_STATE_STOP_COPY;
}

static bool target_supported(enum vfio_device_mig_state s)
{
	return s == DMADEV_STATE_STOP || s == DMADEV_STATE_RUNNING || s == DMADEV_STATE_STOP_COPY ||
	       s == DMADEV_STATE_RESUMING || s == DMADEV_STATE_PRE_COPY;
}

void dmadev_sessions_drop(struct uiommu_dmadev *d)
{
	uiommu__free(d->save.buf);
	memset(&d->save, 0, sizeof(d->save));
	d->stage_len = 0;
}

/* A saving session with room for the whole stream; the IDENT section in it. */
static int session_open(struct uiommu_dmadev *d)
{
	size_t ident = dmadev_stream_ident_len();

	d->save.buf = uiommu__zalloc(ident + dmadev_stream_tail_len());
	if (!d->save.buf)
		return -ENOMEM;
	dmadev_stream_put_ident(d->save.buf, &d->ident);
	d->save.len = ident;
	d->save.initial = ident;
	d->save.pos = 0;
	return 0;
}

/* The device is quiesced: its running state is final. */
static void session_complete(struct uiommu_dmadev *d)
{
	dmadev_stream_put_tail(d->save.buf + d->save.len, &d->run);
	d->save.len += dmadev_stream_tail_len();
}

/* ---- arcs (fsm_lock and the device lock held) ---- */

static int arc_stop(struct uiommu_dmadev *d)
{
	dmadev_enter_state(d, DMADEV_STATE_STOP);
	return 0;
}

static int arc_run(struct uiommu_dmadev *d)
{
	dmadev_enter_state(d, DMADEV_STATE_RUNNING);
	return 0;
}

static int arc_precopy_open(struct uiommu_dmadev *d)
{
	int ret = session_open(d);

	if (!ret)
		dmadev_enter_state(d, DMADEV_STATE_PRE_COPY);
	return ret;
}

static int arc_precopy_close(struct uiommu_dmadev *d)
{
	dmadev_sessions_drop(d);
	dmadev_enter_state(d, DMADEV_STATE_RUNNING);
	return 0;
}

static int arc_precopy_stop(struct uiommu_dmadev *d)
{
	dmadev_enter_state(d, DMADEV_STATE_STOP_COPY);
	session_complete(d);
	return 0;
}

static int arc_stopcopy_open(struct uiommu_dmadev *d)
{
	int ret = session_open(d);

	if (ret)
		return ret;
	session_complete(d);
	dmadev_enter_state(d, DMADEV_STATE_STOP_COPY);
	return 0;
}

static int arc_stopcopy_close(struct uiommu_dmadev *d)
{
	dmadev_sessions_drop(d);
	dmadev_enter_state(d, DMADEV_STATE_STOP);
	return 0;
}

static int arc_resume_open(struct uiommu_dmadev *d)
{
	d->stage_len = 0;
	dmadev_enter_state(d, DMADEV_STATE_RESUMING);
	return 0;
}

/* Incorporates a complete stream; no bytes at all leave the state alone. */
static int arc_resume_close(struct uiommu_dmadev *d)
{
	struct dmadev_image img;
	int ret = 0;

	if (d->stage_len) {
		ret = dmadev_stream_parse(d->stage, d->stage_len, &d->ident, &img);
		if (!ret && !img.has_end)
			ret = -EINVAL;
	}
	if (ret)
		return ret;
	if (d->stage_len) {
		d->ident.seed = img.ident.seed;
		d->run = img.run;
	}
	d->stage_len = 0;
	dmadev_enter_state(d, DMADEV_STATE_STOP);
	return 0;
}

static const struct arc arcs[] = {
	{ DMADEV_STATE_RUNNING, DMADEV_STATE_STOP, arc_stop },
	{ DMADEV_STATE_STOP, DMADEV_STATE_RUNNING, arc_run },
	{ DMADEV_STATE_RUNNING, DMADEV_STATE_PRE_COPY, arc_precopy_open },
	{ DMADEV_STATE_PRE_COPY, DMADEV_STATE_RUNNING, arc_precopy_close },
	{ DMADEV_STATE_PRE_COPY, DMADEV_STATE_STOP_COPY, arc_precopy_stop },
	{ DMADEV_STATE_STOP, DMADEV_STATE_STOP_COPY, arc_stopcopy_open },
	{ DMADEV_STATE_STOP_COPY, DMADEV_STATE_STOP, arc_stopcopy_close },
	{ DMADEV_STATE_STOP, DMADEV_STATE_RESUMING, arc_resume_open },
	{ DMADEV_STATE_RESUMING, DMADEV_STATE_STOP, arc_resume_close },
};

static const struct arc *arc_find(enum vfio_device_mig_state from, enum vfio_device_mig_state to)
{
	for (size_t i = 0; i < ARRAY_SIZE(arcs); i++)
		if (arcs[i].from == from && arcs[i].to == to)
			return &arcs[i];
	return NULL;
}

/* The first hop of the path from @cur to @target (see the top of the file). */
static int fsm_next(enum vfio_device_mig_state cur, enum vfio_device_mig_state target,
		    enum vfio_device_mig_state *next)
{
	int parent[DMADEV_NR_STATES];
	enum vfio_device_mig_state queue[DMADEV_NR_STATES], u;
	size_t head = 0, tail = 0;

	if (cur == DMADEV_STATE_STOP_COPY && target == DMADEV_STATE_PRE_COPY)
		return -EINVAL;
	for (int i = 0; i < DMADEV_NR_STATES; i++)
		parent[i] = -1;
	parent[cur] = (int)cur;
	queue[tail++] = cur;
	while (head < tail && parent[target] < 0) {
		u = queue[head++];
		if (u != cur && is_saving(u))
			continue;
		for (size_t i = 0; i < ARRAY_SIZE(arcs); i++) {
			if (arcs[i].from != u || parent[arcs[i].to] >= 0)
				continue;
			parent[arcs[i].to] = (int)u;
			queue[tail++] = arcs[i].to;
		}
	}
	if (parent[target] < 0)
		return -EINVAL;
	while ((enum vfio_device_mig_state)parent[target] != cur)
		target = (enum vfio_device_mig_state)parent[target];
	*next = target;
	return 0;
}

static int fsm_step(struct uiommu_dmadev *d, enum vfio_device_mig_state next)
{
	enum vfio_device_mig_state cur = d->state;
	int ret;

	uiommu__log(UIOMMU_LOG_DEBUG, "dmadev: arc %d -> %d", (int)cur, (int)next);
	ret = arc_find(cur, next)->fn(d);
	if (ret) {
		uiommu__log(UIOMMU_LOG_ERR, "dmadev: arc %d -> %d failed (%d): device in ERROR",
			    (int)cur, (int)next, ret);
		dmadev_sessions_drop(d);
		dmadev_enter_state(d, DMADEV_STATE_ERROR);
	}
	return ret;
}

UIOMMU_EXPORT int uiommu_dmadev_set_state(struct uiommu_dmadev *d,
					  enum vfio_device_mig_state target)
{
	enum vfio_device_mig_state next;
	int ret = 0;

	pthread_mutex_lock(&d->fsm_lock);
	pthread_mutex_lock(&d->lock);
	if (target != d->state && (!target_supported(target) || d->state == DMADEV_STATE_ERROR))
		ret = -EINVAL;
	while (!ret && d->state != target) {
		ret = fsm_next(d->state, target, &next);
		if (!ret)
			ret = fsm_step(d, next);
	}
	pthread_mutex_unlock(&d->lock);
	pthread_mutex_unlock(&d->fsm_lock);
	return ret;
}

UIOMMU_EXPORT enum vfio_device_mig_state uiommu_dmadev_get_state(struct uiommu_dmadev *d)
{
	enum vfio_device_mig_state s;

	pthread_mutex_lock(&d->lock);
	s = d->state;
	pthread_mutex_unlock(&d->lock);
	return s;
}

UIOMMU_EXPORT void uiommu_dmadev_reset(struct uiommu_dmadev *d)
{
	pthread_mutex_lock(&d->fsm_lock);
	pthread_mutex_lock(&d->lock);
	dmadev_sessions_drop(d);
	dmadev_enter_state(d, DMADEV_STATE_RUNNING);
	pthread_mutex_unlock(&d->lock);
	pthread_mutex_unlock(&d->fsm_lock);
}

/* ---- data transfer (fsm_lock held) ---- */

/* Bytes a saving session can hand out now; -ENOMSG / -EINVAL as read() would fail. */
static int session_avail(const struct uiommu_dmadev *d, size_t *avail)
{
	if (d->state == DMADEV_STATE_STOP_COPY) {
		*avail = d->save.len - d->save.pos;
		return 0;
	}
	if (d->state != DMADEV_STATE_PRE_COPY)
		return -EINVAL;
	*avail = d->save.initial > d->save.pos ? d->save.initial - d->save.pos : 0;
	return *avail ? 0 : -ENOMSG;
}

UIOMMU_EXPORT int uiommu_dmadev_precopy_info(struct uiommu_dmadev *d, uint64_t *initial_bytes,
					     uint64_t *dirty_bytes)
{
	int ret = -EINVAL;

	pthread_mutex_lock(&d->fsm_lock);
	if (d->state == DMADEV_STATE_PRE_COPY) {
		*initial_bytes = d->save.initial > d->save.pos ? d->save.initial - d->save.pos : 0;
		*dirty_bytes = 0;
		ret = 0;
	}
	pthread_mutex_unlock(&d->fsm_lock);
	return ret;
}

UIOMMU_EXPORT int uiommu_dmadev_mig_read(struct uiommu_dmadev *d, void *buf, size_t cap,
					 size_t *len)
{
	size_t avail = 0;
	int ret;

	pthread_mutex_lock(&d->fsm_lock);
	ret = session_avail(d, &avail);
	if (!ret) {
		*len = avail < cap ? avail : cap;
		memcpy(buf, d->save.buf + d->save.pos, *len);
		d->save.pos += *len;
	}
	pthread_mutex_unlock(&d->fsm_lock);
	return ret;
}

/* The rest of a STOP_COPY stream into a new buffer. */
static int session_take(struct uiommu_dmadev *d, void **blob, uint64_t *len)
{
	size_t rest = d->save.len - d->save.pos;

	if (d->state != DMADEV_STATE_STOP_COPY)
		return -EINVAL;
	*blob = uiommu__zalloc(rest ? rest : 1);
	if (!*blob)
		return -ENOMEM;
	memcpy(*blob, d->save.buf + d->save.pos, rest);
	d->save.pos += rest;
	*len = rest;
	return 0;
}

UIOMMU_EXPORT int uiommu_dmadev_save(struct uiommu_dmadev *d, void **blob, uint64_t *len)
{
	int ret;

	pthread_mutex_lock(&d->fsm_lock);
	ret = session_take(d, blob, len);
	pthread_mutex_unlock(&d->fsm_lock);
	return ret;
}

/* Appends @len bytes to the resuming stream if it stays valid (and complete if asked). */
static int stage_append(struct uiommu_dmadev *d, const void *buf, size_t len, bool complete)
{
	struct dmadev_image img;
	int ret;

	if (d->state != DMADEV_STATE_RESUMING || len > DMADEV_STREAM_MAX - d->stage_len)
		return -EINVAL;
	memcpy(d->stage + d->stage_len, buf, len);
	ret = dmadev_stream_parse(d->stage, d->stage_len + len, &d->ident, &img);
	if (!ret && complete && !img.has_end)
		ret = -EINVAL;
	if (!ret)
		d->stage_len += len;
	return ret;
}

UIOMMU_EXPORT int uiommu_dmadev_mig_write(struct uiommu_dmadev *d, const void *buf, size_t len)
{
	int ret;

	pthread_mutex_lock(&d->fsm_lock);
	ret = stage_append(d, buf, len, false);
	pthread_mutex_unlock(&d->fsm_lock);
	return ret;
}

UIOMMU_EXPORT int uiommu_dmadev_load(struct uiommu_dmadev *d, const void *blob, uint64_t len)
{
	int ret = -EINVAL;

	pthread_mutex_lock(&d->fsm_lock);
	if (len <= DMADEV_STREAM_MAX)
		ret = stage_append(d, blob, (size_t)len, true);
	pthread_mutex_unlock(&d->fsm_lock);
	return ret;
}

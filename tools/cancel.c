/* SPDX-License-Identifier: MIT */
/*
 * SIGINT and SIGTERM for long-running commands: they are blocked in every
 * thread (which is why tool_cancel_start() must run before any other thread
 * is created, vCPUs included: threads inherit the mask) and taken by one
 * thread with sigwait(). That thread calls the cancel function set last,
 * e.g. uiommu_mig_cancel() on the migration running now, under a lock, so
 * the command can swap or clear it before destroying the object: a signal
 * never reaches freed memory, which a plain signal handler could not ensure.
 *
 * A signal that arrives while no function is set is remembered and acted on
 * as soon as one is. A second signal ends the process at once (exit 130),
 * for a cancel that does not come back.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "migrate.h"

static struct {
	pthread_mutex_t lock; /* protects fn and arg */
	void (*fn)(void *);
	void *arg;
	atomic_bool fired, quit;
	pthread_t thread;
	bool started;
} cx = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void cancel_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
}

static void *cancel_thread(void *unused)
{
	static const char again[] = "\nuiommu: interrupted again, leaving now\n";
	sigset_t set;
	int sig;

	(void)unused;
	cancel_signals(&set);
	for (;;) {
		if (sigwait(&set, &sig))
			continue;
		if (atomic_load(&cx.quit))
			return NULL;
		if (atomic_exchange(&cx.fired, true)) {
			(void)!write(STDERR_FILENO, again, sizeof(again) - 1);
			_exit(130);
		}
		pthread_mutex_lock(&cx.lock);
		if (cx.fn)
			cx.fn(cx.arg);
		pthread_mutex_unlock(&cx.lock);
	}
}

int tool_cancel_start(void)
{
	sigset_t set;
	int ret;

	cancel_signals(&set);
	ret = pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (!ret)
		ret = pthread_create(&cx.thread, NULL, cancel_thread, NULL);
	cx.started = !ret;
	return -ret;
}

void tool_cancel_set(void (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&cx.lock);
	cx.fn = fn;
	cx.arg = arg;
	if (fn && atomic_load(&cx.fired))
		fn(arg);
	pthread_mutex_unlock(&cx.lock);
}

bool tool_cancel_fired(void)
{
	return atomic_load(&cx.fired);
}

void tool_cancel_stop(void)
{
	if (!cx.started)
		return;
	tool_cancel_set(NULL, NULL);
	atomic_store(&cx.quit, true);
	pthread_kill(cx.thread, SIGTERM);
	pthread_join(cx.thread, NULL);
	cx.started = false;
}

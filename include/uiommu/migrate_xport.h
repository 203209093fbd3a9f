/* SPDX-License-Identifier: MIT */
/*
 * Transports of the migration stream: a reliable, ordered byte pipe between
 * the source and the destination.
 *
 *  - TCP: the receiver listens (127.0.0.1 unless given another address, so
 *    that nothing is exposed by accident), the sender connects. TCP_NODELAY
 *    is set, so that the small records that end a round or the stream leave
 *    at once; socket buffers are left to the kernel's autotuning, which
 *    grows them larger than a fixed setting would.
 *  - A connected socketpair, for tests without the network.
 *  - Memory: writes are appended to a buffer, reads come from a given one;
 *    for tests and fuzzing, and to keep a stream in a file.
 *
 * Every wait is bounded by the transport's timeout (-ETIMEDOUT). A peer that
 * vanishes gives -EPIPE or -ECONNRESET, never SIGPIPE. An optional bandwidth
 * limit (a token bucket) paces writes. A transport is used by one thread at a
 * time, except uiommu_xport_shutdown(), which any thread may call to make a
 * blocked read or write return -ECANCELED.
 */
#ifndef UIOMMU_MIGRATE_XPORT_H
#define UIOMMU_MIGRATE_XPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <uiommu/compiler.h>

UIOMMU_BEGIN_DECLS

struct uiommu_xport;
struct uiommu_xport_listener;

#define UIOMMU_XPORT_DEFAULT_ADDR "127.0.0.1"
#define UIOMMU_XPORT_DEFAULT_TIMEOUT_MS 30000

struct uiommu_xport_stats {
	uint64_t bytes_written;
	uint64_t bytes_read;
	uint64_t write_calls;   /* system calls (or buffer appends) that wrote */
	uint64_t throttle_ns;   /* time writes waited for the bandwidth limit */
};

/**
 * uiommu_xport_listen() - Listen for one migration connection over TCP.
 * @addr: "HOST:PORT", "HOST" (port 0), "[V6ADDR]:PORT", or NULL for
 *        "127.0.0.1:0"; HOST must be a numeric address. Port 0 picks a free port.
 * @out: the listener
 *
 * Return: 0, -EINVAL for a malformed address, or a socket error (-EADDRINUSE...).
 */
UIOMMU_EXPORT int uiommu_xport_listen(const char *addr, struct uiommu_xport_listener **out);
/* The port the listener is bound to (the chosen one when asked for 0). */
UIOMMU_EXPORT uint16_t uiommu_xport_listener_port(const struct uiommu_xport_listener *l);
/**
 * uiommu_xport_accept() - Wait for the sender to connect.
 * @timeout_ms: how long to wait; negative waits forever
 *
 * Return: 0, -ETIMEDOUT, -ECANCELED after uiommu_xport_listener_shutdown(), or
 * a socket error.
 */
UIOMMU_EXPORT int uiommu_xport_accept(struct uiommu_xport_listener *l, int timeout_ms,
				      struct uiommu_xport **out);
/* Makes a blocked accept return -ECANCELED; any thread. */
UIOMMU_EXPORT void uiommu_xport_listener_shutdown(struct uiommu_xport_listener *l);
UIOMMU_EXPORT void uiommu_xport_listener_destroy(struct uiommu_xport_listener *l);

/**
 * uiommu_xport_connect() - Connect to a listening receiver over TCP.
 * @addr: "HOST:PORT" (HOST a name or a numeric address) or "[V6ADDR]:PORT"
 * @timeout_ms: for the connection itself; negative waits forever
 *
 * Return: 0, -EINVAL (malformed address or port 0), -EHOSTUNREACH when the
 * name does not resolve, -ETIMEDOUT, or a socket error (-ECONNREFUSED...).
 */
UIOMMU_EXPORT int uiommu_xport_connect(const char *addr, int timeout_ms,
				       struct uiommu_xport **out);

/* Two connected ends of an AF_UNIX stream socketpair. */
UIOMMU_EXPORT int uiommu_xport_pair(struct uiommu_xport **a, struct uiommu_xport **b);

/*
 * Wraps a connected stream socket, which the transport then owns (closed by
 * destroy). -ENOTSOCK when @fd is not a stream socket.
 */
UIOMMU_EXPORT int uiommu_xport_from_fd(int fd, struct uiommu_xport **out);

/*
 * A memory transport: reads return the @len bytes at @data (copied at
 * creation; NULL/0 for none) and then end of stream; writes are appended to a
 * buffer that uiommu_xport_mem_data() shows.
 */
UIOMMU_EXPORT int uiommu_xport_mem_create(const void *data, size_t len,
					  struct uiommu_xport **out);
/* The bytes written so far (valid until the next write or destroy); -EINVAL if not memory. */
UIOMMU_EXPORT int uiommu_xport_mem_data(struct uiommu_xport *x, const void **data,
					size_t *len);

/* Closes the transport; never fails, takes NULL. */
UIOMMU_EXPORT void uiommu_xport_destroy(struct uiommu_xport *x);

/**
 * uiommu_xport_writev() - Write every byte of @iov, pacing to the bandwidth limit.
 *
 * Return: 0; -EPIPE or -ECONNRESET when the peer is gone, -ETIMEDOUT when the
 * peer stopped reading for longer than the timeout, -ECANCELED after shutdown.
 * On error an unknown prefix may have been written.
 */
UIOMMU_EXPORT int uiommu_xport_writev(struct uiommu_xport *x, const struct iovec *iov,
				      int iovcnt);
UIOMMU_EXPORT int uiommu_xport_write(struct uiommu_xport *x, const void *buf, size_t len);
/**
 * uiommu_xport_read() - Read what is available, 1 to @len bytes, waiting for some.
 * @got: bytes read; 0 means the peer ended the stream in order
 *
 * Return: 0, -ETIMEDOUT, -ECONNRESET, -ECANCELED, or another socket error.
 */
UIOMMU_EXPORT int uiommu_xport_read(struct uiommu_xport *x, void *buf, size_t len, size_t *got);
/* Reads exactly @len bytes; an end of stream before that is -ECONNRESET. */
UIOMMU_EXPORT int uiommu_xport_read_full(struct uiommu_xport *x, void *buf, size_t len);

/* Timeout of every later wait, in ms; negative waits forever. */
UIOMMU_EXPORT void uiommu_xport_set_timeout(struct uiommu_xport *x, int timeout_ms);
/* Limits writes to @bytes_per_sec on average (0 = unlimited, the default). */
UIOMMU_EXPORT void uiommu_xport_set_bandwidth(struct uiommu_xport *x, uint64_t bytes_per_sec);
/* The limit in force (0 = unlimited). */
UIOMMU_EXPORT uint64_t uiommu_xport_get_bandwidth(const struct uiommu_xport *x);
/* Any thread: makes blocked and later reads and writes fail with -ECANCELED. */
UIOMMU_EXPORT void uiommu_xport_shutdown(struct uiommu_xport *x);
UIOMMU_EXPORT void uiommu_xport_get_stats(const struct uiommu_xport *x,
					  struct uiommu_xport_stats *st);
/* "tcp", "unix" or "mem". */
UIOMMU_EXPORT const char *uiommu_xport_name(const struct uiommu_xport *x);

UIOMMU_END_DECLS

#endif

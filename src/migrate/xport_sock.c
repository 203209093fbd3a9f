// SPDX-License-Identifier: MIT
/*
 * Socket transports: TCP (listen/accept on the receiver, connect on the
 * sender) and AF_UNIX socketpairs, which share one data path.
 *
 * Data path. Sockets are non-blocking; a write is sendmsg(MSG_NOSIGNAL), so a
 * vanished peer is -EPIPE or -ECONNRESET and never SIGPIPE, and a read is
 * recv(). When the socket would block, poll() waits at most the transport's
 * timeout (-ETIMEDOUT). uiommu_xport_shutdown() calls shutdown(SHUT_RDWR),
 * which wakes a poll() in another thread; xport.c then reports -ECANCELED.
 *
 * TCP tuning. TCP_NODELAY on both ends: the stream writes batches of
 * megabytes with writev, so Nagle would only delay the small records (round
 * markers, end of stream) that someone waits for. Socket buffers are left to
 * the kernel's autotuning, which grows them up to net.ipv4.tcp_rmem/wmem (32
 * and 4 MiB here): setting SO_SNDBUF/SO_RCVBUF would turn autotuning off
 * and cap them, and bench_stream measured fixed 4 MiB buffers slower than
 * autotuned ones on loopback (1.75 against 1.88 GB/s, medians of 10).
 *
 * Addresses: "HOST:PORT", "HOST" (port 0) and "[V6]:PORT". The receiver binds
 * 127.0.0.1 unless told otherwise, so nothing listens on the network by
 * accident; it takes numeric addresses only. The sender resolves names.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate/migrate_internal.h"

#define ACCEPT_SLICE_MS 100

struct sock_xport {
	struct uiommu_xport x;
	int fd;
};

struct uiommu_xport_listener {
	int fd;
	uint16_t port;
	int shut;
};

static struct sock_xport *to_sock(struct uiommu_xport *x)
{
	return container_of(x, struct sock_xport, x);
}

/* Waits for @events on @fd for the transport's timeout. */
static int sock_wait(struct sock_xport *s, short events)
{
	struct pollfd p = { .fd = s->fd, .events = events };
	int n;

	do {
		n = poll(&p, 1, s->x.timeout_ms);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n ? 0 : -ETIMEDOUT;
}

static int sock_writev(struct uiommu_xport *x, const struct iovec *iov, int iovcnt, size_t *done)
{
	struct sock_xport *s = to_sock(x);
	struct msghdr msg = { .msg_iov = (struct iovec *)(uintptr_t)iov,
			      .msg_iovlen = (size_t)iovcnt };
	ssize_t n;
	int rc;

	for (;;) {
		n = sendmsg(s->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			*done = (size_t)n;
			return 0;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (n < 0 && errno == EINTR)
			continue;
		rc = sock_wait(s, POLLOUT);
		if (rc)
			return rc;
	}
}

static int sock_read(struct uiommu_xport *x, void *buf, size_t len, size_t *got)
{
	struct sock_xport *s = to_sock(x);
	ssize_t n;
	int rc;

	for (;;) {
		n = recv(s->fd, buf, len, MSG_DONTWAIT);
		if (n >= 0) {
			*got = (size_t)n;
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		rc = sock_wait(s, POLLIN);
		if (rc)
			return rc;
	}
}

static void sock_shutdown(struct uiommu_xport *x)
{
	shutdown(to_sock(x)->fd, SHUT_RDWR);
}

static void sock_destroy(struct uiommu_xport *x)
{
	struct sock_xport *s = to_sock(x);

	close(s->fd);
	uiommu__free(s);
}

static const struct xport_ops tcp_ops = {
	.name = "tcp",
	.writev = sock_writev,
	.read = sock_read,
	.shutdown = sock_shutdown,
	.destroy = sock_destroy,
};

static const struct xport_ops unix_ops = {
	.name = "unix",
	.writev = sock_writev,
	.read = sock_read,
	.shutdown = sock_shutdown,
	.destroy = sock_destroy,
};

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* Takes @fd (closed on failure). */
static int sock_wrap(int fd, const struct xport_ops *ops, struct uiommu_xport **out)
{
	struct sock_xport *s;
	int rc = set_nonblock(fd);

	if (rc)
		goto err_close;
	s = uiommu__zalloc(sizeof(*s));
	if (!s) {
		rc = -ENOMEM;
		goto err_close;
	}
	uiommu__xport_init(&s->x, ops);
	s->fd = fd;
	*out = &s->x;
	return 0;
err_close:
	close(fd);
	return rc;
}

static void tune_tcp(int fd)
{
	int one = 1;

	/* Best effort: a transport without it is slower, not wrong. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

UIOMMU_EXPORT int uiommu_xport_pair(struct uiommu_xport **a, struct uiommu_xport **b)
{
	int sv[2], rc;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	rc = sock_wrap(sv[0], &unix_ops, a);
	if (rc) {
		close(sv[1]);
		return rc;
	}
	rc = sock_wrap(sv[1], &unix_ops, b);
	if (rc) {
		uiommu_xport_destroy(*a);
		*a = NULL;
	}
	return rc;
}

UIOMMU_EXPORT int uiommu_xport_from_fd(int fd, struct uiommu_xport **out)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int type;
	socklen_t tl = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0)
		return errno == ENOTSOCK ? -ENOTSOCK : -errno;
	if (type != SOCK_STREAM)
		return -ENOTSOCK;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
		tune_tcp(fd);
		return sock_wrap(fd, &tcp_ops, out);
	}
	return sock_wrap(fd, &unix_ops, out);
}

/* ---- Addresses ---- */

struct hostport {
	char host[256];
	char port[8];
};

static int parse_port(const char *s, struct hostport *hp)
{
	char *end;
	unsigned long v;

	if (!*s || strlen(s) >= sizeof(hp->port) || *s < '0' || *s > '9')
		return -EINVAL;
	v = strtoul(s, &end, 10);
	if (*end || v > 65535)
		return -EINVAL;
	snprintf(hp->port, sizeof(hp->port), "%lu", v);
	return 0;
}

/* "HOST:PORT", "HOST", "[V6]:PORT", "[V6]"; the port defaults to 0. */
static int parse_hostport(const char *addr, struct hostport *hp)
{
	const char *colon, *host = addr;
	size_t hlen;

	strcpy(hp->port, "0");
	if (addr[0] == '[') {
		const char *close_br = strchr(addr, ']');

		if (!close_br || (close_br[1] && close_br[1] != ':'))
			return -EINVAL;
		host = addr + 1;
		hlen = (size_t)(close_br - host);
		colon = close_br[1] ? close_br + 1 : NULL;
	} else {
		colon = strrchr(addr, ':');
		if (colon && strchr(addr, ':') != colon)
			return -EINVAL; /* a bare IPv6 address needs brackets */
		hlen = colon ? (size_t)(colon - addr) : strlen(addr);
	}
	if (!hlen || hlen >= sizeof(hp->host))
		return -EINVAL;
	memcpy(hp->host, host, hlen);
	hp->host[hlen] = '\0';
	return colon ? parse_port(colon + 1, hp) : 0;
}

static int resolve(const struct hostport *hp, bool numeric, struct addrinfo **res)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | (numeric ? AI_NUMERICHOST : 0) };
	int rc = getaddrinfo(hp->host, hp->port, &hints, res);

	if (rc == EAI_SYSTEM)
		return -errno;
	if (rc == EAI_MEMORY)
		return -ENOMEM;
	if (rc)
		return numeric ? -EINVAL : -EHOSTUNREACH;
	return 0;
}

/* ---- Listener ---- */

static int bind_listen(const struct addrinfo *ai, int *fdp)
{
	int one = 1, fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	tune_tcp(fd);
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1) < 0 ||
	    set_nonblock(fd)) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	*fdp = fd;
	return 0;
}

static uint16_t bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return 0;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

UIOMMU_EXPORT int uiommu_xport_listen(const char *addr, struct uiommu_xport_listener **out)
{
	struct uiommu_xport_listener *l;
	struct addrinfo *ai;
	struct hostport hp;
	int rc = parse_hostport(addr ? addr : UIOMMU_XPORT_DEFAULT_ADDR, &hp);

	if (rc)
		return rc;
	rc = resolve(&hp, true, &ai);
	if (rc)
		return rc;
	l = uiommu__zalloc(sizeof(*l));
	if (!l) {
		rc = -ENOMEM;
		goto out_free_ai;
	}
	rc = bind_listen(ai, &l->fd);
	if (rc) {
		uiommu__free(l);
		goto out_free_ai;
	}
	l->port = bound_port(l->fd);
	*out = l;
out_free_ai:
	freeaddrinfo(ai);
	return rc;
}

UIOMMU_EXPORT uint16_t uiommu_xport_listener_port(const struct uiommu_xport_listener *l)
{
	return l->port;
}

/* Polls in slices so that a shutdown from another thread is seen. */
static int accept_wait(struct uiommu_xport_listener *l, int timeout_ms)
{
	struct pollfd p = { .fd = l->fd, .events = POLLIN };
	uint64_t deadline = uiommu__now_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000;

	for (;;) {
		int n = poll(&p, 1, ACCEPT_SLICE_MS);

		if (__atomic_load_n(&l->shut, __ATOMIC_ACQUIRE))
			return -ECANCELED;
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
		if (timeout_ms >= 0 && uiommu__now_ns() >= deadline)
			return -ETIMEDOUT;
	}
}

UIOMMU_EXPORT int uiommu_xport_accept(struct uiommu_xport_listener *l, int timeout_ms,
				      struct uiommu_xport **out)
{
	int fd, rc;

	for (;;) {
		rc = accept_wait(l, timeout_ms);
		if (rc)
			return rc;
		fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			break;
		/* The connection may have gone between poll and accept. */
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			return -errno;
	}
	tune_tcp(fd);
	return sock_wrap(fd, &tcp_ops, out);
}

UIOMMU_EXPORT void uiommu_xport_listener_shutdown(struct uiommu_xport_listener *l)
{
	__atomic_store_n(&l->shut, 1, __ATOMIC_RELEASE);
}

UIOMMU_EXPORT void uiommu_xport_listener_destroy(struct uiommu_xport_listener *l)
{
	if (!l)
		return;
	close(l->fd);
	uiommu__free(l);
}

/* ---- Connect ---- */

static int connect_wait(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int n, err = 0;
	socklen_t el = sizeof(err);

	do {
		n = poll(&p, 1, timeout_ms);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (!n)
		return -ETIMEDOUT;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		return -errno;
	return -err;
}

static int connect_one(const struct addrinfo *ai, int timeout_ms, int *fdp)
{
	int rc, fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -errno;
	tune_tcp(fd);
	rc = connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 ? -errno : 0;
	if (rc == -EINPROGRESS)
		rc = connect_wait(fd, timeout_ms);
	if (rc) {
		close(fd);
		return rc;
	}
	*fdp = fd;
	return 0;
}

UIOMMU_EXPORT int uiommu_xport_connect(const char *addr, int timeout_ms,
				       struct uiommu_xport **out)
{
	struct addrinfo *res, *ai;
	struct hostport hp;
	int fd = -1, rc = addr ? parse_hostport(addr, &hp) : -EINVAL;

	if (!rc && !strcmp(hp.port, "0"))
		rc = -EINVAL;
	if (rc)
		return rc;
	rc = resolve(&hp, false, &res);
	if (rc)
		return rc;
	for (ai = res; ai; ai = ai->ai_next) {
		rc = connect_one(ai, timeout_ms, &fd);
		if (!rc)
			break;
	}
	freeaddrinfo(res);
	return rc ? rc : sock_wrap(fd, &tcp_ops, out);
}

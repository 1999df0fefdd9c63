/* SPDX-License-Identifier: MIT */
/*
 * io_resolve.c: names to addresses, and the listen/connect helpers built on
 * them.  Numeric hosts are parsed here (inet_pton) and never reach a
 * resolver; names go to getaddrinfo(3) on the blocking pool through
 * ursa_blocking_submit, whose future the asking task waits for, so that it
 * can give up at once when it is cancelled (the lookup then finishes on the
 * pool and is thrown away).  c-ares is not used: see docs/io.md.
 */
#include "io.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ------------------------------------------------------------ getaddrinfo */

static int gai_errno(int eai, int sys_errno)
{
	switch (eai) {
	case 0:
		return 0;
	case EAI_AGAIN:
		return -EAGAIN;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_FAMILY:
		return -EAFNOSUPPORT;
	case EAI_SERVICE:
	case EAI_SOCKTYPE:
	case EAI_BADFLAGS:
		return -EINVAL;
	case EAI_SYSTEM:
		return sys_errno ? -sys_errno : -EIO;
	default: /* EAI_NONAME, EAI_NODATA, EAI_FAIL, EAI_ADDRFAMILY */
		return -ENOENT;
	}
}

/*
 * One lookup.  The asking task waits for f; if it gives up first, whoever
 * completes f (the task ursa_blocking_submit started, on the asker's core)
 * runs cb, which frees the job.
 */
struct gai_job {
	struct ursa_future f;
	struct ursa_future_cb cb;
	char *host, *service;
	struct addrinfo hints;
	bool has_hints;
	struct addrinfo *res;
	int eai, sys_errno;       /* getaddrinfo's answer */
};

static void gai_job_free(struct gai_job *j)
{
	if (j->res)
		freeaddrinfo(j->res);
	free(j->host);
	free(j->service);
	ursa_future_fini(&j->f);
	free(j);
}

static void *gai_on_pool(void *arg)
{
	struct gai_job *j = arg;

	errno = 0;
	j->eai = getaddrinfo(j->host, j->service, j->has_hints ? &j->hints : NULL, &j->res);
	j->sys_errno = errno;
	return NULL;
}

/* f is done and the asker has gone: nobody wants the answer. */
static void gai_abandoned(struct ursa_future *f, void *arg)
{
	(void)f;
	gai_job_free(arg);
}

/* Host and service need no resolver: numeric (or absent). */
static bool numeric(const char *host, const char *service)
{
	unsigned char a[sizeof(struct in6_addr)];

	if (service) {
		for (const char *p = service; *p; p++)
			if (!isdigit((unsigned char)*p))
				return false;
	}
	return !host || inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

int ursa_getaddrinfo(const char *host, const char *service, const struct addrinfo *hints,
                     struct addrinfo **res)
{
	struct ursa_task *self = ursa__sched_self();
	struct gai_job *j;
	int rc;

	if (!self)
		return -EPERM;
	if (!res || (!host && !service))
		return -EINVAL;
	if ((rc = ursa__scope_check(self, NULL)))
		return rc;
	if (numeric(host, service)) {
		/* No I/O: answer here, and make sure getaddrinfo cannot try a
		 * lookup after all. */
		struct addrinfo h = hints ? *hints : (struct addrinfo){.ai_family = AF_UNSPEC};
		int eai;

		h.ai_flags |= (host ? AI_NUMERICHOST : 0) | (service ? AI_NUMERICSERV : 0);
		errno = 0;
		eai = getaddrinfo(host, service, &h, res);
		return gai_errno(eai, errno);
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	ursa_future_init(&j->f);
	j->host = host ? strdup(host) : NULL;
	j->service = service ? strdup(service) : NULL;
	if ((host && !j->host) || (service && !j->service)) {
		gai_job_free(j);
		return -ENOMEM;
	}
	if (hints) {
		j->hints = *hints;
		j->hints.ai_addr = NULL;
		j->hints.ai_canonname = NULL;
		j->hints.ai_next = NULL;
		j->has_hints = true;
	}
	rc = ursa_blocking_submit(&j->f, gai_on_pool, j);
	if (rc < 0) {
		gai_job_free(j);
		return rc;
	}
	rc = ursa_future_wait(&j->f, NULL);
	if (!ursa_future_done(&j->f)) {
		/* We gave up (cancelled, deadline) first: the lookup runs on,
		 * and the job goes when it ends (or now, if it just did). */
		ursa_future_on_done(&j->f, &j->cb, gai_abandoned, j);
		return rc;
	}
	/* Done: rc is the pool's error, or our own cancellation that came
	 * just before the answer (which then goes unused). */
	if (rc == 0)
		rc = gai_errno(j->eai, j->sys_errno);
	if (rc == 0) {
		*res = j->res;
		j->res = NULL;
	}
	gai_job_free(j);
	return rc;
}

/* ------------------------------------------------------------------- TCP */

/* A socket bound and listening at addr; the fd or -errno.  *bound_port (if
 * not NULL) gets the port it is bound to, the kernel's pick for port 0. */
static int listen_at(const struct sockaddr *addr, socklen_t len, int backlog, uint32_t flags,
                     unsigned *bound_port)
{
	struct ursa_task *self = ursa__sched_self();
	int one = 1, v6only = (flags & URSA_LISTEN_V6ONLY) ? 1 : 0;
	struct sockaddr_storage got;
	socklen_t got_len = sizeof(got);
	int fd, rc = 0;

	fd = ursa_socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0)
		return fd;
	/* setsockopt, bind and listen never block: plain syscalls (the ring
	 * has BIND and LISTEN only from 6.11). */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    ((flags & URSA_LISTEN_REUSEPORT) &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    (addr->sa_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) < 0) ||
	    bind(fd, addr, len) < 0 || listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0 ||
	    (bound_port && getsockname(fd, (struct sockaddr *)&got, &got_len) < 0))
		rc = -errno;
	if (rc) {
		(void)ursa__io_close_fresh(self, fd);
		return rc;
	}
	if (bound_port)
		*bound_port = got.ss_family == AF_INET6
		                  ? ntohs(((struct sockaddr_in6 *)&got)->sin6_port)
		                  : ntohs(((struct sockaddr_in *)&got)->sin_port);
	return fd;
}

static int port_string(unsigned port, char out[8])
{
	if (port > 65535)
		return -EINVAL;
	snprintf(out, 8, "%u", port);
	return 0;
}

int ursa_tcp_listen_ex(const char *host, unsigned port, int backlog, uint32_t flags,
                       unsigned *bound_port)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE};
	struct addrinfo *ai, *list;
	char service[8];
	int rc;

	if (!ursa__sched_self())
		return -EPERM;
	if ((rc = port_string(port, service)) < 0)
		return rc;
	if (flags & ~(URSA_LISTEN_REUSEPORT | URSA_LISTEN_V6ONLY))
		return -EINVAL;
	if (!host || !*host) {
		/* Every address: one dual-stack IPv6 socket, or IPv4 where the
		 * kernel has no IPv6. */
		struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(port),
		                          .sin6_addr = IN6ADDR_ANY_INIT};
		struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(port),
		                         .sin_addr.s_addr = htonl(INADDR_ANY)};

		rc = listen_at((struct sockaddr *)&a6, sizeof(a6), backlog, flags, bound_port);
		if (rc != -EAFNOSUPPORT && rc != -EADDRNOTAVAIL)
			return rc;
		return listen_at((struct sockaddr *)&a4, sizeof(a4), backlog, flags, bound_port);
	}
	rc = ursa_getaddrinfo(host, service, &hints, &list);
	if (rc < 0)
		return rc;
	rc = -ENOENT;
	for (ai = list; ai; ai = ai->ai_next) {
		rc = listen_at(ai->ai_addr, ai->ai_addrlen, backlog, flags, bound_port);
		if (rc >= 0 || rc == -ECANCELED || rc == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(list);
	return rc;
}

int ursa_tcp_listen(const char *host, unsigned port, int backlog)
{
	return ursa_tcp_listen_ex(host, port, backlog, 0, NULL);
}

static int connect_to(const struct sockaddr *addr, socklen_t len, int type)
{
	struct ursa_task *self = ursa__sched_self();
	int fd = ursa_socket(addr->sa_family, type | SOCK_CLOEXEC, 0);
	int rc;

	if (fd < 0)
		return fd;
	rc = ursa_connect(fd, addr, len);
	if (rc < 0) {
		(void)ursa__io_close_fresh(self, fd);
		return rc;
	}
	return fd;
}

int ursa_tcp_connect(const char *host, unsigned port)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai, *list;
	char service[8];
	int rc;

	if (!ursa__sched_self())
		return -EPERM;
	if ((rc = port_string(port, service)) < 0)
		return rc;
	if (port == 0)
		return -EINVAL;
	if (!host || !*host)
		host = "127.0.0.1"; /* as getaddrinfo: no host is this host */
	rc = ursa_getaddrinfo(host, service, &hints, &list);
	if (rc < 0)
		return rc;
	rc = -ENOENT;
	for (ai = list; ai; ai = ai->ai_next) {
		rc = connect_to(ai->ai_addr, ai->ai_addrlen, SOCK_STREAM);
		if (rc >= 0 || rc == -ECANCELED || rc == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(list);
	return rc;
}

/* ------------------------------------------------------------------ Unix */

/* path into a sockaddr_un; '@' names the abstract namespace. */
static int unix_addr(const char *path, struct sockaddr_un *a, socklen_t *len)
{
	size_t n;

	if (!path || !*path)
		return -EINVAL;
	n = strlen(path);
	if (n >= sizeof(a->sun_path))
		return -ENAMETOOLONG;
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	memcpy(a->sun_path, path, n);
	if (path[0] == '@') {
		a->sun_path[0] = '\0';
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	return 0;
}

int ursa_unix_listen(const char *path, int backlog)
{
	struct ursa_task *self = ursa__sched_self();
	struct sockaddr_un a;
	socklen_t len;
	int fd, rc;

	if (!self)
		return -EPERM;
	if ((rc = unix_addr(path, &a, &len)) < 0)
		return rc;
	fd = ursa_socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	if (bind(fd, (struct sockaddr *)&a, len) < 0 ||
	    listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0) {
		rc = -errno;
		(void)ursa__io_close_fresh(self, fd);
		return rc;
	}
	return fd;
}

int ursa_unix_connect(const char *path)
{
	struct sockaddr_un a;
	socklen_t len;
	int rc;

	if (!ursa__sched_self())
		return -EPERM;
	if ((rc = unix_addr(path, &a, &len)) < 0)
		return rc;
	return connect_to((struct sockaddr *)&a, len, SOCK_STREAM);
}

/* SPDX-License-Identifier: MIT */
/*
 * signal.c: waiting for signals on the ring (ursa/signal.h): a non-blocking
 * signalfd, polled on the ring and read with read(2), which never waits on
 * it.  The read is the plain syscall, not a ring op: a signal is rare, and
 * how a ring read of an O_NONBLOCK signalfd behaves has changed across
 * kernels (signalfd gained read_iter and FMODE_NOWAIT only recently), while
 * poll-then-read behaves the same on all of them.
 */
#include "io.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

struct ursa_signal {
	int fd;
	atomic_int waiters; /* tasks inside ursa_signal_wait: destroy refuses */
};

/* Signals a signalfd cannot usefully take: uncatchable, or faults. */
static const int refused[] = {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP};

int ursa_signal_create(struct ursa_signal **s, const sigset_t *set, uint32_t flags)
{
	struct ursa_signal *sg;
	sigset_t blocked;
	bool any = false;

	if (!s || !set || flags)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (sigismember(set, refused[i]) == 1)
			return -EINVAL;
	/* Every signal of the set must be blocked here already: unblocked in
	 * this thread (and so, as a rule, in every worker, which inherit the
	 * mask ursa_run was called with) it would be delivered to its
	 * disposition instead, and for most signals that kills the process. */
	if (pthread_sigmask(SIG_BLOCK, NULL, &blocked) != 0)
		return -EINVAL;
	for (int sig = 1; sig < NSIG; sig++) {
		if (sigismember(set, sig) != 1)
			continue;
		if (sigismember(&blocked, sig) != 1)
			return -EINVAL;
		any = true;
	}
	if (!any)
		return -EINVAL;
	sg = malloc(sizeof(*sg));
	if (!sg)
		return -ENOMEM;
	sg->fd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sg->fd < 0) {
		int err = -errno;

		free(sg);
		return err;
	}
	atomic_init(&sg->waiters, 0);
	*s = sg;
	return 0;
}

int ursa_signal_wait(struct ursa_signal *s, struct signalfd_siginfo *info)
{
	struct signalfd_siginfo local;
	int rc;

	if (!s)
		return -EINVAL;
	if (!ursa__sched_self())
		return -EPERM;
	if (!info)
		info = &local;
	atomic_fetch_add(&s->waiters, 1);
	for (;;) {
		/* A signal already pending is taken without a switch, even by a
		 * cancelled task: cancellation stops a call only where it would
		 * wait. */
		ssize_t n = read(s->fd, info, sizeof(*info));

		if (n == (ssize_t)sizeof(*info)) {
			rc = (int)info->ssi_signo;
			break;
		}
		if (n >= 0) { /* signalfd reads whole records: cannot happen */
			rc = -EIO;
			break;
		}
		if (errno != EAGAIN && errno != EINTR) {
			rc = -errno;
			break;
		}
		/* Another waiter may take the signal that makes the fd readable:
		 * then the read above finds nothing and this waits again. */
		rc = ursa_poll(s->fd, POLLIN, URSA_FOREVER);
		if (rc < 0)
			break;
	}
	atomic_fetch_sub(&s->waiters, 1);
	return rc;
}

int ursa_signal_destroy(struct ursa_signal *s)
{
	if (!s)
		return 0;
	if (atomic_load(&s->waiters) > 0)
		return -EBUSY;
	close(s->fd);
	free(s);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * process.c: child processes (ursa/process.h).  posix_spawn starts them
 * (glibc clones with CLONE_VM | CLONE_VFORK onto a stack of its own and
 * resets signal handlers in the child before exec: the safe way in a
 * threaded process), pidfd_open holds them, and the ring waits for them:
 * IORING_OP_WAITID (6.7) where the kernel has it, else a POLL_ADD on the
 * pidfd (readable once the child has exited) and a waitid(WNOHANG) that
 * then never waits.
 *
 * A process is used by one task at a time (communicate's helpers run on the
 * caller's core, so nothing here is shared between threads).
 */
#include "stream.h"

#include "io.h"
#include "runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct ursa_process {
	pid_t pid;
	int pidfd;
	int fds[3];    /* the parent's pipe ends, -1 when none or closed */
	int status;    /* waitpid(2) form, once reaped */
	bool reaped;
	bool waiting;  /* a task is inside ursa_process_wait */
};

/* --------------------------------------------------------------- spawning */

/* fd moved (a close-on-exec duplicate) to 3 or above, so that no dup2 onto
 * 0, 1 or 2 in the child can clobber another of the child's fds. */
static int above_stdio(int fd)
{
	int nfd;

	if (fd > 2)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return nfd < 0 ? -errno : nfd;
}

static bool mode_ok(int which, int mode, int fd)
{
	switch (mode) {
	case URSA_PROCESS_INHERIT:
	case URSA_PROCESS_PIPE:
	case URSA_PROCESS_DEVNULL:
		return true;
	case URSA_PROCESS_STDOUT:
		return which == 2;
	case URSA_PROCESS_FD:
		return fd >= 0;
	default:
		return false;
	}
}

static void close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

int ursa_process_create(struct ursa_process **p, const char *file, char *const argv[],
                        const struct ursa_process_opts *opts)
{
	static const struct ursa_process_opts defaults;
	const struct ursa_process_opts *o = opts ? opts : &defaults;
	int mode[3] = {o->stdin_mode, o->stdout_mode, o->stderr_mode};
	int user_fd[3] = {o->stdin_fd, o->stdout_fd, o->stderr_fd};
	int parent[3] = {-1, -1, -1}, child[3] = {-1, -1, -1};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	struct ursa_process *pr;
	struct sigaction chld;
	sigset_t none, dfl;
	short sflags;
	pid_t pid;
	int rc, pidfd;

	if (!p || !file || !argv || (o->flags & ~URSA_PROCESS_NEW_SESSION))
		return -EINVAL;
	for (int i = 0; i < 3; i++)
		if (!mode_ok(i, mode[i], user_fd[i]))
			return -EINVAL;
	/* With SIGCHLD ignored (or SA_NOCLDWAIT) the kernel reaps children
	 * itself: the pid could be recycled before pidfd_open holds it. */
	if (sigaction(SIGCHLD, NULL, &chld) == 0 &&
	    (chld.sa_handler == SIG_IGN || (chld.sa_flags & SA_NOCLDWAIT)))
		return -ECHILD;
	if (!(pr = malloc(sizeof(*pr))))
		return -ENOMEM;

	/* The child's ends, each close-on-exec in the parent (a child spawned
	 * meanwhile by another core must not inherit them: it would hold a
	 * pipe open and its reader would never see the end). */
	for (int i = 0; i < 3; i++) {
		int pp[2];

		if (mode[i] == URSA_PROCESS_PIPE) {
			if (pipe2(pp, O_CLOEXEC) < 0) {
				rc = -errno;
				goto fail;
			}
			parent[i] = i == 0 ? pp[1] : pp[0];
			child[i] = i == 0 ? pp[0] : pp[1];
		} else if (mode[i] == URSA_PROCESS_FD) {
			child[i] = fcntl(user_fd[i], F_DUPFD_CLOEXEC, 3);
			if (child[i] < 0) {
				rc = errno == EBADF ? -EINVAL : -errno;
				goto fail;
			}
			continue;
		} else {
			continue;
		}
		if ((rc = above_stdio(parent[i])) < 0) {
			parent[i] = -1;
			goto fail;
		}
		parent[i] = rc;
		if ((rc = above_stdio(child[i])) < 0) {
			child[i] = -1;
			goto fail;
		}
		child[i] = rc;
	}

	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	rc = 0;
	for (int i = 0; i < 3 && !rc; i++) {
		switch (mode[i]) {
		case URSA_PROCESS_PIPE:
		case URSA_PROCESS_FD:
			rc = posix_spawn_file_actions_adddup2(&fa, child[i], i);
			break;
		case URSA_PROCESS_DEVNULL:
			rc = posix_spawn_file_actions_addopen(&fa, i, "/dev/null",
			                                      i == 0 ? O_RDONLY : O_WRONLY, 0);
			break;
		case URSA_PROCESS_STDOUT:
			rc = posix_spawn_file_actions_adddup2(&fa, 1, 2);
			break;
		default:
			break;
		}
	}
	if (!rc && o->cwd)
		rc = posix_spawn_file_actions_addchdir_np(&fa, o->cwd);
	/* An empty mask (the parent blocks what its signalfds watch; a child
	 * must not start with SIGTERM blocked) and SIGPIPE at its default (a
	 * server that ignores it must not hand that on to `yes | head`). */
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sflags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
	if (o->flags & URSA_PROCESS_NEW_SESSION)
		sflags |= POSIX_SPAWN_SETSID;
	if (!rc)
		rc = posix_spawnattr_setsigmask(&attr, &none);
	if (!rc)
		rc = posix_spawnattr_setsigdefault(&attr, &dfl);
	if (!rc)
		rc = posix_spawnattr_setflags(&attr, sflags);
	if (!rc)
		rc = posix_spawnp(&pid, file, &fa, &attr, argv, o->envp ? o->envp : environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc) {
		rc = -rc; /* exec's own failure too: -ENOENT, -EACCES, -ENOEXEC */
		goto fail;
	}
	close_all(child, 3);

	/* The child is ours and unreaped, so its pid cannot be recycled yet. */
	pidfd = pidfd_open(pid, 0);
	if (pidfd < 0) {
		int st;

		rc = -errno;
		kill(pid, SIGKILL);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		goto fail;
	}
	pr->pid = pid;
	pr->pidfd = pidfd;
	memcpy(pr->fds, parent, sizeof(parent));
	pr->status = 0;
	pr->reaped = false;
	pr->waiting = false;
	*p = pr;
	return 0;

fail:
	close_all(parent, 3);
	close_all(child, 3);
	free(pr);
	return rc;
}

pid_t ursa_process_pid(const struct ursa_process *p)
{
	return p ? p->pid : -1;
}

int ursa_process_fd(const struct ursa_process *p, int which)
{
	if (!p || which < 0 || which > 2)
		return -1;
	return p->fds[which];
}

static int close_fd(int fd)
{
	if (ursa__sched_self())
		return ursa_close(fd);
	return close(fd) < 0 ? -errno : 0;
}

int ursa_process_close_fd(struct ursa_process *p, int which)
{
	int fd;

	if (!p || which < 0 || which > 2)
		return -EINVAL;
	if ((fd = p->fds[which]) < 0)
		return -EBADF;
	p->fds[which] = -1;
	return close_fd(fd);
}

int ursa_process_kill(struct ursa_process *p, int sig)
{
	if (!p || sig < 0 || sig >= NSIG)
		return -EINVAL;
	if (p->reaped)
		return -ESRCH;
	return pidfd_send_signal(p->pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

/* ---------------------------------------------------------------- waiting */

/* waitpid(2)'s status word from waitid(2)'s siginfo. */
static int status_of(const siginfo_t *si)
{
	switch (si->si_code) {
	case CLD_EXITED:
		return (si->si_status & 0xff) << 8;
	case CLD_DUMPED:
		return (si->si_status & 0x7f) | 0x80;
	default: /* CLD_KILLED */
		return si->si_status & 0x7f;
	}
}

/* One wait on the ring for the child's exit, which reaps it: 0 with *si
 * filled, or -errno. */
static int wait_exit(struct ursa_process *p, siginfo_t *si)
{
	struct ursa_task *self;
	struct io_uring_sqe *sqe;
	int rc;

	if (!(self = ursa__sched_self()))
		return -EPERM;
	if (self->core->ring.caps.waitid) {
		if (!(sqe = ursa__op_sqe(&self, &rc)))
			return rc;
		/* io_uring_prep_waitid (liburing 2.5): the id in fd, the id type
		 * in len, the options in file_index, the siginfo in addr2. */
		io_uring_prep_rw(URSA__RING_OP_WAITID, sqe, p->pidfd, NULL, P_PIDFD, 0);
		sqe->file_index = WEXITED;
		sqe->addr2 = (uint64_t)(uintptr_t)si;
		return ursa__op_wait(self, sqe);
	}
	for (;;) {
		/* A pidfd is readable once its process has exited. */
		rc = ursa_poll(p->pidfd, POLLIN, URSA_FOREVER);
		if (rc < 0)
			return rc;
		si->si_pid = 0;
		if (waitid(P_PIDFD, (id_t)p->pidfd, si, WEXITED | WNOHANG) < 0)
			return -errno;
		if (si->si_pid != 0)
			return 0;
	}
}

int ursa_process_wait(struct ursa_process *p, int *status)
{
	siginfo_t si;
	int rc;

	if (!p)
		return -EINVAL;
	if (!p->reaped) {
		if (p->waiting)
			return -EBUSY;
		memset(&si, 0, sizeof(si));
		p->waiting = true;
		rc = wait_exit(p, &si);
		p->waiting = false;
		if (rc < 0)
			return rc; /* cancelled: the child is as it was */
		p->status = status_of(&si);
		p->reaped = true;
	}
	if (status)
		*status = p->status;
	return 0;
}

int ursa_process_destroy(struct ursa_process *p)
{
	if (!p)
		return 0;
	if (p->waiting)
		return -EBUSY;
	if (!p->reaped) {
		(void)pidfd_send_signal(p->pidfd, SIGKILL, NULL, 0);
		if (ursa__sched_self()) {
			struct ursa_scope s;
			int rc;

			/* Shielded: a cancelled task must still reap what it
			 * started, and SIGKILL makes the wait short. */
			ursa_scope_enter_shielded(&s, URSA_FOREVER);
			rc = ursa_process_wait(p, NULL);
			(void)ursa_scope_exit(&s);
			(void)rc;
		}
		if (!p->reaped) {
			siginfo_t si;

			while (waitid(P_PIDFD, (id_t)p->pidfd, &si, WEXITED) < 0 && errno == EINTR)
				;
		}
	}
	for (int i = 0; i < 3; i++)
		if (p->fds[i] >= 0)
			(void)close_fd(p->fds[i]);
	(void)close_fd(p->pidfd);
	free(p);
	return 0;
}

/* ------------------------------------------------------------ communicate */

struct drain {
	int fd;
	char **buf;
	size_t *len;
	int rc;
};

/* Read fd to its end into a growing buffer: 0, or -errno (what was read
 * stays in *buf). */
static int drain(int fd, char **buf, size_t *len)
{
	size_t cap = 0; /* *buf starts NULL */

	for (;;) {
		ssize_t n;

		if (cap - *len < 64 * 1024 + 1) {
			size_t ncap = cap ? cap * 2 : 64 * 1024 + 1;
			char *nb;

			while (ncap - *len < 64 * 1024 + 1)
				ncap *= 2;
			if (!(nb = realloc(*buf, ncap)))
				return -ENOMEM;
			*buf = nb;
			cap = ncap;
		}
		n = ursa_read(fd, *buf + *len, cap - 1 - *len);
		if (n <= 0) {
			(*buf)[*len] = '\0';
			return (int)n;
		}
		*len += (size_t)n;
		(*buf)[*len] = '\0';
	}
}

static void *drain_task(void *arg)
{
	struct drain *d = arg;

	d->rc = drain(d->fd, d->buf, d->len);
	return NULL;
}

struct feed {
	struct ursa_process *p;
	const char *in;
	size_t len;
	struct ursa_process_output *out;
	int rc;
};

/* Write the input, then close stdin so the child reads its end.  -EPIPE
 * (the child closed stdin or exited) ends the feed and is reported in
 * in_err, not as a failure. */
static void *feed_task(void *arg)
{
	struct feed *f = arg;
	int fd = f->p->fds[0];

	while (f->out->in_written < f->len) {
		struct iovec v = {(char *)f->in + f->out->in_written, f->len - f->out->in_written};
		ssize_t n = ursa__stream_writev(fd, URSA__STREAM_FD_PIPE, &v, 1);

		if (n > 0) {
			f->out->in_written += (size_t)n;
			continue;
		}
		if (n == -EPIPE || n == -ECONNRESET) {
			f->out->in_err = -EPIPE;
			break;
		}
		f->rc = n < 0 ? (int)n : -EIO;
		return NULL; /* cancelled (or failed): stdin stays open */
	}
	(void)ursa_process_close_fd(f->p, 0);
	return NULL;
}

void ursa_process_output_fini(struct ursa_process_output *o)
{
	if (!o)
		return;
	free(o->out);
	free(o->err);
	memset(o, 0, sizeof(*o));
}

int ursa_process_communicate(struct ursa_process *p, const void *input, size_t input_len,
                             struct ursa_process_output *out)
{
	struct feed f = {0};
	struct drain err = {0};
	struct ursa_task *feeder = NULL, *errt = NULL;
	struct ursa_scope s;
	int rc = 0, jr;

	if (!p || !out || (input_len && !input))
		return -EINVAL;
	if (input_len && p->fds[0] < 0)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!ursa__sched_self())
		return -EPERM;

	/* stdin on a task of its own, stderr on another, stdout here. */
	if (p->fds[0] >= 0) {
		if (input_len) {
			f = (struct feed){p, input, input_len, out, 0};
			rc = ursa_spawn(&feeder, feed_task, &f);
		} else {
			rc = ursa_process_close_fd(p, 0);
		}
	}
	if (!rc && p->fds[2] >= 0) {
		err = (struct drain){p->fds[2], &out->err, &out->err_len, 0};
		rc = ursa_spawn(&errt, drain_task, &err);
	}
	if (!rc && p->fds[1] >= 0)
		rc = drain(p->fds[1], &out->out, &out->out_len);
	/* Whatever happened, the helpers end before we return: they write
	 * into *out and f.  Failing or cancelled, they are told to stop. */
	if (rc) {
		if (feeder)
			ursa_cancel(feeder);
		if (errt)
			ursa_cancel(errt);
	}
	ursa_scope_enter_shielded(&s, URSA_FOREVER);
	if (feeder && (jr = ursa_join(feeder, NULL)) < 0 && !rc)
		rc = jr;
	if (errt && (jr = ursa_join(errt, NULL)) < 0 && !rc)
		rc = jr;
	(void)ursa_scope_exit(&s);
	if (!rc)
		rc = f.rc ? f.rc : err.rc;
	if (!rc)
		rc = ursa_process_wait(p, &out->status);
	return rc;
}

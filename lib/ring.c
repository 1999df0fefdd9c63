/* SPDX-License-Identifier: MIT */
/*
 * ring.c: io_uring set-up, probing, submission and reaping for one core.
 */
#include "ring.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef URSA_HAVE_VALGRIND
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#endif

/*
 * The flags we want, and the order in which we give them up when the kernel
 * refuses one (-EINVAL).  DEFER_TASKRUN (6.1) needs SINGLE_ISSUER (6.0);
 * COOP_TASKRUN and TASKRUN_FLAG are 5.19 (the flag, which shows completions
 * held back as task work in the SQ ring so that an idle core can poll for
 * them, is allowed only with one of the *_TASKRUN modes); SUBMIT_ALL is
 * 5.18; CQSIZE is 5.5.
 */
#define TASKRUN (IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG)
static const unsigned wanted_flags[] = {
	IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | TASKRUN |
		IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,
	IORING_SETUP_SINGLE_ISSUER | TASKRUN | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,
	TASKRUN | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,
	IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,
	IORING_SETUP_CQSIZE,
	0,
};

/*
 * URSA_DISABLE=msg_ring,defer_taskrun,… makes ursa behave as on a kernel
 * without those features, so the fallback paths can be tested on a kernel
 * that has them all (tests/meson.build runs a suite that way).  Names:
 * defer_taskrun, single_issuer, coop_taskrun, taskrun_flag, submit_all,
 * msg_ring, cqe_skip, socket, send_zc, waitid, direct_files, fixed_buffers,
 * and wait_in_enter (see
 * wants_wait_in_poll); other files
 * ask for theirs through ursa__ring_disabled (o_tmpfile: lib/io_file.c;
 * inline, direct_now: lib/io_inline.c).
 */
static bool disabled(const char *what)
{
	const char *list = getenv("URSA_DISABLE");
	size_t n = strlen(what);

	for (const char *p = list; p && *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] != 0))
		if (strncmp(p, what, n) == 0 && (p[n] == ',' || p[n] == 0))
			return true;
	return false;
}

bool ursa__ring_disabled(const char *what)
{
	return disabled(what);
}

/*
 * Valgrind runs one client thread at a time under a big lock, which it drops
 * only around syscalls it knows may block, and valgrind 3.19 (Debian 12)
 * takes io_uring_enter for a quick one (--trace-syscalls=yes shows it
 * "[sync]").  A worker that waits in io_uring_enter(GETEVENTS) keeps the lock,
 * so the thread that would post its completion (the other core's MSG_RING, a
 * pool thread's eventfd write) never runs again: the program hangs at 0% CPU.
 * Under valgrind (or with URSA_DISABLE=wait_in_enter, so the path is testable
 * without it) a core that must wait sleeps in poll(2) on the ring fd instead,
 * a syscall valgrind knows blocks.  The ring fd of a DEFER_TASKRUN ring does
 * not become readable when completions are deferred to its task (measured on
 * Linux 6.18: a MSG_RING, a timeout and an eventfd read all left poll asleep),
 * so this mode also gives up DEFER_TASKRUN; completions are then posted to the
 * CQ at once and wake the poll.
 */
static bool wants_wait_in_poll(void)
{
#ifdef URSA_HAVE_VALGRIND
	if (RUNNING_ON_VALGRIND)
		return true;
#endif
	return disabled("wait_in_enter");
}

static unsigned allowed_flags(void)
{
	unsigned f = ~0u;

	if (wants_wait_in_poll())
		f &= ~IORING_SETUP_DEFER_TASKRUN;

	if (disabled("defer_taskrun"))
		f &= ~IORING_SETUP_DEFER_TASKRUN;
	if (disabled("single_issuer"))
		f &= ~(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
	if (disabled("coop_taskrun"))
		f &= ~IORING_SETUP_COOP_TASKRUN;
	if (disabled("taskrun_flag"))
		f &= ~IORING_SETUP_TASKRUN_FLAG;
	if (disabled("submit_all"))
		f &= ~IORING_SETUP_SUBMIT_ALL;
	return f;
}

static void probe_ops(struct ursa__ring *r)
{
	struct io_uring_probe *p = io_uring_get_probe_ring(&r->uring);

	if (p) {
		r->caps.msg_ring = io_uring_opcode_supported(p, IORING_OP_MSG_RING);
		r->caps.socket = io_uring_opcode_supported(p, IORING_OP_SOCKET);
		r->caps.send_zc = io_uring_opcode_supported(p, IORING_OP_SEND_ZC);
		r->caps.waitid = io_uring_opcode_supported(p, URSA__RING_OP_WAITID);
		io_uring_free_probe(p);
	}
	r->caps.cqe_skip = (r->caps.features & IORING_FEAT_CQE_SKIP) != 0;
	if (disabled("msg_ring"))
		r->caps.msg_ring = false;
	if (disabled("cqe_skip"))
		r->caps.cqe_skip = false;
	if (disabled("socket"))
		r->caps.socket = false;
	if (disabled("send_zc"))
		r->caps.send_zc = false;
	if (disabled("waitid"))
		r->caps.waitid = false;
}

int ursa__ring_init(struct ursa__ring *r, unsigned entries)
{
	int rc = -EINVAL;

	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < sizeof(wanted_flags) / sizeof(wanted_flags[0]); i++) {
		struct io_uring_params p;

		memset(&p, 0, sizeof(p));
		p.flags = wanted_flags[i] & allowed_flags();
		p.cq_entries = entries * 4;
		rc = io_uring_queue_init_params(entries, &r->uring, &p);
		if (rc == 0) {
			r->caps.setup_flags = p.flags;
			r->caps.features = p.features;
			break;
		}
		if (rc != -EINVAL)
			return rc;
	}
	if (rc < 0)
		return rc;
	/* A fork()ed child must not share (and corrupt) the ring's memory. */
	io_uring_ring_dontfork(&r->uring);
	probe_ops(r);
	r->wait_in_poll = wants_wait_in_poll();
	return 0;
}

void ursa__ring_fini(struct ursa__ring *r)
{
	io_uring_queue_exit(&r->uring);
}

#ifdef URSA_HAVE_VALGRIND
/*
 * Memcheck sees a read(2) write its buffer, but not the kernel writing the
 * buffer of an io_uring read, recv or accept: it completes later, inside some
 * io_uring_enter or poll of this core, and valgrind 3.19 does not interpret
 * SQEs.  Every byte an ursa_pread or ursa_recv returned would then be
 * "uninitialised" to the caller (tests/valgrind.sh's fuzz_cancel compares
 * them).  So, under valgrind, every SQE handed to the kernel has the memory
 * the kernel may write marked defined first: the whole buffer, not only the
 * bytes the result will count (a short read's tail is not caught), and only
 * where it is addressable, so that a buffer already freed is still reported
 * when the caller touches it.  Receives into a provided-buffer ring
 * (IOSQE_BUFFER_SELECT) are not covered.
 */
static void vg_defined(const void *p, size_t n)
{
	if (p && n)
		VALGRIND_MAKE_MEM_DEFINED_IF_ADDRESSABLE(p, n);
}

static void vg_defined_iov(const struct iovec *iov, size_t n)
{
	for (size_t i = 0; iov && i < n; i++)
		vg_defined(iov[i].iov_base, iov[i].iov_len);
}

static void vg_note_sqe(const struct io_uring_sqe *sqe)
{
	void *addr = (void *)(uintptr_t)sqe->addr;

	if (sqe->flags & IOSQE_BUFFER_SELECT)
		return;
	switch (sqe->opcode) {
	case IORING_OP_READ:
	case IORING_OP_READ_FIXED:
	case IORING_OP_RECV:
		vg_defined(addr, sqe->len);
		break;
	case IORING_OP_READV:
		vg_defined_iov(addr, sqe->len);
		break;
	case IORING_OP_RECVMSG: {
		struct msghdr *m = addr;

		vg_defined(m->msg_name, m->msg_namelen);
		vg_defined_iov(m->msg_iov, m->msg_iovlen);
		vg_defined(m->msg_control, m->msg_controllen);
		vg_defined(&m->msg_namelen, sizeof(m->msg_namelen));
		vg_defined(&m->msg_controllen, sizeof(m->msg_controllen));
		vg_defined(&m->msg_flags, sizeof(m->msg_flags));
		break;
	}
	case IORING_OP_ACCEPT: { /* addr2 (off): the socklen_t * */
		socklen_t *len = (socklen_t *)(uintptr_t)sqe->addr2;

		if (len) {
			vg_defined(addr, *len);
			vg_defined(len, sizeof(*len));
		}
		break;
	}
	case IORING_OP_STATX: /* off: the struct statx * */
		vg_defined((void *)(uintptr_t)sqe->off, sizeof(struct statx));
		break;
	default:
		break;
	}
}

/* Before each submission: the SQEs filled since the last one. */
static void vg_note_sqes(struct ursa__ring *r)
{
	if (!RUNNING_ON_VALGRIND)
		return;
	for (unsigned i = r->uring.sq.sqe_head; i != r->uring.sq.sqe_tail; i++)
		vg_note_sqe(&r->uring.sq.sqes[i & r->uring.sq.ring_mask]);
}
#else
static void vg_note_sqes(struct ursa__ring *r)
{
	(void)r;
}
#endif

struct io_uring_sqe *ursa__ring_sqe(struct ursa__ring *r)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&r->uring))) {
		/* SQ full: hand the batch to the kernel now and take a fresh slot.
		 * -EBUSY/-EAGAIN (kernel short of memory for overflowed CQEs) are
		 * transient; submission is retried until a slot frees. */
		int rc;

		URSA__STAT_INC(r->stats.sq_full);
		vg_note_sqes(r);
		URSA__STATS_SUBMIT(&r->stats, io_uring_sq_ready(&r->uring));
		rc = io_uring_submit(&r->uring);

		if (rc < 0 && rc != -EBUSY && rc != -EAGAIN && rc != -EINTR) {
			fprintf(stderr, "ursa: io_uring_submit failed: %s\n", strerror(-rc));
			abort();
		}
	}
	return sqe;
}

void ursa__ring_reserve(struct ursa__ring *r, unsigned n)
{
	while (io_uring_sq_space_left(&r->uring) < n) {
		int rc;

		vg_note_sqes(r);
		URSA__STATS_SUBMIT(&r->stats, io_uring_sq_ready(&r->uring));
		rc = io_uring_submit(&r->uring);

		if (rc < 0 && rc != -EBUSY && rc != -EAGAIN && rc != -EINTR) {
			fprintf(stderr, "ursa: io_uring_submit failed: %s\n", strerror(-rc));
			abort();
		}
	}
}

void ursa__ring_submit(struct ursa__ring *r)
{
	int rc;

	vg_note_sqes(r);
	URSA__STATS_SUBMIT(&r->stats, io_uring_sq_ready(&r->uring));
	rc = io_uring_submit(&r->uring);
	if (rc < 0 && rc != -EBUSY && rc != -EAGAIN && rc != -EINTR) {
		fprintf(stderr, "ursa: io_uring_submit failed: %s\n", strerror(-rc));
		abort();
	}
}

int ursa__ring_bufring_register(struct ursa__ring *r, struct io_uring_buf_ring *br,
                                unsigned entries, unsigned bgid)
{
	struct io_uring_buf_reg reg;

	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)br;
	reg.ring_entries = entries;
	reg.bgid = (uint16_t)bgid;
	return io_uring_register_buf_ring(&r->uring, &reg, 0);
}

int ursa__ring_files_sparse(struct ursa__ring *r, unsigned n)
{
	if (disabled("direct_files"))
		return -EOPNOTSUPP;
	return io_uring_register_files_sparse(&r->uring, n);
}

int ursa__ring_buffers_register(struct ursa__ring *r, const struct iovec *iov, unsigned n)
{
	if (disabled("fixed_buffers"))
		return -EOPNOTSUPP;
	return io_uring_register_buffers(&r->uring, iov, n);
}

int ursa__ring_bufring_unregister(struct ursa__ring *r, unsigned bgid)
{
	return io_uring_unregister_buf_ring(&r->uring, (int)bgid);
}

unsigned ursa__ring_reap(struct ursa__ring *r, ursa__ring_complete_fn fn, void *ctx)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	io_uring_for_each_cqe(&r->uring, head, cqe) {
		fn(ctx, cqe->user_data, cqe->res, cqe->flags);
		n++;
	}
	io_uring_cq_advance(&r->uring, n);
	URSA__STAT_ADD(r->stats.cqes, n);
	return n;
}

/* The wait_in_poll form of io_uring_submit_and_wait(ring, 1): submit, and if
 * no CQE is ready, sleep in poll(2) until the ring fd is readable (a CQE
 * posted, or overflowed ones waiting to be flushed), then collect them.  A
 * CQE posted between the two calls makes poll return at once. */
static int submit_then_poll(struct ursa__ring *r)
{
	struct pollfd p = {.fd = r->uring.ring_fd, .events = POLLIN};
	int rc = io_uring_submit_and_get_events(&r->uring);

	if (rc < 0 || io_uring_cq_ready(&r->uring))
		return rc;
	if (poll(&p, 1, -1) < 0)
		return -errno; /* -EINTR: the caller returns to the loop */
	return io_uring_submit_and_get_events(&r->uring);
}

int ursa__ring_enter(struct ursa__ring *r, bool wait, ursa__ring_complete_fn fn, void *ctx)
{
	for (;;) {
		int rc;

		vg_note_sqes(r);
		URSA__STATS_SUBMIT(&r->stats, io_uring_sq_ready(&r->uring));
		if (IO_URING_READ_ONCE(*r->uring.sq.kflags) & IORING_SQ_CQ_OVERFLOW)
			URSA__STAT_INC(r->stats.cq_overflow);
		rc = !wait             ? io_uring_submit_and_get_events(&r->uring)
		     : r->wait_in_poll ? submit_then_poll(r)
		                       : io_uring_submit_and_wait(&r->uring, 1);

		if (rc >= 0 || rc == -ETIME) {
			ursa__ring_reap(r, fn, ctx);
			return 0;
		}
		if (rc == -EINTR) {
			/* A signal: return to the loop, which re-checks its queues. */
			ursa__ring_reap(r, fn, ctx);
			return 0;
		}
		if (rc == -EBUSY || rc == -EAGAIN) {
			/* Completions are backed up: make room by reaping, then retry
			 * without waiting (what we reaped may be what we waited for). */
			if (ursa__ring_reap(r, fn, ctx))
				wait = false;
			continue;
		}
		return rc;
	}
}

const char *ursa__ring_refusal_hint(int err)
{
	switch (-err) {
	case ENOSYS:
		return "the kernel has no io_uring, or a seccomp filter (e.g. Docker's default "
		       "profile) hides it; run with a profile that allows io_uring_setup/enter/register";
	case EPERM:
	case EACCES:
		return "io_uring is disabled (sysctl kernel.io_uring_disabled) or refused by a "
		       "seccomp/LSM policy; set kernel.io_uring_disabled=0 or allow the syscalls";
	case ENOMEM:
		return "not enough locked memory for the ring (raise `ulimit -l`, RLIMIT_MEMLOCK) "
		       "or out of memory; a smaller URSA_RING_ENTRIES may help";
	default:
		return "unexpected error from io_uring_setup";
	}
}

void ursa__ring_describe(char *buf, size_t len)
{
	struct ursa__ring r;
	int rc = ursa__ring_init(&r, 8);

	if (rc < 0) {
		snprintf(buf, len, "io_uring: unavailable (%s)\nlikely cause: %s\n", strerror(-rc),
		         ursa__ring_refusal_hint(rc));
		return;
	}
	snprintf(buf, len,
	         "io_uring: available\n"
	         "setup flags: SINGLE_ISSUER=%s DEFER_TASKRUN=%s COOP_TASKRUN=%s TASKRUN_FLAG=%s "
	         "SUBMIT_ALL=%s\n"
	         "features: NODROP=%s CQE_SKIP=%s\n"
	         "ops: MSG_RING=%s SOCKET=%s SEND_ZC=%s WAITID=%s\n",
	         r.caps.setup_flags & IORING_SETUP_SINGLE_ISSUER ? "yes" : "no",
	         r.caps.setup_flags & IORING_SETUP_DEFER_TASKRUN ? "yes" : "no",
	         r.caps.setup_flags & IORING_SETUP_COOP_TASKRUN ? "yes" : "no",
	         r.caps.setup_flags & IORING_SETUP_TASKRUN_FLAG ? "yes" : "no",
	         r.caps.setup_flags & IORING_SETUP_SUBMIT_ALL ? "yes" : "no",
	         r.caps.features & IORING_FEAT_NODROP ? "yes" : "no",
	         r.caps.cqe_skip ? "yes" : "no", r.caps.msg_ring ? "yes" : "no",
	         r.caps.socket ? "yes" : "no", r.caps.send_zc ? "yes" : "no",
	         r.caps.waitid ? "yes" : "no");
	ursa__ring_fini(&r);
}

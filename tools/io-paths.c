/* SPDX-License-Identifier: MIT */
/*
 * io-paths: which file ops this kernel completes inline (during the
 * submitting io_uring_enter, on the submitter's own CPU) and which it hands
 * to an io-wq worker thread, on a file in DIR (default /var/tmp).  The
 * numbers behind docs/io.md's decision table.
 *
 * Method: a ring set up as ursa sets it up (SINGLE_ISSUER | DEFER_TASKRUN),
 * one op submitted without waiting.  An op completed inline has its CQE in
 * the CQ when io_uring_submit returns; one that was punted posts it later,
 * as deferred task work, so the CQ is still empty, and the process has an
 * iou-wrk thread (counted in /proc/self/task).  Times each op on the ring
 * (submit + wait) and as the plain syscall on the same thread, averaged over
 * many rounds (µs): what an op the ring punts costs against doing it inline.
 *
 *   io-paths [DIR]
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct io_uring ring;
static char dir[256], path[300], path2[300], sub[300];
static char *buf;
static struct statx stx;
static int fd, dfd, rwfd;

static int iou_wrk_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d))) {
		char p[300], comm[64] = "";
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/proc/self/task/%s/comm", e->d_name);
		if ((f = fopen(p, "r"))) {
			if (fgets(comm, sizeof(comm), f) && strncmp(comm, "iou-wrk", 7) == 0)
				n++;
			fclose(f);
		}
	}
	if (d)
		closedir(d);
	return n;
}

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

enum op {
	READ_CACHED, READ_UNCACHED, READ_DIRECT, WRITE_BUFFERED, WRITE_DIRECT, OPEN, OPEN_CREAT,
	OPEN_DIRECT, CLOSE, STATX_PATH, STATX_FD, FSYNC, FDATASYNC, FALLOCATE, MKDIR, UNLINK,
	RENAME, NOPS
};
static const char *const names[NOPS] = {
	"READ, page cache", "READ, not cached", "READ, O_DIRECT", "WRITE, buffered",
	"WRITE, O_DIRECT", "OPENAT (existing)", "OPENAT O_CREAT", "OPENAT into a direct slot",
	"CLOSE", "STATX (path)", "STATX (fd, AT_EMPTY_PATH)", "FSYNC", "FSYNC (DATASYNC)",
	"FALLOCATE", "MKDIRAT", "UNLINKAT", "RENAMEAT"};

static void prep(enum op op, struct io_uring_sqe *sqe)
{
	switch (op) {
	case READ_CACHED: io_uring_prep_read(sqe, fd, buf, 4096, 0); break;
	case READ_UNCACHED:
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		io_uring_prep_read(sqe, fd, buf, 4096, 4096 * (rand() % 256));
		break;
	case READ_DIRECT: io_uring_prep_read(sqe, dfd, buf, 4096, 4096 * (rand() % 256)); break;
	case WRITE_BUFFERED: io_uring_prep_write(sqe, rwfd, buf, 4096, 0); break;
	case WRITE_DIRECT: io_uring_prep_write(sqe, dfd, buf, 4096, 0); break;
	case OPEN: io_uring_prep_openat(sqe, AT_FDCWD, path, O_RDONLY, 0); break;
	case OPEN_CREAT: io_uring_prep_openat(sqe, AT_FDCWD, path2, O_RDWR | O_CREAT, 0600); break;
	case OPEN_DIRECT: io_uring_prep_openat_direct(sqe, AT_FDCWD, path, O_RDONLY, 0, 0); break;
	case CLOSE: io_uring_prep_close(sqe, open(path, O_RDONLY)); break;
	case STATX_PATH: io_uring_prep_statx(sqe, AT_FDCWD, path, 0, STATX_SIZE, &stx); break;
	case STATX_FD: io_uring_prep_statx(sqe, fd, "", AT_EMPTY_PATH, STATX_SIZE, &stx); break;
	case FSYNC: io_uring_prep_fsync(sqe, rwfd, 0); break;
	case FDATASYNC: io_uring_prep_fsync(sqe, rwfd, IORING_FSYNC_DATASYNC); break;
	case FALLOCATE: io_uring_prep_fallocate(sqe, rwfd, 0, 0, 8192); break;
	case MKDIR: rmdir(sub); io_uring_prep_mkdirat(sqe, AT_FDCWD, sub, 0700); break;
	case UNLINK:
		close(open(path2, O_RDWR | O_CREAT, 0600));
		io_uring_prep_unlinkat(sqe, AT_FDCWD, path2, 0);
		break;
	case RENAME:
		rmdir(sub);
		close(open(path2, O_RDWR | O_CREAT, 0600));
		io_uring_prep_renameat(sqe, AT_FDCWD, path2, AT_FDCWD, sub, 0);
		break;
	default: break;
	}
}

/* The same op as a plain syscall on this thread: its result. */
static int sync_op(enum op op)
{
	switch (op) {
	case READ_CACHED: return (int)pread(fd, buf, 4096, 0);
	case READ_UNCACHED:
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		return (int)pread(fd, buf, 4096, 4096 * (rand() % 256));
	case READ_DIRECT: return (int)pread(dfd, buf, 4096, 4096 * (rand() % 256));
	case WRITE_BUFFERED: return (int)pwrite(rwfd, buf, 4096, 0);
	case WRITE_DIRECT: return (int)pwrite(dfd, buf, 4096, 0);
	case OPEN: return open(path, O_RDONLY);
	case OPEN_CREAT: return open(path2, O_RDWR | O_CREAT, 0600);
	case OPEN_DIRECT: return -1;
	case CLOSE: return close(open(path, O_RDONLY));
	case STATX_PATH: return statx(AT_FDCWD, path, 0, STATX_SIZE, &stx);
	case STATX_FD: return statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &stx);
	case FSYNC: return fsync(rwfd);
	case FDATASYNC: return fdatasync(rwfd);
	case FALLOCATE: return fallocate(rwfd, 0, 0, 8192);
	case MKDIR: return mkdir(sub, 0700);
	case UNLINK: return unlink(path2);
	case RENAME: return rename(path2, sub);
	default: return -1;
	}
}

/* After an op: undo what it made, so the next round starts the same. */
static void undo(enum op op, int res)
{
	if ((op == OPEN || op == OPEN_CREAT) && res >= 0)
		close(res);
	if (op == OPEN_DIRECT) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		struct io_uring_cqe *cqe;

		io_uring_prep_close_direct(sqe, 0);
		io_uring_submit_and_wait(&ring, 1);
		io_uring_wait_cqe(&ring, &cqe);
		io_uring_cqe_seen(&ring, cqe);
	}
	if (op == RENAME)
		unlink(sub);
}

int main(int argc, char **argv)
{
	struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER |
	                                     IORING_SETUP_DEFER_TASKRUN};
	int rc;

	snprintf(dir, sizeof(dir), "%s/io-paths.%d", argc > 1 ? argv[1] : "/var/tmp", getpid());
	if (mkdir(dir, 0700)) {
		perror(dir);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/data", dir);
	snprintf(path2, sizeof(path2), "%s/new", dir);
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	if (posix_memalign((void **)&buf, 4096, 1 << 20))
		return 1;
	memset(buf, 7, 1 << 20);
	fd = open(path, O_RDWR | O_CREAT, 0600);
	for (int i = 0; i < 4; i++)
		if (write(fd, buf, 1 << 20) != 1 << 20)
			return 1;
	fsync(fd);
	dfd = open(path, O_RDWR | O_DIRECT);
	rwfd = open(path, O_RDWR);
	if ((rc = io_uring_queue_init_params(64, &ring, &p)) < 0) {
		fprintf(stderr, "io_uring: %s\n", strerror(-rc));
		return 1;
	}
	io_uring_register_files_sparse(&ring, 4);
	printf("%-28s %-10s %10s %10s\n", "op", "path", "ring µs", "sync µs");
	for (int op = 0; op < NOPS; op++) {
		struct io_uring_cqe *cqe;
		bool inline_done = false;
		int wrk = 0, res = 0, rounds = op == FSYNC || op == FDATASYNC ? 50 : 500;
		double t0, sum = 0, ring_us;

		if ((op == READ_DIRECT || op == WRITE_DIRECT) && dfd < 0) {
			printf("%-28s %s\n", names[op], "(no O_DIRECT here)");
			continue;
		}
		for (int r = 0; r < rounds; r++) {
			if (op == READ_CACHED)
				(void)!pread(fd, buf, 4096, 0);
			prep((enum op)op, io_uring_get_sqe(&ring));
			t0 = now_us();
			io_uring_submit(&ring);
			if (r == 0) {
				inline_done = io_uring_cq_ready(&ring) > 0;
				wrk = 0;
			}
			io_uring_wait_cqe(&ring, &cqe);
			sum += now_us() - t0;
			res = cqe->res;
			io_uring_cqe_seen(&ring, cqe);
			if (r == 0 && !inline_done)
				wrk = iou_wrk_threads();
			undo((enum op)op, res);
		}
		ring_us = sum / rounds;
		if (res < 0)
			printf("(%s: ring result %d)\n", names[op], res);
		sum = 0;
		for (int r = 0; op != OPEN_DIRECT && r < rounds; r++) {
			if (op == MKDIR)
				rmdir(sub);
			if (op == RENAME) {
				rmdir(sub);
				close(open(path2, O_RDWR | O_CREAT, 0600));
			}
			if (op == UNLINK)
				close(open(path2, O_RDWR | O_CREAT, 0600));
			t0 = now_us();
			res = sync_op((enum op)op);
			sum += now_us() - t0;
			undo((enum op)op, res);
		}
		if (op == OPEN_DIRECT)
			printf("%-28s %-10s %10.1f %10s\n", names[op],
			       inline_done ? "inline" : wrk ? "io-wq" : "async", ring_us, "-");
		else
			printf("%-28s %-10s %10.1f %10.1f\n", names[op],
			       inline_done ? "inline" : wrk ? "io-wq" : "async", ring_us, sum / rounds);
	}
	io_uring_queue_exit(&ring);
	close(fd);
	close(dfd);
	close(rwfd);
	unlink(path);
	unlink(path2);
	rmdir(sub);
	rmdir(dir);
	return 0;
}

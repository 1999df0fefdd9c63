/* SPDX-License-Identifier: MIT */
/*
 * no-io-uring: run a command as it would run where io_uring is refused.
 *
 *   no-io-uring [-e EPERM|ENOSYS] COMMAND [ARG...]
 *
 * Installs a seccomp filter that makes io_uring_setup(2) fail with EPERM
 * (what kernel.io_uring_disabled=2 and Docker's default profile give; the
 * default) or ENOSYS (a kernel built without io_uring, gVisor, some
 * sandboxes), then execs COMMAND.  The filter is inherited by every thread
 * and child, so `no-io-uring bench` shows what bench does on such a machine,
 * and the tests use it to prove that nothing crashes there.  Needs no
 * privilege (PR_SET_NO_NEW_PRIVS).
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int refuse_io_uring_setup(int err)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(filter) / sizeof(filter[0]), .filter = filter};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

int main(int argc, char **argv)
{
	int err = EPERM, a = 1;

	if (argc > 2 && strcmp(argv[1], "-e") == 0) {
		if (strcmp(argv[2], "EPERM") == 0)
			err = EPERM;
		else if (strcmp(argv[2], "ENOSYS") == 0)
			err = ENOSYS;
		else
			argc = 0; /* usage */
		a = 3;
	}
	if (argc <= a) {
		fprintf(stderr, "usage: no-io-uring [-e EPERM|ENOSYS] COMMAND [ARG...]\n");
		return 2;
	}
	if (refuse_io_uring_setup(err) != 0) {
		perror("no-io-uring: seccomp");
		return 1;
	}
	execvp(argv[a], argv + a);
	fprintf(stderr, "no-io-uring: %s: %s\n", argv[a], strerror(errno));
	return 127;
}

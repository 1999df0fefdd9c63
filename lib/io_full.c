/* SPDX-License-Identifier: MIT */
/*
 * io_full.c: whole transfers, ursa_read_full and ursa_write_all: loops over
 * the short reads and writes of the file and socket calls (io_file.c,
 * io_net.c), which they use like any caller would.
 */
#include "ursa.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>

ssize_t ursa_read_full(int fd, void *buf, size_t n)
{
	size_t done = 0;

	if (n > SSIZE_MAX)
		n = SSIZE_MAX;
	while (done < n) {
		ssize_t r = ursa_read(fd, (char *)buf + done, n - done);

		if (r <= 0)
			return done ? (ssize_t)done : r;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

ssize_t ursa_write_all(int fd, const void *buf, size_t n)
{
	size_t done = 0;
	bool sock = true;

	if (n > SSIZE_MAX)
		n = SSIZE_MAX;
	while (done < n) {
		const char *p = (const char *)buf + done;
		ssize_t r = sock ? ursa_send(fd, p, n - done, 0) : ursa_write(fd, p, n - done);

		if (r == -ENOTSOCK && sock) {
			sock = false; /* a file or a pipe: write from now on */
			continue;
		}
		if (r <= 0)
			return done ? (ssize_t)done : (r ? r : -EIO);
		done += (size_t)r;
	}
	return (ssize_t)done;
}

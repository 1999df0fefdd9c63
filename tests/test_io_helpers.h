/* SPDX-License-Identifier: MIT */
/*
 * test_io_helpers.h: what the file and socket tests share: a scratch
 * directory, a seeded PRNG for message sizes and contents, and a loopback
 * listener's port.  Fibers never assert; they record and the test asserts.
 */
#ifndef URSA_TEST_IO_HELPERS_H
#define URSA_TEST_IO_HELPERS_H

#include "helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

/* A fresh directory under $TMPDIR (or /tmp); removed by rm_scratch. */
static inline void make_scratch(char *out, size_t n)
{
	const char *base = getenv("TMPDIR");

	snprintf(out, n, "%s/ursa-io-XXXXXX", base && *base ? base : "/tmp");
	cr_assert_not_null(mkdtemp(out), "mkdtemp: %s", strerror(errno));
}

/* Remove the scratch directory and what the test left in it (one level). */
static inline void rm_scratch(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];

	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
	closedir(d);
	rmdir(dir);
}

/* Entries in a directory, "." and ".." aside. */
static inline int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* xorshift64*: reproducible sizes and bytes from a seed. */
static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static inline void rng_fill(uint64_t *s, void *buf, size_t n)
{
	unsigned char *p = buf;

	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(rng_next(s) >> 56);
}

/* FNV-1a, for comparing what was sent with what came back. */
static inline uint64_t fnv(const void *buf, size_t n, uint64_t h)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

/* The port a socket is bound to (IPv4 or IPv6). */
static inline unsigned local_port(int fd)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);

	if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		return 0;
	if (a.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
	return ntohs(((struct sockaddr_in *)&a)->sin_port);
}

#endif /* URSA_TEST_IO_HELPERS_H */

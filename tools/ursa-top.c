/* SPDX-License-Identifier: MIT */
/*
 * ursa-top: watch what each core of a running ursa program is doing.
 *
 *   ursa-top [-n COUNT] [-i SECONDS] SOCKET
 *
 * The program must have been started with URSA_STATS_SOCKET=SOCKET (or
 * struct ursa_opts.stats_socket): a path, or "@name" for the abstract
 * namespace.  ursa-top connects, asks for the counter table once a second
 * (-i to change) and shows it, in place on a terminal; the counters are per
 * second over the last interval, gauges are as they are now.  -n stops after
 * COUNT tables.  The program's runtime serves the table from a thread of its
 * own, so watching it does not delay its tasks.  docs/observability.md says
 * what each column means.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t quit;

static void on_quit(int sig)
{
	(void)sig;
	quit = 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: ursa-top [-n COUNT] [-i SECONDS] SOCKET\n"
	                "  SOCKET: the program's URSA_STATS_SOCKET (a path, or @name)\n");
	exit(2);
}

static int connect_to(const char *where)
{
	struct sockaddr_un a;
	size_t n = strlen(where);
	int abstract = where[0] == '@';
	int fd;

	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	if (n >= sizeof(a.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(a.sun_path, where, n);
	if (abstract)
		a.sun_path[0] = 0;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a,
	            (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + !abstract)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* One table: send a request, read up to the NUL.  0, or -1 at EOF/error. */
static int fetch(int fd, char **buf, size_t *cap)
{
	size_t got = 0;

	if (send(fd, "t", 1, MSG_NOSIGNAL) != 1)
		return -1;
	for (;;) {
		ssize_t n;

		if (got + 4096 > *cap) {
			char *b = realloc(*buf, *cap * 2 + 8192);

			if (!b)
				return -1;
			*buf = b;
			*cap = *cap * 2 + 8192;
		}
		n = recv(fd, *buf + got, *cap - got, 0);
		if (n < 0 && errno == EINTR) {
			if (quit)
				return -1;
			continue;
		}
		if (n <= 0)
			return -1;
		got += (size_t)n;
		if ((*buf)[got - 1] == 0)
			return 0;
	}
}

int main(int argc, char **argv)
{
	long count = -1;
	double interval = 1.0;
	int opt, fd, tty = isatty(STDOUT_FILENO);
	char *buf = NULL;
	size_t cap = 0;
	struct sigaction sa;

	while ((opt = getopt(argc, argv, "n:i:h")) != -1) {
		switch (opt) {
		case 'n':
			count = strtol(optarg, NULL, 10);
			break;
		case 'i':
			interval = strtod(optarg, NULL);
			if (!(interval > 0))
				usage();
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_quit;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	fd = connect_to(argv[optind]);
	if (fd < 0) {
		fprintf(stderr, "ursa-top: cannot connect to %s: %s (is the program running with "
		                "URSA_STATS_SOCKET=%s?)\n",
		        argv[optind], strerror(errno), argv[optind]);
		return 1;
	}
	for (long i = 0; !quit && (count < 0 || i < count); i++) {
		struct timespec ts = {(time_t)interval,
		                      (long)((interval - (double)(time_t)interval) * 1e9)};

		if (i > 0)
			while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !quit)
				;
		if (quit)
			break;
		if (fetch(fd, &buf, &cap) < 0) {
			if (quit)
				break;
			fprintf(stderr, "ursa-top: %s closed the connection (the program ended?)\n",
			        argv[optind]);
			close(fd);
			free(buf);
			return 1;
		}
		if (tty)
			fputs("\033[H\033[J", stdout);
		else if (i > 0)
			fputc('\n', stdout);
		fputs(buf, stdout);
		fflush(stdout);
	}
	close(fd);
	free(buf);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * asyncio.start_server and asyncio.open_connection with StreamReader and
 * StreamWriter: a line server and its client.  ursa_reader_readline returns
 * the next line from the reader's buffer, reading more only when no whole
 * line is buffered; ursa_writer_write gathers small writes until a flush
 * (drain).  A line longer than the reader's limit is -EMSGSIZE, never a
 * buffer that grows without bound (ursa/stream.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <ursa.h>

/* handle_client(reader, writer): answer each line, uppercased. */
static void *handle_client(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct ursa_reader *r;
	struct ursa_writer *w;
	const char *line;
	ssize_t n;

	if (ursa_reader_create(&r, fd, 64, 0) < 0 ||
	    ursa_writer_create(&w, fd, 0, URSA_STREAM_CLOSE_FD) < 0)
		return NULL;
	while ((n = ursa_reader_readline(r, &line)) > 0) {
		char up[64];

		for (ssize_t i = 0; i < n; i++)
			up[i] = (char)(line[i] >= 'a' && line[i] <= 'z' ? line[i] - 32 : line[i]);
		(void)!ursa_writer_write(w, "echo: ", 6);
		(void)!ursa_writer_write(w, up, (size_t)n);
		if (ursa_writer_flush(w) < 0) /* await writer.drain() */
			break;
	}
	if (n == -EMSGSIZE) {
		char skip[256];

		(void)!ursa_writer_write(w, "line too long\n", 14);
		/* The bytes are still there: read what the client sends to its
		 * end, so that closing does not reset the connection under it. */
		while (ursa_reader_read(r, skip, sizeof(skip)) > 0)
			;
	}
	(void)!ursa_writer_close(w); /* flush, then the client reads the end */
	ursa_reader_destroy(r);
	ursa_writer_destroy(w);
	return NULL;
}

/* server = await asyncio.start_server(handle_client, '127.0.0.1', 0) */
static void *serve(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	struct ursa_spawn_opts detached = {.flags = URSA_SPAWN_DETACHED};

	for (;;) {
		int fd = ursa_accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			break; /* cancelled: the program is done */
		if (ursa_spawn_ex(NULL, ursa_core(), handle_client, (void *)(intptr_t)fd, &detached))
			ursa_close(fd);
	}
	ursa_close(lfd);
	return NULL;
}

/* reader, writer = await asyncio.open_connection('127.0.0.1', port) */
static int client(unsigned port, const char *const *lines, int n)
{
	struct ursa_reader *r;
	struct ursa_writer *w;
	const char *line;
	ssize_t len;
	int fd = ursa_tcp_connect("127.0.0.1", port);

	if (fd < 0)
		return fd;
	if (ursa_reader_create(&r, fd, 0, URSA_STREAM_CLOSE_FD) < 0 ||
	    ursa_writer_create(&w, fd, 0, 0) < 0)
		return -ENOMEM;
	for (int i = 0; i < n; i++)
		(void)!ursa_writer_write(w, lines[i], strlen(lines[i]));
	(void)!ursa_writer_close(w); /* write_eof(): all of them, then the end */
	while ((len = ursa_reader_readline(r, &line)) > 0)
		printf("%.*s", (int)len, line);
	ursa_writer_destroy(w);
	ursa_reader_destroy(r); /* closes the socket */
	return (int)len;
}

static void *main_task(void *arg)
{
	static const char *const hello[] = {"hello\n", "how are you?\n", "bye\n"};
	static const char *const long_line[] = {"short\n",
	                                        "this line is longer than the server's "
	                                        "64-byte limit on a line, so it is refused\n"};
	struct ursa_task *srv;
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int lfd = ursa_tcp_listen("127.0.0.1", 0, 16);

	(void)arg;
	if (lfd < 0 || getsockname(lfd, (struct sockaddr *)&a, &alen) < 0)
		return (void *)1;
	if (ursa_spawn(&srv, serve, (void *)(intptr_t)lfd))
		return (void *)1;
	if (client(ntohs(a.sin_port), hello, 3) < 0 || client(ntohs(a.sin_port), long_line, 2) < 0)
		return (void *)1;
	ursa_cancel(srv);
	(void)!ursa_join(srv, NULL);
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}

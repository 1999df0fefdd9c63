/* SPDX-License-Identifier: MIT */
/*
 * Concurrent HTTP requests (the seeds' httpx / aiohttp fetches and the
 * RateLimitedClient).  No network is needed: a tiny HTTP server runs as a
 * task on 127.0.0.1, and the clients are tasks using ursa's socket calls
 * (ursa/io.h), which are io_uring operations.  The "Got" lines come in the
 * order the responses arrive, so the test compares this output as a set.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

static unsigned port;
static struct ursa_sem rate_limit = URSA_SEM_INIT(3); /* max 3 concurrent requests */

/* ------------------------------------------------------------- server */

static void *handle(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char req[512], body[64], resp[256];
	size_t got = 0;
	ssize_t n;

	/* Read the request head; answer with the path in the body. */
	while (got < sizeof(req) - 1 && (n = ursa_recv(fd, req + got, sizeof(req) - 1 - got, 0)) > 0) {
		got += (size_t)n;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	req[got] = '\0';
	char *path = strchr(req, ' ');
	char *end = path ? strchr(path + 1, ' ') : NULL;
	if (!path || !end) {
		ursa_close(fd);
		return NULL;
	}
	*end = '\0';
	snprintf(body, sizeof(body), "you asked for %s\n", path + 1);
	if (ursa_sleep(SEC(0.5)) < 0) { /* a slow backend */
		ursa_close(fd);
		return NULL;
	}
	n = snprintf(resp, sizeof(resp),
	             "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
	             strlen(body), body);
	(void)!ursa_write_all(fd, resp, (size_t)n);
	ursa_close(fd);
	return NULL;
}

static void *server(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	struct ursa_spawn_opts detached = {.flags = URSA_SPAWN_DETACHED};

	for (;;) {
		int fd = ursa_accept(lfd, NULL, NULL);

		if (fd < 0)
			break; /* cancelled: the program is done */
		if (ursa_spawn_ex(NULL, ursa_core(), handle, (void *)(intptr_t)fd, &detached))
			ursa_close(fd);
	}
	ursa_close(lfd);
	return NULL;
}

/* ------------------------------------------------------------- client */

struct fetch {
	const char *path;
	int status;
	size_t bytes;
};

static int http_get(struct fetch *f)
{
	char req[256], resp[1024];
	size_t got = 0;
	ssize_t n;
	int fd = ursa_tcp_connect("127.0.0.1", port);

	if (fd < 0)
		return fd;
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", f->path);
	if (ursa_write_all(fd, req, (size_t)n) != n) {
		ursa_close(fd);
		return -EIO;
	}
	while (got < sizeof(resp) - 1 && (n = ursa_recv(fd, resp + got, sizeof(resp) - 1 - got, 0)) > 0)
		got += (size_t)n;
	ursa_close(fd);
	resp[got] = '\0';
	if (sscanf(resp, "HTTP/1.1 %d", &f->status) != 1)
		return -EPROTO;
	char *body = strstr(resp, "\r\n\r\n");
	f->bytes = body ? strlen(body + 4) : 0;
	return 0;
}

static void *fetch_url(void *arg)
{
	struct fetch *f = arg;
	int rc;

	printf("Fetching %s...\n", f->path);
	rc = http_get(f);
	if (rc < 0)
		return ursa_task_fail(rc, "GET %s", f->path);
	printf("Got %s: %d\n", f->path, f->status);
	return f;
}

/* RateLimitedClient.fetch: at most three requests in flight. */
static void *limited_fetch(void *arg)
{
	struct fetch *f = arg;
	int rc;

	if (ursa_sem_acquire(&rate_limit) < 0)
		return NULL;
	rc = http_get(f);
	ursa_sem_release(&rate_limit);
	return rc < 0 ? ursa_task_fail(rc, "GET %s", f->path) : f;
}

static void *main_task(void *arg)
{
	struct fetch urls[3] = {{.path = "/"}, {.path = "/users"}, {.path = "/repos"}};
	struct fetch items[10];
	char paths[10][16];
	struct ursa_task *srv, *t[10];
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int lfd = ursa_tcp_listen("127.0.0.1", 0, 64);

	(void)arg;
	if (lfd < 0 || getsockname(lfd, (struct sockaddr *)&a, &alen) < 0)
		return (void *)1;
	port = ntohs(a.sin_port);
	if (ursa_spawn(&srv, server, (void *)(intptr_t)lfd))
		return (void *)1;

	/* responses = await asyncio.gather(*[fetch_url(url) for url in urls]) */
	for (int i = 0; i < 3; i++)
		if (ursa_spawn(&t[i], fetch_url, &urls[i]))
			return (void *)1;
	if (ursa_gather(t, 3, 0, NULL) == 0)
		printf("Fetched 3 URLs\n");

	/* RateLimitedClient(rate_limit=3) over ten items */
	for (int i = 0; i < 10; i++) {
		snprintf(paths[i], sizeof(paths[i]), "/item/%d", i);
		items[i] = (struct fetch){paths[i], 0, 0};
		if (ursa_spawn(&t[i], limited_fetch, &items[i]))
			return (void *)1;
	}
	if (ursa_gather(t, 10, 0, NULL) == 0)
		printf("Fetched 10 items\n");

	ursa_cancel_and_join(srv, NULL);
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}

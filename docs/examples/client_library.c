/* SPDX-License-Identifier: MIT */
/*
 * Running a client library on the loop (aiohttp's place in the seeds):
 * libcurl, through its multi interface's socket and timer callbacks, on
 * ursa's ring (<ursa/adapters/curl.h>).  Each task runs one transfer and
 * waits for it as it would wait for anything else; the transfers share the
 * multi handle and run at once.  A tiny HTTP server runs as a task so that
 * no network is needed.  Built where libcurl's -dev package is installed.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <ursa.h>
#include <ursa/adapters/curl.h>

static unsigned port;

/* ------------------------------------------------------------- server */

static void *handle(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char req[1024], body[64], resp[256];
	ssize_t n = ursa_recv(fd, req, sizeof(req) - 1, 0);
	char *path, *end;

	if (n > 0) {
		req[n] = '\0';
		path = strchr(req, ' ');
		end = path ? strchr(path + 1, ' ') : NULL;
		/* A slow backend: 50 ms each. */
		if (end && ursa_sleep(URSA_MS(50)) == 0) {
			*end = '\0';
			snprintf(body, sizeof(body), "you asked for %s\n", path + 1);
			n = snprintf(resp, sizeof(resp),
			             "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s", strlen(body),
			             body);
			(void)!ursa_write_all(fd, resp, (size_t)n);
		}
	}
	ursa_close(fd);
	return NULL;
}

static void *server(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	struct ursa_spawn_opts detached = {.flags = URSA_SPAWN_DETACHED};

	for (;;) {
		int fd = ursa_accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			break;
		if (ursa_spawn_ex(NULL, ursa_core(), handle, (void *)(intptr_t)fd, &detached))
			ursa_close(fd);
	}
	ursa_close(lfd);
	return NULL;
}

/* ------------------------------------------------------------- client */

struct fetch {
	struct ursa_curl *curl;
	const char *path;
	char body[128];
	size_t len;
	long status;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct fetch *f = arg;
	size_t k = size * n;

	if (k > sizeof(f->body) - 1 - f->len)
		return 0; /* too much: libcurl fails the transfer */
	memcpy(f->body + f->len, p, k);
	f->len += k;
	f->body[f->len] = '\0';
	return k;
}

/* async with session.get(url) as response: text = await response.text() */
static void *fetch_url(void *arg)
{
	struct fetch *f = arg;
	CURL *h = curl_easy_init();
	char url[128];
	CURLcode res;
	int rc;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, f->path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
	rc = ursa_curl_perform(f->curl, h, &res); /* parks this task only */
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &f->status);
	curl_easy_cleanup(h);
	if (rc < 0)
		return ursa_task_fail(rc, "GET %s", f->path);
	if (res != CURLE_OK)
		return ursa_task_fail(-EIO, "GET %s: %s", f->path, curl_easy_strerror(res));
	return f;
}

static void *main_task(void *arg)
{
	struct fetch f[3] = {{.path = "/"}, {.path = "/users"}, {.path = "/repos"}};
	struct ursa_task *srv, *t[3];
	struct ursa_curl *curl;
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int lfd = ursa_tcp_listen("127.0.0.1", 0, 64);

	(void)arg;
	if (lfd < 0 || getsockname(lfd, (struct sockaddr *)&a, &alen) < 0)
		return (void *)1;
	port = ntohs(a.sin_port);
	if (ursa_spawn(&srv, server, (void *)(intptr_t)lfd) || ursa_curl_create(&curl) < 0)
		return (void *)1;
	/* gather(*[fetch(url) for url in urls]): three at once. */
	for (int i = 0; i < 3; i++) {
		f[i].curl = curl;
		if (ursa_spawn(&t[i], fetch_url, &f[i]))
			return (void *)1;
	}
	if (ursa_gather(t, 3, 0, NULL))
		return (void *)1;
	for (int i = 0; i < 3; i++)
		printf("%s: %ld, %s", f[i].path, f[i].status, f[i].body);
	ursa_curl_destroy(curl);
	ursa_cancel(srv);
	(void)!ursa_join(srv, NULL);
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
	curl_global_cleanup();
	return rc;
}

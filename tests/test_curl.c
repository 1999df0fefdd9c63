/* SPDX-License-Identifier: MIT */
/*
 * libcurl's multi interface on ursa (include/ursa/adapters/curl.h), against
 * real servers started here: ursa-httpd and nginx serving the same files.
 * 300 URLs fetched at once from both, every body byte-checked; a refused
 * port; a server that accepts and never answers, under a deadline; a
 * transfer cancelled from another task; two cores each with their own
 * handle.  Every test checks that no fd and no task is left.
 */
#include "test_server_procs.h"

#include <ursa/adapters/curl.h>

static struct seen S;
static char dir[256], root[300];

#define NFILES 150

/* File i: (i * 997) % 200000 bytes of a pattern that depends on i. */
static size_t file_size(int i)
{
	return (size_t)(i * 997) % 200000;
}

static char file_byte(int i, size_t off)
{
	return (char)('A' + (i * 7 + off * 13 + off / 251) % 57);
}

static void make_files(void)
{
	make_scratch(dir, sizeof(dir));
	cr_assert_eq(chmod(dir, 0755), 0); /* nginx's worker runs as nobody */
	snprintf(root, sizeof(root), "%s/www", dir);
	cr_assert_eq(mkdir(root, 0755), 0);
	for (int i = 0; i < NFILES; i++) {
		char path[400];
		size_t n = file_size(i);
		char *buf = malloc(n + 1);
		FILE *f;

		for (size_t k = 0; k < n; k++)
			buf[k] = file_byte(i, k);
		snprintf(path, sizeof(path), "%s/f%d.txt", root, i);
		f = fopen(path, "w");
		cr_assert(f && fwrite(buf, 1, n, f) == n);
		fclose(f);
		free(buf);
	}
}

static void remove_files(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

struct fetch {
	struct ursa_curl *c;
	unsigned port;
	int i;
	char *body;
	size_t len, cap;
	long status;
	int rc;
	CURLcode res;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct fetch *f = arg;
	size_t k = size * n;

	if (f->len + k > f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 4096;

		while (cap < f->len + k)
			cap *= 2;
		f->body = realloc(f->body, cap);
		f->cap = cap;
	}
	memcpy(f->body + f->len, p, k);
	f->len += k;
	return k;
}

static void *fetch_task(void *arg)
{
	struct fetch *f = arg;
	CURL *h = curl_easy_init();
	char url[128];

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/f%d.txt", f->port, f->i);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
	f->rc = ursa_curl_perform(f->c, h, &f->res);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &f->status);
	curl_easy_cleanup(h);
	return NULL;
}

static unsigned ports[2];
static struct fetch fetches[2 * NFILES];

static void *many_main(void *arg)
{
	struct ursa_task *t[2 * NFILES];
	struct ursa_curl *c = NULL;

	(void)arg;
	EXPECT(&S, ursa_curl_create(&c) == 0, 0);
	/* Both servers at once, every file, all in flight together. */
	for (int k = 0; k < 2 * NFILES; k++) {
		fetches[k] = (struct fetch){.c = c, .port = ports[k % 2], .i = k / 2};
		EXPECT(&S, ursa_spawn(&t[k], fetch_task, &fetches[k]) == 0, k);
	}
	for (int k = 0; k < 2 * NFILES; k++)
		EXPECT(&S, ursa_join(t[k], NULL) == 0, k);
	EXPECT(&S, ursa_curl_destroy(c) == 0, 0);
	return NULL;
}

Test(curl, three_hundred_fetches_from_ursa_httpd_and_nginx_at_once_byte_checked,
     .timeout = 120)
{
	struct server_proc httpd, nginx;
	int fds;

	make_files();
	httpd = start_ursa_server("URSA_TEST_HTTPD", root);
	nginx = start_nginx(dir, root);
	ports[0] = httpd.port;
	ports[1] = nginx.port;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	fds = count_fds();
	run_on(1, many_main, NULL);
	cr_assert_eq(count_fds(), fds);
	stop_proc(&httpd, SIGTERM);
	stop_proc(&nginx, SIGTERM);
	remove_files();
	ASSERT_SEEN(&S);
	for (int k = 0; k < 2 * NFILES; k++) {
		struct fetch *f = &fetches[k];
		size_t bad = 0;

		cr_assert_eq(f->rc, 0, "fetch %d: %d", k, f->rc);
		cr_assert_eq(f->res, CURLE_OK, "fetch %d: %s", k, curl_easy_strerror(f->res));
		cr_assert_eq(f->status, 200, "fetch %d (%s): status %ld", k,
		             k % 2 ? "nginx" : "ursa-httpd", f->status);
		cr_assert_eq(f->len, file_size(f->i), "fetch %d: %zu bytes", k, f->len);
		for (size_t o = 0; o < f->len; o++)
			bad += f->body[o] != file_byte(f->i, o);
		cr_assert_eq(bad, 0, "fetch %d: %zu bytes differ", k, bad);
		free(f->body);
	}
	curl_global_cleanup();
}

/* --------------------------------------- refused, stalled and cancelled */

static void *staller(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	int fds[8], n = 0;

	/* Accept and never answer, until cancelled. */
	while (n < 8) {
		int fd = ursa_accept(lfd, NULL, NULL);

		if (fd < 0)
			break;
		fds[n++] = fd;
	}
	while (n > 0)
		ursa_close(fds[--n]);
	return NULL;
}

static void *faults_main(void *arg)
{
	struct fetch f = {0}, g = {0};
	struct ursa_curl *c = NULL;
	struct ursa_task *t, *st;
	struct ursa_scope s;
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int lfd;
	uint64_t t0;

	(void)arg;
	EXPECT(&S, ursa_curl_create(&c) == 0, 0);
	/* A refused port fails fast, with libcurl's own code. */
	f = (struct fetch){.c = c, .port = free_port(), .i = 1};
	t0 = ursa_now();
	fetch_task(&f);
	EXPECT(&S, f.rc == 0 && f.res == CURLE_COULDNT_CONNECT, f.res);
	EXPECT(&S, ursa_now() - t0 < 5000 * MS, ursa_now() - t0);
	/* A server that never answers: the deadline stops the transfer. */
	lfd = ursa_tcp_listen("127.0.0.1", 0, 16);
	EXPECT(&S, lfd >= 0, lfd);
	getsockname(lfd, (struct sockaddr *)&a, &al);
	EXPECT(&S, ursa_spawn(&st, staller, (void *)(intptr_t)lfd) == 0, 0);
	f = (struct fetch){.c = c, .port = ntohs(a.sin_port), .i = 1};
	ursa_scope_enter(&s, ursa_now() + 100 * MS);
	fetch_task(&f);
	(void)ursa_scope_exit(&s);
	EXPECT(&S, f.rc == -ETIMEDOUT, f.rc);
	/* The same, cancelled from another task. */
	g = (struct fetch){.c = c, .port = ntohs(a.sin_port), .i = 2};
	EXPECT(&S, ursa_spawn(&t, fetch_task, &g) == 0, 0);
	EXPECT(&S, ursa_sleep(30 * MS) == 0, 0);
	EXPECT(&S, ursa_curl_destroy(c) == -EBUSY, 0); /* a transfer runs */
	EXPECT(&S, ursa_cancel(t) == 0, 0);
	(void)!ursa_join(t, NULL);
	EXPECT(&S, g.rc == -ECANCELED, g.rc);
	EXPECT(&S, ursa_curl_destroy(c) == 0, 0);
	EXPECT(&S, ursa_cancel(st) == 0, 0);
	(void)!ursa_join(st, NULL);
	ursa_close(lfd);
	free(f.body);
	free(g.body);
	return NULL;
}

Test(curl, refused_stalled_and_cancelled_transfers_end_cleanly)
{
	int fds;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	fds = count_fds();
	run_on(1, faults_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
	curl_global_cleanup();
}

/* ---------------------------------------------- a handle per core */

static void *per_core(void *arg)
{
	int core = (int)(intptr_t)arg;
	struct ursa_curl *c, *mine = NULL;
	struct fetch f[20];
	struct ursa_task *t[20];

	EXPECT(&S, ursa_curl_create(&mine) == 0, core);
	c = mine;
	for (int i = 0; i < 20; i++) {
		f[i] = (struct fetch){.c = c, .port = ports[0], .i = core * 20 + i};
		EXPECT(&S, ursa_spawn(&t[i], fetch_task, &f[i]) == 0, i);
	}
	for (int i = 0; i < 20; i++) {
		EXPECT(&S, ursa_join(t[i], NULL) == 0, i);
		EXPECT(&S, f[i].rc == 0 && f[i].status == 200 && f[i].len == file_size(f[i].i),
		       f[i].rc);
		free(f[i].body);
	}
	EXPECT(&S, ursa_curl_destroy(c) == 0, 0);
	return NULL;
}

static struct ursa_curl *core0_handle;
static int wrong_core_rc;

static void *wrong_core(void *arg)
{
	CURLcode res;

	wrong_core_rc = ursa_curl_perform(core0_handle, (CURL *)arg, &res);
	return NULL;
}

static void *cores_main(void *arg)
{
	struct ursa_task *t[2];
	CURLcode res;
	CURL *h = curl_easy_init();

	(void)arg;
	for (int i = 0; i < 2; i++)
		EXPECT(&S, ursa_spawn_on(&t[i], (unsigned)i, per_core, (void *)(intptr_t)i) == 0, i);
	for (int i = 0; i < 2; i++)
		EXPECT(&S, ursa_join(t[i], NULL) == 0, i);
	/* A handle used from the wrong core. */
	EXPECT(&S, ursa_curl_create(&core0_handle) == 0, 0);
	EXPECT(&S, ursa_spawn_on(&t[0], 1, wrong_core, h) == 0, 0);
	EXPECT(&S, ursa_join(t[0], NULL) == 0, 0);
	EXPECT(&S, wrong_core_rc == -EXDEV, wrong_core_rc);
	EXPECT(&S, ursa_curl_perform(core0_handle, NULL, &res) == -EINVAL, 0);
	EXPECT(&S, ursa_curl_destroy(core0_handle) == 0, 0);
	curl_easy_cleanup(h);
	return NULL;
}

Test(curl, a_handle_per_core_fetches_on_both_cores, .timeout = 60)
{
	struct server_proc httpd;
	int fds;

	make_files();
	httpd = start_ursa_server("URSA_TEST_HTTPD", root);
	ports[0] = httpd.port;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	fds = count_fds();
	run_on(2, cores_main, NULL);
	cr_assert_eq(count_fds(), fds);
	stop_proc(&httpd, SIGTERM);
	remove_files();
	ASSERT_SEEN(&S);
	curl_global_cleanup();
}

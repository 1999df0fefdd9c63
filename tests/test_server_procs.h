/* SPDX-License-Identifier: MIT */
/*
 * test_server_procs.h: real servers for the client-library tests, started
 * by the test itself on loopback and stopped at its end: ursa-kv and
 * ursa-httpd (paths from URSA_TEST_KV / URSA_TEST_HTTPD, set by meson),
 * redis-server and nginx (Debian's; a test whose server is not installed
 * skips and says so).  Plain processes made with fork/exec before ursa_run,
 * outside any task.
 */
#ifndef URSA_TEST_SERVER_PROCS_H
#define URSA_TEST_SERVER_PROCS_H

#include "test_io_helpers.h"

#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

struct server_proc {
	pid_t pid;
	unsigned port;
};

/* The first of names found in PATH (or as given with a '/'), or NULL. */
static inline const char *find_tool(const char *name)
{
	static char found[512];
	const char *path = getenv("PATH");

	if (strchr(name, '/'))
		return access(name, X_OK) == 0 ? name : NULL;
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");

		snprintf(found, sizeof(found), "%.*s/%s", (int)n, p, name);
		if (access(found, X_OK) == 0)
			return found;
		p += n + (p[n] == ':');
	}
	/* Debian puts nginx and redis-server in sbin, not always on PATH. */
	snprintf(found, sizeof(found), "/usr/sbin/%s", name);
	return access(found, X_OK) == 0 ? found : NULL;
}

/* A free loopback port (bound and released: the server binds it next). */
static inline unsigned free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	getsockname(fd, (struct sockaddr *)&a, &al);
	close(fd);
	return ntohs(a.sin_port);
}

/* Wait until something accepts on 127.0.0.1:port (10 s at most). */
static inline void wait_port(unsigned port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	for (int i = 0; i < 1000; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

		close(fd);
		if (ok)
			return;
		usleep(10000);
	}
	cr_assert_fail("nothing listens on port %u after 10 s", port);
}

/* Start argv with stdout on a pipe (stderr inherited); *out_fd gets the
 * pipe's read end if out_fd is not NULL, else stdout goes to /dev/null. */
static inline pid_t start_proc(char *const argv[], int *out_fd)
{
	posix_spawn_file_actions_t fa;
	int p[2] = {-1, -1};
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	if (out_fd) {
		cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
		posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	} else {
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	}
	cr_assert_eq(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0, "start %s",
	             argv[0]);
	posix_spawn_file_actions_destroy(&fa);
	if (out_fd) {
		close(p[1]);
		*out_fd = p[0];
	}
	return pid;
}

/* An ursa example server (argv[0] from env var `which`), on port 0: the
 * port is read from its "listening on port N" line. */
static inline struct server_proc start_ursa_server(const char *which, const char *root)
{
	const char *path = getenv(which);
	char *argv[] = {(char *)path, "--host", "127.0.0.1", "--port", "0", "--cores", "1",
	                root ? "--root" : NULL, (char *)root, NULL};
	struct server_proc s = {0};
	char line[256];
	FILE *f;
	int fd;

	if (!path || access(path, X_OK) != 0)
		cr_skip_test("%s is not set: run through meson test", which);
	s.pid = start_proc(argv, &fd);
	f = fdopen(fd, "r");
	cr_assert(f && fgets(line, sizeof(line), f), "%s printed nothing", path);
	cr_assert(strstr(line, "listening on port "), "%s said: %s", path, line);
	s.port = (unsigned)atoi(strstr(line, "listening on port ") + 18);
	fclose(f);
	return s;
}

static inline struct server_proc start_redis(void)
{
	const char *bin = find_tool("redis-server");
	char port[16];
	struct server_proc s = {0};

	if (!bin)
		cr_skip_test("redis-server is not installed (Debian: redis-server)");
	s.port = free_port();
	snprintf(port, sizeof(port), "%u", s.port);
	{
		char *argv[] = {(char *)bin, "--port", port, "--bind", "127.0.0.1", "--save", "",
		                "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no",
		                NULL};

		s.pid = start_proc(argv, NULL);
	}
	wait_port(s.port);
	return s;
}

/* nginx serving root on a free port, with every path it writes in dir. */
static inline struct server_proc start_nginx(const char *dir, const char *root)
{
	const char *bin = find_tool("nginx");
	char conf[512];
	struct server_proc s = {0};
	FILE *f;

	if (!bin)
		cr_skip_test("nginx is not installed (Debian: nginx-light)");
	s.port = free_port();
	snprintf(conf, sizeof(conf), "%s/nginx.conf", dir);
	f = fopen(conf, "w");
	cr_assert(f);
	fprintf(f,
	        "worker_processes 1;\ndaemon off;\npid %s/nginx.pid;\nerror_log %s/error.log;\n"
	        "events { worker_connections 1024; }\n"
	        "http {\n access_log off;\n client_body_temp_path %s/body;\n"
	        " proxy_temp_path %s/proxy;\n fastcgi_temp_path %s/fcgi;\n"
	        " uwsgi_temp_path %s/uwsgi;\n scgi_temp_path %s/scgi;\n"
	        " server {\n  listen 127.0.0.1:%u;\n  root %s;\n }\n}\n",
	        dir, dir, dir, dir, dir, dir, dir, s.port, root);
	fclose(f);
	{
		char *argv[] = {(char *)bin, "-c", conf, "-p", (char *)dir, NULL};

		s.pid = start_proc(argv, NULL);
	}
	wait_port(s.port);
	return s;
}

/* SIGTERM (or sig), then reap: no server outlives its test. */
static inline void stop_proc(struct server_proc *s, int sig)
{
	int st;

	if (s->pid <= 0)
		return;
	kill(s->pid, sig);
	while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR)
		;
	s->pid = 0;
}

#endif /* URSA_TEST_SERVER_PROCS_H */

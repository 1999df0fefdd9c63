/* SPDX-License-Identifier: MIT */
/*
 * Async file I/O (the seeds' aiofiles example).  aiofiles hides a thread
 * behind each call; ursa's file calls are io_uring operations on the
 * task's core (ursa/io.h), with the POSIX shapes: ursa_open, ursa_write,
 * ursa_read, ursa_close.  `async with aiofiles.open(...)` is open ... close.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ursa.h>

static int write_file(const char *path, const char *content)
{
	int fd = ursa_open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n;

	if (fd < 0)
		return fd;
	n = ursa_write_all(fd, content, strlen(content));
	ursa_close(fd);
	return n < 0 ? (int)n : 0;
}

static ssize_t read_file(const char *path, char *buf, size_t size)
{
	int fd = ursa_open(path, O_RDONLY | O_CLOEXEC, 0);
	ssize_t n;

	if (fd < 0)
		return fd;
	n = ursa_read(fd, buf, size - 1);
	ursa_close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

static void *main_task(void *arg)
{
	char path[] = "/tmp/ursa-example-XXXXXX";
	char content[64];
	int fd = mkstemp(path);

	(void)arg;
	if (fd < 0)
		return (void *)1;
	ursa_close(fd);
	if (write_file(path, "Hello, Async!") < 0 || read_file(path, content, sizeof(content)) < 0)
		return (void *)1;
	printf("%s\n", content);
	(void)!ursa_unlink(path);
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}

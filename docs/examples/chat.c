/* SPDX-License-Identifier: MIT */
/*
 * The seeds' WebSocket chat client: one task sends, one receives (`async
 * for message in websocket`), both over one connection.  A socketpair
 * stands in for the network and an echo task for the server; the calls are
 * ursa's socket operations (ursa/io.h).  Messages are lines.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

static void *echo_server(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[256];
	ssize_t n;

	while ((n = ursa_recv(fd, buf, sizeof(buf), 0)) > 0)
		if (ursa_write_all(fd, buf, (size_t)n) != n)
			break;
	ursa_close(fd); /* the client said goodbye */
	return NULL;
}

static void *send_messages(void *arg)
{
	int fd = (int)(intptr_t)arg;
	const char *messages[3] = {"Hello", "How are you?", "Goodbye"};

	for (int i = 0; i < 3; i++) {
		char line[64];
		int n = snprintf(line, sizeof(line), "%s\n", messages[i]);

		if (ursa_write_all(fd, line, (size_t)n) != n)
			return ursa_task_fail(-EPIPE, "send failed");
		if (ursa_sleep(SEC(1)) < 0)
			return NULL; /* cancelled */
	}
	(void)!ursa_shutdown(fd, SHUT_WR); /* no more messages from us */
	return NULL;
}

/* async for message in websocket: one line at a time, until EOF */
static void *receive_messages(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[256];
	size_t have = 0;
	ssize_t n;

	while ((n = ursa_recv(fd, buf + have, sizeof(buf) - 1 - have, 0)) > 0) {
		char *nl;

		have += (size_t)n;
		buf[have] = '\0';
		while ((nl = strchr(buf, '\n'))) {
			*nl = '\0';
			printf("Received: %s\n", buf);
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have + 1);
		}
	}
	return NULL;
}

static void *chat_client(void *arg)
{
	int sv[2];
	struct ursa_task *server, *t[2];

	(void)arg;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return (void *)1;
	if (ursa_spawn(&server, echo_server, (void *)(intptr_t)sv[1]))
		return (void *)1;
	/* send_task = create_task(...); receive_task = create_task(...) */
	if (ursa_spawn(&t[0], send_messages, (void *)(intptr_t)sv[0]) ||
	    ursa_spawn(&t[1], receive_messages, (void *)(intptr_t)sv[0]))
		return (void *)1;
	if (ursa_gather(t, 2, 0, NULL))
		return (void *)1;
	ursa_close(sv[0]);
	return ursa_join(server, NULL) ? (void *)1 : NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(chat_client, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}

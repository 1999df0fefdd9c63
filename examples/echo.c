// SPDX-License-Identifier: MIT
/*
 * echo: a TCP echo server on ursa, the smallest complete server.  Each
 * connection is one task that receives into a buffer on its own stack and
 * sends the bytes back; the loop reads like blocking code while the core
 * serves every other connection meanwhile.
 *
 *   echo [--port N] [--cores N] [--host ADDR] [--idle-ms MS] [--grace-ms MS]
 */
#include <stdint.h>
#include <sys/types.h>

#include "server.h"

#define ECHO_BUF 16384

static void *echo_conn(void *arg)
{
	struct server_conn c;
	char buf[ECHO_BUF];

	server_conn_enter(&c, (int)(intptr_t)arg);
	while (server_conn_wait_begin(&c)) {
		ssize_t n = ursa_recv(c.fd, buf, sizeof(buf), 0);

		server_conn_wait_end(&c);
		if (n <= 0)
			break; /* peer closed, reset, idle timeout or shutdown */
		if (server_send_all(&c, buf, (size_t)n) != n)
			break;
	}
	server_conn_leave(&c);
	return NULL;
}

static const struct server echo_server = {
	.name = "echo",
	.conn_fn = echo_conn,
};

int main(int argc, char **argv)
{
	struct server_opts o;

	server_parse_args(&echo_server, argc, argv, &o);
	return server_main(&echo_server, &o);
}

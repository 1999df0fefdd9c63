/* SPDX-License-Identifier: MIT */
/*
 * server.h: what the three example servers share -- command-line options,
 * one listener per core, the connection registry that enforces idle
 * timeouts, and graceful shutdown on SIGINT/SIGTERM.  A server supplies a
 * connection function and calls server_main(); its connection function
 * brackets its life with server_conn_enter/_leave and marks the points where
 * it waits for a new request with server_conn_wait_begin/_end.
 *
 * Shutdown, in order: a signal arrives on a signalfd read through the ring;
 * every acceptor is cancelled (listeners close, nothing new is accepted);
 * connections waiting between requests are woken with -ECANCELED (their
 * wait scope is cancelled) and close; connections in the middle of a request
 * finish it and close; after the grace period whatever is left is cancelled
 * and the process exits 0.
 */
#ifndef URSA_EXAMPLE_SERVER_H
#define URSA_EXAMPLE_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <ursa.h>

struct server_opts {
	const char *host;  /* --host [all addresses] */
	unsigned port;     /* --port [0: any free port; printed on stdout] */
	unsigned cores;    /* --cores [0: every CPU] */
	uint64_t idle_ns;  /* --idle-ms: idle / slow-client timeout [60 s] */
	uint64_t grace_ns; /* --grace-ms: shutdown grace period [5 s] */
	const char *root;  /* --root (httpd only) */
	bool one_acceptor; /* --one-acceptor: one listener on core 0 whose
	                      acceptor hands connections to the cores in turn,
	                      instead of a SO_REUSEPORT listener per core
	                      (docs/servers.md compares the two) */
};

/* One connection, embedded in each server's connection state. */
struct server_conn {
	int fd;
	bool waiting;              /* between requests: shutdown may close it */
	uint64_t deadline_ns;      /* the sweeper cancels the task past this */
	struct ursa_scope wait;    /* entered while waiting for a request */
	struct ursa_task *task;
	struct server_conn *prev, *next; /* the core's list */
};

struct server {
	const char *name;
	ursa_fn conn_fn;             /* runs one connection; arg: (void *)(intptr_t)fd */
	void (*core_init)(unsigned); /* optional: per-core set-up, run on that core */
	void (*tick)(uint64_t now);  /* optional: called on each core every sweep */
	bool want_root;              /* accepts --root */
};

/* Parse argv into *o; prints usage and exits on bad options. */
void server_parse_args(const struct server *srv, int argc, char **argv, struct server_opts *o);

/* Run the server until SIGINT/SIGTERM; returns the process exit code. */
int server_main(const struct server *srv, const struct server_opts *o);

/* The options in force (read-only once running). */
extern struct server_opts server_opts;

/* Register / unregister the calling task's connection on its core.  leave
 * closes the fd. */
void server_conn_enter(struct server_conn *c, int fd);
void server_conn_leave(struct server_conn *c);

/*
 * Bracket a wait for the next request.  begin returns false when the
 * server is shutting down (close instead of waiting).  Inside the bracket,
 * blocking calls return -ECANCELED once the server shuts down or the idle
 * timeout passes.  end marks the connection busy: from then on it has the
 * idle timeout to finish the request (a client that stops reading or sends
 * slowly is cancelled when it passes).
 */
bool server_conn_wait_begin(struct server_conn *c);
void server_conn_wait_end(struct server_conn *c);

/* Push the deadline of a busy connection out by the idle timeout (call when
 * it makes progress, such as after each chunk of a large response). */
void server_conn_progress(struct server_conn *c);

/* Whether shutdown has begun.  Any thread. */
bool server_draining(void);

#endif /* URSA_EXAMPLE_SERVER_H */

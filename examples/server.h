/* SPDX-License-Identifier: MIT */
/*
 * server.h: what the three example servers share -- command-line options,
 * one listener per core, the connection registry that enforces idle
 * timeouts, and graceful shutdown on SIGINT/SIGTERM.  A server supplies a
 * connection function and calls server_main(); its connection function
 * brackets its life with server_conn_enter/_leave and marks the points where
 * it waits for a new request with server_conn_wait_begin/_end.
 *
 * Shutdown, in order: a signal arrives on the ring (ursa_signal_wait);
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
	unsigned max_conns; /* --max-conns [0: no cap]: at the cap a new client
	                       waits in the backlog until a connection is shed
	                       or closes (server_shed_one) */
};

/* One connection, embedded in each server's connection state. */
struct server_conn {
	int fd;
	bool waiting;              /* between requests: shutdown may close it */
	bool lingered;             /* server_conn_linger has shut our side */
	bool shed;                 /* cancelled to make room (server_shed_one) */
	uint64_t deadline_ns;      /* the sweeper cancels the task past this */
	uint64_t last_io_ns;       /* the last byte moved either way, or the
	                              last wait begun (shedding's "stalled") */
	size_t credit;             /* request bytes received since the deadline
	                              last moved (server_conn_received) */
	bool sending;              /* in server_send_all or server_conn_linger:
	                              the peer's acknowledgements are progress */
	bool looking;              /* waiting past its deadline with an answer
	                              still queued: the sweeper watches it */
	uint64_t acked;            /* the peer's bytes acknowledged (TCP_INFO)
	                              at the sweeper's last look */
	uint64_t acked_look_ns;    /* when that was (0: never) */
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
 * closes the fd; once shutdown has begun it lingers first when the peer
 * has sent what was not read (server_conn_linger with drain), so
 * that the answers already sent reach it rather than a reset. */
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

/*
 * Count n bytes of a request received while inside it.  The deadline moves
 * out once per SERVER_PROGRESS_BYTES received, not per receive: a large
 * request that keeps arriving is never cut off, while one trickled a few
 * bytes at a time (slowloris) still has the idle timeout to arrive.  Read
 * so, --idle-ms sets a minimum upload rate of SERVER_PROGRESS_BYTES per
 * timeout (16 KiB per minute by default).
 */
#define SERVER_PROGRESS_BYTES (16u << 10)
void server_conn_received(struct server_conn *c, size_t n);

/*
 * Send all n bytes (ursa_send, so a closed peer is -EPIPE, never SIGPIPE),
 * moving the deadline out after every send that moves bytes: the idle
 * timeout bounds a stall, not a whole answer, so a slow but steady reader
 * gets a large answer whole and a reader that stops is dropped.  One send
 * may wait longer than the timeout for a steady reader (the kernel wakes a
 * writer only once a third of a full send queue has gone: 4 MiB at most,
 * tcp_wmem), so while it waits the sweeper counts the bytes the peer
 * acknowledges as progress too.  Returns n,
 * or what ursa_write_all would: a short count, or -errno if nothing went.
 */
ssize_t server_send_all(struct server_conn *c, const void *buf, size_t n);

/*
 * Close gracefully while the peer may still be sending: shut our side (a
 * FIN after every byte already sent), then read and drop what comes until
 * the peer closes, or is quiet for 100 ms with every byte we sent
 * acknowledged (nginx's lingering close).  Closing with unread input would
 * send a reset instead, and a reset throws away whatever of our answers is
 * still in the kernel's send queue, and may make the peer's kernel drop what
 * it has received but not yet handed over.  After a refusal (drain false)
 * it lingers at most 2 s and 1 MiB.  Shutting down (drain true) it returns
 * at once when nothing is unread and nothing unacknowledged, and is bounded
 * otherwise only by the grace period, whose end cancels it.  The caller
 * still calls server_conn_leave.
 */
void server_conn_linger(struct server_conn *c, bool drain);

/* Whether shutdown has begun.  Any thread. */
bool server_draining(void);

#endif /* URSA_EXAMPLE_SERVER_H */

// SPDX-License-Identifier: MIT
/*
 * chat: a WebSocket chat room on ursa (RFC 6455), and its terminal client.
 *
 *   ursa-chat [--port N] [--host ADDR] [--idle-ms MS] [--grace-ms MS]
 *             [--queue-kib N] [--max-msg-kib N]
 *   ursa-chat --connect HOST:PORT
 *
 * The server serves its page at / and takes WebSocket connections at /ws;
 * every text or binary message a client sends goes to every connected
 * client, the sender included, unchanged.  The frames are Debian's libwslay
 * (masking, fragments, control frames, the close handshake, UTF-8 checks,
 * the message size limit); ursa moves the bytes.  wslay's event API is
 * written for non-blocking sockets: its callbacks here never block, they
 * read from the bytes the reader task has received and write into a buffer
 * the writer task sends, so the context is only ever touched between
 * switches (one core, cooperative tasks: no lock).
 *
 * Each client has a reader task (the connection's task) and a writer task.
 * A message is queued to every client's wslay context and the writers woken;
 * a writer that cannot keep up only grows its own queue.  The queue is
 * bounded (--queue-kib, 1 MiB by default): a client whose queue passes it is
 * sent a close frame (1008, "too slow") ahead of what is queued and dropped.
 * A client silent for --idle-ms is pinged, and dropped if it stays silent
 * for another --idle-ms.
 *
 * The room lives on one core (the server runs with one core): broadcast is
 * a walk over one list with no lock.  docs/examples.md has the numbers.
 *
 * --connect runs the terminal client: one task sends the lines read from
 * stdin as text messages while another prints every message received, one
 * per line; end of input sends a close frame and the client exits when the
 * server's close arrives.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <wslay/wslay.h>

#include "server.h"

#define HEAD_MAX 8192         /* request / response head */
#define OUT_CAP (64u << 10)   /* bytes wslay may write before they are sent */
#define RECV_BUF (16u << 10)
#define CLOSE_WAIT_NS URSA_SEC(2) /* for the peer's close after ours */

static size_t queue_max = 1u << 20;  /* --queue-kib */
static size_t msg_max = 64u << 10;   /* --max-msg-kib */

struct peer {
	struct server_conn sc;       /* server side only */
	int fd;
	bool server;
	wslay_event_context_ptr ws;
	const uint8_t *rp;           /* received bytes wslay has not taken */
	size_t rlen;
	uint8_t out[OUT_CAP];        /* bytes wslay wrote, not sent yet */
	size_t outlen;
	struct ursa_event wake;      /* the writer has something to do */
	bool reader_done;            /* the writer ends once it has flushed */
	bool dropped;                /* too slow or silent: our close is queued */
	bool pinged;                 /* idle: a ping is out */
	struct peer *prev, *next;    /* the room (server side) */
};

/* ------------------------------------------------------------ wslay glue */

static ssize_t ws_recv(wslay_event_context_ptr ws, uint8_t *buf, size_t len, int flags,
                       void *user)
{
	struct peer *p = user;

	(void)flags;
	if (p->rlen == 0) {
		wslay_event_set_error(ws, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (len > p->rlen)
		len = p->rlen;
	memcpy(buf, p->rp, len);
	p->rp += len;
	p->rlen -= len;
	return (ssize_t)len;
}

static ssize_t ws_send(wslay_event_context_ptr ws, const uint8_t *data, size_t len, int flags,
                       void *user)
{
	struct peer *p = user;

	(void)flags;
	if (p->outlen == OUT_CAP) {
		wslay_event_set_error(ws, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (len > OUT_CAP - p->outlen)
		len = OUT_CAP - p->outlen;
	memcpy(p->out + p->outlen, data, len);
	p->outlen += len;
	return (ssize_t)len;
}

static int ws_genmask(wslay_event_context_ptr ws, uint8_t *buf, size_t len, void *user)
{
	(void)ws;
	(void)user;
	return getrandom(buf, len, 0) == (ssize_t)len ? 0 : -1;
}

/* The writer: whatever wslay has queued (messages, pongs, our close) goes
 * out through out[].  It ends when our close has been sent, on a send error
 * or stall, or once the reader is done and nothing is left. */
static void *writer(void *arg)
{
	struct peer *p = arg;

	for (;;) {
		ursa_event_clear(&p->wake);
		if (wslay_event_send(p->ws) < 0)
			break;
		if (p->outlen) {
			struct ursa_scope s;
			ssize_t r;

			/* A stalled reader has the idle timeout to take bytes. */
			ursa_scope_enter(&s, ursa_now() + server_opts.idle_ns);
			r = ursa_write_all(p->fd, p->out, p->outlen);
			(void)ursa_scope_exit(&s);
			if (r != (ssize_t)p->outlen)
				break;
			p->outlen = 0;
			continue; /* wslay may have more */
		}
		if (wslay_event_get_close_sent(p->ws) || p->reader_done)
			break;
		if (!wslay_event_want_write(p->ws) && ursa_event_wait(&p->wake) < 0)
			break;
	}
	p->reader_done = true;
	/* The reader may be waiting for bytes that will never matter now. */
	if (!wslay_event_get_close_received(p->ws))
		(void)!ursa_shutdown(p->fd, SHUT_RD);
	return NULL;
}

static void peer_close(struct peer *p, uint16_t code, const char *why)
{
	if (wslay_event_get_close_sent(p->ws))
		return;
	(void)wslay_event_queue_close(p->ws, code, (const uint8_t *)why, strlen(why));
	ursa_event_set(&p->wake);
}

/* Feed n received bytes to wslay (its callbacks deliver the messages). */
static int peer_feed(struct peer *p, const uint8_t *buf, size_t n)
{
	int r;

	p->rp = buf;
	p->rlen = n;
	r = wslay_event_recv(p->ws);
	p->rlen = 0;
	if (wslay_event_want_write(p->ws))
		ursa_event_set(&p->wake);
	return r;
}

/* ---------------------------------------------------------- the handshake */

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + the RFC's GUID)). */
static void accept_token(const char *key, size_t klen, char out[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char in[64 + sizeof(guid)], md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;

	memcpy(in, key, klen);
	memcpy(in + klen, guid, sizeof(guid) - 1);
	EVP_Digest(in, klen + sizeof(guid) - 1, md, &mdlen, EVP_sha1(), NULL);
	EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}

/* The value of header name in head (NUL-terminated, CRLF lines), its length
 * in *len; NULL if absent. */
static const char *header(const char *head, const char *name, size_t *len)
{
	size_t nl = strlen(name);

	for (const char *l = strstr(head, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
		const char *h = l + 2, *e;

		if (strncasecmp(h, name, nl) || h[nl] != ':')
			continue;
		h += nl + 1;
		while (*h == ' ' || *h == '\t')
			h++;
		e = strstr(h, "\r\n");
		while (e > h && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		*len = (size_t)(e - h);
		return h;
	}
	return NULL;
}

/* Whether the comma-separated header value v (length n) has token t. */
static bool has_token(const char *v, size_t n, const char *t)
{
	size_t tl = strlen(t);

	for (size_t i = 0; v && i + tl <= n; i++)
		if (!strncasecmp(v + i, t, tl) && (i == 0 || v[i - 1] == ' ' || v[i - 1] == ',') &&
		    (i + tl == n || v[i + tl] == ' ' || v[i + tl] == ','))
			return true;
	return false;
}

/* Read a head (up to the blank line) into buf; the bytes after it stay in
 * buf at *rest (count *nrest).  The head's length, or -errno (-EMSGSIZE:
 * too long). */
static ssize_t read_head(struct peer *p, char *buf, size_t cap, size_t *nrest)
{
	size_t have = 0;

	for (;;) {
		char *end;
		ssize_t n;

		if (p->server && !server_conn_wait_begin(&p->sc))
			return -ECANCELED;
		n = ursa_recv(p->fd, buf + have, cap - 1 - have, 0);
		if (p->server)
			server_conn_wait_end(&p->sc);
		if (n <= 0)
			return n ? n : -ECONNRESET;
		have += (size_t)n;
		buf[have] = '\0';
		if ((end = strstr(buf, "\r\n\r\n"))) {
			size_t hl = (size_t)(end + 4 - buf);

			*nrest = have - hl;
			return (ssize_t)hl;
		}
		if (have == cap - 1)
			return -EMSGSIZE;
	}
}

/* ---------------------------------------------------------------- server */

static struct peer *room;
static const char page[] =
#include "chat_page.h"
	;

static void room_broadcast(uint8_t opcode, const uint8_t *msg, size_t len)
{
	for (struct peer *q = room; q; q = q->next) {
		struct wslay_event_msg m = {.opcode = opcode, .msg = msg, .msg_length = len};

		if (q->dropped || wslay_event_get_close_sent(q->ws))
			continue;
		if (wslay_event_get_queued_msg_length(q->ws) + len > queue_max) {
			/* Too far behind: wslay sends control frames ahead of
			 * queued messages, so the close goes out next. */
			q->dropped = true;
			peer_close(q, WSLAY_CODE_POLICY_VIOLATION, "too slow");
			continue;
		}
		if (wslay_event_queue_msg(q->ws, &m) == 0)
			ursa_event_set(&q->wake);
	}
}

static void on_msg_server(wslay_event_context_ptr ws, const struct wslay_event_on_msg_recv_arg *a,
                          void *user)
{
	struct peer *p = user;

	(void)ws;
	if ((a->opcode == WSLAY_TEXT_FRAME || a->opcode == WSLAY_BINARY_FRAME) && !p->dropped)
		room_broadcast(a->opcode, a->msg, a->msg_length);
}

static int respond(struct peer *p, const char *status, const char *extra, const char *type,
                   const char *body, size_t blen)
{
	char head[512];
	int n = snprintf(head, sizeof(head),
	                 "HTTP/1.1 %s\r\n%sContent-Type: %s\r\nContent-Length: %zu\r\n"
	                 "Connection: close\r\n\r\n",
	                 status, extra, type, blen);

	if (server_send_all(&p->sc, head, (size_t)n) != n)
		return -EPIPE;
	return blen && server_send_all(&p->sc, body, blen) != (ssize_t)blen ? -EPIPE : 0;
}

/* The request head: 1 (and the 101 sent) for a WebSocket handshake, 0 after
 * another answer was sent, < 0 on error. */
static int handshake_server(struct peer *p, char *head)
{
	static const char plain[] = "text/plain; charset=utf-8";
	const char *up, *conn, *key, *ver;
	size_t ul = 0, cl = 0, kl = 0, vl = 0;
	char path[256], accept[29], resp[256];
	int n;

	if (sscanf(head, "%*s %255s HTTP/1.%*c", path) != 1 || strncmp(head, "GET ", 4)) {
		if (!strncmp(head, "HEAD ", 5) || !strncmp(head, "POST ", 5) || !strncmp(head, "PUT ", 4))
			return respond(p, "405 Method Not Allowed", "Allow: GET\r\n", plain,
			               "GET only\n", 9);
		return respond(p, "400 Bad Request", "", plain, "bad request\n", 12);
	}
	path[strcspn(path, "?")] = '\0'; /* the query is the page's own */
	up = header(head, "Upgrade", &ul);
	if (!up || !has_token(up, ul, "websocket")) {
		if (!strcmp(path, "/") || !strcmp(path, "/index.html"))
			return respond(p, "200 OK", "", "text/html; charset=utf-8", page,
			               sizeof(page) - 1);
		if (!strcmp(path, "/ws"))
			return respond(p, "426 Upgrade Required",
			               "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n", plain,
			               "a WebSocket endpoint\n", 21);
		return respond(p, "404 Not Found", "", plain, "not found\n", 10);
	}
	ver = header(head, "Sec-WebSocket-Version", &vl);
	if (!ver || vl != 2 || strncmp(ver, "13", 2))
		return respond(p, "426 Upgrade Required", "Sec-WebSocket-Version: 13\r\n", plain,
		               "version 13 only\n", 16);
	conn = header(head, "Connection", &cl);
	key = header(head, "Sec-WebSocket-Key", &kl);
	/* A key is 16 random bytes in base64: 24 characters. */
	if (!conn || !has_token(conn, cl, "upgrade") || !key || kl != 24 || strcmp(path, "/ws"))
		return respond(p, "400 Bad Request", "", plain, "bad WebSocket handshake\n", 24);
	accept_token(key, kl, accept);
	n = snprintf(resp, sizeof(resp),
	             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	             "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
	             accept);
	return server_send_all(&p->sc, resp, (size_t)n) == n ? 1 : -EPIPE;
}

static bool peer_init(struct peer *p, bool server, wslay_event_on_msg_recv_callback on_msg)
{
	struct wslay_event_callbacks cb = {
		.recv_callback = ws_recv,
		.send_callback = ws_send,
		.genmask_callback = ws_genmask,
		.on_msg_recv_callback = on_msg,
	};

	ursa_event_init(&p->wake);
	if ((server ? wslay_event_context_server_init : wslay_event_context_client_init)(&p->ws, &cb,
	                                                                                  p))
		return false;
	wslay_event_config_set_max_recv_msg_length(p->ws, msg_max);
	return true;
}

/* Wait for the writer; past the close handshake's allowance, the scope's
 * deadline cancels it (ursa_join then waits for it to end). */
static void peer_finish(struct peer *p, struct ursa_task *w)
{
	struct ursa_scope s;

	p->reader_done = true;
	ursa_event_set(&p->wake);
	ursa_scope_enter(&s, ursa_now() + CLOSE_WAIT_NS);
	(void)!ursa_join(w, NULL); /* the writer returns NULL or was cancelled */
	(void)ursa_scope_exit(&s);
}

static void *chat_conn(void *arg)
{
	struct peer *p = calloc(1, sizeof(*p));
	char buf[HEAD_MAX > RECV_BUF ? HEAD_MAX : RECV_BUF];
	struct ursa_task *w = NULL;
	size_t nrest = 0;
	ssize_t hl;

	if (!p) {
		ursa_close((int)(intptr_t)arg);
		return NULL;
	}
	p->server = true;
	server_conn_enter(&p->sc, (int)(intptr_t)arg);
	p->fd = p->sc.fd;
	hl = read_head(p, buf, HEAD_MAX, &nrest);
	if (hl == -EMSGSIZE)
		(void)respond(p, "431 Request Header Fields Too Large", "", "text/plain", "", 0);
	if (hl <= 0 || handshake_server(p, buf) != 1 || !peer_init(p, true, on_msg_server)) {
		server_conn_linger(&p->sc, false);
		goto out;
	}
	if (ursa_spawn(&w, writer, p)) {
		wslay_event_context_free(p->ws);
		goto out;
	}
	p->next = room;
	if (room)
		room->prev = p;
	room = p;
	memmove(buf, buf + hl, nrest);
	for (ssize_t n = (ssize_t)nrest;; ) {
		if (n > 0) {
			p->pinged = false;
			server_conn_received(&p->sc, (size_t)n);
			if (peer_feed(p, (uint8_t *)buf, (size_t)n) < 0)
				break;
		}
		if (!wslay_event_want_read(p->ws) || p->reader_done)
			break;
		if (server_draining()) {
			/* Say goodbye (1001) and wait a moment for the answer. */
			struct ursa_scope s;

			peer_close(p, WSLAY_CODE_GOING_AWAY, "shutting down");
			ursa_scope_enter(&s, ursa_now() + CLOSE_WAIT_NS);
			n = ursa_recv(p->fd, buf, sizeof(buf), 0);
			(void)ursa_scope_exit(&s);
			if (n <= 0)
				break;
			continue;
		}
		if (!server_conn_wait_begin(&p->sc))
			continue; /* shutting down: the branch above */
		n = ursa_recv(p->fd, buf, sizeof(buf), 0);
		server_conn_wait_end(&p->sc);
		if (n == -ECANCELED && server_draining()) {
			n = 0;
			continue;
		}
		if (n == -ECANCELED && !server_draining() && !p->dropped) {
			/* idle: ping once, drop if it stays silent */
			if (p->pinged) {
				p->dropped = true;
				peer_close(p, WSLAY_CODE_POLICY_VIOLATION, "idle");
				continue;
			}
			struct wslay_event_msg ping = {.opcode = WSLAY_PING};

			(void)wslay_event_queue_msg(p->ws, &ping);
			ursa_event_set(&p->wake);
			p->pinged = true;
			continue;
		}
		if (n <= 0)
			break;
	}
	if (p->prev)
		p->prev->next = p->next;
	else
		room = p->next;
	if (p->next)
		p->next->prev = p->prev;
	peer_finish(p, w);
	wslay_event_context_free(p->ws);
out:
	server_conn_leave(&p->sc);
	free(p);
	return NULL;
}

/* ---------------------------------------------------------------- client */

static void on_msg_client(wslay_event_context_ptr ws, const struct wslay_event_on_msg_recv_arg *a,
                          void *user)
{
	(void)ws;
	(void)user;
	if (a->opcode == WSLAY_TEXT_FRAME || a->opcode == WSLAY_BINARY_FRAME) {
		fwrite(a->msg, 1, a->msg_length, stdout);
		fputc('\n', stdout);
		fflush(stdout);
	}
}

/* stdin, line by line, as text messages; a close frame at the end. */
static void *client_send(void *arg)
{
	struct peer *p = arg;
	static char line[64u << 10];
	size_t have = 0;
	ssize_t n;

	while ((n = ursa_read(0, line + have, sizeof(line) - have)) > 0) {
		char *s = line, *nl;

		have += (size_t)n;
		while ((nl = memchr(s, '\n', have - (size_t)(s - line)))) {
			struct wslay_event_msg m = {.opcode = WSLAY_TEXT_FRAME,
			                            .msg = (uint8_t *)s,
			                            .msg_length = (size_t)(nl - s)};

			if (wslay_event_queue_msg(p->ws, &m))
				return NULL; /* closing */
			ursa_event_set(&p->wake);
			s = nl + 1;
		}
		have -= (size_t)(s - line);
		memmove(line, s, have);
		if (have == sizeof(line))
			have = 0; /* a line longer than any message: dropped */
	}
	peer_close(p, WSLAY_CODE_NORMAL_CLOSURE, "");
	return NULL;
}

static void *client_main(void *arg)
{
	const char *target = arg;
	char host[256], key[25], want[29], head[HEAD_MAX], req[512];
	unsigned char raw[16];
	unsigned port;
	struct ursa_task *w, *s;
	struct peer *p;
	size_t nrest = 0, al = 0;
	const char *acc;
	ssize_t hl;
	int n, fd;

	if (sscanf(target, "%255[^:]:%u", host, &port) != 2) {
		fprintf(stderr, "ursa-chat: --connect HOST:PORT\n");
		return (void *)1;
	}
	if ((fd = ursa_tcp_connect(host, port)) < 0) {
		fprintf(stderr, "ursa-chat: %s: %s\n", target, strerror(-fd));
		return (void *)1;
	}
	if (getrandom(raw, sizeof(raw), 0) != sizeof(raw) || !(p = calloc(1, sizeof(*p))))
		return (void *)1;
	p->fd = fd;
	EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw));
	n = snprintf(req, sizeof(req),
	             "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
	             "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
	             "Sec-WebSocket-Version: 13\r\n\r\n",
	             target, key);
	accept_token(key, 24, want);
	if (ursa_write_all(fd, req, (size_t)n) != n || (hl = read_head(p, head, sizeof(head), &nrest)) <= 0 ||
	    strncmp(head, "HTTP/1.1 101", 12) || !(acc = header(head, "Sec-WebSocket-Accept", &al)) ||
	    al != 28 || memcmp(acc, want, 28) || !peer_init(p, false, on_msg_client)) {
		fprintf(stderr, "ursa-chat: %s: the WebSocket handshake failed\n", target);
		return (void *)1;
	}
	fprintf(stderr, "ursa-chat: connected to %s\n", target);
	if (ursa_spawn(&w, writer, p) || ursa_spawn(&s, client_send, p))
		return (void *)1;
	memmove(head, head + hl, nrest);
	/* The bytes after the response head first, then the socket's. */
	for (ssize_t r = (ssize_t)nrest; wslay_event_want_read(p->ws) && !p->reader_done;) {
		if (r > 0 && peer_feed(p, (uint8_t *)head, (size_t)r) < 0)
			break;
		if ((r = ursa_recv(fd, head, sizeof(head), 0)) <= 0)
			break;
	}
	(void)ursa_cancel_and_join(s, NULL);
	peer_finish(p, w);
	wslay_event_context_free(p->ws);
	ursa_close(fd);
	free(p);
	return NULL;
}

/* ------------------------------------------------------------------ main */

static const struct server chat_server = {
	.name = "chat",
	.conn_fn = chat_conn,
};

int main(int argc, char **argv)
{
	struct server_opts o;
	char *rest[64];
	int nrest = 0;

	/* Our own options first; the rest are the servers' common ones. */
	for (int i = 0; i < argc && nrest < 63; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "--connect")) {
			struct ursa_opts ro = {.cores = 1};
			void *failed = NULL;

			server_opts.idle_ns = URSA_SEC(60); /* the writer's stall limit */

			return ursa_run(client_main, argv[i + 1], &ro, &failed) == 0 && !failed ? 0 : 1;
		}
		if (i + 1 < argc && !strcmp(argv[i], "--queue-kib")) {
			queue_max = (size_t)strtoul(argv[++i], NULL, 10) << 10;
			continue;
		}
		if (i + 1 < argc && !strcmp(argv[i], "--max-msg-kib")) {
			msg_max = (size_t)strtoul(argv[++i], NULL, 10) << 10;
			continue;
		}
		rest[nrest++] = argv[i];
	}
	rest[nrest] = NULL;
	server_parse_args(&chat_server, nrest, rest, &o);
	o.cores = 1; /* the room's list lives on one core */
	return server_main(&chat_server, &o);
}

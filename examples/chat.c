// SPDX-License-Identifier: MIT
/*
 * chat: a WebSocket chat room on ursa (RFC 6455), and its terminal client.
 *
 *   ursa-chat [--port N] [--host ADDR] [--idle-ms MS] [--grace-ms MS]
 *             [--queue-kib N] [--max-msg-kib N]
 *   ursa-chat --connect HOST:PORT
 *   ursa-chat --bench HOST:PORT [--clients N] [--messages M] [--interval-us U]
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
 * server's close arrives.  --bench measures a room (docs/examples.md).
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

/* Connect to target (HOST:PORT) and shake hands: the peer (its fd open),
 * with the bytes that followed the answer's head at the start of buf (*n);
 * NULL on failure, said on stderr. */
static struct peer *client_connect(const char *target, wslay_event_on_msg_recv_callback on_msg,
                                   char *buf, size_t cap, size_t *n)
{
	char host[256], key[25], want[29], req[512];
	unsigned char raw[16];
	unsigned port;
	struct peer *p;
	size_t al = 0;
	const char *acc;
	ssize_t hl;
	int len, fd;

	if (sscanf(target, "%255[^:]:%u", host, &port) != 2) {
		fprintf(stderr, "ursa-chat: HOST:PORT, not %s\n", target);
		return NULL;
	}
	if ((fd = ursa_tcp_connect(host, port)) < 0) {
		fprintf(stderr, "ursa-chat: %s: %s\n", target, strerror(-fd));
		return NULL;
	}
	if (getrandom(raw, sizeof(raw), 0) != sizeof(raw) || !(p = calloc(1, sizeof(*p)))) {
		ursa_close(fd);
		return NULL;
	}
	p->fd = fd;
	EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw));
	len = snprintf(req, sizeof(req),
	               "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
	               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
	               "Sec-WebSocket-Version: 13\r\n\r\n",
	               target, key);
	accept_token(key, 24, want);
	if (ursa_write_all(fd, req, (size_t)len) != len || (hl = read_head(p, buf, cap, n)) <= 0 ||
	    strncmp(buf, "HTTP/1.1 101", 12) || !(acc = header(buf, "Sec-WebSocket-Accept", &al)) ||
	    al != 28 || memcmp(acc, want, 28) || !peer_init(p, false, on_msg)) {
		fprintf(stderr, "ursa-chat: %s: the WebSocket handshake failed\n", target);
		ursa_close(fd);
		free(p);
		return NULL;
	}
	memmove(buf, buf + hl, *n);
	return p;
}

/* Receive until the close handshake or the connection ends: the bytes
 * already in buf (n) first, then the socket's. */
static void client_read(struct peer *p, char *buf, size_t cap, size_t n)
{
	for (ssize_t r = (ssize_t)n; wslay_event_want_read(p->ws) && !p->reader_done;) {
		if (r > 0 && peer_feed(p, (uint8_t *)buf, (size_t)r) < 0)
			break;
		if ((r = ursa_recv(p->fd, buf, cap, 0)) <= 0)
			break;
	}
}

static void client_end(struct peer *p, struct ursa_task *w)
{
	peer_finish(p, w);
	wslay_event_context_free(p->ws);
	ursa_close(p->fd);
	free(p);
}

static void *client_main(void *arg)
{
	const char *target = arg;
	char buf[HEAD_MAX];
	struct ursa_task *w, *s;
	struct peer *p;
	size_t n = 0;

	if (!(p = client_connect(target, on_msg_client, buf, sizeof(buf), &n)))
		return (void *)1;
	fprintf(stderr, "ursa-chat: connected to %s\n", target);
	if (ursa_spawn(&w, writer, p))
		return (void *)1;
	if (ursa_spawn(&s, client_send, p)) {
		client_end(p, w);
		return (void *)1;
	}
	client_read(p, buf, sizeof(buf), n);
	(void)ursa_cancel_and_join(s, NULL);
	client_end(p, w);
	return NULL;
}

/* ----------------------------------------------------------------- bench */

/*
 * --bench HOST:PORT [--clients N] [--messages M] [--interval-us U]: N
 * clients join, then each sends M messages ("sent-ns client k") as fast as
 * the room takes them, or one every U microseconds,
 * and every client receives all N * M.  Reports deliveries per second and
 * the delivery latency (send to receive, one machine's monotonic clock).
 */
static unsigned bench_clients = 200, bench_messages = 100;
static uint64_t bench_interval_ns; /* --interval-us: between one sender's messages */
static uint64_t bench_total, bench_got, bench_first;
static uint32_t *bench_lat_us; /* one per delivery */
static struct ursa_event bench_done, bench_go;
static const char *bench_target;

static void on_msg_bench(wslay_event_context_ptr ws, const struct wslay_event_on_msg_recv_arg *a,
                         void *user)
{
	char tmp[32];
	size_t n = a->msg_length < sizeof(tmp) - 1 ? a->msg_length : sizeof(tmp) - 1;
	uint64_t sent;

	(void)ws;
	(void)user;
	if (a->opcode != WSLAY_TEXT_FRAME)
		return;
	memcpy(tmp, a->msg, n);
	tmp[n] = '\0';
	sent = strtoull(tmp, NULL, 10);
	if (bench_got < bench_total)
		bench_lat_us[bench_got] = (uint32_t)((ursa_now() - sent) / 1000);
	if (++bench_got == bench_total)
		ursa_event_set(&bench_done);
}

static struct peer **bench_peers;
static unsigned bench_joined;

static void *bench_send(void *arg)
{
	struct peer *p = arg;
	unsigned me = 0;

	for (unsigned i = 0; i < bench_clients; i++)
		if (bench_peers[i] == p)
			me = i;
	if (ursa_event_wait(&bench_go) < 0)
		return NULL;
	if (!bench_first)
		bench_first = ursa_now();
	/* Paced senders spread over the interval, not all at its start. */
	if (bench_interval_ns && ursa_sleep(bench_interval_ns * me / bench_clients) < 0)
		return NULL;
	/* Senders take turns message by message (a yield, or --interval-us,
	 * between), so all of them are on the air at once. */
	for (unsigned k = 0; k < bench_messages; k++) {
		char msg[64];
		int len = snprintf(msg, sizeof(msg), "%llu %u %u", (unsigned long long)ursa_now(), me, k);
		struct wslay_event_msg m = {.opcode = WSLAY_TEXT_FRAME,
		                            .msg = (uint8_t *)msg,
		                            .msg_length = (size_t)len};

		if (wslay_event_queue_msg(p->ws, &m))
			break;
		ursa_event_set(&p->wake);
		if (ursa_sleep(bench_interval_ns) < 0)
			break;
	}
	return NULL;
}

static void *bench_client(void *arg)
{
	unsigned me = (unsigned)(uintptr_t)arg;
	char buf[RECV_BUF];
	struct ursa_task *w, *s = NULL;
	struct peer *p;
	size_t n = 0;

	p = client_connect(bench_target, on_msg_bench, buf, sizeof(buf), &n);
	if (!p || ursa_spawn(&w, writer, p)) {
		if (p) {
			ursa_close(p->fd);
			free(p);
		}
		ursa_event_set(&bench_done); /* give up */
		return (void *)1;
	}
	bench_peers[me] = p;
	if (ursa_spawn(&s, bench_send, p) == 0 && ++bench_joined == bench_clients)
		ursa_event_set(&bench_go);
	client_read(p, buf, sizeof(buf), n);
	(void)ursa_cancel_and_join(s, NULL);
	bench_peers[me] = NULL;
	client_end(p, w);
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void *bench_main(void *arg)
{
	struct ursa_task **t = calloc(bench_clients, sizeof(*t));
	uint64_t end;
	struct ursa_scope s;
	unsigned n = 0;
	double secs;

	(void)arg;
	bench_total = (uint64_t)bench_clients * bench_clients * bench_messages;
	bench_lat_us = malloc(bench_total * sizeof(*bench_lat_us));
	bench_peers = calloc(bench_clients, sizeof(*bench_peers));
	if (!t || !bench_lat_us || !bench_peers)
		return (void *)1;
	ursa_event_init(&bench_done);
	ursa_event_init(&bench_go);
	for (; n < bench_clients; n++)
		if (ursa_spawn(&t[n], bench_client, (void *)(uintptr_t)n))
			break;
	ursa_scope_enter(&s, ursa_now() + URSA_SEC(300));
	(void)!ursa_event_wait(&bench_done);
	(void)ursa_scope_exit(&s);
	end = ursa_now();
	for (unsigned i = 0; i < n; i++)
		if (bench_peers[i])
			peer_close(bench_peers[i], WSLAY_CODE_NORMAL_CLOSURE, "");
	for (unsigned i = 0; i < n; i++)
		(void)!ursa_join(t[i], NULL);
	if (bench_got < bench_total || !bench_first) {
		fprintf(stderr, "ursa-chat: bench: %llu of %llu deliveries\n",
		        (unsigned long long)bench_got, (unsigned long long)bench_total);
		return (void *)1;
	}
	qsort(bench_lat_us, bench_total, sizeof(*bench_lat_us), cmp_u32);
	secs = (double)(end - bench_first) / 1e9;
	printf("%u clients x %u messages: %llu deliveries in %.3f s: %.0f deliveries/s, "
	       "latency p50 %.2f ms p99 %.2f ms max %.2f ms\n",
	       bench_clients, bench_messages, (unsigned long long)bench_total, secs,
	       (double)bench_total / secs, bench_lat_us[bench_total / 2] / 1e3,
	       bench_lat_us[bench_total * 99 / 100] / 1e3, bench_lat_us[bench_total - 1] / 1e3);
	free(bench_lat_us);
	free(bench_peers);
	free(t);
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
		if (i + 1 < argc && !strcmp(argv[i], "--bench")) {
			bench_target = argv[++i];
			continue;
		}
		if (i + 1 < argc && !strcmp(argv[i], "--clients")) {
			bench_clients = (unsigned)strtoul(argv[++i], NULL, 10);
			continue;
		}
		if (i + 1 < argc && !strcmp(argv[i], "--interval-us")) {
			unsigned long long us = strtoull(argv[++i], NULL, 10);

			bench_interval_ns = URSA_US(us); /* a macro: no side effects in it */
			continue;
		}
		if (i + 1 < argc && !strcmp(argv[i], "--messages")) {
			bench_messages = (unsigned)strtoul(argv[++i], NULL, 10);
			continue;
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
	if (bench_target) {
		struct ursa_opts ro = {.cores = 1};
		void *failed = NULL;

		if (!bench_clients || !bench_messages)
			return 2;
		server_opts.idle_ns = URSA_SEC(60);
		return ursa_run(bench_main, NULL, &ro, &failed) == 0 && !failed ? 0 : 1;
	}
	server_parse_args(&chat_server, nrest, rest, &o);
	o.cores = 1; /* the room's list lives on one core */
	return server_main(&chat_server, &o);
}

// SPDX-License-Identifier: MIT
/*
 * httpd: an HTTP/1.1 server on ursa.  GET / answers "hello world"; other
 * paths are files under --root, read with pread on the ring.  Keep-alive and
 * pipelining (all complete requests in the input are answered with one
 * send), Connection: close, HEAD, 400/404/405/413/414/431/505, an idle
 * timeout, and graceful shutdown.
 *
 *   httpd [--port N] [--cores N] [--root DIR] [--host ADDR] [--idle-ms MS]
 *         [--grace-ms MS]
 *
 * One task per connection; the whole request/response cycle reads as
 * blocking code.  Each core has its own SO_REUSEPORT listener (server.c), so
 * a connection is accepted, parsed and answered on one core and no state is
 * shared between cores but the options.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "http_parser.h"
#include "server.h"

#define IN_CAP (32u << 10)     /* input buffer; must exceed limits.max_head */
/*
 * The output buffer: the most of its answers a connection holds in memory.
 * A file is streamed through it, read in pieces that fill it and sent
 * before the next is read, so a slow reader of a large file costs OUT_CAP
 * here whatever the file's size (the rest waits on disk; the kernel's
 * socket buffer is its own).  Pipelined answers are sent once OUT_FLUSH
 * bytes are waiting; a small answer (under 1 KiB) then still fits.
 */
#define OUT_CAP (64u << 10)
#define OUT_FLUSH (OUT_CAP - 1024)
#define FILE_MIN_READ (16u << 10) /* send first rather than read less than this */
#define PATH_MAX_LEN 4096

static const struct http_limits limits = {
	.max_head = 16u << 10,
	.max_request_line = 8u << 10,
	.max_body = 1u << 20,
};

static int root_fd = -1;

struct http_conn {
	struct server_conn sc;
	char *in;
	size_t len, pos;  /* in[pos..len) not yet consumed */
	size_t scanned;   /* http_parse_request's resume point */
	char *out;
	size_t out_len, out_cap;
	bool oom;
};

/* ----------------------------------------------------------- the output */

static bool out_reserve(struct http_conn *h, size_t n)
{
	size_t cap;
	char *p;

	if (h->out_cap - h->out_len >= n)
		return true;
	cap = h->out_cap ? h->out_cap : 16384;
	while (cap - h->out_len < n)
		cap *= 2;
	p = realloc(h->out, cap);
	if (!p) {
		h->oom = true;
		return false;
	}
	h->out = p;
	h->out_cap = cap;
	return true;
}

static void out_add(struct http_conn *h, const void *p, size_t n)
{
	if (!out_reserve(h, n))
		return;
	memcpy(h->out + h->out_len, p, n);
	h->out_len += n;
}

static bool flush(struct http_conn *h)
{
	size_t want = h->out_len;
	ssize_t n;

	if (h->oom)
		return false;
	if (want == 0)
		return true;
	n = server_send_all(&h->sc, h->out, want);
	h->out_len = 0;
	return n == (ssize_t)want;
}

/* The Date header's value, rebuilt once a second per core (thread). */
static const char *http_date(void)
{
	static __thread char buf[64];
	static __thread time_t last;
	time_t now = time(NULL);

	if (now != last) {
		struct tm tm;

		gmtime_r(&now, &tm);
		strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		last = now;
	}
	return buf;
}

static const char *reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

/* Append a response head; conn_hdr is "close", "keep-alive" or NULL. */
static void add_head(struct http_conn *h, int status, const char *type, uint64_t length,
                     const char *conn_hdr, const char *extra)
{
	char head[512];
	int n = snprintf(head, sizeof(head),
	                 "HTTP/1.1 %d %s\r\nServer: ursa\r\nDate: %s\r\nContent-Type: %s\r\n"
	                 "Content-Length: %llu\r\n%s%s%s%s\r\n",
	                 status, reason(status), http_date(), type, (unsigned long long)length,
	                 conn_hdr ? "Connection: " : "", conn_hdr ? conn_hdr : "",
	                 conn_hdr ? "\r\n" : "", extra ? extra : "");

	out_add(h, head, (size_t)n);
}

/* A small text response: "<status> <reason>\n". */
static void add_simple(struct http_conn *h, int status, bool head_only, const char *conn_hdr,
                       const char *extra)
{
	char body[96];
	int n = snprintf(body, sizeof(body), "%d %s\n", status, reason(status));

	add_head(h, status, "text/plain", (uint64_t)n, conn_hdr, extra);
	if (!head_only)
		out_add(h, body, (size_t)n);
}

/* ----------------------------------------------------------- the input */

/* Receive more bytes after the unconsumed ones.  Between requests this is
 * the idle wait; inside one, the request's deadline runs. */
static ssize_t fill(struct http_conn *h, bool between_requests)
{
	ssize_t r;

	if (h->pos) {
		memmove(h->in, h->in + h->pos, h->len - h->pos);
		h->len -= h->pos;
		h->pos = 0;
	}
	if (h->len == IN_CAP)
		return -ENOBUFS; /* cannot happen: the parser refuses heads this large */
	if (between_requests && h->len == 0) {
		if (!server_conn_wait_begin(&h->sc))
			return 0;
		r = ursa_recv(h->sc.fd, h->in, IN_CAP, 0);
		server_conn_wait_end(&h->sc);
	} else {
		/* Inside a request: it has the idle timeout to arrive, more while
		 * it keeps arriving in earnest (server_conn_received). */
		r = ursa_recv(h->sc.fd, h->in + h->len, IN_CAP - h->len, 0);
		if (r > 0)
			server_conn_received(&h->sc, (size_t)r);
	}
	if (r > 0)
		h->len += (size_t)r;
	return r;
}

/* Read and drop a request body; false if the connection must close. */
static bool skip_body(struct http_conn *h, const struct http_request *req, int *status)
{
	if (req->chunked) {
		struct http_chunked ch = {0};

		for (;;) {
			long n = http_chunked_feed(&ch, h->in + h->pos, h->len - h->pos, limits.max_body);

			if (n < 0) {
				*status = (int)-n;
				return false;
			}
			h->pos += (size_t)n;
			if (ch.done)
				return true;
			if (fill(h, false) <= 0)
				return false;
		}
	}
	for (uint64_t left = req->content_length > 0 ? (uint64_t)req->content_length : 0;;) {
		size_t take = h->len - h->pos;

		if (take > left)
			take = (size_t)left;
		h->pos += take;
		left -= take;
		if (left == 0)
			return true;
		if (fill(h, false) <= 0)
			return false;
	}
}

/* ------------------------------------------------------------ responses */

static const char *content_type(const char *path)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{".html", "text/html"},       {".htm", "text/html"},
		{".txt", "text/plain"},       {".css", "text/css"},
		{".js", "text/javascript"},   {".json", "application/json"},
		{".png", "image/png"},        {".jpg", "image/jpeg"},
		{".svg", "image/svg+xml"},    {".gif", "image/gif"},
	};
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

static int hexdigit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * The request path, percent-decoded, without the query, relative to the
 * root ("a/b.txt").  0, or the status to answer: 400 (bad escape, NUL),
 * 404 (a ".." segment), 414.  This is not what keeps requests inside the
 * root: a decoded path may still be absolute ("//etc/passwd", "/%2Fetc")
 * or lead out through a link; open_under_root refuses those in the kernel.
 */
static int decode_path(const char *t, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 1; i < n && t[i] != '?' && t[i] != '#'; i++) {
		char c = t[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= n || (hi = hexdigit(t[i + 1])) < 0 || (lo = hexdigit(t[i + 2])) < 0)
				return 400;
			c = (char)(hi * 16 + lo);
			i += 2;
			if (c == 0)
				return 400;
		}
		if (o + 1 >= cap)
			return 414;
		out[o++] = c;
	}
	out[o] = 0;
	for (const char *seg = out; *seg;) {
		const char *end = strchr(seg, '/');
		size_t len = end ? (size_t)(end - seg) : strlen(seg);

		if (len == 2 && seg[0] == '.' && seg[1] == '.')
			return 404;
		if (!end)
			break;
		seg = end + 1;
	}
	return 0;
}

/*
 * Open rel under the root, with the root as a wall the kernel enforces
 * (openat2 on the ring): RESOLVE_BENEATH fails with -EXDEV any lookup that
 * would leave the root, whether by an absolute path, an absolute link, or
 * a ".." or relative link climbing out, however the request spelt it;
 * RESOLVE_NO_MAGICLINKS refuses /proc's fd-like links (-ELOOP).  Links
 * that stay inside the root are followed (docs/servers.md, "The root").
 * -EAGAIN means a rename raced a ".." step; the lookup is simply retried.
 */
static int open_under_root(const char *rel)
{
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	int fd = -EAGAIN;

	for (int tries = 0; tries < 4 && fd == -EAGAIN; tries++)
		fd = ursa_openat2(root_fd, rel, &how, sizeof(how));
	return fd;
}

/* The status for a failed open: never tell what exists outside the root. */
static int open_status(int err)
{
	switch (err) {
	case -ENOENT:
	case -ENOTDIR:
	case -EXDEV:        /* outside the root */
	case -ELOOP:        /* a magic link, or a link loop */
	case -ENAMETOOLONG: /* a component over NAME_MAX: no such file */
		return 404;
	case -EACCES:
		return 403;
	default:
		return 500;
	}
}

/* Serve a file under the root: the head and, unless HEAD, the bytes. */
static bool serve_file(struct http_conn *h, const char *rel, bool head_only, const char *conn_hdr)
{
	struct statx st;
	int fd, rc;
	off_t off = 0;

	fd = open_under_root(rel);
	if (fd < 0) {
		add_simple(h, open_status(fd), head_only, conn_hdr, NULL);
		return true;
	}
	rc = ursa_statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_SIZE, &st);
	if (rc < 0 || !S_ISREG(st.stx_mode)) {
		ursa_close(fd);
		add_simple(h, rc < 0 ? 500 : 404, head_only, conn_hdr, NULL);
		return true;
	}
	add_head(h, 200, content_type(rel), st.stx_size, conn_hdr, NULL);
	while (!head_only && (uint64_t)off < st.stx_size) {
		uint64_t left = st.stx_size - (uint64_t)off;
		size_t want;
		ssize_t r;

		/* Read straight into the output buffer, after what waits there,
		 * at most up to OUT_CAP; send a full buffer before reading on. */
		if (h->out_len + FILE_MIN_READ > OUT_CAP && !flush(h))
			break;
		want = OUT_CAP - h->out_len;
		if (want > left)
			want = (size_t)left;
		if (!out_reserve(h, want))
			break;
		r = ursa_pread(fd, h->out + h->out_len, want, off);
		if (r <= 0)
			break; /* the file shrank or failed: the length promised is wrong */
		h->out_len += (size_t)r;
		off += r;
	}
	ursa_close(fd);
	return head_only || (uint64_t)off == st.stx_size;
}

/* Answer one parsed request; false if the connection must close after it. */
static bool respond(struct http_conn *h, const struct http_request *req)
{
	bool get = req->method_len == 3 && memcmp(req->method, "GET", 3) == 0;
	bool head = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
	const char *conn_hdr = !req->keep_alive ? "close" : req->version_minor == 0 ? "keep-alive"
	                                                                             : NULL;
	char path[PATH_MAX_LEN];
	int status;

	if (server_draining())
		conn_hdr = "close"; /* finishing in-flight work: this is the last answer */
	if (!get && !head) {
		add_simple(h, 405, false, conn_hdr, "Allow: GET, HEAD\r\n");
		return true;
	}
	/* Origin form, or the path of an absolute-form target (RFC 9112
	 * section 3.2.2: a server must accept it; its authority then wins over
	 * Host, which this server does not use either way). */
	if (!req->path) {
		add_simple(h, 400, head, "close", NULL);
		return false;
	}
	if (req->path_len == 1 || req->path[1] == '?') {
		add_head(h, 200, "text/plain", 11, conn_hdr, NULL);
		if (!head)
			out_add(h, "hello world", 11);
		return true;
	}
	if (root_fd < 0) {
		add_simple(h, 404, head, conn_hdr, NULL);
		return true;
	}
	status = decode_path(req->path, req->path_len, path, sizeof(path));
	if (status) {
		add_simple(h, status, head, status == 404 ? conn_hdr : "close", NULL);
		return status == 404;
	}
	if (path[0] == 0) {
		add_simple(h, 404, head, conn_hdr, NULL);
		return true;
	}
	return serve_file(h, path, head, conn_hdr);
}

/*
 * One connection: parse each complete request in the input, answer it into
 * the output buffer, and send the batch when the input runs dry (one send
 * for a whole pipeline).  A refused request is answered with its status and
 * Connection: close, and the connection closes after a lingering read.
 */
static void *http_conn(void *arg)
{
	struct http_conn *h = calloc(1, sizeof(*h));
	int fd = (int)(intptr_t)arg;

	if (!h || !(h->in = malloc(IN_CAP))) {
		struct server_conn sc;

		free(h);
		server_conn_enter(&sc, fd); /* only to close it and count it gone */
		server_conn_leave(&sc);
		return NULL;
	}
	server_conn_enter(&h->sc, fd);
	for (;;) {
		struct http_request req;
		int rc = 0, status = 0;
		bool keep = true;

		while (h->pos < h->len) {
			rc = http_parse_request(h->in + h->pos, h->len - h->pos, &limits, &req,
			                        &h->scanned);
			if (rc <= 0)
				break;
			h->pos += (size_t)rc;
			h->scanned = 0;
			if ((req.content_length > 0 || req.chunked) && req.expect_continue &&
			    h->len - h->pos < (size_t)(req.content_length > 0 ? req.content_length : 1)) {
				out_add(h, "HTTP/1.1 100 Continue\r\n\r\n", 25);
				if (!flush(h))
					goto done;
			}
			if ((req.content_length > 0 || req.chunked) && !skip_body(h, &req, &status)) {
				rc = status ? -status : 0;
				if (!status)
					goto done; /* the client went away mid-body */
				break;
			}
			keep = respond(h, &req) && req.keep_alive && !server_draining();
			if (!keep || h->out_len >= OUT_FLUSH) {
				if (!flush(h) || !keep)
					goto done;
			}
		}
		if (rc < 0) {
			add_simple(h, -rc, false, "close", NULL);
			/* Read what the client still sends before closing, so that it
			 * reads the answer rather than a reset. */
			if (flush(h))
				server_conn_linger(&h->sc, false);
			break;
		}
		if (!flush(h))
			break;
		if (fill(h, true) <= 0)
			break; /* closed, reset, timed out, or shutting down */
	}
done:
	server_conn_leave(&h->sc);
	free(h->in);
	free(h->out);
	free(h);
	return NULL;
}

static const struct server httpd_server = {
	.name = "httpd",
	.conn_fn = http_conn,
	.want_root = true,
};

int main(int argc, char **argv)
{
	struct server_opts o;

	server_parse_args(&httpd_server, argc, argv, &o);
	if (o.root) {
		root_fd = open(o.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (root_fd < 0) {
			perror(o.root);
			return 2;
		}
	}
	return server_main(&httpd_server, &o);
}

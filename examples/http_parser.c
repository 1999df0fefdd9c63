// SPDX-License-Identifier: MIT
/*
 * http_parser.c: the request-head parser and chunked-body decoder of
 * examples/httpd (RFC 9112).  Strict by design: whatever a lenient parser
 * would have to guess about (bare LF, obs-fold, a Content-Length that is not
 * plain digits, Content-Length together with Transfer-Encoding) is refused
 * with 400, which closes the request-smuggling doors.
 */
#include "http_parser.h"

#include <string.h>

/* RFC 9110 tchar: the bytes of a method or a header name. */
static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field-value bytes: VCHAR, obs-text, SP and HTAB. */
static bool is_vbyte(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool ieq(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);

	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];

		if (x >= 'A' && x <= 'Z')
			x += 'a' - 'A';
		if (y >= 'A' && y <= 'Z')
			y += 'a' - 'A';
		if (x != y)
			return false;
	}
	return true;
}

const struct http_header *http_find_header(const struct http_request *req, const char *name)
{
	for (unsigned i = 0; i < req->nheaders; i++)
		if (ieq(req->headers[i].name, req->headers[i].name_len, name))
			return &req->headers[i];
	return NULL;
}

/*
 * Check as much of the request line as buf holds, so that garbage is refused
 * on its first bytes instead of after max_head of them.  Returns 0 (fine so
 * far) or a negative status.
 */
static int check_line_prefix(const char *buf, size_t len, const struct http_limits *lim)
{
	size_t i = 0;

	while (i < len && is_tchar((unsigned char)buf[i]))
		i++;
	if (i < len && (buf[i] != ' ' || i == 0))
		return -400;
	for (size_t j = i + 1; j < len; j++) {
		unsigned char c = (unsigned char)buf[j];

		if (c == '\r' || c == '\n')
			return 0; /* the line is complete: parse_request_line judges it */
		if (c != ' ' && (c < 0x21 || c == 0x7f))
			return -400;
	}
	if (len > lim->max_request_line)
		return -414;
	return 0;
}

/*
 * The target in origin form (RFC 9112 section 3.2): an origin-form target
 * ("/a?b") is itself; an absolute-form one ("http://host:80/a?b", scheme
 * http or https in any case, a non-empty authority) is its path and query,
 * "/" when the authority is followed by nothing or by a query.  The
 * asterisk and authority forms, and other schemes, have none (NULL).
 */
static void origin_path(struct http_request *req)
{
	const char *t = req->target, *end = t + req->target_len, *a;

	req->path = NULL;
	req->path_len = 0;
	if (t[0] == '/') {
		req->path = t;
		req->path_len = req->target_len;
		return;
	}
	if (req->target_len > 7 && ieq(t, 7, "http://"))
		a = t + 7;
	else if (req->target_len > 8 && ieq(t, 8, "https://"))
		a = t + 8;
	else
		return;
	for (const char *p = a; p < end; p++) {
		if (*p == '/' || *p == '?' || *p == '#') {
			if (p == a)
				return; /* no authority: "http:///x" */
			if (*p == '/') {
				req->path = p;
				req->path_len = (size_t)(end - p);
			} else {
				req->path = "/";
				req->path_len = 1;
			}
			return;
		}
	}
	req->path = "/";
	req->path_len = 1;
}

/* Parse "METHOD SP target SP HTTP/1.x" (without its CRLF). */
static int parse_request_line(const char *p, size_t n, struct http_request *req)
{
	size_t i = 0, t;

	while (i < n && is_tchar((unsigned char)p[i]))
		i++;
	if (i == 0 || i >= n || p[i] != ' ')
		return -400;
	req->method = p;
	req->method_len = i++;
	t = i;
	while (i < n && (unsigned char)p[i] >= 0x21 && (unsigned char)p[i] != 0x7f)
		i++;
	if (i == t || i >= n || p[i] != ' ')
		return -400;
	req->target = p + t;
	req->target_len = i - t;
	origin_path(req);
	i++;
	if (n - i != 8 || memcmp(p + i, "HTTP/", 5) != 0 || p[i + 5] < '0' || p[i + 5] > '9' ||
	    p[i + 6] != '.' || p[i + 7] < '0' || p[i + 7] > '9')
		return -400;
	if (p[i + 5] != '1')
		return -505;
	req->version_minor = p[i + 7] == '0' ? 0 : 1; /* 1.2 and up: speak 1.1 */
	return 0;
}

/*
 * A whole first line of n bytes (up to, not including, its LF): it must end
 * in CRLF with no other CR and be a request line.  0 or a negative status;
 * req is scratch.
 */
static int check_request_line(const char *p, size_t n, const struct http_limits *lim,
                              struct http_request *req)
{
	if (n == 0 || p[n - 1] != '\r' || memchr(p, '\r', n - 1))
		return -400;
	if (n - 1 > lim->max_request_line)
		return -414;
	memset(req, 0, sizeof(*req));
	return parse_request_line(p, n - 1, req);
}

/* Plain decimal digits, no sign, no blanks, no overflow. */
static int parse_length(const char *v, size_t n, int64_t *out)
{
	int64_t x = 0;

	if (n == 0 || n > 18) /* 18 digits cannot overflow int64_t */
		return -400;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -400;
		x = x * 10 + (v[i] - '0');
	}
	*out = x;
	return 0;
}

/* Apply the Connection header's comma-separated options. */
static void apply_connection(struct http_request *req, const char *v, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t s, e;

		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (ieq(v + s, e - s, "close"))
			req->keep_alive = false;
		else if (ieq(v + s, e - s, "keep-alive") && req->version_minor == 0)
			req->keep_alive = true;
	}
}

/* Parse one header line (without its CRLF) into req. */
static int parse_header(const char *p, size_t n, struct http_request *req, bool *seen_host)
{
	struct http_header *h;
	size_t i = 0, vs, ve;

	if (n && (p[0] == ' ' || p[0] == '\t'))
		return -400; /* obs-fold */
	while (i < n && is_tchar((unsigned char)p[i]))
		i++;
	if (i == 0 || i >= n || p[i] != ':')
		return -400; /* also a blank before the colon */
	if (req->nheaders == HTTP_MAX_HEADERS)
		return -431;
	h = &req->headers[req->nheaders++];
	h->name = p;
	h->name_len = i;
	vs = i + 1;
	for (size_t j = vs; j < n; j++)
		if (!is_vbyte((unsigned char)p[j]))
			return -400;
	while (vs < n && (p[vs] == ' ' || p[vs] == '\t'))
		vs++;
	ve = n;
	while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
		ve--;
	h->value = p + vs;
	h->value_len = ve - vs;

	if (ieq(h->name, h->name_len, "content-length")) {
		int64_t cl;

		if (parse_length(h->value, h->value_len, &cl) < 0)
			return -400;
		if (req->content_length >= 0 && req->content_length != cl)
			return -400;
		req->content_length = cl;
	} else if (ieq(h->name, h->name_len, "transfer-encoding")) {
		if (req->chunked || !ieq(h->value, h->value_len, "chunked"))
			return -400; /* only a single "chunked" is understood */
		req->chunked = true;
	} else if (ieq(h->name, h->name_len, "connection")) {
		apply_connection(req, h->value, h->value_len);
	} else if (ieq(h->name, h->name_len, "host")) {
		if (*seen_host)
			return -400;
		*seen_host = true;
	} else if (ieq(h->name, h->name_len, "expect")) {
		/* RFC 9110 section 10.1.1: an HTTP/1.0 client's 100-continue is
		 * ignored (it may not understand a 1xx answer). */
		if (ieq(h->value, h->value_len, "100-continue") && req->version_minor >= 1)
			req->expect_continue = true;
	}
	return 0;
}

/* The end of the head (offset just past CRLF CRLF), or 0 if not in buf. */
static size_t find_head_end(const char *buf, size_t len, size_t *scanned)
{
	size_t i = *scanned > 3 ? *scanned - 3 : 0;

	for (; i < len; i++) {
		const char *nl = memchr(buf + i, '\n', len - i);

		if (!nl)
			break;
		i = (size_t)(nl - buf);
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2; /* bare LF blank line: parse_request refuses it */
	}
	*scanned = len;
	return 0;
}

int http_parse_request(const char *buf, size_t len, const struct http_limits *lim,
                       struct http_request *req, size_t *scanned)
{
	bool seen_host = false;
	size_t end, pos, line_end;
	int rc;

	end = find_head_end(buf, len, scanned);
	if (end == 0) {
		const char *nl = memchr(buf, '\n', len);

		rc = check_line_prefix(buf, nl ? (size_t)(nl - buf) : len, lim);
		if (rc < 0)
			return rc;
		/* The request line is whole: judge it now.  Otherwise a bad one
		 * ("n\n", "a b\r\n") followed by bytes that never hold a blank
		 * line waits for max_head bytes or the timeout, not a 400. */
		if (nl && (rc = check_request_line(buf, (size_t)(nl - buf), lim, req)) < 0)
			return rc;
		if (len > lim->max_head)
			return -431;
		return 0;
	}
	if (end > lim->max_head)
		return -431;

	memset(req, 0, sizeof(*req));
	req->content_length = -1;
	/* Walk the lines; each must end in CRLF with no CR or LF inside. */
	pos = 0;
	for (unsigned line = 0;; line++) {
		const char *nl = memchr(buf + pos, '\n', end - pos);

		line_end = (size_t)(nl - buf);
		if (line_end == pos || buf[line_end - 1] != '\r')
			return -400;
		if (memchr(buf + pos, '\r', line_end - 1 - pos))
			return -400;
		if (line == 0) {
			if (line_end - 1 - pos > lim->max_request_line)
				return -414;
			rc = parse_request_line(buf + pos, line_end - 1 - pos, req);
			req->keep_alive = req->version_minor == 1;
		} else if (line_end - 1 == pos) {
			break; /* the blank line */
		} else {
			rc = parse_header(buf + pos, line_end - 1 - pos, req, &seen_host);
		}
		if (rc < 0)
			return rc;
		pos = line_end + 1;
	}
	if (req->chunked && (req->content_length >= 0 || req->version_minor == 0))
		return -400;
	if (req->version_minor == 1 && !seen_host)
		return -400;
	if (req->content_length > 0 && (uint64_t)req->content_length > lim->max_body)
		return -413;
	return (int)end;
}

/* ---------------------------------------------------------- chunked body */

/*
 * The chunk grammar (RFC 9112 section 7.1), exactly:
 *
 *   chunk     = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-ext = *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )
 *
 * so "2 erf" (a word after blanks, with no ";") is a 400, as is an empty
 * extension name or an unterminated quoted string.
 */
enum {
	CH_SIZE0,      /* first hex digit of a chunk size */
	CH_SIZE,       /* more hex digits */
	CH_EXT_WS,     /* blanks after the size, a value or a quoted string */
	CH_EXT_NAME0,  /* after ";": blanks, then the name's first byte */
	CH_EXT_NAME,   /* inside a name */
	CH_EXT_EQ,     /* blanks after a name: "=", ";" or CR */
	CH_EXT_VAL0,   /* after "=": blanks, then a token or a quoted string */
	CH_EXT_VAL,    /* inside a token value */
	CH_EXT_QUOTED, /* inside a quoted-string value */
	CH_EXT_QPAIR,  /* the byte after a backslash in a quoted string */
	CH_SIZE_LF,    /* LF after the size line's CR */
	CH_DATA,       /* chunk data */
	CH_DATA_CR,    /* CR after the data */
	CH_DATA_LF,    /* LF after the data */
	CH_TRAILER0,   /* start of a trailer line, or CR of the final blank line */
	CH_TRAILER,    /* inside a trailer line */
	CH_TRAILER_LF, /* LF ending a trailer line */
	CH_END_LF,     /* LF of the final blank line */
};

#define CH_MAX_LINE 4096 /* bytes of one size line (with extensions) or of all trailers */

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The state after byte ch of a size line's extension part, or -1 (400). */
static int ext_step(int state, unsigned char ch)
{
	bool ws = ch == ' ' || ch == '\t';

	if (ch == '\r' && (state == CH_SIZE || state == CH_EXT_WS || state == CH_EXT_NAME ||
	                   state == CH_EXT_EQ || state == CH_EXT_VAL))
		return CH_SIZE_LF;
	switch (state) {
	case CH_SIZE:
	case CH_EXT_WS:
		return ws ? CH_EXT_WS : ch == ';' ? CH_EXT_NAME0 : -1;
	case CH_EXT_NAME0:
		return ws ? CH_EXT_NAME0 : is_tchar(ch) ? CH_EXT_NAME : -1;
	case CH_EXT_NAME:
		/* What may follow a name may follow its blanks. */
		if (is_tchar(ch))
			return CH_EXT_NAME;
		/* fall through */
	case CH_EXT_EQ:
		return ws ? CH_EXT_EQ : ch == '=' ? CH_EXT_VAL0 : ch == ';' ? CH_EXT_NAME0 : -1;
	case CH_EXT_VAL0:
		return ws ? CH_EXT_VAL0 : ch == '"' ? CH_EXT_QUOTED : is_tchar(ch) ? CH_EXT_VAL : -1;
	case CH_EXT_VAL:
		return is_tchar(ch) ? CH_EXT_VAL : ws ? CH_EXT_WS : ch == ';' ? CH_EXT_NAME0 : -1;
	case CH_EXT_QUOTED:
		/* qdtext: HTAB, SP, VCHAR but DQUOTE and backslash, obs-text. */
		if (ch == '"')
			return CH_EXT_WS;
		if (ch == '\\')
			return CH_EXT_QPAIR;
		return is_vbyte(ch) ? CH_EXT_QUOTED : -1;
	case CH_EXT_QPAIR:
		return is_vbyte(ch) ? CH_EXT_QUOTED : -1;
	default:
		return -1;
	}
}

long http_chunked_feed(struct http_chunked *c, const char *buf, size_t len, uint64_t max_body)
{
	size_t i = 0;

	while (i < len && !c->done) {
		unsigned char ch = (unsigned char)buf[i];
		int h;

		if (c->state != CH_DATA) {
			/* Framing (size lines, extensions, CRLFs, trailers) is
			 * bounded in total, not only per line: megabytes of
			 * extensions around a few body bytes are refused early
			 * (CVE-2024-22019's class). */
			if (++c->framing > HTTP_CHUNK_FRAMING_FREE + HTTP_CHUNK_FRAMING_PER_BYTE * c->total)
				return -413;
		}
		switch (c->state) {
		case CH_SIZE0:
		case CH_SIZE:
			h = hexval(ch);
			if (h >= 0 && c->state == CH_SIZE0) {
				c->remaining = (uint64_t)h;
				c->state = CH_SIZE;
			} else if (h >= 0) {
				if (c->remaining > (UINT64_MAX >> 4))
					return -400;
				c->remaining = c->remaining * 16 + (uint64_t)h;
			} else if (c->state == CH_SIZE0 || (h = ext_step(c->state, ch)) < 0) {
				return -400;
			} else {
				c->state = h;
			}
			if (c->total + c->remaining > max_body || c->total + c->remaining < c->total)
				return -413;
			if (++c->line_len > CH_MAX_LINE)
				return -400;
			i++;
			break;
		case CH_EXT_WS:
		case CH_EXT_NAME0:
		case CH_EXT_NAME:
		case CH_EXT_EQ:
		case CH_EXT_VAL0:
		case CH_EXT_VAL:
		case CH_EXT_QUOTED:
		case CH_EXT_QPAIR:
			if ((h = ext_step(c->state, ch)) < 0)
				return -400;
			c->state = h;
			if (++c->line_len > CH_MAX_LINE)
				return -400;
			i++;
			break;
		case CH_SIZE_LF:
			if (ch != '\n')
				return -400;
			c->line_len = 0;
			c->state = c->remaining ? CH_DATA : CH_TRAILER0;
			i++;
			break;
		case CH_DATA: {
			size_t take = len - i;

			if (take > c->remaining)
				take = (size_t)c->remaining;
			c->remaining -= take;
			c->total += take;
			i += take;
			if (c->remaining == 0)
				c->state = CH_DATA_CR;
			break;
		}
		case CH_DATA_CR:
			if (ch != '\r')
				return -400;
			c->state = CH_DATA_LF;
			i++;
			break;
		case CH_DATA_LF:
			if (ch != '\n')
				return -400;
			c->state = CH_SIZE0;
			i++;
			break;
		case CH_TRAILER0:
			if (ch == '\r') {
				c->state = CH_END_LF;
				i++;
				break;
			}
			c->state = CH_TRAILER;
			/* fall through */
		case CH_TRAILER:
			if (ch == '\r')
				c->state = CH_TRAILER_LF;
			else if (ch == '\n' || !is_vbyte(ch))
				return -400;
			if (++c->line_len > CH_MAX_LINE)
				return -400;
			i++;
			break;
		case CH_TRAILER_LF:
			if (ch != '\n')
				return -400;
			c->state = CH_TRAILER0;
			i++;
			break;
		case CH_END_LF:
			if (ch != '\n')
				return -400;
			c->done = true;
			i++;
			break;
		default:
			return -400;
		}
	}
	return (long)i;
}

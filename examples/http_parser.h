/* SPDX-License-Identifier: MIT */
/*
 * http_parser.h: a small HTTP/1.1 request parser for examples/httpd.  It
 * parses a request head held in one contiguous buffer (pointers in the result
 * point into it) and decodes chunked bodies incrementally.  Every size is
 * bounded by the caller's limits; nothing is allocated.
 */
#ifndef URSA_EXAMPLE_HTTP_PARSER_H
#define URSA_EXAMPLE_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 64

struct http_header {
	const char *name;
	size_t name_len;
	const char *value; /* leading and trailing blanks stripped */
	size_t value_len;
};

struct http_limits {
	size_t max_head;         /* bytes of request line + headers + blank line */
	size_t max_request_line; /* bytes of the request line, CRLF excluded */
	uint64_t max_body;       /* bytes of body (Content-Length or decoded chunks) */
};

struct http_request {
	const char *method;
	size_t method_len;
	const char *target;
	size_t target_len;
	const char *path;         /* the target in origin form ("/a?b"), also from an
	                             absolute-form target ("http://h/a?b"); NULL for
	                             the asterisk and authority forms and other
	                             schemes (origin_path in http_parser.c) */
	size_t path_len;
	int version_minor;        /* HTTP/1.<minor>: 0 or 1 */
	struct http_header headers[HTTP_MAX_HEADERS];
	unsigned nheaders;
	int64_t content_length;   /* -1: no Content-Length header */
	bool chunked;             /* Transfer-Encoding: chunked */
	bool keep_alive;          /* after the version and Connection headers */
	bool expect_continue;     /* Expect: 100-continue, from an HTTP/1.1 client */
};

/*
 * Parse the request head at the start of buf[0..len).  Returns the length of
 * the head (through the blank line) when it is complete and valid; 0 when
 * more bytes are needed (and the limits are not yet exceeded); or a negative
 * HTTP status for a request that must be refused:
 *   -400 malformed (bad syntax, bare LF or CR, obs-fold, control bytes,
 *        invalid or conflicting Content-Length, unknown Transfer-Encoding,
 *        both Content-Length and Transfer-Encoding),
 *   -414 request line longer than max_request_line,
 *   -431 head longer than max_head or more than HTTP_MAX_HEADERS headers,
 *   -413 Content-Length above max_body,
 *   -505 a version other than HTTP/1.0 and HTTP/1.1.
 * *scanned (in/out, start at 0) remembers how far a previous call looked so
 * a head arriving in pieces is scanned for its end once.
 */
int http_parse_request(const char *buf, size_t len, const struct http_limits *lim,
                       struct http_request *req, size_t *scanned);

/* The header called name (case-insensitive), or NULL. */
const struct http_header *http_find_header(const struct http_request *req, const char *name);

/*
 * The framing of a chunked body (size lines, extensions, CRLFs, trailers)
 * may take at most HTTP_CHUNK_FRAMING_FREE bytes plus
 * HTTP_CHUNK_FRAMING_PER_BYTE per body byte decoded so far.  Body bytes in
 * 1-byte chunks (5 bytes of framing each) pass; megabytes of extensions,
 * leading zeros or trailers around a small body do not (the class of
 * CVE-2024-22019), so a chunked body costs at most 16 KiB + 9 x its size
 * in bytes read.
 */
#define HTTP_CHUNK_FRAMING_FREE (16u << 10)
#define HTTP_CHUNK_FRAMING_PER_BYTE 8u

/* Incremental decoder of a chunked body (RFC 9112 section 7.1). */
struct http_chunked {
	int state;         /* private */
	uint64_t remaining; /* bytes left in the current chunk */
	uint64_t total;    /* body bytes decoded so far */
	uint64_t framing;  /* bytes of everything else so far */
	unsigned line_len; /* bytes of the current size or trailer line */
	bool done;         /* the last chunk and the trailers have been read */
};

/*
 * Feed bytes of a chunked body.  Returns the count of bytes of buf consumed
 * (it stops at the end of the body, so bytes after it belong to the next
 * request), or -400 for a malformed body (bad or overflowing chunk size, a
 * size line that is not RFC 9112's chunk-size [chunk-ext], missing CRLF,
 * over-long size or trailer line) or -413 once the decoded body exceeds
 * max_body or the framing its bound (above).  Body bytes are counted in
 * c->total and skipped: the example server does not keep request bodies.
 */
long http_chunked_feed(struct http_chunked *c, const char *buf, size_t len, uint64_t max_body);

#endif /* URSA_EXAMPLE_HTTP_PARSER_H */

// SPDX-License-Identifier: MIT
/*
 * The HTTP/1.1 request parser of examples/httpd: good heads, heads arriving
 * a byte at a time, every refusal (400, 413, 414, 431, 505) and the chunked
 * body decoder.  Pure functions: no runtime, no fibers.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The parser is example code, compiled into this test directly. */
#include "../examples/http_parser.c"

static const struct http_limits lim = {
	.max_head = 8192, .max_request_line = 1024, .max_body = 1 << 20};

static int parse(const char *s, struct http_request *req)
{
	size_t scanned = 0;

	return http_parse_request(s, strlen(s), &lim, req, &scanned);
}

TestSuite(http_parser, .timeout = 30);

Test(http_parser, simple_get)
{
	struct http_request r;
	const char *s = "GET /index.html HTTP/1.1\r\nHost: a\r\nUser-Agent: x y \r\n\r\n";

	cr_assert_eq(parse(s, &r), (int)strlen(s));
	cr_assert_eq(r.method_len, 3);
	cr_assert(memcmp(r.method, "GET", 3) == 0);
	cr_assert_eq(r.target_len, 11);
	cr_assert(memcmp(r.target, "/index.html", 11) == 0);
	cr_assert_eq(r.version_minor, 1);
	cr_assert_eq(r.nheaders, 2);
	cr_assert_eq(r.headers[1].value_len, 3, "value blanks are stripped");
	cr_assert(r.keep_alive);
	cr_assert_eq(r.content_length, -1);
	cr_assert_not(r.chunked);
}

Test(http_parser, head_length_excludes_pipelined_bytes)
{
	struct http_request r;
	const char *one = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	char two[128];

	snprintf(two, sizeof(two), "%s%s", one, one);
	cr_assert_eq(parse(two, &r), (int)strlen(one));
}

Test(http_parser, byte_at_a_time_needs_more_until_complete)
{
	const char *s = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";
	size_t n = strlen(s), scanned = 0;
	struct http_request r;

	for (size_t i = 1; i < n; i++)
		cr_assert_eq(http_parse_request(s, i, &lim, &r, &scanned), 0, "at %zu", i);
	cr_assert_eq(http_parse_request(s, n, &lim, &r, &scanned), (int)n);
	cr_assert_eq(r.content_length, 5);
}

Test(http_parser, connection_and_versions)
{
	struct http_request r;

	cr_assert_gt(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, close\r\n\r\n", &r), 0);
	cr_assert_not(r.keep_alive);
	cr_assert_gt(parse("GET / HTTP/1.0\r\n\r\n", &r), 0, "1.0 needs no Host");
	cr_assert_not(r.keep_alive);
	cr_assert_gt(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r), 0);
	cr_assert(r.keep_alive);
	cr_assert_eq(parse("GET / HTTP/2.0\r\nHost: a\r\n\r\n", &r), -505);
	cr_assert_gt(parse("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", &r), 0);
	cr_assert(r.expect_continue);
	cr_assert_not_null(http_find_header(&r, "EXPECT"));
	cr_assert_null(http_find_header(&r, "nope"));
}

Test(http_parser, an_http_1_0_expect_100_continue_is_ignored)
{
	struct http_request r;

	cr_assert_gt(parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
	                   &r), 0);
	cr_assert_not(r.expect_continue, "RFC 9110 section 10.1.1");
	cr_assert_not_null(http_find_header(&r, "expect"));
}

Test(http_parser, the_path_of_origin_and_absolute_form_targets)
{
	static const struct {
		const char *target, *path; /* path NULL: none */
	} cases[] = {
		{"/a/b?c", "/a/b?c"},
		{"/", "/"},
		{"http://h/a/b?c", "/a/b?c"},
		{"HTTP://h.example:8080/x", "/x"},
		{"https://h/", "/"},
		{"http://h", "/"},
		{"http://h?q=1", "/"},
		{"http://h//etc/passwd", "//etc/passwd"},
		{"http://user@h:1/%2F", "/%2F"},
		{"http:///x", NULL},
		{"http://", NULL},
		{"ftp://h/x", NULL},
		{"h/x", NULL},
		{"*", NULL},
		{"h:443", NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char req[256];
		struct http_request r;

		snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", cases[i].target);
		cr_assert_gt(parse(req, &r), 0, "%s", cases[i].target);
		if (!cases[i].path) {
			cr_expect_null(r.path, "%s", cases[i].target);
			continue;
		}
		cr_expect(r.path && r.path_len == strlen(cases[i].path) &&
		          memcmp(r.path, cases[i].path, r.path_len) == 0,
		          "%s -> %.*s", cases[i].target, (int)r.path_len, r.path ? r.path : "(null)");
	}
}

Test(http_parser, malformed_is_400)
{
	static const char *bad[] = {
		"\x16\x03\x01\x02\x00garbage",           /* a TLS hello */
		"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",    /* two spaces */
		"GET / HTTP/1.1\nHost: a\n\n",            /* bare LF */
		"GET / HTTP/1.1\r\nHost: a\r\r\n\r\n",    /* bare CR */
		"GET / HTTP/1.1\r\nHost : a\r\n\r\n",     /* blank before colon */
		"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", /* obs-fold */
		"GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n",  /* control byte */
		"GET / HTTP/1.1\r\n\r\n",                 /* 1.1 without Host */
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
		"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTQ/1.1\r\nHost: a\r\n\r\n",
		"GET\r\n\r\n",
		": / HTTP/1.1\r\n\r\n",
	};
	struct http_request r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(parse(bad[i], &r), -400, "case %zu: %s", i, bad[i]);
}

Test(http_parser, garbage_is_refused_before_the_head_ends)
{
	struct http_request r;
	size_t scanned = 0;

	cr_assert_eq(http_parse_request("\x00\x01\x02", 3, &lim, &r, &scanned), -400);
	scanned = 0;
	cr_assert_eq(http_parse_request("GET /\x7f", 6, &lim, &r, &scanned), -400);
}

/* A whole first line is judged at once, before any blank line arrives: a
 * bare LF, a leading empty line, a line that is not METHOD SP target SP
 * version, or a version other than 1.x (httpd_test.py once sent random bytes
 * starting "n\n" and waited for a 400 that came only at the timeout). */
Test(http_parser, a_bad_request_line_is_refused_before_the_head_ends)
{
	static const struct {
		const char *head;
		int want;
	} cases[] = {
		{"n\n\xbbX-Junk: 1\r\n", -400},
		{"\n\x01\x02", -400},
		{"\r\nGET / HTTP/1.1\r\n", -400},
		{"GET / HTTP/1.1\nHost: t\r\n", -400},
		{"a b\r\nHost: t\r\n", -400},
		{"GET / HTTP/1.1\rx\r\nHost: t", -400},
		{"GET / HTTP/2.0\r\nHost: t\r\n", -505},
		{"GET / HTTP/1.1\r\nHost: t\r\n", 0}, /* fine so far: more to come */
	};
	struct http_request r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_eq(parse(cases[i].head, &r), cases[i].want, "case %zu: %s", i,
		             cases[i].head);
}

Test(http_parser, oversized)
{
	struct http_request r;
	size_t scanned = 0;
	char *big = malloc(100 * 1024 + 64);
	int n;

	/* A 100 KB header line: refused once past max_head, end or not. */
	n = sprintf(big, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
	memset(big + n, 'a', 100 * 1024);
	cr_assert_eq(http_parse_request(big, (size_t)n + 100 * 1024, &lim, &r, &scanned), -431);
	strcpy(big + n + 100 * 1024, "\r\n\r\n");
	scanned = 0;
	cr_assert_eq(parse(big, &r), -431);
	/* A long request line. */
	memcpy(big, "GET /", 5);
	memset(big + 5, 'a', 2000);
	scanned = 0;
	cr_assert_eq(http_parse_request(big, 2005, &lim, &r, &scanned), -414);
	free(big);
	/* Too many headers. */
	{
		char heads[8192];
		int m = sprintf(heads, "GET / HTTP/1.1\r\nHost: a\r\n");

		for (int i = 0; i < HTTP_MAX_HEADERS; i++)
			m += sprintf(heads + m, "X%d: y\r\n", i);
		strcpy(heads + m, "\r\n");
		cr_assert_eq(parse(heads, &r), -431);
	}
	cr_assert_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n\r\n", &r), -413);
	cr_assert_gt(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n", &r), 0);
}

static long feed_all(struct http_chunked *c, const char *s, uint64_t max)
{
	return http_chunked_feed(c, s, strlen(s), max);
}

Test(http_parser, chunked_body)
{
	const char *body = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\nGET";
	struct http_chunked c = {0};
	long n = feed_all(&c, body, 1 << 20);

	cr_assert_eq(n, (long)strlen(body) - 3, "stops at the end of the body");
	cr_assert(c.done);
	cr_assert_eq(c.total, 11);

	/* Byte at a time gives the same. */
	struct http_chunked d = {0};
	long sum = 0;

	for (size_t i = 0; i < strlen(body) && !d.done; i++) {
		long r = http_chunked_feed(&d, body + i, 1, 1 << 20);

		cr_assert_geq(r, 0);
		sum += r;
	}
	cr_assert_eq(sum, n);
	cr_assert_eq(d.total, 11);
}

Test(http_parser, chunked_refusals)
{
	struct http_chunked c;

	c = (struct http_chunked){0};
	cr_assert_eq(feed_all(&c, "x\r\n", 100), -400, "not hex");
	c = (struct http_chunked){0};
	cr_assert_eq(feed_all(&c, "-5\r\n", 100), -400, "negative");
	c = (struct http_chunked){0};
	cr_assert_eq(feed_all(&c, "fffffffffffffffffff\r\n", UINT64_MAX), -400, "overflow");
	c = (struct http_chunked){0};
	cr_assert_eq(feed_all(&c, "65\r\n", 100), -413, "above max_body");
	c = (struct http_chunked){0};
	cr_assert_eq(feed_all(&c, "2\r\nabX", 100), -400, "data without CRLF");
	c = (struct http_chunked){0};
	cr_assert_eq(feed_all(&c, "2\nab", 100), -400, "bare LF");
}

Test(http_parser, chunk_extensions_follow_the_grammar)
{
	static const char *const good[] = {
		"2;a\r\nab\r\n0\r\n\r\n",
		"2 ;a\r\nab\r\n0\r\n\r\n",
		"2\t; a = b ;c\r\nab\r\n0\r\n\r\n",
		"2;a=\"q \\\"x\\\\\" ;b=1\r\nab\r\n0;z\r\n\r\n",
		"2 \r\nab\r\n0\r\n\r\n",
	};
	static const char *const bad[] = {
		"2 erf\r\nab\r\n0\r\n\r\n", /* a word after blanks, no ";" */
		"2erf\r\n",
		"2;\r\n",                    /* empty name */
		"2; \r\n",
		"2;=x\r\n",
		"2;a=\r\n",                  /* no value after "=" */
		"2;a=\"x\r\n",               /* unterminated quoted string */
		"2;a=b c\r\n",
		"2;a b\r\n",
		"2;a=\"x\"y\r\n",
		"2;a@b\r\n",
		" 2\r\n",
		"0 erf\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct http_chunked c = {0};
		long n = feed_all(&c, good[i], 100);

		cr_expect_eq(n, (long)strlen(good[i]), "%s: %ld", good[i], n);
		cr_expect(c.done, "%s", good[i]);
		cr_expect_eq(c.total, 2, "%s", good[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct http_chunked c = {0};

		cr_expect_eq(feed_all(&c, bad[i], 100), -400, "%s", bad[i]);
	}
}

/* Feed a body made of `chunk` repeated until the decoder stops; returns the
 * bytes it consumed before its answer in *used and the answer. */
static long feed_repeated(const char *chunk, size_t max_bytes, uint64_t max_body, size_t *used)
{
	struct http_chunked c = {0};
	size_t n = strlen(chunk);

	*used = 0;
	while (*used < max_bytes) {
		long r = http_chunked_feed(&c, chunk, n, max_body);

		if (r < 0)
			return r;
		*used += (size_t)r;
	}
	return 0;
}

Test(http_parser, chunk_framing_is_bounded_in_total)
{
	char ext[4200];
	size_t used;
	long r;

	/* 1-byte chunks with 4 KiB extensions: CVE-2024-22019's shape. */
	memcpy(ext, "1;", 2);
	memset(ext + 2, 'a', 4000);
	strcpy(ext + 4002, "\r\nx\r\n");
	r = feed_repeated(ext, 300u << 20, 1u << 20, &used);
	cr_assert_eq(r, -413);
	cr_assert_leq(used, HTTP_CHUNK_FRAMING_FREE + 9 * 8, "read %zu bytes", used);
	/* Leading zeros do the same without an extension. */
	memset(ext, '0', 4000);
	strcpy(ext + 4000, "1\r\nx\r\n");
	r = feed_repeated(ext, 300u << 20, 1u << 20, &used);
	cr_assert_eq(r, -413);
	cr_assert_leq(used, HTTP_CHUNK_FRAMING_FREE + 9 * 8, "read %zu bytes", used);
	/* 1-byte chunks with a short extension (7 bytes of framing each) are
	 * fine, up to max_body (64 KiB here, to keep the test quick). */
	r = feed_repeated("1;a\r\nx\r\n", 16u << 20, 64u << 10, &used);
	cr_assert_eq(r, -413, "max_body still applies");
	cr_assert_eq(used, 8u * (64u << 10), "read %zu bytes", used); /* 64 KiB of 8-byte chunks */
	{
		struct http_chunked c = {0};
		size_t n = 0;

		for (int i = 0; i < 20000; i++) {
			r = feed_all(&c, "1;a\r\nx\r\n", 1u << 20);
			cr_assert_eq(r, 8, "chunk %d: %ld", i, r);
			n += 8;
		}
		cr_assert_eq(feed_all(&c, "0\r\n\r\n", 1u << 20), 5);
		cr_assert(c.done);
		cr_assert_eq(c.total, 20000);
		cr_assert_eq(c.framing, n - 20000 + 5);
	}
}

// SPDX-License-Identifier: MIT
/*
 * fuzz_http.c: libFuzzer target for examples/http_parser.c.  Besides "does
 * not crash" (under ASan and UBSan) it checks that feeding the input in two
 * pieces gives the same answer as feeding it whole, and that the chunked
 * decoder gives the same answer byte by byte as in one call.
 */
#include <stdlib.h>
#include <string.h>

#include "../http_parser.h"

static const struct http_limits lim = {
	.max_head = 1024, .max_request_line = 256, .max_body = 1u << 20};

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	const char *buf = (const char *)data;
	struct http_request whole, split;
	size_t scanned = 0, cut;
	int a, b;

	a = http_parse_request(buf, size, &lim, &whole, &scanned);
	if (a > 0 && (size_t)a > size)
		abort();
	if (a > 0) {
		for (unsigned i = 0; i < whole.nheaders; i++)
			if (whole.headers[i].value + whole.headers[i].value_len > buf + a)
				abort();
		/* The origin-form path lies inside the target, or is "/". */
		if (whole.path && !(whole.path_len == 1 && whole.path[0] == '/') &&
		    (whole.path < whole.target || whole.path[0] != '/' ||
		     whole.path + whole.path_len != whole.target + whole.target_len))
			abort();
	}

	/* The same bytes in two pieces. */
	cut = size ? data[0] % (size + 1) : 0;
	scanned = 0;
	b = http_parse_request(buf, cut, &lim, &split, &scanned);
	if (b == 0)
		b = http_parse_request(buf, size, &lim, &split, &scanned);
	/* Which refusal comes first may depend on where the cut falls; whether
	 * the request is refused, and how a good head parses, may not. */
	if ((b > 0 && b != a) || ((b < 0) != (a < 0)) || (b == 0 && a != 0))
		abort();

	/* Treat what follows the head (or everything) as a chunked body. */
	{
		size_t off = a > 0 ? (size_t)a : 0;
		struct http_chunked c1 = {0}, c2 = {0};
		long r1 = http_chunked_feed(&c1, buf + off, size - off, 4096);
		long r2 = 0;
		size_t i;

		for (i = off; i < size && !c2.done; i++) {
			long r = http_chunked_feed(&c2, buf + i, 1, 4096);

			if (r < 0) {
				r2 = r;
				break;
			}
			r2 += r;
		}
		if (r1 < 0 ? r1 != r2 : (r2 < 0 || r1 != r2 || c1.done != c2.done ||
		                         c1.total != c2.total))
			abort();
	}
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * The RESP2 parser and reply writer of examples/kv: multibulk and inline
 * commands, pipelines, commands arriving a byte at a time, and the protocol
 * errors Redis itself reports.  Pure functions: no runtime, no fibers.
 */
#include <criterion/criterion.h>
#include <string.h>

/* The parser is example code, compiled into this test directly. */
#include "../examples/resp.c"

static struct resp_cmd cmd;

TestSuite(resp, .timeout = 30);

static bool arg_is(unsigned i, const char *s)
{
	return cmd.argv[i].len == strlen(s) && memcmp(cmd.argv[i].p, s, strlen(s)) == 0;
}

Test(resp, multibulk)
{
	const char *s = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n*1\r\n$4\r\nPING\r\n";
	long n = resp_parse(s, strlen(s), &cmd);

	cr_assert_eq(n, 26);
	cr_assert_eq(cmd.argc, 3);
	cr_assert(arg_is(0, "SET") && arg_is(1, "k") && arg_is(2, ""));
	n = resp_parse(s + 26, strlen(s) - 26, &cmd);
	cr_assert_eq(n, 14);
	cr_assert(arg_is(0, "PING"));
}

Test(resp, binary_safe_bulk)
{
	const char s[] = "*1\r\n$4\r\n\r\n\0x\r\n";
	long n = resp_parse(s, sizeof(s) - 1, &cmd);

	cr_assert_eq(n, (long)sizeof(s) - 1);
	cr_assert_eq(cmd.argv[0].len, 4);
	cr_assert(memcmp(cmd.argv[0].p, "\r\n\0x", 4) == 0);
}

Test(resp, byte_at_a_time)
{
	const char *s = "*2\r\n$4\r\nECHO\r\n$11\r\nhello world\r\n";
	size_t len = strlen(s);

	for (size_t i = 0; i < len; i++)
		cr_assert_eq(resp_parse(s, i, &cmd), 0, "at %zu", i);
	cr_assert_eq(resp_parse(s, len, &cmd), (long)len);
	cr_assert(arg_is(1, "hello world"));
}

Test(resp, inline_commands)
{
	const char *s = "SET  k \"a b\"\r\nPING\n\r\n";
	long n = resp_parse(s, strlen(s), &cmd);

	cr_assert_eq(n, 14);
	cr_assert_eq(cmd.argc, 3);
	cr_assert(arg_is(0, "SET") && arg_is(1, "k") && arg_is(2, "a b"));
	cr_assert_eq(resp_parse(s + 14, strlen(s) - 14, &cmd), 5);
	cr_assert(arg_is(0, "PING"));
	cr_assert_eq(resp_parse(s + 19, 2, &cmd), 2);
	cr_assert_eq(cmd.argc, 0, "an empty line is no command");
	cr_assert_eq(resp_parse("GET", 3, &cmd), 0);
	cr_assert_eq(resp_parse("SET \"k\n", 7, &cmd), -RESP_EPROTO_QUOTES);
	cr_assert_eq(resp_parse("SET \"k\"v\n", 9, &cmd), -RESP_EPROTO_QUOTES);
}

Test(resp, inline_line_over_the_limit_is_too_big)
{
	static char line[RESP_MAX_INLINE + 2];

	memset(line, 'x', sizeof(line));
	cr_assert_eq(resp_parse(line, RESP_MAX_INLINE, &cmd), 0, "not yet too big");
	cr_assert_eq(resp_parse(line, RESP_MAX_INLINE + 1, &cmd), -RESP_EPROTO_INLINE);
	cr_assert_str_eq(resp_strerror(-RESP_EPROTO_INLINE),
	                 "ERR Protocol error: too big inline request");
}

Test(resp, protocol_errors)
{
	cr_assert_eq(resp_parse("*x\r\n", 4, &cmd), -RESP_EPROTO_MBULK);
	cr_assert_eq(resp_parse("*1\r\n:1\r\n", 8, &cmd), -RESP_EPROTO_DOLLAR);
	cr_assert_eq(resp_parse("*1\r\n$-2\r\n", 9, &cmd), -RESP_EPROTO_BULK);
	cr_assert_eq(resp_parse("*1\r\n$999999999999\r\n", 20, &cmd), -RESP_EPROTO_BULK);
	cr_assert_eq(resp_parse("*1\r\n$1\r\nabc", 11, &cmd), -RESP_EPROTO_CRLF);
	cr_assert_eq(resp_parse("*2000\r\n", 7, &cmd), -RESP_EPROTO_ARGS);
	cr_assert_eq(resp_parse("*99999999999999999999\r\n", 23, &cmd), -RESP_EPROTO_MBULK);
	cr_assert_str_eq(resp_strerror(-RESP_EPROTO_QUOTES),
	                 "ERR Protocol error: unbalanced quotes in request");
}

/* Redis 7 names the byte it found instead of '$'; CR and LF become spaces
 * so the reply stays one line. */
Test(resp, expected_dollar_error_names_the_byte_found)
{
	static const struct {
		const char *in;
		const char *want;
	} cases[] = {
		{"*1\r\n:1\r\n", "-ERR Protocol error: expected '$', got ':'\r\n"},
		{"*2\r\n$1\r\na\r\n+x\r\n", "-ERR Protocol error: expected '$', got '+'\r\n"},
		{"*1\r\n\r\n", "-ERR Protocol error: expected '$', got ' '\r\n"},
		{"*1\r\n\n", "-ERR Protocol error: expected '$', got ' '\r\n"},
		{"*x\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct resp_out o = {0};
		long n = resp_parse(cases[i].in, strlen(cases[i].in), &cmd);

		cr_assert_lt(n, 0, "%s", cases[i].in);
		resp_out_proto_error(&o, n, &cmd);
		cr_assert_eq(o.len, strlen(cases[i].want), "%zu", i);
		cr_assert(memcmp(o.p, cases[i].want, o.len) == 0, "%zu: %.*s", i, (int)o.len, o.p);
		resp_out_free(&o);
	}
}

Test(resp, writer)
{
	struct resp_out o = {0};
	const char *want = "+OK\r\n-ERR x\r\n:-42\r\n$3\r\nabc\r\n$-1\r\n*2\r\n";

	resp_out_simple(&o, "OK");
	resp_out_error(&o, "ERR x");
	resp_out_int(&o, -42);
	resp_out_bulk(&o, "abc", 3);
	resp_out_null(&o);
	resp_out_array(&o, 2);
	cr_assert_eq(o.len, strlen(want));
	cr_assert(memcmp(o.p, want, o.len) == 0);
	resp_out_free(&o);
}

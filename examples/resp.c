// SPDX-License-Identifier: MIT
/*
 * resp.c: RESP2 parsing and reply writing for examples/kv.  The parser is
 * restartable: when a command is incomplete it returns 0 and is called again
 * from the start once more bytes are in, which costs one pass over the
 * headers (bulk payloads are skipped by length, never scanned).
 */
#include "resp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *resp_strerror(long err)
{
	switch (-err) {
	case RESP_EPROTO_MBULK:
		return "ERR Protocol error: invalid multibulk length";
	case RESP_EPROTO_BULK:
		return "ERR Protocol error: invalid bulk length";
	case RESP_EPROTO_DOLLAR:
		return "ERR Protocol error: expected '$'";
	case RESP_EPROTO_CRLF:
		return "ERR Protocol error: bulk not followed by CRLF";
	case RESP_EPROTO_INLINE:
		return "ERR Protocol error: too big inline request";
	case RESP_EPROTO_ARGS:
		return "ERR Protocol error: too many arguments";
	case RESP_EPROTO_QUOTES:
		return "ERR Protocol error: unbalanced quotes in request";
	default:
		return "ERR Protocol error";
	}
}

/*
 * Read "<int>\r\n" at buf[*pos]: 1 and *out, 0 if the line is incomplete,
 * -1 if it is not a plain (optionally negative) decimal of at most 18
 * digits or the line runs past 32 bytes.
 */
static int read_int_line(const char *buf, size_t len, size_t *pos, long long *out)
{
	size_t i = *pos, digits = 0;
	bool neg = false;
	long long v = 0;

	if (i < len && buf[i] == '-') {
		neg = true;
		i++;
	}
	for (; i < len && buf[i] >= '0' && buf[i] <= '9'; i++) {
		if (++digits > 18)
			return -1;
		v = v * 10 + (buf[i] - '0');
	}
	if (i >= len)
		return i - *pos > 32 ? -1 : 0;
	if (digits == 0 || buf[i] != '\r')
		return -1;
	if (i + 1 >= len)
		return 0;
	if (buf[i + 1] != '\n')
		return -1;
	*pos = i + 2;
	*out = neg ? -v : v;
	return 1;
}

static long parse_multibulk(const char *buf, size_t len, struct resp_cmd *cmd)
{
	size_t pos = 1;
	long long n;
	int rc;

	rc = read_int_line(buf, len, &pos, &n);
	if (rc <= 0)
		return rc < 0 ? -RESP_EPROTO_MBULK : 0;
	if (n > RESP_MAX_ARGS)
		return n > 1024 * 1024 ? -RESP_EPROTO_MBULK : -RESP_EPROTO_ARGS;
	cmd->argc = 0;
	if (n <= 0)
		return (long)pos; /* "*0" and "*-1" are empty commands, skipped */
	for (long long a = 0; a < n; a++) {
		long long blen;

		if (pos >= len)
			return 0;
		if (buf[pos] != '$') {
			cmd->got = buf[pos];
			return -RESP_EPROTO_DOLLAR;
		}
		pos++;
		rc = read_int_line(buf, len, &pos, &blen);
		if (rc <= 0)
			return rc < 0 ? -RESP_EPROTO_BULK : 0;
		if (blen < 0 || blen > (long long)RESP_MAX_BULK)
			return -RESP_EPROTO_BULK;
		if (len - pos < (size_t)blen + 2)
			return 0;
		if (buf[pos + blen] != '\r' || buf[pos + blen + 1] != '\n')
			return -RESP_EPROTO_CRLF;
		cmd->argv[a].p = buf + pos;
		cmd->argv[a].len = (size_t)blen;
		pos += (size_t)blen + 2;
	}
	cmd->argc = (unsigned)n;
	return (long)pos;
}

/*
 * An inline command: words separated by blanks, up to LF (a CR before it is
 * dropped).  Quotes are not interpreted beyond grouping: "a b" is one
 * argument without its quotes, as redis-cli would send it.
 */
static long parse_inline(const char *buf, size_t len, struct resp_cmd *cmd)
{
	const char *nl = memchr(buf, '\n', len);
	size_t end, i = 0;

	if (!nl)
		return len > RESP_MAX_INLINE ? -RESP_EPROTO_INLINE : 0;
	end = (size_t)(nl - buf);
	if (end > RESP_MAX_INLINE)
		return -RESP_EPROTO_INLINE;
	if (end > 0 && buf[end - 1] == '\r')
		end--;
	cmd->argc = 0;
	while (i < end) {
		size_t s;

		while (i < end && (buf[i] == ' ' || buf[i] == '\t'))
			i++;
		if (i >= end)
			break;
		if (cmd->argc == RESP_MAX_ARGS)
			return -RESP_EPROTO_ARGS;
		if (buf[i] == '"' || buf[i] == '\'') {
			char q = buf[i++];

			s = i;
			while (i < end && buf[i] != q)
				i++;
			if (i >= end)
				return -RESP_EPROTO_QUOTES;
			cmd->argv[cmd->argc].p = buf + s;
			cmd->argv[cmd->argc++].len = i - s;
			i++;
			/* A closing quote must end the word, as in Redis. */
			if (i < end && buf[i] != ' ' && buf[i] != '\t')
				return -RESP_EPROTO_QUOTES;
		} else {
			s = i;
			while (i < end && buf[i] != ' ' && buf[i] != '\t')
				i++;
			cmd->argv[cmd->argc].p = buf + s;
			cmd->argv[cmd->argc++].len = i - s;
		}
	}
	return (long)(nl - buf) + 1;
}

long resp_parse(const char *buf, size_t len, struct resp_cmd *cmd)
{
	if (len == 0)
		return 0;
	if (buf[0] == '*')
		return parse_multibulk(buf, len, cmd);
	return parse_inline(buf, len, cmd);
}

/* ---------------------------------------------------------------- output */

static bool reserve(struct resp_out *o, size_t n)
{
	size_t cap;
	char *p;

	if (o->oom)
		return false;
	if (o->cap - o->len >= n)
		return true;
	cap = o->cap ? o->cap : 4096;
	while (cap - o->len < n)
		cap *= 2;
	p = realloc(o->p, cap);
	if (!p) {
		o->oom = true;
		return false;
	}
	o->p = p;
	o->cap = cap;
	return true;
}

void resp_out_free(struct resp_out *o)
{
	free(o->p);
	*o = (struct resp_out){0};
}

void resp_out_raw(struct resp_out *o, const void *p, size_t n)
{
	if (!reserve(o, n))
		return;
	memcpy(o->p + o->len, p, n);
	o->len += n;
}

static void out_line(struct resp_out *o, char type, const char *s, size_t n)
{
	if (!reserve(o, n + 3))
		return;
	o->p[o->len++] = type;
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len++] = '\r';
	o->p[o->len++] = '\n';
}

static void out_num(struct resp_out *o, char type, long long v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%lld", v);

	out_line(o, type, tmp, (size_t)n);
}

void resp_out_simple(struct resp_out *o, const char *s)
{
	out_line(o, '+', s, strlen(s));
}

void resp_out_error(struct resp_out *o, const char *s)
{
	out_line(o, '-', s, strlen(s));
}

void resp_out_int(struct resp_out *o, long long v)
{
	out_num(o, ':', v);
}

void resp_out_array(struct resp_out *o, long long n)
{
	out_num(o, '*', n);
}

void resp_out_null(struct resp_out *o)
{
	resp_out_raw(o, "$-1\r\n", 5);
}

void resp_out_proto_error(struct resp_out *o, long err, const struct resp_cmd *cmd)
{
	const char *msg = resp_strerror(err);
	char line[96];
	size_t n = strlen(msg);

	if (err != -RESP_EPROTO_DOLLAR) {
		out_line(o, '-', msg, n);
		return;
	}
	/* Redis: "expected '$', got '%c'", with CR and LF made spaces so that
	 * the reply stays one line; any other byte as it came. */
	memcpy(line, msg, n);
	memcpy(line + n, ", got '", 7);
	n += 7;
	line[n++] = cmd->got == '\r' || cmd->got == '\n' ? ' ' : cmd->got;
	line[n++] = '\'';
	out_line(o, '-', line, n);
}

void resp_out_bulk(struct resp_out *o, const void *p, size_t n)
{
	out_num(o, '$', (long long)n);
	if (!reserve(o, n + 2))
		return;
	memcpy(o->p + o->len, p, n);
	o->len += n;
	o->p[o->len++] = '\r';
	o->p[o->len++] = '\n';
}

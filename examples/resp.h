/* SPDX-License-Identifier: MIT */
/*
 * resp.h: the RESP2 request parser and reply writer of examples/kv.  A
 * request is a multibulk array of bulk strings (what redis-cli and
 * redis-benchmark send) or an inline command (what a person types into nc).
 * Parsed arguments point into the caller's buffer; nothing is allocated.
 */
#ifndef URSA_EXAMPLE_RESP_H
#define URSA_EXAMPLE_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RESP_MAX_ARGS 1024            /* arguments of one command */
#define RESP_MAX_BULK (64u << 20)     /* bytes of one argument */
#define RESP_MAX_INLINE (64u << 10)   /* bytes of an inline command line */

struct resp_arg {
	const char *p;
	size_t len;
};

struct resp_cmd {
	struct resp_arg argv[RESP_MAX_ARGS];
	unsigned argc; /* 0 for an empty inline line (ignored, as Redis does) */
	char got;      /* -RESP_EPROTO_DOLLAR: the byte found instead of '$' */
};

/*
 * Protocol errors, each with the message Redis 7 replies where it has one.
 * Two are kv's own: Redis does not check the CRLF after a bulk (it skips two
 * bytes), and it allows 1024 * 1024 arguments where kv allows
 * RESP_MAX_ARGS.  Redis's bulk limit is 512 MiB (proto-max-bulk-len); kv's
 * RESP_MAX_BULK gets the same message.
 */
enum {
	RESP_EPROTO_MBULK = 1, /* invalid multibulk length */
	RESP_EPROTO_BULK,      /* invalid bulk length (also above RESP_MAX_BULK) */
	RESP_EPROTO_DOLLAR,    /* expected '$', got 'x' */
	RESP_EPROTO_CRLF,      /* a bulk not followed by CRLF (kv's own) */
	RESP_EPROTO_INLINE,    /* too big inline request (over RESP_MAX_INLINE) */
	RESP_EPROTO_ARGS,      /* more than RESP_MAX_ARGS arguments (kv's own) */
	RESP_EPROTO_QUOTES,    /* unbalanced quotes in request (inline) */
};

/*
 * Parse one command at the start of buf[0..len).  Returns the bytes it takes
 * (> 0) and fills *cmd; 0 when more bytes are needed; or -RESP_EPROTO_*
 * (reply resp_strerror() and close the connection, as Redis does).
 */
long resp_parse(const char *buf, size_t len, struct resp_cmd *cmd);

/* "ERR Protocol error: ..." text (without "-" and CRLF) for a -RESP_EPROTO_*;
 * for RESP_EPROTO_DOLLAR without the byte (resp_out_proto_error adds it). */
const char *resp_strerror(long err);

/* A growable output buffer of replies. */
struct resp_out {
	char *p;
	size_t len, cap;
	bool oom; /* an append failed: the connection must be dropped */
};

void resp_out_free(struct resp_out *o);
void resp_out_raw(struct resp_out *o, const void *p, size_t n);
void resp_out_simple(struct resp_out *o, const char *s);      /* +s\r\n */
void resp_out_error(struct resp_out *o, const char *s);       /* -s\r\n */
void resp_out_int(struct resp_out *o, long long v);           /* :v\r\n */
void resp_out_bulk(struct resp_out *o, const void *p, size_t n); /* $n\r\n...\r\n */
void resp_out_null(struct resp_out *o);                       /* $-1\r\n */
void resp_out_array(struct resp_out *o, long long n);         /* *n\r\n */
/* The error reply to -RESP_EPROTO_* err from resp_parse(..., cmd), worded as
 * Redis 7 words it ("expected '$', got ':'"). */
void resp_out_proto_error(struct resp_out *o, long err, const struct resp_cmd *cmd);

#endif /* URSA_EXAMPLE_RESP_H */

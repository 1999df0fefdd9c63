// SPDX-License-Identifier: MIT
/*
 * kv: a Redis-protocol (RESP2) key-value server on ursa.  Enough of Redis
 * for redis-cli and redis-benchmark: PING ECHO GET SET(EX/PX/NX/XX/KEEPTTL)
 * DEL EXISTS INCR DECR MGET MSET EXPIRE TTL PTTL DBSIZE FLUSHDB SELECT QUIT
 * COMMAND CONFIG-GET, with pipelining.
 *
 *   kv [--port N] [--cores N] [--host ADDR] [--idle-ms MS] [--grace-ms MS]
 *
 * Sharding: each core owns the keys whose hash picks it, in a hash table only
 * that core touches, so the table needs no lock.  A connection lives on the
 * core that accepted it; an operation on a key of another core travels as a
 * message (a struct on the connection task's stack, queued on the owner's
 * inbox) that the owner's shard task executes, writing the reply straight
 * into the connection's output buffer, and then signals done.  Multi-key
 * commands (MGET, MSET, DEL, EXISTS) go key by key, so they are not atomic
 * across cores; FLUSHDB and DBSIZE visit every core.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "resp.h"
#include "server.h"

#define IN_MAX ((size_t)RESP_MAX_BULK + 65536) /* a command larger than this is refused */
#define OUT_FLUSH (256u << 10)               /* flush mid-pipeline past this */

/* ------------------------------------------------------------- the shards */

struct entry {
	struct entry *next;
	uint64_t hash;
	int64_t expire_ms; /* CLOCK_MONOTONIC, in ms (expiry_after); 0: no expiry */
	char *val;
	size_t vlen, klen;
	char key[];
};

struct shard {
	struct entry **buckets;
	size_t mask;  /* buckets - 1 */
	size_t count;
	struct ursa_queue *inbox; /* messages from other cores */
} __attribute__((aligned(64)));

static struct shard *shards;
static unsigned nshards;

static uint64_t hash_key(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

/* The core that owns a key: high bits, so the bucket index (low bits)
 * stays spread within each shard. */
static unsigned owner_of(const struct resp_arg *key)
{
	return (unsigned)((hash_key(key->p, key->len) >> 40) % nshards);
}

static struct shard *my_shard(void)
{
	return &shards[ursa_core()];
}

static void free_entry(struct entry *e)
{
	free(e->val);
	free(e);
}

/* ------------------------------------------------------------- expiry */

/*
 * Expiry times are milliseconds on the monotonic clock, so that a step of
 * the wall clock neither expires keys nor keeps them.  Redis keeps them as
 * Unix-time milliseconds and refuses, with "invalid expire time", any value
 * whose conversion to its absolute time overflows 64 bits; kv applies the
 * same rule against the same base (the wall clock), so that it accepts and
 * refuses exactly the values Redis 7 does, PX 9223372036854 and EX
 * 9223372036 included (issue 20: ns arithmetic overflowed on those, and the
 * key vanished at once).
 */
static int64_t now_ms(void)
{
	return (int64_t)(ursa_now() / 1000000u);
}

static int64_t unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether Redis accepts ms (> 0) as a time to live: its Unix-time base
 * plus ms must fit. */
static bool expiry_fits(int64_t ms)
{
	return ms <= INT64_MAX - unix_ms();
}

/* The monotonic expiry time ms (> 0) from now.  The monotonic clock is
 * behind the wall clock, so a value that passed expiry_fits fits here too;
 * saturate anyway rather than trust that (a clock set before 1970). */
static int64_t expiry_after(int64_t ms)
{
	int64_t now = now_ms();

	return ms > INT64_MAX - now ? INT64_MAX : now + ms;
}

/* Find key in s, dropping it if it has expired; *link gets the slot that
 * points at it (for unlinking). */
static struct entry *lookup(struct shard *s, const struct resp_arg *key, struct entry ***link)
{
	uint64_t h = hash_key(key->p, key->len);
	struct entry **pp = &s->buckets[h & s->mask];

	for (struct entry *e = *pp; e; pp = &e->next, e = e->next) {
		if (e->hash != h || e->klen != key->len || memcmp(e->key, key->p, key->len) != 0)
			continue;
		if (e->expire_ms && e->expire_ms <= now_ms()) {
			*pp = e->next;
			free_entry(e);
			s->count--;
			return NULL;
		}
		if (link)
			*link = pp;
		return e;
	}
	return NULL;
}

static void grow(struct shard *s)
{
	size_t n = (s->mask + 1) * 2;
	struct entry **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return; /* stay at the old size; chains get longer */
	for (size_t i = 0; i <= s->mask; i++) {
		struct entry *e = s->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	}
	free(s->buckets);
	s->buckets = nb;
	s->mask = n - 1;
}

/* Insert or replace key's value; returns the entry or NULL (out of memory). */
static struct entry *store(struct shard *s, const struct resp_arg *key, const struct resp_arg *val)
{
	struct entry *e = lookup(s, key, NULL);
	char *v = malloc(val->len ? val->len : 1);

	if (!v)
		return NULL;
	memcpy(v, val->p, val->len);
	if (!e) {
		e = malloc(sizeof(*e) + key->len);
		if (!e) {
			free(v);
			return NULL;
		}
		e->hash = hash_key(key->p, key->len);
		e->klen = key->len;
		memcpy(e->key, key->p, key->len);
		e->val = NULL;
		e->expire_ms = 0;
		e->next = s->buckets[e->hash & s->mask];
		s->buckets[e->hash & s->mask] = e;
		if (++s->count > s->mask + 1)
			grow(s);
	}
	free(e->val);
	e->val = v;
	e->vlen = val->len;
	return e;
}

static bool delete_key(struct shard *s, const struct resp_arg *key)
{
	struct entry **link, *e = lookup(s, key, &link);

	if (!e)
		return false;
	*link = e->next;
	free_entry(e);
	s->count--;
	return true;
}

static void flush_shard(struct shard *s)
{
	for (size_t i = 0; i <= s->mask; i++) {
		struct entry *e = s->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			free_entry(e);
		}
		s->buckets[i] = NULL;
	}
	s->count = 0;
}

/* ------------------------------------------------- messages between cores */

/*
 * One operation on one shard.  fn runs on the owning core with argv[0] the
 * key (if any); it writes its reply to out or its count to result.
 */
struct kv_msg {
	void (*fn)(struct kv_msg *m);
	const struct resp_arg *argv;
	unsigned argc;
	struct resp_out *out;
	long long result;
	struct ursa_event done;
};

/* Run m on `core`: directly when that is this core, else through its inbox. */
static void run_on(unsigned core, struct kv_msg *m)
{
	if (core == ursa_core()) {
		m->fn(m);
		return;
	}
	ursa_event_init(&m->done);
	/*
	 * The owner writes into m (on this stack) until it sets done, so the
	 * wait must not end early: shield it from cancellation.  The shard task
	 * always answers, even while it stops (see shard_task).
	 */
	URSA_SHIELDED(URSA_FOREVER) {
		if (ursa_queue_put(shards[core].inbox, m) == 0) {
			int rc = ursa_event_wait(&m->done); /* shielded: only 0 */

			(void)rc;
		} else {
			resp_out_error(m->out, "ERR server is shutting down");
		}
	}
}

/* Each core's server of messages from the other cores. */
static void *shard_task(void *arg)
{
	struct ursa_queue *q = my_shard()->inbox;
	void *item;

	(void)arg;
	while (ursa_queue_get(q, &item) == 0) {
		struct kv_msg *m = item;

		m->fn(m);
		ursa_event_set(&m->done);
	}
	/* Cancelled (the runtime is stopping): refuse new messages and answer
	 * the ones already queued, so no sender waits forever. */
	ursa_queue_close(q);
	while (ursa_queue_get_nowait(q, &item) == 0) {
		struct kv_msg *m = item;

		m->fn(m);
		ursa_event_set(&m->done);
	}
	return NULL;
}

static void kv_core_init(unsigned core)
{
	const struct ursa_spawn_opts so = {.flags = URSA_SPAWN_DETACHED, .name = "shard"};
	struct shard *s;

	/* server_main runs core_init on core 0 first, then the others in turn. */
	if (core == 0) {
		nshards = ursa_ncores();
		shards = aligned_alloc(64, nshards * sizeof(*shards));
		if (!shards) {
			fprintf(stderr, "kv: out of memory\n");
			exit(1);
		}
		memset(shards, 0, nshards * sizeof(*shards));
	}
	s = &shards[core];
	s->mask = 1023;
	s->buckets = calloc(s->mask + 1, sizeof(*s->buckets));
	if (!s->buckets || ursa_queue_create(&s->inbox, 0, 0) < 0 ||
	    ursa_spawn_ex(NULL, core, shard_task, NULL, &so) < 0) {
		fprintf(stderr, "kv: out of memory\n");
		exit(1);
	}
}

/* ------------------------------------------------------- shard operations */

static bool arg_eq(const struct resp_arg *a, const char *s)
{
	return a->len == strlen(s) && strncasecmp(a->p, s, a->len) == 0;
}

/*
 * Strict signed decimal, the rule of Redis's string2ll: every byte counts
 * (so "5\0junk" is no number, where strtoll stopped at the NUL), an optional
 * '-', no blanks or '+' (strtoll skipped leading tabs: "\t5" passed), no
 * leading zero but "0" itself ("-0" is refused), and a value that fits.
 */
static bool parse_ll(const char *p, size_t n, long long *out)
{
	unsigned long long v = 0, limit;
	bool neg = n > 0 && p[0] == '-';
	size_t i = neg;

	if (n == 1 && p[0] == '0') {
		*out = 0;
		return true;
	}
	if (i >= n || p[i] < '1' || p[i] > '9')
		return false;
	limit = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
	for (; i < n; i++) {
		if (p[i] < '0' || p[i] > '9' || v > (limit - (unsigned)(p[i] - '0')) / 10)
			return false;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	*out = neg ? (v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v)
	           : (long long)v;
	return true;
}

static void op_get(struct kv_msg *m)
{
	struct entry *e = lookup(my_shard(), &m->argv[0], NULL);

	if (e)
		resp_out_bulk(m->out, e->val, e->vlen);
	else
		resp_out_null(m->out);
}

/* SET key value [NX|XX] [EX s|PX ms|KEEPTTL]; argv[0] is the key. */
static void op_set(struct kv_msg *m)
{
	bool nx = false, xx = false, keepttl = false;
	long long ttl_ms = 0;
	struct shard *s = my_shard();
	struct entry *e;

	for (unsigned i = 2; i < m->argc; i++) {
		const struct resp_arg *a = &m->argv[i];

		if (arg_eq(a, "NX") && !xx) {
			nx = true;
		} else if (arg_eq(a, "XX") && !nx) {
			xx = true;
		} else if (arg_eq(a, "KEEPTTL") && !ttl_ms) {
			keepttl = true;
		} else if ((arg_eq(a, "EX") || arg_eq(a, "PX")) && !keepttl && !ttl_ms &&
		           i + 1 < m->argc) {
			long long v;

			if (!parse_ll(m->argv[i + 1].p, m->argv[i + 1].len, &v)) {
				resp_out_error(m->out, "ERR value is not an integer or out of range");
				return;
			}
			/* Redis 7's rule (t_string.c): positive, and the
			 * absolute time in ms must fit in 64 bits. */
			if (v <= 0 || (arg_eq(a, "EX") && v > INT64_MAX / 1000) ||
			    !expiry_fits(arg_eq(a, "EX") ? v * 1000 : v)) {
				resp_out_error(m->out, "ERR invalid expire time in 'set' command");
				return;
			}
			ttl_ms = arg_eq(a, "EX") ? v * 1000 : v;
			i++;
		} else {
			resp_out_error(m->out, "ERR syntax error");
			return;
		}
	}
	e = lookup(s, &m->argv[0], NULL);
	if ((nx && e) || (xx && !e)) {
		resp_out_null(m->out);
		return;
	}
	{
		int64_t old_expire = e ? e->expire_ms : 0;

		e = store(s, &m->argv[0], &m->argv[1]);
		if (!e) {
			resp_out_error(m->out, "OOM command not allowed when used memory > 'maxmemory'.");
			return;
		}
		e->expire_ms = ttl_ms ? expiry_after(ttl_ms) : (keepttl ? old_expire : 0);
	}
	resp_out_simple(m->out, "OK");
}

/* MSET's half: store argv[1] under argv[0], no reply. */
static void op_store(struct kv_msg *m)
{
	struct entry *e = store(my_shard(), &m->argv[0], &m->argv[1]);

	if (e)
		e->expire_ms = 0;
	m->result = e != NULL;
}

/* INCR / DECR: argc carries the delta's sign (1: +1, 2: -1). */
static void op_incr(struct kv_msg *m)
{
	struct shard *s = my_shard();
	struct entry *e = lookup(s, &m->argv[0], NULL);
	long long v = 0, d = m->result;
	char buf[24];
	struct resp_arg val;

	if (e && !parse_ll(e->val, e->vlen, &v)) {
		resp_out_error(m->out, "ERR value is not an integer or out of range");
		return;
	}
	if ((d > 0 && v > INT64_MAX - d) || (d < 0 && v < INT64_MIN - d)) {
		resp_out_error(m->out, "ERR increment or decrement would overflow");
		return;
	}
	v += d;
	val.p = buf;
	val.len = (size_t)snprintf(buf, sizeof(buf), "%lld", v);
	{
		int64_t keep = e ? e->expire_ms : 0;

		e = store(s, &m->argv[0], &val);
		if (!e) {
			resp_out_error(m->out, "OOM command not allowed when used memory > 'maxmemory'.");
			return;
		}
		e->expire_ms = keep;
	}
	resp_out_int(m->out, v);
}

static void op_del(struct kv_msg *m)
{
	m->result = delete_key(my_shard(), &m->argv[0]);
}

static void op_exists(struct kv_msg *m)
{
	m->result = lookup(my_shard(), &m->argv[0], NULL) != NULL;
}

/* EXPIRE key seconds (checked by the caller; in ms in m->result).  As in
 * Redis 7, a time to live of 0 or less deletes the key at once. */
static void op_expire(struct kv_msg *m)
{
	struct shard *s = my_shard();
	struct entry *e = lookup(s, &m->argv[0], NULL);

	if (!e) {
		resp_out_int(m->out, 0);
	} else if (m->result <= 0) {
		delete_key(s, &m->argv[0]);
		resp_out_int(m->out, 1);
	} else {
		e->expire_ms = expiry_after(m->result);
		resp_out_int(m->out, 1);
	}
}

/* TTL (m->result 1000: seconds) or PTTL (1: milliseconds). */
static void op_ttl(struct kv_msg *m)
{
	struct entry *e = lookup(my_shard(), &m->argv[0], NULL);
	long long ms;

	if (!e) {
		resp_out_int(m->out, -2);
		return;
	}
	if (!e->expire_ms) {
		resp_out_int(m->out, -1);
		return;
	}
	ms = e->expire_ms - now_ms();
	if (ms < 0)
		ms = 0;
	/* Rounded to the nearest second as Redis does, without its + 500,
	 * which could overflow for a time to live near 2^63 ms. */
	resp_out_int(m->out, m->result == 1 ? ms : ms / 1000 + (ms % 1000 >= 500));
}

static void op_dbsize(struct kv_msg *m)
{
	m->result = (long long)my_shard()->count;
}

static void op_flush(struct kv_msg *m)
{
	flush_shard(my_shard());
	m->result = 0;
}

/* ------------------------------------------------------------ commands */

struct kv_conn {
	struct server_conn sc;
	struct resp_out out;
	struct ursa_reader *rd; /* the input, buffered up to IN_MAX */
	bool quit;  /* close once the replies are sent (QUIT, or shutting down) */
	bool last;  /* shutting down: the command being received is the last */
	struct resp_cmd cmd;
};

typedef void (*cmd_fn)(struct kv_conn *k, const struct resp_cmd *cmd);

/* Run fn on the key argv[i]'s shard with the arguments from argv[i] on. */
static long long key_op(struct kv_conn *k, const struct resp_cmd *cmd, unsigned i,
                        void (*fn)(struct kv_msg *), long long result)
{
	struct kv_msg m = {.fn = fn,
	                   .argv = &cmd->argv[i],
	                   .argc = cmd->argc - i,
	                   .out = &k->out,
	                   .result = result};

	run_on(owner_of(&cmd->argv[i]), &m);
	return m.result;
}

/* Run fn on every core; the sum of their results. */
static long long all_op(struct kv_conn *k, void (*fn)(struct kv_msg *))
{
	long long sum = 0;

	for (unsigned c = 0; c < nshards; c++) {
		struct kv_msg m = {.fn = fn, .out = &k->out};

		run_on(c, &m);
		sum += m.result;
	}
	return sum;
}

static void cmd_ping(struct kv_conn *k, const struct resp_cmd *cmd)
{
	if (cmd->argc > 2) /* Redis 7: PING [message], arity -1 checked here */
		resp_out_error(&k->out, "ERR wrong number of arguments for 'ping' command");
	else if (cmd->argc == 2)
		resp_out_bulk(&k->out, cmd->argv[1].p, cmd->argv[1].len);
	else
		resp_out_simple(&k->out, "PONG");
}

static void cmd_echo(struct kv_conn *k, const struct resp_cmd *cmd)
{
	resp_out_bulk(&k->out, cmd->argv[1].p, cmd->argv[1].len);
}

static void cmd_get(struct kv_conn *k, const struct resp_cmd *cmd)
{
	key_op(k, cmd, 1, op_get, 0);
}

static void cmd_set(struct kv_conn *k, const struct resp_cmd *cmd)
{
	key_op(k, cmd, 1, op_set, 0);
}

static void cmd_incr(struct kv_conn *k, const struct resp_cmd *cmd)
{
	key_op(k, cmd, 1, op_incr, 1);
}

static void cmd_decr(struct kv_conn *k, const struct resp_cmd *cmd)
{
	key_op(k, cmd, 1, op_incr, -1);
}

static void cmd_del(struct kv_conn *k, const struct resp_cmd *cmd)
{
	long long n = 0;

	for (unsigned i = 1; i < cmd->argc; i++)
		n += key_op(k, cmd, i, op_del, 0);
	resp_out_int(&k->out, n);
}

static void cmd_exists(struct kv_conn *k, const struct resp_cmd *cmd)
{
	long long n = 0;

	for (unsigned i = 1; i < cmd->argc; i++)
		n += key_op(k, cmd, i, op_exists, 0);
	resp_out_int(&k->out, n);
}

static void cmd_mget(struct kv_conn *k, const struct resp_cmd *cmd)
{
	resp_out_array(&k->out, cmd->argc - 1);
	for (unsigned i = 1; i < cmd->argc; i++)
		key_op(k, cmd, i, op_get, 0);
}

static void cmd_mset(struct kv_conn *k, const struct resp_cmd *cmd)
{
	if (cmd->argc % 2 == 0) {
		resp_out_error(&k->out, "ERR wrong number of arguments for 'mset' command");
		return;
	}
	for (unsigned i = 1; i < cmd->argc; i += 2)
		key_op(k, cmd, i, op_store, 0);
	resp_out_simple(&k->out, "OK");
}

/*
 * EXPIRE key seconds.  Redis 7's checks (expire.c), in its order and before
 * it looks at the key: an integer; seconds * 1000 and then the Unix-time
 * base plus that must fit in 64 bits ("invalid expire time", the key is
 * kept); a result in the past (any seconds <= 0) deletes the key.
 */
static void cmd_expire(struct kv_conn *k, const struct resp_cmd *cmd)
{
	long long s;

	if (!parse_ll(cmd->argv[2].p, cmd->argv[2].len, &s)) {
		resp_out_error(&k->out, "ERR value is not an integer or out of range");
		return;
	}
	if (s > INT64_MAX / 1000 || s < INT64_MIN / 1000 || !expiry_fits(s * 1000)) {
		resp_out_error(&k->out, "ERR invalid expire time in 'expire' command");
		return;
	}
	key_op(k, cmd, 1, op_expire, s * 1000);
}

static void cmd_ttl(struct kv_conn *k, const struct resp_cmd *cmd)
{
	key_op(k, cmd, 1, op_ttl, 1000);
}

static void cmd_pttl(struct kv_conn *k, const struct resp_cmd *cmd)
{
	key_op(k, cmd, 1, op_ttl, 1);
}

static void cmd_dbsize(struct kv_conn *k, const struct resp_cmd *cmd)
{
	(void)cmd;
	resp_out_int(&k->out, all_op(k, op_dbsize));
}

static void cmd_flushdb(struct kv_conn *k, const struct resp_cmd *cmd)
{
	if (cmd->argc > 2 ||
	    (cmd->argc == 2 && !arg_eq(&cmd->argv[1], "ASYNC") && !arg_eq(&cmd->argv[1], "SYNC"))) {
		resp_out_error(&k->out, "ERR syntax error");
		return;
	}
	all_op(k, op_flush);
	resp_out_simple(&k->out, "OK");
}

/* kv has database 0 only; Redis's 1 to 15 are out of range here. */
static void cmd_select(struct kv_conn *k, const struct resp_cmd *cmd)
{
	long long db;

	if (!parse_ll(cmd->argv[1].p, cmd->argv[1].len, &db))
		resp_out_error(&k->out, "ERR value is not an integer or out of range");
	else if (db != 0)
		resp_out_error(&k->out, "ERR DB index is out of range");
	else
		resp_out_simple(&k->out, "OK");
}

static void cmd_quit(struct kv_conn *k, const struct resp_cmd *cmd)
{
	(void)cmd;
	resp_out_simple(&k->out, "OK");
	k->quit = true;
}

static void cmd_command(struct kv_conn *k, const struct resp_cmd *cmd);

/* Redis 7's reply to a subcommand it does not know. */
static void unknown_subcommand(struct kv_conn *k, const struct resp_arg *sub, const char *cmd)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "ERR unknown subcommand '%.*s'. Try %s HELP.",
	         (int)(sub->len > 128 ? 128 : sub->len), sub->p, cmd);
	for (char *c = msg; *c; c++)
		if (*c == '\r' || *c == '\n')
			*c = ' ';
	resp_out_error(&k->out, msg);
}

/*
 * CONFIG GET name...: what redis-benchmark asks at start ("save",
 * "appendonly"; names matched exactly, not as globs); CONFIG SET knows no
 * option.  Errors worded as Redis 7's.
 */
static void cmd_config(struct kv_conn *k, const struct resp_cmd *cmd)
{
	unsigned found = 0;

	if (arg_eq(&cmd->argv[1], "SET")) {
		char msg[200];
		const struct resp_arg *name = cmd->argc > 2 ? &cmd->argv[2] : &cmd->argv[1];

		if (cmd->argc < 4) {
			resp_out_error(&k->out, "ERR wrong number of arguments for 'config|set' command");
			return;
		}
		snprintf(msg, sizeof(msg),
		         "ERR Unknown option or number of arguments for CONFIG SET - '%.*s'",
		         (int)(name->len > 128 ? 128 : name->len), name->p);
		for (char *c = msg; *c; c++)
			if (*c == '\r' || *c == '\n')
				*c = ' ';
		resp_out_error(&k->out, msg);
		return;
	}
	if (!arg_eq(&cmd->argv[1], "GET")) {
		unknown_subcommand(k, &cmd->argv[1], "CONFIG");
		return;
	}
	if (cmd->argc < 3) {
		resp_out_error(&k->out, "ERR wrong number of arguments for 'config|get' command");
		return;
	}
	for (unsigned i = 2; i < cmd->argc; i++)
		found += arg_eq(&cmd->argv[i], "save") || arg_eq(&cmd->argv[i], "appendonly");
	resp_out_array(&k->out, 2 * (long long)found);
	for (unsigned i = 2; i < cmd->argc; i++) {
		if (arg_eq(&cmd->argv[i], "save")) {
			resp_out_bulk(&k->out, "save", 4);
			resp_out_bulk(&k->out, "", 0);
		} else if (arg_eq(&cmd->argv[i], "appendonly")) {
			resp_out_bulk(&k->out, "appendonly", 10);
			resp_out_bulk(&k->out, "no", 2);
		}
	}
}

/* The command table; arity as Redis counts it: n exactly, -n at least n. */
static const struct kv_command {
	const char *name;
	int arity;
	cmd_fn fn;
} commands[] = {
	{"get", 2, cmd_get},       {"set", -3, cmd_set},       {"ping", -1, cmd_ping},
	{"echo", 2, cmd_echo},     {"del", -2, cmd_del},       {"exists", -2, cmd_exists},
	{"incr", 2, cmd_incr},     {"decr", 2, cmd_decr},      {"mget", -2, cmd_mget},
	{"mset", -3, cmd_mset},    {"expire", 3, cmd_expire},  {"ttl", 2, cmd_ttl},
	{"pttl", 2, cmd_pttl},     {"dbsize", 1, cmd_dbsize},  {"flushdb", -1, cmd_flushdb},
	{"select", 2, cmd_select}, {"quit", -1, cmd_quit},     {"command", -1, cmd_command},
	{"config", -2, cmd_config},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* COMMAND COUNT, COMMAND DOCS (empty: redis-cli then has no hints), and
 * COMMAND: one entry of name and arity per command. */
static void cmd_command(struct kv_conn *k, const struct resp_cmd *cmd)
{
	if (cmd->argc == 2 && arg_eq(&cmd->argv[1], "COUNT")) {
		resp_out_int(&k->out, (long long)NCOMMANDS);
	} else if (cmd->argc > 2 && arg_eq(&cmd->argv[1], "COUNT")) {
		resp_out_error(&k->out, "ERR wrong number of arguments for 'command|count' command");
	} else if (cmd->argc >= 2 && arg_eq(&cmd->argv[1], "DOCS")) {
		resp_out_array(&k->out, 0);
	} else if (cmd->argc == 1) {
		resp_out_array(&k->out, (long long)NCOMMANDS);
		for (size_t i = 0; i < NCOMMANDS; i++) {
			resp_out_array(&k->out, 2);
			resp_out_bulk(&k->out, commands[i].name, strlen(commands[i].name));
			resp_out_int(&k->out, commands[i].arity);
		}
	} else {
		unknown_subcommand(k, &cmd->argv[1], "COMMAND");
	}
}

static void unknown_command(struct kv_conn *k, const struct resp_cmd *cmd)
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "ERR unknown command '%.*s', with args beginning with: ",
	                 (int)(cmd->argv[0].len > 128 ? 128 : cmd->argv[0].len), cmd->argv[0].p);

	for (unsigned i = 1; i < cmd->argc && n < (int)sizeof(msg) - 140; i++)
		n += snprintf(msg + n, sizeof(msg) - (size_t)n, "'%.*s' ",
		              (int)(cmd->argv[i].len > 128 ? 128 : cmd->argv[i].len), cmd->argv[i].p);
	/* Bytes a reply line cannot hold become spaces. */
	for (int i = 0; i < n && i < (int)sizeof(msg); i++)
		if (msg[i] == '\r' || msg[i] == '\n')
			msg[i] = ' ';
	resp_out_error(&k->out, msg);
}

static void execute(struct kv_conn *k, const struct resp_cmd *cmd)
{
	const struct resp_arg *name = &cmd->argv[0];

	for (size_t i = 0; i < NCOMMANDS; i++) {
		const struct kv_command *c = &commands[i];

		if (!arg_eq(name, c->name))
			continue;
		if ((c->arity > 0 && (int)cmd->argc != c->arity) ||
		    (c->arity < 0 && (int)cmd->argc < -c->arity)) {
			char msg[160];

			snprintf(msg, sizeof(msg), "ERR wrong number of arguments for '%s' command",
			         c->name);
			resp_out_error(&k->out, msg);
			return;
		}
		c->fn(k, cmd);
		return;
	}
	unknown_command(k, cmd);
}

/* --------------------------------------------------------- connections */

static bool flush_out(struct kv_conn *k)
{
	bool ok;

	if (k->out.oom)
		return false;
	if (k->out.len == 0)
		return true;
	ok = server_send_all(&k->sc, k->out.p, k->out.len) == (ssize_t)k->out.len;
	k->out.len = 0;
	return ok;
}

/*
 * One connection: parse every complete command in the input, execute each
 * (appending replies), send the replies of the whole batch in one write, and
 * receive more.  Pipelining falls out of this: a batch of N commands costs
 * one recv and one send.  The input is an ursa_reader: the parser works on
 * its buffer (peek), what was executed is consumed, and fill reads more
 * behind the rest, growing the buffer up to IN_MAX.
 */
static void *kv_conn(void *arg)
{
	struct kv_conn *k = calloc(1, sizeof(*k));
	int fd = (int)(intptr_t)arg;

	if (!k || ursa_reader_create(&k->rd, fd, IN_MAX, 0) < 0) {
		struct server_conn sc;

		free(k);
		server_conn_enter(&sc, fd); /* only to close it and count it gone */
		server_conn_leave(&sc);
		return NULL;
	}
	server_conn_enter(&k->sc, fd);
	for (;;) {
		const char *in;
		size_t have = (size_t)ursa_reader_peek(k->rd, &in), off = 0;
		long n = 0;
		ssize_t r;

		while (!k->quit && off < have && (n = resp_parse(in + off, have - off, &k->cmd)) > 0) {
			if (k->cmd.argc)
				execute(k, &k->cmd);
			off += (size_t)n;
			if (k->out.len >= OUT_FLUSH && !flush_out(k))
				goto done;
			if (k->last)
				k->quit = true; /* the command in progress at shutdown is done */
		}
		if (n < 0) {
			/* As Redis: report the protocol error, then close. */
			resp_out_proto_error(&k->out, n, &k->cmd);
			flush_out(k);
			break;
		}
		if (!flush_out(k) || k->quit)
			break;
		(void)ursa_reader_consume(k->rd, off);
		/*
		 * Shutting down with part of a command in hand: finish that one
		 * command, then close.  Every command read whole has been answered;
		 * reading on for as long as the client keeps sending would never
		 * end (a receive rarely stops on a command boundary).
		 */
		if (have > off && server_draining())
			k->last = true;
		if (have == off) {
			/* Between commands: the idle timeout and shutdown apply. */
			if (!server_conn_wait_begin(&k->sc))
				break;
			r = ursa_reader_fill(k->rd);
			server_conn_wait_end(&k->sc);
		} else {
			/* Inside a command: it has the idle timeout to arrive, more
			 * while it keeps arriving in earnest (server_conn_received). */
			r = ursa_reader_fill(k->rd);
			if (r > 0)
				server_conn_received(&k->sc, (size_t)r);
		}
		/* The end, a reset, the idle timeout, shutdown, or a command larger
		 * than IN_MAX (-EMSGSIZE): drop the client. */
		if (r <= 0)
			break;
	}
done:
	server_conn_leave(&k->sc);
	resp_out_free(&k->out);
	ursa_reader_destroy(k->rd);
	free(k);
	return NULL;
}

static const struct server kv_server = {
	.name = "kv",
	.conn_fn = kv_conn,
	.core_init = kv_core_init,
};

int main(int argc, char **argv)
{
	struct server_opts o;

	size_t keys = 0;
	int rc;

	server_parse_args(&kv_server, argc, argv, &o);
	rc = server_main(&kv_server, &o);
	/*
	 * kv keeps nothing on disk, so "no acknowledged write is lost" at
	 * shutdown means: every command it executed was answered, whole, before
	 * its connection closed.  The key count at exit (every task has ended,
	 * so the shards are quiet) lets a test compare what the store holds with
	 * the replies its clients received (tests/servers/shutdown_test.py).
	 * Keys that expired but were never touched again are counted.
	 */
	for (unsigned i = 0; shards && i < nshards; i++)
		keys += shards[i].count;
	fprintf(stderr, "kv: %zu keys at exit\n", keys);
	return rc;
}

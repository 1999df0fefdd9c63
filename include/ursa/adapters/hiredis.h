/* SPDX-License-Identifier: MIT */
/*
 * ursa/adapters/hiredis.h: hiredis's asynchronous API on an ursa core, in
 * the shape of hiredis's own adapters (adapters/libuv.h and the others):
 * attach a redisAsyncContext and hiredis's read and write hooks become a
 * task that waits for the connection's fd on the ring (ursa_poll).  On top
 * of that, ursa_redis_command lets a task wait for a reply the way it waits
 * for anything else (`reply = await redis.get(k)`), so many tasks can share
 * one connection and their commands are pipelined.
 *
 * Header only: compile with `pkg-config --cflags --libs ursa-hiredis` (which
 * is ursa's and hiredis's flags); docs/io.md, "Running a client library on
 * the loop", has the rules and an example.
 *
 *	redisAsyncContext *ac = redisAsyncConnect("127.0.0.1", 6379);
 *	if (!ac || ac->err || ursa_redis_attach(ac) < 0) ...
 *	redisReply *r;
 *	int rc = ursa_redis_command(ac, &r, "SET %s %s", key, value);
 *	...  freeReplyObject(r);
 *	redisAsyncDisconnect(ac);   // or redisAsyncFree(ac)
 *
 * Rules:
 *   - A context belongs to the core of the task that attached it: hiredis
 *     is not thread-safe, and its callbacks run in a task of that core.
 *     ursa_redis_command from another core is -EXDEV.
 *   - Callbacks given to redisAsyncCommand run in that task, so they may
 *     make ursa calls; a callback that waits holds up the connection's other
 *     replies meanwhile.
 *   - redisAsyncConnect resolves a host name with getaddrinfo in the
 *     calling thread: give it an address (or resolve with ursa_getaddrinfo
 *     first), or use redisAsyncConnectUnix.
 *   - Free or disconnect the context before the runtime ends: when main
 *     returns, the task serving it is cancelled and the context is no
 *     longer served (commands then return -ENOTCONN).
 */
#ifndef URSA_ADAPTERS_HIREDIS_H
#define URSA_ADAPTERS_HIREDIS_H

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <ursa.h>

/*
 * What the adapter keeps per context (ac->ev.data).  It is freed by
 * whichever ends last: hiredis letting go of it (cleanup) or the task that
 * serves it.
 */
struct ursa_redis_events {
	redisAsyncContext *ac;     /* NULL once hiredis has let go (cleanup) */
	int serving;               /* 0 once the serving task has ended */
	unsigned core;
	int fd;
	uint32_t events;           /* POLLIN and POLLOUT as hiredis asks */
	uint64_t timeout_ns;       /* hiredis's timer (1.0+), URSA_FOREVER: none */
	struct ursa_scope *wait;   /* the driver's wait while it is parked */
	int kicked;                /* the wait was cut short to look again */
};

/* Make the driver look again, if it is parked: called from tasks of the
 * same core only, so the driver cannot be running meanwhile. */
static inline void ursa_redis__kick(struct ursa_redis_events *e)
{
	if (e->wait && !e->kicked) {
		e->kicked = 1;
		ursa_scope_cancel(e->wait);
	}
}

static inline void ursa_redis__set(struct ursa_redis_events *e, uint32_t events)
{
	if (e->events != events) {
		e->events = events;
		ursa_redis__kick(e);
	}
}

static inline void ursa_redis__add_read(void *privdata)
{
	struct ursa_redis_events *e = (struct ursa_redis_events *)privdata;

	ursa_redis__set(e, e->events | POLLIN);
}

static inline void ursa_redis__del_read(void *privdata)
{
	struct ursa_redis_events *e = (struct ursa_redis_events *)privdata;

	ursa_redis__set(e, e->events & ~(uint32_t)POLLIN);
}

static inline void ursa_redis__add_write(void *privdata)
{
	struct ursa_redis_events *e = (struct ursa_redis_events *)privdata;

	ursa_redis__set(e, e->events | POLLOUT);
}

static inline void ursa_redis__del_write(void *privdata)
{
	struct ursa_redis_events *e = (struct ursa_redis_events *)privdata;

	ursa_redis__set(e, e->events & ~(uint32_t)POLLOUT);
}

#if HIREDIS_MAJOR >= 1
static inline void ursa_redis__schedule_timer(void *privdata, struct timeval tv)
{
	struct ursa_redis_events *e = (struct ursa_redis_events *)privdata;

	e->timeout_ns = (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u;
	ursa_redis__kick(e);
}
#endif

/* hiredis lets go of the context (redisAsyncFree, a disconnect, an error):
 * the driver stops touching it and ends. */
static inline void ursa_redis__cleanup(void *privdata)
{
	struct ursa_redis_events *e = (struct ursa_redis_events *)privdata;

	e->ac = NULL;
	e->events = 0;
	if (e->serving)
		ursa_redis__kick(e); /* it frees e once it sees ac gone */
	else
		free(e);
}

/* The task serving one context: wait for what hiredis asked for, hand
 * hiredis what came, and look again when hiredis asks for something else. */
static inline void *ursa_redis__driver(void *arg)
{
	struct ursa_redis_events *e = (struct ursa_redis_events *)arg;

	while (e->ac) {
		struct ursa_scope s;
		uint64_t timeout = e->timeout_ns;
		int rc;

		ursa_scope_enter(&s, URSA_FOREVER);
		e->wait = &s;
		if (e->events)
			rc = ursa_poll(e->fd, e->events, timeout);
		else
			rc = timeout == URSA_FOREVER ? ursa_sleep(URSA_FOREVER)
			                             : (ursa_sleep(timeout) == 0 ? 0 : -ECANCELED);
		e->wait = NULL;
		(void)ursa_scope_exit(&s);
		if (e->kicked) {
			e->kicked = 0;
			continue; /* hiredis changed what it waits for */
		}
		if (!e->ac)
			break;
		if (rc == 0) {
#if HIREDIS_MAJOR >= 1
			e->timeout_ns = URSA_FOREVER;
			redisAsyncHandleTimeout(e->ac);
#endif
			continue;
		}
		if (rc < 0 && rc != -EBADF)
			break; /* the task is cancelled: the runtime is ending */
		/* Errors and hang-ups go to whichever side hiredis watches, which
		 * then reads or writes and learns what happened. */
		if (rc < 0)
			rc = POLLERR;
		if (rc & (POLLERR | POLLHUP))
			rc |= (int)e->events;
		if (e->ac && (rc & POLLIN) && (e->events & POLLIN))
			redisAsyncHandleRead(e->ac);
		if (e->ac && (rc & POLLOUT) && (e->events & POLLOUT))
			redisAsyncHandleWrite(e->ac);
	}
	e->serving = 0;
	if (!e->ac)
		free(e);
	return NULL;
}

/*
 * Attach ac to the calling task's core: a task of that core serves it from
 * now on.  0, or -EEXIST (ac has an event library already), -ENOMEM,
 * -EINVAL (ac NULL or in error), -EPERM outside a task, or ursa_spawn's
 * error.  Does not block.
 */
static inline URSA_NODISCARD int ursa_redis_attach(redisAsyncContext *ac)
{
	struct ursa_spawn_opts so = {URSA_SPAWN_DETACHED, 0, "redis"};
	struct ursa_redis_events *e;
	int rc;

	if (!ac || ac->err)
		return -EINVAL;
	if (ac->ev.data)
		return -EEXIST;
	if (!ursa_self())
		return -EPERM;
	e = (struct ursa_redis_events *)calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->ac = ac;
	e->core = ursa_core();
	e->fd = ac->c.fd;
	e->timeout_ns = URSA_FOREVER;
	/* Detached: the serving task records its end in e->serving. */
	rc = ursa_spawn_ex(NULL, e->core, ursa_redis__driver, e, &so);
	if (rc < 0) {
		free(e);
		return rc;
	}
	e->serving = 1;
	ac->ev.addRead = ursa_redis__add_read;
	ac->ev.delRead = ursa_redis__del_read;
	ac->ev.addWrite = ursa_redis__add_write;
	ac->ev.delWrite = ursa_redis__del_write;
	ac->ev.cleanup = ursa_redis__cleanup;
#if HIREDIS_MAJOR >= 1
	ac->ev.scheduleTimer = ursa_redis__schedule_timer;
#endif
	ac->ev.data = e;
	return 0;
}

/* --------------------------------------------- waiting for one reply */

/* One command in flight for ursa_redis_command; freed by whichever of the
 * reply callback and the waiting task is last. */
struct ursa_redis__call {
	struct ursa_event done;
	redisReply *reply;  /* the copy handed to the caller */
	int err;
	int abandoned;      /* the caller gave up: the callback frees this */
};

/* A deep copy of r with hiredis's allocator, so that freeReplyObject frees
 * it (hiredis frees its own once the callback returns).  NULL: no memory. */
static inline redisReply *ursa_redis__copy(const redisReply *r)
{
	redisReply *c = (redisReply *)hi_calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	*c = *r;
	c->str = NULL;
	c->element = NULL;
	c->elements = 0;
	if (r->str) {
		if (!(c->str = (char *)hi_malloc(r->len + 1)))
			goto fail;
		memcpy(c->str, r->str, r->len);
		c->str[r->len] = '\0';
	}
	if (r->element && r->elements) {
		if (!(c->element = (redisReply **)hi_calloc(r->elements, sizeof(*c->element))))
			goto fail;
		c->elements = r->elements;
		for (size_t i = 0; i < r->elements; i++)
			if (r->element[i] && !(c->element[i] = ursa_redis__copy(r->element[i])))
				goto fail;
	}
	return c;
fail:
	freeReplyObject(c);
	return NULL;
}

static inline void ursa_redis__on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct ursa_redis__call *call = (struct ursa_redis__call *)privdata;

	if (call->abandoned) {
		free(call);
		return;
	}
	if (!r)
		call->err = ac->err == REDIS_ERR_EOF || ac->err == REDIS_ERR_IO || ac->err == 0
		                    ? -ECONNRESET
		                    : -EPROTO;
	else if (!(call->reply = ursa_redis__copy((const redisReply *)r)))
		call->err = -ENOMEM;
	ursa_event_set(&call->done);
}

/*
 * Send a command (redisvAsyncCommand's format) and wait for its reply: 0
 * and *reply (the caller frees it with freeReplyObject; a Redis error such
 * as a wrong type is a reply of type REDIS_REPLY_ERROR, not a failure), or
 * -errno: -ECONNRESET when the connection is lost before the reply (the
 * server went away; the command may or may not have run), -ENOTCONN when
 * the context is disconnecting or no longer served, -EXDEV from another
 * core, -ENOMEM, -EINVAL; -ECANCELED / -ETIMEDOUT, and then the command
 * stays in flight and its reply is dropped when it comes (the command may
 * still run: as with any request, giving up on the answer does not stop
 * the server).  Blocks the fiber.
 */
static inline URSA_NODISCARD int ursa_redis_vcommand(redisAsyncContext *ac,
                                                     redisReply **reply, const char *format,
                                                     va_list ap)
{
	struct ursa_redis_events *e;
	struct ursa_redis__call *call;
	int rc;

	if (!ac || !reply || !format)
		return -EINVAL;
	e = (struct ursa_redis_events *)ac->ev.data;
	if (!e || ac->ev.addRead != ursa_redis__add_read)
		return -EINVAL; /* not attached with ursa_redis_attach */
	if (!ursa_self())
		return -EPERM;
	if (ursa_core() != e->core)
		return -EXDEV;
	if (!e->serving)
		return -ENOTCONN;
	call = (struct ursa_redis__call *)calloc(1, sizeof(*call));
	if (!call)
		return -ENOMEM;
	ursa_event_init(&call->done);
	if (redisvAsyncCommand(ac, ursa_redis__on_reply, call, format, ap) != REDIS_OK) {
		free(call);
		return -ENOTCONN;
	}
	rc = ursa_event_wait(&call->done);
	if (rc < 0) {
		call->abandoned = 1; /* the callback comes later and frees it */
		return rc;
	}
	rc = call->err;
	if (!rc)
		*reply = call->reply;
	free(call);
	return rc;
}

static inline URSA_NODISCARD int ursa_redis_command(redisAsyncContext *ac,
                                                    redisReply **reply, const char *format, ...)
{
	va_list ap;
	int rc;

	va_start(ap, format);
	rc = ursa_redis_vcommand(ac, reply, format, ap);
	va_end(ap);
	return rc;
}

#endif /* URSA_ADAPTERS_HIREDIS_H */

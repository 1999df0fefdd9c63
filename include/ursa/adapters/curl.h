/* SPDX-License-Identifier: MIT */
/*
 * ursa/adapters/curl.h: libcurl's multi interface on an ursa core, through
 * its socket and timer callbacks (curl_multi_socket_action, as libcurl's
 * docs describe for an event loop): each socket libcurl asks to watch is
 * waited for by a task on the ring (ursa_poll), and libcurl's one timer by
 * another.  On top of that, ursa_curl_perform lets a task run one transfer
 * and wait for it the way it waits for anything else (`await
 * session.get(url)`), while many tasks' transfers share the multi handle's
 * connections.  A deadline scope or a cancellation around it stops the
 * transfer.
 *
 * Header only: compile with `pkg-config --cflags --libs ursa-curl` (which is
 * ursa's and libcurl's flags); docs/io.md, "Running a client library on the
 * loop", has the rules and an example.
 *
 *	struct ursa_curl *c;
 *	ursa_curl_create(&c);                    // one per core that fetches
 *	CURL *h = curl_easy_init();
 *	curl_easy_setopt(h, CURLOPT_URL, url);   // and a write callback, ...
 *	CURLcode res;
 *	int rc = ursa_curl_perform(c, h, &res);  // 0: res is the transfer's
 *	curl_easy_cleanup(h);
 *	ursa_curl_destroy(c);
 *
 * Rules:
 *   - An ursa_curl belongs to the core that created it (libcurl handles are
 *     not thread-safe): ursa_curl_perform from another core is -EXDEV.  Make
 *     one per core that fetches.
 *   - libcurl's callbacks (CURLOPT_WRITEFUNCTION, ...) run in the tasks that
 *     serve the sockets; keep them short: a callback that waits holds up
 *     every transfer of the handle meanwhile.
 *   - Names are resolved by libcurl (its threaded resolver, in Debian's
 *     build: off the core).
 *   - Destroy it before the runtime ends: when main returns its tasks are
 *     cancelled, and transfers still running then end with -ECANCELED.
 */
#ifndef URSA_ADAPTERS_CURL_H
#define URSA_ADAPTERS_CURL_H

#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include <curl/curl.h>

#include <ursa.h>

struct ursa_curl;

/* One socket libcurl watches, and the task that waits for it. */
struct ursa_curl__sock {
	struct ursa_curl *c;
	curl_socket_t fd;
	uint32_t events;          /* POLLIN / POLLOUT, as libcurl asks */
	int removed;              /* CURL_POLL_REMOVE: the task ends */
	int kicked;               /* its wait was cut short to look again */
	struct ursa_scope *wait;  /* its wait, while it is parked */
	struct ursa_curl__sock *prev, *next;
};

/* One transfer a task waits for (on that task's stack). */
struct ursa_curl__xfer {
	CURL *easy;
	struct ursa_event done;
	CURLcode result;
	struct ursa_curl__xfer *prev, *next;
};

struct ursa_curl {
	CURLM *multi;
	unsigned core;
	int closing;
	int tasks;                      /* socket tasks and the timer task alive */
	struct ursa_event gone;         /* set when tasks falls to 0 while closing */
	uint64_t deadline_ns;           /* libcurl's timer, URSA_FOREVER: none */
	int timer_kicked;
	struct ursa_scope *timer_wait;  /* the timer task's wait, while parked */
	struct ursa_curl__sock *socks;
	struct ursa_curl__xfer *xfers;
};

/* Cut a parked wait short (same core only: the waiter is not running). */
static inline void ursa_curl__kick(struct ursa_scope *wait, int *kicked)
{
	if (wait && !*kicked) {
		*kicked = 1;
		ursa_scope_cancel(wait);
	}
}

static inline void ursa_curl__task_ends(struct ursa_curl *c)
{
	if (--c->tasks == 0 && c->closing)
		ursa_event_set(&c->gone); /* the last touch of c */
}

/* Hand every finished transfer to its waiting task. */
static inline void ursa_curl__collect(struct ursa_curl *c)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(c->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		for (struct ursa_curl__xfer *x = c->xfers; x; x = x->next)
			if (x->easy == m->easy_handle) {
				x->result = m->data.result;
				ursa_event_set(&x->done);
				break;
			}
	}
}

static inline void *ursa_curl__sock_task(void *arg)
{
	struct ursa_curl__sock *k = (struct ursa_curl__sock *)arg;
	struct ursa_curl *c = k->c;

	while (!k->removed && !c->closing) {
		struct ursa_scope s;
		int rc, running, ev = 0;

		ursa_scope_enter(&s, URSA_FOREVER);
		k->wait = &s;
		rc = ursa_poll(k->fd, k->events, URSA_FOREVER);
		k->wait = NULL;
		(void)ursa_scope_exit(&s);
		if (k->removed || c->closing)
			break;
		if (k->kicked) {
			k->kicked = 0;
			continue; /* libcurl changed what it waits for */
		}
		if (rc == -ECANCELED || rc == -ETIMEDOUT)
			break; /* the task is cancelled: the runtime is ending */
		if (rc > 0 && (rc & POLLIN))
			ev |= CURL_CSELECT_IN;
		if (rc > 0 && (rc & POLLOUT))
			ev |= CURL_CSELECT_OUT;
		if (rc < 0 || (rc & (POLLERR | POLLHUP)))
			ev |= CURL_CSELECT_ERR;
		curl_multi_socket_action(c->multi, k->fd, ev, &running);
		ursa_curl__collect(c);
	}
	/* Ended without libcurl's REMOVE (cancelled): make sure libcurl never
	 * hands this record back. */
	if (!k->removed && !c->closing)
		curl_multi_assign(c->multi, k->fd, NULL);
	if (k->prev)
		k->prev->next = k->next;
	else
		c->socks = k->next;
	if (k->next)
		k->next->prev = k->prev;
	free(k);
	ursa_curl__task_ends(c);
	return NULL;
}

static inline void *ursa_curl__timer_task(void *arg)
{
	struct ursa_curl *c = (struct ursa_curl *)arg;

	while (!c->closing) {
		struct ursa_scope s;
		int rc, running;

		ursa_scope_enter(&s, URSA_FOREVER);
		c->timer_wait = &s;
		rc = ursa_sleep_until(c->deadline_ns);
		c->timer_wait = NULL;
		(void)ursa_scope_exit(&s);
		if (c->closing)
			break;
		if (c->timer_kicked) {
			c->timer_kicked = 0;
			continue; /* a new deadline */
		}
		if (rc < 0)
			break; /* cancelled: the runtime is ending */
		c->deadline_ns = URSA_FOREVER;
		curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
		ursa_curl__collect(c);
	}
	ursa_curl__task_ends(c);
	return NULL;
}

/* CURLMOPT_SOCKETFUNCTION */
static inline int ursa_curl__socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp,
                                       void *socketp)
{
	struct ursa_curl *c = (struct ursa_curl *)userp;
	struct ursa_curl__sock *k = (struct ursa_curl__sock *)socketp;
	uint32_t events = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (k) {
			k->removed = 1;
			ursa_curl__kick(k->wait, &k->kicked);
			curl_multi_assign(c->multi, fd, NULL);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= POLLIN;
	if (what & CURL_POLL_OUT)
		events |= POLLOUT;
	if (!k) {
		struct ursa_spawn_opts so = {URSA_SPAWN_DETACHED, 0, "curl socket"};

		if (c->closing || !(k = (struct ursa_curl__sock *)calloc(1, sizeof(*k))))
			return -1;
		k->c = c;
		k->fd = fd;
		k->events = events;
		if (ursa_spawn_ex(NULL, c->core, ursa_curl__sock_task, k, &so) < 0) {
			free(k);
			return -1; /* libcurl fails the transfer */
		}
		c->tasks++;
		k->next = c->socks;
		if (c->socks)
			c->socks->prev = k;
		c->socks = k;
		curl_multi_assign(c->multi, fd, k);
		return 0;
	}
	if (k->events != events) {
		k->events = events;
		ursa_curl__kick(k->wait, &k->kicked);
	}
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 removes the timer; 0 asks for a call at once,
 * which the timer task makes (never from inside this callback). */
static inline int ursa_curl__timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct ursa_curl *c = (struct ursa_curl *)userp;
	uint64_t now = ursa_now();

	(void)multi;
	c->deadline_ns = timeout_ms < 0 ? URSA_FOREVER : now + (uint64_t)timeout_ms * 1000000u;
	ursa_curl__kick(c->timer_wait, &c->timer_kicked);
	return 0;
}

/*
 * A multi handle on the calling task's core, with its callbacks set.  Set
 * more of its options through ursa_curl_multi (CURLMOPT_MAX_HOST_CONNECTIONS,
 * say), but not CURLMOPT_SOCKETFUNCTION, _TIMERFUNCTION or their data.
 * Call curl_global_init first, as libcurl asks.  0 and *c, or -ENOMEM,
 * -EPERM outside a task, or ursa_spawn's error.  Does not block.
 */
static inline URSA_NODISCARD int ursa_curl_create(struct ursa_curl **cp)
{
	struct ursa_spawn_opts so = {URSA_SPAWN_DETACHED, 0, "curl timer"};
	struct ursa_curl *c;
	int rc;

	if (!cp)
		return -EINVAL;
	if (!ursa_self())
		return -EPERM;
	if (!(c = (struct ursa_curl *)calloc(1, sizeof(*c))))
		return -ENOMEM;
	if (!(c->multi = curl_multi_init())) {
		free(c);
		return -ENOMEM;
	}
	c->core = ursa_core();
	c->deadline_ns = URSA_FOREVER;
	ursa_event_init(&c->gone);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, ursa_curl__socket_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, ursa_curl__timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	rc = ursa_spawn_ex(NULL, c->core, ursa_curl__timer_task, c, &so);
	if (rc < 0) {
		curl_multi_cleanup(c->multi);
		free(c);
		return rc;
	}
	c->tasks = 1;
	*cp = c;
	return 0;
}

/* The multi handle, for options of its own.  Any thread. */
static inline CURLM *ursa_curl_multi(struct ursa_curl *c)
{
	return c ? c->multi : NULL;
}

/*
 * Run the transfer `easy` (set up as for curl_easy_perform) and wait for it:
 * 0 and *result (CURLE_OK, or why the transfer failed: CURLE_COULDNT_CONNECT
 * for a refused port, ...; the HTTP status is curl_easy_getinfo's), or
 * -errno: -ECANCELED / -ETIMEDOUT (the transfer is stopped and removed:
 * asyncio's wait_for around a request), -EXDEV from another core, -EINVAL
 * (easy is in another multi handle already, or NULL), -ENOMEM.  The handle
 * is out of the multi handle again on every return.  Blocks the fiber.
 */
static inline URSA_NODISCARD int ursa_curl_perform(struct ursa_curl *c, CURL *easy,
                                                   CURLcode *result)
{
	struct ursa_curl__xfer x;
	CURLMcode mc;
	int rc;

	if (!c || !easy || !result || c->closing)
		return -EINVAL;
	if (!ursa_self())
		return -EPERM;
	if (ursa_core() != c->core)
		return -EXDEV;
	x.easy = easy;
	x.result = CURLE_OK;
	ursa_event_init(&x.done);
	x.prev = NULL;
	x.next = c->xfers;
	if (c->xfers)
		c->xfers->prev = &x;
	c->xfers = &x;
	mc = curl_multi_add_handle(c->multi, easy);
	if (mc == CURLM_OK)
		rc = ursa_event_wait(&x.done);
	else
		rc = mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
	if (x.prev)
		x.prev->next = x.next;
	else
		c->xfers = x.next;
	if (x.next)
		x.next->prev = x.prev;
	if (mc == CURLM_OK)
		curl_multi_remove_handle(c->multi, easy); /* stops it if unfinished */
	if (rc >= 0) /* >= rather than ==: lets the compiler see *result set
	                whenever a caller's `rc < 0` check passes */
		*result = x.result;
	return rc;
}

/*
 * Stop the handle's tasks, close its connections and free it: 0, -EBUSY
 * while a transfer runs, -EXDEV from another core.  Waits (shielded) for
 * its tasks to end.  Blocks the fiber.
 */
static inline int ursa_curl_destroy(struct ursa_curl *c)
{
	struct ursa_scope s;

	if (!c)
		return 0;
	if (!ursa_self())
		return -EPERM;
	if (ursa_core() != c->core)
		return -EXDEV;
	if (c->xfers)
		return -EBUSY;
	/* Cleaning up the multi handle closes its cached connections, telling
	 * each socket's task through CURL_POLL_REMOVE; then every task is
	 * told to stop, and awaited, before c goes. */
	curl_multi_cleanup(c->multi);
	c->multi = NULL;
	c->closing = 1;
	for (struct ursa_curl__sock *k = c->socks; k; k = k->next)
		ursa_curl__kick(k->wait, &k->kicked);
	ursa_curl__kick(c->timer_wait, &c->timer_kicked);
	ursa_scope_enter_shielded(&s, URSA_FOREVER);
	if (c->tasks > 0)
		(void)!ursa_event_wait(&c->gone);
	(void)ursa_scope_exit(&s);
	free(c);
	return 0;
}

#endif /* URSA_ADAPTERS_CURL_H */

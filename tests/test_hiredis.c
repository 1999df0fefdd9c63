/* SPDX-License-Identifier: MIT */
/*
 * hiredis on ursa (include/ursa/adapters/hiredis.h), against real servers
 * started here: redis-server and ursa-kv.  Thousands of commands from many
 * tasks over one pipelined connection, both through hiredis's own callback
 * API (as its docs use it) and through ursa_redis_command; a command under
 * a deadline; a server killed while commands are in flight (every command
 * ends, with its reply or -ECONNRESET, and the disconnect callback runs).
 * Every test checks that no fd and no task is left.
 */
#include "test_server_procs.h"

#include <ursa/adapters/hiredis.h>

static struct seen S;
static struct server_proc srv;

#define TASKS 100
#define ROUNDS 20

/* ------------------------------------------------- ursa_redis_command */

struct client {
	redisAsyncContext *ac;
	int id;
};

static void *client_task(void *arg)
{
	struct client *c = arg;

	for (int i = 0; i < ROUNDS; i++) {
		char key[32], val[48];
		redisReply *r = NULL;
		int rc;

		snprintf(key, sizeof(key), "k:%d:%d", c->id, i);
		snprintf(val, sizeof(val), "value %d of task %d", i, c->id);
		rc = ursa_redis_command(c->ac, &r, "SET %s %s", key, val);
		EXPECT(&S, rc == 0 && r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0,
		       rc);
		if (r)
			freeReplyObject(r);
		r = NULL;
		rc = ursa_redis_command(c->ac, &r, "GET %s", key);
		EXPECT(&S, rc == 0 && r && r->type == REDIS_REPLY_STRING && strcmp(r->str, val) == 0,
		       rc);
		if (r)
			freeReplyObject(r);
	}
	return NULL;
}

static int disconnected; /* the disconnect callback's status + 1 */

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	(void)ac;
	disconnected = status + 1;
}

static redisAsyncContext *connect_srv(void)
{
	redisAsyncContext *ac = redisAsyncConnect("127.0.0.1", (int)srv.port);

	EXPECT(&S, ac && !ac->err, ac ? ac->err : -1);
	if (!ac || ac->err)
		return NULL;
	EXPECT(&S, ursa_redis_attach(ac) == 0, 0);
	EXPECT(&S, ursa_redis_attach(ac) == -EEXIST, 0);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	return ac;
}

static void *many_commands_main(void *arg)
{
	static struct client cl[TASKS];
	struct ursa_task *t[TASKS];
	redisAsyncContext *ac = connect_srv();
	redisReply *r = NULL;

	(void)arg;
	if (!ac)
		return NULL;
	for (int i = 0; i < TASKS; i++) {
		cl[i] = (struct client){ac, i};
		EXPECT(&S, ursa_spawn(&t[i], client_task, &cl[i]) == 0, i);
	}
	for (int i = 0; i < TASKS; i++)
		EXPECT(&S, ursa_join(t[i], NULL) == 0, i);
	/* A Redis error is a reply, not a failure. */
	EXPECT(&S, ursa_redis_command(ac, &r, "NOSUCHCOMMAND") == 0 && r &&
	                   r->type == REDIS_REPLY_ERROR,
	       0);
	if (r)
		freeReplyObject(r);
	redisAsyncDisconnect(ac); /* sends what is queued, then closes */
	EXPECT(&S, ursa_sleep(50 * MS) == 0, 0);
	EXPECT(&S, disconnected == REDIS_OK + 1, disconnected);
	return NULL;
}

static void run_many_commands(void)
{
	int fds = count_fds();

	run_on(2, many_commands_main, NULL);
	stop_proc(&srv, SIGTERM);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
}

Test(hiredis, two_thousand_commands_from_a_hundred_tasks_on_redis_server, .timeout = 60)
{
	srv = start_redis();
	run_many_commands();
}

Test(hiredis, two_thousand_commands_from_a_hundred_tasks_on_ursa_kv, .timeout = 60)
{
	srv = start_ursa_server("URSA_TEST_KV", NULL);
	run_many_commands();
}

/* ------------------------------- hiredis's own callback API, as documented */

static int replies, good;

static void on_get(redisAsyncContext *ac, void *reply, void *privdata)
{
	redisReply *r = reply;
	char want[32];

	(void)ac;
	replies++;
	snprintf(want, sizeof(want), "%ld", (long)(intptr_t)privdata);
	if (r && r->type == REDIS_REPLY_STRING && strcmp(r->str, want) == 0)
		good++;
}

static void *callbacks_main(void *arg)
{
	redisAsyncContext *ac[2];

	(void)arg;
	/* Two connections, 5000 commands each, issued without waiting: the
	 * replies come to the callbacks, in a task of this core. */
	for (int c = 0; c < 2; c++) {
		if (!(ac[c] = connect_srv()))
			return NULL;
		for (long i = 0; i < 2500; i++) {
			redisAsyncCommand(ac[c], NULL, NULL, "SET cb:%d:%ld %ld", c, i, i);
			redisAsyncCommand(ac[c], on_get, (void *)(intptr_t)i, "GET cb:%d:%ld", c, i);
		}
	}
	while (replies < 5000 && ursa_sleep(MS) == 0)
		;
	for (int c = 0; c < 2; c++)
		redisAsyncFree(ac[c]);
	return NULL;
}

Test(hiredis, the_callback_api_on_two_connections_gets_every_reply, .timeout = 60)
{
	int fds = count_fds();

	srv = start_ursa_server("URSA_TEST_KV", NULL);
	run_on(1, callbacks_main, NULL);
	stop_proc(&srv, SIGTERM);
	ASSERT_SEEN(&S);
	cr_assert_eq(replies, 5000);
	cr_assert_eq(good, 5000);
	cr_assert_eq(count_fds(), fds);
}

/* --------------------------------------------- deadlines and server loss */

static void *deadline_main(void *arg)
{
	redisAsyncContext *ac = connect_srv(), *other = connect_srv();
	struct ursa_scope s;
	redisReply *r = NULL;
	int rc;

	(void)arg;
	if (!ac || !other)
		return NULL;
	/* BLPOP on an empty list waits in the server: the deadline ends our
	 * wait, and the reply that comes later is dropped. */
	ursa_scope_enter(&s, ursa_now() + 30 * MS);
	rc = ursa_redis_command(ac, &r, "BLPOP empty:list 0");
	EXPECT(&S, rc == -ETIMEDOUT, rc);
	(void)ursa_scope_exit(&s);
	rc = ursa_redis_command(other, &r, "RPUSH empty:list x");
	EXPECT(&S, rc == 0 && r && r->type == REDIS_REPLY_INTEGER, rc);
	if (r)
		freeReplyObject(r);
	r = NULL;
	/* The connection goes on: this reply is this command's. */
	rc = ursa_redis_command(ac, &r, "PING");
	EXPECT(&S, rc == 0 && r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0,
	       rc);
	if (r)
		freeReplyObject(r);
	redisAsyncFree(other);
	redisAsyncFree(ac);
	/* Freed: the context is gone and nothing more can be sent. */
	return NULL;
}

Test(hiredis, a_command_under_a_deadline_is_etimedout_and_the_connection_goes_on)
{
	int fds = count_fds();

	srv = start_redis();
	run_on(1, deadline_main, NULL);
	stop_proc(&srv, SIGTERM);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
}

struct pending {
	redisAsyncContext *ac;
	int rc;
};

static void *blocked_command(void *arg)
{
	struct pending *p = arg;
	redisReply *r = NULL;

	p->rc = ursa_redis_command(p->ac, &r, "BLPOP never:pushed 0");
	if (r)
		freeReplyObject(r);
	return NULL;
}

static void *pipelined_command(void *arg)
{
	struct pending *p = arg;

	for (int i = 0; i < 1000; i++) {
		redisReply *r = NULL;

		p->rc = ursa_redis_command(p->ac, &r, "INCR counter");
		if (r)
			freeReplyObject(r);
		if (p->rc < 0)
			break;
	}
	return NULL;
}

static void *server_gone_main(void *arg)
{
	bool blocking = arg != NULL; /* redis-server: BLPOP; ursa-kv: INCR floods */
	struct pending p[20];
	struct ursa_task *t[20];
	redisAsyncContext *ac = connect_srv();
	redisReply *r = NULL;

	if (!ac)
		return NULL;
	for (int i = 0; i < 20; i++) {
		p[i] = (struct pending){ac, 1};
		EXPECT(&S, ursa_spawn(&t[i], blocking ? blocked_command : pipelined_command,
		                      &p[i]) == 0,
		       i);
	}
	EXPECT(&S, ursa_sleep(30 * MS) == 0, 0);
	/* The server dies with commands in flight. */
	kill(srv.pid, SIGKILL);
	for (int i = 0; i < 20; i++) {
		EXPECT(&S, ursa_join(t[i], NULL) == 0, i);
		EXPECT(&S, p[i].rc == -ECONNRESET || (!blocking && p[i].rc == 0), p[i].rc);
	}
	EXPECT(&S, disconnected == REDIS_ERR + 1, disconnected);
	/* hiredis has freed the context; a new one to a dead port fails. */
	ac = redisAsyncConnect("127.0.0.1", (int)srv.port);
	EXPECT(&S, ac != NULL, 0);
	if (ac && !ac->err && ursa_redis_attach(ac) == 0) {
		int rc = ursa_redis_command(ac, &r, "PING");

		EXPECT(&S, rc == -ECONNRESET || rc == -ENOTCONN, rc);
		if (rc == -ENOTCONN)
			redisAsyncFree(ac);
	} else if (ac) {
		redisAsyncFree(ac);
	}
	return NULL;
}

Test(hiredis, redis_server_killed_mid_command_ends_every_command_with_econnreset)
{
	int fds = count_fds();

	srv = start_redis();
	run_on(1, server_gone_main, (void *)1);
	stop_proc(&srv, SIGKILL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
}

Test(hiredis, ursa_kv_killed_under_pipelined_commands_ends_every_command)
{
	int fds = count_fds();

	srv = start_ursa_server("URSA_TEST_KV", NULL);
	run_on(1, server_gone_main, NULL);
	stop_proc(&srv, SIGKILL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
}

static void *misuse_main(void *arg)
{
	redisAsyncContext *ac = connect_srv();
	redisReply *r = NULL;
	int rc;

	(void)arg;
	EXPECT(&S, ursa_redis_attach(NULL) == -EINVAL, 0);
	EXPECT(&S, ursa_redis_command(NULL, &r, "PING") == -EINVAL, 0);
	if (!ac)
		return NULL;
	rc = ursa_redis_command(ac, &r, "PING");
	EXPECT(&S, rc == 0, rc);
	if (r)
		freeReplyObject(r);
	redisAsyncFree(ac);
	return NULL;
}

Test(hiredis, bad_arguments_are_einval)
{
	int fds = count_fds();

	srv = start_ursa_server("URSA_TEST_KV", NULL);
	run_on(1, misuse_main, NULL);
	stop_proc(&srv, SIGTERM);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
}

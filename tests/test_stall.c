/* SPDX-License-Identifier: MIT */
/*
 * The stall detector: a task that blocks its core in a plain syscall is
 * reported once, with its name, its core and a backtrace naming the blocking
 * function; tasks that keep returning to the scheduler are never reported.
 * (Tests link with -rdynamic so backtrace_symbols can name their functions.)
 */
#include "helpers.h"

#include <criterion/redirect.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

/* Not static: the backtrace must be able to name it. */
__attribute__((noinline)) void ursa_test_blocks_in_usleep(uint64_t ns)
{
	uint64_t until = ursa_now() + ns;

	/* The detector's signal cuts usleep short (EINTR): keep blocking. */
	while (ursa_now() < until)
		usleep(10 * 1000);
}

static void *sleepy(void *arg)
{
	(void)arg;
	ursa_test_blocks_in_usleep(400 * MS);
	return NULL;
}

static void *main_stall(void *arg)
{
	struct ursa_spawn_opts so = {.name = "sleepy"};
	struct seen *s = arg;
	struct ursa_task *t;

	REQUIRE(s, ursa_spawn_ex(&t, 1, sleepy, NULL, &so) == 0, 0);
	JOIN_OK(s, t);
	return NULL;
}

static size_t read_stderr(char *buf, size_t len)
{
	FILE *f;
	size_t n;

	fflush(stderr);
	f = cr_get_redirected_stderr();
	n = fread(buf, 1, len - 1, f);
	buf[n] = 0;
	return n;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

Test(stall, blocked_core_is_reported_once_with_a_backtrace, .init = cr_redirect_stderr)
{
	struct ursa_opts o = {.cores = 2, .stall_ms = 100};
	static char buf[65536];
	struct seen s = {0};

	cr_assert_eq(ursa_run(main_stall, &s, &o, NULL), 0);
	ASSERT_SEEN(&s);
	read_stderr(buf, sizeof(buf));
	cr_assert_eq(count(buf, "ursa: stall:"), 1, "expected one report:\n%s", buf);
	cr_assert_not_null(strstr(buf, "core 1 has run task 'sleepy'"), "%s", buf);
	cr_assert_not_null(strstr(buf, "ursa_test_blocks_in_usleep"), "no function name:\n%s", buf);
}

static void *polite(void *arg)
{
	(void)arg;
	for (uint64_t until = ursa_now() + 300 * MS; ursa_now() < until;)
		ursa_yield(); /* busy, but back to the scheduler every time */
	return NULL;
}

static void *main_polite(void *arg)
{
	struct seen *s = arg;
	struct ursa_task *t[2];

	REQUIRE(s, ursa_spawn(&t[0], polite, NULL) == 0, 0);
	REQUIRE(s, ursa_spawn_on(&t[1], 1, polite, NULL) == 0, 1);
	JOIN_OK(s, t[0]);
	JOIN_OK(s, t[1]);
	return NULL;
}

Test(stall, tasks_that_return_to_the_scheduler_are_not_reported, .init = cr_redirect_stderr)
{
	struct ursa_opts o = {.cores = 2, .stall_ms = 50};
	static char buf[65536];
	struct seen s = {0};

	cr_assert_eq(ursa_run(main_polite, &s, &o, NULL), 0);
	ASSERT_SEEN(&s);
	read_stderr(buf, sizeof(buf));
	cr_assert_null(strstr(buf, "ursa: stall:"), "false report:\n%s", buf);
}

Test(stall, detector_is_off_by_default, .init = cr_redirect_stderr)
{
	static char buf[65536];
	struct ursa_opts o = {.cores = 2};
	struct seen s = {0};

	unsetenv("URSA_STALL_MS");
	cr_assert_eq(ursa_run(main_stall, &s, &o, NULL), 0);
	ASSERT_SEEN(&s);
	read_stderr(buf, sizeof(buf));
	cr_assert_null(strstr(buf, "ursa: stall:"), "reported while off:\n%s", buf);
}

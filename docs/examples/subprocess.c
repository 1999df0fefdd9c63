/* SPDX-License-Identifier: MIT */
/*
 * asyncio.create_subprocess_exec and Process.communicate: run programs as
 * child processes, feed their stdin, collect stdout and stderr and the exit
 * status, several at once.  A child is started with posix_spawn and waited
 * for on the ring (ursa/process.h); a task waits, the core runs on.
 */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <ursa.h>

static const struct ursa_process_opts pipes = {
	.stdin_mode = URSA_PROCESS_PIPE,
	.stdout_mode = URSA_PROCESS_PIPE,
	.stderr_mode = URSA_PROCESS_PIPE,
};

/* proc = await create_subprocess_exec(*argv, stdin=PIPE, stdout=PIPE, stderr=PIPE)
 * stdout, stderr = await proc.communicate(input) */
static int run(char *const argv[], const char *input, struct ursa_process_output *out)
{
	struct ursa_process *p;
	int rc = ursa_process_create(&p, argv[0], argv, &pipes);

	if (rc < 0)
		return rc; /* -ENOENT: no such program, from here rather than later */
	rc = ursa_process_communicate(p, input, input ? strlen(input) : 0, out);
	ursa_process_destroy(p); /* reaped already; a child still running is killed */
	return rc;
}

static void report(const char *name, const struct ursa_process_output *o)
{
	printf("[%s exited with %d]\n", name, WEXITSTATUS(o->status));
	if (o->out_len)
		printf("[stdout]\n%s", o->out);
	if (o->err_len)
		printf("[stderr]\n%s", o->err);
}

struct job {
	char *argv[4];
	struct ursa_process_output out;
	int rc;
};

static void *run_job(void *arg)
{
	struct job *j = arg;

	j->rc = run(j->argv, NULL, &j->out);
	return NULL;
}

static void *main_task(void *arg)
{
	char *tr[] = {"tr", "a-z", "A-Z", NULL};
	char *sh[] = {"sh", "-c", "echo to stdout; echo to stderr >&2; exit 3", NULL};
	char *missing[] = {"no-such-program", NULL};
	struct ursa_process_output o;
	struct job jobs[3];
	struct ursa_task *t[3];

	(void)arg;
	if (run(tr, "hello from a child\n", &o) == 0)
		report("tr", &o);
	ursa_process_output_fini(&o);
	if (run(sh, NULL, &o) == 0)
		report("sh", &o);
	ursa_process_output_fini(&o);
	printf("no-such-program: %s\n", ursa_strerror(run(missing, NULL, &o)));
	ursa_process_output_fini(&o);

	/* Three at once: gather takes as long as the slowest. */
	for (int i = 0; i < 3; i++) {
		jobs[i] = (struct job){.argv = {"sh", "-c", NULL, NULL}};
		jobs[i].argv[2] = i == 0 ? "sleep 0.2; echo first" : i == 1 ? "sleep 0.1; echo second"
		                                                          : "echo third";
		if (ursa_spawn(&t[i], run_job, &jobs[i]))
			return (void *)1;
	}
	if (ursa_gather(t, 3, 0, NULL))
		return (void *)1;
	for (int i = 0; i < 3; i++) {
		printf("job %d: %s", i, jobs[i].rc == 0 ? jobs[i].out.out : "failed\n");
		ursa_process_output_fini(&jobs[i].out);
	}
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}

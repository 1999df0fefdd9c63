/* SPDX-License-Identifier: MIT */
/*
 * ursa/process.h: child processes (asyncio's create_subprocess_exec and
 * Process.communicate).  A child is started with posix_spawn (a vfork-style
 * clone: safe in a threaded process, where fork would copy locks held by
 * other threads) and held by a pidfd, so every wait is on the ring
 * (IORING_OP_WAITID on Linux 6.7+, else a poll of the pidfd) and a signal
 * can never reach a recycled pid.  Every fd ursa makes is close-on-exec, so
 * a child inherits only the stdin, stdout and stderr it is given.
 * docs/io.md, "Child processes", has the rules in full.
 *
 * No zombie is left behind: a child is reaped by ursa_process_wait (or
 * communicate), and ursa_process_destroy kills a child still running
 * (SIGKILL) and reaps it.  Cancelling a wait leaves the child alone: it
 * keeps running, and may be waited for again, signalled or destroyed.
 */
#ifndef URSA_PROCESS_H
#define URSA_PROCESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ursa_process; /* opaque */

/* What a child's stdin, stdout or stderr is (struct ursa_process_opts). */
enum {
	URSA_PROCESS_INHERIT = 0, /* the parent's own */
	URSA_PROCESS_PIPE = 1,    /* a pipe to the parent: ursa_process_fd */
	URSA_PROCESS_DEVNULL = 2, /* /dev/null */
	URSA_PROCESS_STDOUT = 3,  /* stderr only: wherever stdout goes */
	URSA_PROCESS_FD = 4,      /* the fd in stdin_fd / stdout_fd / stderr_fd */
};

/* Flags for struct ursa_process_opts. */
#define URSA_PROCESS_NEW_SESSION 0x1u /* setsid(): the child leads a new session
                                         and process group (kill(-pid, sig)
                                         then reaches its own children too) */

/* Options for ursa_process_create.  NULL or zero fields: defaults. */
struct ursa_process_opts {
	uint32_t flags;       /* URSA_PROCESS_NEW_SESSION */
	int stdin_mode;       /* URSA_PROCESS_* [INHERIT] */
	int stdout_mode;
	int stderr_mode;
	int stdin_fd;         /* with URSA_PROCESS_FD: the fd to give the child */
	int stdout_fd;
	int stderr_fd;
	const char *cwd;      /* the child's working directory [the parent's] */
	char *const *envp;    /* the child's environment [the parent's environ] */
};

/*
 * Start `file` with arguments argv (argv[0] included, NULL-terminated); a
 * file without '/' is looked for in PATH, as execvp does.  The child starts
 * with an empty signal mask (the parent's blocked signals, such as those an
 * ursa_signal watches, are not passed on), SIGPIPE at its default, and
 * handlers reset by exec as always.  0 and *p; or -errno, and then no child
 * is left: -ENOENT (no such program: from here, never from a wait), -EACCES,
 * -ENOEXEC, -EINVAL (a bad mode, flag or fd; NULL file or argv), -ECHILD
 * (SIGCHLD is ignored, so the kernel would reap the child behind ursa's
 * back), -ENOSYS (no pidfd_open: Linux before 5.3, or valgrind 3.19, which
 * does not know the call), -EMFILE, -ENOMEM, -EAGAIN.  Blocks the calling thread while the
 * kernel starts the child (the vfork until exec, well under a millisecond),
 * not the fiber.  Any thread.
 */
URSA_API URSA_NODISCARD int ursa_process_create(struct ursa_process **p, const char *file,
                                                char *const argv[],
                                                const struct ursa_process_opts *opts);

/* The child's process id.  Any thread. */
URSA_API pid_t ursa_process_pid(const struct ursa_process *p);

/*
 * The parent's end of the child's stdin (0), stdout (1) or stderr (2) when
 * it is a URSA_PROCESS_PIPE and still open, else -1.  p owns it: close it
 * with ursa_process_close_fd, never ursa_close (wrap it in an ursa_reader or
 * ursa_writer without URSA_STREAM_CLOSE_FD).  Any thread.
 */
URSA_API URSA_NODISCARD int ursa_process_fd(const struct ursa_process *p, int which);

/* Close the parent's end of pipe `which` now (stdin: the child reads end of
 * file).  0, -EBADF if not open, -EINVAL.  May be called from a task only. */
URSA_API int ursa_process_close_fd(struct ursa_process *p, int which);

/*
 * Send sig to the child (pidfd_send_signal; 0 checks it is there).  0,
 * -ESRCH once it has been reaped, -EINVAL.  Does not block.  Any thread.
 */
URSA_API int ursa_process_kill(struct ursa_process *p, int sig);

/*
 * Wait for the child to end and reap it: 0 and *status (if not NULL) in
 * waitpid(2)'s form (WIFEXITED, WEXITSTATUS, WIFSIGNALED, WTERMSIG).  Once
 * reaped, every later call returns the same status at once.  -ECANCELED,
 * -ETIMEDOUT: the child is left as it was, running and not reaped; -EBUSY
 * when another task is waiting for it.  Blocks the fiber.
 */
URSA_API URSA_NODISCARD int ursa_process_wait(struct ursa_process *p, int *status);

/* What ursa_process_communicate collected; free with ..._output_fini. */
struct ursa_process_output {
	char *out;        /* stdout (malloc'd, NUL after the last byte), or NULL */
	size_t out_len;
	char *err;        /* stderr, the same */
	size_t err_len;
	size_t in_written; /* bytes of the input the child took */
	int in_err;       /* -EPIPE when the child closed stdin first; else 0 */
	int status;       /* waitpid(2) form, valid when communicate returned 0 */
};

/* Free what o holds and zero it.  Any thread. */
URSA_API void ursa_process_output_fini(struct ursa_process_output *o);

/*
 * Feed `input` to the child's stdin and close it, read its stdout and
 * stderr to their ends, all at once (so a child that writes much before it
 * reads, or fills one pipe while we feed the other, cannot deadlock), then
 * wait for it to end.  Streams that are not pipes are skipped (input must
 * be empty then: -EINVAL otherwise); stdin is closed even without input.
 * A child that exits or closes stdin before taking all the input is not an
 * error: in_err says so (-EPIPE, and no SIGPIPE is raised).  Output grows
 * without a limit, like asyncio's.  Returns 0 with *out filled and status
 * set; -ENOMEM; or -ECANCELED / -ETIMEDOUT, and then *out holds what was
 * read so far (nothing delivered is lost) and the child is left running
 * (the pipes stay as they were: stdin may already be closed).  *out is
 * filled on every return but -EINVAL; free it with ursa_process_output_fini.
 * Blocks the fiber.
 */
URSA_API URSA_NODISCARD int ursa_process_communicate(struct ursa_process *p, const void *input,
                                                     size_t input_len,
                                                     struct ursa_process_output *out);

/*
 * Free p: a child not yet reaped is killed (SIGKILL) and reaped first
 * (shielded: a cancelled task still waits for that), then the pipes and the
 * pidfd are closed.  0, or -EBUSY while a task waits for p.  Blocks the
 * fiber briefly in a task; outside one it waits in waitid(2).
 */
URSA_API int ursa_process_destroy(struct ursa_process *p);

#ifdef __cplusplus
}
#endif

#endif /* URSA_PROCESS_H */
